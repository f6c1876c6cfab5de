"""TensorFlow 2.x / tf_slim 1.1.0 compatibility, applied before tf_slim is imported.

tf_slim 1.1.0 was written for TF 1.15/2.2. On TF 2.21 it breaks in two ways:

1. It reaches private TF symbols that have since moved (`ops.Tensor`,
   `array_ops.stack`, `control_flow_ops.cond`, ...). We re-attach the public
   equivalents under the old names.
2. `slim.batch_norm` with the default `updates_collections` goes through the Keras 2
   layers, which TF 2.21 no longer ships. The arg scopes of this project therefore
   pass `BATCH_NORM_UPDATES` (a list), which selects slim's own TF-ops batch norm
   with the same variables and update ops.

Every module of this project imports `tf` and `slim` from here, so the fixes are
applied exactly once and always before tf_slim runs.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow.compat.v1 as tf  # noqa: E402
from tensorflow.python.framework import ops as _ops  # noqa: E402
from tensorflow.python.ops import array_ops as _array_ops  # noqa: E402
from tensorflow.python.ops import control_flow_ops as _control_flow_ops  # noqa: E402

_MOVED_SYMBOLS = (
    (_ops, 'Tensor', tf.Tensor),
    (_ops, 'IndexedSlices', tf.IndexedSlices),
    (_array_ops, 'stack', tf.stack),
    (_array_ops, 'unstack', tf.unstack),
    (_control_flow_ops, 'cond', tf.cond),
    (_control_flow_ops, 'case', tf.case),
    (_control_flow_ops, 'while_loop', tf.while_loop),
    (_control_flow_ops, 'Assert', tf.Assert),
)


def restore_moved_symbols():
  """Sets every moved private symbol tf_slim needs that is missing. Idempotent."""
  for module, name, public in _MOVED_SYMBOLS:
    if not hasattr(module, name):
      setattr(module, name, public)


restore_moved_symbols()
tf.disable_v2_behavior()

import tf_slim as slim  # noqa: E402

# Pass as `updates_collections` to slim.batch_norm (see point 2 above).
BATCH_NORM_UPDATES = [tf.GraphKeys.UPDATE_OPS]

__all__ = ['tf', 'slim', 'BATCH_NORM_UPDATES', 'restore_moved_symbols']
