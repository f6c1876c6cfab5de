"""The speed-ups compute what the formulations they replace compute; the
progress hook fetches its console scalars only on the steps it logs.

The centre-tap depthwise convolution (deeplab/model.py) against TensorFlow's
atrous depthwise convolution: same variables, the same forward values bit for
bit, the same gradients up to float summation order, in one layer and in a
whole DeepLabv3+ training graph at a crop where the ASPP rates exceed the
feature map (crop 33: 3 x 3 features at output stride 16).
"""
import numpy as np
import pytest

from core.method import monitoring
from core.train import hooks
from core.train import model_deploy
from deeplab import common
from deeplab import model
from deeplab.tf_compat import BATCH_NORM_UPDATES
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf


def _random(shape, seed):
  return tf.constant(np.random.RandomState(seed).normal(size=shape),
                     dtype=tf.float32)


def _atrous_formulation(monkeypatch):
  """Makes split_separable_conv2d use TF's atrous depthwise conv everywhere."""
  monkeypatch.setattr(model, 'only_centre_tap_sees_input',
                      lambda *unused_args: False)


def _assert_close_gradients(names, new_values, old_values):
  """Gradients agree up to float summation order relative to their scale
  (train-mode batch norm subtracts means, so small entries cancel)."""
  for name, new_value, old_value in zip(names, new_values, old_values):
    scale = max(1e-6, float(np.abs(old_value).max()))
    np.testing.assert_allclose(new_value, old_value, rtol=1e-4,
                               atol=1e-5 * scale, err_msg=name)


def _values_and_gradients(output, sources):
  loss = tf.reduce_sum(output * _random(output.shape.as_list(), seed=7))
  return [output] + tf.gradients(loss, sources)


@pytest.mark.parametrize('shape, kernel_size, rate, expected', [
    ([2, 9, 9, 4], 3, 18, True),
    ([2, 9, 9, 4], 3, 9, True),
    ([2, 9, 9, 4], 3, 6, False),
    ([2, 4, 9, 4], 3, 6, False),
    ([2, 9, 9, 4], 5, 12, True),
    ([2, 9, 9, 4], 2, 18, False),
    ([2, None, 9, 4], 3, 18, False),
])
def test_only_centre_tap_sees_input(shape, kernel_size, rate, expected):
  with tf.Graph().as_default():
    inputs = tf.placeholder(tf.float32, shape)
    assert model.only_centre_tap_sees_input(inputs, kernel_size,
                                            rate) == expected


def test_centre_tap_layer_equals_atrous_depthwise(monkeypatch):
  with tf.Graph().as_default():
    inputs = _random([2, 4, 5, 8], seed=1)
    # Without batch norm: after a per-channel scale, train-mode batch norm
    # makes the exact depthwise gradient zero and the computed one rounding
    # noise (the model test below covers the layer with batch norm).
    with slim.arg_scope(model._head_arg_scope(
        4e-5, is_training=True, fine_tune_batch_norm=True,
        batch_norm_decay=0.9997, use_bounded_activation=False)), \
        slim.arg_scope([slim.separable_conv2d,
                        model.centre_tap_depthwise_conv2d],
                       normalizer_fn=tf.identity):
      new = model.split_separable_conv2d(inputs, 6, rate=6, scope='aspp1')
      variables = tf.trainable_variables()
      with monkeypatch.context() as patch:
        _atrous_formulation(patch)
        old = model.split_separable_conv2d(inputs, 6, rate=6, scope='aspp1')
    assert tf.trainable_variables() == variables  # shared, none added
    assert [v.op.name for v in variables][:1] == ['aspp1_depthwise/'
                                                  'depthwise_weights']
    ops = [op.type for op in tf.get_default_graph().get_operations()]
    assert ops.count('DepthwiseConv2dNative') == 1  # the atrous one only
    sources = [inputs] + variables
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      new_values, old_values = sess.run(
          [_values_and_gradients(new, sources),
           _values_and_gradients(old, sources)])
  np.testing.assert_array_equal(new_values[0], old_values[0])
  _assert_close_gradients(['inputs'] + [v.op.name for v in variables],
                          new_values[1:], old_values[1:])
  # The off-centre taps only ever read padding: no gradient in either.
  depthwise_gradient = new_values[2]
  assert np.count_nonzero(depthwise_gradient) == 8
  assert np.all(depthwise_gradient[1, 1] != 0)


def test_centre_tap_layer_rejects_what_it_does_not_reproduce():
  with tf.Graph().as_default():
    inputs = tf.zeros([1, 3, 3, 2])
    with pytest.raises(ValueError, match='SAME padding and stride 1'):
      model.centre_tap_depthwise_conv2d(inputs, 3, stride=2, scope='a')
    with pytest.raises(ValueError, match='SAME padding and stride 1'):
      model.centre_tap_depthwise_conv2d(inputs, 3, padding='VALID', scope='b')
    with pytest.raises(ValueError, match='needs a normalizer_fn'):
      model.centre_tap_depthwise_conv2d(inputs, 3, scope='c')


@pytest.mark.slow
def test_deeplab_training_step_unchanged(monkeypatch):
  """Logits, gradients of every variable and batch-norm updates of a training
  step of DeepLabv3+ (xception_65, README flags, crop 33) in both
  formulations, sharing one set of variables.

  Slow (two xception_65 training graphs, ~17 s); the default run compares
  the formulations layer by layer
  (test_centre_tap_layer_equals_atrous_depthwise)."""
  # ASPP dropout draws a different mask for each build; without it the two
  # builds must agree exactly.
  monkeypatch.setattr(model, '_ASPP_DROPOUT_KEEP_PROB', 1.0)
  options = common.ModelOptions(
      {common.OUTPUT_TYPE: 5}, crop_size=[33, 33], atrous_rates=[6, 12, 18],
      output_stride=16, model_variant='xception_65',
      decoder_output_stride=[4])

  def logits(images):
    return model.multi_scale_logits(
        images, options, image_pyramid=None, is_training=True,
        fine_tune_batch_norm=True)[common.OUTPUT_TYPE][
            model.MERGED_LOGITS_SCOPE]

  with tf.Graph().as_default():
    images = _random([2, 33, 33, 3], seed=2) * 50.0 + 127.0
    with tf.name_scope('new'):
      new = logits(images)
    variables = tf.trainable_variables()
    new_updates = len(tf.get_collection(BATCH_NORM_UPDATES[0]))
    with monkeypatch.context() as patch, tf.name_scope('old'):
      _atrous_formulation(patch)
      old = logits(images)
    assert tf.trainable_variables() == variables
    assert len(tf.get_collection(BATCH_NORM_UPDATES[0])) == 2 * new_updates
    new_ops = [op.type for op in tf.get_default_graph().get_operations()
               if op.name.startswith('new/aspp')]
    assert 'SpaceToBatchND' not in new_ops
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      new_values, old_values = sess.run(
          [_values_and_gradients(new, variables),
           _values_and_gradients(old, variables)])
  np.testing.assert_array_equal(new_values[0], old_values[0])
  # The centre-tap layers feed train-mode batch norm, which cancels a
  # per-channel scale: their exact weight gradient is zero and the computed
  # one rounding noise (compared without batch norm in the layer test).
  compared = [i for i, v in enumerate(variables)
              if not v.op.name.endswith('_depthwise/depthwise_weights') or
              not v.op.name.startswith('aspp')]
  assert len(compared) == len(variables) - 3  # aspp1-3 at 3 x 3 features
  _assert_close_gradients([variables[i].op.name for i in compared],
                          [new_values[1 + i] for i in compared],
                          [old_values[1 + i] for i in compared])


def test_progress_hook_fetches_console_scalars_only_on_logged_steps(caplog):
  """7 steps logged every 3: the console scalar runs on steps 3, 6 and 7."""
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    evaluations = tf.Variable(0, name='evaluations')
    with tf.control_dependencies([evaluations.assign_add(1)]):
      scalar = tf.identity(tf.cast(evaluations, tf.float32), name='counted')
    tf.add_to_collection(monitoring.CONSOLE_SCALARS, scalar)
    with tf.control_dependencies([global_step.assign_add(1)]):
      loss = tf.constant(0.5)
    train_op = model_deploy.TrainOp(loss, loss, global_step.read_value(),
                                    micro_steps=(), hooks=[])
    hook = hooks.ProgressHook(train_op, tf.constant(0.1), last_step=7,
                              images_per_step=2, every_n=3)
    with caplog.at_level('INFO'), tf.train.MonitoredSession(
        hooks=[tf.train.StopAtStepHook(last_step=7), hook]) as session:
      while not session.should_stop():
        session.run(train_op.train_tensor)
      assert session.run_step_fn(
          lambda step_context: step_context.session.run(evaluations)) == 3
  lines = [r.getMessage() for r in caplog.records
           if r.getMessage().startswith('step ')]
  assert [line.split()[1] for line in lines] == ['3/7', '6/7', '7/7']
  assert [line.split()[3] for line in lines] == [
      'counted=1.0000', 'counted=2.0000', 'counted=3.0000']
  assert hook.last_completed_step == 7
