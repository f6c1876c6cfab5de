"""train_sup.py end to end: runs, clones, resume, bad input, NaN.

Three runs of the script as users run it start together (they share the two
cores, and the in-process tests below run meanwhile): 3 training steps of the
light model, and the command without each of its required flags. Resume, bad
input and an incompatible initial checkpoint run its main in this process.
"""
import json
import logging
import math
import os
import re

import numpy as np
import pytest

from conftest import REPO_ROOT
from conftest import import_script
from conftest import run_main
from conftest import run_script
from conftest import start_script
from core.data import registry
from deeplab.tf_compat import tf

train_sup = import_script('train_sup')

LIGHT_MODEL = ['--model_variant=mobilenet_v2', '--output_stride=16',
               '--dataset=synthetic']
SHORT_RUN = ['--train_crop_size=65,65', '--min_scale_factor=1',
             '--max_scale_factor=1', '--num_readers=1', '--log_steps=1',
             '--save_interval_secs=3600', '--train_split=16_clean_3']
# The light runs below train one clone on 2 images a step.
ONE_CLONE = ['--num_clones=1', '--train_batch_size=2']
STEP_LINE = re.compile(r'step (\d+)/(\d+)\s+total_loss=(\S+)')


def _logged_steps(output):
  """(step, total_loss) of every progress line."""
  return [(int(m.group(1)), float(m.group(3)))
          for m in STEP_LINE.finditer(output)]


def _checkpoint_steps(logdir):
  state = tf.train.get_checkpoint_state(logdir)
  return sorted(int(p.rsplit('-', 1)[1])
                for p in state.all_model_checkpoint_paths)


def _sup_args(dataset_dir, logdir, *extra):
  return [*LIGHT_MODEL, *SHORT_RUN, '--dataset_dir=%s' % dataset_dir,
          '--train_logdir=%s' % logdir, *extra]


def _sup(dataset_dir, logdir, *extra):
  return run_script('train_sup.py', *_sup_args(dataset_dir, logdir, *extra))


def _run_main(dataset_dir, logdir, *extra):
  """train_sup.py's main in this process, with the flags of `_sup`, one
  clone, 1 step, then `extra` (a later value of a flag wins); returns its
  exit code."""
  return run_main(train_sup, *_sup_args(
      dataset_dir, logdir, *ONE_CLONE, '--training_number_of_steps=1',
      *extra))


def _listing(directory):
  return sorted(os.listdir(directory))


def _error_lines(stderr):
  """The lines reporting an error: absl's flag check (`FATAL …`, exit code 1)
  or utils.errors.run_reporting_errors (`error: …`, exit code 2 or 1)."""
  return [line for line in stderr.splitlines()
          if line.startswith(('FATAL ', 'error: '))]


def _missing_flag_line(name):
  return ('FATAL Flags parsing error: flag --%s=None: Flag --%s must have a '
          'value other than None.' % (name, name))


_REQUIRED_FLAGS = ('train_logdir', 'dataset_dir')


@pytest.fixture(scope='module')
def script_runs(synthetic_dir, tmp_path_factory):
  """train_sup.py as users run it, three runs started together:
  'light': 3 steps of the light model with one clone;
  'missing_<flag>' for each required flag: a 1-step command without that
  flag, the folder of its --train_logdir holding a file.
  Each is (folder, StartedProcess); result() waits for the run."""
  light = tmp_path_factory.mktemp('sup_light')
  runs = {'light': (light, start_script('train_sup.py', *_sup_args(
      synthetic_dir, light, *ONE_CLONE, '--training_number_of_steps=3')))}
  for flag in _REQUIRED_FLAGS:
    untouched = tmp_path_factory.mktemp('sup_missing_' + flag)
    (untouched / 'keep.txt').write_text('existing output')
    args = _sup_args(synthetic_dir, untouched, *ONE_CLONE,
                     '--training_number_of_steps=1')
    runs['missing_' + flag] = (untouched, start_script(
        'train_sup.py', *[a for a in args
                          if not a.startswith('--%s=' % flag)]))
  yield runs
  for _, run in runs.values():
    run.stop()


@pytest.fixture(scope='module')
def light_run(script_runs):
  """3 steps of the light model with one clone: (logdir, process)."""
  logdir, run = script_runs['light']
  process = run.result()
  assert process.returncode == 0, process.stderr[-3000:]
  return logdir, process


# The first tests: they start the runs of the script; the light one trains
# while the in-process tests after them run.
@pytest.mark.parametrize('flag', _REQUIRED_FLAGS)
def test_missing_flag_is_reported(script_runs, flag):
  """absl's check of the required flags, so a real command line."""
  untouched, run = script_runs['missing_' + flag]
  process = run.result()
  # docs/RELIABILITY.md: exit code 1 for absl's flag check.
  assert process.returncode == 1, process.stderr[-3000:]
  assert _error_lines(process.stderr) == [_missing_flag_line(flag)]
  assert 'Traceback' not in process.stderr
  assert _listing(untouched) == ['keep.txt']


_SYNTHETIC_SPLITS = ', '.join(sorted(
    registry.get_dataset_descriptor('synthetic').splits_to_sizes))


@pytest.mark.parametrize('extra, line', [
    (['--train_split=no_such_split'],
     "error: Unknown split 'no_such_split' of dataset 'synthetic'; known "
     'splits: %s.' % _SYNTHETIC_SPLITS),
    (['--num_clones=3', '--train_batch_size=4'],
     'error: --train_batch_size=4 must be a positive multiple of '
     '--num_clones=3; lower both together for a small run, e.g. '
     '--num_clones=1 --train_batch_size=2.'),
])
def test_bad_input_is_reported(synthetic_dir, tmp_path, capsys, extra, line):
  (tmp_path / 'keep.txt').write_text('existing output')
  # docs/RELIABILITY.md: exit code 2 for bad input, one line.
  assert _run_main(synthetic_dir, tmp_path, *extra) == 2
  err = capsys.readouterr().err
  assert _error_lines(err) == [line]
  assert 'Traceback' not in err
  assert _listing(tmp_path) == ['keep.txt']


def test_incompatible_initial_checkpoint_is_reported(synthetic_dir, tmp_path,
                                                     capsys):
  checkpoint_dir = tmp_path / 'init'
  with tf.Graph().as_default():
    tf.get_variable('MobilenetV2/Conv/weights', shape=[3, 3, 3, 7])
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver().save(session, str(checkpoint_dir / 'model.ckpt'))
  logdir = tmp_path / 'train'
  logdir.mkdir()
  assert _run_main(synthetic_dir, logdir, '--tf_initial_checkpoint=%s' % (
      checkpoint_dir / 'model.ckpt')) == 2
  err = capsys.readouterr().err
  assert _error_lines(err) == [
      'error: incompatible checkpoint %s: variable MobilenetV2/Conv/weights '
      'has shape [3, 3, 3, 32] in the model but [3, 3, 3, 7] in the '
      'checkpoint; the backbone differs: check --model_variant and the model '
      'flags (e.g. --output_stride, --atrous_rates) against the checkpoint' %
      (checkpoint_dir / 'model.ckpt')]
  assert 'Traceback' not in err
  assert _listing(logdir) == []
  reader = tf.train.load_checkpoint(str(checkpoint_dir / 'model.ckpt'))
  assert reader.get_variable_to_shape_map()['MobilenetV2/Conv/weights'] == [
      3, 3, 3, 7]
  assert np.isfinite(reader.get_tensor('MobilenetV2/Conv/weights')).all()


def test_one_clone_trains_three_finite_steps(light_run):
  logdir, process = light_run
  steps = _logged_steps(process.stderr)
  assert [s for s, _ in steps][-1] == 3
  assert all(math.isfinite(loss) for _, loss in steps)
  assert _checkpoint_steps(str(logdir))[-1] == 3
  assert tf.io.gfile.glob(os.path.join(str(logdir), 'events.out.tfevents.*'))


def test_resume_continues_and_ignores_initial_checkpoint(light_run,
                                                         synthetic_dir,
                                                         caplog):
  """The light run's logdir, resumed by main in this process (its progress
  lines are log records here)."""
  logdir, _ = light_run
  caplog.set_level(logging.INFO)
  assert _run_main(synthetic_dir, logdir, '--training_number_of_steps=5',
                   '--tf_initial_checkpoint=/does/not/exist/model.ckpt') == 0
  steps = [s for s, _ in _logged_steps(
      '\n'.join(record.getMessage() for record in caplog.records))]
  assert steps and min(steps) >= 4 and steps[-1] == 5
  assert _checkpoint_steps(str(logdir))[-2:] == [3, 5]
  reader = tf.train.load_checkpoint(os.path.join(str(logdir), 'model.ckpt-5'))
  assert reader.get_tensor('global_step') == 5


def _reference_variables():
  path = os.path.join(REPO_ROOT, 'tests', 'fixtures',
                      'xception_65_deeplabv3plus_variables.tsv')
  with open(path) as f:
    rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
  return {name: [int(d) for d in shape.split(',')] for name, shape in rows}


@pytest.mark.slow
def test_nan_loss_stops_with_message_and_keeps_checkpoint(synthetic_dir,
                                                          tmp_path):
  """The default run holds test_reliability.py::
  test_nan_loss_stops_with_one_line_and_keeps_the_checkpoint (the training
  loop in process, the same line, exit code and checkpoint)."""
  nan_weights = ['--label_weights=nan'] * 9
  process = _sup(synthetic_dir, tmp_path, '--num_clones=1',
                 '--train_batch_size=2', '--training_number_of_steps=3',
                 *nan_weights)
  assert process.returncode == 1
  assert 'error: The loss became NaN or Inf' in process.stderr
  assert 'Traceback' not in process.stderr
  assert _checkpoint_steps(str(tmp_path)) == [0]


@pytest.mark.slow
def test_two_clones_xception_checkpoint_has_deeplab_names(synthetic_dir,
                                                          tmp_path):
  process = run_script(
      'train_sup.py', '--model_variant=xception_65', '--atrous_rates=6',
      '--atrous_rates=12', '--atrous_rates=18', '--output_stride=16',
      '--decoder_output_stride=4', '--dataset=synthetic', *SHORT_RUN,
      '--num_clones=2', '--clone_on_cpu=true', '--train_batch_size=2',
      '--training_number_of_steps=2', '--dataset_dir=%s' % synthetic_dir,
      '--train_logdir=%s' % tmp_path)
  assert process.returncode == 0, process.stderr[-3000:]
  assert all(math.isfinite(l) for _, l in _logged_steps(process.stderr))
  reader = tf.train.load_checkpoint(str(tmp_path))
  shapes = reader.get_variable_to_shape_map()
  model_variables = {n: s for n, s in shapes.items()
                     if not n.endswith('/Momentum') and n != 'global_step'}
  expected = _reference_variables()
  expected['logits/semantic/weights'][-1] = 9  # synthetic: 9 classes
  expected['logits/semantic/biases'][-1] = 9
  assert model_variables == expected
  assert 'global_step' in shapes


@pytest.mark.slow
def test_overfitting_a_few_images_drives_loss_down_and_miou_up(synthetic_dir,
                                                               tmp_path):
  """250 steps on the 3 images of the tiny 16_clean_3 split, then eval them."""
  process = run_script(
      'train_sup.py', *LIGHT_MODEL, '--dataset_dir=%s' % synthetic_dir,
      '--train_logdir=%s' % tmp_path, '--train_split=16_clean_3',
      '--train_crop_size=97,97', '--min_scale_factor=1', '--max_scale_factor=1',
      '--num_clones=1', '--train_batch_size=3', '--num_readers=1',
      '--training_number_of_steps=250', '--base_learning_rate=0.05',
      '--weight_decay=0', '--batch_norm_decay=0.9', '--log_steps=5')
  assert process.returncode == 0, process.stderr[-3000:]
  losses = [loss for _, loss in _logged_steps(process.stderr)]
  assert np.mean(losses[-3:]) < np.mean(losses[:3]) / 4
  process = run_script(
      'eval.py', *LIGHT_MODEL, '--dataset_dir=%s' % synthetic_dir,
      '--eval_split=16_clean_3', '--eval_crop_size=129,129',
      '--checkpoint_dir=%s' % tmp_path, '--eval_logdir=%s' % (tmp_path / 'ev'),
      '--max_number_of_evaluations=1')
  assert process.returncode == 0, process.stderr[-3000:]
  with open(tmp_path / 'ev' / 'results.json') as f:
    result = json.load(f)
  assert result['global_step'] == 250 and result['num_images'] == 3
  # A constant background prediction scores about 1/(#classes present) of
  # the background IoU, i.e. below 0.2 here; this run reaches about 0.5.
  assert result['miou'] > 0.35


@pytest.mark.slow
def test_parameter_server_run_with_the_project_servers(synthetic_dir, tmp_path):
  """1 ps + 1 worker on 127.0.0.1 (run_server.py), train_sup as task 0."""
  import socket
  import subprocess
  import sys
  import time
  ports = []
  for _ in range(2):
    with socket.socket() as probe:
      probe.bind(('127.0.0.1', 0))
      ports.append(probe.getsockname()[1])
  hosts = ['--ps_hosts=127.0.0.1:%d' % ports[0],
           '--worker_hosts=127.0.0.1:%d' % ports[1]]
  servers = [subprocess.Popen(
      [sys.executable, 'run_server.py', *hosts,
       '--job_name=%s' % job, '--task_index=0'], cwd=REPO_ROOT,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for job in ('ps', 'worker')]
  try:
    time.sleep(5)
    process = _sup(synthetic_dir, tmp_path, '--num_clones=1',
                   '--train_batch_size=2', '--training_number_of_steps=4',
                   '--num_ps_tasks=1', '--num_replicas=1', '--task=0',
                   '--master=grpc://127.0.0.1:%d' % ports[1])
  finally:
    for server in servers:
      server.kill()
      server.wait()
  assert process.returncode == 0, process.stderr[-3000:]
  assert [s for s, _ in _logged_steps(process.stderr)][-1] == 4
  assert _checkpoint_steps(str(tmp_path))[-1] == 4
