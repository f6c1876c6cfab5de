"""Tests of core/method/calibration.py, the one ECE binning rule, on
hand-computed examples."""
import numpy as np
import pytest

from core.method import calibration
from deeplab.tf_compat import tf

# Six pixels, two classes. Valid: 0.95 (correct), 0.75 (wrong), 0.65 (correct),
# 0.55 (correct), 0.75 (wrong); pixel (1, 1) (0.85, wrong) is ignored.
PROBS = np.array([[[[0.95, 0.05], [0.25, 0.75], [0.65, 0.35]],
                   [[0.45, 0.55], [0.85, 0.15], [0.25, 0.75]]]], np.float32)
LABELS = np.array([[[0, 0, 0], [1, 255, 0]]], np.int32)


def _ece(probs, labels, **kwargs):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(
        calibration.expected_calibration_error(
            tf.constant(probs), tf.constant(labels), **kwargs))


def test_ece_hand_example():
  # 5 bins, n_b |acc_b - conf_b| = |#correct - sum conf|:
  # (0.4,0.6] {0.55 ok} 0.45; (0.6,0.8] {0.75 x, 0.65 ok, 0.75 x} |1 - 2.15|;
  # (0.8,1] {0.95 ok} 0.05.
  assert _ece(PROBS, LABELS, num_bins=5) == pytest.approx(
      (0.45 + 1.15 + 0.05) / 5., rel=1e-5)
  # 15 bins separate 0.65 (bin 9) from the two 0.75 (bin 11).
  assert _ece(PROBS, LABELS[..., None]) == pytest.approx(
      (0.45 + 0.35 + 1.5 + 0.05) / 5., rel=1e-5)


def test_ece_perfectly_calibrated_and_empty():
  probs = np.array([[[[1., 0.], [0., 1.]]]], np.float32)
  assert _ece(probs, np.array([[[0, 1]]])) == pytest.approx(0., abs=1e-7)
  assert _ece(probs, np.array([[[1, 0]]])) == pytest.approx(1., rel=1e-6)
  assert _ece(probs, np.full([1, 1, 2], 255)) == 0.


def test_confidence_bins_are_right_closed_and_ignore_the_ignore_label():
  # Confidences 0.5, 0.75, 1.0, 0.0 (all classes 0) and one ignored pixel;
  # 4 bins (0, .25], (.25, .5], (.5, .75], (.75, 1], 0 in the first.
  probs = np.array([[[[.5, .5], [.25, .75], [1., 0.], [0., 0.], [.6, .4]]]],
                   np.float32)
  labels = np.array([[[0, 0, 0, 1, 255]]], np.int32)
  with tf.Graph().as_default(), tf.Session() as sess:
    confidence, correct, bins = sess.run(calibration.confidence_bins(
        tf.constant(probs), tf.constant(labels), 255, 4))
  np.testing.assert_array_equal(confidence, [.5, .75, 1., 0.])
  np.testing.assert_array_equal(correct, [1., 0., 1., 0.])  # argmax 0, 1, 0, 0
  np.testing.assert_array_equal(bins, [1, 2, 3, 0])


def test_ece_of_summed_statistics_is_the_batch_ece():
  with tf.Graph().as_default(), tf.Session() as sess:
    statistics, batch_ece = sess.run([
        calibration.reliability_statistics(
            tf.constant(PROBS), tf.constant(LABELS), 255, num_bins=5),
        calibration.expected_calibration_error(
            tf.constant(PROBS), tf.constant(LABELS), num_bins=5)])
  # Bins of 0.55 | 0.75 x, 0.65, 0.75 x | 0.95 (test_ece_hand_example).
  np.testing.assert_allclose(statistics, [[0, 0, 1, 3, 1],
                                          [0, 0, .55, 2.15, .95],
                                          [0, 0, 1, 1, 1]], rtol=1e-6)
  expected = (0.45 + 1.15 + 0.05) / 5.
  assert calibration.ece_of_statistics(statistics) == pytest.approx(
      expected, rel=1e-6)
  assert batch_ece == pytest.approx(expected, rel=1e-5)
  # Two copies of the batch: the same pixels twice, the same ECE.
  assert calibration.ece_of_statistics(2 * statistics) == pytest.approx(
      expected, rel=1e-6)
  assert calibration.ece_of_statistics(np.zeros([3, 5])) is None
