"""Clone deployment semantics of core/train/model_deploy.py on a tiny linear model."""
import socket
import threading

import numpy as np
import pytest

from conftest import train_options
from core.train import hooks
from core.train import loop
from core.train import model_deploy
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

_INPUTS = np.random.RandomState(0).randn(8, 3).astype(np.float32)
_TARGETS = np.random.RandomState(1).randn(8, 2).astype(np.float32)
_INITIAL_WEIGHTS = np.random.RandomState(2).randn(3, 2).astype(np.float32)
_WEIGHT_DECAY = 0.1


def _linear_clone_fn(num_clones, batch_norm=False):
  """Clone i fits rows [i*b, (i+1)*b) of the batch with a shared linear map
  (after a training-mode batch norm of the inputs if `batch_norm`)."""
  per_clone = len(_INPUTS) // num_clones

  def build(index):
    rows = slice(index * per_clone, (index + 1) * per_clone)
    inputs = tf.constant(_INPUTS[rows])
    if batch_norm:
      inputs = slim.batch_norm(inputs, is_training=True, scale=True,
                               updates_collections=[tf.GraphKeys.UPDATE_OPS])
    weights = slim.model_variable(
        'linear/weights', shape=[3, 2],
        initializer=tf.constant_initializer(_INITIAL_WEIGHTS),
        regularizer=slim.l2_regularizer(_WEIGHT_DECAY))
    predictions = tf.matmul(inputs, weights)
    tf.losses.mean_squared_error(tf.constant(_TARGETS[rows]), predictions)

  return build


def _one_step(num_clones):
  """Weights and total loss after one SGD step with `num_clones` clones."""
  with tf.Graph().as_default():
    config = model_deploy.DeploymentConfig(num_clones=num_clones,
                                           clone_on_cpu=False)
    global_step = model_deploy.create_global_step(config)
    clones = model_deploy.create_clones(config, _linear_clone_fn(num_clones))
    optimizer = tf.train.GradientDescentOptimizer(0.5)
    train_tensor = model_deploy.build_train_op(config, clones, optimizer,
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
    config = model_deploy.DeploymentConfig(num_clones=2)
    clones = model_deploy.create_clones(config, _linear_clone_fn(2))
    assert [c.scope for c in clones] == ['clone_0', 'clone_1']
    assert [c.device for c in clones] == ['/device:GPU:0', '/device:GPU:1']
    losses = tf.losses.get_losses(scope='clone_1')
    assert len(losses) == 1 and 'GPU:1' in losses[0].device
    weights = slim.get_model_variables()[0]
    assert weights.device == '/device:CPU:0'


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
    config = model_deploy.DeploymentConfig(num_clones=1, clone_on_cpu=True,
                                           num_ps_tasks=1, num_replicas=1)
    global_step = model_deploy.create_global_step(config)
    clones = model_deploy.create_clones(config, _linear_clone_fn(1))
    optimizer = tf.train.GradientDescentOptimizer(0.05)
    train_tensor = model_deploy.build_train_op(config, clones, optimizer,
                                               global_step).train_tensor
    weights = slim.get_model_variables()[0]
    assert weights.device.startswith('/job:ps')
    assert global_step.device.startswith('/job:ps')
    with tf.train.MonitoredTrainingSession(master=worker.target,
                                           is_chief=True) as session:
      losses = [session.run(train_tensor) for _ in range(20)]
    assert losses[-1] < losses[0]


def _task_clone_fn(task):
  """Worker `task`'s loss: entry `task` of shared weights (zeros at first),
  so its gradient is the one-hot e_task."""

  def build(unused_index):
    weights = slim.model_variable('task_weights', shape=[2],
                                  initializer=tf.zeros_initializer())
    tf.losses.add_loss(tf.reduce_sum(weights * tf.one_hot(task, 2)))

  return build


class _SyncWorker(object):
  """Worker `task` of 2 with --sync_replicas: its graph and its session on
  `target` (create the chief's first: the other waits for its init)."""

  def __init__(self, target, task):
    self.graph = tf.Graph()
    with self.graph.as_default():
      config = model_deploy.DeploymentConfig(
          num_clones=1, clone_on_cpu=True, task=task, num_replicas=2,
          num_ps_tasks=1, sync_replicas=True)
      global_step = model_deploy.create_global_step(config)
      clones = model_deploy.create_clones(config, _task_clone_fn(task))
      with tf.device(config.optimizer_device()):  # as the training loop
        train_op = model_deploy.build_train_op(
            config, clones, tf.train.GradientDescentOptimizer(0.5),
            global_step)
      self.train_tensor = train_op.train_tensor
      self.state = [slim.get_model_variables()[0], global_step]
      # A blocked run fails after a minute instead of hanging the suite.
      session_config = tf.ConfigProto(
          device_filters=config.device_filters(),
          operation_timeout_in_ms=60000)
      self.session = tf.train.MonitoredTrainingSession(
          master=target, is_chief=config.is_chief, hooks=train_op.hooks,
          config=session_config, stop_grace_period_secs=1)


def _run_in_thread(worker):
  """Starts worker's train run in a thread; returns (thread, outcomes)."""
  outcomes = []

  def run():
    try:
      outcomes.append(worker.session.run(worker.train_tensor))
    except Exception as error:  # reported by the test, not lost
      outcomes.append(error)

  thread = threading.Thread(target=run, daemon=True)
  thread.start()
  return thread, outcomes


def test_sync_update_holds_one_gradient_of_each_worker():
  """build_train_op's SyncReplicasOptimizer, 1 ps + 2 workers in this
  process: worker 1 alone cannot make an update (with the hook's default
  surplus of tokens it filled both slots itself), and the update
  both make averages their gradients e_0 and e_1."""
  cluster = tf.train.ClusterSpec({
      'ps': ['127.0.0.1:%d' % _free_port()],
      'worker': ['127.0.0.1:%d' % _free_port() for _ in range(2)]})
  servers = [tf.train.Server(cluster, job_name='ps', task_index=0)] + [
      tf.train.Server(cluster, job_name='worker', task_index=task)
      for task in range(2)]
  chief = _SyncWorker(servers[1].target, 0)
  other = _SyncWorker(servers[2].target, 1)
  try:
    thread, outcomes = _run_in_thread(other)
    thread.join(timeout=3)
    assert thread.is_alive(), 'worker 1 updated alone: %s' % outcomes
    weights, step = chief.session.run(chief.state)
    np.testing.assert_array_equal(weights, [0, 0])
    assert step == 0
    assert chief.session.run(chief.train_tensor) == 0
    thread.join(timeout=60)
    assert outcomes == [0]
    weights, step = chief.session.run(chief.state)
    np.testing.assert_array_equal(weights, [-0.25, -0.25])
    assert step == 1
  finally:
    other.session.close()
    chief.session.close()


def test_deployment_flags_are_checked():
  with pytest.raises(InputError, match='--num_clones must be >= 1'):
    model_deploy.DeploymentConfig(num_clones=0)
  with pytest.raises(InputError, match=r'--task=2 must be in \[0, '
                     r'--num_replicas=2\)'):
    model_deploy.DeploymentConfig(task=2, num_replicas=2, num_ps_tasks=1)
  config = model_deploy.DeploymentConfig(task=1, num_replicas=2,
                                         num_ps_tasks=1)
  assert not config.is_chief
  assert config.clone_device(0) == '/job:worker/task:1/device:GPU:0'


def test_deployment_options_are_checked():
  with pytest.raises(InputError, match='--num_devices must be >= 1'):
    model_deploy.DeploymentConfig(num_devices=0)
  with pytest.raises(InputError, match='--num_accumulation_steps must be >= 1'):
    model_deploy.DeploymentConfig(num_accumulation_steps=0)
  with pytest.raises(InputError, match=r'--sync_replicas needs several '
                     r'workers.*--num_replicas=1'):
    model_deploy.DeploymentConfig(num_ps_tasks=1, sync_replicas=True)


# ----------------------------------------------------------------------------
# Clones round-robin on fewer devices. ConfigProto.device_count gives a session
# several CPU devices, standing in for GPUs.

_FOUR_CPUS = tf.ConfigProto(device_count={'CPU': 4},
                            allow_soft_placement=False)


def _placed_update(num_clones, num_devices):
  """(weights, BN gamma, BN moving mean, devices of the clone losses) after
  one update of clones with their own batch norm, on CPU devices."""
  with tf.Graph().as_default():
    config = model_deploy.DeploymentConfig(
        num_clones=num_clones, clone_on_cpu=True, num_devices=num_devices)
    global_step = model_deploy.create_global_step(config)
    clones = model_deploy.create_clones(
        config, _linear_clone_fn(num_clones, batch_norm=True))
    train_op = model_deploy.build_train_op(
        config, clones, tf.train.GradientDescentOptimizer(0.5), global_step)
    devices = [tf.losses.get_losses(scope=c.scope)[0].device for c in clones]
    variables = [slim.get_model_variables(name)[0] for name in
                 ('linear/weights', 'BatchNorm/gamma', 'BatchNorm/moving_mean')]
    with tf.Session(config=_FOUR_CPUS) as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(train_op.train_tensor)
      return sess.run(variables) + [devices]


def test_clones_share_devices_round_robin_with_the_same_update():
  on_two = _placed_update(4, 2)
  on_four = _placed_update(4, 4)
  assert on_two[3] == ['/device:CPU:%d' % i for i in (0, 1, 0, 1)]
  assert on_four[3] == ['/device:CPU:%d' % i for i in range(4)]
  for shared, own in zip(on_two[:3], on_four[:3]):
    np.testing.assert_allclose(shared, own, rtol=1e-6)
  # Batch norm is per clone: two clones of 4 rows do not update like four
  # clones of 2 rows (clone 0's statistics feed the moving mean).
  two_clones = _placed_update(2, 2)
  np.testing.assert_allclose(on_four[2], 0.001 * _INPUTS[:2].mean(axis=0),
                             rtol=1e-5)
  np.testing.assert_allclose(two_clones[2], 0.001 * _INPUTS[:4].mean(axis=0),
                             rtol=1e-5)


def test_default_placement_is_one_gpu_per_clone():
  config = model_deploy.DeploymentConfig(num_clones=3)
  assert [config.clone_device(i) for i in range(3)] == [
      '/device:GPU:0', '/device:GPU:1', '/device:GPU:2']
  config = model_deploy.DeploymentConfig(num_clones=16, num_devices=8)
  assert config.clone_device(9) == '/device:GPU:1'
  config = model_deploy.DeploymentConfig(num_clones=4, clone_on_cpu=True)
  assert {config.clone_device(i) for i in range(4)} == {'/device:CPU:0'}


# ----------------------------------------------------------------------------
# Gradient accumulation.


def _accumulated_updates(num_clones, num_steps, num_updates):
  """Weights, total losses, global steps and BN-update counts after
  `num_updates` updates of `num_clones` clones x `num_steps` micro-steps.

  The rows are read from an iterator, so every clone and micro-step gets the
  next len(_INPUTS) / (num_clones * num_steps) rows. A counter in UPDATE_OPS
  stands in for batch norm's moving-average updates.
  """
  per_part = len(_INPUTS) // (num_clones * num_steps)
  with tf.Graph().as_default():
    rows = tf.data.Dataset.from_tensor_slices((_INPUTS, _TARGETS)).repeat()
    iterator = tf.data.make_one_shot_iterator(rows.batch(per_part))
    config = model_deploy.DeploymentConfig(
        num_clones=num_clones, clone_on_cpu=True,
        num_accumulation_steps=num_steps)
    global_step = model_deploy.create_global_step(config)
    counter = tf.Variable(0, name='bn_updates', trainable=False)

    def build(index):
      inputs, targets = iterator.get_next()
      weights = slim.model_variable(
          'linear/weights', shape=[3, 2],
          initializer=tf.constant_initializer(_INITIAL_WEIGHTS),
          regularizer=slim.l2_regularizer(_WEIGHT_DECAY))
      tf.losses.mean_squared_error(targets, tf.matmul(inputs, weights))
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, counter.assign_add(1))

    clones = model_deploy.create_clones(config, build)
    train_op = model_deploy.build_train_op(
        config, clones, tf.train.GradientDescentOptimizer(0.5), global_step)
    assert len(train_op.micro_steps) == num_steps - 1
    results = []
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(),
                tf.local_variables_initializer()])
      for _ in range(num_updates):
        for fetch in train_op.micro_steps:
          sess.run(fetch)
        loss, step = sess.run([train_op.train_tensor, train_op.step])
        results.append((sess.run(slim.get_model_variables()[0]), loss, step,
                        sess.run(counter)))
  return results


def test_accumulated_micro_steps_equal_clones():
  (weights_c, loss_c, step_c, bn_c), = _accumulated_updates(2, 1, 1)
  (weights_a, loss_a, step_a, bn_a), = _accumulated_updates(1, 2, 1)
  reference_weights, reference_loss = _reference_step()
  np.testing.assert_allclose(weights_c, reference_weights, rtol=1e-5)
  np.testing.assert_allclose(weights_a, reference_weights, rtol=1e-5)
  np.testing.assert_allclose(loss_a, reference_loss, rtol=1e-5)
  np.testing.assert_allclose(loss_c, reference_loss, rtol=1e-5)
  assert step_c == step_a == 1
  # Batch-norm updates come from clone 0 of the first micro-step only.
  assert bn_c == bn_a == 1


def test_accumulation_counts_updates_and_restarts_its_sums():
  updates = _accumulated_updates(1, 4, 3)
  assert [step for _, _, step, _ in updates] == [1, 2, 3]
  assert [bn for _, _, _, bn in updates] == [1, 2, 3]
  # Every update sees the whole batch once (4 micro-steps of 2 rows), so the
  # first update is the reference step: the sums started from zero.
  np.testing.assert_allclose(updates[0][0], _reference_step()[0], rtol=1e-5)
  second = _accumulated_updates(1, 1, 2)[1]
  np.testing.assert_allclose(updates[1][0], second[0], rtol=1e-5)
  np.testing.assert_allclose(updates[1][1], second[1], rtol=1e-5)


def test_training_loop_runs_micro_steps_and_counts_updates(tmp_path):
  """loop.train with 3 accumulation steps: 4 updates = 12 micro-steps."""

  def build(index):
    del index
    runs = tf.Variable(0, name='micro_step_runs', trainable=False)
    weights = slim.model_variable(
        'linear/weights', shape=[3, 2],
        initializer=tf.constant_initializer(_INITIAL_WEIGHTS))
    with tf.control_dependencies([runs.assign_add(1)]):
      predictions = tf.matmul(tf.constant(_INPUTS), weights)
    tf.losses.mean_squared_error(tf.constant(_TARGETS), predictions)

  with tf.Graph().as_default():
    loop.train(model_deploy.DeploymentConfig(num_accumulation_steps=3),
               train_options(tmp_path, 4, log_steps=1,
                             save_interval_secs=3600),
               build, images_per_step=1)
  reader = tf.train.load_checkpoint(str(tmp_path))
  assert reader.get_tensor('global_step') == 4
  assert reader.get_tensor('micro_step_runs') == 12
  # The accumulators are local: checkpoints keep the model's variable names.
  assert not [n for n in reader.get_variable_to_shape_map() if 'accum' in n]


def test_waiting_for_the_startup_delay_trains_nothing(tmp_path):
  """A non-chief task polls the global step until its delay is over; the
  poll must not run the update (the ProgressHook's fetch depends on it)."""
  with tf.Graph().as_default():
    config = model_deploy.DeploymentConfig(num_clones=1, clone_on_cpu=True)
    options = train_options(tmp_path, 10)
    train_op, learning_rate = loop.build_graph(config, options,
                                               _linear_clone_fn(1))
    progress = hooks.ProgressHook(train_op, learning_rate, 10, 1, 1)
    global_step = tf.train.get_global_step()
    with tf.train.MonitoredSession(hooks=[progress]) as session:
      for _ in range(3):
        loop._wait_for_startup_delay(session, global_step, 0)
      assert session.run_step_fn(
          lambda step_context: step_context.session.run(global_step)) == 0
