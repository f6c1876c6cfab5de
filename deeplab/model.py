"""DeepLabv3+ meta-architecture: backbone, ASPP, decoder and logits.

Variable scopes (all at the root, clone scopes are name scopes only):
`<backbone>/...`, `image_pooling`, `aspp0`, `aspp{1,2,3}_{depthwise,pointwise}`,
`concat_projection`, `decoder/feature_projection0`,
`decoder/decoder_conv{0,1}_{depthwise,pointwise}`, `logits/<output type>`
(docs/DESIGN.md §Model). Every layer is built with `tf.AUTO_REUSE`, so the network can
be called several times in one graph (PseudoSeg builds it up to five times
per clone) and all calls share one set of variables.

Resizes of features and logits are bilinear with align_corners=True.
"""
import functools

from deeplab import feature_extractor
from deeplab import resize
from deeplab.tf_compat import BATCH_NORM_UPDATES
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

LOGITS_SCOPE_NAME = 'logits'
MERGED_LOGITS_SCOPE = 'merged_logits'
IMAGE_POOLING_SCOPE = 'image_pooling'
ASPP_SCOPE = 'aspp'
CONCAT_PROJECTION_SCOPE = 'concat_projection'
DECODER_SCOPE = 'decoder'
META_ARCHITECTURE_SCOPE = 'meta_architecture'

# Batch-norm epsilon of the ASPP and decoder layers (the backbone uses 1e-3).
_HEAD_BATCH_NORM_EPSILON = 1e-5
_ASPP_DROPOUT_KEEP_PROB = 0.9
_DECODER_PROJECTION_DEPTH = 48


def get_extra_layer_scopes(last_layers_contain_logits_only=False):
  """Scopes of the layers outside the backbone ("last layers").

  Args:
    last_layers_contain_logits_only: only the logits layer.

  Returns:
    list of scope names (used as substrings/prefixes of variable names).
  """
  if last_layers_contain_logits_only:
    return [LOGITS_SCOPE_NAME]
  return [
      LOGITS_SCOPE_NAME, IMAGE_POOLING_SCOPE, ASPP_SCOPE,
      CONCAT_PROJECTION_SCOPE, DECODER_SCOPE, META_ARCHITECTURE_SCOPE
  ]


def scale_dimension(dim, scale):
  """Size of a dimension scaled by `scale`: int((dim - 1) * scale + 1).

  Args:
    dim: int or int32 scalar Tensor.
    scale: float.

  Returns:
    int, or int32 scalar Tensor when `dim` is a Tensor.
  """
  if isinstance(dim, tf.Tensor):
    return tf.cast((tf.cast(dim, tf.float32) - 1.0) * scale + 1.0, tf.int32)
  return int((float(dim) - 1.0) * scale + 1.0)


def _resize_bilinear(images, size, output_dtype=tf.float32):
  """bilinear-AC resize of [N, H, W, C] to `size`, cast to `output_dtype`."""
  return tf.cast(resize.bilinear_ac(images, size), dtype=output_dtype)


def _static_or_none(value):
  return None if isinstance(value, tf.Tensor) else value


def _head_arg_scope(weight_decay, is_training, fine_tune_batch_norm,
                    batch_norm_decay, use_bounded_activation):
  """Arg scope of ASPP and decoder: conv + BN (eps 1e-5) + ReLU, L2, SAME."""
  activation_fn = tf.nn.relu6 if use_bounded_activation else tf.nn.relu
  with slim.arg_scope(
      [slim.conv2d, slim.separable_conv2d, centre_tap_depthwise_conv2d],
      weights_regularizer=slim.l2_regularizer(weight_decay),
      activation_fn=activation_fn, normalizer_fn=slim.batch_norm,
      padding='SAME', stride=1, reuse=tf.AUTO_REUSE), slim.arg_scope(
          [slim.batch_norm], is_training=is_training and fine_tune_batch_norm,
          decay=batch_norm_decay, epsilon=_HEAD_BATCH_NORM_EPSILON,
          scale=True, updates_collections=BATCH_NORM_UPDATES) as sc:
    return sc


def split_separable_conv2d(inputs, filters, kernel_size=3, rate=1,
                           weight_decay=0.00004,
                           depthwise_weights_initializer_stddev=0.33,
                           pointwise_weights_initializer_stddev=0.06,
                           scope=None):
  """Depthwise conv (`<scope>_depthwise`) then 1x1 conv (`<scope>_pointwise`).

  Splitting the separable conv lets batch norm and the activation run after
  both parts. The depthwise weights carry no L2, the pointwise ones do.

  Args:
    inputs: float [N, H, W, C].
    filters: output channels.
    kernel_size: depthwise kernel size.
    rate: atrous rate of the depthwise conv.
    weight_decay: L2 scale of the pointwise weights.
    depthwise_weights_initializer_stddev: truncated-normal sigma.
    pointwise_weights_initializer_stddev: truncated-normal sigma.
    scope: name prefix.

  Returns:
    float [N, H, W, filters].
  """
  depthwise = (centre_tap_depthwise_conv2d
               if only_centre_tap_sees_input(inputs, kernel_size, rate) else
               functools.partial(slim.separable_conv2d, num_outputs=None,
                                 depth_multiplier=1, rate=rate))
  outputs = depthwise(
      inputs, kernel_size=kernel_size,
      weights_initializer=tf.truncated_normal_initializer(
          stddev=depthwise_weights_initializer_stddev),
      weights_regularizer=None, scope=scope + '_depthwise')
  return slim.conv2d(
      outputs, filters, 1,
      weights_initializer=tf.truncated_normal_initializer(
          stddev=pointwise_weights_initializer_stddev),
      weights_regularizer=slim.l2_regularizer(weight_decay),
      scope=scope + '_pointwise')


def only_centre_tap_sees_input(inputs, kernel_size, rate):
  """True when a SAME-padded atrous k x k kernel reads input only at its centre.

  The off-centre taps sit at multiples of `rate` from the output pixel, so
  they all fall in the zero padding when rate >= the (static) height and
  width: e.g. the ASPP rates 12 and 18 on the 9 x 9 features of a 129 crop.
  """
  height, width = inputs.shape.as_list()[1:3]
  return (kernel_size % 2 == 1 and height is not None and width is not None
          and rate >= max(height, width))


@slim.add_arg_scope
def centre_tap_depthwise_conv2d(inputs, kernel_size, weights_initializer=None,
                                weights_regularizer=None, normalizer_fn=None,
                                activation_fn=None, padding='SAME', stride=1,
                                reuse=None, scope=None):
  """`slim.separable_conv2d(inputs, None, kernel_size, rate=rate)` for a rate
  where `only_centre_tap_sees_input`: the input times the centre tap.

  Same variables (`<scope>/depthwise_weights` [k,k,C,1], batch norm under
  `<scope>/BatchNorm`) and the same values: the convolution adds only exact
  zeros to the centre product, and the off-centre taps get zero gradients as
  before. Why: TF runs atrous depthwise convolutions through SpaceToBatchND,
  which turns the 2 x 9 x 9 x 2048 ASPP input of a 129 crop into 648 blocks of
  3 x 3 at rate 18 (72x the data); their backward pass took about a tenth of a
  train_wss step.

  Args:
    inputs: float32 [N, H, W, C].
    kernel_size: odd int k.
    weights_initializer, weights_regularizer, normalizer_fn, activation_fn,
      reuse, scope: as slim.separable_conv2d (normalizer without params).
    padding, stride: must be 'SAME' and 1 (what the shortcut assumes);
      normalizer_fn must be set (without one slim adds biases).

  Returns:
    float32 [N, H, W, C].
  """
  if padding != 'SAME' or stride != 1:
    raise ValueError('centre_tap_depthwise_conv2d needs SAME padding and '
                     'stride 1, got %s and %s.' % (padding, stride))
  if normalizer_fn is None:
    raise ValueError('centre_tap_depthwise_conv2d needs a normalizer_fn '
                     '(slim would add biases without one).')
  with tf.variable_scope(scope, 'SeparableConv2d', [inputs], reuse=reuse):
    weights = slim.model_variable(
        'depthwise_weights', shape=[kernel_size, kernel_size,
                                    inputs.shape.as_list()[3], 1],
        initializer=weights_initializer, regularizer=weights_regularizer)
    centre = (kernel_size - 1) // 2
    outputs = inputs * weights[centre, centre, :, 0]
    outputs = normalizer_fn(outputs)
    if activation_fn is not None:
      outputs = activation_fn(outputs)
  return outputs


def _image_pooling_branch(features, model_options, depth):
  """Image-level feature: average pool, 1x1 conv, bilinear-AC resize back.

  With a known crop size the pooling window is the feature size implied by the
  crop (scale_dimension(crop, 1/OS)), as in DeepLab; otherwise a global mean.
  """
  output_stride = model_options.output_stride
  if model_options.crop_size is not None:
    pooling_crop = (model_options.image_pooling_crop_size or
                    model_options.crop_size)
    pool_size = [scale_dimension(int(d), 1.0 / output_stride)
                 for d in pooling_crop]
    image_feature = slim.avg_pool2d(
        features, pool_size, stride=model_options.image_pooling_stride,
        padding='VALID')
    resize_size = [scale_dimension(int(d), 1.0 / output_stride)
                   for d in model_options.crop_size]
  else:
    image_feature = tf.reduce_mean(features, axis=[1, 2], keepdims=True)
    resize_size = [tf.shape(features)[1], tf.shape(features)[2]]
  image_feature = slim.conv2d(image_feature, depth, 1,
                              scope=IMAGE_POOLING_SCOPE)
  image_feature = _resize_bilinear(image_feature, resize_size,
                                   image_feature.dtype)
  image_feature.set_shape([None, _static_or_none(resize_size[0]),
                           _static_or_none(resize_size[1]), depth])
  return image_feature


def _backbone_options(model_options):
  """The feature-extractor arguments that come from the model options."""
  return dict(
      output_stride=model_options.output_stride,
      multi_grid=model_options.multi_grid,
      depth_multiplier=model_options.depth_multiplier,
      divisible_by=model_options.divisible_by,
      model_variant=model_options.model_variant,
      preprocessed_images_dtype=model_options.preprocessed_images_dtype,
      use_bounded_activation=model_options.use_bounded_activation,
      batch_norm_decay=model_options.batch_norm_decay)


def extract_features(images, model_options, weight_decay=0.0001,
                     reuse=tf.AUTO_REUSE, is_training=False,
                     fine_tune_batch_norm=False, backbone=None):
  """Backbone features followed by ASPP (when `aspp_with_batch_norm`).

  Args:
    images: float [N, H, W, 3] in [0, 255].
    model_options: common.ModelOptions.
    weight_decay: L2 scale.
    reuse: variable reuse of the backbone.
    is_training: training mode (ASPP dropout active).
    fine_tune_batch_norm: batch norm in training mode (with is_training).
    backbone: (features, end points) of the backbone already built on
      `images`, used instead of building it again; None builds it.

  Returns:
    (features [N, h, w, aspp_convs_filters] (or the backbone features without
    ASPP), backbone end points dict).
  """
  if backbone is None:
    backbone = feature_extractor.extract_features(
        images, weight_decay=weight_decay, reuse=reuse,
        is_training=is_training, fine_tune_batch_norm=fine_tune_batch_norm,
        **_backbone_options(model_options))
  features, end_points = backbone
  if not model_options.aspp_with_batch_norm:
    return features, end_points
  depth = model_options.aspp_convs_filters
  with slim.arg_scope(
      _head_arg_scope(weight_decay, is_training, fine_tune_batch_norm,
                      model_options.batch_norm_decay,
                      model_options.use_bounded_activation)):
    branches = []
    if model_options.add_image_level_feature:
      branches.append(_image_pooling_branch(features, model_options, depth))
    branches.append(slim.conv2d(features, depth, 1, scope=ASPP_SCOPE + '0'))
    for i, rate in enumerate(model_options.atrous_rates or [], 1):
      scope = ASPP_SCOPE + str(i)
      if model_options.aspp_with_separable_conv:
        branches.append(split_separable_conv2d(
            features, filters=depth, rate=rate, weight_decay=weight_decay,
            scope=scope))
      else:
        branches.append(slim.conv2d(features, depth, 3, rate=rate,
                                    scope=scope))
    if not model_options.aspp_with_concat_projection:
      return tf.concat(branches, 3), end_points
    concat_logits = slim.conv2d(tf.concat(branches, 3), depth, 1,
                                scope=CONCAT_PROJECTION_SCOPE)
    # do not fix: changes results (docs/DESIGN.md §Quirks 19)
    concat_logits = slim.dropout(
        concat_logits, keep_prob=_ASPP_DROPOUT_KEEP_PROB,
        is_training=is_training, scope=CONCAT_PROJECTION_SCOPE + '_dropout')
    return concat_logits, end_points


def refine_by_decoder(features, end_points, model_options, weight_decay=0.0001,
                      is_training=False, fine_tune_batch_norm=False):
  """DeepLabv3+ decoder: fuse upsampled features with low-level features.

  For every decoder output stride (descending): project each low-level end
  point to 48 channels (`feature_projection<i>`), resize everything bilinear-AC
  to that stride's size, concatenate, and apply two 3x3 convs
  (`decoder_conv0`, `decoder_conv1`). Scope suffixes `_<stage>` are only added
  from the second stage on, so a single stage keeps DeepLab's names.

  Args:
    features: float [N, h, w, C] (ASPP output).
    end_points: backbone end points.
    model_options: common.ModelOptions (decoder_output_stride not None).
    weight_decay, is_training, fine_tune_batch_norm: as `extract_features`.

  Returns:
    float [N, H/s, W/s, decoder_filters] for the smallest stride s.
  """
  with slim.arg_scope(
      _head_arg_scope(weight_decay, is_training, fine_tune_batch_norm,
                      model_options.batch_norm_decay,
                      model_options.use_bounded_activation)):
    with tf.variable_scope(DECODER_SCOPE, DECODER_SCOPE, [features],
                           reuse=tf.AUTO_REUSE):
      decoder_features = features
      for stage, output_stride in enumerate(
          model_options.decoder_output_stride):
        suffix = '_%d' % stage if stage else ''
        names = feature_extractor.decoder_end_point_names(
            model_options.model_variant, output_stride)
        for i, name in enumerate(names):
          low_level = end_points[name]
          feature_list = [
              decoder_features,
              slim.conv2d(low_level, _DECODER_PROJECTION_DEPTH, 1,
                          scope='feature_projection%d%s' % (i, suffix))
          ]
          size = _decoder_size(model_options.crop_size, output_stride,
                               low_level)
          feature_list = [_resize_to(f, size) for f in feature_list]
          decoder_features = _decoder_convs(
              tf.concat(feature_list, 3), model_options, weight_decay, i,
              suffix)
      return decoder_features


def _decoder_size(crop_size, output_stride, low_level):
  """Decoder resolution: scale_dimension(crop, 1/stride) or the feature's."""
  if crop_size is not None:
    return [scale_dimension(int(d), 1.0 / output_stride) for d in crop_size]
  static = low_level.shape.as_list()[1:3]
  dynamic = tf.shape(low_level)[1:3]
  return [static[k] if static[k] is not None else dynamic[k] for k in (0, 1)]


def _resize_to(feature, size):
  """bilinear-AC resize keeping dtype, with the static size when known."""
  resized = _resize_bilinear(feature, size, feature.dtype)
  resized.set_shape([None, _static_or_none(size[0]), _static_or_none(size[1]),
                     None])
  return resized


def _decoder_convs(inputs, model_options, weight_decay, index, suffix):
  depth = model_options.decoder_filters
  if model_options.decoder_use_separable_conv:
    net = split_separable_conv2d(inputs, filters=depth, rate=1,
                                 weight_decay=weight_decay,
                                 scope='decoder_conv0' + suffix)
    return split_separable_conv2d(net, filters=depth, rate=1,
                                  weight_decay=weight_decay,
                                  scope='decoder_conv1' + suffix)
  return slim.repeat(inputs, 2, slim.conv2d, depth, 3,
                     scope='decoder_conv%d%s' % (index, suffix))


def get_branch_logits(features, num_classes, atrous_rates=None,
                      aspp_with_batch_norm=False, kernel_size=1,
                      weight_decay=0.0001, scope_suffix=''):
  """Final logits conv(s) `logits/<scope_suffix>[_i]`, summed.

  With ASPP (+BN) the atrous branches are already in the features, so a
  single conv is applied; otherwise one conv per atrous rate.

  Args:
    features: float [N, h, w, C].
    num_classes: output channels.
    atrous_rates: rates used when ASPP is off.
    aspp_with_batch_norm: whether ASPP was applied.
    kernel_size: kernel of the logits conv; must be 1 with ASPP.
    weight_decay: L2 scale.
    scope_suffix: output type, e.g. 'semantic'.

  Returns:
    float [N, h, w, num_classes].

  Raises:
    InputError: kernel_size != 1 together with ASPP.
  """
  if aspp_with_batch_norm or atrous_rates is None:
    if kernel_size != 1:
      raise InputError('logits_kernel_size must be 1 when ASPP is used, got '
                       '%d.' % kernel_size)
    atrous_rates = [1]
  with slim.arg_scope(
      [slim.conv2d], weights_regularizer=slim.l2_regularizer(weight_decay),
      weights_initializer=tf.truncated_normal_initializer(stddev=0.01),
      reuse=tf.AUTO_REUSE):
    with tf.variable_scope(LOGITS_SCOPE_NAME, LOGITS_SCOPE_NAME, [features],
                           reuse=tf.AUTO_REUSE):
      branch_logits = []
      for i, rate in enumerate(atrous_rates):
        scope = scope_suffix + ('_%d' % i if i else '')
        branch_logits.append(
            slim.conv2d(features, num_classes, kernel_size=kernel_size,
                        rate=rate, activation_fn=None, normalizer_fn=None,
                        scope=scope))
      return tf.add_n(branch_logits)


def _get_logits(images, model_options, weight_decay, is_training,
                fine_tune_batch_norm, backbone=None):
  """Logits of every output type for one input scale (`backbone` as in
  `extract_features`).

  Returns:
    ({output type: float [N, h, w, classes]}, backbone end points).
  """
  features, end_points = extract_features(
      images, model_options, weight_decay=weight_decay, is_training=is_training,
      fine_tune_batch_norm=fine_tune_batch_norm, backbone=backbone)
  if model_options.decoder_output_stride:
    features = refine_by_decoder(features, end_points, model_options,
                                 weight_decay=weight_decay,
                                 is_training=is_training,
                                 fine_tune_batch_norm=fine_tune_batch_norm)
  outputs_to_logits = {}
  for output in sorted(model_options.outputs_to_num_classes):
    outputs_to_logits[output] = get_branch_logits(
        features, model_options.outputs_to_num_classes[output],
        model_options.atrous_rates,
        aspp_with_batch_norm=model_options.aspp_with_batch_norm,
        kernel_size=model_options.logits_kernel_size,
        weight_decay=weight_decay, scope_suffix=output)
  return outputs_to_logits, end_points


def _check_options(model_options, nas_training_hyper_parameters):
  feature_extractor.check_model_variant(model_options.model_variant)
  if nas_training_hyper_parameters is not None:
    raise InputError('NAS backbones are not supported, so '
                     'nas_training_hyper_parameters must be None.')


def multi_scale_logits(images, model_options, image_pyramid,
                       weight_decay=0.0001, is_training=False,
                       fine_tune_batch_norm=False,
                       nas_training_hyper_parameters=None,
                       return_end_points=False, backbone=None):
  """Logits of the network run on each scale of an image pyramid.

  Every scale's logits are resized (bilinear-AC) to
  scale_dimension(crop, max(1, max(pyramid)) / logits stride); with one scale
  only `merged_logits` is returned, with several also `logits_%.2f` per scale,
  merged by max or mean (`model_options.merge_method`).

  Args:
    images: float [N, H, W, 3] in [0, 255].
    model_options: common.ModelOptions.
    image_pyramid: list of input scales, or None / [] for [1.0].
    weight_decay: L2 scale.
    is_training: training mode (ASPP dropout, and BN with fine_tune_batch_norm).
    fine_tune_batch_norm: batch norm in training mode (with is_training).
    nas_training_hyper_parameters: must be None (no NAS backbones).
    return_end_points: also return the backbone end points (of the last scale
      built).
    backbone: (features, end points) of the backbone already built on
      `images` (scale 1.0), used at scale 1.0 instead of building it again;
      other scales build their own.

  Returns:
    {output type: {'merged_logits': T, ['logits_1.00': T, ...]}}, and the end
    points dict when `return_end_points`.
  """
  _check_options(model_options, nas_training_hyper_parameters)
  image_pyramid = image_pyramid or [1.0]
  crop_size = model_options.crop_size
  if crop_size is not None:
    crop_height, crop_width = [int(d) for d in crop_size]
  else:
    crop_height, crop_width = tf.shape(images)[1], tf.shape(images)[2]
  logits_output_stride = (model_options.decoder_output_stride or
                          [model_options.output_stride])[-1]
  logits_scale = max(1.0, max(image_pyramid)) / logits_output_stride
  logits_size = [scale_dimension(crop_height, logits_scale),
                 scale_dimension(crop_width, logits_scale)]
  outputs_to_scales_to_logits = {
      output: {} for output in model_options.outputs_to_num_classes
  }
  for image_scale in image_pyramid:
    scaled_images, scaled_options = _scale_inputs(images, model_options,
                                                  image_scale)
    outputs_to_logits, end_points = _get_logits(
        scaled_images, scaled_options, weight_decay, is_training,
        fine_tune_batch_norm,
        backbone=backbone if image_scale == 1.0 else None)
    for output, logits in outputs_to_logits.items():
      outputs_to_scales_to_logits[output]['logits_%.2f' % image_scale] = (
          _resize_bilinear(logits, logits_size, logits.dtype))
  for output, scales_to_logits in outputs_to_scales_to_logits.items():
    if len(image_pyramid) == 1:
      merged = scales_to_logits.pop('logits_%.2f' % image_pyramid[0])
    else:
      merge_fn = (tf.reduce_max if model_options.merge_method == 'max' else
                  tf.reduce_mean)
      merged = merge_fn(tf.stack(list(scales_to_logits.values()), axis=4),
                        axis=4)
    scales_to_logits[MERGED_LOGITS_SCOPE] = merged
  if return_end_points:
    return outputs_to_scales_to_logits, end_points
  return outputs_to_scales_to_logits


def _scale_inputs(images, model_options, image_scale):
  """Images resized bilinear-AC by `image_scale` and options for that size."""
  if image_scale == 1.0:
    return images, model_options
  if model_options.crop_size is not None:
    height, width = [scale_dimension(int(d), image_scale)
                     for d in model_options.crop_size]
  else:
    height = scale_dimension(tf.shape(images)[1], image_scale)
    width = scale_dimension(tf.shape(images)[2], image_scale)
  scaled_images = _resize_bilinear(images, [height, width], images.dtype)
  scaled_images.set_shape([None, _static_or_none(height),
                           _static_or_none(width), images.shape[-1]])
  updates = {}
  if model_options.crop_size is not None:
    updates['crop_size'] = [height, width]
  if model_options.image_pooling_crop_size:
    updates['image_pooling_crop_size'] = [
        scale_dimension(int(d), image_scale)
        for d in model_options.image_pooling_crop_size
    ]
  return scaled_images, model_options._replace(**updates)


def _upsample_to_images(logits, images):
  return _resize_bilinear(logits, tf.shape(images)[1:3], logits.dtype)


def predict_labels(images, model_options, image_pyramid=None):
  """Inference-mode class predictions at the input resolution.

  Args:
    images: float [N, H, W, 3] in [0, 255].
    model_options: common.ModelOptions.
    image_pyramid: input scales (None -> [1.0]).

  Returns:
    {output: int64 [N, H, W], output + '_prob': float [N, H, W, classes]}.
    With `prediction_with_upsampled_logits` the logits are upsampled
    bilinear-AC before argmax/softmax; otherwise argmax is taken at the logits
    resolution and upsampled nearest-AC (probabilities bilinear-AC).
  """
  outputs_to_scales_to_logits = multi_scale_logits(
      images, model_options, image_pyramid=image_pyramid, is_training=False,
      fine_tune_batch_norm=False)
  predictions = {}
  for output in sorted(outputs_to_scales_to_logits):
    logits = outputs_to_scales_to_logits[output][MERGED_LOGITS_SCOPE]
    if model_options.prediction_with_upsampled_logits:
      logits = _upsample_to_images(logits, images)
      predictions[output] = tf.argmax(logits, 3)
      predictions[output + '_prob'] = tf.nn.softmax(logits)
    else:
      labels = tf.argmax(logits, 3)[..., tf.newaxis]
      labels = resize.nearest_ac(labels, tf.shape(images)[1:3])
      predictions[output] = tf.squeeze(labels, 3)
      predictions[output + '_prob'] = _upsample_to_images(
          tf.nn.softmax(logits), images)
  return predictions


def predict_labels_multi_scale(images, model_options, eval_scales=(1.0,),
                               add_flipped_images=False):
  """Inference predictions averaged over scales and (optionally) flips.

  For each scale the network runs on the rescaled images (a pyramid of one);
  the logits are upsampled bilinear-AC to the input size and turned into
  probabilities. Flipped runs are flipped back before upsampling. The average
  of all probabilities gives the prediction.

  Args:
    images: float [N, H, W, 3] in [0, 255].
    model_options: common.ModelOptions.
    eval_scales: input scales.
    add_flipped_images: also run on left-right flipped images.

  Returns:
    {output: int64 [N, H, W], output + '_prob': float [N, H, W, classes]}.
  """
  outputs_to_probs = {
      output: [] for output in model_options.outputs_to_num_classes
  }
  flips = (False, True) if add_flipped_images else (False,)
  for image_scale in eval_scales:
    for flip in flips:
      inputs = tf.reverse(images, [2]) if flip else images
      # Logits resized twice; do not fix: changes results (docs/DESIGN.md §Quirks 23)
      outputs_to_scales_to_logits = multi_scale_logits(
          inputs, model_options, image_pyramid=[image_scale],
          is_training=False, fine_tune_batch_norm=False)
      for output, probs in outputs_to_probs.items():
        logits = outputs_to_scales_to_logits[output][MERGED_LOGITS_SCOPE]
        if flip:
          logits = tf.reverse(logits, [2])
        probs.append(tf.nn.softmax(_upsample_to_images(logits, images)))
  predictions = {}
  for output in sorted(outputs_to_probs):
    probs = tf.reduce_mean(tf.stack(outputs_to_probs[output], axis=4), axis=4)
    predictions[output] = tf.argmax(probs, 3)
    predictions[output + '_prob'] = probs
  return predictions


def classification_logits(images, model_options, num_classes,
                          weight_decay=0.0001, is_training=False,
                          fine_tune_batch_norm=False):
  """Image-level logits of the backbone's classification head (Grad-CAM).

  Builds the backbone with global pooling + dropout(keep 0.5, active iff
  is_training and fine_tune_batch_norm) + 1x1 conv
  `feature_extractor.LOGITS_END_POINT[variant]`, sharing the backbone
  variables with the segmentation network (AUTO_REUSE).

  Args:
    images: float [N, H, W, 3] in [0, 255].
    model_options: common.ModelOptions (backbone fields are used).
    num_classes: K, usually C - 1 (foreground classes).
    weight_decay: L2 scale.
    is_training, fine_tune_batch_norm: as `extract_features`.

  Returns:
    (logits float [N, K], backbone end points dict).
  """
  _check_options(model_options, None)
  _, end_points = feature_extractor.extract_features(
      images, weight_decay=weight_decay, reuse=tf.AUTO_REUSE,
      is_training=is_training, fine_tune_batch_norm=fine_tune_batch_norm,
      num_classes=num_classes, global_pool=True,
      **_backbone_options(model_options))
  logits = end_points[feature_extractor.LOGITS_END_POINT[
      model_options.model_variant]]
  return tf.reshape(logits, [-1, num_classes]), end_points
