"""Session hooks of the training loop: the progress line and the checkpoint
saver that never writes a non-finite state nor the graph twice."""
import time

from core.method import monitoring
from core.train import logdir_guard
from core.train import summaries
from deeplab.tf_compat import tf
from utils import progress
from utils.errors import TrainingError


class ProgressHook(tf.train.SessionRunHook):
  """Logs step, losses, learning rate, s/step, images/s and ETA every
  `every_n` steps, as the one progress line (utils/progress.py).

  The loss, learning rate and console scalars (the ECE reductions of
  train_wss among them) are fetched only by the runs that log them, so the
  other steps do not compute them: a run logs when the global step it will
  reach (the last one seen + 1) is a multiple of `every_n` or the last step.
  The speed, and the ETA from it, are those since the previous line: the
  first run (graph set-up, input warm-up) only starts the clock.
  """

  def __init__(self, train_op, learning_rate, last_step, images_per_step,
               every_n, clock=time.monotonic):
    self._fetches = {'total_loss': train_op.total_loss,
                     'learning_rate': learning_rate,
                     'scalars': {summaries.console_name(t): t for t in
                                 tf.get_collection(monitoring.CONSOLE_SCALARS)}}
    self._step = train_op.step
    self._last_step = last_step
    self._images_per_step = images_per_step
    self._every_n = max(1, every_n)
    self._clock = clock

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
    now = self._clock()
    if self._last_time is None:
      self._last_time, self._last_logged_step = now, step
      return
    values = run_values.results.get('values')
    if values is None:
      return
    steps = max(1, step - self._last_logged_step)
    seconds_per_step = (now - self._last_time) / steps
    self._last_time, self._last_logged_step = now, step
    self._log(step, values, seconds_per_step)

  def _log(self, step, values, seconds_per_step):
    """Logs the progress line of `step` from its fetched `values`."""
    terms = ' '.join('%s=%.4f' % (name, value) for name, value in
                     sorted(values['scalars'].items()))
    progress.log_progress(
        'step', step, self._last_step, fields=[
            'total_loss=%.4f' % values['total_loss'], terms,
            'lr=%.6g' % values['learning_rate'],
            '%.2f s/step' % seconds_per_step,
            '%.2f images/s' % (self._images_per_step / seconds_per_step)],
        eta_seconds=seconds_per_step * max(0, self._last_step - step))


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
        checkpoint_basename=logdir_guard.CHECKPOINT_BASENAME,
        listeners=listeners)
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
