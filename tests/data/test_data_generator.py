"""Tests of core/data/data_generator.py: registry, errors, decoding, training."""
import os

import numpy as np
import pytest

from core.data import data_generator
from core.data import registry
from datasets import build_data
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import InputError

_FIXTURE_NAMES = [b'2007_000033', b'2007_000042', b'2007_000061']
_FIXTURE_SIZES = [(366, 500), (335, 500), (333, 500)]  # (height, width)

# Training images: 80x200 blocks of 20x40 pixels, one class and colour each.
_HEIGHT, _WIDTH = 80, 200
_NUM_TRAIN = 5
_PALETTE = np.array([[10, 20, 30], [200, 40, 40], [40, 200, 40], [40, 40, 200],
                     [220, 220, 30], [30, 220, 220], [220, 30, 220],
                     [250, 250, 250], [90, 60, 20]], np.uint8)


def _block_example(index):
  rows = np.arange(_HEIGHT)[:, None] // 20
  cols = np.arange(_WIDTH)[None, :] // 40
  label = ((rows * 5 + cols + index) % 9).astype(np.uint8)
  return build_data.example_from_arrays('img_%d' % index, _PALETTE[label],
                                        label, 9, image_format='png')


@pytest.fixture(scope='module')
def block_dir(tmp_path_factory):
  """A synthetic dataset_dir with split `4_clean` (5 PNG images, 2 shards)."""
  directory = str(tmp_path_factory.mktemp('blocks'))
  build_data.write_split(directory, '4_clean',
                         (_block_example(i) for i in range(_NUM_TRAIN)),
                         _NUM_TRAIN, num_shards=2)
  return directory


def _next_batches(dataset, count):
  with tf.Graph().as_default():
    samples = dataset.get_one_shot_iterator().get_next()
    with tf.Session() as session:
      return [session.run(samples) for _ in range(count)]


def _train_dataset(directory, batch_size=2, **kwargs):
  options = dict(crop_size=[65, 161], is_training=True, should_shuffle=True,
                 should_repeat=True, num_readers=2)
  options.update(kwargs)
  return data_generator.Dataset('synthetic', '4_clean', directory, batch_size,
                                **options)


def test_registry():
  voc = registry.DATASETS['pascal_voc_seg']
  assert voc.num_classes == 21 and voc.ignore_label == 255
  assert voc.splits_to_sizes['2_clean'] == 732
  assert voc.splits_to_sizes['train_aug'] == 10582
  assert voc.splits_to_sizes['16_clean_3'] == 92
  assert registry.DATASETS['coco'].num_classes == 81
  assert registry.DATASETS['coco'].splits_to_sizes['32_all'] == 3697
  assert registry.DATASETS['ade20k'].ignore_label == 0
  assert registry.DATASETS['cityscapes'].num_classes == 19
  synthetic = registry.DATASETS['synthetic']
  assert synthetic.num_classes == 9 and synthetic.ignore_label == 255
  assert synthetic.splits_to_sizes == {
      'train_aug': 2000, '2_clean': 1000, '4_clean': 500, '8_clean': 250,
      '16_clean_3': 125, '32_clean': 62, '64_clean': 31, '128_clean': 15,
      'val': 300, 'cls_pretrain': 3000}


def test_attributes(format_fixture_dir):
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', format_fixture_dir,
                                   1, [513, 513])
  assert dataset.num_of_classes == 21 and dataset.ignore_label == 255
  assert dataset.files == [os.path.join(format_fixture_dir,
                                        'val-00000-of-00001.tfrecord')]


def test_check_split_returns_descriptor_files_and_size(format_fixture_dir):
  split = registry.check_split('pascal_voc_seg', 'val', format_fixture_dir)
  assert split.descriptor is registry.DATASETS['pascal_voc_seg']
  assert split.files == [os.path.join(format_fixture_dir,
                                      'val-00000-of-00001.tfrecord')]
  assert split.num_images == 1449


def test_unknown_dataset(format_fixture_dir):
  with pytest.raises(InputError,
                     match=r"Unknown dataset 'voc'.*pascal_voc_seg"):
    data_generator.Dataset('voc', 'val', format_fixture_dir, 1, [513, 513])


def test_unknown_split(format_fixture_dir):
  with pytest.raises(InputError,
                     match=r"Unknown split '3_clean'.*16_clean_3, 2_clean"):
    data_generator.Dataset('pascal_voc_seg', '3_clean', format_fixture_dir, 1,
                           [513, 513])


@pytest.mark.parametrize('directory', [None, ''])
def test_missing_dataset_dir(directory):
  with pytest.raises(InputError, match='dataset_dir is not set'):
    data_generator.Dataset('pascal_voc_seg', 'val', directory, 1, [513, 513])


def test_nonexistent_dataset_dir(tmp_path):
  missing = str(tmp_path / 'nowhere')
  with pytest.raises(InputError, match='does not exist'):
    data_generator.Dataset('pascal_voc_seg', 'val', missing, 1, [513, 513])


def test_no_matching_files(format_fixture_dir, tmp_path):
  pattern = os.path.join(format_fixture_dir, 'train-*')
  with pytest.raises(InputError) as raised:
    data_generator.Dataset('pascal_voc_seg', 'train', format_fixture_dir, 1,
                           [513, 513])
  message = str(raised.value)
  assert pattern in message and 'known splits' in message
  assert '2_clean' in message
  with pytest.raises(InputError, match='No tfrecord files match'):
    data_generator.Dataset('pascal_voc_seg', 'val', str(tmp_path), 1,
                           [513, 513])


@pytest.mark.parametrize('kwargs, match', [
    (dict(crop_size=[513]), 'crop_size'),
    (dict(crop_size=[0, 513]), 'crop_size'),
    (dict(batch_size=0), 'batch_size'),
    (dict(strong_weak=True), 'is_training'),
])
def test_bad_arguments(format_fixture_dir, kwargs, match):
  options = dict(batch_size=1, crop_size=[513, 513])
  options.update(kwargs)
  with pytest.raises(InputError, match=match):
    data_generator.Dataset('pascal_voc_seg', 'val', format_fixture_dir,
                           **options)


@pytest.fixture(scope='module')
def fixture_samples(format_fixture_dir):
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', format_fixture_dir,
                                   1, [513, 513], with_cls=True,
                                   output_valid=True, num_readers=2)
  with tf.Graph().as_default():
    samples = dataset.get_one_shot_iterator().get_next()
    shapes = {key: value.get_shape().as_list() for key, value in
              samples.items()}
    results = []
    with tf.Session() as session:
      for _ in range(3):
        results.append(session.run(samples))
      with pytest.raises(tf.errors.OutOfRangeError):
        session.run(samples)
  return shapes, results


def test_fixture_static_shapes(fixture_samples):
  shapes, _ = fixture_samples
  assert shapes[common.IMAGE] == [None, 513, 513, 3]
  assert shapes[common.LABEL] == [None, 513, 513, 1]
  assert shapes[common.VALID] == [None, 513, 513, 1]
  assert shapes[common.CLS_LABEL] == [None, 20]
  assert shapes[common.ORIGINAL_IMAGE] == [None, None, None, 3]


def test_fixture_names_sizes_and_dtypes(fixture_samples):
  _, results = fixture_samples
  assert [r[common.IMAGE_NAME][0] for r in results] == _FIXTURE_NAMES
  assert [(r[common.HEIGHT][0], r[common.WIDTH][0]) for r in results] == (
      _FIXTURE_SIZES)
  sample = results[0]
  assert sample[common.IMAGE].dtype == np.float32
  assert sample[common.LABEL].dtype == np.int32
  assert sample[common.VALID].dtype == np.int32
  assert sample[common.ORIGINAL_IMAGE].dtype == np.uint8
  assert sample[common.HEIGHT].dtype == np.int64


def test_fixture_padding(fixture_samples):
  _, results = fixture_samples
  for result, (height, width) in zip(results, _FIXTURE_SIZES):
    image = result[common.IMAGE][0]
    label = result[common.LABEL][0, :, :, 0]
    original = result[common.ORIGINAL_IMAGE][0]
    assert original.shape == (height, width, 3)
    np.testing.assert_array_equal(image[:height, :width], original)
    assert (image[height:] == 127.5).all() and (image[:, width:] == 127.5).all()
    assert (label[height:] == 255).all() and (label[:, width:] == 255).all()
    inside = label[:height, :width]
    # The fixture's labels are random 0..254 (not checked at read time).
    assert inside.min() == 0 and inside.max() == 254
    expected_valid = np.zeros((513, 513), np.int32)
    expected_valid[:height, :width] = 1
    np.testing.assert_array_equal(result[common.VALID][0, :, :, 0],
                                  expected_valid)
    expected_cls = np.zeros(20, np.float32)
    present = np.unique(inside[(inside > 0) & (inside < 21)])
    expected_cls[present - 1] = 1
    np.testing.assert_array_equal(result[common.CLS_LABEL][0], expected_cls)


def test_eval_batches_pad_original_images(format_fixture_dir):
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', format_fixture_dir,
                                   3, [513, 513])
  (batch,) = _next_batches(dataset, 1)
  assert batch[common.IMAGE].shape == (3, 513, 513, 3)
  original = batch[common.ORIGINAL_IMAGE]
  assert original.shape == (3, 366, 500, 3)
  assert (original[1, 335:] == 0).all()
  np.testing.assert_array_equal(batch[common.IMAGE][1, :335, :500],
                                original[1, :335])


def test_corrupt_record_fails_clearly(tmp_path):
  with open(tmp_path / 'val-00000-of-00001.tfrecord', 'wb') as stream:
    stream.write(b'this is not a tfrecord at all' * 10)
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', str(tmp_path), 1,
                                   [65, 65])
  with pytest.raises(tf.errors.DataLossError):
    _next_batches(dataset, 1)


def test_undecodable_image_fails_clearly(tmp_path):
  example = build_data.image_seg_to_tfexample(
      b'garbage', 'bad', 4, 4, build_data.encode_image(np.zeros((4, 4)), 'png'))
  build_data.write_split(str(tmp_path), 'val', [example], 1, num_shards=1)
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', str(tmp_path), 1,
                                   [65, 65])
  with pytest.raises(tf.errors.InvalidArgumentError):
    _next_batches(dataset, 1)


def test_eval_image_larger_than_crop_fails_clearly(format_fixture_dir):
  dataset = data_generator.Dataset('pascal_voc_seg', 'val', format_fixture_dir,
                                   1, [321, 513])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='larger than the eval crop'):
    _next_batches(dataset, 1)


def test_test_split_has_no_label(block_dir, monkeypatch):
  descriptor = registry.DatasetDescriptor({'test': 5}, 9, 255)
  monkeypatch.setitem(registry.DATASETS, 'unlabeled', descriptor)
  os.symlink(os.path.join(block_dir, '4_clean-00000-of-00002.tfrecord'),
             os.path.join(block_dir, 'test-00000-of-00001.tfrecord'))
  try:
    with pytest.raises(InputError, match='no labels'):
      data_generator.Dataset('unlabeled', 'test', block_dir, 1, [81, 201],
                             with_cls=True)
    dataset = data_generator.Dataset('unlabeled', 'test', block_dir, 1,
                                     [81, 201], output_valid=True)
    (batch,) = _next_batches(dataset, 1)
  finally:
    os.remove(os.path.join(block_dir, 'test-00000-of-00001.tfrecord'))
  assert common.LABEL not in batch
  assert batch[common.VALID][0, :80, :200].all()


def _check_strong_weak_sample(image, strong, label, valid, cls_label):
  """Checks one training sample of the block images (docs/DESIGN.md §Data flow)."""
  label, valid = label[:, :, 0], valid[:, :, 0]
  # Integer image colours are never 127.5: that value marks padding.
  padding = (image == 127.5).all(axis=-1)
  cutout = (label == 255) & ~padding
  rows = np.flatnonzero(cutout.any(axis=1))
  cols = np.flatnonzero(cutout.any(axis=0))
  # The cut-out is one (clipped) square of side <= 100, here inside the crop.
  assert cutout.sum() == rows.size * cols.size > 0
  assert rows.size <= 100 and cols.size <= 100
  assert (strong[cutout] == 127.5).all() and (strong[padding] == 127.5).all()
  np.testing.assert_array_equal(valid, (~padding & ~cutout).astype(np.int32))
  # The weak view is untouched under the cut-out: still block colours.
  colours = {tuple(colour) for colour in _PALETTE.astype(np.float32)}
  assert {tuple(pixel) for pixel in image[cutout]} <= colours
  # Weak view, label and strong view share the geometry: on visible pixels
  # the weak image is the label's colour and the strong view is one colour per
  # label (a per-pixel colour transform of the weak view).
  visible = valid == 1
  np.testing.assert_array_equal(image[visible], _PALETTE[label[visible]])
  for value in np.unique(label[visible]):
    pixels = strong[visible & (label == value)]
    np.testing.assert_allclose(pixels, np.broadcast_to(pixels[0], pixels.shape),
                               atol=1e-3)
  assert np.abs(strong[visible] - image[visible]).max() > 0.5
  assert strong.min() >= 0 and strong.max() <= 255
  expected_cls = np.zeros(8, np.float32)
  present = np.unique(label[label < 255])
  expected_cls[present[present > 0] - 1] = 1
  np.testing.assert_array_equal(cls_label, expected_cls)


def test_strong_weak_training_samples(block_dir):
  dataset = _train_dataset(block_dir, with_cls=True, strong_weak=True,
                           output_valid=True, seed=3)
  batches = _next_batches(dataset, 4)
  names = set()
  for batch in batches:
    assert batch[common.IMAGE].shape == (2, 65, 161, 3)
    assert batch[common.STRONG].shape == (2, 65, 161, 3)
    assert batch[common.LABEL].shape == (2, 65, 161, 1)
    assert batch[common.CLS_LABEL].shape == (2, 8)
    for i in range(2):
      _check_strong_weak_sample(
          batch[common.IMAGE][i], batch[common.STRONG][i],
          batch[common.LABEL][i], batch[common.VALID][i],
          batch[common.CLS_LABEL][i])
    names.update(batch[common.IMAGE_NAME])
    assert (batch[common.HEIGHT] == _HEIGHT).all()
    assert (batch[common.WIDTH] == _WIDTH).all()
  assert len(names) >= 3
  assert names <= {b'img_%d' % i for i in range(_NUM_TRAIN)}


def test_scaled_training_samples_valid_marks_padding(block_dir):
  dataset = _train_dataset(block_dir, batch_size=3, crop_size=[65, 65],
                           min_scale_factor=0.5, max_scale_factor=2.,
                           scale_factor_step_size=0.25, with_cls=True,
                           output_valid=True, seed=11)
  padded_pixels = 0
  for batch in _next_batches(dataset, 3):
    assert sorted(batch) == sorted([
        common.IMAGE, common.LABEL, common.VALID, common.CLS_LABEL,
        common.IMAGE_NAME, common.HEIGHT, common.WIDTH])
    for i in range(3):
      image = batch[common.IMAGE][i]
      label = batch[common.LABEL][i, :, :, 0]
      valid = batch[common.VALID][i, :, :, 0]
      padding = valid == 0
      assert (image[padding] == 127.5).all() and (label[padding] == 255).all()
      assert (label[~padding] < 9).all()
      padded_pixels += padding.sum()
      expected_cls = np.zeros(8, np.float32)
      present = np.unique(label[(label > 0) & (label < 255)])
      expected_cls[present - 1] = 1
      np.testing.assert_array_equal(batch[common.CLS_LABEL][i], expected_cls)
  # Scale 0.5 gives 40-row images, padded to the 65 crop.
  assert padded_pixels > 0


def test_training_drops_ragged_batch(block_dir):
  dataset = _train_dataset(block_dir, batch_size=3, should_repeat=False)
  with tf.Graph().as_default():
    samples = dataset.get_one_shot_iterator().get_next()
    assert samples[common.IMAGE].get_shape().as_list() == [3, 65, 161, 3]
    with tf.Session() as session:
      session.run(samples)
      with pytest.raises(tf.errors.OutOfRangeError):
        session.run(samples)


def test_seeded_pipelines_repeat(block_dir):
  def batches(seed):
    return _next_batches(
        _train_dataset(block_dir, min_scale_factor=0.5, max_scale_factor=2.,
                       scale_factor_step_size=0.25, strong_weak=True,
                       output_valid=True, with_cls=True, seed=seed), 4)

  first, second, other = batches(5), batches(5), batches(6)
  for a, b in zip(first, second):
    assert sorted(a) == sorted(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert any(not np.array_equal(a[common.STRONG], c[common.STRONG])
             for a, c in zip(first, other))
  # Epochs draw fresh augmentations: 8 samples of 5 images hold a repeated
  # image, with different crops or colours each time.
  seen = {}
  repeated = False
  for batch in first:
    for name, strong in zip(batch[common.IMAGE_NAME], batch[common.STRONG]):
      if name in seen:
        repeated = True
        assert not np.array_equal(seen[name], strong)
      seen[name] = strong
  assert repeated
