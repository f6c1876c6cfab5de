"""Polling, reading and restoring trained checkpoints (eval, vis, analysis,
export, predict).

Which checkpoint a path names is decided by utils/checkpoint_paths.py.
Restoring here differs on purpose from initialising training from a
pre-trained checkpoint (deeplab/train_utils.get_model_init_fn): a trained
checkpoint is restored whole (global step included) and a variable it lacks
keeps its initial value with a warning, whereas training initialisation skips
the global step (and the last layers unless asked), and treats a missing
variable as an error unless told to ignore it.
"""
import collections
import time

import numpy as np
from absl import logging

from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils.errors import InputError
from utils.errors import raise_if_interrupted


class CheckpointVanished(Exception):
  """A checkpoint was deleted (rotated away by training) before it was read."""


def checkpoints_to_evaluate(checkpoint_dir, interval_secs, max_evaluations,
                            find_latest=checkpoint_paths.latest_checkpoint,
                            sleep=time.sleep,
                            clock=time.time, skipped=None):
  """Yields checkpoint prefixes to evaluate, newest first, then new ones.

  The latest checkpoint is yielded at once; afterwards `checkpoint_dir` is
  polled every `interval_secs` and each new checkpoint is yielded, at least
  `interval_secs` after the previous yield. A checkpoint prefix (instead of a
  directory) is yielded once. Stops after `max_evaluations` yields (<= 0:
  never).

  A single evaluation (`max_evaluations == 1`) without a checkpoint is an
  InputError at once: it must not wait forever. A watcher (any other value)
  may start before its trainer: it waits for the folder and its first
  checkpoint. Each wait is logged once, naming the folder.

  `skipped`: an optional set; a yielded prefix the caller adds to it before
  asking for the next one (e.g. it vanished before it could be read) does not
  count towards `max_evaluations`, and the next checkpoint is looked for at
  once.
  """
  if not tf.io.gfile.isdir(checkpoint_dir):
    if (max_evaluations == 1 or
        checkpoint_paths.prefix_named_by(checkpoint_dir) is not None):
      yield checkpoint_paths.resolve_checkpoint(checkpoint_dir,
                                                'checkpoint_dir')
      return
  elif max_evaluations == 1 and find_latest(checkpoint_dir) is None:
    raise InputError('--checkpoint_dir %s holds no checkpoint' % checkpoint_dir)
  poll_secs = max(interval_secs, 1)
  last, count, last_start, waiting = None, 0, None, False
  while max_evaluations <= 0 or count < max_evaluations:
    # A Ctrl-C or SIGTERM swallowed by a finalizer stops the watcher here.
    raise_if_interrupted()
    if last_start is not None:
      remaining = last_start + interval_secs - clock()
      if remaining > 0:
        sleep(remaining)
    path = (find_latest(checkpoint_dir) if tf.io.gfile.isdir(checkpoint_dir)
            else None)
    if path is None or path == last:
      if not waiting:
        _log_waiting(checkpoint_dir, first=last is None)
        waiting = True
      sleep(poll_secs)
      continue
    last, count, last_start, waiting = path, count + 1, clock(), False
    yield path
    if skipped is not None and path in skipped:
      count, last_start = count - 1, None


def _log_waiting(checkpoint_dir, first):
  """The one log line of a watcher that starts to wait."""
  if not first:
    logging.info('Waiting for a new checkpoint in %s.', checkpoint_dir)
  elif tf.io.gfile.isdir(checkpoint_dir):
    logging.info('Waiting for the first checkpoint in %s.', checkpoint_dir)
  else:
    logging.info('Waiting for the first checkpoint in %s, which does not '
                 'exist yet.', checkpoint_dir)


# The variable holding the step a checkpoint was saved at.
_GLOBAL_STEP = 'global_step'


def checkpoint_global_step(checkpoint_path, values=None):
  """The step of a checkpoint: its `global_step` variable, else the
  `-<step>` suffix of its name, else None.

  The one reader of a checkpoint's step (eval, export, the training loop's
  "already finished" check); the suffix covers checkpoints saved without the
  variable (e.g. converted ones).

  Args:
    checkpoint_path: checkpoint prefix.
    values: {name: array} already read from the checkpoint (a snapshot, whose
      files may be gone since), or None to read the variable from the files.

  Returns:
    int or None.
  """
  if values is None:
    reader = tf.train.load_checkpoint(checkpoint_path)
    values = ({_GLOBAL_STEP: reader.get_tensor(_GLOBAL_STEP)}
              if reader.has_tensor(_GLOBAL_STEP) else {})
  if _GLOBAL_STEP in values:
    return int(values[_GLOBAL_STEP])
  return checkpoint_paths.step_of(checkpoint_path)


# A checkpoint read into memory: prefix, global step (or None), name -> array.
CheckpointSnapshot = collections.namedtuple('CheckpointSnapshot',
                                            ['path', 'global_step', 'values'])


def snapshot_checkpoint(checkpoint_path, settle_secs=1.0):
  """Reads a checkpoint that may vanish (a watcher's) into memory at once.

  Training with `--max_to_keep` deletes old checkpoints at any time, so a
  watcher reads every tensor right after it picks the checkpoint, before it
  builds the model and runs the evaluation pass.

  Returns:
    CheckpointSnapshot (global step: `checkpoint_global_step`).

  Raises:
    CheckpointVanished: the checkpoint was deleted before or while it was read.
  """
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
    values = {name: reader.get_tensor(name)
              for name in reader.get_variable_to_shape_map()}
  except (tf.errors.NotFoundError, tf.errors.DataLossError) as error:
    # Deleting a checkpoint's files is not atomic: give the Saver a moment.
    if checkpoint_paths.is_checkpoint_prefix(checkpoint_path):
      time.sleep(settle_secs)
    if checkpoint_paths.is_checkpoint_prefix(checkpoint_path):
      raise
    raise CheckpointVanished(
        'checkpoint %s was deleted before it could be read (rotated away by '
        'training, see --max_to_keep); skipped' % checkpoint_path) from error
  return CheckpointSnapshot(checkpoint_path,
                            checkpoint_global_step(checkpoint_path, values),
                            values)


def _non_finite_error(checkpoint_path, bad_names):
  return InputError('checkpoint %s holds NaN or Inf in %d variable(s) (e.g. '
                    '%s): training diverged before it was saved; use an '
                    'earlier checkpoint' % (checkpoint_path, len(bad_names),
                                            ', '.join(bad_names[:3])))


def check_finite_variables(sess, variables, checkpoint_path):
  """Raises InputError if any float variable holds NaN or Inf after restore."""
  floats = [v for v in variables if v.dtype.base_dtype.is_floating]
  if not floats:
    return
  finite = sess.run([tf.reduce_all(tf.math.is_finite(v)) for v in floats])
  bad = [v.op.name for v, ok in zip(floats, finite) if not ok]
  if bad:
    raise _non_finite_error(checkpoint_path, bad)


def _match_variables(variables, shapes, checkpoint_path):
  """Splits variables into {name: variable} found in `shapes` and missing ones.

  Raises InputError on a shape mismatch or when none is found.
  """
  present, missing = {}, []
  for variable in variables:
    name = variable.op.name
    if name not in shapes:
      missing.append(variable)
      continue
    if list(shapes[name]) != variable.shape.as_list():
      raise InputError('variable %s has shape %s in checkpoint %s but %s in '
                       'the model: check the model flags and the dataset' %
                       (name, list(shapes[name]), checkpoint_path,
                        variable.shape.as_list()))
    present[name] = variable
  if variables and not present:
    raise InputError('checkpoint %s holds none of the model variables (wrong '
                     '--model_variant?)' % checkpoint_path)
  return present, missing


def _initialize_missing(sess, missing, checkpoint_path):
  for variable in sorted(missing, key=lambda v: v.op.name):
    logging.warning('Variable %s is missing from checkpoint %s; it keeps its '
                    'initial value.', variable.op.name, checkpoint_path)
  if missing:
    sess.run(tf.variables_initializer(missing))
  return sorted(variable.op.name for variable in missing)


def restore_variables(sess, checkpoint_path, variables=None):
  """Restores `variables` (default: all global) from a checkpoint.

  Variables missing from the checkpoint keep their initial value and are
  logged one warning each (e.g. a classification head the checkpoint never
  had). A shape mismatch means the model flags do not fit the checkpoint and is
  an InputError, as is a checkpoint holding none of the variables or one
  holding NaN or Inf (a diverged training run).

  Returns:
    The sorted list of names of the variables that were not restored.
  """
  variables = tf.global_variables() if variables is None else variables
  shapes = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  present, missing = _match_variables(variables, shapes, checkpoint_path)
  not_restored = _initialize_missing(sess, missing, checkpoint_path)
  if present:
    tf.train.Saver(var_list=present).restore(sess, checkpoint_path)
    check_finite_variables(sess, list(present.values()), checkpoint_path)
  return not_restored


def restore_snapshot(sess, snapshot, variables=None):
  """restore_variables from a CheckpointSnapshot (same checks and result)."""
  variables = tf.global_variables() if variables is None else variables
  shapes = {name: list(value.shape) for name, value in snapshot.values.items()}
  present, missing = _match_variables(variables, shapes, snapshot.path)
  bad = sorted(name for name in present
               if np.issubdtype(snapshot.values[name].dtype, np.floating) and
               not np.isfinite(snapshot.values[name]).all())
  if bad:
    raise _non_finite_error(snapshot.path, bad)
  not_restored = _initialize_missing(sess, missing, snapshot.path)
  # One run that feeds each initializer the checkpoint's value (what
  # Variable.load does one variable and one run at a time).
  sess.run([variable.initializer for variable in present.values()],
           feed_dict={variable.initializer.inputs[1]: snapshot.values[name]
                      for name, variable in present.items()})
  return not_restored
