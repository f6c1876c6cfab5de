"""Which checkpoint a path names: the one rule for every script.

A checkpoint is named by its prefix `<dir>/model.ckpt-<step>`; it is complete
when its `.index` file and every data file (`.data-0000i-of-0000n`) exist. The
Saver writes the index, and then the `checkpoint` state file, only after the
data files, so a save cut short by a kill leaves no index; the check of the
data files rejects what a half-deleted or half-copied checkpoint leaves (an
index without its data). A directory names its latest complete checkpoint.
Training initialisation (deeplab/train_utils.py), evaluation, visualisation,
export and analysis all resolve paths here; this module lives under utils/
because deeplab/ must not import core/.
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
  """Whether `path` names a complete checkpoint: `<path>.index` and all the
  data files `<path>.data-0000i-of-0000n`, i < n, exist."""
  if not tf.io.gfile.exists(path + _INDEX):
    return False
  shards = tf.io.gfile.glob(path + '.data-?????-of-?????')
  if not shards:
    return False
  total = int(shards[0][-5:])
  return all(tf.io.gfile.exists('%s.data-%05d-of-%05d' % (path, shard, total))
             for shard in range(total))


def step_of(prefix):
  """The `-<step>` suffix of a checkpoint prefix as an int, or None."""
  match = _TRAILING_STEP.search(prefix)
  return int(match.group(1)) if match else None


def indexed_checkpoints(directory):
  """Every complete checkpoint in `directory`: list of (step or None, prefix),
  in no particular order (one per `*.index` file whose data files exist)."""
  prefixes = [index[:-len(_INDEX)] for index in
              tf.io.gfile.glob(os.path.join(directory, '*' + _INDEX))]
  return [(step_of(prefix), prefix) for prefix in prefixes
          if is_checkpoint_prefix(prefix)]


def prefix_named_by(path):
  """The checkpoint prefix that a prefix or one of its files names, or None."""
  prefix = _CHECKPOINT_FILE_SUFFIX.sub('', path)
  return prefix if is_checkpoint_prefix(prefix) else None


def latest_checkpoint(directory):
  """Returns the newest checkpoint prefix in `directory`, or None.

  Uses the `checkpoint` state file when it names a complete checkpoint;
  otherwise (state file missing or stale, e.g. copied checkpoints, or naming
  deleted files) the prefix with the highest `-<step>` suffix, then the most
  recent, among the complete checkpoints.
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
                     '(no %s.index, or its data files are missing)' % (
                         flag_name, path,
                         _CHECKPOINT_FILE_SUFFIX.sub('', path)))
  return prefix
