"""The flags every entry script shares: model architecture, dataset and
inference options (DeepLab's common flags; the model flags default to
`deeplab.common.MODEL_DEFAULTS`).

Each flag is defined here once. Scripts import core/flags/model_flags.py,
which imports this module, optionally change a default with
`flags.FLAGS.set_default`, and build a `ModelOptions` from the parsed values
with `model_flags.model_options_from_flags`.
"""
from absl import flags

from deeplab import common


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


def _define_model_flag(define, name, help_text, *enum_values):
  """Defines flag `name` with the default of the model option of that name."""
  define(name, common.MODEL_DEFAULTS[name], *enum_values, help_text)


_define_model_flag(flags.DEFINE_integer, 'logits_kernel_size',
                   'Kernel size of the final logits convolution.')
_define_model_flag(
    flags.DEFINE_enum, 'model_variant',
    'Feature extractor. PseudoSeg uses xception_65; mobilenet_v2 is the light '
    'variant for CPU runs.',
    ['xception_41', 'xception_65', 'xception_71', 'mobilenet_v2'])
flags.DEFINE_multi_float('image_pyramid', None,
                         'Input scales for multi-scale feature extraction.')
_define_model_flag(flags.DEFINE_boolean, 'add_image_level_feature',
                   'Add the image-level pooling branch to ASPP.')
_define_model_flag(flags.DEFINE_list, 'image_pooling_crop_size',
                   'Crop size (height,width) the image-pooling window is '
                   'derived from; defaults to the crop size.')
_define_model_flag(flags.DEFINE_list, 'image_pooling_stride',
                   'Stride (height,width) of the image-pooling average pool.')
_define_model_flag(flags.DEFINE_boolean, 'aspp_with_batch_norm',
                   'Use batch norm in the ASPP branches.')
_define_model_flag(flags.DEFINE_boolean, 'aspp_with_separable_conv',
                   'Use separable convolutions for the atrous ASPP branches.')
_define_model_flag(flags.DEFINE_multi_integer, 'multi_grid',
                   'Per-unit atrous rates of the last Xception block.')
_define_model_flag(flags.DEFINE_float, 'depth_multiplier',
                   'Channel multiplier of MobileNet-v2.')
_define_model_flag(flags.DEFINE_integer, 'divisible_by',
                   'Round MobileNet-v2 channel counts to a multiple of this.')
_define_model_flag(flags.DEFINE_list, 'decoder_output_stride',
                   'Output stride(s) of the decoder, e.g. 4. None disables it.')
_define_model_flag(flags.DEFINE_boolean, 'decoder_use_separable_conv',
                   'Use separable convolutions in the decoder.')
_define_model_flag(flags.DEFINE_enum, 'merge_method',
                   'How multi-scale logits are merged.', ['max', 'avg'])
_define_model_flag(flags.DEFINE_boolean, 'prediction_with_upsampled_logits',
                   'Upsample logits before the argmax at inference (else '
                   'argmax first, then nearest upsampling).')
flags.DEFINE_string('dense_prediction_cell_json', '',
                    'Dense prediction cell config (not supported; must be empty).')
_define_model_flag(flags.DEFINE_boolean, 'use_bounded_activation',
                   'Use relu6 activations (bounded) instead of relu.')
_define_model_flag(flags.DEFINE_boolean, 'aspp_with_concat_projection',
                   'Project the concatenated ASPP branches with a 1x1 conv.')
flags.DEFINE_boolean('aspp_with_squeeze_and_excitation', False,
                     'Not supported; kept for command-line compatibility.')
_define_model_flag(flags.DEFINE_integer, 'aspp_convs_filters',
                   'Number of ASPP filters.')
flags.DEFINE_boolean('decoder_use_sum_merge', False,
                     'Not supported; kept for command-line compatibility.')
_define_model_flag(flags.DEFINE_integer, 'decoder_filters',
                   'Number of decoder filters.')
flags.DEFINE_boolean('decoder_output_is_logits', False,
                     'Not supported; kept for command-line compatibility.')
flags.DEFINE_boolean('image_se_uses_qsigmoid', False,
                     'Not supported; kept for command-line compatibility.')
_define_model_flag(flags.DEFINE_multi_float, 'label_weights',
                   'Per-class weights of the cross-entropy (default 1).')
_define_model_flag(flags.DEFINE_float, 'batch_norm_decay',
                   'Moving-average decay of every batch norm of the backbone, '
                   'ASPP and decoder. Short runs from scratch want less (e.g. '
                   '0.99) so that inference-mode statistics catch up.')

# Options shared by training, evaluation and visualization.
flags.DEFINE_multi_integer('atrous_rates', None,
                           'Atrous rates of ASPP, e.g. 6, 12, 18 at stride 16.')
flags.DEFINE_integer('output_stride', 16,
                     'Ratio of input to output spatial resolution.')
flags.DEFINE_string('dataset', 'pascal_voc_seg',
                    'Registered dataset name (see core/data/registry.py).')
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
