"""Expected calibration error (ECE) of per-pixel predictions: the one binning
rule and the one formula, for training and for the analysis.

A pixel counts when its label is not the ignore label. Its confidence is
max_c probs (float32) and it is correct when argmax_c probs equals its label.
Its bin is ceil(confidence * B) - 1, clipped to 0..B-1 and computed in
float32: the equal-width intervals (b / B, (b + 1) / B], b = 0..B-1, with a
confidence of exactly 0 in the first. Over the N counted pixels,

    ECE = sum_b (n_b / N) |acc_b - conf_b|
        = sum_b |sum_correct_b - sum_confidence_b| / N,

so no per-bin division is needed. Two reductions share the rule
(`confidence_bins`):

* `expected_calibration_error`: graph op, the ECE of one batch with float32
  sums (train_wss.py's `calibration/*` summaries and console scalars);
* `reliability_statistics`: graph op, the per-bin count and sums of one batch
  in float64, which analyze.py sums over the whole split before
  `ece_of_statistics` (numpy) reduces them; a split's ECE is therefore not
  the mean of its batches' ECEs.

For the same pixels both give the same ECE up to the float32 rounding of the
training sums.
"""
import numpy as np

from deeplab.tf_compat import tf

# Confidence bins of the analysis and the default of the training summaries
# (--calibration_bins).
NUM_BINS = 15


def confidence_bins(probs, labels, ignore_label, num_bins):
  """Graph ops: confidence, correctness and bin of every counted pixel.

  Args:
    probs: float [B, h, w, C] class probabilities.
    labels: int [B, h, w] or [B, h, w, 1] ground truth at the same resolution.
    ignore_label: label value whose pixels are left out.
    num_bins: number of equal-width confidence bins.

  Returns:
    (confidence float32 [N], correct float32 [N] (1 or 0), bin int32 [N] in
    0..num_bins-1) of the N pixels whose label is not `ignore_label`.
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
  return confidence, correct, bins


def expected_calibration_error(probs, labels, ignore_label=255,
                               num_bins=NUM_BINS):
  """Graph op: the ECE of one batch, with float32 per-bin sums.

  Args:
    probs, labels, ignore_label, num_bins: as `confidence_bins`.

  Returns:
    float32 scalar; 0 if no pixel is counted.
  """
  confidence, correct, bins = confidence_bins(probs, labels, ignore_label,
                                              num_bins)
  gap = (tf.math.unsorted_segment_sum(correct, bins, num_bins) -
         tf.math.unsorted_segment_sum(confidence, bins, num_bins))
  return tf.math.divide_no_nan(
      tf.reduce_sum(tf.abs(gap)), tf.cast(tf.size(confidence), tf.float32))


def reliability_statistics(probs, labels, ignore_label, num_bins=NUM_BINS):
  """Graph op: per-bin pixel count, sum of confidence and sum of correct of
  one batch, in float64 so that sums over a whole split stay exact.

  Args:
    probs, labels, ignore_label, num_bins: as `confidence_bins`.

  Returns:
    float64 [3, num_bins]: rows count, sum of confidence, sum of correct.
  """
  confidence, correct, bins = confidence_bins(probs, labels, ignore_label,
                                              num_bins)
  rows = [tf.ones_like(confidence, dtype=tf.float64),
          tf.cast(confidence, tf.float64), tf.cast(correct, tf.float64)]
  return tf.stack([tf.math.unsorted_segment_sum(row, bins, num_bins)
                   for row in rows])


def ece_of_statistics(statistics):
  """The ECE of per-bin sums (numpy, float64):
  sum_b |sum_correct_b - sum_confidence_b| / sum_b count_b.

  Args:
    statistics: array [3, B] of `reliability_statistics`, summed over any
      number of batches.

  Returns:
    float, or None when no pixel was counted.
  """
  count, confidence, correct = np.asarray(statistics, dtype=np.float64)
  total = count.sum()
  if total <= 0:
    return None
  return float(np.abs(correct - confidence).sum() / total)
