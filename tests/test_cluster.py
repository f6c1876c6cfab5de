"""A ps + 2-worker cluster on 127.0.0.1, started by
scripts/launch_local_cluster.sh: what one update holds, synchronous and
asynchronous.

The tasks run tests/cluster_task.py, the training scripts' cluster and loop
on a model where worker t's gradient is the one-hot vector e_t of a shared
variable `task_weights` (zeros at first) and its loss is entry t. With
SGD at rate 0.5, an update of one worker's gradient lowers that worker's
entry by 0.5; an update averaging one gradient of each worker lowers both by
0.25. Each worker logs its loss, its own entry, before each of its runs
(except the first), so its log shows what every update held.
"""
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from deeplab.tf_compat import tf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TASK_RUN = ['--num_clones=1', '--clone_on_cpu', '--train_batch_size=1',
            '--log_steps=1', '--save_interval_secs=3600',
            '--save_summaries_secs=0', '--momentum=0',
            '--learning_policy=step', '--learning_rate_decay_step=1000',
            '--base_learning_rate=0.5', '--startup_delay_steps=1']
LEARNING_RATE = 0.5
STEP_LINE = re.compile(r'step (\d+)/\d+\s+total_loss=(\S+)')
FINISHED = re.compile(r'Training finished at step (\d+)')
TIMEOUT_SECS = 300


def _free_port_base():
  """A port p with p, p+1 and p+2 free on 127.0.0.1."""
  for _ in range(50):
    with socket.socket() as probe:
      probe.bind(('127.0.0.1', 0))
      base = probe.getsockname()[1]
    if base + 2 > 65535:
      continue
    try:
      for port in (base + 1, base + 2):
        with socket.socket() as probe:
          probe.bind(('127.0.0.1', port))
      return base
    except OSError:
      continue
  raise RuntimeError('no three consecutive free ports')


def _kill_recorded(logs):
  """SIGKILLs every process the launch script recorded in `logs`/pids."""
  with open(os.path.join(logs, 'pids')) as f:
    for line in f:
      try:
        os.kill(int(line.split()[2]), signal.SIGKILL)
      except ProcessLookupError:
        pass


def _launch(logdir, *extra):
  """Runs the launch script with tests/cluster_task.py to the end; returns
  {task log name: text}. On a timeout every process it started is killed by
  the pid it recorded."""
  logs = str(logdir) + '.cluster'
  env = dict(os.environ, PYTHON=sys.executable, SCRIPT='tests/cluster_task.py',
             PORT_BASE=str(_free_port_base()), CLUSTER_LOG_DIR=logs,
             TF_CPP_MIN_LOG_LEVEL='2')
  script = os.path.join(REPO_ROOT, 'scripts', 'launch_local_cluster.sh')
  process = subprocess.Popen([script, str(logdir), *TASK_RUN, *extra],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    returncode = process.wait(timeout=TIMEOUT_SECS)
  finally:
    if process.poll() is None:
      _kill_recorded(logs)
      process.kill()
      process.wait()
  texts = {}
  for name in ('ps0', 'worker0', 'worker1'):
    with open(os.path.join(logs, name + '.log')) as f:
      texts[name] = f.read()
  assert returncode == 0, texts['worker0'][-2000:] + texts['worker1'][-2000:]
  return texts


def _logged(text):
  """(step, loss) of every progress line: the step after the run, the loss
  (the worker's own entry) before it."""
  return [(int(step), float(loss)) for step, loss in STEP_LINE.findall(text)]


def _checkpoint(logdir):
  """(task_weights, global_step) of the chief's last checkpoint."""
  reader = tf.train.load_checkpoint(str(logdir))
  return (reader.get_tensor('task_weights'),
          int(reader.get_tensor('global_step')))


def test_sync_replicas_average_one_gradient_of_each_worker_per_update(
    tmp_path):
  logdir = tmp_path / 'sync'
  logs = _launch(logdir, '--sync_replicas', '--training_number_of_steps=4')
  # Update k averages e_0 and e_1: each entry drops by 0.5 x 0.5 per update.
  # Each worker runs once per update (run k starts after update k - 1) and
  # both stop after update 4: a worker filling both slots of an update, or
  # left waiting for a token at the end, breaks this.
  per_update = LEARNING_RATE / 2
  expected = [(step, -per_update * (step - 1)) for step in (2, 3, 4)]
  for name in ('worker0', 'worker1'):
    assert _logged(logs[name]) == expected, logs[name][-3000:]
    assert [int(s) for s in FINISHED.findall(logs[name])] == [4], name
  weights, step = _checkpoint(logdir)
  assert step == 4
  np.testing.assert_array_equal(weights, [-4 * per_update] * 2)
  assert 'serving on' in logs['ps0']


def test_async_replicas_apply_each_gradient_alone(tmp_path):
  logdir = tmp_path / 'async'
  # Slow enough steps that worker 1 (which waits for global step 1 and for
  # the chief's initialisation) joins long before the chief alone could
  # reach the last step.
  logs = _launch(logdir, '--training_number_of_steps=40',
                 '--seconds_per_step=0.25')
  runs = {}
  for name in ('worker0', 'worker1'):
    losses = [loss for _, loss in _logged(logs[name])]
    # Run k + 1 of a worker sees its entry lowered by 0.5 per earlier run:
    # each of its updates was its gradient alone, not averaged, nothing
    # dropped.
    assert losses == [-LEARNING_RATE * k
                      for k in range(1, len(losses) + 1)], name
    assert losses, '%s ran once: the chief trained alone' % name
    assert FINISHED.search(logs[name]), name
    runs[name] = len(losses) + 1  # the first run logs nothing
  weights, step = _checkpoint(logdir)
  # The chief saves after its last update (worker 1 may still be running):
  # its entry holds all its updates, worker 1's a whole number of its own.
  assert weights[0] == -LEARNING_RATE * runs['worker0']
  worker1_updates = -weights[1] / LEARNING_RATE
  assert worker1_updates == int(worker1_updates)
  assert 1 <= worker1_updates <= runs['worker1']
  # Every update is one run of one worker.
  assert 40 <= step <= runs['worker0'] + runs['worker1']
