"""Tests for utils/get_dataset_colormap.py and utils/save_annotation.py."""
import os

import numpy as np
import pytest
from PIL import Image

from utils import get_dataset_colormap
from utils import save_annotation
from utils.errors import InputError


def test_pascal_colormap_values():
  colormap = get_dataset_colormap.create_pascal_label_colormap()
  assert colormap.shape == (512, 3) and colormap.dtype == np.uint8
  assert colormap[0].tolist() == [0, 0, 0]
  assert colormap[1].tolist() == [128, 0, 0]
  assert colormap[2].tolist() == [0, 128, 0]
  assert colormap[3].tolist() == [128, 128, 0]
  assert colormap[4].tolist() == [0, 0, 128]
  assert colormap[15].tolist() == [192, 128, 128]
  # 255 = 0b11111111: bits 0-2 -> 128s, bits 3-5 -> 64s, bits 6-7 -> 32 (R, G).
  assert colormap[255].tolist() == [224, 224, 192]
  assert len({tuple(c) for c in colormap}) == 512


def test_cityscapes_colormap_values():
  colormap = get_dataset_colormap.create_cityscapes_label_colormap()
  assert colormap.shape == (256, 3) and colormap.dtype == np.uint8
  assert colormap[0].tolist() == [128, 64, 128]  # road
  assert colormap[1].tolist() == [244, 35, 232]  # sidewalk
  assert colormap[13].tolist() == [0, 0, 142]  # car
  assert colormap[18].tolist() == [119, 11, 32]  # bicycle
  assert not colormap[19:].any()


def test_ade20k_colormap_values():
  colormap = get_dataset_colormap.create_ade20k_label_colormap()
  assert colormap.shape == (151, 3) and colormap.dtype == np.uint8
  assert colormap[0].tolist() == [0, 0, 0]
  assert colormap[1].tolist() == [120, 120, 120]
  assert colormap[150].tolist() == [92, 0, 255]


def test_max_entries():
  assert get_dataset_colormap.get_dataset_colormap_max_entries('pascal') == 512
  assert get_dataset_colormap.get_dataset_colormap_max_entries(
      'cityscapes') == 256
  assert get_dataset_colormap.get_dataset_colormap_max_entries('ade20k') == 151
  with pytest.raises(InputError, match='coco'):
    get_dataset_colormap.get_dataset_colormap_max_entries('coco')


def test_label_to_color_image():
  label = np.array([[0, 1], [2, 15]])
  image = get_dataset_colormap.label_to_color_image(label)
  assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
  assert image.tolist() == [[[0, 0, 0], [128, 0, 0]],
                            [[0, 128, 0], [192, 128, 128]]]
  cityscapes = get_dataset_colormap.label_to_color_image(
      np.array([[0, 255]], np.uint8), 'cityscapes')
  assert cityscapes.tolist() == [[[128, 64, 128], [0, 0, 0]]]


@pytest.mark.parametrize('label, dataset, message', [
    (np.zeros((2, 2, 1), np.int32), 'pascal', '2-D'),
    (np.array([[0, 512]]), 'pascal', r'\[0, 512\)'),
    (np.array([[-1, 0]]), 'pascal', r'\[-1, 0\]'),
    (np.array([[151]]), 'ade20k', 'ade20k'),
    (np.array([[0.5]]), 'pascal', 'integer'),
])
def test_label_to_color_image_errors(label, dataset, message):
  with pytest.raises(InputError, match=message):
    get_dataset_colormap.label_to_color_image(label, dataset)


def _read_png(path):
  with Image.open(path) as image:
    return np.array(image)


def test_save_annotation_with_colormap(tmp_path):
  label = np.array([[0, 1, 2], [15, 1, 0]], np.int64)
  path = save_annotation.save_annotation(label, str(tmp_path / 'out'),
                                         b'2007_000033')
  assert path == str(tmp_path / 'out' / '2007_000033.png')
  np.testing.assert_array_equal(
      _read_png(path), get_dataset_colormap.label_to_color_image(label))
  assert os.listdir(tmp_path / 'out') == ['2007_000033.png']


def test_save_annotation_raw_values(tmp_path):
  label = np.array([[0, 3, 20], [255, 7, 1]], np.int32)
  path = save_annotation.save_annotation(label, str(tmp_path), 'raw',
                                         add_colormap=False)
  saved = _read_png(path)
  assert saved.dtype == np.uint8 and saved.shape == (2, 3)
  np.testing.assert_array_equal(saved, label)
  with pytest.raises(InputError, match='255'):
    save_annotation.save_annotation(label + 1, str(tmp_path), 'bad',
                                    add_colormap=False)
  assert sorted(os.listdir(tmp_path)) == ['raw.png']


def test_save_annotation_normalized_and_scaled(tmp_path):
  values = np.array([[2.0, 4.0], [3.0, 2.0]])
  path = save_annotation.save_annotation(
      values, str(tmp_path), 'prob', add_colormap=False,
      normalize_to_unit_values=True, scale_values=True)
  np.testing.assert_array_equal(_read_png(path), [[0, 255], [128, 0]])
  path = save_annotation.save_annotation(
      np.array([[0.0, 0.5], [1.0, 0.2]]), str(tmp_path), 'scaled',
      add_colormap=False, scale_values=True)
  np.testing.assert_array_equal(_read_png(path), [[0, 128], [255, 51]])


def test_save_overlay(tmp_path):
  image = np.full((3, 4, 3), 100, np.uint8)
  label = np.zeros((3, 4), np.int32)
  label[1, 2] = 1  # (128, 0, 0)
  path = save_annotation.save_overlay(image, label, str(tmp_path), 'overlay',
                                      alpha=0.25)
  overlay = _read_png(path)
  assert overlay.shape == (3, 4, 3)
  assert overlay[1, 2].tolist() == [107, 75, 75]  # .75 * 100 + .25 * colour
  expected_background = np.delete(overlay.reshape(-1, 3), 1 * 4 + 2, axis=0)
  assert (expected_background == 100).all()
  with pytest.raises(InputError, match='sizes differ'):
    save_annotation.save_overlay(image, label[:2], str(tmp_path), 'bad')
  with pytest.raises(InputError, match='alpha'):
    save_annotation.save_overlay(image, label, str(tmp_path), 'bad', alpha=2)


def test_pngs_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask_022):
  label = np.array([[0, 1], [2, 0]], np.int32)
  paths = [
      save_annotation.save_annotation(label, str(tmp_path), 'colour'),
      save_annotation.save_annotation(label, str(tmp_path), 'raw',
                                      add_colormap=False),
      save_annotation.save_overlay(np.zeros((2, 2, 3), np.uint8), label,
                                   str(tmp_path), 'overlay')]
  assert [os.stat(path).st_mode & 0o777 for path in paths] == [umask_022] * 3
  assert sorted(os.listdir(tmp_path)) == ['colour.png', 'overlay.png',
                                          'raw.png']
