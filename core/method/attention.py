"""Self-attention refinement of Grad-CAMs ("SGC", docs/DESIGN.md §Self-attention).

The CAMs are propagated between pixels with an attention map computed from a
hypercolumn of backbone features. Only the key/query projections and the final
`pixel_normalization` layer are trained; the hypercolumn and the CAM values are
constants for this branch.

Variables live at the root variable scope (`hyper_column/{key,query}/weights`,
`pixel_normalization/...`) so that checkpoints match the original. Call these
functions outside any variable scope; name scopes (e.g. `clone_0`) are fine, and
repeated calls in one graph share the variables (AUTO_REUSE).
"""
import math

from deeplab import resize
from deeplab.tf_compat import BATCH_NORM_UPDATES, slim, tf
from utils.errors import InputError

# Additive attention mask of invalid (query, key) pairs. A finite value, not
# -inf: rows of invalid queries become uniform instead of NaN.
# do not fix: changes results (docs/DESIGN.md §Quirks 6)
_MASK_VALUE = -1e9


def hypercolumn(end_points, end_point_names, size):
  """Concatenates backbone end points resized to the CAM size.

  Args:
    end_points: dict name -> float [B, h_i, w_i, F_i] backbone end points.
    end_point_names: ordered names to concatenate (e.g. the end points of
      strides [16, 15]: exit_flow/block2 then exit_flow/block1).
    size: [h, w] output size (ints or an int32 tensor).

  Returns:
    float [B, h, w, sum_i F_i], gradient stopped (attention never trains the
    backbone).

  Raises:
    InputError: if a name is not an end point.
  """
  missing = [name for name in end_point_names if name not in end_points]
  if missing:
    raise InputError('Hypercolumn end points not found: %s.' % missing)
  resized = [
      resize.bilinear_ac(end_points[name], size) for name in end_point_names
  ]
  return tf.stop_gradient(tf.concat(resized, axis=3))


def _conv_1x1(inputs, num_outputs, scope, with_bias=False, normalizer_fn=None,
              normalizer_params=None):
  """1x1 conv, Glorot-uniform, no activation, no L2 (overrides arg scopes)."""
  return slim.conv2d(
      inputs, num_outputs, [1, 1],
      activation_fn=None,
      normalizer_fn=normalizer_fn,
      normalizer_params=normalizer_params,
      weights_initializer=tf.glorot_uniform_initializer(),
      weights_regularizer=None,
      biases_initializer=tf.zeros_initializer() if with_bias else None,
      biases_regularizer=None,
      reuse=tf.AUTO_REUSE,
      scope=scope)


def _propagate(features, values, valid, attention_dim):
  """Masked dot-product self-attention over all pixels.

  Args:
    features: float [B, h, w, F] hypercolumn.
    values: float [B, h, w, K] values to propagate.
    valid: [B, h, w] or [B, h, w, 1] mask, 1 for valid pixels.
    attention_dim: key/query depth.

  Returns:
    float [B, h, w, K]: for each query pixel, the attention-weighted mean of the
    values of the valid key pixels.
  """
  with tf.variable_scope('hyper_column', reuse=tf.AUTO_REUSE):
    keys = _conv_1x1(features, attention_dim, 'key')
    queries = _conv_1x1(features, attention_dim, 'query')
  shape = tf.shape(values)
  batch = shape[0]
  keys = tf.reshape(keys, [batch, -1, attention_dim])
  queries = tf.reshape(queries, [batch, -1, attention_dim])
  flat_values = tf.reshape(values, [batch, -1, values.shape.as_list()[-1]])
  logits = tf.matmul(queries, keys, transpose_b=True) / math.sqrt(
      attention_dim)
  flat_valid = tf.reshape(tf.cast(valid, tf.float32), [batch, -1])
  pair_valid = flat_valid[:, :, tf.newaxis] * flat_valid[:, tf.newaxis, :]
  logits += (1. - pair_valid) * _MASK_VALUE
  attention = tf.nn.softmax(logits, axis=-1)
  return tf.reshape(tf.matmul(attention, flat_values), shape)


def _check_inputs(features, cams):
  """The conv layers need static channel counts."""
  if cams.shape.as_list()[-1] is None or features.shape.as_list()[-1] is None:
    raise ValueError('Self-attention needs static channel counts, got features '
                     '%s and CAMs %s.' % (features.shape, cams.shape))


def self_attention_v2(features, cams, valid, attention_dim=128):
  """SGC logits, v2 (default): skip connection and BN pixel normalisation.

  att = softmax_keys(QK^T / sqrt(d) + mask) V + V with V = cams; the background
  channel is 2 - max_c att (att lies in [0, 2]); then `pixel_normalization`:
  1x1 conv (K+1 -> K+1, no bias) + batch norm (decay 0.999, eps 1e-3, center,
  no scale) that always runs in training mode (as in the original; its moving
  statistics are never used) and adds its update ops to UPDATE_OPS.

  Args:
    features: float32 [B, h, w, F] hypercolumn (gradient is stopped here too).
    cams: float32 [B, h, w, K] normalised foreground CAMs (gradient stopped).
    valid: [B, h, w] or [B, h, w, 1] mask (any numeric dtype) at the CAM size.
    attention_dim: key/query depth (128 in the original).

  Returns:
    float32 [B, h, w, K + 1] SGC logits, background first.
  """
  _check_inputs(features, cams)
  values = tf.stop_gradient(cams)
  attended = _propagate(tf.stop_gradient(features), values, valid,
                        attention_dim) + values
  background = 2. - tf.reduce_max(attended, axis=3, keepdims=True)
  scores = tf.concat([background, attended], axis=3)
  batch_norm_params = {
      'decay': 0.999,
      'epsilon': 1e-3,
      'center': True,
      'scale': False,
      # do not fix: changes results (docs/DESIGN.md §Quirks 5)
      'is_training': True,
      'updates_collections': BATCH_NORM_UPDATES,
  }
  return _conv_1x1(scores, scores.shape.as_list()[-1], 'pixel_normalization',
                   normalizer_fn=slim.batch_norm,
                   normalizer_params=batch_norm_params)


def self_attention_v1(features, cams, valid, attention_dim=128):
  """SGC logits, v1 (`--att_v2=false`): no skip, biased 1x1 conv, no BN.

  att = softmax_keys(QK^T / sqrt(d) + mask) V with V = cams; the background
  channel is 1 - max_c att; then `pixel_normalization`: 1x1 conv (K+1 -> K+1)
  with a zero-initialised bias.
  Its variables differ from v2's under the same scope (docs/DESIGN.md §Quirks 21).

  Args:
    features: float32 [B, h, w, F] hypercolumn (gradient is stopped here too).
    cams: float32 [B, h, w, K] normalised foreground CAMs (gradient stopped).
    valid: [B, h, w] or [B, h, w, 1] mask (any numeric dtype) at the CAM size.
    attention_dim: key/query depth (128 in the original).

  Returns:
    float32 [B, h, w, K + 1] SGC logits, background first.
  """
  _check_inputs(features, cams)
  attended = _propagate(tf.stop_gradient(features), tf.stop_gradient(cams),
                        valid, attention_dim)
  background = 1. - tf.reduce_max(attended, axis=3, keepdims=True)
  scores = tf.concat([background, attended], axis=3)
  return _conv_1x1(scores, scores.shape.as_list()[-1], 'pixel_normalization',
                   with_bias=True)


def self_attention(features, cams, valid, att_v2=True, attention_dim=128):
  """Dispatches to `self_attention_v2` (att_v2=True) or `self_attention_v1`."""
  if att_v2:
    return self_attention_v2(features, cams, valid, attention_dim)
  return self_attention_v1(features, cams, valid, attention_dim)
