"""A ps + 2-worker cluster on 127.0.0.1, started by
scripts/launch_local_cluster.sh: what one update holds, synchronous and
asynchronous, and what a kill -9 of a worker, of the chief or of the
parameter server leaves (the task then started again with the command the
script wrote; docs/RELIABILITY.md).

The tasks run tests/cluster_task.py, the training scripts' cluster and loop
on a model where worker t's gradient is the one-hot vector e_t of a shared
variable `task_weights` (zeros at first) and its loss is entry t. With
SGD at rate 0.5, an update of one worker's gradient lowers that worker's
entry by 0.5; an update averaging one gradient of each worker lowers both by
0.25. Each worker logs its loss, its own entry, before each of its runs
(except the first), so its log shows what every update held.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO_ROOT
from conftest import start_process
from deeplab.tf_compat import tf
from utils import checkpoint_paths

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


def _recorded_pids(logs):
  """{task log name ('ps0', 'worker1', ...): pid} the launch script recorded
  in `logs`/pids."""
  with open(os.path.join(logs, 'pids')) as f:
    return {job + task: int(pid) for job, task, pid in map(str.split, f)}


def _kill_recorded(logs):
  """SIGKILLs every process the launch script recorded in `logs`/pids."""
  for pid in _recorded_pids(logs).values():
    try:
      os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
      pass


def _start_cluster(logdir, *extra, port_base=None):
  """Starts the launch script with tests/cluster_task.py on ports
  `port_base`.. (free ones by default); returns (its process, its log
  folder)."""
  logs = str(logdir) + '.cluster'
  env = dict(os.environ, PYTHON=sys.executable, SCRIPT='tests/cluster_task.py',
             PORT_BASE=str(port_base or _free_port_base()),
             CLUSTER_LOG_DIR=logs, TF_CPP_MIN_LOG_LEVEL='2')
  script = os.path.join(REPO_ROOT, 'scripts', 'launch_local_cluster.sh')
  process = subprocess.Popen([script, str(logdir), *TASK_RUN, *extra],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  return process, logs


def _end_cluster(process, logs, timeout_secs=TIMEOUT_SECS):
  """Waits for the launch script; returns (its exit code, {task log name:
  text}). On a timeout every process it started is killed by the pid it
  recorded, and TimeoutExpired raised."""
  try:
    returncode = process.wait(timeout=timeout_secs)
  finally:
    if process.poll() is None:
      _kill_recorded(logs)
      process.kill()
      process.wait()
  return returncode, {name: _read_log(logs, name)
                      for name in ('ps0', 'worker0', 'worker1')}


def _read_log(logs, name):
  with open(os.path.join(logs, name + '.log')) as f:
    return f.read()


def _launch(logdir, *extra):
  """Runs the launch script with tests/cluster_task.py to the end; returns
  {task log name: text}."""
  returncode, texts = _end_cluster(*_start_cluster(logdir, *extra))
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


# Kill -9 and restart. The tasks save every second and a step lasts 0.25 s,
# so that a task started again after TensorFlow's start-up (~10 s with the
# others running) finds the run still under way.
FAULT_RUN = ['--save_interval_secs=1', '--seconds_per_step=0.25']
MODES = {'sync': ['--sync_replicas'], 'async': []}
# Async workers take turns: twice the steps of a synchronous run last as long.
STEPS = {'sync': 40, 'async': 100}
STEPS_BEFORE_KILL = 5
# TensorFlow logs it twice (its logger and absl's).
RESTORED = re.compile(r'Restoring parameters from (\S+)')
SIGKILLED = 128 + signal.SIGKILL
CLUSTER_TIMEOUT_SECS = 10


@contextlib.contextmanager
def _cluster(logdir, *extra, port_base=None):
  """_start_cluster; on the way out every process the launch script started
  is killed, and the script itself, if still there (a failed test)."""
  process, logs = _start_cluster(logdir, *extra, port_base=port_base)
  try:
    yield process, logs
  finally:
    if process.poll() is None:
      _kill_recorded(logs)
      process.kill()
      process.wait()


def _run_flags(mode, *extra):
  return [*MODES[mode], *FAULT_RUN,
          '--training_number_of_steps=%d' % STEPS[mode], *extra]


def _wait_until_trained(launcher, logs, logdir):
  """(step, loss) of the lines each worker logged, once each logged
  STEPS_BEFORE_KILL steps and a checkpoint past step 0 was registered (a
  resume from it is then told apart from a start from 0)."""
  deadline = time.time() + TIMEOUT_SECS
  while True:
    registered = tf.train.latest_checkpoint(str(logdir))
    # A checkpoint: the launch script started every task and its log.
    if registered and checkpoint_paths.step_of(registered) > 0:
      logged = {name: _logged(_read_log(logs, name))
                for name in ('worker0', 'worker1')}
      if min(map(len, logged.values())) >= STEPS_BEFORE_KILL:
        return logged
    assert launcher.poll() is None, _read_log(logs, 'worker0')[-3000:]
    assert time.time() < deadline, 'the cluster did not train in time'
    time.sleep(0.2)


def _kill_task(logs, name):
  os.kill(_recorded_pids(logs)[name], signal.SIGKILL)


def _restart_task(logs, name):
  """Starts task `name` again with the command the launch script gave it."""
  return start_process(['bash', os.path.join(logs, name + '.sh')],
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
                       timeout=TIMEOUT_SECS)


def _assert_checkpoints_whole_to_the_end(logdir, mode):
  """Each checkpoint the `checkpoint` state file lists is complete and every
  variable of it readable, and the last one is of the final step.

  A synchronous update applies once both workers sent their gradient, so a
  checkpoint holds the step it is named after, and its weights, each update
  averaging two one-hot gradients, sum to -LEARNING_RATE x that step. An
  asynchronous worker may update while the chief saves: the checkpoint may
  hold a later step than its name, and the last one be past the final step.
  """
  state = tf.train.get_checkpoint_state(str(logdir))
  named = []
  for path in state.all_model_checkpoint_paths:
    assert checkpoint_paths.is_checkpoint_prefix(path), path
    reader = tf.train.load_checkpoint(path)
    values = {name: reader.get_tensor(name)
              for name in reader.get_variable_to_shape_map()}
    named.append(checkpoint_paths.step_of(path))
    step = int(values['global_step'])
    if mode == 'sync':
      assert step == named[-1], path
      assert values['task_weights'].sum() == -LEARNING_RATE * step, path
    else:
      assert step >= named[-1], path
  assert named == sorted(named)
  assert state.model_checkpoint_path == state.all_model_checkpoint_paths[-1]
  if mode == 'sync':
    assert named[-1] == STEPS[mode]
  else:
    assert named[-1] >= STEPS[mode]


def _kill_and_start_again(logdir, mode, task):
  """Runs a cluster, kills `task` with SIGKILL once both workers trained and
  starts it again with its command.

  Returns:
    (what `_wait_until_trained` returned, the latest checkpoint at the kill,
    the restarted task's result, the cluster's (exit code, logs by task)).
  """
  restarted = None
  with _cluster(logdir, *_run_flags(mode)) as (launcher, logs):
    try:
      trained = _wait_until_trained(launcher, logs, logdir)
      _kill_task(logs, task)
      last = tf.train.latest_checkpoint(str(logdir))
      restarted = _restart_task(logs, task)
      result = restarted.result()
    finally:
      if restarted is not None:
        restarted.stop()
    return trained, last, result, _end_cluster(launcher, logs)


@pytest.mark.parametrize('mode', ['sync', 'async'])
def test_worker_killed_and_started_again_rejoins_the_run(tmp_path, mode):
  logdir = tmp_path / mode
  trained, _, rejoined, (code, texts) = _kill_and_start_again(
      logdir, mode, 'worker1')
  before = trained['worker1']
  assert rejoined.returncode == 0, rejoined.stderr[-3000:]
  after = _logged(rejoined.stderr)
  assert after, 'the restarted worker trained no step: %s' % (
      rejoined.stderr[-3000:])
  # global_step went on from where it was, and the worker's own weight
  # (its loss) kept the updates it made before the kill.
  assert after[0][0] > before[-1][0]
  assert after[0][1] < before[-1][1]
  assert FINISHED.search(rejoined.stderr)
  # The launch script reports the killed worker; the chief ended well.
  assert code == SIGKILLED
  assert FINISHED.search(texts['worker0'])
  _assert_checkpoints_whole_to_the_end(logdir, mode)


@pytest.mark.parametrize('mode', ['sync', 'async'])
def test_chief_killed_and_started_again_resumes_from_its_last_checkpoint(
    tmp_path, mode):
  logdir = tmp_path / mode
  _, last, resumed, (code, texts) = _kill_and_start_again(logdir, mode,
                                                          'worker0')
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert set(RESTORED.findall(resumed.stderr)) == {last}
  steps = [step for step, _ in _logged(resumed.stderr)]
  assert steps and steps[0] > checkpoint_paths.step_of(last)
  assert FINISHED.search(resumed.stderr)
  assert code == SIGKILLED
  assert FINISHED.search(texts['worker1'])
  _assert_checkpoints_whole_to_the_end(logdir, mode)


@pytest.mark.parametrize('mode', ['sync', 'async'])
def test_parameter_server_killed_stops_the_workers_then_all_resume(
    tmp_path, mode):
  logdir = tmp_path / mode
  port_base = _free_port_base()
  run = _run_flags(mode, '--cluster_timeout_secs=%d' % CLUSTER_TIMEOUT_SECS)
  with _cluster(logdir, *run, port_base=port_base) as (launcher, logs):
    _wait_until_trained(launcher, logs, logdir)
    _kill_task(logs, 'ps0')
    # Bounded: the workers wait for the lost server, then give up.
    code, texts = _end_cluster(launcher, logs, CLUSTER_TIMEOUT_SECS + 30)
  last = tf.train.latest_checkpoint(str(logdir))
  assert code == 1
  line = ('error: lost the connection to 127.0.0.1:%d during training and '
          'could not connect again within --cluster_timeout_secs=%d; restart '
          'every task with its command to resume from the last checkpoint in '
          '%s.' % (port_base, CLUSTER_TIMEOUT_SECS, logdir))
  for name in ('worker0', 'worker1'):
    assert texts[name].splitlines().count(line) == 1, texts[name][-3000:]
    assert 'Traceback' not in texts[name]
  # Every task started again with the same command.
  with _cluster(logdir, *run, port_base=port_base) as (launcher, logs):
    code, texts = _end_cluster(launcher, logs)
  assert code == 0, texts['worker0'][-3000:]
  assert set(RESTORED.findall(texts['worker0'])) == {last}
  assert FINISHED.search(texts['worker0'])
  _assert_checkpoints_whole_to_the_end(logdir, mode)
