"""Expected calibration error of per-pixel predictions, in-graph."""
from deeplab.tf_compat import tf


def expected_calibration_error(probs, labels, ignore_label=255, num_bins=15):
  """ECE = sum_b (n_b / N) |acc_b - conf_b| over the valid pixels of the batch.

  Confidence = max_c probs, correct = [argmax_c probs == label]. Bins are the
  equal-width intervals (b / num_bins, (b + 1) / num_bins], b = 0..num_bins-1
  (a confidence of exactly 0 falls in the first bin). Since
  n_b |acc_b - conf_b| = |sum_b correct - sum_b conf|, no per-bin division is
  needed.

  Args:
    probs: float [B, h, w, C] class probabilities.
    labels: int [B, h, w] or [B, h, w, 1] ground truth at the same resolution.
    ignore_label: label value excluded from the statistics.
    num_bins: number of confidence bins.

  Returns:
    float32 scalar; 0 if no pixel is valid.
  """
  if labels.shape.ndims == 4:
    labels = tf.squeeze(labels, axis=3)
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  num_classes = tf.shape(probs, out_type=tf.int64)[-1]
  probs = tf.reshape(tf.cast(probs, tf.float32), [-1, num_classes])
  valid = tf.not_equal(labels, ignore_label)
  confidence = tf.boolean_mask(tf.reduce_max(probs, axis=1), valid)
  correct = tf.cast(
      tf.boolean_mask(tf.equal(tf.argmax(probs, axis=1), labels), valid),
      tf.float32)
  bins = tf.clip_by_value(
      tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1, 0,
      num_bins - 1)
  gap = (tf.math.unsorted_segment_sum(correct, bins, num_bins) -
         tf.math.unsorted_segment_sum(confidence, bins, num_bins))
  return tf.math.divide_no_nan(
      tf.reduce_sum(tf.abs(gap)), tf.cast(tf.size(confidence), tf.float32))
