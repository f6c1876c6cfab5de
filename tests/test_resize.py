"""Tests of deeplab/resize.py against hand computations and TF's ops."""
import numpy as np

from deeplab import resize
from deeplab.tf_compat import tf


def _run(tensor):
  with tf.Session() as sess:
    return sess.run(tensor)


def test_bilinear_ac_keeps_corners_and_interpolates_midpoints():
  with tf.Graph().as_default():
    images = tf.constant([[0.0, 2.0], [4.0, 6.0]])[tf.newaxis, :, :, tf.newaxis]
    resized = _run(resize.bilinear_ac(images, [3, 3]))[0, :, :, 0]
  np.testing.assert_array_equal(resized, [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


def test_nearest_ac_rounds_to_the_nearest_source_and_keeps_dtype():
  with tf.Graph().as_default():
    labels = tf.constant([[[1], [2], [3]]], tf.int32)[tf.newaxis]  # 1 x 3
    resized = resize.nearest_ac(labels, [1, 5])
    assert resized.dtype == tf.int32
    # Source positions 0, .5, 1, 1.5, 2 rounded half away from zero.
    np.testing.assert_array_equal(_run(resized)[0, 0, :, 0], [1, 2, 2, 3, 3])


def test_labels_nearest_legacy_takes_the_top_left_source_and_squeezes():
  labels = np.arange(16, dtype=np.int64).reshape([1, 4, 4, 1])
  with tf.Graph().as_default():
    resized = resize.labels_nearest_legacy(tf.constant(labels), [2, 2])
    assert resized.dtype == tf.int32
    # Legacy: source = floor(dst * 4 / 2) -> rows/columns 0 and 2.
    np.testing.assert_array_equal(_run(resized), [[[0, 2], [8, 10]]])


def test_bilinear_aa_filters_with_a_widened_triangle_when_downscaling():
  image = np.array([[0.0, 4.0, 8.0, 12.0]], np.float32)[:, :, np.newaxis]
  with tf.Graph().as_default():
    resized = _run(resize.bilinear_aa(tf.constant(image), [1, 2]))
  # 2x downscale: the triangle's radius grows to 2 input pixels. Output 0 is
  # centred at input x = 1.0; the source centres 0.5, 1.5, 2.5 weigh 0.75,
  # 0.75, 0.25 (normalised by 1.75); output 1 mirrors it around x = 2.
  expected = [(0 * .75 + 4 * .75 + 8 * .25) / 1.75,
              (4 * .25 + 8 * .75 + 12 * .75) / 1.75]
  np.testing.assert_allclose(resized[0, :, 0], expected, rtol=1e-6)


def test_nearest_ac_numpy_matches_tensorflow():
  np.testing.assert_array_equal(
      resize.nearest_ac_numpy(np.array([[0, 1, 2]]), 1, 5),
      [[0, 1, 1, 2, 2]])
  label = np.random.RandomState(0).randint(0, 21, size=(7, 11))
  sizes = [(13, 5), (7, 11), (3, 20), (1, 1)]
  with tf.Graph().as_default(), tf.Session() as sess:
    for height, width in sizes:
      expected = sess.run(tf.image.resize_nearest_neighbor(
          label[None, :, :, None], [height, width], align_corners=True))
      np.testing.assert_array_equal(
          resize.nearest_ac_numpy(label, height, width),
          expected[0, :, :, 0])
