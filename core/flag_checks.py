"""Checks of command-line values, done at the edge before anything is built.

The functions take the values (not the flags object) and the flag's name, so
each bad value is one InputError line naming the flag to fix.
"""

from core import data_generator
from deeplab.tf_compat import tf
from utils.errors import InputError


def require_flags(flag_values, names):
  """Raises InputError naming every flag in `names` that is unset or empty."""
  missing = ['--%s' % name for name in names if not flag_values[name].value]
  if missing:
    raise InputError('missing required flag(s): %s' % ', '.join(missing))


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


def check_positive(value, flag_name):
  """Raises InputError unless the integer flag value is >= 1."""
  if value < 1:
    raise InputError('--%s must be >= 1, got %d' % (flag_name, value))


def check_scales(scales):
  """Returns the eval scales as a list of floats; each must be > 0."""
  scales = [float(scale) for scale in (scales or [1.0])]
  if min(scales) <= 0:
    raise InputError('--eval_scales must all be > 0, got %s' % scales)
  return scales


def check_dataset_split(registry, dataset_name, split, dataset_dir):
  """Validates dataset name, split and files; returns the registered split size.

  Args:
    registry: dict dataset name -> descriptor with `splits_to_sizes`
      (core.data_generator.DATASETS).
    dataset_name: --dataset.
    split: split name (tfrecord file prefix).
    dataset_dir: folder that must hold `<split>-*` files.

  Returns:
    The number of images the registry records for the split (used for progress).
  """
  if dataset_name not in registry:
    raise InputError('unknown --dataset %r; known: %s' %
                     (dataset_name, ', '.join(sorted(registry))))
  splits_to_sizes = registry[dataset_name].splits_to_sizes
  if split not in splits_to_sizes:
    raise InputError('unknown split %r for dataset %s; known: %s' %
                     (split, dataset_name, ', '.join(sorted(splits_to_sizes))))
  if not tf.io.gfile.isdir(dataset_dir):
    raise InputError('--dataset_dir %s is not a directory' % dataset_dir)
  if not data_generator.split_files(dataset_dir, split):
    raise InputError('no tfrecord files %s-NNNNN-of-NNNNN in --dataset_dir %s'
                     % (split, dataset_dir))
  return splits_to_sizes[split]
