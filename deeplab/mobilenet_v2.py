"""MobileNet-v2 backbone with DeepLab's scope names (the light CPU variant).

Layers (stride / output channels before the depth multiplier):
  layer_1  `MobilenetV2/Conv`              3x3 conv, s2, 32
  layer_2  `MobilenetV2/expanded_conv`     t=1 (no `expand`), s1, 16
  layer_3..18 `MobilenetV2/expanded_conv_1..16`, inverted residuals with
           `expand` (1x1, t=6), `depthwise` (3x3) and `project` (1x1, linear).
Every convolution is followed by batch norm; activations are relu6; a residual
sum is added when a unit keeps stride and depth.

End points are keyed `MobilenetV2/layer_N` (unit output), plus
`MobilenetV2/layer_N/expansion_output` and
`MobilenetV2/layer_N/depthwise_output` for the inverted residuals.
`MobilenetV2/layer_4/depthwise_output` (stride 4, 144 channels) is the
decoder's low-level feature, as in DeepLab. With
`num_classes`, the classification head adds `global_pool`, `MobilenetV2/logits`
(dropout + 1x1 conv with bias, the same layout as Xception's head, so the
Grad-CAM code treats both backbones alike) and `predictions`.

The 1280-channel `Conv_1` of the ImageNet classifier is not built: DeepLab
stops the feature extractor at layer_18.
"""
import collections

from deeplab.tf_compat import BATCH_NORM_UPDATES
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from deeplab import xception
from utils.errors import InputError

SCOPE = 'MobilenetV2'
NUM_LAYERS = 18
# Rounding of the expansion depth (slim's `expand_input_by_factor` default).
_EXPANSION_DIVISIBLE_BY = 8

# (scope, expansion factor or None for the plain conv, depth, stride).
LayerDef = collections.namedtuple('LayerDef',
                                  ['scope', 'expansion', 'depth', 'stride'])


def _inverted_residuals():
  """The 17 inverted-residual layers: (expansion, depth, repeats, stride)."""
  groups = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
  layers = []
  for expansion, depth, repeats, stride in groups:
    for repeat in range(repeats):
      index = len(layers)
      scope = 'expanded_conv_%d' % index if index else 'expanded_conv'
      layers.append(LayerDef(scope, expansion, depth,
                             stride if repeat == 0 else 1))
  return layers


LAYERS = [LayerDef('Conv', None, 32, 2)] + _inverted_residuals()


def make_divisible(value, divisor, min_value=None):
  """Rounds `value` to the nearest multiple of `divisor` (never below 90%).

  Args:
    value: float channel count.
    divisor: int.
    min_value: lower bound, default `divisor`.

  Returns:
    int multiple of `divisor`.
  """
  min_value = min_value or divisor
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


def _expanded_conv(net, layer, depth, stride, rate, end_points, prefix):
  """Inverted residual: expand (1x1) -> depthwise (3x3) -> project (1x1)."""
  inputs = net
  input_depth = net.shape.as_list()[-1]
  with tf.variable_scope(layer.scope, values=[net]):
    if layer.expansion != 1:
      expansion_depth = make_divisible(input_depth * layer.expansion,
                                       _EXPANSION_DIVISIBLE_BY)
      net = slim.conv2d(net, expansion_depth, [1, 1], scope='expand')
      end_points[prefix + '/expansion_output'] = net
    net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                stride=stride, rate=rate, scope='depthwise')
    end_points[prefix + '/depthwise_output'] = net
    net = slim.conv2d(net, depth, [1, 1], activation_fn=None, scope='project')
    if stride == 1 and input_depth == depth:
      net = net + inputs
  return net


def mobilenet_v2(inputs, depth_multiplier=1.0, divisible_by=None,
                 output_stride=None, final_endpoint='layer_18',
                 num_classes=None, is_training=True, global_pool=False,
                 keep_prob=0.5, reuse=None, scope=SCOPE):
  """MobileNet-v2 features (and optional classification head).

  Call inside `mobilenet_v2_arg_scope()`.

  Args:
    inputs: float [N, H, W, 3], normalised to [-1, 1].
    depth_multiplier: float > 0 scaling every layer's depth.
    divisible_by: round depths to multiples of this; None -> 8.
    output_stride: 8, 16, 32 or None (= 32, no atrous convolution).
    final_endpoint: 'layer_1' .. 'layer_18', the last layer built.
    num_classes: if set, adds dropout + 1x1 conv `logits` and `predictions`.
    is_training: batch-norm mode and dropout activity.
    global_pool: average-pool the features to [N, 1, 1, C] (`global_pool`).
    keep_prob: dropout keep probability before the logits.
    reuse: variable reuse for the top scope (e.g. tf.AUTO_REUSE).
    scope: top variable scope.

  Returns:
    (net, end_points) as for `xception.xception`.

  Raises:
    InputError: on a bad depth multiplier, final end point or output stride.
  """
  if depth_multiplier <= 0:
    raise InputError('depth_multiplier must be positive, got %s.' %
                     depth_multiplier)
  layer_names = ['layer_%d' % (i + 1) for i in range(NUM_LAYERS)]
  if final_endpoint not in layer_names:
    raise InputError('final_endpoint must be one of layer_1..layer_%d, got %r.'
                     % (NUM_LAYERS, final_endpoint))
  num_layers = layer_names.index(final_endpoint) + 1
  layers = LAYERS[:num_layers]
  divisible_by = divisible_by or 8
  schedule = xception.atrous_schedule(
      [layer.stride for layer in layers], output_stride, root_stride=1,
      allow_unreached=num_layers < NUM_LAYERS)
  end_points = {}
  with tf.variable_scope(scope, 'MobilenetV2', [inputs], reuse=reuse) as sc:
    with slim.arg_scope([slim.batch_norm], is_training=is_training):
      net = inputs
      for index, (layer, (stride, rate)) in enumerate(zip(layers, schedule)):
        prefix = '%s/layer_%d' % (sc.name, index + 1)
        depth = make_divisible(layer.depth * depth_multiplier, divisible_by)
        if layer.expansion is None:
          net = slim.conv2d(net, depth, [3, 3], stride=stride,
                            scope=layer.scope)
        else:
          net = _expanded_conv(net, layer, depth, stride, rate, end_points,
                               prefix)
        end_points[prefix] = net
      if global_pool:
        net = tf.reduce_mean(net, [1, 2], name='global_pool', keepdims=True)
        end_points['global_pool'] = net
      if num_classes:
        net = slim.dropout(net, keep_prob=keep_prob, is_training=is_training,
                           scope='prelogits_dropout')
        net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                          normalizer_fn=None, scope='logits')
        end_points[sc.name + '/logits'] = net
        end_points['predictions'] = tf.nn.softmax(net, name='predictions')
  return net, end_points


def mobilenet_v2_arg_scope(weight_decay=0.00004, batch_norm_decay=0.9997,
                           batch_norm_epsilon=0.001,
                           weights_initializer_stddev=0.09,
                           regularize_depthwise=False):
  """Arg scope: truncated-normal weights, BN + relu6 after every conv, L2 on
  regular/pointwise weights and (if `regularize_depthwise`) depthwise ones.

  Returns:
    An arg_scope dict for `slim.arg_scope`.
  """
  depthwise_regularizer = (
      slim.l2_regularizer(weight_decay) if regularize_depthwise else None)
  with slim.arg_scope(
      [slim.conv2d, slim.separable_conv2d],
      weights_initializer=tf.truncated_normal_initializer(
          stddev=weights_initializer_stddev),
      activation_fn=tf.nn.relu6, normalizer_fn=slim.batch_norm,
      padding='SAME'), slim.arg_scope(
          [slim.batch_norm], decay=batch_norm_decay,
          epsilon=batch_norm_epsilon, center=True, scale=True,
          updates_collections=BATCH_NORM_UPDATES), slim.arg_scope(
              [slim.conv2d],
              weights_regularizer=slim.l2_regularizer(weight_decay)
          ), slim.arg_scope([slim.separable_conv2d],
                            weights_regularizer=depthwise_regularizer) as sc:
    return sc
