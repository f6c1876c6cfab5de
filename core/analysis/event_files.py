"""Training curves of the end-of-run analysis: the scalars of TensorBoard
event files."""
import collections
import glob
import os
import re

import numpy as np

from deeplab.tf_compat import tf

_EVENTS_PATTERN = 'events.out.tfevents.*'


def read_scalar_events(logdir):
  """Scalar summaries of the event files directly in `logdir`.

  Returns:
    {tag: (steps int64 [n], values float64 [n])}, sorted by step; when a step
    was written more than once (a resumed run), the last value written wins.
  """
  by_tag = collections.defaultdict(dict)
  paths = sorted(glob.glob(os.path.join(logdir, _EVENTS_PATTERN)))
  for path in paths:
    try:
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          scalar = _scalar_of(value)
          if scalar is not None:
            by_tag[value.tag][int(event.step)] = scalar
    except tf.errors.DataLossError:
      pass  # A file still being written ends in a truncated record.
  curves = {}
  for tag, points in by_tag.items():
    steps = np.array(sorted(points), dtype=np.int64)
    curves[tag] = (steps, np.array([points[s] for s in steps], np.float64))
  return curves


def _scalar_of(value):
  kind = value.WhichOneof('value')
  if kind == 'simple_value':
    return float(value.simple_value)
  if kind == 'tensor' and value.metadata.plugin_data.plugin_name == 'scalars':
    return float(tf.make_ndarray(value.tensor))
  return None


def find_curve(curves, tag):
  """The curve of `tag`, else of `tag_<n>` with the smallest n, else None.

  TF1 summaries of a name that already exists get a `_1` suffix (e.g.
  `total_loss_1` beside the `total_loss` op); both spellings are accepted.
  """
  if tag in curves:
    return curves[tag]
  pattern = re.compile(re.escape(tag) + r'_(\d+)$')
  matches = sorted((int(m.group(1)), name) for name in curves
                   for m in [pattern.match(name)] if m)
  return curves[matches[0][1]] if matches else None
