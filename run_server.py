"""Starts one TensorFlow server of a ps/worker cluster and serves until killed.

  python run_server.py --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 \
      --job_name=ps --task_index=0

Workers run their own server too and point the training script's --master at
it (grpc://h1:2222) with --num_ps_tasks, --num_replicas and --task, or pass
the training script --ps_hosts/--worker_hosts/--job_name=worker/--task to let
it start its own (README "Scaling").
"""
from absl import app
from absl import flags
from absl import logging

from core.train import cluster
from utils.errors import run_reporting_errors

flags.DEFINE_list('ps_hosts', [], 'host:port of every parameter server.')
flags.DEFINE_list('worker_hosts', [], 'host:port of every worker.')
flags.DEFINE_enum('job_name', 'ps', ['ps', 'worker'], 'Job of this server.')
flags.DEFINE_integer('task_index', 0, 'Index of this server within its job.')

FLAGS = flags.FLAGS


def main(unused_argv):
  server = cluster.start_server(FLAGS.ps_hosts, FLAGS.worker_hosts,
                                FLAGS.job_name, FLAGS.task_index)
  logging.info('Serving %s:%d at %s', FLAGS.job_name, FLAGS.task_index,
               server.target)
  server.join()


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
