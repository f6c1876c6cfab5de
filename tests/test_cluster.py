"""A ps + 2-worker cluster of train_sup.py on 127.0.0.1, through
scripts/launch_local_cluster.sh: synchronous and asynchronous updates."""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from conftest import run_script
from deeplab.tf_compat import tf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIGHT_RUN = ['--model_variant=mobilenet_v2', '--output_stride=16',
             '--dataset=synthetic', '--train_crop_size=33,33',
             '--min_scale_factor=1', '--max_scale_factor=1', '--num_readers=1',
             '--log_steps=1', '--save_interval_secs=3600',
             '--train_split=16_clean_3', '--num_clones=1',
             '--train_batch_size=2', '--startup_delay_steps=1']
STEP_LINE = re.compile(r'step (\d+)/\d+\s+total_loss=')
FINISHED = re.compile(r'Training finished at step (\d+)')
TIMEOUT_SECS = 420


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


def _launch(dataset_dir, logdir, *extra):
  """Runs the launch script to the end; returns {task log name: text}.

  On a timeout every process it started is killed by the pid it recorded.
  """
  logs = str(logdir) + '.cluster'
  env = dict(os.environ, PYTHON=sys.executable,
             PORT_BASE=str(_free_port_base()), CLUSTER_LOG_DIR=logs,
             TF_CPP_MIN_LOG_LEVEL='2')
  script = os.path.join(REPO_ROOT, 'scripts', 'launch_local_cluster.sh')
  process = subprocess.Popen(
      [script, str(logdir), *LIGHT_RUN, '--dataset_dir=%s' % dataset_dir,
       '--training_number_of_steps=4', *extra], env=env,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    returncode = process.wait(timeout=TIMEOUT_SECS)
  finally:
    if process.poll() is None:
      with open(os.path.join(logs, 'pids')) as f:
        for line in f:
          try:
            os.kill(int(line.split()[2]), signal.SIGKILL)
          except ProcessLookupError:
            pass
      process.kill()
      process.wait()
  texts = {}
  for name in ('ps0', 'worker0', 'worker1'):
    with open(os.path.join(logs, name + '.log')) as f:
      texts[name] = f.read()
  assert returncode == 0, texts['worker0'][-2000:] + texts['worker1'][-2000:]
  return texts


def _global_step(logdir):
  reader = tf.train.load_checkpoint(str(logdir))
  return int(reader.get_tensor('global_step'))


def test_sync_replicas_aggregate_and_the_chief_checkpoint_evaluates(
    synthetic_dir, tmp_path):
  logdir = tmp_path / 'sync'
  logs = _launch(synthetic_dir, logdir, '--sync_replicas')
  # Both workers trained to the end; every update aggregated 2 gradients, so
  # global_step advanced once per pair: the chief alone ran more than 4 steps
  # and the run stopped at exactly 4 updates.
  for name in ('worker0', 'worker1'):
    assert [int(s) for s in FINISHED.findall(logs[name])] == [4], name
  assert len(STEP_LINE.findall(logs['worker0'])) > 4
  assert _global_step(logdir) == 4
  assert 'serving on' in logs['ps0']
  process = run_script(
      'eval.py', '--model_variant=mobilenet_v2', '--output_stride=16',
      '--dataset=synthetic', '--dataset_dir=%s' % synthetic_dir,
      '--eval_split=16_clean_3', '--eval_crop_size=129,129',
      '--checkpoint_dir=%s' % logdir, '--eval_logdir=%s' % (tmp_path / 'ev'),
      '--max_number_of_evaluations=1')
  assert process.returncode == 0, process.stderr[-3000:]
  with open(tmp_path / 'ev' / 'results.json') as f:
    assert json.load(f)['global_step'] == 4


def test_async_replicas_apply_each_gradient(synthetic_dir, tmp_path):
  logdir = tmp_path / 'async'
  logs = _launch(synthetic_dir, logdir)
  # Each run of either worker is one update, applied without waiting for
  # the other: global_step counts the runs of both (a worker's first run is
  # not logged), however the load splits them.
  runs = {name: len(STEP_LINE.findall(logs[name])) + 1
          for name in ('worker0', 'worker1')}
  finished = [int(FINISHED.search(logs[name]).group(1))
              for name in ('worker0', 'worker1')]
  assert min(finished) >= 4
  assert max(runs.values()) <= _global_step(logdir) <= sum(runs.values())
