"""Xception-41/65/71 backbones with atrous separable convs (DeepLab style).

The network is a stack of Xception modules grouped into `entry_flow`,
`middle_flow` and `exit_flow` blocks (scopes
`<flow>/blockK/unit_J/xception_module`).
Each module holds three separable convolutions (`separable_convN_depthwise`
followed by `separable_convN_pointwise`, both batch-normalised) and an optional
1x1 `shortcut` convolution. Variable names therefore match DeepLab's public
ImageNet checkpoints (e.g. `xception_65/entry_flow/conv1_1/weights`).

Atrous convolution keeps the feature maps at `output_stride`: once the
accumulated stride reaches the target, every further stride becomes 1 and the
atrous rate of the following convolutions grows by that stride instead.

End points are keyed by variable-scope names (e.g.
`xception_65/exit_flow/block1`), plus `global_pool`, `<scope>/logits` and
`predictions` when the classification head is built.
"""
import collections

from deeplab.tf_compat import BATCH_NORM_UPDATES
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils.errors import InputError

# Stride of the network root (`entry_flow/conv1_1`), before the first block.
ROOT_STRIDE = 2

_SKIP_TYPES = ('conv', 'sum', 'none')

# One block of `num_units` identical Xception modules; `stride` applies to the
# last separable convolution (and shortcut) of the block's last unit.
XceptionBlock = collections.namedtuple('XceptionBlock', [
    'scope', 'depth_list', 'skip_connection_type',
    'activation_fn_in_separable_conv', 'num_units', 'stride'
])


def fixed_padding(inputs, kernel_size, rate=1):
  """Pads height and width so that a VALID strided conv behaves like SAME.

  The padding depends only on the (effective) kernel size, not on the input
  size, so strided convolutions sample the same pixels at any resolution.

  Args:
    inputs: float [N, H, W, C].
    kernel_size: int, kernel height = width.
    rate: int atrous rate.

  Returns:
    float [N, H + k_eff - 1, W + k_eff - 1, C] with k_eff = k + (k-1)(rate-1);
    the extra row/column of an odd total goes to the bottom/right.
  """
  kernel_size_effective = kernel_size + (kernel_size - 1) * (rate - 1)
  pad_total = kernel_size_effective - 1
  pad_beg = pad_total // 2
  pad_end = pad_total - pad_beg
  return tf.pad(inputs, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end],
                         [0, 0]])


def atrous_schedule(unit_strides, output_stride, root_stride=ROOT_STRIDE,
                    allow_unreached=False):
  """Strides and atrous rates of a sequence of units for a target stride.

  Args:
    unit_strides: nominal stride of every unit, in network order.
    output_stride: wanted ratio of input to output resolution, or None to apply
      every nominal stride.
    root_stride: stride already accumulated before the first unit.
    allow_unreached: accept a final stride below `output_stride` (for networks
      truncated before their last strided unit).

  Returns:
    list of (stride, rate) int pairs, one per unit.

  Raises:
    InputError: if the units skip over `output_stride`, or end below it
      without `allow_unreached`.
  """
  current_stride = root_stride
  rate = 1
  schedule = []
  for stride in unit_strides:
    if output_stride is not None and current_stride == output_stride:
      # Target reached: keep the resolution and dilate the following convs.
      schedule.append((1, rate))
      rate *= stride
    else:
      schedule.append((stride, 1))
      current_stride *= stride
  if output_stride is None or current_stride == output_stride or (
      allow_unreached and current_stride < output_stride):
    return schedule
  raise InputError(
      'output_stride=%s is not reachable: the network strides are %s after a '
      'root stride of %d.' % (output_stride, list(unit_strides), root_stride))


@slim.add_arg_scope
def separable_conv2d_same(inputs, num_outputs, stride=1, rate=1,
                          activation_fn_in_separable_conv=False,
                          activation_fn=tf.nn.relu, scope=None):
  """3x3 depthwise + 1x1 pointwise convolution, both followed by batch norm.

  Without `activation_fn_in_separable_conv` the activation is applied to the
  input (pre-activation: act -> DW -> BN -> PW -> BN); with it, after each
  batch norm (DW -> BN -> act -> PW -> BN -> act). Strided convolutions use
  `fixed_padding` + VALID, stride-1 ones SAME.

  Args:
    inputs: float [N, H, W, C].
    num_outputs: channels of the pointwise convolution.
    stride: int stride of the depthwise convolution.
    rate: int atrous rate of the depthwise convolution.
    activation_fn_in_separable_conv: see above.
    activation_fn: activation function (relu, or relu6 when bounded).
    scope: prefix of the `<scope>_depthwise` / `<scope>_pointwise` scopes.

  Returns:
    float [N, H', W', num_outputs].
  """
  if activation_fn_in_separable_conv:
    inner_activation_fn = activation_fn
  else:
    inputs = activation_fn(inputs)
    inner_activation_fn = None
  padding = 'SAME'
  if stride > 1:
    inputs = fixed_padding(inputs, 3, rate)
    padding = 'VALID'
  net = slim.separable_conv2d(inputs, None, [3, 3], depth_multiplier=1,
                              stride=stride, rate=rate, padding=padding,
                              activation_fn=inner_activation_fn,
                              scope=scope + '_depthwise')
  return slim.conv2d(net, num_outputs, [1, 1], stride=1,
                     activation_fn=inner_activation_fn,
                     scope=scope + '_pointwise')


@slim.add_arg_scope
def xception_module(inputs, depth_list, skip_connection_type, stride,
                    unit_rate_list=None, rate=1,
                    activation_fn_in_separable_conv=False,
                    use_bounded_activation=False, outputs_collections=None,
                    scope=None):
  """Three separable convolutions plus a skip connection.

  Args:
    inputs: float [N, H, W, C].
    depth_list: the three output depths.
    skip_connection_type: 'conv' (1x1 strided conv + BN), 'sum' (identity)
      or 'none'.
    stride: stride of the third separable convolution and of the shortcut.
    unit_rate_list: three multipliers of `rate`, one per separable conv
      (multi-grid); None means [1, 1, 1].
    rate: atrous rate of the module.
    activation_fn_in_separable_conv: see `separable_conv2d_same`.
    use_bounded_activation: relu6 activations and residual sums clipped to
      [-6, 6] (for quantisation-friendly models).
    outputs_collections: collection receiving the module output (end point).
    scope: variable scope, default 'xception_module'.

  Returns:
    float [N, H', W', depth_list[-1]].

  Raises:
    InputError: on a malformed depth list, rate list or skip type.
  """
  if len(depth_list) != 3:
    raise InputError('Expected three depths per Xception module, got %s.' %
                     (depth_list,))
  if unit_rate_list is None:
    unit_rate_list = [1, 1, 1]
  if len(unit_rate_list) != 3:
    raise InputError('Expected three unit rates (multi_grid), got %s.' %
                     (unit_rate_list,))
  if skip_connection_type not in _SKIP_TYPES:
    raise InputError('Unknown skip connection type %r (expected one of %s).' %
                     (skip_connection_type, _SKIP_TYPES))
  activation_fn = tf.nn.relu6 if use_bounded_activation else tf.nn.relu
  with tf.variable_scope(scope, 'xception_module', [inputs]) as sc:
    residual = inputs
    for i, depth in enumerate(depth_list):
      residual = separable_conv2d_same(
          residual, depth, stride=stride if i == 2 else 1,
          rate=rate * unit_rate_list[i],
          activation_fn_in_separable_conv=activation_fn_in_separable_conv,
          activation_fn=activation_fn, scope='separable_conv%d' % (i + 1))
    if skip_connection_type == 'none':
      outputs = residual
    else:
      if skip_connection_type == 'conv':
        shortcut = slim.conv2d(inputs, depth_list[-1], [1, 1], stride=stride,
                               activation_fn=None, scope='shortcut')
      else:
        shortcut = inputs
      if use_bounded_activation:
        residual = tf.clip_by_value(residual, -6.0, 6.0)
        shortcut = tf.clip_by_value(shortcut, -6.0, 6.0)
      outputs = residual + shortcut
    return slim.utils.collect_named_outputs(outputs_collections, sc.name,
                                            outputs)


def stack_blocks_dense(net, blocks, output_stride=None, multi_grid=None,
                       use_bounded_activation=False, outputs_collections=None):
  """Runs the Xception blocks with the atrous schedule for `output_stride`.

  Args:
    net: float [N, H, W, C], output of the network root (stride ROOT_STRIDE).
    blocks: list of XceptionBlock.
    output_stride: target output stride or None (all nominal strides).
    multi_grid: unit rate list applied to the modules of the last block.
    use_bounded_activation: see `xception_module`.
    outputs_collections: end-point collection (block outputs are added).

  Returns:
    float [N, H', W', blocks[-1].depth_list[-1]].
  """
  unit_strides = []
  for block in blocks:
    unit_strides.extend([1] * (block.num_units - 1) + [block.stride])
  schedule = iter(atrous_schedule(unit_strides, output_stride))
  for block_index, block in enumerate(blocks):
    is_last_block = block_index == len(blocks) - 1
    with tf.variable_scope(block.scope, values=[net]) as sc:
      for unit in range(block.num_units):
        stride, rate = next(schedule)
        with tf.variable_scope('unit_%d' % (unit + 1), values=[net]):
          net = xception_module(
              net, block.depth_list, block.skip_connection_type, stride,
              unit_rate_list=multi_grid if is_last_block else None,
              rate=rate,
              activation_fn_in_separable_conv=(
                  block.activation_fn_in_separable_conv),
              use_bounded_activation=use_bounded_activation,
              outputs_collections=outputs_collections,
              scope='xception_module')
      net = slim.utils.collect_named_outputs(outputs_collections, sc.name, net)
  return net


def xception(inputs, blocks, num_classes=None, is_training=True,
             global_pool=True, keep_prob=0.5, output_stride=None,
             multi_grid=None, reuse=None, scope=None,
             use_bounded_activation=False):
  """Generic Xception network (root convs, blocks, optional classifier).

  Call inside `xception_arg_scope()`.

  Args:
    inputs: float [N, H, W, 3], already normalised to [-1, 1].
    blocks: list of XceptionBlock (entry, middle and exit flow).
    num_classes: if set, adds dropout + a 1x1 conv `logits` (with bias, no
      batch norm or activation) and the `predictions` softmax.
    is_training: batch-norm mode and dropout activity.
    global_pool: average-pool the features to [N, 1, 1, C] (`global_pool`).
    keep_prob: dropout keep probability before the logits.
    output_stride: 8, 16, 32 or None (= 32, no atrous convolution).
    multi_grid: rate multipliers of the three separable convs of the last block.
    reuse: variable reuse for the top scope (e.g. tf.AUTO_REUSE).
    scope: top variable scope name.
    use_bounded_activation: see `xception_module`.

  Returns:
    (net, end_points): net is the logits [N, 1, 1, num_classes] when
    `num_classes`, else the (pooled) features; end_points a dict.
  """
  activation_fn = tf.nn.relu6 if use_bounded_activation else tf.nn.relu
  with tf.variable_scope(scope, 'xception', [inputs], reuse=reuse) as sc:
    # A collection per call: the trainer builds the network several times.
    end_points_collection = sc.original_name_scope + 'end_points'
    with slim.arg_scope(
        [slim.conv2d, slim.separable_conv2d, xception_module],
        outputs_collections=end_points_collection), slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d],
            activation_fn=activation_fn), slim.arg_scope(
                [slim.batch_norm], is_training=is_training):
      net = fixed_padding(inputs, 3)
      net = slim.conv2d(net, 32, [3, 3], stride=ROOT_STRIDE, padding='VALID',
                        scope='entry_flow/conv1_1')
      net = slim.conv2d(net, 64, [3, 3], stride=1, scope='entry_flow/conv1_2')
      net = stack_blocks_dense(net, blocks, output_stride, multi_grid,
                               use_bounded_activation, end_points_collection)
      end_points = slim.utils.convert_collection_to_dict(
          end_points_collection, clear_collection=True)
      if global_pool:
        net = tf.reduce_mean(net, [1, 2], name='global_pool', keepdims=True)
        end_points['global_pool'] = net
      if num_classes:
        # do not fix: changes results (docs/DESIGN.md §Quirks 19)
        net = slim.dropout(net, keep_prob=keep_prob, is_training=is_training,
                           scope='prelogits_dropout')
        net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                          normalizer_fn=None, outputs_collections=None,
                          scope='logits')
        end_points[sc.name + '/logits'] = net
        end_points['predictions'] = tf.nn.softmax(net, name='predictions')
      return net, end_points


def _entry_flow(depths_and_strides):
  return [
      XceptionBlock('entry_flow/block%d' % (i + 1), [depth] * 3, 'conv', False,
                    1, stride)
      for i, (depth, stride) in enumerate(depths_and_strides)
  ]


def _middle_and_exit_flow(num_middle_units):
  return [
      XceptionBlock('middle_flow/block1', [728] * 3, 'sum', False,
                    num_middle_units, 1),
      XceptionBlock('exit_flow/block1', [728, 1024, 1024], 'conv', False, 1, 2),
      XceptionBlock('exit_flow/block2', [1536, 1536, 2048], 'none', True, 1, 1),
  ]


# Block lists of the three variants (Xception-71 splits the entry flow into
# five blocks, alternating stride 2 and 1).
XCEPTION_BLOCKS = {
    'xception_41':
        _entry_flow([(128, 2), (256, 2), (728, 2)]) + _middle_and_exit_flow(8),
    'xception_65':
        _entry_flow([(128, 2), (256, 2), (728, 2)]) + _middle_and_exit_flow(16),
    'xception_71':
        _entry_flow([(128, 2), (256, 1), (256, 2), (728, 1), (728, 2)]) +
        _middle_and_exit_flow(16),
}


def _variant(name):
  """Returns the network function of one Xception variant."""

  def network(inputs, num_classes=None, is_training=True, global_pool=True,
              keep_prob=0.5, output_stride=None, multi_grid=None, reuse=None,
              scope=name, use_bounded_activation=False):
    return xception(inputs, XCEPTION_BLOCKS[name], num_classes=num_classes,
                    is_training=is_training, global_pool=global_pool,
                    keep_prob=keep_prob, output_stride=output_stride,
                    multi_grid=multi_grid, reuse=reuse, scope=scope,
                    use_bounded_activation=use_bounded_activation)

  network.__name__ = name
  network.__doc__ = ('%s; arguments and result as `xception` (its blocks are '
                     'XCEPTION_BLOCKS[%r]).' % (name, name))
  return network


xception_41 = _variant('xception_41')
xception_65 = _variant('xception_65')
xception_71 = _variant('xception_71')


def xception_arg_scope(weight_decay=0.00004, batch_norm_decay=0.9997,
                       batch_norm_epsilon=0.001, batch_norm_scale=True,
                       weights_initializer_stddev=0.09,
                       regularize_depthwise=False):
  """Arg scope of the Xception backbone (docs/DESIGN.md §Model).

  Truncated-normal weights, batch norm after every convolution, L2 on regular
  and pointwise weights and (only if `regularize_depthwise`) on depthwise ones.

  Returns:
    An arg_scope dict for `slim.arg_scope`.
  """
  depthwise_regularizer = (
      slim.l2_regularizer(weight_decay) if regularize_depthwise else None)
  with slim.arg_scope(
      [slim.conv2d, slim.separable_conv2d],
      weights_initializer=tf.truncated_normal_initializer(
          stddev=weights_initializer_stddev),
      normalizer_fn=slim.batch_norm,
      padding='SAME'), slim.arg_scope(
          [slim.batch_norm], decay=batch_norm_decay,
          epsilon=batch_norm_epsilon, scale=batch_norm_scale,
          updates_collections=BATCH_NORM_UPDATES), slim.arg_scope(
              [slim.conv2d],
              weights_regularizer=slim.l2_regularizer(weight_decay)
          ), slim.arg_scope([slim.separable_conv2d],
                            weights_regularizer=depthwise_regularizer) as sc:
    return sc
