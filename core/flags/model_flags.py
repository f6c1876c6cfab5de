"""The model flags of core/flags/common_flags.py turned into a `ModelOptions`
(the edge).

Entry scripts call `model_options_from_flags` once; library code receives the
options object and never reads a flag.
"""
from absl import flags

from core.flags import common_flags  # noqa: F401  (defines the flags read here)
from deeplab import common
from utils.errors import InputError

FLAGS = flags.FLAGS

_UNSUPPORTED_WHEN_SET = ('aspp_with_squeeze_and_excitation',
                         'decoder_use_sum_merge', 'decoder_output_is_logits',
                         'image_se_uses_qsigmoid')


def _ints_or_none(values):
  return None if values is None else [int(v) for v in values]


def check_supported_flags():
  """Raises InputError for DeepLab options this project does not implement."""
  for name in _UNSUPPORTED_WHEN_SET:
    if getattr(FLAGS, name):
      raise InputError('--%s is not supported by this implementation.' % name)
  if FLAGS.dense_prediction_cell_json:
    raise InputError('--dense_prediction_cell_json is not supported.')
  if FLAGS.quantize_delay_step >= 0:
    raise InputError('--quantize_delay_step >= 0 needs tf.contrib.quantize, '
                     'which does not exist in TensorFlow 2.')


def model_options_from_flags(num_classes, crop_size):
  """ModelOptions of the scripts: `num_classes` classes, crop [h, w] or None."""
  check_supported_flags()
  values = {name: getattr(FLAGS, name) for name in common.MODEL_DEFAULTS}
  for name in ('image_pooling_crop_size', 'image_pooling_stride',
               'decoder_output_stride'):
    values[name] = _ints_or_none(values[name])
  return common.ModelOptions({common.OUTPUT_TYPE: num_classes},
                             crop_size=crop_size,
                             atrous_rates=FLAGS.atrous_rates,
                             output_stride=FLAGS.output_stride, **values)
