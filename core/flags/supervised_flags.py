"""Flags of the supervised branch and the training splits (docs/DESIGN.md
§Flags).

What a run was trained on (`--train_split`, `--train_split_cls`) and how its
supervised branch is built (`SupervisedOptions`): defined once for the
training scripts (through core/flags/train_flags.py) and for analyze.py,
which builds the PseudoSeg runs' options it analyses from the same flags.
"""
from absl import flags

from core.flags import common_flags  # noqa: F401  (defines image_pyramid)
from core.method import supervised

FLAGS = flags.FLAGS

# Logging.
flags.DEFINE_boolean('save_summaries_images', False,
                     'Add image summaries (inputs, labels, predictions).')

# Batch and model.
flags.DEFINE_float('weight_decay', 0.00004, 'L2 weight decay.')
flags.DEFINE_boolean('upsample_logits', True,
                     'Compute the loss on logits upsampled to the label size '
                     '(else on labels downsampled to the logits size).')

# Fine-tuning.
flags.DEFINE_boolean('fine_tune_batch_norm', True,
                     'Train batch norm (batch statistics and moving averages).')

# Loss.
flags.DEFINE_integer('hard_example_mining_step', 0,
                     'Steps over which top-k pixel mining ramps in.')
flags.DEFINE_float('top_k_percent_pixels', 1.0,
                   'Fraction of the hardest pixels kept in the loss.')

# Data.
flags.DEFINE_string('train_split', 'train', 'Labeled split (tfrecord prefix).')
flags.DEFINE_string('train_split_cls', 'train_aug',
                    'Unlabeled / image-level-labeled split.')


def supervised_options_from_flags(model_options):
  """The SupervisedOptions of the parsed flags around `model_options`."""
  return supervised.SupervisedOptions(
      model=model_options,
      image_pyramid=FLAGS.image_pyramid,
      weight_decay=FLAGS.weight_decay,
      fine_tune_batch_norm=FLAGS.fine_tune_batch_norm,
      upsample_logits=FLAGS.upsample_logits,
      hard_example_mining_step=FLAGS.hard_example_mining_step,
      top_k_percent_pixels=FLAGS.top_k_percent_pixels,
      save_summaries_images=FLAGS.save_summaries_images)
