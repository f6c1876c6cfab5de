"""The passes of the end-of-run analysis: the checkpoints of a run, one pass
over the split per checkpoint, the overlay images, and one progress line per
checkpoint (utils/progress.py)."""
import collections
import os
import time

import numpy as np

from core.analysis import scores
from core.eval import checkpoints
from core.eval import prediction_files
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils import progress
from utils.errors import InputError


def list_checkpoints(logdir, flag_name):
  """All checkpoints `<prefix>-<step>` in `logdir`, oldest first.

  Args:
    logdir: a training logdir.
    flag_name: the flag naming it, for error messages.

  Returns:
    list of (step int, checkpoint prefix str), sorted by step.

  Raises:
    InputError: the folder does not exist or holds no checkpoint.
  """
  if not logdir or not os.path.isdir(logdir):
    raise InputError('--%s %s is not a directory (pass a training logdir)' %
                     (flag_name, logdir))
  found = [(step, prefix) for step, prefix in
           checkpoint_paths.indexed_checkpoints(logdir) if step is not None]
  if not found:
    raise InputError('--%s %s holds no checkpoint (no <prefix>-<step>.index '
                     'file)' % (flag_name, logdir))
  return sorted(found)


def select_evenly(checkpoints, limit):
  """At most `limit` of the checkpoints, evenly spaced, always the first and
  the last (all of them when limit <= 0 or there are no more)."""
  if limit <= 0 or len(checkpoints) <= limit:
    return list(checkpoints)
  if limit == 1:
    return [checkpoints[-1]]
  indices = np.unique(np.round(np.linspace(0, len(checkpoints) - 1, limit)))
  return [checkpoints[int(i)] for i in indices]


def evaluate_checkpoint(sess, iterator, per_batch, checkpoint):
  """One pass over the split with `checkpoint`; returns the summed numbers.

  Args:
    sess: session of the graph holding `per_batch`.
    iterator: the initializable iterator feeding it.
    per_batch: the first dict of `fetches.build_fetches`.
    checkpoint: checkpoint prefix to restore.

  Returns:
    `per_batch` with every array summed over the split (numpy, same nesting)
    and `num_images` an int.
  """
  _restore(sess, checkpoint)
  sess.run(iterator.initializer)
  totals = None
  while True:
    values = _next_batch(sess, per_batch)
    if values is None:
      break
    totals = values if totals is None else _summed(totals, values)
  if totals is None:
    raise InputError('the evaluation split holds no image')
  totals['num_images'] = int(totals['num_images'])
  return totals


def _summed(totals, values):
  """Element-wise sum of two equally nested dicts of arrays."""
  if isinstance(totals, dict):
    return {key: _summed(totals[key], values[key]) for key in totals}
  return totals + values


def _restore(sess, checkpoint):
  """Restores every variable of the graph from `checkpoint`.

  Raises:
    InputError: the checkpoint lacks some (e.g. a train_sup.py checkpoint
      analysed as a PseudoSeg run, or other --att_strides/--model_variant).
  """
  missing = checkpoints.restore_variables(sess, checkpoint)
  if missing:
    raise InputError(
        'checkpoint %s lacks %d variable(s) of the analysis graph, e.g. %s: '
        'is it a run of the right script (--sup_logdir, --full_logdir: '
        'train_sup.py; --wss_logdir, --weakly_logdir: train_wss.py) with '
        'the same model flags?' %
        (checkpoint, len(missing), missing[0]))


def _next_batch(sess, fetches):
  """sess.run(fetches), or None at the end of the split; an image larger
  than the eval crop is an InputError."""
  try:
    return sess.run(fetches)
  except tf.errors.OutOfRangeError:
    return None
  except tf.errors.InvalidArgumentError as error:
    if 'larger than the eval crop size' not in error.message:
      raise
    detail = error.message.split('[[')[0].split('assertion failed:')[-1]
    raise InputError('an image of the split does not fit --eval_crop_size: %s'
                     % ' '.join(detail.split()))


def collect_overlays(sess, iterator, overlay, checkpoint, num_images):
  """Image, label and prediction of the first `num_images` images.

  Each is cropped to the image area (the bounding box of `valid`), so the eval
  padding is not shown.

  Returns:
    list of dicts `image` uint8 [h, w, 3], `label` int [h, w], `prediction`
    int [h, w], at most `num_images` long.
  """
  _restore(sess, checkpoint)
  sess.run(iterator.initializer)
  rows = []
  while len(rows) < num_images:
    values = _next_batch(sess, overlay)
    if values is None:
      break
    for index in range(len(values['image'])):
      rows.append(_cropped(values, index))
  return rows[:num_images]


def _cropped(values, index):
  area = values['valid'][index]
  rows, columns = np.flatnonzero(area.any(axis=1)), np.flatnonzero(
      area.any(axis=0))
  if rows.size == 0:
    rows = columns = np.arange(area.shape[0])
  window = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
  row = {key: values[key][index][window]
         for key in ('image', 'label', 'prediction')}
  row['name'] = prediction_files.output_name(values['name'][index], index)
  return row


class Progress(object):
  """The analysis' progress: one line per checkpoint (utils/progress.py),
  `analysis <done>/<total> checkpoints  <run> step <step>: <summary>
  <seconds or cached>  ETA h:mm:ss`.

  The ETA multiplies the checkpoints still to compute by the mean time of the
  checkpoints computed so far, per run (runs not started yet: the overall
  mean); cached checkpoints cost nothing.
  """

  def __init__(self, to_compute, total, clock=time.monotonic):
    """to_compute: {run: number of checkpoints}; total: their sum."""
    self._left = dict(to_compute)
    self._seconds = collections.defaultdict(list)
    self._total = total
    self._done = 0
    self._clock = clock
    self._start = None

  def start(self):
    """Marks the start of one checkpoint's computation."""
    self._start = self._clock()

  def eta(self):
    """Seconds still needed (None before the first measurement)."""
    measured = [s for values in self._seconds.values() for s in values]
    if not measured:
      return None if any(self._left.values()) else 0.
    overall = np.mean(measured)
    return float(sum(
        left * (np.mean(self._seconds[run]) if self._seconds[run] else overall)
        for run, left in self._left.items()))

  def done(self, run, step, summary, cached=False):
    """Reports a finished checkpoint (computed since `start`, or cached)."""
    self._done += 1
    self._left[run] -= 1
    if cached:
      timing = 'cached'
    else:
      seconds = self._clock() - self._start
      self._seconds[run].append(seconds)
      timing = '%.1f s' % seconds
    progress.log_progress('analysis', self._done, self._total, 'checkpoints',
                          ['%s step %d: %s' % (run, step, summary), timing],
                          self.eta())


def record_summary(record):
  """Short text of a checkpoint record for the progress line."""
  text = 'val mIoU %s' % scores.percent(record['miou'])
  if 'sources' in record:
    text += ', pseudo-label mIoU %s, ECE fused %s' % (
        ' / '.join('%s %s' % (source, scores.percent(summary['miou']))
                   for source, summary in record['sources'].items()),
        scores.percent(record['reliability']['fused']['ece']))
  return text
