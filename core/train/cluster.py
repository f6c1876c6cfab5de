"""The TensorFlow servers of a ps/worker cluster (docs/DESIGN.md §Deployment).

Several machines use TensorFlow's own parameter-server runtime: every task
runs a server; a `ps` task serves the variables until it is killed, a worker
trains through its own server. core/flags/train_flags.py starts them from the
cluster flags (`--ps_hosts`, `--worker_hosts`, `--job_name`, `--task`);
run_server.py starts a lone server.
"""
import os
import socket
import time

from absl import logging

from deeplab.tf_compat import tf
from utils.errors import InputError

# The TensorFlow server of this process; it stops when garbage-collected.
_SERVERS = []


def start_server(ps_hosts, worker_hosts, job_name, task):
  """Starts the TensorFlow server of one task of a ps/worker cluster.

  Args:
    ps_hosts, worker_hosts: 'host:port' of every task of the two jobs.
    job_name: 'ps' or 'worker'.
    task: index of this task within its job.

  Returns:
    The running tf.train.Server (it stops when garbage-collected).
  """
  jobs = {'ps': list(ps_hosts), 'worker': list(worker_hosts)}
  if job_name not in jobs:
    raise InputError('--job_name=%s is not a job of the cluster; pass '
                     '--job_name=ps or --job_name=worker.' % job_name)
  for job, hosts in sorted(jobs.items()):
    if not hosts:
      raise InputError('--%s_hosts is empty; a cluster needs at least one '
                       'parameter server and one worker.' % job)
    for address in hosts:
      _host_and_port(address, '--%s_hosts' % job)
  hosts = jobs[job_name]
  if not 0 <= task < len(hosts):
    raise InputError('task %d of --job_name=%s is out of range: --%s_hosts '
                     'lists %d host(s), tasks 0..%d.' % (
                         task, job_name, job_name, len(hosts), len(hosts) - 1))
  # TensorFlow's distributed runtime setting: an RPC to a task that is gone
  # fails at once with UnavailableError instead of waiting for the task to
  # come back (gRPC's wait-for-ready). Without it a worker whose parameter
  # server was killed hung for good in closing its session, before
  # MonitoredSession could make a new one (core/train/loop.py gives up on
  # the new one after --cluster_timeout_secs).
  os.environ.setdefault('GRPC_FAIL_FAST', 'true')
  try:
    return tf.train.Server(tf.train.ClusterSpec(jobs), job_name=job_name,
                           task_index=task)
  except tf.errors.OpError as error:
    raise InputError('cannot start the server of %s task %d on %s (%s).' % (
        job_name, task, hosts[task],
        error.message.splitlines()[0])) from None


def _host_and_port(address, flag):
  """'host:port' -> (host, port); InputError naming the flag otherwise."""
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    raise InputError('%s: %r is not host:port.' % (flag, address))
  return host, int(port)


def wait_for_hosts(addresses, timeout_secs):
  """Waits until every 'host:port' accepts connections, at most timeout_secs.

  TensorFlow itself would wait forever for a missing task (logging
  'CreateSession still waiting for response'); this turns a wrong or dead
  host into one line.
  """
  waiting = unreachable_hosts(addresses, timeout_secs)
  if waiting:
    raise InputError('cannot reach %s within --cluster_timeout_secs=%d: '
                     'start those tasks, or fix --ps_hosts/--worker_hosts.'
                     % (', '.join(waiting), timeout_secs))


def unreachable_hosts(addresses, timeout_secs):
  """The 'host:port' of `addresses` that still refuse connections after
  timeout_secs (checked every second); [] as soon as all accept."""
  deadline = time.time() + timeout_secs
  waiting = list(addresses)
  while True:
    waiting = [a for a in waiting if not _accepts_connections(a)]
    if not waiting or time.time() > deadline:
      return waiting
    time.sleep(1.0)


def needed_hosts(ps_hosts, worker_hosts, task):
  """The 'host:port' of the tasks worker `task` trains with: the parameter
  servers, and for another worker than the chief the chief, which
  initialises or restores the model."""
  return list(ps_hosts) + (list(worker_hosts[:1]) if task else [])


def _accepts_connections(address):
  try:
    with socket.create_connection(_host_and_port(address, 'host'),
                                  timeout=2.0):
      return True
  except OSError:
    return False


def serve_parameters(ps_hosts, worker_hosts, task):
  """Runs this process as parameter server `task` until it is killed (no
  return); arguments as `start_server`."""
  server = start_server(ps_hosts, worker_hosts, 'ps', task)
  logging.info('Parameter server %d serving on %s until killed.', task,
               ps_hosts[task])
  server.join()


def start_worker_server(ps_hosts, worker_hosts, job_name, task, timeout_secs):
  """Starts this worker's server; returns its address (the session master)
  once the parameter servers (and, for the other workers, the chief) accept
  connections, waiting at most `timeout_secs`.

  Args:
    ps_hosts, worker_hosts: lists of 'host:port' of every task of the two jobs.
    job_name, task: this task (see `start_server`).
    timeout_secs: seconds to wait for the other tasks.
  """
  server = start_server(ps_hosts, worker_hosts, job_name, task)
  wait_for_hosts(needed_hosts(ps_hosts, worker_hosts, task), timeout_secs)
  _SERVERS.append(server)
  return server.target
