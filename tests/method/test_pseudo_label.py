"""Tests of core/method/pseudo_label.py on hand-computed examples."""
import numpy as np
import pytest

from core.method import pseudo_label
from core.method import wss_losses
from deeplab.tf_compat import tf
from utils.errors import InputError


def _softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _run(fetches):
  with tf.Session() as sess:
    return sess.run(fetches)


# [1, 1, 2, 2] decoder and SGC logits.
DECODER = np.array([[[[1., -1.], [0., 3.]]]], np.float32)
ATTENTION = np.array([[[[2., 2.], [-2., 0.]]]], np.float32)
# mean(Z^2) = (1 + 1 + 0 + 9 + 4 + 4 + 4 + 0) / 8 = 23 / 8.
SCALE = 1. / np.sqrt(23. / 8.)


def test_logit_norm_scale_is_one_global_rms():
  with tf.Graph().as_default():
    scale = pseudo_label.logit_norm_scale(tf.constant(DECODER),
                                          tf.constant(ATTENTION))
    assert scale.shape.ndims == 0
    assert _run(scale) == pytest.approx(SCALE, rel=1e-6)


@pytest.mark.parametrize('pseudo_src,logit_norm,use_attention,expected', [
    ('avg', True, True,
     0.5 * (_softmax(SCALE * DECODER) + _softmax(SCALE * ATTENTION))),
    ('avg', False, True, 0.5 * (_softmax(DECODER) + _softmax(ATTENTION))),
    ('att', True, True, _softmax(ATTENTION)),
    ('avg', True, False, _softmax(DECODER)),
])
def test_fuse_probabilities(pseudo_src, logit_norm, use_attention, expected):
  with tf.Graph().as_default():
    probs = pseudo_label.fuse_probabilities(
        tf.constant(DECODER),
        tf.constant(ATTENTION) if use_attention else None, pseudo_src,
        logit_norm)
    np.testing.assert_allclose(_run(probs), expected, rtol=1e-5)


def test_fuse_probabilities_rejects_unknown_source():
  with tf.Graph().as_default():
    with pytest.raises(InputError, match='pseudo_src'):
      pseudo_label.fuse_probabilities(tf.constant(DECODER),
                                      tf.constant(ATTENTION), 'max')


def test_sharpen_half_temperature_squares_and_renormalises():
  with tf.Graph().as_default():
    probs = tf.constant([0.6, 0.3, 0.1])
    sharpened = pseudo_label.sharpen(probs, 0.5)
    assert pseudo_label.sharpen(probs, 1.0) is probs
    with pytest.raises(InputError, match='temperature'):
      pseudo_label.sharpen(probs, 0.)
    # [0.36, 0.09, 0.01] / 0.46
    np.testing.assert_allclose(_run(sharpened),
                               [0.36 / 0.46, 0.09 / 0.46, 0.01 / 0.46],
                               rtol=1e-6)


# [1, 1, 3, 3] probabilities: sharpened confidences 0.7826, 0.5, 0.9878.
PROBS = np.array([[[[0.6, 0.3, 0.1], [0.5, 0.5, 0.], [0.1, 0.0, 0.9]]]],
                 np.float32)
VALID = np.array([[[[1], [1], [0]]]], np.int32)


def test_soft_labels_with_threshold_after_sharpening():
  with tf.Graph().as_default():
    targets, mask, confidence = pseudo_label.make_pseudo_labels(
        tf.constant(PROBS), tf.constant(VALID), soft=True, temperature=0.5,
        threshold=0.7)
    targets, mask, confidence = _run([targets, mask, confidence])
  squared = PROBS**2
  np.testing.assert_allclose(targets, squared / squared.sum(-1, keepdims=True),
                             rtol=1e-6)
  np.testing.assert_allclose(confidence, [[[0.36 / 0.46, 0.5, 0.81 / 0.82]]],
                             rtol=1e-6)
  # Pixel 0 passes only thanks to sharpening (0.6 -> 0.78); pixel 2 is padding.
  np.testing.assert_array_equal(mask, [[[1., 0., 0.]]])


def test_hard_labels_are_unsharpened_argmax():
  with tf.Graph().as_default():
    targets, mask, confidence = pseudo_label.make_pseudo_labels(
        tf.constant(PROBS), tf.constant(VALID), soft=False, temperature=0.5,
        threshold=0.7)
    targets, mask, confidence = _run([targets, mask, confidence])
  np.testing.assert_array_equal(targets, [[[0, 0, 2]]])
  assert targets.dtype == np.int32
  np.testing.assert_allclose(confidence, [[[0.6, 0.5, 0.9]]], rtol=1e-6)
  np.testing.assert_array_equal(mask, [[[0., 0., 0.]]])


def test_no_threshold_mask_is_valid():
  with tf.Graph().as_default():
    _, mask, _ = pseudo_label.make_pseudo_labels(
        tf.constant(PROBS), tf.constant(VALID[..., 0]), soft=True,
        temperature=1.0, threshold=0.)
    np.testing.assert_array_equal(_run(mask), [[[1., 1., 0.]]])


@pytest.mark.parametrize('soft', [True, False])
def test_pseudo_targets_have_no_gradient_path(soft):
  with tf.Graph().as_default():
    decoder = tf.constant(DECODER)
    attention = tf.constant(ATTENTION)
    strong = tf.constant(ATTENTION[:, :, ::-1])
    probs = pseudo_label.fuse_probabilities(decoder, attention)
    targets, mask, _ = pseudo_label.make_pseudo_labels(
        probs, tf.ones([1, 1, 2]), soft=soft, threshold=0.5)
    loss = wss_losses.consistency_loss(strong, targets, mask,
                                       tf.ones([1, 1, 2]), soft=soft)
    assert tf.gradients(loss, [decoder, attention]) == [None, None]
    assert tf.gradients(loss, strong)[0] is not None
