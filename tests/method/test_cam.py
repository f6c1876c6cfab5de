"""Tests of core/method/cam.py: Grad-CAM against numpy references."""
import numpy as np
import pytest

from core.method import cam
from deeplab.tf_compat import tf

BATCH, HEIGHT, WIDTH, DEPTH, CLASSES = 3, 2, 3, 4, 3


def _normalize(cams):
  """Numpy version of the per-sample, per-class max normalisation."""
  peak = cams.max(axis=(1, 2), keepdims=True)
  return np.where(peak > 0, cams / np.maximum(1e-5, peak), 0.)


def _reference(features, channel_weights, labels):
  """ReLU(sum_k weight * A) for weights [K, (w,) F] -> masked, normalised."""
  maps = [np.maximum(np.sum(channel_weights[c] * features, axis=-1), 0.)
          for c in range(CLASSES)]
  return _normalize(np.stack(maps, axis=-1) * labels[:, None, None, :])


@pytest.fixture(scope='module')
def head_values():
  """A GAP -> dropout -> 1x1 conv head run in inference and training mode."""
  rng = np.random.RandomState(0)
  features = rng.uniform(0.1, 1., (BATCH, HEIGHT, WIDTH, DEPTH))
  weights = rng.normal(size=(DEPTH, CLASSES))
  labels = np.array([[1., 1., 0.], [1., 0., 1.], [1., 1., 1.]])
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)
    features_t = tf.constant(features, tf.float32)
    pooled = tf.reduce_mean(features_t, axis=[1, 2])
    dropped = tf.nn.dropout(pooled, rate=0.5)
    results = {}
    for mode, head_input in (('inference', pooled), ('training', dropped)):
      logits = tf.matmul(head_input, tf.constant(weights, tf.float32)) + 0.3
      results[mode] = cam.grad_cam(features_t, logits,
                                   tf.constant(labels, tf.float32))
    # The dropout mask scaled by 1/keep, as used by the forward pass.
    results['mask'] = dropped / pooled
    with tf.Session() as sess:
      values = sess.run(results)
  values.update(features=features, weights=weights, labels=labels)
  return values


def test_inference_mode_matches_closed_form(head_values):
  v = head_values
  channel_weights = v['weights'].T / (HEIGHT * WIDTH)
  expected = _reference(v['features'], channel_weights, v['labels'])
  np.testing.assert_allclose(v['inference'], expected, atol=1e-5)


def test_training_mode_averages_dropout_mask_over_batch(head_values):
  v = head_values
  mask = v['mask']
  assert set(np.round(mask.ravel(), 4)) <= {0., 2.}
  channel_weights = v['weights'].T * mask.mean(axis=0) / (HEIGHT * WIDTH)
  expected = _reference(v['features'], channel_weights, v['labels'])
  np.testing.assert_allclose(v['training'], expected, atol=1e-5)
  # A per-sample Grad-CAM (own mask per image) gives a different result here.
  per_sample = [
      _reference(v['features'][n:n + 1],
                 v['weights'].T * mask[n] / (HEIGHT * WIDTH),
                 v['labels'][n:n + 1])[0] for n in range(BATCH)
  ]
  assert not np.allclose(np.stack(per_sample), expected, atol=1e-3)


def test_absent_classes_zero_and_present_classes_peak_at_one(head_values):
  num_normalized = 0
  for mode in ('inference', 'training'):
    cams = head_values[mode]
    labels = head_values['labels']
    assert cams.min() >= 0. and cams.max() <= 1. + 1e-6
    for n in range(BATCH):
      for c in range(CLASSES):
        peak = cams[n, :, :, c].max()
        if labels[n, c] == 0:
          assert peak == 0.
        elif peak > 0:
          assert peak == pytest.approx(1., abs=1e-6)
          num_normalized += 1
  assert num_normalized >= 4


def test_weights_average_gradient_over_batch_and_rows():
  """With a spatially varying gradient, weights keep the column axis only."""
  rng = np.random.RandomState(3)
  features = rng.normal(size=(BATCH, HEIGHT, WIDTH, DEPTH))
  kernel = rng.normal(size=(HEIGHT, WIDTH, DEPTH, CLASSES))
  labels = np.ones((BATCH, CLASSES))
  with tf.Graph().as_default():
    features_t = tf.constant(features, tf.float32)
    # logit[n, c] = sum_{h,w,k} kernel[h,w,k,c] * A[n,h,w,k]^2 / 2, so
    # dlogit/dA = kernel * A (varies over batch, rows and columns).
    logits = tf.einsum('nhwk,hwkc->nc', tf.square(features_t) / 2.,
                       tf.constant(kernel, tf.float32))
    cams_t = cam.grad_cam(features_t, logits, tf.constant(labels))
    with tf.Session() as sess:
      cams = sess.run(cams_t)
  grads = kernel[None] * features[..., None]  # [B, h, w, F, K]
  weights = grads.mean(axis=(0, 1))  # [w, F, K]
  channel_weights = np.moveaxis(weights, -1, 0)  # [K, w, F]
  expected = _reference(features, channel_weights, labels)
  np.testing.assert_allclose(cams, expected, atol=1e-5)


def test_all_negative_map_is_zero_not_nan():
  with tf.Graph().as_default():
    features = tf.ones([1, 2, 2, 1])
    logits = -tf.reduce_mean(features, axis=[1, 2])
    cams_t = cam.grad_cam(features, logits, tf.ones([1, 1]))
    assert tf.gradients(cams_t, features) == [None]
    with tf.Session() as sess:
      np.testing.assert_array_equal(sess.run(cams_t), np.zeros([1, 2, 2, 1]))


def test_background_cam_and_predicted_labels():
  with tf.Graph().as_default():
    cams = tf.constant([[[[0.2, 0.7], [0., 0.]]]])
    background = cam.background_cam(cams)
    labels = cam.predicted_class_labels(tf.constant([[-1., 0., 2.]]))
    with tf.Session() as sess:
      background, labels = sess.run([background, labels])
  np.testing.assert_allclose(background, [[[[0.3, 0.2, 0.7], [1., 0., 0.]]]])
  np.testing.assert_array_equal(labels, [[0., 1., 1.]])
  assert labels.dtype == np.float32
