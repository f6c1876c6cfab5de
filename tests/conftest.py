"""Shared pytest set-up: import paths, parsed absl flags, fixture locations."""
import os
import sys

import pytest
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

# Flags keep their defaults in tests; tests pass other values explicitly.
flags.FLAGS.mark_as_parsed()

FORMAT_FIXTURE = os.path.join(REPO_ROOT, 'tests', 'fixtures',
                              'deeplab_voc_val-00000-of-00001.tfrecord')


@pytest.fixture(scope='session')
def repo_root():
  return REPO_ROOT


@pytest.fixture(scope='session')
def format_fixture_dir(tmp_path_factory):
  """A dataset_dir holding DeepLab's 3-record PASCAL fixture as split `val`."""
  directory = tmp_path_factory.mktemp('voc_fixture')
  os.symlink(FORMAT_FIXTURE,
             os.path.join(directory, 'val-00000-of-00001.tfrecord'))
  return str(directory)


@pytest.fixture(scope='session')
def synthetic_dir(tmp_path_factory):
  """A small synthetic dataset (dataset name `synthetic`): 48 train, 8 val,
  8 classification images."""
  from datasets import build_synthetic_data
  directory = str(tmp_path_factory.mktemp('synthetic'))
  build_synthetic_data.build(directory, seed=0, num_train=48, num_val=8,
                             image_size=96, num_shards=2, num_cls=8)
  return directory


@pytest.fixture
def umask_022():
  """Runs the test under umask 0o022; returns the mode of a new file, 0o644
  (not mkstemp's 0600, so asserting it catches a missing chmod)."""
  old = os.umask(0o022)
  yield 0o644
  os.umask(old)


def run_script(script, *args, timeout=900):
  """Runs `python <script> args...` from the repo root; returns the process.

  Scripts are run as users run them, so flag parsing, exit codes and messages
  are tested too.
  """
  import subprocess
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  return subprocess.run([sys.executable, script] + [str(a) for a in args],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                        timeout=timeout)


def pseudoseg_options(model_options, **overrides):
  """PseudoSegOptions of the default flags around `model_options`; fields in
  `overrides` replaced."""
  from core.flags import supervised_flags
  from core.flags import wss_flags
  options = wss_flags.pseudoseg_options_from_flags(
      supervised_flags.supervised_options_from_flags(model_options))
  return options._replace(**overrides)


def train_options(logdir, steps, **overrides):
  """TrainOptions of the default flags for a run of `steps` steps in `logdir`
  (no initial checkpoint); fields in `overrides` replaced, and the fields of
  its OptimizerOptions given as `optimization={name: value}`."""
  from core.flags import train_flags
  options = train_flags.train_options_from_flags()
  optimization = options.optimization._replace(
      **overrides.pop('optimization', {}))
  return options._replace(train_logdir=str(logdir),
                          training_number_of_steps=steps,
                          optimization=optimization, **overrides)
