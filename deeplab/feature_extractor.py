"""Backbone feature extraction for DeepLab and PseudoSeg.

`extract_features` normalises images, builds the chosen backbone under its
top scope (`name_scope[model_variant]`) and returns its features and end
points. The module also names the end points other parts read:

* `networks_to_feature_maps[variant][DECODER_END_POINTS][stride]`: low-level
  features of the decoder, relative to the backbone scope.
* `HYPERCOLUMN_END_POINTS[variant]`: PseudoSeg's `--att_strides` key -> full
  end point name (docs/DESIGN.md §Model). The keys are labels of feature
  depths, not strides: 16 and 15 are always the two deepest feature maps.
  MobileNet-v2 choice: 4 -> layer_4 (24 ch, stride 4), 8 -> layer_7 (32 ch,
  stride 8), 13 -> layer_11 (64 ch), 14 -> layer_14 (96 ch), 15 -> layer_17
  (160 ch), 16 -> layer_18 (320 ch); 13..16 are at the output stride.
* `CLASSIFIER_FEATURE_END_POINT[variant]`: the map the classification head
  pools (Grad-CAM's feature).
* `LOGITS_END_POINT[variant]`: the classification logits [N, 1, 1, K].
"""
from deeplab import mobilenet_v2
from deeplab import xception
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

# Key of the decoder feature lists in `networks_to_feature_maps`.
DECODER_END_POINTS = 'decoder_end_points'

# Batch-norm parameters of the backbones (fixed, as in DeepLab).
_BATCH_NORM_DECAY = 0.9997
_BATCH_NORM_EPSILON = 0.001

_XCEPTION_NETWORKS = {
    'xception_41': xception.xception_41,
    'xception_65': xception.xception_65,
    'xception_71': xception.xception_71,
}

SUPPORTED_VARIANTS = tuple(sorted(_XCEPTION_NETWORKS)) + ('mobilenet_v2',)

# Top variable scope of every backbone.
name_scope = dict([(variant, variant) for variant in _XCEPTION_NETWORKS] +
                  [('mobilenet_v2', mobilenet_v2.SCOPE)])

_XCEPTION_CONV2 = '%s/unit_1/xception_module/separable_conv2_pointwise'

networks_to_feature_maps = {
    'xception_41': {DECODER_END_POINTS: {
        4: [_XCEPTION_CONV2 % 'entry_flow/block2']}},
    'xception_65': {DECODER_END_POINTS: {
        4: [_XCEPTION_CONV2 % 'entry_flow/block2']}},
    'xception_71': {DECODER_END_POINTS: {
        4: [_XCEPTION_CONV2 % 'entry_flow/block3'],
        8: [_XCEPTION_CONV2 % 'entry_flow/block5']}},
    'mobilenet_v2': {DECODER_END_POINTS: {
        4: ['layer_4/depthwise_output']}},
}


def _xception_hypercolumn(variant, entry_blocks):
  scope = name_scope[variant]
  names = ['entry_flow/block%d' % block for block in entry_blocks] + [
      'middle_flow/block1', 'exit_flow/block1', 'exit_flow/block2']
  return {key: '%s/%s' % (scope, name)
          for key, name in zip((4, 8, 13, 14, 15, 16), names)}


HYPERCOLUMN_END_POINTS = {
    'xception_41': _xception_hypercolumn('xception_41', (1, 2, 3)),
    'xception_65': _xception_hypercolumn('xception_65', (1, 2, 3)),
    'xception_71': _xception_hypercolumn('xception_71', (2, 4, 5)),
    'mobilenet_v2': {
        key: '%s/layer_%d' % (mobilenet_v2.SCOPE, layer)
        for key, layer in ((4, 4), (8, 7), (13, 11), (14, 14), (15, 17),
                           (16, 18))
    },
}

CLASSIFIER_FEATURE_END_POINT = {
    variant: end_points[16]
    for variant, end_points in HYPERCOLUMN_END_POINTS.items()
}

LOGITS_END_POINT = {
    variant: scope + '/logits' for variant, scope in name_scope.items()
}


def check_model_variant(model_variant):
  """Raises InputError unless `model_variant` is supported."""
  if model_variant not in SUPPORTED_VARIANTS:
    raise InputError('Unsupported model_variant %r; expected one of %s.' %
                     (model_variant, ', '.join(SUPPORTED_VARIANTS)))


def decoder_end_point_names(model_variant, decoder_output_stride):
  """Full end point names of the decoder features at one output stride.

  Raises:
    InputError: if the variant has no features at that stride.
  """
  check_model_variant(model_variant)
  strides_to_names = networks_to_feature_maps[model_variant][
      DECODER_END_POINTS]
  if decoder_output_stride not in strides_to_names:
    raise InputError(
        'decoder_output_stride=%s is not supported for %s (supported: %s).' %
        (decoder_output_stride, model_variant, sorted(strides_to_names)))
  return ['%s/%s' % (name_scope[model_variant], name)
          for name in strides_to_names[decoder_output_stride]]


def mean_pixel(model_variant):
  """Mean pixel value (all channels) of a variant's inputs: 127.5.

  Images padded with it become 0 after `preprocess_zero_mean_unit_range`.

  Raises:
    InputError: for an unsupported variant.
  """
  check_model_variant(model_variant)
  return 127.5


def preprocess_zero_mean_unit_range(inputs, dtype=tf.float32):
  """Maps pixel values in [0, 255] to [-1, 1]: 2x/255 - 1, cast to `dtype`."""
  preprocessed = (2.0 / 255.0) * tf.cast(inputs, tf.float32) - 1.0
  return tf.cast(preprocessed, dtype)


def extract_features(images, output_stride=8, multi_grid=None,
                     depth_multiplier=1.0, divisible_by=None,
                     final_endpoint=None, model_variant=None,
                     weight_decay=0.0001, reuse=None, is_training=False,
                     fine_tune_batch_norm=False, regularize_depthwise=False,
                     preprocess_images=True,
                     preprocessed_images_dtype=tf.float32, num_classes=None,
                     global_pool=False, use_bounded_activation=False,
                     batch_norm_decay=_BATCH_NORM_DECAY):
  """Builds a backbone on `images` and returns its features and end points.

  Args:
    images: float [N, H, W, 3] pixel values in [0, 255] (or already
      normalised when `preprocess_images` is False).
    output_stride: 8, 16 or 32.
    multi_grid: Xception only: rate multipliers of the three separable convs
      of exit_flow/block2 (None -> [1, 1, 1]).
    depth_multiplier, divisible_by: MobileNet-v2 only.
    final_endpoint: MobileNet-v2 only, 'layer_1'..'layer_18' (None ->
      'layer_18'); must be None for Xception.
    model_variant: one of SUPPORTED_VARIANTS.
    weight_decay: L2 scale of the regularised weights.
    reuse: variable reuse of the backbone scope (e.g. tf.AUTO_REUSE).
    is_training, fine_tune_batch_norm: batch norm runs in training mode (and
      the head's dropout is active) iff both are True.
    regularize_depthwise: also put L2 on depthwise weights.
    preprocess_images: apply `preprocess_zero_mean_unit_range`.
    preprocessed_images_dtype: dtype of the network input.
    num_classes: with `global_pool`, adds the classification head
      (`LOGITS_END_POINT[model_variant]`, [N, 1, 1, num_classes]).
    global_pool: average-pool the last features (`global_pool` end point).
    use_bounded_activation: Xception only: relu6 + clipped residuals.
    batch_norm_decay: moving-average decay of the backbone's batch norm
      (DeepLab's 0.9997 by default; short runs from scratch need less).

  Returns:
    (features, end_points): features is the last feature map [N, h, w, C]
    (the pooled features or the logits when the head is built); end_points a
    dict of named tensors.

  Raises:
    InputError: on an unsupported variant or option.
  """
  check_model_variant(model_variant)
  if preprocess_images:
    images = preprocess_zero_mean_unit_range(images, preprocessed_images_dtype)
  else:
    images = tf.cast(images, preprocessed_images_dtype)
  bn_training = is_training and fine_tune_batch_norm
  if model_variant == 'mobilenet_v2':
    if use_bounded_activation:
      raise InputError('use_bounded_activation is not supported by '
                       'mobilenet_v2 (it always uses relu6).')
    arg_scope = mobilenet_v2.mobilenet_v2_arg_scope(
        weight_decay=weight_decay, batch_norm_decay=batch_norm_decay,
        batch_norm_epsilon=_BATCH_NORM_EPSILON,
        regularize_depthwise=regularize_depthwise)
    with slim.arg_scope(arg_scope):
      return mobilenet_v2.mobilenet_v2(
          images, depth_multiplier=depth_multiplier,
          divisible_by=divisible_by, output_stride=output_stride,
          final_endpoint=final_endpoint or 'layer_18',
          num_classes=num_classes, is_training=bn_training,
          global_pool=global_pool, reuse=reuse,
          scope=name_scope[model_variant])
  if final_endpoint is not None:
    raise InputError('final_endpoint is only supported by mobilenet_v2.')
  arg_scope = xception.xception_arg_scope(
      weight_decay=weight_decay, batch_norm_decay=batch_norm_decay,
      batch_norm_epsilon=_BATCH_NORM_EPSILON, batch_norm_scale=True,
      regularize_depthwise=regularize_depthwise)
  with slim.arg_scope(arg_scope):
    return _XCEPTION_NETWORKS[model_variant](
        images, num_classes=num_classes, is_training=bn_training,
        global_pool=global_pool, output_stride=output_stride,
        multi_grid=multi_grid, reuse=reuse, scope=name_scope[model_variant],
        use_bounded_activation=use_bounded_activation)
