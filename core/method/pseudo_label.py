"""Pseudo labels of the unlabeled batch (docs/DESIGN.md §Fusion).

The decoder prediction of the weak view and the SGC (self-attention Grad-CAM)
logits are fused into one distribution, optionally sharpened, and turned into
soft or hard targets plus a per-pixel loss mask. Nothing here back-propagates.
"""
from deeplab.tf_compat import tf
from utils.errors import InputError

PSEUDO_SOURCES = ('att', 'avg')


def _pixel_map(tensor):
  """[B, h, w] or [B, h, w, 1] -> [B, h, w] (static rank required)."""
  if tensor.shape.ndims == 4:
    return tf.squeeze(tensor, axis=3)
  return tensor


def logit_norm_scale(logits_a, logits_b):
  """One scalar s = 1 / sqrt(mean(Z^2) + 1e-8), Z = concat([a, b], axis 0).

  A single RMS over both sources, every pixel, class and sample of the clone
  batch (as in the original; it depends on the batch composition).

  Args:
    logits_a: float [B, h, w, C].
    logits_b: float [B', h, w, C].

  Returns:
    float scalar.
  """
  # do not fix: changes results (docs/DESIGN.md §Quirks 10)
  stacked = tf.concat([logits_a, logits_b], axis=0)
  return 1. / tf.sqrt(tf.reduce_mean(tf.square(stacked)) + 1e-8)


def fuse_probabilities(decoder_logits, attention_logits, pseudo_src='avg',
                       logit_norm=True):
  """Fuses the decoder and SGC predictions into one distribution.

  Args:
    decoder_logits: float [B, h, w, C] logits of the weak view (train mode).
    attention_logits: float [B, h, w, C] SGC logits already resized to (h, w)
      (bilinear-AC), or None when attention is off (returns softmax(decoder)).
    pseudo_src: 'att' -> softmax(SGC); 'avg' -> mean of both softmaxes.
    logit_norm: with 'avg', scale both logits by `logit_norm_scale` first.

  Returns:
    float [B, h, w, C] probabilities.

  Raises:
    InputError: for an unknown `pseudo_src`.
  """
  if pseudo_src not in PSEUDO_SOURCES:
    raise InputError('pseudo_src must be one of %s, got %r.' %
                     (PSEUDO_SOURCES, pseudo_src))
  if attention_logits is None:
    return tf.nn.softmax(decoder_logits)
  if pseudo_src == 'att':
    return tf.nn.softmax(attention_logits)
  if logit_norm:
    scale = logit_norm_scale(decoder_logits, attention_logits)
    decoder_logits *= scale
    attention_logits *= scale
  return 0.5 * (tf.nn.softmax(decoder_logits) + tf.nn.softmax(attention_logits))


def sharpen(probs, temperature):
  """Temperature sharpening p^(1/T) / sum_c p^(1/T) (identity for T = 1).

  Args:
    probs: float [..., C] probabilities.
    temperature: Python float > 0.

  Returns:
    float [..., C].

  Raises:
    InputError: if temperature <= 0.
  """
  if temperature <= 0:
    raise InputError('temperature must be > 0, got %r.' % temperature)
  if temperature == 1.0:
    return probs
  powered = tf.pow(probs, 1. / temperature)
  return powered / tf.reduce_sum(powered, axis=-1, keepdims=True)


def make_pseudo_labels(probs, valid, soft=True, temperature=0.5, threshold=0.):
  """Targets and loss mask of the consistency loss.

  Soft: p = sharpen(probs, T), targets = p. Hard: p = probs (never sharpened),
  targets = argmax_c p. With threshold > 0 the mask keeps valid pixels whose
  confidence max_c p (after sharpening) is >= threshold; otherwise it is
  `valid`.

  Args:
    probs: float [B, h, w, C] fused probabilities (`fuse_probabilities`).
    valid: [B, h, w] or [B, h, w, 1] padding/cutout mask (any numeric dtype).
    soft: soft (True) or hard (False) targets.
    temperature: Python float sharpening temperature (soft only).
    threshold: Python float confidence threshold; 0 disables it.

  Returns:
    targets: float [B, h, w, C] (soft) or int32 [B, h, w] (hard), gradient
      stopped.
    loss_mask: float32 [B, h, w], gradient stopped.
    confidence: float [B, h, w] max_c p, gradient stopped.
  """
  probs = tf.stop_gradient(probs)
  if soft:
    probs = sharpen(probs, temperature)
    targets = probs
  else:
    targets = tf.argmax(probs, axis=3, output_type=tf.int32)
  # do not fix: changes results (docs/DESIGN.md §Quirks 11)
  confidence = tf.reduce_max(probs, axis=3)
  loss_mask = tf.cast(_pixel_map(valid), tf.float32)
  if threshold > 0:
    loss_mask *= tf.cast(confidence >= threshold, tf.float32)
  return targets, loss_mask, confidence
