"""Scalar and histogram summaries of the training loop (through
`monitoring.add_summary`, the one summary helper) and the console names of its
scalars (docs/DESIGN.md §Summary tags)."""
from core.method import monitoring
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf


def console_name(tensor):
  """Short name of a scalar: no clone scope, no trailing `/loss`."""
  name = tensor.op.name
  if name.startswith('clone_'):
    name = name.split('/', 1)[1]
  return name[:-len('/loss')] if name.endswith('/loss') else name


def add_loss_summaries(clones, total_loss, learning_rate):
  """Scalar summaries and console entries of every clone-0 loss, the learning
  rate and the total loss; a histogram of every model variable."""
  # These tags are op names already (`learning_rate`, `total_loss`, every
  # variable), so the summary ops are named `summary_<kind>`: not suffixed
  # copies inside the model's name scopes of TensorBoard's graph view.
  for loss in tf.losses.get_losses(scope=clones[0].scope or None):
    monitoring.add_summary('scalar', 'losses/%s' % console_name(loss), loss,
                           op_name='summary_scalar')
    tf.add_to_collection(monitoring.CONSOLE_SCALARS, loss)
  monitoring.add_summary('scalar', 'learning_rate', learning_rate,
                         op_name='summary_scalar')
  monitoring.add_summary('scalar', 'total_loss', total_loss,
                         op_name='summary_scalar')
  for variable in slim.get_model_variables():
    monitoring.add_summary('histogram', variable.op.name, variable,
                           op_name='summary_histogram')
