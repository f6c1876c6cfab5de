"""Builds COCO 2017 semantic-segmentation tfrecords from instance annotations.

Input layout (`--coco_root`):
  train2017/<id>.jpg, val2017/<id>.jpg
  annotations/instances_train2017.json, annotations/instances_val2017.json
  `--splits_dir`/<split>.txt    subsets, names like `train2017/000000177254`

Splits: `train` (all of train2017), `val` (all of val2017) and one per list in
`--splits_dir` (`32_all` ... `512_all`); `--splits` picks some of them. The
`image/filename` feature is `<folder>/<id>` (e.g. `train2017/000000177254`)
for every split, as in the subset lists.

Semantic label of an image (the original repo does not say how its labels were
made; these are this project's choices):
  * background 0; the 80 thing categories, sorted by category id, 1..80;
  * instances are painted largest first (pixel area of the decoded mask, ties
    by annotation id), so where instances overlap the smaller one, painted
    later, wins: a small object in front of a large one stays visible;
  * every pixel covered by a crowd annotation (`iscrowd`) is 255 (ignore), even
    over a non-crowd instance: crowd regions are too coarse to trust.
Polygons and RLEs are decoded with pycocotools (`pip install -r
requirements-coco.txt`), imported only when a COCO build runs.

Every split but `val` is written in a seeded random order (docs/DESIGN.md §Departures 2).
Usage:
  python -m datasets.build_coco_data --coco_root=.../coco --output_dir=DIR
"""
import collections
import json
import os
import sys

# Lets `python datasets/build_coco_data.py` import the repo's packages.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402

from datasets import build_data  # noqa: E402
from utils import errors  # noqa: E402

FLAGS = flags.FLAGS
BuildError = build_data.BuildError

NUM_CLASSES = 81
# Split -> image folder of the splits made of a whole folder.
FOLDER_SPLITS = collections.OrderedDict([('train', 'train2017'),
                                         ('val', 'val2017')])
DEFAULT_SPLITS_DIR = os.path.join(_REPO_ROOT, 'data_splits', 'coco')


def mask_api():
  """Returns `pycocotools.mask`, or a BuildError telling how to install it."""
  try:
    from pycocotools import mask  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise BuildError('building COCO needs pycocotools: pip install pycocotools '
                     '(or pip install -r requirements-coco.txt)') from error
  return mask


class FolderAnnotations(object):
  """The images and instance annotations of one folder (e.g. train2017).

  Attributes:
    images: dict image stem ('000000177254') -> the json image record.
    annotations: dict image id -> list of its json annotation records.
    category_ids: sorted list of the category ids.
  """

  def __init__(self, json_path):
    if not os.path.isfile(json_path):
      raise BuildError('annotation file not found: %s' % json_path)
    try:
      with open(json_path) as f:
        content = json.load(f)
      images = content['images']
      annotations = content['annotations']
      categories = content['categories']
    except (ValueError, KeyError, TypeError) as error:
      raise BuildError('%s is not a COCO instances file (%r)' %
                       (json_path, error)) from error
    self.images = {os.path.splitext(image['file_name'])[0]: image
                   for image in images}
    self.annotations = collections.defaultdict(list)
    for annotation in annotations:
      self.annotations[annotation['image_id']].append(annotation)
    self.category_ids = sorted(category['id'] for category in categories)


def decode_segmentation(segmentation, height, width, where):
  """Decodes a COCO polygon list or RLE into a bool [height, width] mask."""
  api = mask_api()
  if isinstance(segmentation, list):
    # Fewer than 3 points is no area (and 4 numbers would be read as a box).
    polygons = [polygon for polygon in segmentation if len(polygon) >= 6]
    if not polygons:
      return np.zeros((height, width), dtype=bool)
    rle = api.merge(api.frPyObjects(polygons, height, width))
  elif isinstance(segmentation, dict) and 'counts' in segmentation:
    if list(segmentation.get('size', ())) != [height, width]:
      raise BuildError('%s: RLE size %s differs from image size %s' %
                       (where, segmentation.get('size'), [height, width]))
    counts = segmentation['counts']
    if isinstance(counts, list):
      rle = api.frPyObjects(segmentation, height, width)
    else:
      rle = {'size': [height, width],
             'counts': counts.encode('ascii') if isinstance(counts, str)
                       else counts}
  else:
    raise BuildError('%s: unknown segmentation format' % where)
  return api.decode(rle).astype(bool)


def render_label(annotations, height, width, category_to_index, where):
  """Semantic label (uint8 [height, width]) of one image's annotations.

  See the module docstring for the painting order and the crowd policy.
  """
  label = np.zeros((height, width), dtype=np.uint8)
  crowd = np.zeros((height, width), dtype=bool)
  instances = []
  for annotation in annotations:
    ann_where = '%s annotation %s' % (where, annotation.get('id'))
    mask = decode_segmentation(annotation['segmentation'], height, width,
                               ann_where)
    if annotation.get('iscrowd', 0):
      crowd |= mask
      continue
    if annotation['category_id'] not in category_to_index:
      raise BuildError('%s: unknown category id %s' %
                       (ann_where, annotation['category_id']))
    instances.append((-int(mask.sum()), annotation.get('id', 0),
                      category_to_index[annotation['category_id']], mask))
  for _, _, index, mask in sorted(instances, key=lambda item: item[:2]):
    label[mask] = index
  label[crowd] = build_data.IGNORE_LABEL
  return label


class CocoBuilder(object):
  """Loads the annotation files on demand and turns names into Examples."""

  def __init__(self, coco_root):
    build_data.require_dir(coco_root, 'COCO root (--coco_root)')
    build_data.require_dir(os.path.join(coco_root, 'annotations'),
                           'COCO annotations')
    self._root = coco_root
    self._folders = {}
    self._category_to_index = None

  def folder(self, folder):
    """FolderAnnotations of `folder`, loaded once; checks the categories."""
    if folder not in self._folders:
      if folder not in FOLDER_SPLITS.values():
        raise BuildError('unknown COCO image folder %r (expected one of %s)' %
                         (folder, ', '.join(FOLDER_SPLITS.values())))
      build_data.require_dir(os.path.join(self._root, folder), 'COCO images')
      loaded = FolderAnnotations(os.path.join(
          self._root, 'annotations', 'instances_%s.json' % folder))
      mapping = {category_id: index + 1
                 for index, category_id in enumerate(loaded.category_ids)}
      if len(mapping) + 1 != NUM_CLASSES:
        raise BuildError('instances_%s.json has %d categories, expected %d' %
                         (folder, len(mapping), NUM_CLASSES - 1))
      if self._category_to_index not in (None, mapping):
        raise BuildError('instances_%s.json has other categories than the '
                         'annotation files read before' % folder)
      self._category_to_index = mapping
      self._folders[folder] = loaded
    return self._folders[folder]

  def folder_names(self, folder):
    """Every image name `<folder>/<stem>` of a folder, sorted."""
    stems = sorted(self.folder(folder).images)
    return ['%s/%s' % (folder, stem) for stem in stems]

  def image_record(self, name, split):
    """The json image record of `<folder>/<stem>`; BuildError if unknown."""
    folder, _, stem = name.partition('/')
    if not stem:
      raise BuildError('split %s: image name %r is not <folder>/<id>' %
                       (split, name))
    record = self.folder(folder).images.get(stem)
    if record is None:
      raise BuildError('split %s: image %s has no entry (no label) in '
                       'instances_%s.json' % (split, name, folder))
    image_path = os.path.join(self._root, folder, record['file_name'])
    if not os.path.isfile(image_path):
      raise BuildError('split %s: image %s not found' % (split, image_path))
    return record

  def example(self, name):
    """The Example of one (already checked) image name."""
    folder, _, stem = name.partition('/')
    annotations = self.folder(folder)
    record = annotations.images[stem]
    image_path = os.path.join(self._root, folder, record['file_name'])
    data, image_format, height, width = build_data.load_image(image_path)
    if (height, width) != (record['height'], record['width']):
      raise BuildError('%s: image size %s differs from the annotated size %s' %
                       (image_path, (height, width),
                        (record['height'], record['width'])))
    label = render_label(annotations.annotations.get(record['id'], []), height,
                         width, self._category_to_index, image_path)
    return build_data.example_from_encoded(name, data, image_format, height,
                                           width, label, NUM_CLASSES,
                                           where=image_path)


def plan_splits(builder, splits_dir=DEFAULT_SPLITS_DIR, splits=None):
  """OrderedDict split -> image names, for the `splits` wanted (None: all)."""
  plan = collections.OrderedDict()
  lists = collections.OrderedDict()
  if splits_dir:
    build_data.require_dir(splits_dir, 'subset lists (--splits_dir)')
    for file_name in sorted(os.listdir(splits_dir)):
      if file_name.endswith('.txt'):
        lists[file_name[:-len('.txt')]] = os.path.join(splits_dir, file_name)
  known = list(FOLDER_SPLITS) + list(lists)
  unknown = sorted(set(splits or ()) - set(known))
  if unknown:
    raise BuildError('unknown split(s) %s; known: %s' %
                     (', '.join(unknown), ', '.join(known)))
  for split in known:
    if splits and split not in splits:
      continue
    if split in FOLDER_SPLITS:
      plan[split] = builder.folder_names(FOLDER_SPLITS[split])
    else:
      plan[split] = build_data.read_list(lists[split])
  return plan


def build(coco_root, output_dir, splits_dir=DEFAULT_SPLITS_DIR, num_shards=4,
          splits=None):
  """Checks every listed image, then writes the splits.

  Returns:
    OrderedDict split -> list of image names (in written order).
  """
  mask_api()
  builder = CocoBuilder(coco_root)
  plan = plan_splits(builder, splits_dir, splits)
  for split, names in plan.items():
    if split != 'val':
      plan[split] = names = build_data.shuffled(names)
    for name in names:
      builder.image_record(name, split)
  for split, names in plan.items():
    build_data.write_split(output_dir, split,
                           (builder.example(name) for name in names),
                           len(names), num_shards)
    logging.info('wrote %s: %d images', split, len(names))
  return plan


def define_flags():
  """Defines the script's flags (only when run as a script: the builders share
  flag names, so importing several of them must not define flags)."""
  flags.DEFINE_string('coco_root', None,
                      'Folder with train2017/, val2017/ and annotations/.')
  flags.DEFINE_string('splits_dir', DEFAULT_SPLITS_DIR,
                      'Folder of <split>.txt subset lists (data_splits/coco); '
                      'empty to build none.')
  flags.DEFINE_string('output_dir', None, 'Folder for the tfrecords.')
  flags.DEFINE_integer('num_shards', 4, 'Shards per split.')
  flags.DEFINE_list('splits', None,
                    'Splits to build (e.g. val,32_all); default: all.')


def main(argv):
  if len(argv) > 1:
    raise errors.InputError('unexpected arguments: %s' % ' '.join(argv[1:]))
  for name in ('coco_root', 'output_dir'):
    if not FLAGS[name].value:
      raise errors.InputError('--%s is required' % name)
  build(FLAGS.coco_root, FLAGS.output_dir, FLAGS.splits_dir, FLAGS.num_shards,
        FLAGS.splits)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: errors.run_reporting_errors(main, argv))
