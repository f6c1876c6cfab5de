"""Segmentation and classification metrics of an evaluation pass.

Conventions: a confusion matrix is an int64 numpy array [C, C] whose rows are
ground-truth classes and whose columns are predicted classes (the layout of
`tf.math.confusion_matrix`).
"""
import numpy as np

from deeplab.tf_compat import tf


def _flat_labels(labels, num_classes, ignore_label):
  """Flattens labels: returns labels int64 [P], counted [P], bad [P] (bool).

  `counted`: a class id in 0..C-1 other than ignore_label (ADE20K ignores 0);
  `bad`: neither a class id nor ignore_label.
  """
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  in_range = (labels >= 0) & (labels < num_classes)
  not_ignored = tf.not_equal(labels, ignore_label)
  return labels, in_range & not_ignored, ~in_range & not_ignored


def batch_confusion_matrix(labels, predictions, num_classes, ignore_label):
  """Graph op: the confusion matrix of one batch over the labelled pixels.

  Args:
    labels: int tensor [N, H, W] or [N, H, W, 1], class ids or `ignore_label`.
    predictions: int tensor with the same number of pixels, [N, H, W].
    num_classes: C.
    ignore_label: label value given weight 0.

  Returns:
    int64 tensor [C, C], rows = ground truth, columns = prediction. Pixels whose
    label is not in 0..C-1 (ignored or invalid, see `invalid_label_count`) are
    not counted.
  """
  labels, counted, _ = _flat_labels(labels, num_classes, ignore_label)
  predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
  # Uncounted pixels get a legal class id so confusion_matrix accepts them;
  # their weight 0 keeps them out of the counts.
  labels = tf.where(counted, labels, tf.zeros_like(labels))
  return tf.math.confusion_matrix(labels, predictions, num_classes=num_classes,
                                  weights=tf.cast(counted, tf.int64),
                                  dtype=tf.int64)


def invalid_label_count(labels, num_classes, ignore_label):
  """Graph op: int64 scalar, pixels whose label is no class id nor ignore_label.

  Non-zero means the labels are not class-index maps of this dataset (e.g. a
  palette PNG decoded as luminance, or the wrong --dataset).
  """
  _, _, bad = _flat_labels(labels, num_classes, ignore_label)
  return tf.reduce_sum(tf.cast(bad, tf.int64))


def iou_denominators(confusion):
  """Returns (TP, TP + FP + FN) per class as float arrays [C]."""
  confusion = np.asarray(confusion, dtype=np.float64)
  true_positives = np.diag(confusion)
  denominators = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
  return true_positives, denominators


def per_class_iou(confusion):
  """IoU = TP / (TP + FP + FN) per class; NaN where the denominator is 0."""
  true_positives, denominators = iou_denominators(confusion)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(denominators > 0, true_positives / denominators, np.nan)


def mean_iou(confusion):
  """Mean IoU over the classes with TP + FP + FN > 0 (NaN if there are none)."""
  ious = per_class_iou(confusion)
  valid = ~np.isnan(ious)
  return float(ious[valid].mean()) if valid.any() else float('nan')


def summary_class_iou(confusion):
  """Per-class values of `eval/miou_class_<c>`: NaN for classes not in the GT.

  Same IoU, but a class with no ground-truth pixel (TP + FN = 0) is NaN even
  when it was predicted, as in the original's summaries.
  Kept so eval curves compare with the original's (docs/DESIGN.md §Quirks 22).
  """
  ious = per_class_iou(confusion)
  ground_truth = np.asarray(confusion).sum(axis=1)
  return np.where(ground_truth > 0, ious, np.nan)


def multilabel_counts(logits, labels, threshold=0.5):
  """Graph op: [TP, FP, FN, TN] (int64 [4]) of sigmoid(logits) >= threshold.

  Args:
    logits: float tensor [N, K] of the classification head.
    labels: float tensor [N, K], multi-hot image-level labels.
    threshold: probability at or above which a class is predicted.
  """
  predicted = tf.sigmoid(logits) >= threshold
  actual = labels > 0.5
  def count(condition):
    return tf.reduce_sum(tf.cast(condition, tf.int64))
  return tf.stack([
      count(predicted & actual), count(predicted & ~actual),
      count(~predicted & actual), count(~predicted & ~actual)])


def classification_metrics(counts):
  """Returns dict accuracy/precision/recall from [TP, FP, FN, TN] counts.

  Each is 0 when its denominator is 0 (as TF's streaming metrics report).
  """
  tp, fp, fn, tn = [float(value) for value in counts]
  def ratio(numerator, denominator):
    return numerator / denominator if denominator > 0 else 0.0
  return {'accuracy': ratio(tp + tn, tp + fp + fn + tn),
          'precision': ratio(tp, tp + fp), 'recall': ratio(tp, tp + fn)}
