"""Options of the scripts that use a trained model, from their flags: the
evaluation data of eval.py, vis.py and analyze.py, and the checkpoint
settings export_model.py and predict.py share.

The flags themselves are the shared ones of core/flags/common_flags.py plus
each script's own.
"""
import collections

from absl import flags

from core.data import registry
from core.eval import eval_graph
from core.flags import common_flags  # noqa: F401  (defines the flags read here)
from core.flags import flag_checks
from core.serving import inference
from utils import checkpoint_paths

FLAGS = flags.FLAGS


def eval_data_options_from_flags():
  """The eval_graph.EvalDataOptions of the parsed flags (each field is the
  flag of the same name)."""
  return eval_graph.EvalDataOptions(
      **{name: getattr(FLAGS, name)
         for name in eval_graph.EvalDataOptions._fields})


# What export_model.py and predict.py need to build the inference graph of a
# checkpoint: crop_size [h, w] or None, eval_scales (floats > 0), num_classes
# and the checkpoint prefix.
CheckpointSettings = collections.namedtuple(
    'CheckpointSettings', ['crop_size', 'eval_scales', 'num_classes',
                           'checkpoint'])


def checkpoint_settings_from_flags(crop_flag):
  """Checks the flags export_model.py and predict.py share (one rule).

  Reads `crop_flag`, eval_scales, dataset, checkpoint_dir,
  image_pooling_crop_size, min_resize_value and max_resize_value.

  Args:
    crop_flag: the name of the script's crop-size flag (empty: no padding).

  Returns:
    CheckpointSettings.
  """
  crop_size = flag_checks.parse_optional_crop_size(getattr(FLAGS, crop_flag),
                                                   crop_flag)
  scales = flag_checks.check_scales(FLAGS.eval_scales)
  inference.check_inference_options(FLAGS.image_pooling_crop_size,
                                    FLAGS.min_resize_value,
                                    FLAGS.max_resize_value)
  descriptor = registry.get_dataset_descriptor(FLAGS.dataset)
  checkpoint = checkpoint_paths.resolve_checkpoint(FLAGS.checkpoint_dir,
                                                   'checkpoint_dir')
  return CheckpointSettings(crop_size, scales, descriptor.num_classes,
                            checkpoint)
