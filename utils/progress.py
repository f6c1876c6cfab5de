"""The one progress line of every script, with its ETA.

    <what> <done>/<total>[ <unit>]  <field>  ...  <field>  ETA h:mm:ss

for example

    step 250/1000  total_loss=0.8123  lr=0.01  0.25 s/step  16.00 images/s  ETA 0:03:07
    eval 300/1449 images  2.10 images/s  ETA 0:09:07
    predict 3/10 images  0.67 images/s  ETA 0:00:10
    analysis 2/6 checkpoints  baseline step 250: val mIoU 41.0%  12.3 s  ETA 0:00:49

Training (core/train/hooks.py), eval.py, vis.py, predict.py and analyze.py
(core/analysis/passes.py) all log it here, through absl `logging.info`. Its
shape is what bench/protocol.sh `progress_of` parses for the quick start's
console line: the text after the log prefix's `] ` up to the first two spaces
is the counter, the text after the last `ETA ` the time left. So fields hold
neither two spaces in a row nor `ETA `, and the ETA is always last (`ETA ?`
before anything was measured; `progress_of` skips such a line).

Each caller keeps its own estimate of the time left (the training hook: the
speed since its previous line; the analysis: per-run mean time per
checkpoint); `ItemProgress` is the one for passes over a known number of
items (images), from the mean rate since the start.
"""
import time

from absl import logging

_SEPARATOR = '  '


def format_duration(seconds):
  """`h:mm:ss` of a duration in seconds (float), rounded to the second;
  negative durations show as 0:00:00."""
  minutes, seconds = divmod(int(round(max(0., seconds))), 60)
  hours, minutes = divmod(minutes, 60)
  return '%d:%02d:%02d' % (hours, minutes, seconds)


def progress_line(what, done, total, unit='', fields=(), eta_seconds=None):
  """The progress line (str) of the module docstring.

  Args:
    what: what advances, e.g. 'step', 'eval', 'analysis'.
    done: int, units done so far.
    total: int, units in all.
    unit: what is counted, shown after the total ('images'), or ''.
    fields: strs shown between the counter and the ETA, in order; empty ones
      are left out.
    eta_seconds: float, seconds still needed, or None when not known yet.
  """
  counter = '%s %d/%d' % (what, done, total)
  if unit:
    counter += ' ' + unit
  eta = '?' if eta_seconds is None else format_duration(eta_seconds)
  return _SEPARATOR.join([counter] + [field for field in fields if field] +
                         ['ETA ' + eta])


def log_progress(what, done, total, unit='', fields=(), eta_seconds=None):
  """Logs `progress_line(...)` with absl logging.info: the one channel."""
  logging.info('%s', progress_line(what, done, total, unit, fields,
                                   eta_seconds))


class ItemProgress(object):
  """A pass over `total` items (eval.py, vis.py, predict.py).

  The line shows the mean rate since the start (`<x> <unit>/s`) and the ETA
  it gives for the items left. It is logged at the first item, then at most
  every `every_secs` seconds, and once `total` is reached; `finish` logs the
  final count (ETA 0:00:00) unless the last line already said `total`. The
  clock starts when the object is made.
  """

  def __init__(self, what, total, unit='images', every_secs=10.0,
               clock=time.monotonic):
    self._what, self._total, self._unit = what, total, unit
    self._every_secs = every_secs
    self._clock = clock
    self._start = clock()
    self._last_logged = None  # clock() of the last line
    self._logged_total = False
    self.done = 0

  def add(self, count=1):
    """Counts `count` more items (done or skipped); logs the line when due."""
    self.done += count
    now = self._clock()
    if (self._last_logged is None or self.done >= self._total or
        now - self._last_logged >= self._every_secs):
      self._log(now, finished=False)

  def finish(self):
    """Logs the final count, at the end of the pass."""
    if not self._logged_total:
      self._log(self._clock(), finished=True)

  def _log(self, now, finished):
    # A clock that did not move (an injected one) must not divide by zero.
    elapsed = max(now - self._start, 1e-9)
    if finished or self.done >= self._total:
      eta = 0.
    elif self.done:
      eta = elapsed / self.done * (self._total - self.done)
    else:
      eta = None
    log_progress(self._what, self.done, self._total, self._unit,
                 ['%.2f %s/s' % (self.done / elapsed, self._unit)], eta)
    self._last_logged = now
    self._logged_total = self.done >= self._total
