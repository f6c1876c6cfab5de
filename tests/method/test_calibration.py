"""Tests of core/method/calibration.py on a hand-computed example."""
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
