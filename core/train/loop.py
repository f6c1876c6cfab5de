"""The training loop shared by train_sup.py, train_wss.py and pretrain.py.

`train` builds the training graph from a DeploymentConfig with `build_graph`
(clones, per-clone losses, gradient sums and the train op:
core/train/model_deploy.py, docs/DESIGN.md §Deployment) and runs it with
`run_loop`. Everything it needs comes in as `TrainOptions`; nothing here reads
a flag (core/flags/train_flags.py builds the options from them).

The train_logdir is guarded (core/train/logdir_guard.py): one run at a time,
files left by a killed run removed, a run that fails on bad input before its
first step leaves the logdir as it found it; no checkpoint holding NaN/Inf is
ever written, and the graph goes to the events files once per logdir, not on
every restart (core/train/hooks.py).
"""
import collections
import os
import time

from absl import logging

from core.data import data_generator
from core.train import cluster
from core.train import hooks
from core.train import logdir_guard
from core.train import model_deploy
from core.train import optimization
from core.train import summaries
from deeplab import feature_extractor
from deeplab import model
from deeplab import train_utils
from deeplab.tf_compat import tf
from utils.errors import Interrupted
from utils.errors import raise_if_interrupted
from utils.errors import TrainingError
from utils.errors import sigterm_like_ctrl_c
from utils.errors import signal_of

# What the loop needs besides the deployment and the model; each field but
# `optimization` is the training flag of the same name (core/flags/
# train_flags.py builds it).
TrainOptions = collections.namedtuple('TrainOptions', [
    'train_logdir',  # Checkpoints, events files and the lock.
    'training_number_of_steps',  # Train until global_step reaches this.
    'log_steps',  # A progress line every this many steps.
    'save_interval_secs',  # Seconds between checkpoints; <= 0: none.
    'max_to_keep',  # Number of recent checkpoints kept.
    'save_summaries_secs',  # Seconds between summaries; <= 0: none.
    'profile_logdir',  # Chrome-trace timelines of a few steps go here, or None.
    'startup_delay_steps',  # Task k waits until global_step >= k * this.
    'seed',  # Graph-level seed (int or None).
    'optimization',  # optimization.OptimizerOptions.
    'last_layer_gradient_multiplier',  # Gradient multiplier of the last layers.
    'last_layers_contain_logits_only',  # Only the logits are last layers.
    'tf_initial_checkpoint',  # Checkpoint a new run starts from, or None.
    'initialize_last_layer',  # Also restore the last layers from it.
    'model_variant',  # Backbone; its classification head is never restored.
])


def last_layer_scopes(options):
  """Scopes of the layers trained from scratch (docs/DESIGN.md §Initialisation)."""
  return model.get_extra_layer_scopes(options.last_layers_contain_logits_only)


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


def build_graph(config, options, build_clone_fn):
  """Builds the training graph in the default graph: global step, clones,
  learning rate, optimizer, train op and the loss summaries.

  Args:
    config: DeploymentConfig.
    options: TrainOptions (the seed, the optimisation and last-layer fields).
    build_clone_fn: as for `train`.

  Returns:
    (model_deploy.TrainOp, the learning-rate tensor).
  """
  tf.set_random_seed(options.seed)
  global_step = model_deploy.create_global_step(config)
  clones = model_deploy.create_clones(config, build_clone_fn)
  with tf.device(config.optimizer_device()):
    learning_rate, optimizer = optimization.learning_rate_and_optimizer(
        options.optimization, options.training_number_of_steps)
    gradient_multipliers = train_utils.get_model_gradient_multipliers(
        last_layer_scopes(options), options.last_layer_gradient_multiplier)
    train_op = model_deploy.build_train_op(config, clones, optimizer,
                                           global_step, gradient_multipliers)
  summaries.add_loss_summaries(clones, train_op.total_loss, learning_rate)
  return train_op, learning_rate


def train(config, options, build_clone_fn, images_per_step, datasets=()):
  """Builds the training graph in the default graph and runs the loop.

  A train_logdir whose checkpoint already reached
  `options.training_number_of_steps` is left alone (one log line).

  Args:
    config: DeploymentConfig.
    options: TrainOptions.
    build_clone_fn: build_clone_fn(clone_index) adds one clone's losses; may add
      summaries, console scalars and monitoring updates.
    images_per_step: images consumed per step (for the images/s figure).
    datasets: the data_generator.Dataset objects read (to name a corrupt file
      or a bad label in an error).
  """
  finished = logdir_guard.checkpoint_step(options.train_logdir)
  if finished and finished[1] >= options.training_number_of_steps:
    logging.info('Training already finished: %s is at step %d >= '
                 '--training_number_of_steps=%d; nothing to do.',
                 finished[0], finished[1], options.training_number_of_steps)
    return
  with logdir_guard.LogdirGuard(options.train_logdir,
                                config.is_chief) as guard:
    train_op, learning_rate = build_graph(config, options, build_clone_fn)
    init_fn = initial_checkpoint_init_fn(
        options.train_logdir, options.tf_initial_checkpoint,
        options.initialize_last_layer, last_layer_scopes(options),
        options.model_variant)
    run_loop(config, options, train_op, learning_rate, images_per_step,
             init_fn, guard=guard, datasets=datasets)


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


def _wait_for_startup_delay(session, global_step, target):
  """Waits until global_step >= target (non-chief task k: k x the delay).

  The step is read past the hooks: the ProgressHook fetches the train op's
  step with every run, and that read depends on the update, so a
  `session.run(global_step)` trained one step per poll.
  """
  read_step = lambda step_context: step_context.session.run(global_step)
  while session.run_step_fn(read_step) < target:
    time.sleep(1.0)


class _TrainedHook(tf.train.SessionRunHook):
  """Marks the LogdirGuard once a step completed."""

  def __init__(self, guard):
    self._guard = guard

  def after_run(self, run_context, run_values):
    self._guard.trained = True


# Seconds between a non-chief worker's checks that the chief has initialised
# or restored the model. MonitoredTrainingSession gives a non-chief a
# tf.train.WorkerSessionCreator, whose SessionManager keeps the default
# recovery_wait_secs=30 with no argument to change it: a worker that checked
# once before the chief was ready sat idle for up to 30 s. A check is one
# small run (report_uninitialized_variables on the parameter servers).
_WORKER_POLL_SECS = 1
# How long a non-chief waits for the chief before DeadlineExceededError:
# MonitoredTrainingSession's max_wait_secs default.
_WORKER_MAX_WAIT_SECS = 7200


class _WorkerSessionCreator(tf.train.SessionCreator):
  """tf.train.WorkerSessionCreator with _WORKER_POLL_SECS between checks:
  the same public SessionManager, given the scaffold's ops as TensorFlow's
  creator gives them, and a recovery_wait_secs."""

  def __init__(self, scaffold, master, config):
    self._scaffold = scaffold
    self._master = master
    self._config = config

  def create_session(self):
    self._scaffold.finalize()
    manager = tf.train.SessionManager(
        local_init_op=self._scaffold.local_init_op,
        local_init_feed_dict=self._scaffold.local_init_feed_dict,
        ready_op=self._scaffold.ready_op,
        ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
        graph=tf.get_default_graph(),
        recovery_wait_secs=_WORKER_POLL_SECS)
    return manager.wait_for_session(self._master, config=self._config,
                                    max_wait_secs=_WORKER_MAX_WAIT_SECS)


class _ReconnectingSessionCreator(tf.train.SessionCreator):
  """A cluster task's session creator that gives up on a lost cluster.

  MonitoredSession makes a new session when a run fails with UnavailableError
  or AbortedError (a parameter server or the chief stopped), and again each
  time making one fails so; TensorFlow itself would wait for a lost task
  forever. Here, from the first failure on, a new session is tried once
  `hosts` accept connections again, at most once a second (gRPC reconnects
  to a restarted task with a backoff, failing at once meanwhile), until
  `timeout_secs` passed; then one TrainingError names the lost hosts.
  """

  def __init__(self, creator, hosts, timeout_secs, logdir):
    self._creator = creator
    self._hosts = hosts
    self._timeout_secs = timeout_secs
    self._logdir = logdir
    self._attempted = False
    self._deadline = None  # Of the reconnection under way.

  def create_session(self):
    if self._attempted:
      self._wait_for_hosts()
    self._attempted = True
    session = self._creator.create_session()
    self._deadline = None
    return session

  def _wait_for_hosts(self):
    if self._deadline is None:
      self._deadline = time.time() + self._timeout_secs
      logging.warning('Lost the connection to the cluster; waiting at most '
                      '%d s for %s.', self._timeout_secs,
                      ', '.join(self._hosts))
    else:
      time.sleep(1.0)
    lost = cluster.unreachable_hosts(
        self._hosts, max(0.0, self._deadline - time.time()))
    if lost or time.time() > self._deadline:
      raise TrainingError(
          'lost the connection to %s during training and could not connect '
          'again within --cluster_timeout_secs=%d; restart every task with '
          'its command to resume from the last checkpoint in %s.' % (
              ', '.join(lost or self._hosts), self._timeout_secs,
              self._logdir))


def _monitored_session(config, logdir, scaffold, hooks, chief_hooks,
                       session_config):
  """The MonitoredSession of this task, as MonitoredTrainingSession builds
  it: the chief restores or initialises, and runs `chief_hooks` before
  `hooks`; another worker waits for the chief, with the shorter polls of
  _WorkerSessionCreator. In a cluster it gives up once a lost task does not
  come back within config.cluster_timeout_secs."""
  # The chief's sync-replicas queue runner waits for gradients no worker
  # sends after the last step; closing the session cancels it.
  grace_secs = 5 if config.sync_replicas else 120
  if config.is_chief:
    creator = tf.train.ChiefSessionCreator(
        scaffold=scaffold, checkpoint_dir=logdir, master=config.master,
        config=session_config)
    hooks = chief_hooks + hooks
  else:
    creator = _WorkerSessionCreator(scaffold, config.master, session_config)
  if config.cluster_hosts:
    creator = _ReconnectingSessionCreator(
        creator, config.cluster_hosts, config.cluster_timeout_secs, logdir)
  return tf.train.MonitoredSession(session_creator=creator, hooks=hooks,
                                   stop_grace_period_secs=grace_secs)


def _save_now(session, saver, global_step, finite_check, logdir):
  """Writes a checkpoint of the current state into `logdir` (on Ctrl-C or
  SIGTERM); returns (its global step, a note naming it).

  The step is read from the session, not from the ProgressHook: a signal
  raises as soon as the run of a step returns, before the hooks saw it.
  """
  result = []

  def save(step_context):
    step = step_context.session.run(global_step)
    finite_check.before_save(step_context.session, step)
    result.append((step, 'saved %s' % saver.save(
        step_context.session,
        os.path.join(logdir, logdir_guard.CHECKPOINT_BASENAME),
        global_step=step)))
  session.run_step_fn(save)
  return result[0]


def _raise_training_error(error, progress, datasets, logdir):
  """Re-raises a TF error of the loop in `logdir` as a one-line InputError or
  TrainingError."""
  explained = data_generator.explain_data_error(error, datasets)
  if explained is not None:
    raise explained from None
  if 'No space left on device' in error.message:
    last = tf.train.latest_checkpoint(logdir)
    raise TrainingError(
        'the disk of --train_logdir %s is full (%s); training stopped. The '
        'last complete checkpoint is %s: free space and rerun the same '
        'command to resume.' % (logdir,
                                error.message.splitlines()[0],
                                last or 'none')) from None
  if (isinstance(error, tf.errors.InvalidArgumentError) and
      'Loss is inf or nan' in error.message):
    failed_step = ('after step %d' % progress.last_completed_step
                   if progress.last_completed_step else 'in the first step')
    last = tf.train.latest_checkpoint(logdir)
    raise TrainingError(
        'The loss became NaN or Inf %s; training stopped. The last good '
        'checkpoint is %s.' % (failed_step, last or 'none')) from None
  raise error


def run_loop(config, options, train_op, learning_rate, images_per_step,
             init_fn, guard=None, datasets=()):
  """Runs the train op until `options.training_number_of_steps`,
  checkpointing.

  Ctrl-C or SIGTERM stops it once the step under way is done: the chief saves
  a checkpoint of it, then utils.errors.Interrupted says what was kept.

  Args:
    config: DeploymentConfig.
    options: TrainOptions.
    train_op: model_deploy.TrainOp.
    learning_rate: the learning-rate tensor (logged).
    images_per_step: images consumed per step (for the images/s figure).
    init_fn: Scaffold init_fn of a new run, or None.
    guard: the LogdirGuard of the run (told when a step completed), or None.
    datasets: Datasets of the run, searched to explain a data error.
  """
  last_step = options.training_number_of_steps
  logdir = options.train_logdir
  saver = tf.train.Saver(max_to_keep=options.max_to_keep,
                         keep_checkpoint_every_n_hours=10000.0)
  scaffold = tf.train.Scaffold(init_fn=init_fn, saver=saver)
  progress = hooks.ProgressHook(train_op, learning_rate, last_step,
                                images_per_step, options.log_steps)
  all_hooks = [tf.train.StopAtStepHook(last_step=last_step), progress]
  all_hooks.extend(train_op.hooks)
  if guard is not None:
    all_hooks.append(_TrainedHook(guard))
  if options.profile_logdir:
    all_hooks.append(tf.train.ProfilerHook(
        save_steps=max(1, options.log_steps),
        output_dir=options.profile_logdir))
  finite_check = hooks.FiniteStateCheck(logdir)
  chief_hooks, writer = [], None
  if config.is_chief:
    writer = tf.summary.FileWriter(logdir)
  if config.is_chief and options.save_summaries_secs > 0:
    chief_hooks.append(tf.train.SummarySaverHook(
        save_secs=options.save_summaries_secs, summary_writer=writer,
        scaffold=scaffold))
  if config.is_chief and options.save_interval_secs > 0:
    write_graph = not (guard.had_checkpoint if guard is not None else
                       tf.train.latest_checkpoint(logdir))
    chief_hooks.append(hooks.CheckpointSaverHook(
        logdir, options.save_interval_secs, saver, [finite_check],
        write_graph, writer))
  else:
    finite_check.begin()
  global_step = tf.train.get_global_step()
  session_config = _session_config()
  session_config.device_filters.extend(config.device_filters())
  try:
    # SIGTERM (Slurm, Kubernetes) winds down as Ctrl-C does below.
    with sigterm_like_ctrl_c(), _monitored_session(
        config, logdir, scaffold, all_hooks, chief_hooks,
        session_config) as session:
      # Synchronous replicas start together: the chief alone cannot advance.
      if not config.is_chief and not config.sync_replicas:
        # A short run may end before task k's delay: then it starts at the
        # end (and stops) instead of waiting forever.
        _wait_for_startup_delay(session, global_step, min(
            config.task * options.startup_delay_steps, last_step))
      try:
        while not session.should_stop():
          raise_if_interrupted()
          _run_update(session, train_op)
      except KeyboardInterrupt as interrupt:
        # Another task only reports the last step it saw: reading the global
        # step would need the parameter servers, which may be gone.
        step, note = progress.last_completed_step, 'not saved (not the chief)'
        if config.is_chief:
          step, note = _save_now(session, saver, global_step, finite_check,
                                 logdir)
        raise Interrupted('training stopped %s; %s' % (
            'after step %d' % step if step else 'before its first step',
            note), signal_of(interrupt)) from None
  except tf.errors.OpError as error:
    _raise_training_error(error, progress, datasets, logdir)
  finally:
    if writer is not None:
      writer.close()
  logging.info('Training finished at step %d; checkpoints in %s',
               progress.last_completed_step or last_step, logdir)
