"""Tests of core/method/wss_losses.py on hand-computed 2x2 examples."""
import math

import numpy as np
import pytest

from core.method import wss_losses
from deeplab.tf_compat import tf

LN3 = math.log(3.)
# [1, 2, 2, 2] strong logits; pixel (1, 1) is a confident mismatch that lies
# in the cut-out (valid = 0) and must not count.
STRONG = np.array([[[[0., 0.], [LN3, 0.]], [[0., LN3], [50., -50.]]]],
                  np.float32)
SOFT_TARGETS = np.array([[[[1., 0.], [.5, .5]], [[0., 1.], [0., 1.]]]],
                        np.float32)
HARD_TARGETS = np.array([[[0, 1], [1, 1]]], np.int32)
VALID = np.array([[[[1], [1]], [[1], [0]]]], np.int32)
# Per-pixel CE: (0,0) ln 2; (0,1) -(ln 3/4 + ln 1/4)/2 = ln(16/3)/2;
# (1,0) ln(4/3) (soft); hard (0,1) ln 4, (1,0) ln(4/3).
SOFT_PIXELS = [math.log(2.), math.log(16. / 3.) / 2., math.log(4. / 3.)]
HARD_PIXELS = [math.log(2.), math.log(4.), math.log(4. / 3.)]


def _loss(targets, mask, valid, soft):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(
        wss_losses.consistency_loss(
            tf.constant(STRONG), tf.constant(targets), tf.constant(mask),
            tf.constant(valid), soft=soft))


@pytest.mark.parametrize('soft,targets,pixels', [
    (True, SOFT_TARGETS, SOFT_PIXELS),
    (False, HARD_TARGETS, HARD_PIXELS),
])
def test_consistency_loss_ignores_padding_and_cutout(soft, targets, pixels):
  mask = VALID[..., 0].astype(np.float32)
  assert _loss(targets, mask, VALID, soft) == pytest.approx(
      sum(pixels) / 3., rel=1e-5)


@pytest.mark.parametrize('soft,targets,pixels', [
    (True, SOFT_TARGETS, SOFT_PIXELS),
    (False, HARD_TARGETS, HARD_PIXELS),
])
def test_thresholded_mask_keeps_valid_denominator(soft, targets, pixels):
  # Pixel (0, 1) is dropped by a confidence threshold: still divided by 3.
  mask = np.array([[[1., 0.], [1., 0.]]], np.float32)
  assert _loss(targets, mask, VALID[..., 0], soft) == pytest.approx(
      (pixels[0] + pixels[2]) / 3., rel=1e-5)


def test_consistency_loss_is_zero_without_valid_pixels():
  zeros = np.zeros([1, 2, 2], np.float32)
  assert _loss(SOFT_TARGETS, zeros, zeros, True) == 0.


def test_classification_loss_is_mean_sigmoid_ce():
  with tf.Graph().as_default(), tf.Session() as sess:
    loss = sess.run(
        wss_losses.classification_loss(
            tf.constant([[0., LN3]]), tf.constant([[1, 0]])))
  # label 1, logit 0: ln 2; label 0, sigmoid 3/4: -ln(1/4) = ln 4.
  assert loss == pytest.approx(1.5 * math.log(2.), rel=1e-6)


def test_class_balanced_pixel_weights():
  labels = np.array([[[0, 0, 0, 1], [255, 1, 2, 2]]], np.int32)
  with tf.Graph().as_default(), tf.Session() as sess:
    weights = sess.run(
        wss_losses.class_balanced_pixel_weights(
            tf.constant(labels[..., None]), 3, 255))
    empty = sess.run(
        wss_losses.class_balanced_pixel_weights(
            tf.fill([1, 2, 2], 255), 3, 255))
  # Class counts 3, 2, 2 -> 1/3, 1/2, 1/2, normalised by their sum 3.
  expected = [[[1 / 9, 1 / 9, 1 / 9, 1 / 6], [0., 1 / 6, 1 / 6, 1 / 6]]]
  np.testing.assert_allclose(weights[..., 0], expected, rtol=1e-6)
  assert weights.shape == (1, 2, 4, 1)
  np.testing.assert_array_equal(empty, np.zeros([1, 2, 2]))
