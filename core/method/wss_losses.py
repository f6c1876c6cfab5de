"""PseudoSeg losses on pseudo labels and image-level labels (docs/DESIGN.md §Losses).

These functions return scalars and add nothing to the loss collections; the
training script weights them and adds them itself.
"""
from deeplab.tf_compat import tf


def _pixel_map(tensor):
  """[B, h, w] or [B, h, w, 1] -> [B, h, w] (static rank required)."""
  if tensor.shape.ndims == 4:
    return tf.squeeze(tensor, axis=3)
  return tensor


def consistency_loss(strong_logits, targets, mask, valid, soft=True):
  """Cross-entropy of the strong-view logits against the pseudo labels.

  loss = sum_pixels(CE * mask) / sum(valid), 0 when sum(valid) == 0. The
  denominator is the padding/cutout mask even when `mask` also applies a
  confidence threshold (as in the original). Multiply by `unlabeled_weight`.

  Args:
    strong_logits: float [B, h, w, C] logits of the strong view (same
      resolution as the targets, 1/4 of the crop; no upsampling).
    targets: float [B, h, w, C] soft targets or int [B, h, w] hard targets
      (gradient is stopped here too).
    mask: float [B, h, w] or [B, h, w, 1] per-pixel loss weights.
    valid: [B, h, w] or [B, h, w, 1] padding/cutout mask (numeric dtype).
    soft: soft (-sum_c t_c log softmax_c) or hard (sparse) cross-entropy.

  Returns:
    float32 scalar.
  """
  targets = tf.stop_gradient(targets)
  if soft:
    pixel_losses = tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=targets, logits=strong_logits)
  else:
    pixel_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(targets, tf.int32), logits=strong_logits)
  pixel_losses = tf.cast(pixel_losses, tf.float32)
  total = tf.reduce_sum(pixel_losses * tf.cast(_pixel_map(mask), tf.float32))
  # do not fix: changes results (docs/DESIGN.md §Quirks 8)
  return tf.math.divide_no_nan(
      total, tf.reduce_sum(tf.cast(_pixel_map(valid), tf.float32)))


def classification_loss(cls_logits, cls_labels):
  """Multi-label sigmoid cross-entropy, mean over B x K.

  Args:
    cls_logits: float [B, K] classification logits.
    cls_labels: {0, 1} [B, K] image-level labels (any numeric dtype).

  Returns:
    float scalar.
  """
  return tf.reduce_mean(
      tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.cast(cls_labels, cls_logits.dtype), logits=cls_logits))


def class_balanced_pixel_weights(labels, num_classes, ignore_label):
  """Per-pixel weights making every class present in the batch count equally.

  Pixel weight = 1 / (#pixels of its class in the batch), normalised so the
  weights of the batch sum to 1 (each present class then totals
  1 / #present classes); 0 on ignored or out-of-range labels. Used as the
  `weights` of the streaming class-balanced accuracies (docs/DESIGN.md §Summary tags).

  Args:
    labels: int [B, h, w] or [B, h, w, 1] ground truth.
    num_classes: number of classes C.
    ignore_label: label value to give zero weight (e.g. 255).

  Returns:
    float32 tensor shaped like `labels`; all zeros if no pixel is valid.
  """
  labels = tf.cast(labels, tf.int32)
  valid = tf.not_equal(labels, ignore_label)
  one_hot = tf.one_hot(tf.where_v2(valid, labels, -1), num_classes)
  class_counts = tf.reduce_sum(one_hot, axis=tf.range(tf.rank(labels)))
  class_weights = tf.math.divide_no_nan(1., class_counts)
  weights = tf.reduce_sum(one_hot * class_weights, axis=-1)
  return tf.math.divide_no_nan(weights, tf.reduce_sum(weights))
