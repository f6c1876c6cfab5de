"""Clone deployment semantics of core/training.py on a tiny linear model."""
import socket

import numpy as np
import pytest

from core import training
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

_INPUTS = np.random.RandomState(0).randn(8, 3).astype(np.float32)
_TARGETS = np.random.RandomState(1).randn(8, 2).astype(np.float32)
_INITIAL_WEIGHTS = np.random.RandomState(2).randn(3, 2).astype(np.float32)
_WEIGHT_DECAY = 0.1


def _linear_clone_fn(num_clones):
  """Clone i fits rows [i*b, (i+1)*b) of the batch with a shared linear map."""
  per_clone = len(_INPUTS) // num_clones

  def build(index):
    rows = slice(index * per_clone, (index + 1) * per_clone)
    weights = slim.model_variable(
        'linear/weights', shape=[3, 2],
        initializer=tf.constant_initializer(_INITIAL_WEIGHTS),
        regularizer=slim.l2_regularizer(_WEIGHT_DECAY))
    predictions = tf.matmul(tf.constant(_INPUTS[rows]), weights)
    tf.losses.mean_squared_error(tf.constant(_TARGETS[rows]), predictions)

  return build


def _one_step(num_clones):
  """Weights and total loss after one SGD step with `num_clones` clones."""
  with tf.Graph().as_default():
    config = training.DeploymentConfig(num_clones=num_clones,
                                       clone_on_cpu=False)
    global_step = training.create_global_step(config)
    clones = training.create_clones(config, _linear_clone_fn(num_clones))
    optimizer = tf.train.GradientDescentOptimizer(0.5)
    train_tensor = training.build_train_op(clones, optimizer,
                                           global_step).train_tensor
    with tf.Session(config=tf.ConfigProto(allow_soft_placement=True)) as sess:
      sess.run(tf.global_variables_initializer())
      loss = sess.run(train_tensor)
      weights = sess.run(slim.get_model_variables()[0])
      variable_names = [v.op.name for v in tf.global_variables()]
  return weights, loss, variable_names


def _reference_step():
  """Hand-computed SGD step on the whole batch with L2 counted once."""
  residual = _INPUTS.dot(_INITIAL_WEIGHTS) - _TARGETS
  gradient = 2.0 * _INPUTS.T.dot(residual) / residual.size
  gradient += _WEIGHT_DECAY * _INITIAL_WEIGHTS
  loss = np.mean(residual ** 2) + 0.5 * _WEIGHT_DECAY * np.sum(
      _INITIAL_WEIGHTS ** 2)
  return _INITIAL_WEIGHTS - 0.5 * gradient, loss


def test_two_clones_equal_one_clone_with_double_batch():
  weights_1, loss_1, _ = _one_step(1)
  weights_2, loss_2, names = _one_step(2)
  reference_weights, reference_loss = _reference_step()
  np.testing.assert_allclose(weights_1, reference_weights, rtol=1e-5)
  np.testing.assert_allclose(weights_2, reference_weights, rtol=1e-5)
  np.testing.assert_allclose(loss_2, reference_loss, rtol=1e-5)
  np.testing.assert_allclose(loss_1, reference_loss, rtol=1e-5)
  assert names == ['global_step', 'linear/weights'], 'variables not shared'


def test_clones_get_their_own_scopes_and_devices():
  with tf.Graph().as_default():
    config = training.DeploymentConfig(num_clones=2)
    clones = training.create_clones(config, _linear_clone_fn(2))
    assert [c.scope for c in clones] == ['clone_0', 'clone_1']
    assert [c.device for c in clones] == ['/device:GPU:0', '/device:GPU:1']
    losses = tf.losses.get_losses(scope='clone_1')
    assert len(losses) == 1 and 'GPU:1' in losses[0].device
    weights = slim.get_model_variables()[0]
    assert weights.device == '/device:CPU:0'


def test_batch_must_divide_by_clones():
  with pytest.raises(InputError, match='multiple of --num_clones=3'):
    training.clone_batch_size(8, 3)
  assert training.clone_batch_size(8, 2) == 4


def _free_port():
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def test_parameter_server_places_variables_on_ps_and_trains():
  """Between-graph replication on 127.0.0.1: 1 ps + 1 worker, a few steps."""
  cluster = tf.train.ClusterSpec({
      'ps': ['127.0.0.1:%d' % _free_port()],
      'worker': ['127.0.0.1:%d' % _free_port()]})
  tf.train.Server(cluster, job_name='ps', task_index=0)
  worker = tf.train.Server(cluster, job_name='worker', task_index=0)
  with tf.Graph().as_default():
    config = training.DeploymentConfig(num_clones=1, clone_on_cpu=True,
                                       num_ps_tasks=1, num_replicas=1)
    global_step = training.create_global_step(config)
    clones = training.create_clones(config, _linear_clone_fn(1))
    optimizer = tf.train.GradientDescentOptimizer(0.05)
    train_tensor = training.build_train_op(clones, optimizer,
                                           global_step).train_tensor
    weights = slim.get_model_variables()[0]
    assert weights.device.startswith('/job:ps')
    assert global_step.device.startswith('/job:ps')
    with tf.train.MonitoredTrainingSession(master=worker.target,
                                           is_chief=True) as session:
      losses = [session.run(train_tensor) for _ in range(20)]
    assert losses[-1] < losses[0]


def test_deployment_flags_are_checked():
  with pytest.raises(InputError, match='--num_clones must be >= 1'):
    training.DeploymentConfig(num_clones=0)
  with pytest.raises(InputError, match=r'--task=2 must be in \[0, '
                     r'--num_replicas=2\)'):
    training.DeploymentConfig(task=2, num_replicas=2, num_ps_tasks=1)
  config = training.DeploymentConfig(task=1, num_replicas=2, num_ps_tasks=1)
  assert not config.is_chief
  assert config.clone_device(0) == '/job:worker/task:1/device:GPU:0'
