"""Per-checkpoint records of the end-of-run analysis and their cache:
`<output_dir>/analysis/<run>-<step>.json` and the overlay rows
`<run>-<step>-overlays.npz`, reused while their settings are unchanged."""
import json
import os

import numpy as np

from core.analysis import scores
from core.eval import results_io
from utils import atomic_write


def checkpoint_record(run, checkpoint, step, totals, settings):
  """The JSON-serialisable results of one checkpoint.

  Args:
    run: run name (e.g. 'baseline', 'pseudoseg', 'pseudoseg_weakly').
    checkpoint: checkpoint prefix.
    step: its global step.
    totals: the dict of `passes.evaluate_checkpoint`.
    settings: JSON-serialisable dict of everything the numbers depend on
      (compared by `load_cached`).

  Returns:
    `results_io.results_record` (checkpoint, global_step, miou, per_class_iou,
    num_images, confusion_matrix) plus `run`, `settings` and, for PseudoSeg,
    `reliability` {source: `scores.reliability_record`: count,
    sum_confidence, sum_correct [calibration.NUM_BINS], ece}, `pseudo_label`
    (argmax of the sharpened pseudo labels) and
    `sources` {source of CONFUSION_SOURCES: ...}, each a `confusion_summary`
    {pixel_accuracy, miou, per_class_iou, confusion_matrix}.
  """
  extra = {'run': run, 'settings': settings}
  if 'reliability' in totals:
    extra['reliability'] = {source: scores.reliability_record(summed)
                            for source, summed in
                            totals['reliability'].items()}
    extra['pseudo_label'] = scores.confusion_summary(
        totals['pseudo_confusion'])
    extra['sources'] = {source: scores.confusion_summary(confusion)
                        for source, confusion in
                        totals['source_confusion'].items()}
  return results_io.results_record(checkpoint, step, totals['confusion'],
                                   totals['num_images'], **extra)


def cache_path(output_dir, run, step):
  """`<output_dir>/analysis/<run>-<step>.json`."""
  return os.path.join(output_dir, 'analysis', '%s-%d.json' % (run, step))


def checkpoint_settings(checkpoint, **settings):
  """Settings of one checkpoint's analysis, normalised as JSON would store
  them; includes the checkpoint and its modification time so that a new
  training run in the same logdir is not mistaken for the cached one."""
  settings = dict(settings, checkpoint=checkpoint,
                  checkpoint_mtime=int(os.stat(checkpoint + '.index').st_mtime))
  return json.loads(json.dumps(settings))


def load_cached(path, settings):
  """The record at `path` if it exists, parses and has these settings."""
  try:
    with open(path) as stream:
      record = json.load(stream)
  except (OSError, ValueError):
    return None
  return record if record.get('settings') == settings else None


def overlays_path(output_dir, run, step):
  """`<output_dir>/analysis/<run>-<step>-overlays.npz`."""
  return os.path.join(output_dir, 'analysis',
                      '%s-%d-overlays.npz' % (run, step))


def save_overlays(path, rows, settings):
  """Saves `collect_overlays` rows and their settings (atomically)."""
  arrays = {'settings': np.array(json.dumps(settings, sort_keys=True))}
  for index, row in enumerate(rows):
    for key, value in row.items():
      arrays['%s_%d' % (key, index)] = np.asarray(value)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic_write.open_atomic(path) as stream:
    np.savez_compressed(stream, **arrays)


def load_overlays(path, settings, num_images):
  """The first `num_images` saved rows, or None if the file is missing, made
  with other settings or holds fewer rows."""
  try:
    with np.load(path) as data:
      if str(data['settings']) != json.dumps(settings, sort_keys=True):
        return None
      rows = []
      while len(rows) < num_images and 'image_%d' % len(rows) in data:
        index = len(rows)
        row = {key: data['%s_%d' % (key, index)]
               for key in ('image', 'label', 'prediction')}
        row['name'] = str(data['name_%d' % index])
        rows.append(row)
  except (OSError, ValueError, KeyError):
    return None
  return rows if len(rows) == num_images else None
