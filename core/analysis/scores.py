"""The numbers of the end-of-run analysis: reliability statistics and their
expected calibration error, confusion-matrix summaries, pixel accuracy, and
the validation curves of per-checkpoint records."""
import numpy as np

from core.eval import metrics
from deeplab.tf_compat import tf

NUM_BINS = 15
_STATISTICS = ('count', 'sum_confidence', 'sum_correct')


def reliability_statistics(probs, labels, ignore_label, num_bins=NUM_BINS):
  """Graph op: per-bin pixel count, sum of confidence and sum of correct.

  Confidence = max_c probs, correct = [argmax_c probs == label]; the bins are
  those of `calibration.expected_calibration_error` (the same float32
  arithmetic, so both agree exactly).

  Args:
    probs: float [B, h, w, C] class probabilities.
    labels: int [B, h, w] ground truth at the same resolution.
    ignore_label: label value whose pixels are left out.
    num_bins: number of equal-width confidence bins.

  Returns:
    float64 [3, num_bins]: rows count, sum of confidence, sum of correct.
  """
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  probs = tf.reshape(tf.cast(probs, tf.float32), [-1, tf.shape(probs)[-1]])
  valid = tf.not_equal(labels, ignore_label)
  confidence = tf.boolean_mask(tf.reduce_max(probs, axis=1), valid)
  correct = tf.boolean_mask(tf.equal(tf.argmax(probs, axis=1), labels), valid)
  bins = tf.clip_by_value(
      tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1, 0,
      num_bins - 1)
  rows = [tf.ones_like(confidence, dtype=tf.float64),
          tf.cast(confidence, tf.float64), tf.cast(correct, tf.float64)]
  return tf.stack([tf.math.unsorted_segment_sum(row, bins, num_bins)
                   for row in rows])


def expected_calibration_error(statistics):
  """ECE = sum_b |sum_correct_b - sum_confidence_b| / sum_b count_b.

  Args:
    statistics: array [3, B] of `reliability_statistics` (summed over batches).

  Returns:
    float, or None when no pixel was counted.
  """
  count, confidence, correct = np.asarray(statistics, dtype=np.float64)
  total = count.sum()
  if total <= 0:
    return None
  return float(np.abs(correct - confidence).sum() / total)


def reliability_record(statistics):
  """JSON form of summed statistics [3, B]: lists per row plus `ece`."""
  statistics = np.asarray(statistics, dtype=np.float64)
  record = {name: statistics[i].tolist() for i, name in enumerate(_STATISTICS)}
  record['count'] = [int(round(value)) for value in record['count']]
  record['ece'] = expected_calibration_error(statistics)
  return record


def statistics_from_record(record):
  """Inverse of `reliability_record`: float64 [3, B]."""
  return np.array([record[name] for name in _STATISTICS], dtype=np.float64)


def pixel_accuracy(confusion):
  """Correct / counted pixels of a confusion matrix; None if it is empty."""
  confusion = np.asarray(confusion, dtype=np.float64)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total > 0 else None


def _finite_or_none(value):
  return None if value is None or not np.isfinite(value) else float(value)


def confusion_summary(confusion):
  """JSON numbers of a confusion matrix int [C, C] (rows ground truth).

  Returns:
    dict: `pixel_accuracy`, `miou` (floats or None), `per_class_iou` (list
    [C] of floats, None where TP + FP + FN = 0) and `confusion_matrix` (int
    lists [C][C]).
  """
  confusion = np.asarray(confusion, np.int64)
  return {'pixel_accuracy': pixel_accuracy(confusion),
          'miou': _finite_or_none(metrics.mean_iou(confusion)),
          'per_class_iou': [_finite_or_none(value)
                            for value in metrics.per_class_iou(confusion)],
          'confusion_matrix': confusion.tolist()}


def image_pixel_accuracy(label, prediction, ignore_label):
  """Share of the labelled pixels of one image predicted right (None if
  none is labelled)."""
  counted = np.asarray(label) != ignore_label
  if not counted.any():
    return None
  return float(np.mean(np.asarray(prediction)[counted] ==
                       np.asarray(label)[counted]))


def percent(value):
  """`12.3%` of a fraction, `-` for None."""
  return '-' if value is None else '%.1f%%' % (100 * value)


def validation_curves(records):
  """Arrays over checkpoints (sorted by step) from checkpoint records.

  Returns:
    dict: `step` int [n], `miou` float [n] (NaN where undefined) and, when the
    records are PseudoSeg ones, `ece_<source>` per measured source and
    `pseudo_miou_<source>` per source of CONFUSION_SOURCES measured.
  """
  records = sorted(records, key=lambda r: r['global_step'])
  value = lambda v: np.nan if v is None else float(v)
  curves = {'step': np.array([r['global_step'] for r in records], np.int64),
            'miou': np.array([value(r['miou']) for r in records])}
  if records and 'reliability' in records[0]:
    for source in records[0]['reliability']:
      curves['ece_' + source] = np.array(
          [value(r['reliability'][source]['ece']) for r in records])
    for source in records[0]['sources']:
      curves['pseudo_miou_' + source] = np.array(
          [value(r['sources'][source]['miou']) for r in records])
  return curves
