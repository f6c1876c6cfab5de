"""Checks of command-line values, done at the edge before anything is built.

The functions take the values (not the flags object) and the flag's name, so
each bad value is one InputError line naming the flag to fix.
"""

import os

from utils.errors import InputError


def parse_crop_size(values, flag_name):
  """Returns [height, width] (ints > 0) from a list flag like ['513', '513']."""
  try:
    crop = [int(value) for value in values]
  except (TypeError, ValueError):
    crop = None
  if not crop or len(crop) != 2 or min(crop) <= 0:
    raise InputError('--%s must be two positive integers "height,width", got %r'
                     % (flag_name, values))
  return crop


def parse_optional_crop_size(values, flag_name):
  """[h, w] from a list flag, or None when the flag is empty."""
  if not values:
    return None
  return parse_crop_size(values, flag_name)


def check_positive(value, flag_name):
  """Raises InputError unless the integer flag value is >= 1."""
  if value < 1:
    raise InputError('--%s must be >= 1, got %d' % (flag_name, value))


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


def check_scales(scales):
  """Returns the eval scales as a list of floats; each must be > 0."""
  scales = [float(scale) for scale in (scales or [1.0])]
  if min(scales) <= 0:
    raise InputError('--eval_scales must all be > 0, got %s' % scales)
  return scales


def check_output_dir(path, flag_name):
  """Raises InputError if `path` exists and is not a directory."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise InputError('--%s %s exists and is not a directory' %
                     (flag_name, path))
