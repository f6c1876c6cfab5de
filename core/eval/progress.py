"""Progress of a pass over a split, logged every so many images."""
import time

from absl import logging


class ProgressLogger(object):
  """Logs `done/total images (x images/s)` every `every` images."""

  def __init__(self, total, every):
    self._total = total
    self._every = max(1, every)
    self._start = time.time()
    self._next = self._every
    self.done = 0

  def _log(self, prefix=''):
    elapsed = max(time.time() - self._start, 1e-9)
    logging.info('%s%d/%d images (%.2f images/s)', prefix, self.done,
                 self._total, self.done / elapsed)

  def add(self, count):
    """Records `count` more images; logs on passing a multiple of `every`."""
    self.done += count
    if self.done >= self._next:
      self._log()
      self._next = (self.done // self._every + 1) * self._every

  def finish(self):
    """Logs the final count."""
    self._log('Done: ')
