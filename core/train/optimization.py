"""The learning-rate schedule and the optimizer of the training loop
(docs/DESIGN.md §Optimisation)."""
import collections

from deeplab import train_utils
from deeplab.tf_compat import tf

# The optimizer and its learning-rate schedule; each field is the training
# flag of the same name (core/flags/train_flags.py builds it).
OptimizerOptions = collections.namedtuple('OptimizerOptions', [
    'optimizer',  # 'momentum' or 'adam'.
    'momentum',  # Momentum of the momentum optimizer.
    'adam_learning_rate',  # Constant learning rate of adam.
    'adam_epsilon',  # Adam epsilon.
    'learning_policy',  # 'poly' or 'step'.
    'base_learning_rate',  # Base rate of both policies.
    'learning_rate_decay_step',  # Step policy: steps between decays.
    'learning_rate_decay_factor',  # Step policy: factor of each decay.
    'learning_power',  # Poly policy power.
    'decay_steps',  # Poly decay steps; 0: steps - slow_start_step.
    'end_learning_rate',  # Final poly learning rate.
    'slow_start_step',  # Steps trained at the slow rate first.
    'slow_start_learning_rate',  # Learning rate during the slow start.
])


def learning_rate_and_optimizer(options, training_number_of_steps):
  """The learning-rate tensor (float32 scalar, a function of the global
  step) and the optimizer.

  Args:
    options: OptimizerOptions.
    training_number_of_steps: the last step (the poly policy decays to it).
  """
  learning_rate = train_utils.get_model_learning_rate(
      options.learning_policy, options.base_learning_rate,
      options.learning_rate_decay_step, options.learning_rate_decay_factor,
      training_number_of_steps, options.learning_power,
      options.slow_start_step, options.slow_start_learning_rate,
      decay_steps=options.decay_steps,
      end_learning_rate=options.end_learning_rate)
  if options.optimizer == 'momentum':
    optimizer = tf.train.MomentumOptimizer(learning_rate, options.momentum)
  else:
    # As in the original, adam ignores the schedule (which is still logged).
    # do not fix: changes results (docs/DESIGN.md §Quirks 20)
    optimizer = tf.train.AdamOptimizer(options.adam_learning_rate,
                                       epsilon=options.adam_epsilon)
  return learning_rate, optimizer
