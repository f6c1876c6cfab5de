"""Scalar and histogram summaries of the training loop and the console names
of its scalars (docs/DESIGN.md §Summary tags)."""
from core.method import monitoring
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf


def console_name(tensor):
  """Short name of a scalar: no clone scope, no trailing `/loss`."""
  name = tensor.op.name
  if name.startswith('clone_'):
    name = name.split('/', 1)[1]
  return name[:-len('/loss')] if name.endswith('/loss') else name


def _tagged_summary(kind, tag, tensor):
  """A scalar or histogram summary whose tag is exactly `tag`.

  tf.summary.* derive the tag from a fresh name scope, so a tag equal to an op
  name (`learning_rate`, `total_loss`, every variable) came out as `<tag>_1`.
  """
  with tf.name_scope(None):
    if kind == 'scalar':
      summary = tf.raw_ops.ScalarSummary(tags=tag, values=tensor,
                                         name='summary_scalar')
    else:
      summary = tf.raw_ops.HistogramSummary(tag=tag, values=tensor,
                                            name='summary_histogram')
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, summary)
  return summary


def add_loss_summaries(clones, total_loss, learning_rate):
  """Scalar summaries and console entries of every clone-0 loss."""
  for loss in tf.losses.get_losses(scope=clones[0].scope or None):
    _tagged_summary('scalar', 'losses/%s' % console_name(loss), loss)
    tf.add_to_collection(monitoring.CONSOLE_SCALARS, loss)
  _tagged_summary('scalar', 'learning_rate', learning_rate)
  _tagged_summary('scalar', 'total_loss', total_loss)
  for variable in slim.get_model_variables():
    _tagged_summary('histogram', variable.op.name, variable)
