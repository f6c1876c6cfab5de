"""Starts one TensorFlow server of a ps/worker cluster and serves until killed.

  python -m utils.run_server --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 \
      --job_name=ps --task_index=0

Workers run their own server too and point the training script's --master at
it (grpc://h1:2222) with --num_ps_tasks, --num_replicas and --task.
"""
from absl import app
from absl import flags
from absl import logging

from deeplab.tf_compat import tf

flags.DEFINE_list('ps_hosts', [], 'host:port of every parameter server.')
flags.DEFINE_list('worker_hosts', [], 'host:port of every worker.')
flags.DEFINE_enum('job_name', 'ps', ['ps', 'worker'], 'Job of this server.')
flags.DEFINE_integer('task_index', 0, 'Index of this server within its job.')

FLAGS = flags.FLAGS


def cluster_spec(ps_hosts, worker_hosts):
  """ClusterSpec with jobs `ps` and `worker`."""
  return tf.train.ClusterSpec({'ps': ps_hosts, 'worker': worker_hosts})


def main(unused_argv):
  hosts = FLAGS.ps_hosts if FLAGS.job_name == 'ps' else FLAGS.worker_hosts
  if not 0 <= FLAGS.task_index < len(hosts):
    raise app.UsageError('--task_index=%d but --%s_hosts lists %d hosts.' %
                         (FLAGS.task_index, FLAGS.job_name, len(hosts)))
  server = tf.train.Server(cluster_spec(FLAGS.ps_hosts, FLAGS.worker_hosts),
                           job_name=FLAGS.job_name, task_index=FLAGS.task_index)
  logging.info('Serving %s:%d at %s', FLAGS.job_name, FLAGS.task_index,
               server.target)
  server.join()


if __name__ == '__main__':
  app.run(main)
