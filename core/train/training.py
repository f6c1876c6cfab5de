"""Training loop and flag glue shared by train_sup.py and train_wss.py.

Clones, per-clone losses, gradient summing and the train op live in
core/train/model_deploy.py (flag-free; docs/DESIGN.md §Deployment); this module turns the deployment
flags into its DeploymentConfig and runs the loop. Several machines use
TensorFlow's own parameter-server runtime (`--num_ps_tasks`, `--num_replicas`,
`--task`, `--master`).

The train_logdir is guarded (`LogdirGuard`): one run at a time (a lock file
holding the pid and host), files left by a killed run removed, a run that
fails on bad input before its first step leaves the logdir as it found it, no
checkpoint holding NaN/Inf is ever written, and the graph goes to the events
files once per logdir, not on every restart.
"""
import errno
import fcntl
import os
import re
import shutil
import socket
import time

from absl import flags
from absl import logging

from core.data import data_generator
from core.flags import flag_checks
from core.flags import model_flags
from core.flags import train_flags  # noqa: F401  (defines the flags read here)
from core.method import monitoring
from core.train import model_deploy
from deeplab import feature_extractor
from deeplab import model
from deeplab import train_utils
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError
from utils.errors import Interrupted
from utils.errors import TrainingError
from utils.errors import sigterm_like_ctrl_c
from utils.errors import signal_of

FLAGS = flags.FLAGS



def deployment_from_flags():
  """Checks the deployment flags and returns a DeploymentConfig.

  With --worker_hosts this process starts its own TensorFlow server, once the
  flags are checked; a `ps` task serves the variables here until it is killed
  (no return). Without --num_devices the clones are spread over every GPU
  this process sees, or run on the CPU if it sees none.
  """
  clone_batch_size(FLAGS.train_batch_size, FLAGS.num_clones,
                   FLAGS.num_accumulation_steps)
  num_replicas, num_ps_tasks = FLAGS.num_replicas, FLAGS.num_ps_tasks
  own_server = bool(FLAGS.worker_hosts or FLAGS.ps_hosts or FLAGS.job_name)
  if own_server:
    if FLAGS.job_name == 'ps':
      _serve_parameters()
    num_replicas, num_ps_tasks = _cluster_size()
  clone_on_cpu, num_devices = FLAGS.clone_on_cpu, FLAGS.num_devices or None
  if num_devices is None and not clone_on_cpu:
    num_devices = len(tf.config.list_physical_devices('GPU')) or None
    clone_on_cpu = num_devices is None
  config = model_deploy.DeploymentConfig(
      FLAGS.num_clones, clone_on_cpu, FLAGS.task, num_replicas, num_ps_tasks,
      num_devices=num_devices,
      num_accumulation_steps=FLAGS.num_accumulation_steps,
      sync_replicas=FLAGS.sync_replicas, master=FLAGS.master)
  if own_server:
    config.master = _start_worker_server()
  return config


def clone_batch_size(train_batch_size, num_clones, num_accumulation_steps=1):
  """Batch of one clone in one micro-step; InputError unless the global batch
  divides evenly over clones and accumulation steps."""
  parts = num_clones * num_accumulation_steps
  if train_batch_size < parts or train_batch_size % parts:
    if num_accumulation_steps == 1:
      # The paper's defaults (16 clones, batch 64) fit 16 GPUs; small runs must
      # lower both flags together.
      raise InputError('--train_batch_size=%d must be a positive multiple of '
                       '--num_clones=%d; lower both together for a small run, '
                       'e.g. --num_clones=1 --train_batch_size=2.' %
                       (train_batch_size, num_clones))
    raise InputError('--train_batch_size=%d must be a positive multiple of '
                     '--num_clones x --num_accumulation_steps = %d x %d = %d.'
                     % (train_batch_size, num_clones, num_accumulation_steps,
                        parts))
  return train_batch_size // parts


# The TensorFlow server of this process; it stops when garbage-collected.
_SERVERS = []


def _cluster_size():
  """(num_replicas, num_ps_tasks) given by --worker_hosts and --ps_hosts."""
  for name, value in (('num_replicas', len(FLAGS.worker_hosts)),
                      ('num_ps_tasks', len(FLAGS.ps_hosts))):
    if not FLAGS[name].using_default_value and FLAGS[name].value != value:
      raise InputError('--%s=%d disagrees with the %d host(s) of --%s; drop '
                       '--%s.' % (name, FLAGS[name].value, value,
                                  'worker_hosts' if name == 'num_replicas'
                                  else 'ps_hosts', name))
  return len(FLAGS.worker_hosts), len(FLAGS.ps_hosts)


def _serve_parameters():
  """Runs this process as parameter server --task until it is killed."""
  server = model_deploy.start_server(FLAGS.ps_hosts, FLAGS.worker_hosts,
                                     'ps', FLAGS.task)
  logging.info('Parameter server %d serving on %s until killed.', FLAGS.task,
               FLAGS.ps_hosts[FLAGS.task])
  server.join()


def _start_worker_server():
  """Starts this worker's server; returns its address (the session master)
  once the parameter servers (and, for the other workers, the chief) accept
  connections."""
  server = model_deploy.start_server(FLAGS.ps_hosts, FLAGS.worker_hosts,
                                     FLAGS.job_name, FLAGS.task)
  needed = FLAGS.ps_hosts + (FLAGS.worker_hosts[:1] if FLAGS.task else [])
  model_deploy.wait_for_hosts(needed, FLAGS.cluster_timeout_secs)
  _SERVERS.append(server)
  return server.target


def model_options(num_classes):
  """ModelOptions of the training graph (crop = --train_crop_size)."""
  crop_size = flag_checks.parse_crop_size(FLAGS.train_crop_size,
                                          'train_crop_size')
  return model_flags.model_options_from_flags(num_classes, crop_size)


def training_dataset(split, batch_size, strong_weak=False, output_valid=False,
                     with_cls=False, seed_offset=0):
  """The training-mode Dataset of a split, configured from the flags."""
  seed = None if FLAGS.seed is None else FLAGS.seed + seed_offset
  return data_generator.Dataset(
      dataset_name=FLAGS.dataset,
      split_name=split,
      dataset_dir=FLAGS.dataset_dir,
      batch_size=batch_size,
      crop_size=flag_checks.parse_crop_size(FLAGS.train_crop_size,
                                            'train_crop_size'),
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
    # do not fix: changes results (docs/DESIGN.md §Quirks 20)
    optimizer = tf.train.AdamOptimizer(FLAGS.adam_learning_rate,
                                       epsilon=FLAGS.adam_epsilon)
  return learning_rate, optimizer


def last_layer_scopes():
  """Scopes of the layers trained from scratch (docs/DESIGN.md §Initialisation)."""
  return model.get_extra_layer_scopes(FLAGS.last_layers_contain_logits_only)


def console_name(tensor):
  """Short name of a scalar: no clone scope, no trailing `/loss`."""
  name = tensor.op.name
  if name.startswith('clone_'):
    name = name.split('/', 1)[1]
  return name[:-len('/loss')] if name.endswith('/loss') else name


def _tagged_summary(kind, tag, tensor):
  """A scalar or histogram summary whose tag is exactly `tag`.

  tf.summary.* derive the tag from a fresh name scope, so a tag equal to an op
  name (`learning_rate`, `total_loss`, every variable) came out as `<tag>_1`.
  """
  with tf.name_scope(None):
    if kind == 'scalar':
      summary = tf.raw_ops.ScalarSummary(tags=tag, values=tensor,
                                         name='summary_scalar')
    else:
      summary = tf.raw_ops.HistogramSummary(tag=tag, values=tensor,
                                            name='summary_histogram')
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, summary)
  return summary


def add_loss_summaries(clones, total_loss, learning_rate):
  """Scalar summaries and console entries of every clone-0 loss."""
  for loss in tf.losses.get_losses(scope=clones[0].scope or None):
    _tagged_summary('scalar', 'losses/%s' % console_name(loss), loss)
    tf.add_to_collection(monitoring.CONSOLE_SCALARS, loss)
  _tagged_summary('scalar', 'learning_rate', learning_rate)
  _tagged_summary('scalar', 'total_loss', total_loss)
  for variable in slim.get_model_variables():
    _tagged_summary('histogram', variable.op.name, variable)


class ProgressHook(tf.train.SessionRunHook):
  """Logs step, losses, learning rate, images/s and ETA every `every_n` steps.

  The loss, learning rate and console scalars (the ECE reductions of
  train_wss among them) are fetched only by the runs that log them, so the
  other steps do not compute them: a run logs when the global step it will
  reach (the last one seen + 1) is a multiple of `every_n` or the last step.
  """

  def __init__(self, train_op, learning_rate, last_step, images_per_step,
               every_n):
    self._fetches = {'total_loss': train_op.total_loss,
                     'learning_rate': learning_rate,
                     'scalars': {console_name(t): t for t in
                                 tf.get_collection(monitoring.CONSOLE_SCALARS)}}
    self._step = train_op.step
    self._last_step = last_step
    self._images_per_step = images_per_step
    self._every_n = max(1, every_n)

  def begin(self):
    self._last_time = None
    self._last_logged_step = None
    self.last_completed_step = None

  def _logs_next_run(self):
    if self._last_time is None:
      return False  # the first run only starts the clock
    step = self.last_completed_step + 1
    return step % self._every_n == 0 or step >= self._last_step

  def before_run(self, run_context):
    fetches = {'step': self._step}
    if self._logs_next_run():
      fetches['values'] = self._fetches
    return tf.train.SessionRunArgs(fetches)

  def after_run(self, run_context, run_values):
    step = run_values.results['step']
    self.last_completed_step = step
    now = time.time()
    if self._last_time is None:
      self._last_time, self._last_logged_step = now, step
      return
    values = run_values.results.get('values')
    if values is None:
      return
    steps = max(1, step - self._last_logged_step)
    seconds_per_step = (now - self._last_time) / steps
    self._last_time, self._last_logged_step = now, step
    terms = ' '.join('%s=%.4f' % (name, value) for name, value in
                     sorted(values['scalars'].items()))
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


def _wait_for_startup_delay(session, global_step, target):
  """Waits until global_step >= target (non-chief task k: k x the delay)."""
  while session.run(global_step) < target:
    time.sleep(1.0)


def init_fn_from_flags():
  """Scaffold init_fn restoring --tf_initial_checkpoint (or None)."""
  return initial_checkpoint_init_fn(
      FLAGS.train_logdir, FLAGS.tf_initial_checkpoint,
      FLAGS.initialize_last_layer, last_layer_scopes(), FLAGS.model_variant)


def initial_checkpoint_init_fn(train_logdir, tf_initial_checkpoint,
                               initialize_last_layer, last_layers,
                               model_variant):
  """Restores a checkpoint into a new run; the backbone's classification head
  is never restored.

  The head of an ImageNet checkpoint is 1001-way and never matches the
  dataset's C-1 classes, so it is trained from scratch even when
  `initialize_last_layer` restores the segmentation head (docs/DESIGN.md
  §Departures 4).

  Returns:
    None or init_fn(scaffold, session); see train_utils.get_model_init_fn.
  """
  return train_utils.get_model_init_fn(
      train_logdir, tf_initial_checkpoint, initialize_last_layer, last_layers,
      ignore_missing_vars=True,
      excluded_scopes=[feature_extractor.LOGITS_END_POINT[model_variant]])


# ----------------------------------------------------------------------------
# The train_logdir: lock, orphans, clean failure, finished runs.

LOCK_FILE = 'train.lock'
CHECKPOINT_BASENAME = 'model.ckpt'
# Files a killed Saver leaves behind: partial data files, partial meta graphs.
_ORPHAN_TEMPORARY = re.compile(r'\.tempstate\d*$|\.meta\.tmp[0-9a-f]*$|'
                               r'^%s-\d+_temp$' % re.escape(CHECKPOINT_BASENAME))
_CHECKPOINT_FILE = re.compile(r'^(%s-\d+)\.(index|meta|data-\d{5}-of-\d{5})$' %
                              re.escape(CHECKPOINT_BASENAME))


class LogdirLock(object):
  """An exclusive lock on a train_logdir: `<logdir>/train.lock`.

  The lock is `fcntl.flock` on the open file, so the kernel drops it when the
  holder dies, also by kill -9: a lock file left by a dead process does not
  block a restart. The file holds `pid host` of the holder for the message of
  a second run.
  """

  def __init__(self, logdir):
    self.path = os.path.join(logdir, LOCK_FILE)
    self._file = None

  def acquire(self):
    """Takes the lock or raises InputError naming the holder's pid and host."""
    while self._file is None:
      try:
        handle = open(self.path, 'a+')
      except OSError as error:
        raise InputError('--train_logdir %s is not writable (%s).' % (
            os.path.dirname(self.path), error.strerror)) from None
      try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as error:
        handle.seek(0)
        holder = handle.read().split()
        handle.close()
        if error.errno not in (errno.EAGAIN, errno.EACCES):
          raise
        raise InputError(
            '--train_logdir %s is in use by another training run (pid %s on '
            'host %s, lock file %s); wait for it to end or pass another '
            '--train_logdir.' % (os.path.dirname(self.path),
                                 holder[0] if holder else '?',
                                 holder[1] if len(holder) > 1 else '?',
                                 self.path)) from None
      # The holder may have removed the file between our open and flock: then
      # the lock is on a deleted file and a third run could lock a new one.
      try:
        same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if not same:
        handle.close()
        continue
      handle.seek(0)
      handle.truncate()
      handle.write('%d %s\n' % (os.getpid(), socket.gethostname()))
      handle.flush()
      self._file = handle
    return self

  def release(self):
    """Removes the lock file and drops the lock."""
    if self._file is None:
      return
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass
    self._file.close()
    self._file = None


def remove_orphans(logdir):
  """Removes what killed runs left in `logdir`; returns the removed names.

  Temporary checkpoint files (`*.tempstate*`, `*.meta.tmp*`, `*_temp` folders)
  and `model.ckpt-N` files the `checkpoint` state file does not list (written
  or rotated out while the run was killed). Without a state file no checkpoint
  counts as an orphan. Call only while holding the LogdirLock.
  """
  names = sorted(os.listdir(logdir))
  state = tf.train.get_checkpoint_state(logdir)
  registered = None
  if state is not None:
    registered = {os.path.basename(path)
                  for path in list(state.all_model_checkpoint_paths) +
                  [state.model_checkpoint_path]}
  removed = []
  for name in names:
    path = os.path.join(logdir, name)
    match = _CHECKPOINT_FILE.match(name)
    orphan = bool(_ORPHAN_TEMPORARY.search(name)) or (
        match is not None and registered is not None and
        match.group(1) not in registered)
    if not orphan:
      continue
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)
    removed.append(name)
  if removed:
    logging.info('Removed %d file(s) left in %s by an interrupted run: %s',
                 len(removed), logdir, ', '.join(removed))
  return removed


def checkpoint_step(logdir):
  """(prefix, global step) of the latest checkpoint in logdir, or None."""
  prefix = tf.train.latest_checkpoint(logdir) if logdir else None
  if prefix is None:
    return None
  try:
    reader = tf.train.load_checkpoint(prefix)
    return prefix, int(reader.get_tensor('global_step'))
  except (tf.errors.OpError, ValueError):
    return None


class LogdirGuard(object):
  """Context manager guarding one training run's use of its train_logdir.

  On entry (chief only): creates the folder, takes the LogdirLock and removes
  orphans. On exit: if the run failed on bad input (InputError) before it
  completed a step, removes every file the run created, and the folder if the
  run created it, so a failed run leaves nothing behind; then releases the
  lock. Set `trained` once a step completed.
  """

  def __init__(self, logdir, is_chief):
    self.logdir = logdir
    self.is_chief = is_chief
    self.had_checkpoint = tf.train.latest_checkpoint(logdir) is not None
    self.trained = False
    self._lock = LogdirLock(logdir)
    self._created = False
    self._before = None

  def __enter__(self):
    if not self.is_chief:
      return self
    if not os.path.isdir(self.logdir):
      try:
        os.makedirs(self.logdir)
      except OSError as error:
        raise InputError('--train_logdir %s cannot be created (%s).' %
                         (self.logdir, error.strerror)) from None
      self._created = True
    try:
      self._lock.acquire()
    except InputError:
      if self._created:
        shutil.rmtree(self.logdir, ignore_errors=True)
      raise
    self._before = set(os.listdir(self.logdir))
    remove_orphans(self.logdir)
    return self

  def __exit__(self, exception_type, exception, traceback):
    if not self.is_chief:
      return False
    if (exception_type is not None and issubclass(exception_type, InputError)
        and not self.trained):
      self._remove_new_files()
    self._lock.release()
    if self._created and exception_type is not None and not self.trained:
      try:
        os.rmdir(self.logdir)
      except OSError:
        pass
    return False

  def _remove_new_files(self):
    for name in sorted(set(os.listdir(self.logdir)) - self._before):
      if name == LOCK_FILE:
        continue
      path = os.path.join(self.logdir, name)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)


class _TrainedHook(tf.train.SessionRunHook):
  """Marks the LogdirGuard once a step completed."""

  def __init__(self, guard):
    self._guard = guard

  def after_run(self, run_context, run_values):
    self._guard.trained = True


# ----------------------------------------------------------------------------
# Checkpoints.


class FiniteStateCheck(tf.train.CheckpointSaverListener):
  """Refuses to save a checkpoint while any float variable holds NaN or Inf.

  The loss check alone is late: batch-norm moving statistics (not used by the
  training-mode forward pass) can turn NaN many steps before the loss does.
  The check runs before each save only, so it costs nothing per step.
  """

  def __init__(self, logdir):
    self._logdir = logdir
    self._variables = None
    self._finite = None

  def begin(self):
    """Builds the check (called before the graph is finalized)."""
    self._variables = [v for v in tf.global_variables()
                       if v.dtype.base_dtype.is_floating]
    if not self._variables:
      return
    flags_ = []
    with tf.name_scope('finite_state_check'):
      for variable in self._variables:
        with tf.device(variable.device):
          flags_.append(tf.reduce_all(tf.math.is_finite(variable)))
      self._finite = tf.stack(flags_)

  def before_save(self, session, global_step_value):
    """Raises TrainingError if the state about to be saved is not finite."""
    if self._finite is None:
      return
    finite = session.run(self._finite)
    if finite.all():
      return
    bad = [v.op.name for v, ok in zip(self._variables, finite) if not ok]
    last = tf.train.latest_checkpoint(self._logdir)
    raise TrainingError(
        'The model state holds NaN or Inf at step %d (%d variable(s), e.g. %s); '
        'no checkpoint was written for it and training stopped. The last good '
        'checkpoint is %s.' % (global_step_value, len(bad), ', '.join(bad[:3]),
                               last or 'none (the logdir holds no checkpoint)'))


class CheckpointSaverHook(tf.train.CheckpointSaverHook):
  """TF's saver hook, but the graph is written (graph.pbtxt and the events
  file) only when `write_graph` (a fresh logdir): a resumed run neither writes
  the ~9 MB graph again nor re-saves the checkpoint it restored.

  `summary_writer` is the run's writer, created without a graph (TF's writer
  cache would add the graph to every new events file).
  """

  def __init__(self, logdir, save_secs, saver, listeners, write_graph,
               summary_writer):
    super(CheckpointSaverHook, self).__init__(
        logdir, save_secs=save_secs, saver=saver,
        checkpoint_basename=CHECKPOINT_BASENAME, listeners=listeners)
    self._write_graph = write_graph
    self._writer = summary_writer

  def begin(self):
    self._summary_writer = self._writer
    self._global_step_tensor = tf.train.get_global_step()
    for listener in self._listeners:
      listener.begin()

  def after_create_session(self, session, coord):
    if self._write_graph:
      super(CheckpointSaverHook, self).after_create_session(session, coord)
      return
    step = session.run(self._global_step_tensor)
    self._timer.update_last_triggered_step(step)


# ----------------------------------------------------------------------------
# The training loop.


def train(config, build_clone_fn, images_per_step, datasets=()):
  """Builds the training graph in the default graph and runs the loop.

  A train_logdir whose checkpoint already reached --training_number_of_steps
  is left alone (one log line).

  Args:
    config: DeploymentConfig.
    build_clone_fn: build_clone_fn(clone_index) adds one clone's losses; may add
      summaries, console scalars and monitoring updates.
    images_per_step: images consumed per step (for the images/s figure).
    datasets: the data_generator.Dataset objects read (to name a corrupt file
      or a bad label in an error).
  """
  finished = checkpoint_step(FLAGS.train_logdir)
  if finished and finished[1] >= FLAGS.training_number_of_steps:
    logging.info('Training already finished: %s is at step %d >= '
                 '--training_number_of_steps=%d; nothing to do.',
                 finished[0], finished[1], FLAGS.training_number_of_steps)
    return
  with LogdirGuard(FLAGS.train_logdir, config.is_chief) as guard:
    tf.set_random_seed(FLAGS.seed)
    global_step = model_deploy.create_global_step(config)
    clones = model_deploy.create_clones(config, build_clone_fn)
    with tf.device(config.optimizer_device()):
      learning_rate, optimizer = learning_rate_and_optimizer(global_step)
      gradient_multipliers = train_utils.get_model_gradient_multipliers(
          last_layer_scopes(), FLAGS.last_layer_gradient_multiplier)
      train_op = model_deploy.build_train_op(config, clones, optimizer,
                                             global_step, gradient_multipliers)
    add_loss_summaries(clones, train_op.total_loss, learning_rate)
    init_fn = init_fn_from_flags()
    run_loop(config, train_op, learning_rate, images_per_step, init_fn,
             guard=guard, datasets=datasets)


def _run_update(session, train_op):
  """One update: the accumulation micro-steps without the hooks (which see
  one run per update), then the train tensor with them."""
  if not train_op.micro_steps:
    return session.run(train_op.train_tensor)

  def update(step_context):
    for fetch in train_op.micro_steps:
      step_context.session.run(fetch)
    return step_context.run_with_hooks(train_op.train_tensor)

  return session.run_step_fn(update)


def _session_config():
  config = tf.ConfigProto(allow_soft_placement=True)
  config.gpu_options.allow_growth = True
  return config


def _save_now(session, saver, global_step, finite_check):
  """Writes a checkpoint of the current state (on Ctrl-C or SIGTERM);
  returns (its global step, a note naming it).

  The step is read from the session, not from the ProgressHook: a signal
  raises as soon as the run of a step returns, before the hooks saw it.
  """
  result = []

  def save(step_context):
    step = step_context.session.run(global_step)
    finite_check.before_save(step_context.session, step)
    result.append((step, 'saved %s' % saver.save(
        step_context.session,
        os.path.join(FLAGS.train_logdir, CHECKPOINT_BASENAME),
        global_step=step)))
  session.run_step_fn(save)
  return result[0]


def _raise_training_error(error, progress, datasets):
  """Re-raises a TF error of the loop as one-line InputError/TrainingError."""
  explained = data_generator.explain_data_error(error, datasets)
  if explained is not None:
    raise explained from None
  if 'No space left on device' in error.message:
    last = tf.train.latest_checkpoint(FLAGS.train_logdir)
    raise TrainingError(
        'the disk of --train_logdir %s is full (%s); training stopped. The '
        'last complete checkpoint is %s: free space and rerun the same '
        'command to resume.' % (FLAGS.train_logdir,
                                error.message.splitlines()[0],
                                last or 'none')) from None
  if (isinstance(error, tf.errors.InvalidArgumentError) and
      'Loss is inf or nan' in error.message):
    failed_step = ('after step %d' % progress.last_completed_step
                   if progress.last_completed_step else 'in the first step')
    last = tf.train.latest_checkpoint(FLAGS.train_logdir)
    raise TrainingError(
        'The loss became NaN or Inf %s; training stopped. The last good '
        'checkpoint is %s.' % (failed_step, last or 'none')) from None
  raise error


def run_loop(config, train_op, learning_rate, images_per_step, init_fn,
             guard=None, datasets=()):
  """Runs the train op until --training_number_of_steps, checkpointing.

  Ctrl-C or SIGTERM stops it once the step under way is done: the chief saves
  a checkpoint of it, then utils.errors.Interrupted says what was kept.

  Args:
    guard: the LogdirGuard of the run (told when a step completed), or None.
    datasets: Datasets of the run, searched to explain a data error.
  """
  last_step = FLAGS.training_number_of_steps
  logdir = FLAGS.train_logdir
  saver = tf.train.Saver(max_to_keep=FLAGS.max_to_keep,
                         keep_checkpoint_every_n_hours=10000.0)
  scaffold = tf.train.Scaffold(init_fn=init_fn, saver=saver)
  progress = ProgressHook(train_op, learning_rate, last_step, images_per_step,
                          FLAGS.log_steps)
  hooks = [tf.train.StopAtStepHook(last_step=last_step), progress]
  hooks.extend(train_op.hooks)
  if guard is not None:
    hooks.append(_TrainedHook(guard))
  if FLAGS.profile_logdir:
    hooks.append(tf.train.ProfilerHook(save_steps=max(1, FLAGS.log_steps),
                                       output_dir=FLAGS.profile_logdir))
  finite_check = FiniteStateCheck(logdir)
  chief_hooks, writer = [], None
  if config.is_chief:
    writer = tf.summary.FileWriter(logdir)
  if config.is_chief and FLAGS.save_summaries_secs > 0:
    chief_hooks.append(tf.train.SummarySaverHook(
        save_secs=FLAGS.save_summaries_secs, summary_writer=writer,
        scaffold=scaffold))
  if config.is_chief and FLAGS.save_interval_secs > 0:
    write_graph = not (guard.had_checkpoint if guard is not None else
                       tf.train.latest_checkpoint(logdir))
    chief_hooks.append(CheckpointSaverHook(
        logdir, FLAGS.save_interval_secs, saver, [finite_check], write_graph,
        writer))
  else:
    finite_check.begin()
  global_step = tf.train.get_global_step()
  session_config = _session_config()
  session_config.device_filters.extend(config.device_filters())
  try:
    # SIGTERM (Slurm, Kubernetes) winds down as Ctrl-C does below.
    with sigterm_like_ctrl_c(), tf.train.MonitoredTrainingSession(
        master=config.master,
        is_chief=config.is_chief,
        checkpoint_dir=logdir,
        scaffold=scaffold,
        hooks=hooks,
        chief_only_hooks=chief_hooks,
        save_checkpoint_secs=None,
        save_summaries_secs=None,
        log_step_count_steps=0,
        # The chief's sync-replicas queue runner waits for gradients no
        # worker sends after the last step; closing the session cancels it.
        stop_grace_period_secs=5 if config.sync_replicas else 120,
        config=session_config) as session:
      # Synchronous replicas start together: the chief alone cannot advance.
      if not config.is_chief and not config.sync_replicas:
        # A short run may end before task k's delay: then it starts at the
        # end (and stops) instead of waiting forever.
        _wait_for_startup_delay(session, global_step, min(
            config.task * FLAGS.startup_delay_steps, last_step))
      try:
        while not session.should_stop():
          _run_update(session, train_op)
      except KeyboardInterrupt as interrupt:
        # Another task only reports the last step it saw: reading the global
        # step would need the parameter servers, which may be gone.
        step, note = progress.last_completed_step, 'not saved (not the chief)'
        if config.is_chief:
          step, note = _save_now(session, saver, global_step, finite_check)
        raise Interrupted('training stopped %s; %s' % (
            'after step %d' % step if step else 'before its first step',
            note), signal_of(interrupt)) from None
  except tf.errors.OpError as error:
    _raise_training_error(error, progress, datasets)
  finally:
    if writer is not None:
      writer.close()
  logging.info('Training finished at step %d; checkpoints in %s',
               progress.last_completed_step or last_step, logdir)
