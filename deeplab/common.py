"""Flags and options shared by every entry script (DeepLab's `common` module).

Each flag is defined here once. Scripts import this module, optionally change a
default with `flags.FLAGS.set_default`, and build a `ModelOptions` from the parsed
values.
"""
import collections

from absl import flags

from utils.errors import InputError

FLAGS = flags.FLAGS

# Model architecture.
flags.DEFINE_integer('min_resize_value', None,
                     'Desired size of the smaller image side (no resize if None).')
flags.DEFINE_integer('max_resize_value', None,
                     'Maximum allowed size of the larger image side.')
flags.DEFINE_integer('resize_factor', None,
                     'Resized dimensions are multiples of this factor plus one.')
flags.DEFINE_boolean('keep_aspect_ratio', True,
                     'Keep the aspect ratio when resizing (always true; kept for '
                     'command-line compatibility with DeepLab).')
flags.DEFINE_integer('logits_kernel_size', 1,
                     'Kernel size of the final logits convolution.')
flags.DEFINE_enum('model_variant', 'mobilenet_v2',
                  ['xception_41', 'xception_65', 'xception_71', 'mobilenet_v2'],
                  'Feature extractor. PseudoSeg uses xception_65; mobilenet_v2 is '
                  'the light variant for CPU runs.')
flags.DEFINE_multi_float('image_pyramid', None,
                         'Input scales for multi-scale feature extraction.')
flags.DEFINE_boolean('add_image_level_feature', True,
                     'Add the image-level pooling branch to ASPP.')
flags.DEFINE_list('image_pooling_crop_size', None,
                  'Crop size (height,width) the image-pooling window is derived '
                  'from; defaults to the crop size.')
flags.DEFINE_list('image_pooling_stride', '1,1',
                  'Stride (height,width) of the image-pooling average pool.')
flags.DEFINE_boolean('aspp_with_batch_norm', True,
                     'Use batch norm in the ASPP branches.')
flags.DEFINE_boolean('aspp_with_separable_conv', True,
                     'Use separable convolutions for the atrous ASPP branches.')
flags.DEFINE_multi_integer('multi_grid', None,
                           'Per-unit atrous rates of the last Xception block.')
flags.DEFINE_float('depth_multiplier', 1.0,
                   'Channel multiplier of MobileNet-v2.')
flags.DEFINE_integer('divisible_by', None,
                     'Round MobileNet-v2 channel counts to a multiple of this.')
flags.DEFINE_list('decoder_output_stride', None,
                  'Output stride(s) of the decoder, e.g. 4. None disables it.')
flags.DEFINE_boolean('decoder_use_separable_conv', True,
                     'Use separable convolutions in the decoder.')
flags.DEFINE_enum('merge_method', 'max', ['max', 'avg'],
                  'How multi-scale logits are merged.')
flags.DEFINE_boolean('prediction_with_upsampled_logits', True,
                     'Upsample logits before the argmax at inference (else '
                     'argmax first, then nearest upsampling).')
flags.DEFINE_string('dense_prediction_cell_json', '',
                    'Dense prediction cell config (not supported; must be empty).')
flags.DEFINE_boolean('use_bounded_activation', False,
                     'Use relu6 activations (bounded) instead of relu.')
flags.DEFINE_boolean('aspp_with_concat_projection', True,
                     'Project the concatenated ASPP branches with a 1x1 conv.')
flags.DEFINE_boolean('aspp_with_squeeze_and_excitation', False,
                     'Not supported; kept for command-line compatibility.')
flags.DEFINE_integer('aspp_convs_filters', 256, 'Number of ASPP filters.')
flags.DEFINE_boolean('decoder_use_sum_merge', False,
                     'Not supported; kept for command-line compatibility.')
flags.DEFINE_integer('decoder_filters', 256, 'Number of decoder filters.')
flags.DEFINE_boolean('decoder_output_is_logits', False,
                     'Not supported; kept for command-line compatibility.')
flags.DEFINE_boolean('image_se_uses_qsigmoid', False,
                     'Not supported; kept for command-line compatibility.')
flags.DEFINE_multi_float('label_weights', None,
                         'Per-class weights of the cross-entropy (default 1).')
flags.DEFINE_float('batch_norm_decay', 0.9997,
                   'Moving-average decay of every batch norm of the backbone, '
                   'ASPP and decoder. Short runs from scratch want less (e.g. '
                   '0.99) so that inference-mode statistics catch up.')

# Options shared by training, evaluation and visualization.
flags.DEFINE_multi_integer('atrous_rates', None,
                           'Atrous rates of ASPP, e.g. 6, 12, 18 at stride 16.')
flags.DEFINE_integer('output_stride', 16,
                     'Ratio of input to output spatial resolution.')
flags.DEFINE_string('dataset', 'pascal_voc_seg',
                    'Registered dataset name (see core/data_generator.py).')
flags.DEFINE_string('dataset_dir', None, 'Folder holding the tfrecords.')
flags.DEFINE_string('master', '', 'Address of the TensorFlow server.')
flags.DEFINE_multi_float('eval_scales', [1.0],
                         'Scales of multi-scale inference (eval and vis).')
flags.DEFINE_boolean('add_flipped_images', False,
                     'Also run inference on left-right flipped images (eval and vis).')
flags.DEFINE_integer('quantize_delay_step', -1,
                     'Quantization-aware training/eval is not available on TF2 '
                     '(tf.contrib.quantize is gone); any value >= 0 is an error.')
flags.DEFINE_string('checkpoint_dir', None,
                    'eval.py / vis.py: a checkpoint folder (eval.py watches it '
                    'for new checkpoints, vis.py takes the latest) or a '
                    'checkpoint prefix such as model.ckpt-30000.')
flags.DEFINE_integer('eval_interval_secs', 300,
                     'eval.py: seconds between polls of --checkpoint_dir for '
                     'new checkpoints (and at least between two evaluations); '
                     'unused by vis.py.')
flags.DEFINE_boolean('weakly', False,
                     'Also train/evaluate the image-level classification head.')

# Keys of the sample dictionaries and the output type.
OUTPUT_TYPE = 'semantic'
IMAGE = 'image'
LABEL = 'label'
LABELS_CLASS = 'labels_class'
HEIGHT = 'height'
WIDTH = 'width'
IMAGE_NAME = 'image_name'
ORIGINAL_IMAGE = 'original_image'
TEST_SET = 'test'
# Keys added by PseudoSeg.
STRONG = 'strong'
VALID = 'valid'
CLS_LABEL = 'cls_label'


def _ints_or_none(values):
  return None if values is None else [int(v) for v in values]


class ModelOptions(
    collections.namedtuple('ModelOptions', [
        'outputs_to_num_classes', 'crop_size', 'atrous_rates', 'output_stride',
        'preprocessed_images_dtype', 'merge_method', 'add_image_level_feature',
        'image_pooling_crop_size', 'image_pooling_stride',
        'aspp_with_batch_norm', 'aspp_with_separable_conv', 'multi_grid',
        'decoder_output_stride', 'decoder_use_separable_conv',
        'logits_kernel_size', 'model_variant', 'depth_multiplier',
        'divisible_by', 'prediction_with_upsampled_logits',
        'use_bounded_activation', 'aspp_with_concat_projection',
        'aspp_convs_filters', 'decoder_filters', 'label_weights',
        'batch_norm_decay'
    ])):
  """Immutable model options; fields default to the parsed flags.

  `outputs_to_num_classes` maps an output type (e.g. 'semantic') to its number
  of classes; `crop_size` is [height, width] or None. Use `_replace` to derive
  variants (e.g. a different crop size).
  """
  __slots__ = ()

  def __new__(cls, outputs_to_num_classes, crop_size=None, atrous_rates=None,
              output_stride=8, preprocessed_images_dtype='float32', **overrides):
    _check_supported_flags()
    values = dict(
        merge_method=FLAGS.merge_method,
        add_image_level_feature=FLAGS.add_image_level_feature,
        image_pooling_crop_size=_ints_or_none(FLAGS.image_pooling_crop_size),
        image_pooling_stride=_ints_or_none(FLAGS.image_pooling_stride),
        aspp_with_batch_norm=FLAGS.aspp_with_batch_norm,
        aspp_with_separable_conv=FLAGS.aspp_with_separable_conv,
        multi_grid=FLAGS.multi_grid,
        decoder_output_stride=_ints_or_none(FLAGS.decoder_output_stride),
        decoder_use_separable_conv=FLAGS.decoder_use_separable_conv,
        logits_kernel_size=FLAGS.logits_kernel_size,
        model_variant=FLAGS.model_variant,
        depth_multiplier=FLAGS.depth_multiplier,
        divisible_by=FLAGS.divisible_by,
        prediction_with_upsampled_logits=FLAGS.prediction_with_upsampled_logits,
        use_bounded_activation=FLAGS.use_bounded_activation,
        aspp_with_concat_projection=FLAGS.aspp_with_concat_projection,
        aspp_convs_filters=FLAGS.aspp_convs_filters,
        decoder_filters=FLAGS.decoder_filters,
        label_weights=FLAGS.label_weights,
        batch_norm_decay=FLAGS.batch_norm_decay)
    unknown = set(overrides) - set(values)
    if unknown:
      raise TypeError('Unknown ModelOptions fields: %s' % sorted(unknown))
    values.update(overrides)
    if values['decoder_output_stride']:
      values['decoder_output_stride'] = sorted(values['decoder_output_stride'],
                                               reverse=True)
    return super(ModelOptions, cls).__new__(
        cls, outputs_to_num_classes=outputs_to_num_classes,
        crop_size=crop_size, atrous_rates=atrous_rates,
        output_stride=output_stride,
        preprocessed_images_dtype=preprocessed_images_dtype, **values)

  def __deepcopy__(self, memo):
    return self._replace()


_UNSUPPORTED_WHEN_SET = ('aspp_with_squeeze_and_excitation',
                         'decoder_use_sum_merge', 'decoder_output_is_logits',
                         'image_se_uses_qsigmoid')


def _check_supported_flags():
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
  return ModelOptions({OUTPUT_TYPE: num_classes}, crop_size=crop_size,
                      atrous_rates=FLAGS.atrous_rates,
                      output_stride=FLAGS.output_stride)
