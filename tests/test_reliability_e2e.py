"""eval.py's watcher beside a trainer that rotates checkpoints every second.

A race, so bounded in time: train_sup.py (tiny crop, mobilenet_v2) saves every
second with --max_to_keep=2 while eval.py watches the logdir. The watcher must
keep going (a checkpoint deleted under it is skipped with one line), and both
stop on Ctrl-C with one line, no traceback.
"""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT
from deeplab.tf_compat import tf

# Evaluations the watcher must finish (it then has survived several rotations).
_EVALUATIONS = 2
# Bounds: TensorFlow start-up of the trainer (minutes on a busy machine, ~15 s
# idle), then the race itself.
_STARTUP_SECS = 300
_RACE_SECS = 180


def _start(script, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  return subprocess.Popen(
      [sys.executable, script] + [str(a) for a in args], cwd=REPO_ROOT,
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process):
  """Ctrl-C, then (stdout, stderr, returncode)."""
  if process.poll() is None:
    process.send_signal(signal.SIGINT)
  try:
    out, err = process.communicate(timeout=60)
  except subprocess.TimeoutExpired:
    process.kill()
    out, err = process.communicate()
  return out, err, process.returncode


@pytest.mark.slow
@pytest.mark.e2e
def test_eval_watcher_survives_checkpoint_rotation(synthetic_dir, tmp_path):
  logdir, eval_logdir = tmp_path / 'train', tmp_path / 'eval'
  model = ['--model_variant=mobilenet_v2', '--output_stride=16',
           '--dataset=synthetic', '--dataset_dir=%s' % synthetic_dir]
  trainer = _start(
      'train_sup.py', *model, '--train_logdir=%s' % logdir,
      '--train_split=16_clean_3', '--train_crop_size=33,33',
      '--min_scale_factor=1', '--max_scale_factor=1', '--num_readers=1',
      '--num_clones=1', '--train_batch_size=1', '--log_steps=100',
      '--training_number_of_steps=1000000', '--save_interval_secs=1',
      '--max_to_keep=2', '--save_summaries_secs=0')
  watcher = _start(
      'eval.py', *model, '--checkpoint_dir=%s' % logdir,
      '--eval_logdir=%s' % eval_logdir, '--eval_split=16_clean_3',
      '--eval_crop_size=113,113', '--eval_interval_secs=0',
      '--max_number_of_evaluations=0')
  try:
    deadline = time.time() + _STARTUP_SECS
    while (not glob.glob(str(logdir / '*.index')) and trainer.poll() is None
           and time.time() < deadline):
      time.sleep(0.5)
    started = bool(glob.glob(str(logdir / '*.index')))
    deadline = time.time() + (_RACE_SECS if started else 0)
    while (len(glob.glob(str(eval_logdir / 'results-*.json'))) < _EVALUATIONS
           and watcher.poll() is None and trainer.poll() is None
           and time.time() < deadline):
      time.sleep(0.5)
    watcher_alive = watcher.poll() is None
    trainer_alive = trainer.poll() is None
  finally:
    _, train_err, train_code = _stop(trainer)
    _, eval_err, eval_code = _stop(watcher)
  assert trainer_alive, train_err[-3000:]
  if not started:
    pytest.skip('machine too busy: the trainer wrote no checkpoint within '
                '%d s, so the race did not run' % _STARTUP_SECS)
  assert watcher_alive, eval_err[-3000:]
  assert 'Traceback' not in eval_err and 'Traceback' not in train_err
  results = glob.glob(str(eval_logdir / 'results-*.json'))
  assert len(results) >= _EVALUATIONS, eval_err[-3000:]
  # Ctrl-C: the trainer saves, then says so in one line (exit code 130).
  assert train_code == 130 and eval_code == 130
  last_line = train_err.strip().splitlines()[-1]
  assert last_line.startswith('interrupted: training stopped after step ')
  saved = last_line.rsplit('saved ', 1)[1]
  assert tf.train.latest_checkpoint(str(logdir)) == saved
  assert eval_err.strip().splitlines()[-1] == 'interrupted'
  assert not (logdir / 'train.lock').exists()
