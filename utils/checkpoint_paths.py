"""Which checkpoint a path names: the one rule for every script.

A checkpoint is named by its prefix `<dir>/model.ckpt-<step>`; it is complete
once its `.index` file exists (the Saver writes the index, and the `checkpoint`
state file, only after the data files). A directory names its latest
checkpoint. Training initialisation (deeplab/train_utils.py), evaluation,
visualisation, export and analysis all resolve paths here; this module lives
under utils/ because deeplab/ must not import core/.
"""
import os
import re

from deeplab.tf_compat import tf
from utils.errors import InputError

# Suffixes of the files that make up one TF checkpoint `<prefix>`.
_CHECKPOINT_FILE_SUFFIX = re.compile(r'\.(index|meta|data-\d{5}-of-\d{5})$')
_TRAILING_STEP = re.compile(r'-(\d+)$')
_INDEX = '.index'


def is_checkpoint_prefix(path):
  """Whether `<path>.index` exists (a complete checkpoint)."""
  return tf.io.gfile.exists(path + _INDEX)


def step_of(prefix):
  """The `-<step>` suffix of a checkpoint prefix as an int, or None."""
  match = _TRAILING_STEP.search(prefix)
  return int(match.group(1)) if match else None


def indexed_checkpoints(directory):
  """Every complete checkpoint in `directory`: list of (step or None, prefix),
  in no particular order (one per `*.index` file)."""
  prefixes = [index[:-len(_INDEX)] for index in
              tf.io.gfile.glob(os.path.join(directory, '*' + _INDEX))]
  return [(step_of(prefix), prefix) for prefix in prefixes]


def prefix_named_by(path):
  """The checkpoint prefix that a prefix or one of its files names, or None."""
  prefix = _CHECKPOINT_FILE_SUFFIX.sub('', path)
  return prefix if is_checkpoint_prefix(prefix) else None


def latest_checkpoint(directory):
  """Returns the newest checkpoint prefix in `directory`, or None.

  Uses the `checkpoint` state file when it names an existing checkpoint;
  otherwise (state file missing or stale, e.g. copied checkpoints) the prefix
  with the highest `-<step>` suffix, then the most recent, among `*.index`
  files.
  """
  path = tf.train.latest_checkpoint(directory)
  if path and is_checkpoint_prefix(path):
    return path
  found = indexed_checkpoints(directory)
  if not found:
    return None
  def newest_first(step_and_prefix):
    step, prefix = step_and_prefix
    return (-1 if step is None else step,
            tf.io.gfile.stat(prefix + _INDEX).mtime_nsec)
  return max(found, key=newest_first)[1]


def resolve_checkpoint(path, flag_name):
  """Returns the checkpoint prefix named by a directory or a prefix.

  Args:
    path: a directory (its latest checkpoint is used), a checkpoint prefix such
      as `.../model.ckpt-30000`, or one of that checkpoint's files
      (`.index`, `.meta`, `.data-*`).
    flag_name: the flag `path` came from, for error messages.

  Returns:
    The checkpoint prefix (str).

  Raises:
    InputError: the directory holds no checkpoint, or the path names none.
  """
  if tf.io.gfile.isdir(path):
    found = latest_checkpoint(path)
    if found is None:
      raise InputError('--%s %s holds no checkpoint' % (flag_name, path))
    return found
  prefix = prefix_named_by(path)
  if prefix is None:
    raise InputError('--%s %s is neither a directory nor a checkpoint prefix '
                     '(no %s.index)' % (flag_name, path,
                                        _CHECKPOINT_FILE_SUFFIX.sub('', path)))
  return prefix
