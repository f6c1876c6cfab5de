"""Shared pytest set-up: import paths, parsed absl flags, fixture locations,
and the `e2e` marker of every test that starts a process."""
import inspect
import os
import re
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


# What starts a process: run_script or the subprocess module, called by a test,
# by a fixture it uses, or by a function of the test's module they call.
_STARTS_A_PROCESS = re.compile(r'\b(run_script|subprocess\.(run|Popen|call|'
                               r'check_call|check_output))\(')
_CALL = re.compile(r'\b([A-Za-z_]\w*)\(')


def _starts_a_process(function, seen=None):
  """Whether `function`, or a function of its module it calls (at any depth),
  calls run_script or starts a subprocess."""
  seen = set() if seen is None else seen
  if function in seen:
    return False
  seen.add(function)
  try:
    source = inspect.getsource(function)
  except (OSError, TypeError):
    return False
  if _STARTS_A_PROCESS.search(source):
    return True
  module_globals = getattr(function, '__globals__', {})
  for name in set(_CALL.findall(source)):
    called = module_globals.get(name)
    if (inspect.isfunction(called) and
        called.__module__ == function.__module__ and
        _starts_a_process(called, seen)):
      return True
  return False


def pytest_collection_modifyitems(items):
  """Marks `e2e` every test that starts a process, itself or through one of
  its fixtures, so that `-m "not e2e"` runs in-process tests only, whoever
  forgot a marker."""
  for item in items:
    functions = [getattr(item, 'function', None)]
    fixture_info = getattr(item, '_fixtureinfo', None)
    if fixture_info is not None:
      for definitions in fixture_info.name2fixturedefs.values():
        functions.extend(definition.func for definition in definitions)
    if any(_starts_a_process(f) for f in functions if f is not None):
      item.add_marker(pytest.mark.e2e)


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
