"""Training machinery shared by train_sup.py and train_wss.py.

In-graph replication with the semantics of DeepLab's model_deploy (SPEC §5.1):
clone i runs under name scope `clone_i` on `/device:GPU:i` (or the CPU), all
clones share the variables, each clone's losses are divided by the number of
clones, the regularisation loss is added once (to clone 0), gradients are summed
over clones and BN moving-average updates come from clone 0 only. Several
machines use TensorFlow's own parameter-server runtime (`--num_ps_tasks`,
`--num_replicas`, `--task`, `--master`).
"""
import collections
import time

from absl import flags
from absl import logging

from core import data_generator
from core import train_flags  # noqa: F401  (defines the flags read here)
from deeplab import common
from deeplab import feature_extractor
from deeplab import model
from deeplab import train_utils
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError
from utils.errors import TrainingError

FLAGS = flags.FLAGS

# Ops that update streaming monitoring metrics; run with every training step.
MONITORING_UPDATES = 'monitoring_updates'
# Scalar tensors logged to the console every --log_steps (by short name).
CONSOLE_SCALARS = 'console_scalars'

Clone = collections.namedtuple('Clone', ['index', 'scope', 'device'])


class DeploymentConfig(object):
  """Where clones, inputs, variables and the optimizer are placed."""

  def __init__(self, num_clones=1, clone_on_cpu=False, task=0, num_replicas=1,
               num_ps_tasks=0):
    if num_clones < 1:
      raise InputError('--num_clones must be >= 1, got %d' % num_clones)
    if not 0 <= task < max(num_replicas, 1):
      raise InputError('--task=%d must be in [0, --num_replicas=%d).' %
                       (task, num_replicas))
    self.num_clones = num_clones
    self.clone_on_cpu = clone_on_cpu
    self.task = task
    self.num_replicas = num_replicas
    self.num_ps_tasks = num_ps_tasks

  @property
  def is_chief(self):
    return self.task == 0

  @property
  def _worker_prefix(self):
    return '/job:worker/task:%d' % self.task if self.num_ps_tasks > 0 else ''

  def clone_scope(self, index):
    return 'clone_%d' % index if self.num_clones > 1 else ''

  def clone_device(self, index):
    if self.clone_on_cpu:
      return self._worker_prefix + '/device:CPU:0'
    return self._worker_prefix + '/device:GPU:%d' % index

  def inputs_device(self):
    return self._worker_prefix + '/device:CPU:0'

  optimizer_device = inputs_device

  def variables_device(self):
    """A device (string or function) for model variables."""
    if self.num_ps_tasks > 0:
      return tf.train.replica_device_setter(
          ps_tasks=self.num_ps_tasks, ps_device='/job:ps', merge_devices=True)
    return '/device:CPU:0'


def deployment_from_flags():
  """Checks the deployment flags and returns a DeploymentConfig."""
  config = DeploymentConfig(FLAGS.num_clones, FLAGS.clone_on_cpu, FLAGS.task,
                            FLAGS.num_replicas, FLAGS.num_ps_tasks)
  clone_batch_size(FLAGS.train_batch_size, FLAGS.num_clones)
  return config


def clone_batch_size(train_batch_size, num_clones):
  """Per-clone batch; InputError unless the global batch divides evenly."""
  if train_batch_size < num_clones or train_batch_size % num_clones:
    raise InputError('--train_batch_size=%d must be a positive multiple of '
                     '--num_clones=%d.' % (train_batch_size, num_clones))
  return train_batch_size // num_clones


def check_required_flags():
  """Raises InputError for missing required flags, before anything is written."""
  for name in ('train_logdir', 'dataset_dir'):
    if not getattr(FLAGS, name):
      raise InputError('--%s is required.' % name)
  if not tf.io.gfile.isdir(FLAGS.dataset_dir):
    raise InputError('--dataset_dir=%s does not exist.' % FLAGS.dataset_dir)


def crop_size_from_flag(values, flag_name):
  """Parses a 'height,width' list flag into [int, int]."""
  try:
    size = [int(v) for v in values]
  except ValueError:
    size = []
  if len(size) != 2 or min(size) < 1:
    raise InputError('--%s must be two positive integers "height,width", got '
                     '%r.' % (flag_name, ','.join(values)))
  return size


def model_options(num_classes):
  """ModelOptions of the training graph (crop = --train_crop_size)."""
  crop_size = crop_size_from_flag(FLAGS.train_crop_size, 'train_crop_size')
  return common.model_options_from_flags(num_classes, crop_size)


def training_dataset(split, batch_size, strong_weak=False, output_valid=False,
                     with_cls=False, seed_offset=0):
  """The training-mode Dataset of a split, configured from the flags."""
  seed = None if FLAGS.seed is None else FLAGS.seed + seed_offset
  return data_generator.Dataset(
      dataset_name=FLAGS.dataset,
      split_name=split,
      dataset_dir=FLAGS.dataset_dir,
      batch_size=batch_size,
      crop_size=crop_size_from_flag(FLAGS.train_crop_size, 'train_crop_size'),
      min_resize_value=FLAGS.min_resize_value,
      max_resize_value=FLAGS.max_resize_value,
      resize_factor=FLAGS.resize_factor,
      min_scale_factor=FLAGS.min_scale_factor,
      max_scale_factor=FLAGS.max_scale_factor,
      scale_factor_step_size=FLAGS.scale_factor_step_size,
      model_variant=FLAGS.model_variant,
      num_readers=FLAGS.num_readers,
      is_training=True,
      should_shuffle=True,
      should_repeat=True,
      with_cls=with_cls,
      strong_weak=strong_weak,
      output_valid=output_valid,
      seed=seed)


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


def _clone_loss(clone, num_clones, regularization_losses):
  """Sum of the clone's losses / num_clones (+ regularisation for clone 0)."""
  losses = tf.losses.get_losses(scope=clone.scope or None)
  if not losses:
    raise ValueError('Clone %d added no loss.' % clone.index)
  loss = tf.add_n(losses, name='clone_loss')
  if num_clones > 1:
    loss = tf.div(loss, float(num_clones), name='scaled_clone_loss')
  if regularization_losses:
    loss = tf.add(loss, tf.add_n(regularization_losses),
                  name='clone_loss_with_regularization')
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


def optimize_clones(clones, optimizer):
  """Total loss and clone-summed gradients of all trainable variables.

  Returns:
    (total_loss scalar, list of (gradient, variable)); the regularisation loss
    is counted once, through clone 0.
  """
  regularization_losses = tf.losses.get_regularization_losses()
  variables = tf.trainable_variables()
  clone_losses, clones_grads_and_vars = [], []
  for clone in clones:
    with tf.name_scope(clone.scope or None), tf.device(clone.device):
      loss = _clone_loss(clone, len(clones),
                         regularization_losses if clone.index == 0 else None)
      clone_losses.append(loss)
      clones_grads_and_vars.append(
          optimizer.compute_gradients(loss, var_list=variables))
  if regularization_losses:
    tf.summary.scalar('losses/regularization_loss',
                      tf.add_n(regularization_losses))
  total_loss = tf.add_n(clone_losses, name='total_loss')
  return total_loss, _sum_gradients(clones_grads_and_vars)


def learning_rate_and_optimizer(global_step):
  """The learning-rate tensor and optimizer configured by the flags."""
  learning_rate = train_utils.get_model_learning_rate(
      FLAGS.learning_policy, FLAGS.base_learning_rate,
      FLAGS.learning_rate_decay_step, FLAGS.learning_rate_decay_factor,
      FLAGS.training_number_of_steps, FLAGS.learning_power,
      FLAGS.slow_start_step, FLAGS.slow_start_learning_rate,
      decay_steps=FLAGS.decay_steps, end_learning_rate=FLAGS.end_learning_rate)
  if FLAGS.optimizer == 'momentum':
    optimizer = tf.train.MomentumOptimizer(learning_rate, FLAGS.momentum)
  else:
    # As in the original, adam ignores the schedule (which is still logged).
    optimizer = tf.train.AdamOptimizer(FLAGS.adam_learning_rate,
                                       epsilon=FLAGS.adam_epsilon)
  return learning_rate, optimizer


def last_layer_scopes():
  """Scopes of the layers trained from scratch (SPEC §3.7)."""
  return model.get_extra_layer_scopes(FLAGS.last_layers_contain_logits_only)


TrainOp = collections.namedtuple('TrainOp',
                                 ['train_tensor', 'total_loss', 'step'])


def build_train_op(clones, optimizer, global_step, gradient_multipliers=None):
  """Gradient step + clone-0 BN updates + monitoring updates.

  Returns:
    TrainOp: running `train_tensor` performs one step and returns the total
    loss (checked for NaN/Inf first); `step` is the global step after it.
  """
  total_loss, grads_and_vars = optimize_clones(clones, optimizer)
  total_loss = tf.debugging.check_numerics(
      total_loss, 'Loss is inf or nan', name='checked_total_loss')
  if gradient_multipliers:
    with tf.name_scope('multiply_grads'):
      grads_and_vars = slim.learning.multiply_gradients(grads_and_vars,
                                                        gradient_multipliers)
  grad_updates = optimizer.apply_gradients(grads_and_vars,
                                           global_step=global_step)
  first_clone_scope = clones[0].scope or None
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, first_clone_scope)
  update_ops += tf.get_collection(MONITORING_UPDATES)
  update_ops.append(grad_updates)
  with tf.control_dependencies([tf.group(*update_ops)]):
    train_tensor = tf.identity(total_loss, name='train_op')
    # read_value() runs beside the variable (also on a parameter server), so
    # it sees the increment; an identity on this device might not.
    step = global_step.read_value()
  return TrainOp(train_tensor, total_loss, step)


def console_name(tensor):
  """Short name of a scalar: no clone scope, no trailing `/loss`."""
  name = tensor.op.name
  if name.startswith('clone_'):
    name = name.split('/', 1)[1]
  return name[:-len('/loss')] if name.endswith('/loss') else name


def add_loss_summaries(clones, total_loss, learning_rate):
  """Scalar summaries and console entries of every clone-0 loss."""
  for loss in tf.losses.get_losses(scope=clones[0].scope or None):
    tf.summary.scalar('losses/%s' % console_name(loss), loss)
    tf.add_to_collection(CONSOLE_SCALARS, loss)
  tf.summary.scalar('learning_rate', learning_rate)
  tf.summary.scalar('total_loss', total_loss)
  for variable in slim.get_model_variables():
    tf.summary.histogram(variable.op.name, variable)


class ProgressHook(tf.train.SessionRunHook):
  """Logs step, losses, learning rate, images/s and ETA every `every_n` steps."""

  def __init__(self, train_op, learning_rate, last_step, images_per_step,
               every_n):
    self._fetches = {'total_loss': train_op.total_loss,
                     'learning_rate': learning_rate}
    self._step = train_op.step
    self._scalars = {console_name(t): t
                     for t in tf.get_collection(CONSOLE_SCALARS)}
    self._last_step = last_step
    self._images_per_step = images_per_step
    self._every_n = max(1, every_n)

  def begin(self):
    self._last_time = None
    self._last_logged_step = None
    self.last_completed_step = None

  def before_run(self, run_context):
    return tf.train.SessionRunArgs({
        'step': self._step, 'values': self._fetches,
        'scalars': self._scalars})

  def after_run(self, run_context, run_values):
    step = run_values.results['step']
    self.last_completed_step = step
    now = time.time()
    if self._last_time is None:
      self._last_time, self._last_logged_step = now, step
      return
    if step % self._every_n and step < self._last_step:
      return
    steps = max(1, step - self._last_logged_step)
    seconds_per_step = (now - self._last_time) / steps
    self._last_time, self._last_logged_step = now, step
    values = run_values.results['values']
    terms = ' '.join('%s=%.4f' % (name, value) for name, value in
                     sorted(run_values.results['scalars'].items()))
    eta = seconds_per_step * max(0, self._last_step - step)
    logging.info(
        'step %d/%d  total_loss=%.4f  %s  lr=%.6g  %.2f s/step  %.2f images/s  '
        'ETA %s', step, self._last_step, values['total_loss'], terms,
        values['learning_rate'], seconds_per_step,
        self._images_per_step / seconds_per_step, _format_seconds(eta))


def _format_seconds(seconds):
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return '%d:%02d:%02d' % (hours, minutes, seconds)


def _wait_for_startup_delay(session, global_step, task, delay_steps):
  """Non-chief task k starts once global_step >= k * delay_steps."""
  target = task * delay_steps
  while session.run(global_step) < target:
    time.sleep(1.0)


def init_fn_from_flags(extra_excluded_scopes=()):
  """Scaffold init_fn restoring --tf_initial_checkpoint (or None)."""
  excluded = list(last_layer_scopes())
  # The classification head never matches an ImageNet checkpoint's 1001-way
  # head (SPEC §8.17), so it is always trained from scratch.
  excluded.append(feature_extractor.LOGITS_END_POINT[FLAGS.model_variant])
  return train_utils.get_model_init_fn(
      FLAGS.train_logdir, FLAGS.tf_initial_checkpoint,
      FLAGS.initialize_last_layer, excluded + list(extra_excluded_scopes),
      ignore_missing_vars=True)


def train(config, build_clone_fn, images_per_step):
  """Builds the training graph in the default graph and runs the loop.

  Args:
    config: DeploymentConfig.
    build_clone_fn: build_clone_fn(clone_index) adds one clone's losses; may add
      summaries, console scalars and monitoring updates.
    images_per_step: images consumed per step (for the images/s figure).
  """
  tf.set_random_seed(FLAGS.seed)
  global_step = create_global_step(config)
  clones = create_clones(config, build_clone_fn)
  with tf.device(config.optimizer_device()):
    learning_rate, optimizer = learning_rate_and_optimizer(global_step)
    gradient_multipliers = train_utils.get_model_gradient_multipliers(
        last_layer_scopes(), FLAGS.last_layer_gradient_multiplier)
    train_op = build_train_op(clones, optimizer, global_step,
                              gradient_multipliers)
  add_loss_summaries(clones, train_op.total_loss, learning_rate)
  init_fn = init_fn_from_flags()
  run_loop(config, train_op, learning_rate, images_per_step, init_fn)


def _session_config():
  config = tf.ConfigProto(allow_soft_placement=True)
  config.gpu_options.allow_growth = True
  return config


def _save_now(session, saver, global_step):
  """Writes a checkpoint of the current state (used on Ctrl-C)."""
  def save(step_context):
    path = saver.save(step_context.session,
                      FLAGS.train_logdir.rstrip('/') + '/model.ckpt',
                      global_step=global_step)
    logging.info('Interrupted; saved %s', path)
  session.run_step_fn(save)


def run_loop(config, train_op, learning_rate, images_per_step, init_fn):
  """Runs the train op until --training_number_of_steps, checkpointing."""
  last_step = FLAGS.training_number_of_steps
  saver = tf.train.Saver(max_to_keep=FLAGS.max_to_keep,
                         keep_checkpoint_every_n_hours=10000.0)
  scaffold = tf.train.Scaffold(init_fn=init_fn, saver=saver)
  progress = ProgressHook(train_op, learning_rate, last_step, images_per_step,
                          FLAGS.log_steps)
  hooks = [tf.train.StopAtStepHook(last_step=last_step), progress]
  if FLAGS.profile_logdir:
    hooks.append(tf.train.ProfilerHook(save_steps=max(1, FLAGS.log_steps),
                                       output_dir=FLAGS.profile_logdir))
  global_step = tf.train.get_global_step()
  with tf.train.MonitoredTrainingSession(
      master=FLAGS.master,
      is_chief=config.is_chief,
      checkpoint_dir=FLAGS.train_logdir,
      scaffold=scaffold,
      hooks=hooks,
      save_checkpoint_secs=FLAGS.save_interval_secs,
      save_summaries_secs=FLAGS.save_summaries_secs,
      log_step_count_steps=0,
      config=_session_config()) as session:
    if not config.is_chief:
      _wait_for_startup_delay(session, global_step, config.task,
                              FLAGS.startup_delay_steps)
    try:
      while not session.should_stop():
        session.run(train_op.train_tensor)
    except tf.errors.InvalidArgumentError as error:
      if 'Loss is inf or nan' not in error.message:
        raise
      failed_step = ('after step %d' % progress.last_completed_step
                     if progress.last_completed_step else 'in the first step')
      raise TrainingError(
          'The loss became NaN or Inf %s; training stopped. The last good '
          'checkpoint in %s is kept.' % (failed_step, FLAGS.train_logdir))
    except KeyboardInterrupt:
      if config.is_chief:
        _save_now(session, saver, global_step)
      raise
  logging.info('Training finished at step %d; checkpoints in %s', last_step,
               FLAGS.train_logdir)
