"""Results of an evaluation on disk: JSON records and files, summaries."""
import json
import math
import os

import numpy as np

from core.eval import metrics
from deeplab.tf_compat import tf
from utils import atomic_write


def _json_value(value):
  """A float for JSON, None for NaN/inf (JSON has no NaN)."""
  value = float(value)
  return value if math.isfinite(value) else None


def results_record(checkpoint_path, global_step, confusion, num_images,
                   classification=None, **extra):
  """The JSON-serialisable results of one evaluation.

  Args:
    checkpoint_path: evaluated checkpoint prefix.
    global_step: its step (int or None).
    confusion: int array [C, C] over the split.
    num_images: images evaluated.
    classification: optional dict accuracy/precision/recall (--weakly).
    **extra: more JSON-serialisable entries (dataset, split, ...).

  Returns:
    dict with checkpoint, global_step, miou, per_class_iou (null where the
    class has TP + FP + FN = 0), num_images, confusion_matrix (+ cls_*).
  """
  record = {
      'checkpoint': checkpoint_path,
      'global_step': global_step,
      'miou': _json_value(metrics.mean_iou(confusion)),
      'per_class_iou': [_json_value(value)
                        for value in metrics.per_class_iou(confusion)],
      'num_images': int(num_images),
      'confusion_matrix': np.asarray(confusion, dtype=np.int64).tolist(),
  }
  if classification is not None:
    for key, value in classification.items():
      record['cls_' + key] = _json_value(value)
  record.update(extra)
  return record


def _format_json(data):
  """JSON text of a dict, one line per key (a C x C matrix stays one line)."""
  lines = ['  %s: %s' % (json.dumps(key), json.dumps(value, allow_nan=False))
           for key, value in data.items()]
  return '{\n%s\n}\n' % ',\n'.join(lines)


def write_json_atomically(path, data):
  """Writes the dict `data` as JSON to `path` (`atomic_write.write_text`)."""
  atomic_write.write_text(path, _format_json(data))


def write_results(logdir, record):
  """Writes `results-<step>.json` and `results.json` (latest) into `logdir`.

  Returns:
    The path of the per-checkpoint file.
  """
  step = record['global_step']
  tag = (str(step) if step is not None
         else os.path.basename(record['checkpoint']))
  path = os.path.join(logdir, 'results-%s.json' % tag)
  write_json_atomically(path, record)
  write_json_atomically(os.path.join(logdir, 'results.json'), record)
  return path


def write_scalar_summaries(writer, values, step):
  """Writes {tag: float} as scalar summaries at `step` and flushes."""
  summary = tf.Summary(value=[
      tf.Summary.Value(tag=tag, simple_value=float(value))
      for tag, value in values.items()])
  writer.add_summary(summary, global_step=step)
  writer.flush()
