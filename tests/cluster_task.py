"""One task of a test cluster (tests/test_cluster.py): the training scripts'
flags, cluster start-up and training loop, on a model whose gradient tells
the workers apart.

The model is one variable `task_weights` with an entry per worker; worker t's
loss is its entry t, so its gradient is the one-hot vector e_t whatever the
weights are. With plain SGD (`--momentum=0`, a constant `--learning_policy=step`
rate lr) an update that applies worker t's gradient alone lowers entry t by
lr, and an update averaging one gradient of each of W workers lowers every
entry by lr / W. Each worker logs its loss, i.e. its own entry, before each
of its updates, and the chief's checkpoint holds the entries at the end.

  scripts/launch_local_cluster.sh LOGDIR (SCRIPT=tests/cluster_task.py)
"""
import os
import sys
import time

import numpy as np
from absl import app
from absl import flags

# Run as a script from tests/: the repository root holds `core` and `deeplab`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.flags import train_flags  # noqa: E402
from core.train import loop  # noqa: E402
from deeplab.tf_compat import slim  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

flags.DEFINE_float('seconds_per_step', 0.0,
                   'Each run of the train op lasts at least this long.')

FLAGS = flags.FLAGS


def build_clone(task, num_tasks, seconds_per_step):
  """Worker `task`'s loss: entry `task` of the shared weights (zeros at
  first); with `seconds_per_step`, computing it takes that long."""
  weights = slim.model_variable('task_weights', shape=[num_tasks],
                                initializer=tf.zeros_initializer())
  loss = tf.reduce_sum(weights * tf.one_hot(task, num_tasks))
  if seconds_per_step > 0:

    def sleep():
      time.sleep(seconds_per_step)
      return np.float64(0)

    with tf.control_dependencies([tf.numpy_function(sleep, [], tf.float64)]):
      loss = tf.identity(loss)
  tf.losses.add_loss(loss)


def main(unused_argv):
  config = train_flags.deployment_from_flags()
  with tf.Graph().as_default():
    loop.train(config, train_flags.train_options_from_flags(),
               lambda unused_index: build_clone(
                   config.task, config.num_replicas, FLAGS.seconds_per_step),
               images_per_step=1)


if __name__ == '__main__':
  flags.mark_flags_as_required(['train_logdir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
