"""Tests of core/method/attention.py: hypercolumn, SGC v1/v2, names, gradients."""
import numpy as np
import pytest

from core.method import attention
from deeplab.tf_compat import tf
from utils.errors import InputError

BATCH, SIZE, DEPTH, CLASSES, DIM = 2, 3, 5, 2, 4
V2_VARIABLES = [
    'hyper_column/key/weights:0', 'hyper_column/query/weights:0',
    'pixel_normalization/weights:0', 'pixel_normalization/BatchNorm/beta:0',
    'pixel_normalization/BatchNorm/moving_mean:0',
    'pixel_normalization/BatchNorm/moving_variance:0'
]
V1_VARIABLES = [
    'hyper_column/key/weights:0', 'hyper_column/query/weights:0',
    'pixel_normalization/weights:0', 'pixel_normalization/biases:0'
]


def _inputs():
  rng = np.random.RandomState(0)
  features = rng.normal(size=(BATCH, SIZE, SIZE, DEPTH)).astype(np.float32)
  cams = rng.uniform(size=(BATCH, SIZE, SIZE, CLASSES)).astype(np.float32)
  valid = np.ones((BATCH, SIZE, SIZE, 1), np.float32)
  valid[0, 2, :] = 0.
  valid[1, 0, 0] = 0.
  return features, cams, valid


def _np_attention(features, cams, valid, key, query):
  """Masked softmax(QK^T / sqrt(d)) V in numpy; key/query are [F, d]."""
  flat = features.reshape(BATCH, -1, DEPTH)
  keys, queries = flat @ key, flat @ query
  logits = queries @ keys.transpose(0, 2, 1) / np.sqrt(key.shape[1])
  flat_valid = valid.reshape(BATCH, -1)
  # In float32, as in the graph: -1e9 swamps the logits of masked pairs.
  logits = logits.astype(np.float32) + np.float32(-1e9) * (
      1. - flat_valid[:, :, None] * flat_valid[:, None, :])
  logits -= logits.max(axis=-1, keepdims=True)
  weights = np.exp(logits)
  weights /= weights.sum(axis=-1, keepdims=True)
  return (weights @ cams.reshape(BATCH, -1, CLASSES)).reshape(cams.shape)


def _np_batch_norm(x):
  mean = x.mean(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-3)


def _run_twice(version, features, cams, valid):
  """Builds SGC twice (two clone name scopes); returns graph and outputs."""
  graph = tf.Graph()
  with graph.as_default():
    outputs = []
    for clone in ('clone_0', 'clone_1'):
      with tf.name_scope(clone):
        outputs.append(
            attention.self_attention(
                tf.constant(features), tf.constant(cams), tf.constant(valid),
                att_v2=version == 2, attention_dim=DIM))
  return graph, outputs


@pytest.fixture(scope='module')
def v2_results():
  features, cams, valid = _inputs()
  graph, outputs = _run_twice(2, features, cams, valid)
  with graph.as_default(), tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    variables = {v.op.name: v for v in tf.global_variables()}
    names = [v.name for v in tf.global_variables()]
    weights = sess.run({name: v for name, v in variables.items()})
    logits, repeated = sess.run(outputs)
    for name in ('hyper_column/key/weights', 'hyper_column/query/weights'):
      variables[name].load(np.zeros([1, 1, DEPTH, DIM]), sess)
    uniform_logits = sess.run(outputs[0])
    num_update_ops = len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
  return dict(features=features, cams=cams, valid=valid, names=names,
              weights=weights, logits=logits, repeated=repeated,
              uniform_logits=uniform_logits, num_update_ops=num_update_ops)


def _v2_reference(r, attended):
  scores = attended + r['cams']
  scores = np.concatenate([2. - scores.max(axis=3, keepdims=True), scores], 3)
  projected = scores @ r['weights']['pixel_normalization/weights'][0, 0]
  return _np_batch_norm(projected)


def test_v2_variable_names_and_reuse(v2_results):
  assert sorted(v2_results['names']) == sorted(V2_VARIABLES)
  # BN always in training mode: one mean + one variance update per call.
  assert v2_results['num_update_ops'] == 4


def test_v2_matches_numpy_reference(v2_results):
  r = v2_results
  attended = _np_attention(r['features'], r['cams'], r['valid'],
                           r['weights']['hyper_column/key/weights'][0, 0],
                           r['weights']['hyper_column/query/weights'][0, 0])
  assert r['logits'].shape == (BATCH, SIZE, SIZE, CLASSES + 1)
  np.testing.assert_allclose(r['logits'], _v2_reference(r, attended),
                             atol=1e-4)
  np.testing.assert_allclose(r['repeated'], r['logits'], atol=1e-6)


def test_v2_equal_keys_give_mean_of_valid_values_plus_skip(v2_results):
  r = v2_results
  cams, valid = r['cams'], r['valid']
  attended = np.zeros_like(cams)
  for n in range(BATCH):
    valid_mean = cams[n][valid[n, :, :, 0] > 0].mean(axis=0)
    all_mean = cams[n].reshape(-1, CLASSES).mean(axis=0)
    # Valid queries average the valid keys only; invalid queries (fully
    # masked rows) become uniform over all keys.
    attended[n] = np.where(valid[n] > 0, valid_mean, all_mean)
  np.testing.assert_allclose(r['uniform_logits'], _v2_reference(r, attended),
                             atol=1e-4)


def test_masked_keys_get_no_weight():
  features, cams, valid = _inputs()
  cams_with_outliers = cams.copy()
  cams_with_outliers[valid[..., 0] == 0] = 1e3
  results = []
  for values in (cams, cams_with_outliers):
    graph, outputs = _run_twice(1, features, values, valid)
    with graph.as_default(), tf.Session() as sess:
      for variable in tf.global_variables():
        variable.load(np.full(variable.shape.as_list(), 0.1), sess)
      results.append(sess.run(outputs[0]))
  query_valid = valid[..., 0] > 0
  np.testing.assert_allclose(results[0][query_valid], results[1][query_valid],
                             rtol=1e-5)


def test_v1_values_names_and_background():
  features, cams, valid = _inputs()
  graph, outputs = _run_twice(1, features, cams, valid)
  with graph.as_default(), tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    names = [v.name for v in tf.global_variables()]
    assert sorted(names) == sorted(V1_VARIABLES)
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    variables = {v.op.name: v for v in tf.global_variables()}
    bias = np.array([0.5, -1., 2.])
    variables['pixel_normalization/biases'].load(bias, sess)
    weights = sess.run({name: v for name, v in variables.items()})
    logits = sess.run(outputs[1])
  attended = _np_attention(features, cams, valid,
                           weights['hyper_column/key/weights'][0, 0],
                           weights['hyper_column/query/weights'][0, 0])
  scores = np.concatenate([1. - attended.max(axis=3, keepdims=True), attended],
                          3)
  expected = scores @ weights['pixel_normalization/weights'][0, 0] + bias
  np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_hypercolumn_resizes_with_align_corners_and_keeps_order():
  with tf.Graph().as_default():
    small = tf.constant([[[[0.], [2.]], [[4.], [6.]]]])
    large = tf.fill([1, 3, 3, 2], 7.)
    end_points = {'small': small, 'large': large}
    column = attention.hypercolumn(end_points, ['small', 'large'], [3, 3])
    assert tf.gradients(column, [small, large]) == [None, None]
    with pytest.raises(InputError, match='missing'):
      attention.hypercolumn(end_points, ['missing'], [3, 3])
    with tf.Session() as sess:
      column = sess.run(column)
  np.testing.assert_allclose(column[0, :, :, 0],
                             [[0., 1., 2.], [2., 3., 4.], [4., 5., 6.]])
  np.testing.assert_array_equal(column[..., 1:], np.full([1, 3, 3, 2], 7.))


@pytest.mark.parametrize('att_v2', [True, False])
def test_attention_loss_trains_only_attention_variables(att_v2):
  features, cams, valid = _inputs()
  with tf.Graph().as_default():
    backbone = tf.Variable(features, name='backbone')
    cam_source = tf.Variable(cams, name='cam_source')
    column = attention.hypercolumn({'a': backbone * 2., 'b': backbone},
                                   ['a', 'b'], [SIZE, SIZE])
    logits = attention.self_attention(column, cam_source, valid, att_v2=att_v2,
                                      attention_dim=DIM)
    loss = tf.reduce_sum(logits * tf.random.normal(tf.shape(logits)))
    variables = tf.trainable_variables()
    grads = dict(zip([v.op.name for v in variables],
                     tf.gradients(loss, variables)))
    # Also without the hypercolumn helper's stop_gradient.
    raw_logits = attention.self_attention(tf.concat([backbone, backbone], 3),
                                          cam_source, valid,
                                          att_v2=att_v2, attention_dim=DIM)
    assert tf.gradients(raw_logits, [backbone, cam_source]) == [None, None]
  assert grads.pop('backbone') is None
  assert grads.pop('cam_source') is None
  assert all(g is not None for g in grads.values())
  assert sorted(grads) == sorted(
      name[:-2] for name in (V2_VARIABLES if att_v2 else V1_VARIABLES)
      if 'moving' not in name)
