"""Tests for deeplab/train_utils.py on tiny graphs with hand-computed values."""
import math
import os

import numpy as np
import pytest

from deeplab import train_utils
from deeplab.tf_compat import BATCH_NORM_UPDATES
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

# A 2x2 example with 3 classes. Pixel losses (-log softmax at the label):
#   (0,0) logits [0,0,0],     label 0   -> log 3
#   (0,1) logits [0,5,0],     label 255 -> ignored (would be ~5 as class 0)
#   (1,0) logits [0,0,ln 2],  label 2   -> -log(2/4) = log 2
#   (1,1) logits [0,ln 3,0],  label 1   -> -log(3/5) = log(5/3)
_LOGITS = np.array([[[[0., 0., 0.], [0., 5., 0.]],
                     [[0., 0., math.log(2.)], [0., math.log(3.), 0.]]]],
                   np.float32)
_LABELS = np.array([[[[0], [255]], [[2], [1]]]], np.int32)
_LOG3, _LOG2, _LOG53 = math.log(3.), math.log(2.), math.log(5. / 3.)


def _loss_values(logits, labels, num_classes=3, set_step=None, **kwargs):
  """Builds the loss in a fresh graph; returns (values, added losses)."""
  with tf.Graph().as_default():
    losses = train_utils.add_softmax_cross_entropy_loss_for_each_scale(
        {'merged_logits': tf.constant(logits)}, tf.constant(labels),
        num_classes, 255, scope='semantic', **kwargs)
    collected = tf.losses.get_losses()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      if set_step is not None:
        tf.train.get_global_step().load(set_step, sess)
      return sess.run(losses), losses, collected


def test_cross_entropy_ignores_255_and_normalises_by_valid_pixels():
  values, losses, collected = _loss_values(_LOGITS, _LABELS)
  assert values[0] == pytest.approx((_LOG3 + _LOG2 + _LOG53) / 3, rel=1e-5)
  assert collected == losses
  assert losses[0].op.name.startswith('semantic_merged_logits/')


def test_cross_entropy_all_ignored_is_zero():
  values, _, _ = _loss_values(_LOGITS, np.full_like(_LABELS, 255))
  assert values[0] == 0.0


def test_cross_entropy_per_class_weights():
  values, _, _ = _loss_values(_LOGITS, _LABELS, loss_weight=[1., 2., 3.])
  expected = (1 * _LOG3 + 3 * _LOG2 + 2 * _LOG53) / 3
  assert values[0] == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_zero_class_weight_still_counts_in_the_normaliser():
  """DeepLab divides by the non-ignored pixels, also those weighted 0."""
  values, _, _ = _loss_values(_LOGITS, _LABELS, loss_weight=[0., 2., 3.])
  expected = (0 * _LOG3 + 3 * _LOG2 + 2 * _LOG53) / 3
  assert values[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('loss_weight', [None, np.float32(1.0), 1])
def test_cross_entropy_default_weight_forms(loss_weight):
  values, _, _ = _loss_values(_LOGITS, _LABELS, loss_weight=loss_weight)
  assert values[0] == pytest.approx((_LOG3 + _LOG2 + _LOG53) / 3, rel=1e-5)


def test_cross_entropy_rejects_bad_arguments():
  with pytest.raises(InputError, match='per-class'):
    _loss_values(_LOGITS, _LABELS, loss_weight=[1., 2.])
  with pytest.raises(InputError, match='matting'):
    _loss_values(_LOGITS, _LABELS, gt_is_matting_map=True)
  with pytest.raises(InputError, match='top_k_percent_pixels'):
    _loss_values(_LOGITS, _LABELS, top_k_percent_pixels=0.0)


def test_cross_entropy_gradient_reaches_logits_only():
  with tf.Graph().as_default():
    logits = tf.constant(_LOGITS)
    loss, = train_utils.add_softmax_cross_entropy_loss_for_each_scale(
        {'logits_1.00': logits}, tf.constant(_LABELS), 3, 255)
    gradient, = tf.gradients(loss, [logits])
    with tf.Session() as sess:
      gradient = sess.run(gradient)
  # Softmax - one-hot, / 3 valid pixels; the ignored pixel gets no gradient.
  expected = np.array([1 / 3 - 1, 1 / 3, 1 / 3]) / 3
  np.testing.assert_allclose(gradient[0, 0, 0], expected, rtol=1e-5)
  np.testing.assert_array_equal(gradient[0, 0, 1], 0.0)
  assert loss.op.name.startswith('logits_1.00/')


@pytest.mark.parametrize('top_k, expected', [
    (0.5, (_LOG3 + _LOG2) / 2),  # k = 2 of the 4 pixels.
    (0.75, (_LOG3 + _LOG2 + _LOG53) / 3),  # k = 3.
    (0.25, _LOG3),  # k = 1.
])
def test_top_k_mining_keeps_hardest_pixels(top_k, expected):
  values, _, _ = _loss_values(_LOGITS, _LABELS, top_k_percent_pixels=top_k)
  assert values[0] == pytest.approx(expected, rel=1e-5)


def test_top_k_counts_only_nonzero_losses_among_k():
  # Only (0,0) is valid; k = 2 takes log 3 and a zero -> divide by 1.
  labels = np.array([[[[0], [255]], [[255], [255]]]], np.int32)
  values, _, _ = _loss_values(_LOGITS, labels, top_k_percent_pixels=0.5)
  assert values[0] == pytest.approx(_LOG3, rel=1e-5)


@pytest.mark.parametrize('step, expected', [
    (0, (_LOG3 + _LOG2 + _LOG53) / 3),  # r = 0: k = 4 (the zero is skipped).
    (5, (_LOG3 + _LOG2) / 2),  # r = .5: int((.125 + .5) * 4) = 2.
    (10, _LOG3),  # r = 1: int(.25 * 4) = 1.
    (40, _LOG3),  # r stays 1.
])
def test_top_k_mining_ramp(step, expected):
  values, _, _ = _loss_values(_LOGITS, _LABELS, top_k_percent_pixels=0.25,
                              hard_example_mining_step=10, set_step=step)
  assert values[0] == pytest.approx(expected, rel=1e-5)


def _softmax_ce(logits, labels, ignore=255):
  """Numpy reference: mean CE over non-ignored pixels."""
  logits = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
  labels = labels.reshape(-1)
  log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  valid = labels != ignore
  return -log_probs[valid, labels[valid]].mean()


def test_labels_downsampled_nearest_align_corners_without_upsampling():
  rng = np.random.RandomState(0)
  logits = rng.randn(1, 2, 2, 3).astype(np.float32)
  labels = rng.randint(0, 3, size=(1, 3, 3, 1)).astype(np.int32)
  labels[0, 1, :, 0] = 255  # The middle row is dropped by nearest-AC.
  values, _, _ = _loss_values(logits, labels, upsample_logits=False)
  # Nearest-AC 3 -> 2 keeps source rows/columns round(d * 2) = 0 and 2.
  expected = _softmax_ce(logits, labels[:, ::2, ::2])
  assert values[0] == pytest.approx(expected, rel=1e-5)


def test_logits_upsampled_bilinear_align_corners():
  rng = np.random.RandomState(1)
  logits = rng.randn(1, 2, 2, 3).astype(np.float32)
  labels = rng.randint(0, 3, size=(1, 3, 3, 1)).astype(np.int32)
  # Bilinear-AC 2 -> 3: output 0 and 2 are the corners, 1 is the midpoint.
  rows = np.stack([logits[0, 0], logits[0].mean(axis=0), logits[0, 1]])
  upsampled = np.stack([rows[:, 0], rows.mean(axis=1), rows[:, 1]], axis=1)
  values, _, _ = _loss_values(logits, labels)
  assert values[0] == pytest.approx(_softmax_ce(upsampled, labels), rel=1e-5)


def _learning_rates(steps, **kwargs):
  with tf.Graph().as_default():
    learning_rate = train_utils.get_model_learning_rate(**kwargs)
    global_step = tf.train.get_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      rates = []
      for step in steps:
        global_step.load(step, sess)
        rates.append(sess.run(learning_rate))
  return rates


_SCHEDULE = dict(learning_rate_decay_step=20, learning_rate_decay_factor=0.1,
                 training_number_of_steps=100, learning_power=0.9)


def test_poly_learning_rate_with_slow_start():
  rates = _learning_rates(
      [0, 9, 10, 55, 100, 150], learning_policy='poly', base_learning_rate=0.01,
      slow_start_step=10, slow_start_learning_rate=1e-4, **_SCHEDULE)
  expected = [1e-4, 1e-4, 0.01, 0.01 * (1 - 45 / 90) ** 0.9, 0.0, 0.0]
  np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-9)


def test_poly_learning_rate_decay_steps_and_end_rate():
  rates = _learning_rates(
      [0, 25, 50, 90], learning_policy='poly', base_learning_rate=0.01,
      slow_start_step=0, slow_start_learning_rate=1e-4, decay_steps=50.0,
      end_learning_rate=0.001, **_SCHEDULE)
  expected = [0.01, 0.009 * 0.5 ** 0.9 + 0.001, 0.001, 0.001]
  np.testing.assert_allclose(rates, expected, rtol=1e-5)


def test_step_learning_rate():
  rates = _learning_rates(
      [4, 5, 24, 25, 45, 65], learning_policy='step', base_learning_rate=0.1,
      slow_start_step=5, slow_start_learning_rate=1e-3, **_SCHEDULE)
  # t' = max(t - 5, 0) = 0, 0, 19, 20, 40, 60; t = 4 is in the slow start.
  expected = [1e-3, 0.1, 0.1, 0.01, 0.001, 0.0001]
  np.testing.assert_allclose(rates, expected, rtol=1e-5)


def test_unknown_learning_policy():
  with pytest.raises(InputError, match='cosine'):
    _learning_rates([0], learning_policy='cosine', base_learning_rate=0.01,
                    slow_start_step=0, slow_start_learning_rate=1e-4,
                    **_SCHEDULE)


def test_gradient_multipliers():
  with tf.Graph().as_default():
    images = tf.zeros([1, 5, 5, 3])
    features = slim.conv2d(images, 4, 3, scope='features')
    slim.conv2d(features, 3, 1, scope='logits/semantic')
    slim.conv2d(features, 2, 1, biases_initializer=None,
                scope='xception_65/logits')
    slim.conv2d(features, 2, 1, scope='aspp0')
    multipliers = train_utils.get_model_gradient_multipliers(
        ['logits', 'aspp'], 10.0)
  assert multipliers == {
      'features/biases': 2.0,
      'logits/semantic/weights': 10.0,
      'logits/semantic/biases': 20.0,
      'xception_65/logits/weights': 10.0,
      'aspp0/weights': 10.0,
      'aspp0/biases': 20.0,
  }


def _build_tiny_model(num_classes, extra_variable=False, features_depth=4):
  """Conv `features` (+BN) and 1x1 `logits/semantic` with num_classes."""
  images = tf.zeros([1, 5, 5, 3])
  with slim.arg_scope([slim.batch_norm],
                      updates_collections=BATCH_NORM_UPDATES):
    features = slim.conv2d(images, features_depth, 3, scope='features',
                           normalizer_fn=slim.batch_norm)
  slim.conv2d(features, num_classes, 1, scope='logits/semantic',
              weights_initializer=tf.random_normal_initializer(seed=1))
  if extra_variable:
    tf.get_variable('decoder/weights', [2, 2])
  return tf.train.get_or_create_global_step()


@pytest.fixture(scope='module')
def saved_checkpoint(tmp_path_factory):
  """A 3-class tiny model saved at step 7; returns (prefix, values)."""
  directory = str(tmp_path_factory.mktemp('initial'))
  with tf.Graph().as_default():
    global_step = _build_tiny_model(3)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      # Non-default values everywhere, so a restore is visible.
      rng = np.random.RandomState(0)
      for variable in tf.trainable_variables() + tf.model_variables():
        variable.load(rng.uniform(1, 2, variable.shape.as_list()), sess)
      global_step.load(7, sess)
      values = {v.op.name: sess.run(v) for v in tf.global_variables()}
      saver = tf.train.Saver()
      prefix = saver.save(sess, os.path.join(directory, 'model.ckpt'))
  return prefix, values


def _run_init(init_fn, use_scaffold):
  """Initialises all variables, runs init_fn, returns name -> value."""
  if use_scaffold:
    scaffold = tf.train.Scaffold(init_fn=init_fn)
    with tf.train.MonitoredSession(
        session_creator=tf.train.ChiefSessionCreator(scaffold=scaffold)) as s:
      return {v.op.name: s.run(v) for v in tf.global_variables()}
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    init_fn(sess)
    return {v.op.name: sess.run(v) for v in tf.global_variables()}


@pytest.mark.parametrize('use_scaffold', [True, False])
def test_init_fn_restores_all_but_last_layers(saved_checkpoint, tmp_path,
                                              use_scaffold):
  prefix, saved = saved_checkpoint
  with tf.Graph().as_default():
    _build_tiny_model(5, extra_variable=True)
    init_fn = train_utils.get_model_init_fn(
        str(tmp_path), prefix, initialize_last_layer=False,
        last_layers=['logits'], ignore_missing_vars=True)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      fresh_logits = sess.run('logits/semantic/weights:0')
    restored = _run_init(init_fn, use_scaffold)
  restored_names = [n for n in saved if n.startswith('features/')]
  assert sorted(restored_names) == [
      'features/BatchNorm/beta', 'features/BatchNorm/moving_mean',
      'features/BatchNorm/moving_variance', 'features/weights']
  for name in restored_names:
    np.testing.assert_array_equal(restored[name], saved[name])
  assert restored['global_step'] == 0
  assert restored['logits/semantic/weights'].shape == (1, 1, 4, 5)
  np.testing.assert_array_equal(restored['logits/semantic/weights'],
                                fresh_logits)
  np.testing.assert_array_equal(restored['logits/semantic/biases'], 0.0)


def test_init_fn_accepts_checkpoint_directory(saved_checkpoint, tmp_path):
  prefix, saved = saved_checkpoint
  with tf.Graph().as_default():
    _build_tiny_model(3)
    init_fn = train_utils.get_model_init_fn(
        str(tmp_path), os.path.dirname(prefix), initialize_last_layer=True,
        last_layers=['logits'])
    restored = _run_init(init_fn, use_scaffold=False)
  np.testing.assert_array_equal(restored['logits/semantic/weights'],
                                saved['logits/semantic/weights'])


def test_init_fn_shape_mismatch_is_an_input_error(saved_checkpoint, tmp_path):
  prefix, _ = saved_checkpoint
  with tf.Graph().as_default():
    _build_tiny_model(5)
    with pytest.raises(InputError) as error:
      train_utils.get_model_init_fn(str(tmp_path), prefix, True, ['logits'])
  message = str(error.value)
  assert 'logits/semantic/weights' in message
  assert '[1, 1, 4, 5]' in message and '[1, 1, 4, 3]' in message
  assert '--initialize_last_layer=false' in message


def test_init_fn_logs_missing_variables_once(saved_checkpoint, tmp_path,
                                             monkeypatch):
  prefix, _ = saved_checkpoint
  lines = []
  monkeypatch.setattr(train_utils.logging, 'info',
                      lambda fmt, *args: lines.append(fmt % args))
  with tf.Graph().as_default():
    _build_tiny_model(3, extra_variable=True)
    tf.get_variable('aspp0/weights', [1])
    train_utils.get_model_init_fn(str(tmp_path), prefix, True, ['logits'],
                                  ignore_missing_vars=True)
  missing_lines = [line for line in lines if 'not in checkpoint' in line]
  assert len(missing_lines) == 1
  assert missing_lines[0].startswith('2 variables')
  assert 'decoder/weights' in missing_lines[0]
  assert 'aspp0/weights' in missing_lines[0]


def test_init_fn_missing_variables_error_unless_ignored(saved_checkpoint,
                                                        tmp_path):
  prefix, _ = saved_checkpoint
  with tf.Graph().as_default():
    _build_tiny_model(3, extra_variable=True)
    with pytest.raises(InputError, match='1 variables missing.*decoder'):
      train_utils.get_model_init_fn(str(tmp_path), prefix, True, ['logits'])


def test_init_fn_none_without_checkpoint_or_when_resuming(saved_checkpoint):
  prefix, _ = saved_checkpoint
  with tf.Graph().as_default():
    _build_tiny_model(3)
    assert train_utils.get_model_init_fn('/nonexistent', None, True,
                                         ['logits']) is None
    # The saved checkpoint's directory stands in for a train_logdir that
    # already holds a checkpoint: training resumes from it.
    assert train_utils.get_model_init_fn(os.path.dirname(prefix), prefix,
                                         True, ['logits']) is None


def test_init_fn_bad_paths(tmp_path):
  garbage = tmp_path / 'garbage.ckpt'
  garbage.write_bytes(b'not a checkpoint')
  empty_dir = tmp_path / 'empty'
  empty_dir.mkdir()
  with tf.Graph().as_default():
    _build_tiny_model(3)
    for path in [str(tmp_path / 'missing' / 'model.ckpt'), str(garbage),
                 str(empty_dir)]:
      with pytest.raises(InputError, match=path):
        train_utils.get_model_init_fn(str(tmp_path / 'logdir'), path, True,
                                      ['logits'])
