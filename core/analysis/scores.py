"""The numbers of the end-of-run analysis: the JSON form of the reliability
statistics (computed and reduced by core/method/calibration.py),
confusion-matrix summaries, pixel accuracy, and the validation curves of
per-checkpoint records."""
import numpy as np

from core.eval import metrics
from core.method import calibration

# JSON names of the rows of calibration.reliability_statistics, in order.
_STATISTICS = ('count', 'sum_confidence', 'sum_correct')


def reliability_record(statistics):
  """JSON form of `calibration.reliability_statistics` summed over the split
  (float64 [3, B]): lists per row plus `ece` (`calibration.ece_of_statistics`,
  None when no pixel was counted)."""
  statistics = np.asarray(statistics, dtype=np.float64)
  record = {name: statistics[i].tolist() for i, name in enumerate(_STATISTICS)}
  record['count'] = [int(round(value)) for value in record['count']]
  record['ece'] = calibration.ece_of_statistics(statistics)
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
