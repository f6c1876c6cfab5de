"""Colour maps turning label maps into RGB images (vis.py), docs/DESIGN.md §Evaluation.

Colour map types: 'pascal' (also used for COCO), 'cityscapes', 'ade20k'.
Every colour map is a uint8 array [max_entries, 3].
"""
import numpy as np

from utils.errors import InputError

PASCAL = 'pascal'
CITYSCAPES = 'cityscapes'
ADE20K = 'ade20k'

_MAX_ENTRIES = {PASCAL: 512, CITYSCAPES: 256, ADE20K: 151}

# Cityscapes colours of the 19 training ids (road, sidewalk, building, wall,
# fence, pole, traffic light, traffic sign, vegetation, terrain, sky, person,
# rider, car, truck, bus, train, motorcycle, bicycle).
_CITYSCAPES_TRAIN_ID_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
    (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
    (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
    (0, 0, 230), (119, 11, 32))

# ADE20K scene-parsing palette of the 150 classes, preceded by black for label
# 0 ("other"). Written down from memory of the widely used scene-parsing
# palette; it could not be checked against an authoritative copy here, so
# treat it as a deterministic palette that is very likely but not certainly
# identical to the official one.
_ADE20K_COLORS = (
    (0, 0, 0), (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50),
    (4, 200, 3), (120, 120, 80), (140, 140, 140), (204, 5, 255),
    (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61),
    (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140),
    (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250),
    (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230),
    (220, 220, 220), (255, 9, 92), (112, 9, 255), (8, 255, 214),
    (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7),
    (255, 122, 8), (0, 255, 20), (255, 8, 41), (255, 5, 153), (6, 51, 255),
    (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140),
    (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255),
    (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255),
    (0, 255, 112), (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0),
    (194, 255, 0), (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41),
    (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0),
    (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204),
    (0, 255, 194), (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255),
    (0, 194, 255), (0, 122, 255), (0, 255, 163), (255, 153, 0), (0, 255, 10),
    (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0),
    (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31),
    (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255),
    (71, 255, 0), (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235),
    (133, 255, 0), (255, 0, 235), (245, 0, 255), (255, 0, 122), (255, 245, 0),
    (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255), (255, 255, 0),
    (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184),
    (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194),
    (102, 255, 0), (92, 0, 255))


def get_dataset_colormap_max_entries(dataset):
  """Number of colour map entries (labels must be below it) for a type."""
  if dataset not in _MAX_ENTRIES:
    raise InputError('Unknown colormap type %r; expected one of %s'
                     % (dataset, ', '.join(sorted(_MAX_ENTRIES))))
  return _MAX_ENTRIES[dataset]


def create_pascal_label_colormap():
  """PASCAL VOC colour map, uint8 [512, 3].

  Bit interleaving: for label i, from bit position 7 down to 0, channel c
  (R, G, B) takes bit c of i, then i is shifted right by 3. So 0 -> black,
  1 -> (128, 0, 0), 2 -> (0, 128, 0), 15 -> (192, 128, 128).
  """
  colormap = np.zeros((_MAX_ENTRIES[PASCAL], 3), dtype=np.int64)
  remaining = np.arange(_MAX_ENTRIES[PASCAL])
  for shift in reversed(range(8)):
    for channel in range(3):
      colormap[:, channel] |= ((remaining >> channel) & 1) << shift
    remaining >>= 3
  return colormap.astype(np.uint8)


def create_cityscapes_label_colormap():
  """Cityscapes colour map, uint8 [256, 3]: the 19 train ids, black after."""
  colormap = np.zeros((_MAX_ENTRIES[CITYSCAPES], 3), dtype=np.uint8)
  colormap[:len(_CITYSCAPES_TRAIN_ID_COLORS)] = _CITYSCAPES_TRAIN_ID_COLORS
  return colormap


def create_ade20k_label_colormap():
  """ADE20K colour map, uint8 [151, 3]; see the caveat at _ADE20K_COLORS."""
  return np.array(_ADE20K_COLORS, dtype=np.uint8)


_CREATORS = {
    PASCAL: create_pascal_label_colormap,
    CITYSCAPES: create_cityscapes_label_colormap,
    ADE20K: create_ade20k_label_colormap,
}


def create_label_colormap(dataset=PASCAL):
  """The colour map (uint8 [max_entries, 3]) of a colour map type."""
  get_dataset_colormap_max_entries(dataset)
  return _CREATORS[dataset]()


def label_to_color_image(label, dataset=PASCAL):
  """Colours a label map.

  Args:
    label: integer array [H, W] of labels in [0, max_entries).
    dataset: colour map type ('pascal', 'cityscapes', 'ade20k').

  Returns:
    uint8 array [H, W, 3].

  Raises:
    InputError: label not 2-D, not integer, or out of the colour map's range.
  """
  label = np.asarray(label)
  if label.ndim != 2:
    raise InputError('Expected a 2-D label map, got shape %s' % (label.shape,))
  if label.size and not np.issubdtype(label.dtype, np.integer):
    raise InputError('Expected integer labels, got dtype %s' % label.dtype)
  max_entries = get_dataset_colormap_max_entries(dataset)
  if label.size and (label.min() < 0 or label.max() >= max_entries):
    raise InputError('Label values must be in [0, %d) for colormap %r, got '
                     'range [%d, %d]' % (max_entries, dataset, label.min(),
                                         label.max()))
  return create_label_colormap(dataset)[label]
