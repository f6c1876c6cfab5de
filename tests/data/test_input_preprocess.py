"""Tests of core/data/preprocess_utils.py and core/data/input_preprocess.py."""
import numpy as np
import pytest

from core.data import input_preprocess
from core.data import preprocess_utils
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import InputError


def _run(fetches, feed_dict=None):
  with tf.Session() as session:
    return session.run(fetches, feed_dict)


def _seed(value):
  return tf.constant([value, 7], tf.int64)


def test_pad_to_size_pads_bottom_right():
  with tf.Graph().as_default():
    image = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3, 1))
    padded = _run(preprocess_utils.pad_to_size(image, 3, 5, 127.5))
  expected = np.full((3, 5), 127.5, np.float32)
  expected[:2, :3] = [[0, 1, 2], [3, 4, 5]]
  np.testing.assert_array_equal(padded[:, :, 0], expected)


def test_pad_to_size_rejects_smaller_target():
  with tf.Graph().as_default():
    with pytest.raises(InputError, match='Cannot pad'):
      preprocess_utils.pad_to_size(tf.zeros([4, 4, 1]), 3, 5, 0.)
    dynamic = tf.placeholder(tf.float32, [None, None, 1])
    padded = preprocess_utils.pad_to_size(dynamic, 3, 5, 0.)
    with pytest.raises(tf.errors.InvalidArgumentError, match='Cannot pad'):
      _run(padded, {dynamic: np.zeros([4, 4, 1])})


def test_random_crop_uses_one_offset_for_all_tensors():
  values = np.arange(7 * 9, dtype=np.int32).reshape(7, 9, 1)
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    crops = preprocess_utils.random_crop(
        [tf.constant(values), tf.constant(values * 10)], 4, 5, seed)
    assert crops[0].get_shape().as_list() == [4, 5, 1]
    offsets = set()
    with tf.Session() as session:
      for value in range(20):
        first, second = session.run(crops, {seed: [value, 0]})
        offset_y, offset_x = divmod(int(first[0, 0, 0]), 9)
        np.testing.assert_array_equal(
            first, values[offset_y:offset_y + 4, offset_x:offset_x + 5])
        np.testing.assert_array_equal(second, first * 10)
        offsets.add((offset_y, offset_x))
      again = session.run(crops[0], {seed: [3, 0]})
      np.testing.assert_array_equal(again, session.run(crops[0],
                                                       {seed: [3, 0]}))
  assert len(offsets) > 5
  assert all(0 <= y <= 3 and 0 <= x <= 4 for y, x in offsets)


def test_random_flip_flips_all_tensors_together():
  values = np.arange(6, dtype=np.float32).reshape(1, 6, 1)
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    (first, second), is_flipped = preprocess_utils.random_flip_left_right(
        [tf.constant(values), tf.constant(-values)], seed)
    flips = []
    with tf.Session() as session:
      for value in range(40):
        a, b, flipped = session.run([first, second, is_flipped],
                                    {seed: [value, 1]})
        expected = values[:, ::-1] if flipped else values
        np.testing.assert_array_equal(a, expected)
        np.testing.assert_array_equal(b, -expected)
        flips.append(flipped)
  assert 8 < sum(flips) < 32


def test_random_scale_values():
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    stepped = preprocess_utils.get_random_scale(0.5, 2.0, 0.25, seed)
    continuous = preprocess_utils.get_random_scale(0.5, 2.0, 0, seed)
    fixed = preprocess_utils.get_random_scale(1.5, 1.5, 0.25, seed)
    with tf.Session() as session:
      draws = [session.run([stepped, continuous, fixed], {seed: [i, 2]})
               for i in range(60)]
  stepped_values = {float(d[0]) for d in draws}
  assert stepped_values <= {0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0}
  assert len(stepped_values) >= 5
  assert all(0.5 <= d[1] < 2.0 for d in draws)
  assert len({float(d[1]) for d in draws}) == 60
  assert all(d[2] == 1.5 for d in draws)


@pytest.mark.parametrize('low, high, step', [(0, 1, 0), (2, 1, 0), (1, 2, -1)])
def test_random_scale_rejects_bad_range(low, high, step):
  with tf.Graph().as_default():
    with pytest.raises(InputError, match='scale'):
      preprocess_utils.get_random_scale(low, high, step, _seed(0))


def test_scale_truncates_size_and_uses_nearest_align_corners_for_labels():
  label = np.tile(np.arange(7, dtype=np.int32), (2, 1))[:, :, None]
  with tf.Graph().as_default():
    image = tf.zeros([5, 7, 3])
    scaled_image, _ = preprocess_utils.scale_image_and_label(image, None, 0.75)
    _, scaled_label = preprocess_utils.scale_image_and_label(
        tf.zeros([2, 7, 3]), tf.constant(label), 0.75)
    image_shape, label_value = _run([tf.shape(scaled_image), scaled_label])
  # 5 * 0.75 = 3.75 -> 3, 7 * 0.75 = 5.25 -> 5.
  assert image_shape.tolist() == [3, 5, 3]
  # Source index round(dst * 6 / 4), halves away from zero.
  assert label_value.ravel().tolist() == [0, 2, 3, 5, 6]


def test_scale_keeps_constant_image_constant():
  with tf.Graph().as_default():
    image, _ = preprocess_utils.scale_image_and_label(
        tf.fill([8, 6, 3], 40.), None, 1.75)
    value = _run(image)
  assert value.shape == (14, 10, 3)
  np.testing.assert_allclose(value, 40., atol=1e-4)


@pytest.mark.parametrize('size, min_size, max_size, factor, expected', [
    ((366, 500), 400, None, None, (400, 546)),
    ((366, 500), 400, 500, None, (366, 500)),
    ((366, 500), None, 250, None, (183, 250)),
    # max 500 -> 497 (= 1 mod 16); 366 * 497 / 500 = 363.8 -> 363 -> 369.
    ((366, 500), 513, 500, 16, (369, 497)),
])
def test_resize_to_range_size(size, min_size, max_size, factor, expected):
  with tf.Graph().as_default():
    new_size = _run(preprocess_utils.resize_to_range_size(
        tf.constant(size[0]), tf.constant(size[1]), min_size, max_size,
        factor))
  assert tuple(new_size) == expected


def test_resize_to_range_resizes_image_and_label():
  with tf.Graph().as_default():
    image, label = preprocess_utils.resize_to_range(
        tf.fill([4, 6, 3], 9.), tf.ones([4, 6, 1], tf.int32), min_size=8)
    image, label = _run([image, label])
  assert image.shape == (8, 12, 3) and label.shape == (8, 12, 1)
  np.testing.assert_allclose(image, 9., atol=1e-4)
  assert (label == 1).all()


def test_color_jitter_brightness_only_is_a_clipped_shift():
  values = np.linspace(0, 1, 30, dtype=np.float32).reshape(2, 5, 3)
  with tf.Graph().as_default():
    jittered = preprocess_utils.color_jitter(tf.constant(values), 0.5, 0., 0.,
                                             0., _seed(5))
    result = _run(jittered)
  inside = (result > 0) & (result < 1)
  deltas = (result - values)[inside]
  assert inside.any()
  np.testing.assert_allclose(deltas, deltas[0], atol=1e-5)
  assert abs(deltas[0]) <= 0.5
  np.testing.assert_allclose(result, np.clip(values + deltas[0], 0, 1),
                             atol=1e-5)


def test_color_jitter_is_seeded_and_in_range():
  rng = np.random.RandomState(0)
  values = rng.uniform(size=(6, 7, 3)).astype(np.float32)
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    jittered = preprocess_utils.color_jitter(tf.constant(values), 0.5, 0.5,
                                             0.5, 0.25, seed)
    with tf.Session() as session:
      outputs = [session.run(jittered, {seed: [i, 3]}) for i in (0, 1, 0)]
  for output in outputs:
    assert output.min() >= 0 and output.max() <= 1
  np.testing.assert_array_equal(outputs[0], outputs[2])
  assert np.abs(outputs[0] - outputs[1]).max() > 1e-3


def test_color_jitter_order_is_random():
  # Redraws the brightness delta and contrast factor as color_jitter does
  # (sub-seeds 0 and 1) and checks each result against both orders.
  # Without clipping the two ops commute; values near 0 and 1 make them clip.
  values = np.array([[[0.05, 0.5, 0.95], [0.9, 0.1, 0.6]]], np.float32)
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    sub = preprocess_utils.split_seed(seed, 5)
    delta = tf.random.stateless_uniform([], sub[0], minval=-0.5, maxval=0.5)
    factor = tf.random.stateless_uniform([], sub[1], minval=0.5, maxval=1.5)
    jittered = preprocess_utils.color_jitter(tf.constant(values), 0.5, 0.5, 0.,
                                             0., seed)
    orders = set()
    with tf.Session() as session:
      for i in range(16):
        result, d, f = session.run([jittered, delta, factor], {seed: [i, 4]})
        mean = values.mean(axis=(0, 1))
        brightness_first = np.clip(values + d, 0, 1)
        brightness_first = np.clip(
            (brightness_first - brightness_first.mean(axis=(0, 1))) * f +
            brightness_first.mean(axis=(0, 1)), 0, 1)
        contrast_first = np.clip((values - mean) * f + mean, 0, 1)
        contrast_first = np.clip(contrast_first + d, 0, 1)
        matches = {
            'brightness_first': np.allclose(result, brightness_first,
                                            atol=1e-5),
            'contrast_first': np.allclose(result, contrast_first, atol=1e-5)}
        assert any(matches.values()), result
        if not all(matches.values()):
          orders.update(key for key, match in matches.items() if match)
  assert orders == {'brightness_first', 'contrast_first'}


def test_cutout_mask_hand_computed():
  with tf.Graph().as_default():
    mask = _run(preprocess_utils.cutout_mask(6, 5, 1, 4, 2))
  expected = np.zeros((6, 5), bool)
  expected[0:3, 2:5] = True
  np.testing.assert_array_equal(mask, expected)


def test_random_cutout_fills_one_square_in_every_tensor():
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    image = tf.zeros([30, 40, 3])
    label = tf.ones([30, 40, 1], tf.int32)
    cut_image, cut_label = preprocess_utils.random_cutout(
        [(image, 127.5), (label, 255)], 5, seed)
    with tf.Session() as session:
      for value in range(10):
        a, b = session.run([cut_image, cut_label], {seed: [value, 5]})
        square = b[:, :, 0] == 255
        rows = np.flatnonzero(square.any(axis=1))
        cols = np.flatnonzero(square.any(axis=0))
        assert square.sum() == rows.size * cols.size
        assert 5 <= rows.size <= 10 and 5 <= cols.size <= 10
        assert (a[square] == 127.5).all() and (a[~square] == 0).all()
        assert (b[~square] == 1).all()


def test_image_level_labels():
  label = np.array([[0, 3, 3], [255, 200, 1]], np.int32)
  with tf.Graph().as_default():
    voc_like = preprocess_utils.image_level_labels(tf.constant(label), 5, 255)
    ade_like = preprocess_utils.image_level_labels(tf.constant(label), 5, 0)
    assert voc_like.get_shape().as_list() == [4]
    voc_like, ade_like = _run([voc_like, ade_like])
  np.testing.assert_array_equal(voc_like, [1, 0, 1, 0])
  np.testing.assert_array_equal(ade_like, [0, 0, 0, 0])


def test_eval_preprocessing_pads_to_crop():
  image = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
  label = np.array([[0, 1, 2, 3]] * 3, np.uint8)[:, :, None]
  with tf.Graph().as_default():
    outputs = input_preprocess.preprocess_image_and_label(
        tf.constant(image), tf.constant(label), 5, 6, is_training=False,
        output_valid=True)
    assert outputs[common.IMAGE].get_shape().as_list() == [5, 6, 3]
    assert outputs[common.LABEL].get_shape().as_list() == [5, 6, 1]
    outputs = _run(outputs)
  assert sorted(outputs) == [common.IMAGE, common.LABEL, common.VALID]
  np.testing.assert_array_equal(outputs[common.IMAGE][:3, :4], image)
  assert (outputs[common.IMAGE][3:] == 127.5).all()
  assert (outputs[common.IMAGE][:, 4:] == 127.5).all()
  np.testing.assert_array_equal(outputs[common.LABEL][:3, :4], label)
  assert (outputs[common.LABEL][3:] == 255).all()
  assert (outputs[common.LABEL][:, 4:] == 255).all()
  expected_valid = np.zeros((5, 6, 1), np.int32)
  expected_valid[:3, :4] = 1
  np.testing.assert_array_equal(outputs[common.VALID], expected_valid)


def test_eval_preprocessing_rejects_image_larger_than_crop():
  with tf.Graph().as_default():
    with pytest.raises(InputError, match='larger than the eval crop'):
      input_preprocess.preprocess_image_and_label(
          tf.zeros([7, 4, 3], tf.uint8), None, 5, 6, is_training=False)
    image = tf.placeholder(tf.uint8, [None, None, 3])
    outputs = input_preprocess.preprocess_image_and_label(
        image, None, 5, 6, is_training=False)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='larger than the eval crop'):
      _run(outputs, {image: np.zeros([4, 7, 3])})


def test_eval_preprocessing_with_resize_to_range():
  with tf.Graph().as_default():
    outputs = input_preprocess.preprocess_image_and_label(
        tf.fill([4, 6, 3], 10), tf.zeros([4, 6, 1], tf.uint8), 9, 13,
        min_resize_value=8, is_training=False, output_valid=True)
    outputs = _run(outputs)
  assert outputs[common.VALID][:, :, 0].sum() == 8 * 12
  np.testing.assert_allclose(outputs[common.IMAGE][:8, :12], 10., atol=1e-4)
  assert (outputs[common.LABEL][8:] == 255).all()


def test_strong_weak_requires_training():
  with tf.Graph().as_default():
    with pytest.raises(InputError, match='is_training'):
      input_preprocess.preprocess_image_and_label(
          tf.zeros([4, 4, 3]), None, 4, 4, is_training=False, strong_weak=True)


def test_training_pads_then_crops_valid_marks_scaled_area():
  # Scale 0.5 of a 10x12 image -> 5x6, padded to the 8x8 crop: valid is the
  # top-left 5x6 block (or its mirror after a flip).
  with tf.Graph().as_default():
    seed = tf.placeholder(tf.int64, [2])
    outputs = input_preprocess.preprocess_image_and_label(
        tf.fill([10, 12, 3], 30), tf.fill([10, 12, 1], 2), 8, 8,
        min_scale_factor=0.5, max_scale_factor=0.5, is_training=True,
        output_valid=True, seed=seed)
    assert outputs[common.VALID].get_shape().as_list() == [8, 8, 1]
    with tf.Session() as session:
      for value in range(6):
        result = session.run(outputs, {seed: [value, 6]})
        valid = result[common.VALID][:, :, 0]
        expected = np.zeros((8, 8), np.int32)
        expected[:5, :6] = 1
        assert ((valid == expected).all() or
                (valid == expected[:, ::-1]).all())
        inside = valid == 1
        np.testing.assert_allclose(result[common.IMAGE][inside], 30., atol=1e-4)
        assert (result[common.IMAGE][~inside] == 127.5).all()
        assert (result[common.LABEL][:, :, 0][inside] == 2).all()
        assert (result[common.LABEL][:, :, 0][~inside] == 255).all()
