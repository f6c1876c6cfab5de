"""In-graph deployment of a model over clones: no flags, no session, no loop.

The semantics of DeepLab's model_deploy (see README "Scaling"): clone i runs
under name scope `clone_i` on its device, all clones share the variables
(clone 0 creates them, the others reuse them), each clone's losses are divided
by the number of clones, the regularisation loss is added once (to clone 0),
gradients are summed over clones and batch-norm moving-average updates come
from clone 0 only. Several machines use TensorFlow's parameter-server runtime:
variables go to the `ps` job through `replica_device_setter`.

core/flags/train_flags.py turns the flags into a DeploymentConfig (and starts
the servers of a cluster, core/train/cluster.py); core/train/loop.py runs the
loop.
"""
import collections

from core.method import monitoring
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

Clone = collections.namedtuple('Clone', ['index', 'scope', 'device'])


class DeploymentConfig(object):
  """Where clones, inputs, variables and the optimizer are placed, and how
  gradients become an update.

  Attributes:
    num_clones: model replicas in this process; each gets its own batch and
      batch-norm statistics.
    clone_on_cpu: place the clones on CPU devices instead of GPUs.
    task: index of this worker; task 0 is the chief.
    num_replicas: worker processes (between-graph replication).
    num_ps_tasks: parameter-server tasks; 0 keeps the variables local.
    num_devices: devices the clones are spread over, round-robin (clone i on
      device i % num_devices); None keeps DeepLab's placement: one GPU per
      clone, or the single CPU with clone_on_cpu.
    num_accumulation_steps: micro-steps whose summed gradients make one update.
    sync_replicas: aggregate the gradients of all replicas into each update
      (TensorFlow's SyncReplicasOptimizer) instead of applying them one by one.
    master: address of the TensorFlow server the session runs on ('' = local).
    cluster_hosts: 'host:port' of the tasks this worker trains with (the
      parameter servers, and the chief for another worker); empty outside a
      cluster.
    cluster_timeout_secs: how long a worker waits for `cluster_hosts` once
      it lost the connection to them in the middle of a run, before it gives
      up.
  """

  def __init__(self, num_clones=1, clone_on_cpu=False, task=0, num_replicas=1,
               num_ps_tasks=0, num_devices=None, num_accumulation_steps=1,
               sync_replicas=False, master='', cluster_hosts=(),
               cluster_timeout_secs=0):
    if num_clones < 1:
      raise InputError('--num_clones must be >= 1, got %d' % num_clones)
    if not 0 <= task < max(num_replicas, 1):
      raise InputError('--task=%d must be in [0, --num_replicas=%d).' %
                       (task, num_replicas))
    if num_devices is not None and num_devices < 1:
      raise InputError('--num_devices must be >= 1, got %d' % num_devices)
    if num_accumulation_steps < 1:
      raise InputError('--num_accumulation_steps must be >= 1, got %d' %
                       num_accumulation_steps)
    if sync_replicas and (num_replicas < 2 or num_ps_tasks < 1):
      raise InputError(
          '--sync_replicas needs several workers and a parameter server '
          '(--num_replicas=%d, --num_ps_tasks=%d); drop --sync_replicas for '
          'one worker.' % (num_replicas, num_ps_tasks))
    self.num_clones = num_clones
    self.clone_on_cpu = clone_on_cpu
    self.task = task
    self.num_replicas = num_replicas
    self.num_ps_tasks = num_ps_tasks
    if num_devices is None:
      num_devices = 1 if clone_on_cpu else num_clones
    self.num_devices = num_devices
    self.num_accumulation_steps = num_accumulation_steps
    self.sync_replicas = sync_replicas
    self.master = master
    self.cluster_hosts = list(cluster_hosts)
    self.cluster_timeout_secs = cluster_timeout_secs

  @property
  def is_chief(self):
    return self.task == 0

  @property
  def _worker_prefix(self):
    return '/job:worker/task:%d' % self.task if self.num_ps_tasks > 0 else ''

  def clone_scope(self, index):
    return 'clone_%d' % index if self.num_clones > 1 else ''

  def clone_device(self, index):
    """Clone `index` on device index % num_devices: several clones may share
    one device and still keep their own batch and batch-norm statistics."""
    device_type = 'CPU' if self.clone_on_cpu else 'GPU'
    return self._worker_prefix + '/device:%s:%d' % (
        device_type, index % self.num_devices)

  def inputs_device(self):
    return self._worker_prefix + '/device:CPU:0'

  optimizer_device = inputs_device

  def variables_device(self):
    """A device (string or function) for model variables."""
    if self.num_ps_tasks > 0:
      return tf.train.replica_device_setter(
          ps_tasks=self.num_ps_tasks, ps_device='/job:ps', merge_devices=True)
    return '/device:CPU:0'

  def device_filters(self):
    """Devices a worker's session needs: the ps and itself, so that a worker
    neither waits for nor depends on the other workers."""
    if self.num_ps_tasks == 0:
      return []
    return ['/job:ps', '/job:worker/task:%d' % self.task]


def create_global_step(config):
  """The global step, placed with the model variables."""
  with tf.device(config.variables_device()):
    return tf.train.get_or_create_global_step()


def create_clones(config, build_clone_fn):
  """Builds the model once per clone, sharing variables.

  Args:
    config: DeploymentConfig.
    build_clone_fn: called as build_clone_fn(clone_index) inside the clone's
      name scope and device; adds its losses to the tf.losses collection.

  Returns:
    A list of Clone tuples.
  """
  clones = []
  with slim.arg_scope([slim.model_variable, slim.variable],
                      device=config.variables_device()):
    for index in range(config.num_clones):
      scope = config.clone_scope(index)
      device = config.clone_device(index)
      with tf.name_scope(scope or None), tf.device(device):
        with tf.variable_scope(tf.get_variable_scope(),
                               reuse=True if index > 0 else None):
          build_clone_fn(index)
      clones.append(Clone(index, scope, device))
  return clones


def _clone_loss(clone, divisor, regularization_losses, regularization_divisor):
  """Sum of the clone's losses / divisor (+ regularisation / its divisor)."""
  losses = tf.losses.get_losses(scope=clone.scope or None)
  if not losses:
    raise ValueError('Clone %d added no loss.' % clone.index)
  loss = tf.add_n(losses, name='clone_loss')
  # Per-clone normalisation; do not fix: changes results (docs/DESIGN.md §Quirks 24)
  if divisor > 1:
    loss = tf.div(loss, float(divisor), name='scaled_clone_loss')
  if regularization_losses:
    regularization = tf.add_n(regularization_losses)
    if regularization_divisor > 1:
      regularization = tf.div(regularization, float(regularization_divisor),
                              name='scaled_regularization')
    loss = tf.add(loss, regularization, name='clone_loss_with_regularization')
  return loss


def _sum_gradients(clones_grads_and_vars):
  """Sums the gradients of each variable over clones (None stays None)."""
  summed = []
  for grads_and_vars in zip(*clones_grads_and_vars):
    variable = grads_and_vars[0][1]
    grads = [g for g, _ in grads_and_vars if g is not None]
    if not grads:
      summed.append((None, variable))
    elif len(grads) == 1:
      summed.append((grads[0], variable))
    else:
      summed.append((tf.add_n(grads, name=variable.op.name + '/sum_grads'),
                     variable))
  return summed


def optimize_clones(clones, optimizer, num_accumulation_steps=1):
  """Total loss and clone-summed gradients of all trainable variables.

  Each clone's losses are divided by the number of clones times the number of
  accumulation steps, so that the gradients summed over clones and micro-steps
  are those of the mean clone loss; the regularisation loss is counted once
  per update: through clone 0, divided by the accumulation steps.

  Returns:
    (total_loss scalar, list of (gradient, variable)) of one micro-step.
  """
  regularization_losses = tf.losses.get_regularization_losses()
  variables = tf.trainable_variables()
  clone_losses, clones_grads_and_vars = [], []
  for clone in clones:
    with tf.name_scope(clone.scope or None), tf.device(clone.device):
      loss = _clone_loss(clone, len(clones) * num_accumulation_steps,
                         regularization_losses if clone.index == 0 else None,
                         num_accumulation_steps)
      clone_losses.append(loss)
      clones_grads_and_vars.append(
          optimizer.compute_gradients(loss, var_list=variables))
  if regularization_losses:
    monitoring.add_summary('scalar', 'losses/regularization_loss',
                           tf.add_n(regularization_losses))
  total_loss = tf.add_n(clone_losses, name='total_loss')
  return total_loss, _sum_gradients(clones_grads_and_vars)


# train_tensor: run once per update, returns the update's total loss (checked
# for NaN/Inf); total_loss: that loss; step: the global step after the update;
# micro_steps: fetches to run, in order and without session hooks, before
# train_tensor (one per extra accumulation step); hooks: session-run hooks the
# update needs (sync replicas).
TrainOp = collections.namedtuple(
    'TrainOp', ['train_tensor', 'total_loss', 'step', 'micro_steps', 'hooks'])


def _local_zeros(name, like):
  """A local variable of zeros shaped like `like` (not in checkpoints)."""
  return tf.Variable(tf.zeros(like.shape, like.dtype.base_dtype), name=name,
                     trainable=False, use_resource=True,
                     collections=[tf.GraphKeys.LOCAL_VARIABLES])


def _accumulate(grads_and_vars, total_loss, first_step_ops, num_steps):
  """Sums gradients and loss over `num_steps` micro-steps.

  The first num_steps - 1 micro-steps add their gradients and loss to local
  accumulators (the first also runs `first_step_ops`); the last one applies
  accumulator + its own gradients.

  Returns:
    (grads_and_vars of the whole update, its total loss, the fetches of the
    first num_steps - 1 micro-steps, the op zeroing the accumulators: run it
    after the update).
  """
  with tf.name_scope('accumulation'):
    loss_sum = _local_zeros('total_loss_sum', total_loss)
    adds = [loss_sum.assign_add(total_loss)]
    summed, resets = [], []
    for grad, variable in grads_and_vars:
      if grad is None:
        summed.append((None, variable))
        continue
      grad = tf.convert_to_tensor(grad)
      grad_sum = _local_zeros(variable.op.name + '/grad_sum', variable)
      adds.append(grad_sum.assign_add(grad))
      summed.append((grad_sum.read_value() + grad, variable))
      resets.append(grad_sum)
    update_loss = tf.add(loss_sum.read_value(), total_loss,
                         name='accumulated_total_loss')
    with tf.control_dependencies(adds):
      later = tf.identity(total_loss, name='micro_step')
    with tf.control_dependencies(adds + first_step_ops):
      first = tf.identity(total_loss, name='first_micro_step')
    micro_steps = (first,) + (later,) * (num_steps - 2)
    resets.append(loss_sum)

  def reset(after):
    with tf.name_scope('accumulation/'), tf.control_dependencies(
        after + [update_loss]):
      return tf.group(*[v.assign(tf.zeros_like(v)) for v in resets],
                      name='reset')

  return summed, update_loss, micro_steps, reset


def _sync_replicas(optimizer, config):
  """SyncReplicasOptimizer over the workers, and its session hook, such that
  every update averages exactly one gradient of each worker.

  A worker's run applies its gradient to the accumulators, then takes a
  token from a queue on the parameter server; the chief adds one token per
  worker after each update (SyncReplicasOptimizer.apply_gradients). Neither
  the accumulators nor the queue know which worker a gradient or token is
  for: any `replicas_to_aggregate` fresh gradients make an update. The hook's
  default puts `replicas_to_aggregate` more tokens in the queue at the start
  (get_init_tokens_op with num_tokens=-1), a surplus that stays for the whole
  run: a worker can take a spare token and send a second gradient before
  another worker sent its first, so one worker may fill every slot of an
  update (the other's late gradient is then dropped as stale). The chief is
  the late one at the start: MonitoredTrainingSession runs its chief-only
  hooks (the first checkpoint, the graph) before this hook, while the other
  workers start once the variables are initialised. At the end the worker
  that filled the slots may also take the last update's tokens with extra
  runs and leave, and the chief then waits for a token nobody adds (seen:
  worker 1 logged every step twice, the chief none).

  Without the surplus (num_tokens=0, allowed when total_num_replicas ==
  replicas_to_aggregate) a worker that sent its gradient holds no token, so it
  waits in the dequeue until the update that needs every worker's gradient
  is applied; its tokens then release every waiting worker, one token each.
  Each update is one gradient per worker, and all workers see the last step
  together and stop together.
  """
  optimizer = tf.train.SyncReplicasOptimizer(
      optimizer, replicas_to_aggregate=config.num_replicas,
      total_num_replicas=config.num_replicas)
  return optimizer, optimizer.make_session_run_hook(config.is_chief,
                                                    num_tokens=0)


def build_train_op(config, clones, optimizer, global_step,
                   gradient_multipliers=None):
  """One update: gradient step + clone-0 BN updates + monitoring updates.

  With config.num_accumulation_steps = N > 1 an update takes N session runs:
  the N - 1 `micro_steps` accumulate, then `train_tensor` applies; batch-norm
  and monitoring updates run with the first micro-step only, as they would
  for clone 0 of N times as many clones. global_step counts updates.

  Returns:
    TrainOp.
  """
  steps = config.num_accumulation_steps
  total_loss, grads_and_vars = optimize_clones(clones, optimizer, steps)
  total_loss = tf.debugging.check_numerics(
      total_loss, 'Loss is inf or nan', name='checked_total_loss')
  first_clone_scope = clones[0].scope or None
  # do not fix: changes results (docs/DESIGN.md §Quirks 3, 4)
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, first_clone_scope)
  update_ops += tf.get_collection(monitoring.MONITORING_UPDATES)
  micro_steps, reset = (), None
  if steps > 1:
    grads_and_vars, total_loss, micro_steps, reset = _accumulate(
        grads_and_vars, total_loss, update_ops, steps)
    update_ops = []
  if gradient_multipliers:
    with tf.name_scope('multiply_grads'):
      grads_and_vars = slim.learning.multiply_gradients(grads_and_vars,
                                                        gradient_multipliers)
  hooks = []
  if config.sync_replicas:
    optimizer, hook = _sync_replicas(optimizer, config)
    hooks.append(hook)
  grad_updates = optimizer.apply_gradients(grads_and_vars,
                                           global_step=global_step)
  update_ops.append(grad_updates)
  if reset is not None:
    update_ops.append(reset([grad_updates]))
  with tf.control_dependencies([tf.group(*update_ops)]):
    train_tensor = tf.identity(total_loss, name='train_op')
    # read_value() runs beside the variable (also on a parameter server), so
    # it sees the increment; an identity on this device might not.
    step = global_step.read_value()
  return TrainOp(train_tensor, total_loss, step, micro_steps, hooks)
