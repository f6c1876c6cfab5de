"""The scripts under signals, and eval.py's watcher beside a trainer.

A real SIGTERM (what Slurm and Kubernetes send) to train_sup.py and to an
eval.py watcher: each stops with one line and exit code 143, the trainer once
it saved the step it reached. A real SIGKILL to train_sup.py while it trains
and in the middle of a save: the same command resumes from the last complete
checkpoint. Then a race, bounded in time: train_sup.py (tiny crop,
mobilenet_v2) saves every second with --max_to_keep=1 while eval.py watches
the logdir. The watcher must keep going (a checkpoint deleted before it was
read is skipped with one line, one deleted while it is evaluated is
evaluated from memory), and both stop on Ctrl-C with one line, no traceback.

The watcher tests and the race run in the default suite; the SIGTERM and
SIGKILL tests of the trainer are `slow` (pytest -m slow).
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT
from conftest import run_script
from deeplab.tf_compat import tf
from utils import checkpoint_paths

# Evaluations the watcher must finish (it then has survived several rotations).
_EVALUATIONS = 2
# Bound of TensorFlow's start-up of a script (minutes on a busy machine,
# ~15 s idle).
_STARTUP_SECS = 300
# Steps the trainer logs before it gets SIGTERM.
_STEPS_BEFORE_SIGTERM = 3
_STEP_LINE = re.compile(r'step (\d+)/\d+\s+total_loss=')
_TERMINATED_LINE = re.compile(
    r'terminated: training stopped after step (\d+); saved (\S+)')
# A tiny training run of train_sup.py (add --train_logdir and the steps).
_TINY_TRAINING = ['--train_split=16_clean_3', '--train_crop_size=33,33',
                  '--min_scale_factor=1', '--max_scale_factor=1',
                  '--num_readers=1', '--num_clones=1', '--train_batch_size=1',
                  '--save_summaries_secs=0']


def _model(dataset_dir):
  return ['--model_variant=mobilenet_v2', '--output_stride=16',
          '--dataset=synthetic', '--dataset_dir=%s' % dataset_dir]


def _start(script, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  return subprocess.Popen(
      [sys.executable, script] + [str(a) for a in args], cwd=REPO_ROOT,
      env=env, stdout=stdout, stderr=stderr, text=True)


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


def _start_logging(log_path, script, *args):
  """_start with stderr (where absl logs) to the file `log_path`."""
  with open(log_path, 'w') as log:
    return _start(script, *args, stdout=subprocess.DEVNULL, stderr=log)


def _wait_for(process, log_path, pattern, count, timeout_secs):
  """The matches of `pattern` in the log once there are `count` of them, or
  fewer when the process ended or `timeout_secs` passed."""
  deadline = time.time() + timeout_secs
  while True:
    found = pattern.findall(log_path.read_text())
    if (len(found) >= count or process.poll() is not None or
        time.time() > deadline):
      return found
    time.sleep(0.5)


def _skip_unless_started(process, log_path, started, what):
  """Skips the test if the process is alive but did not start in time (a busy
  machine); fails it if the process died."""
  if not started:
    assert process.poll() is None, log_path.read_text()[-3000:]
    pytest.skip('machine too busy: %s within %d s' % (what, _STARTUP_SECS))


def _kill(process):
  if process.poll() is None:
    process.kill()
    process.wait()


@pytest.mark.slow
@pytest.mark.e2e
def test_sigterm_saves_the_step_reached_then_exits_143(synthetic_dir,
                                                       tmp_path):
  """Slow (two training processes, ~40 s). The default run holds the same
  behaviour in process: test_reliability.py::
  test_sigterm_saves_then_reports_one_line_like_ctrl_c (a real SIGTERM during
  core.train.loop.train: the step reached saved, one `terminated: …` line,
  exit code 143, the lock removed), and a real SIGTERM to a script process in
  test_bounded_watcher_waits_for_its_trainer_and_stops_on_sigterm."""
  logdir, log = tmp_path / 'train', tmp_path / 'train.log'
  # --save_interval_secs=3600: no periodic save, only the one at the start.
  training = [*_model(synthetic_dir), *_TINY_TRAINING,
              '--train_logdir=%s' % logdir, '--log_steps=1',
              '--save_interval_secs=3600']
  trainer = _start_logging(log, 'train_sup.py', *training,
                           '--training_number_of_steps=1000000')
  try:
    logged = [int(step) for step in _wait_for(
        trainer, log, _STEP_LINE, _STEPS_BEFORE_SIGTERM, _STARTUP_SECS)]
    _skip_unless_started(trainer, log, len(logged) >= _STEPS_BEFORE_SIGTERM,
                         'the trainer logged no %d steps' %
                         _STEPS_BEFORE_SIGTERM)
    os.kill(trainer.pid, signal.SIGTERM)
    code = trainer.wait(timeout=120)
  finally:
    _kill(trainer)
  err = log.read_text()
  assert code == 143, err[-3000:]
  assert 'Traceback' not in err
  match = _TERMINATED_LINE.fullmatch(err.strip().splitlines()[-1])
  assert match, err[-3000:]
  step, saved = int(match.group(1)), match.group(2)
  assert step >= logged[-1]
  assert saved == str(logdir / ('model.ckpt-%d' % step))
  assert tf.train.latest_checkpoint(str(logdir)) == saved
  assert tf.train.load_checkpoint(saved).get_tensor('global_step') == step
  state = tf.train.get_checkpoint_state(str(logdir))
  assert [os.path.basename(path) for path in
          state.all_model_checkpoint_paths] == ['model.ckpt-0',
                                                'model.ckpt-%d' % step]
  assert not (logdir / 'train.lock').exists()
  # The checkpoint restores: the same command resumes from it.
  resumed = run_script('train_sup.py', *training,
                       '--training_number_of_steps=%d' % (step + 1))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert 'Training finished at step %d;' % (step + 1) in resumed.stderr
  assert tf.train.load_checkpoint(str(logdir)).get_tensor(
      'global_step') == step + 1


# Run as `python -c _PAUSE_IN_SAVE train_sup.py flags...`: train_sup.py whose
# first checkpoint save stops for good once its data and index files are
# written, before the `checkpoint` state file names them (the Saver's next
# call), after one stderr line naming it: a SIGKILL then lands in the middle
# of that save, at a known point.
_PAUSED_IN_SAVE = re.compile(r'paused in the save of (\S+)')
_PAUSE_IN_SAVE = """
import runpy, sys, time
from tensorflow.python.checkpoint import checkpoint_management

def pause(save_dir, model_checkpoint_path, *args, **kwargs):
  print('paused in the save of %s' % model_checkpoint_path, file=sys.stderr,
        flush=True)
  time.sleep(3600)

checkpoint_management.update_checkpoint_state_internal = pause
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
_KILLED_RUN_STEPS = 200


def _listed_checkpoints(logdir):
  """The checkpoint prefixes the `checkpoint` state file lists."""
  state = tf.train.get_checkpoint_state(str(logdir))
  return list(state.all_model_checkpoint_paths) if state else []


def _registered_steps(logdir):
  """Steps of the checkpoints the state file lists, once no trainer runs
  (which could rotate one away meanwhile): each must be complete."""
  paths = _listed_checkpoints(logdir)
  for path in paths:
    assert checkpoint_paths.is_checkpoint_prefix(path), path
  return sorted(checkpoint_paths.step_of(path) for path in paths)


def _kill_once(process, log_path, ready, timeout_secs):
  """Waits until `ready(log text)` holds (polling every 0.1 s), then
  SIGKILLs the process; returns the log. Skips if the machine is too busy."""
  deadline = time.time() + timeout_secs
  while not ready(log_path.read_text()):
    assert process.poll() is None, log_path.read_text()[-3000:]
    if time.time() > deadline:
      _kill(process)
      pytest.skip('machine too busy: the trainer did not get there within '
                  '%d s' % timeout_secs)
    time.sleep(0.1)
  process.send_signal(signal.SIGKILL)
  process.wait()
  return log_path.read_text()


def _logged_steps(text):
  return [int(step) for step in _STEP_LINE.findall(text)]


@pytest.mark.slow
@pytest.mark.e2e
def test_sigkill_in_a_step_and_in_a_save_resumes_from_the_last_checkpoint(
    synthetic_dir, tmp_path):
  logdir = tmp_path / 'train'
  training = [*_model(synthetic_dir), *_TINY_TRAINING,
              '--train_logdir=%s' % logdir, '--log_steps=1',
              '--save_interval_secs=2',
              '--training_number_of_steps=%d' % _KILLED_RUN_STEPS]
  # 1. Killed while training, once it logged a step past a periodic
  # checkpoint: most likely in the next step, maybe in a save.
  log = tmp_path / 'first.log'
  trainer = _start_logging(log, 'train_sup.py', *training)

  def trained_past_a_checkpoint(text):
    listed = [checkpoint_paths.step_of(path) for path in
              _listed_checkpoints(logdir)] if logdir.exists() else []
    steps = _logged_steps(text)
    return listed and max(listed) > 0 and steps and steps[-1] > max(listed)

  _kill_once(trainer, log, trained_past_a_checkpoint, _STARTUP_SECS)
  resumed_from = _registered_steps(logdir)[-1]
  assert 0 < resumed_from < _KILLED_RUN_STEPS
  # 2. The same command, killed in the middle of its first save.
  log = tmp_path / 'second.log'
  trainer = _start_logging(log, '-c', _PAUSE_IN_SAVE, 'train_sup.py',
                           *training)
  text = _kill_once(trainer, log, _PAUSED_IN_SAVE.search, _STARTUP_SECS)
  paused = _PAUSED_IN_SAVE.search(text).group(1)
  paused_step = checkpoint_paths.step_of(paused)
  # It resumed from the registered checkpoint of run 1 (its first run, step
  # resumed_from + 1, logs nothing) and wrote the index and data of
  # paused_step, which the state file does not name.
  assert all(s >= resumed_from + 2 for s in _logged_steps(text)), text[-3000:]
  assert paused_step > resumed_from
  assert checkpoint_paths.is_checkpoint_prefix(paused)
  assert _registered_steps(logdir)[-1] == resumed_from
  # 3. The same command again: it resumes from the last registered
  # checkpoint, not the unregistered one, removes the latter and finishes.
  finished = run_script('train_sup.py', *training)
  assert finished.returncode == 0, finished.stderr[-3000:]
  assert ('Removed 2 file(s) left in %s by an interrupted run: '
          'model.ckpt-%d.data-00000-of-00001, model.ckpt-%d.index' % (
              logdir, paused_step, paused_step)) in finished.stderr
  assert _logged_steps(finished.stderr)[0] == resumed_from + 2
  assert 'Training finished at step %d;' % _KILLED_RUN_STEPS in finished.stderr
  assert _registered_steps(logdir)[-1] == _KILLED_RUN_STEPS
  assert tf.train.load_checkpoint(str(logdir)).get_tensor(
      'global_step') == _KILLED_RUN_STEPS


@pytest.mark.e2e
def test_bounded_watcher_waits_for_its_trainer_and_stops_on_sigterm(
    synthetic_dir, tmp_path):
  logdir, eval_logdir = tmp_path / 'train', tmp_path / 'eval'
  log = tmp_path / 'eval.log'
  waiting = re.compile(re.escape(
      'Waiting for the first checkpoint in %s, which does not exist yet.' %
      logdir))
  watcher = _start_logging(
      log, 'eval.py', *_model(synthetic_dir), '--checkpoint_dir=%s' % logdir,
      '--eval_logdir=%s' % eval_logdir, '--eval_split=16_clean_3',
      '--eval_crop_size=113,113', '--eval_interval_secs=1',
      '--max_number_of_evaluations=2')
  try:
    started = _wait_for(watcher, log, waiting, 1, _STARTUP_SECS)
    _skip_unless_started(watcher, log, started, 'the watcher did not wait')
    time.sleep(3)  # a few polls, none of which may log again
    os.kill(watcher.pid, signal.SIGTERM)
    code = watcher.wait(timeout=120)
  finally:
    _kill(watcher)
  err = log.read_text()
  assert code == 143, err[-3000:]
  assert 'Traceback' not in err
  assert err.strip().splitlines()[-1] == 'terminated'
  assert len(waiting.findall(err)) == 1
  assert not eval_logdir.exists()


# Run as `python -c _HOLD_FIRST_READ eval.py flags...`: eval.py whose first
# checkpoint read waits until training rotated that checkpoint away (its
# index is gone), so the watcher meets a checkpoint deleted between its pick
# and its read at a known point.
_HOLD_FIRST_READ = """
import os, runpy, sys, time
from core.eval import checkpoints

read = checkpoints.snapshot_checkpoint
held = []

def read_once_rotated(path, *args, **kwargs):
  deadline = time.time() + 60
  while not held and os.path.exists(path + '.index') and time.time() < deadline:
    time.sleep(0.05)
  held.append(path)
  return read(path, *args, **kwargs)

checkpoints.snapshot_checkpoint = read_once_rotated
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
_EVALUATING = re.compile(r'Evaluating (\S+) on ')
_SKIPPED = re.compile(r'checkpoint (\S+) was deleted before it could be read '
                      r'\(rotated away by training, see --max_to_keep\); '
                      r'skipped')
# Bound of the whole race: two TensorFlow start-ups (~15 s each on an idle
# machine, sharing its two cores), then evaluations of ~2 s.
_ROTATION_RACE_SECS = 240


def _evaluated_steps(eval_logdir):
  return {int(name[len('results-'):-len('.json')])
          for name in os.listdir(eval_logdir)
          if re.fullmatch(r'results-\d+\.json', name)} if os.path.isdir(
              eval_logdir) else set()


def _race_until_rotated_during_an_evaluation(trainer, watcher, eval_log,
                                             eval_logdir):
  """Polls until the watcher finished _EVALUATIONS evaluations, one of them
  of a checkpoint whose files training deleted while it was evaluated
  (after the watcher announced it, before its results); returns the
  checkpoints seen so rotated."""
  deadline = time.time() + _ROTATION_RACE_SECS
  rotated = set()
  while True:
    evaluated = _evaluated_steps(eval_logdir)
    for path in _EVALUATING.findall(eval_log.read_text()):
      if (checkpoint_paths.step_of(path) not in evaluated and
          not os.path.exists(path + '.index')):
        rotated.add(path)
    done_rotated = {p for p in rotated
                    if checkpoint_paths.step_of(p) in evaluated}
    if len(evaluated) >= _EVALUATIONS and done_rotated:
      return done_rotated
    assert trainer.poll() is None and watcher.poll() is None, (
        eval_log.read_text()[-3000:])
    assert time.time() < deadline, (
        'no evaluation of a rotated checkpoint within %d s: %s' % (
            _ROTATION_RACE_SECS, eval_log.read_text()[-3000:]))
    time.sleep(0.1)


@pytest.mark.e2e
def test_eval_watcher_survives_checkpoint_rotation(synthetic_dir, tmp_path):
  """train_sup.py saves every second and keeps one checkpoint while eval.py
  watches: the checkpoint the watcher picks first is rotated away before it
  reads it (held there), and later ones while they are evaluated."""
  logdir, eval_logdir = tmp_path / 'train', tmp_path / 'eval'
  eval_log = tmp_path / 'eval.log'
  model = _model(synthetic_dir)
  trainer = _start(
      'train_sup.py', *model, *_TINY_TRAINING, '--train_logdir=%s' % logdir,
      '--log_steps=100', '--training_number_of_steps=1000000',
      '--save_interval_secs=1', '--max_to_keep=1')
  watcher = _start_logging(
      eval_log, '-c', _HOLD_FIRST_READ, 'eval.py', *model,
      '--checkpoint_dir=%s' % logdir, '--eval_logdir=%s' % eval_logdir,
      '--eval_split=16_clean_3', '--eval_crop_size=113,113',
      '--eval_interval_secs=0', '--max_number_of_evaluations=0')
  try:
    rotated = _race_until_rotated_during_an_evaluation(
        trainer, watcher, eval_log, eval_logdir)
  finally:
    _, train_err, train_code = _stop(trainer)
    _stop(watcher)
  eval_err = eval_log.read_text()
  assert rotated
  first = _EVALUATING.search(eval_err).group(1)
  assert _SKIPPED.findall(eval_err)[:1] == [first], eval_err[-3000:]
  assert 'Traceback' not in eval_err and 'Traceback' not in train_err
  # Ctrl-C: the trainer saves, then says so in one line (exit code 130).
  assert train_code == 130 and watcher.returncode == 130
  last_line = train_err.strip().splitlines()[-1]
  assert last_line.startswith('interrupted: training stopped after step ')
  saved = last_line.rsplit('saved ', 1)[1]
  assert tf.train.latest_checkpoint(str(logdir)) == saved
  assert eval_err.strip().splitlines()[-1] == 'interrupted'
  assert not (logdir / 'train.lock').exists()
