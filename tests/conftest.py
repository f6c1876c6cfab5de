"""Shared pytest set-up: import paths, parsed absl flags, fixture locations,
the `e2e` marker of every test that starts a process, and the two ways to run
an entry script: as users run it (a process: run_script, start_script) or its
`main` in this process (import_script, run_main), which saves TensorFlow's
start-up of a process (about 6 s) where the process is not what is tested."""
import ast
import contextlib
import importlib
import inspect
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from absl import flags
from absl.testing import flagsaver

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

# Flags keep their defaults in tests; tests pass other values explicitly.
flags.FLAGS.mark_as_parsed()

FORMAT_FIXTURE = os.path.join(REPO_ROOT, 'tests', 'fixtures',
                              'deeplab_voc_val-00000-of-00001.tfrecord')


# What starts a process: run_script or the subprocess module, called by a test,
# by a fixture it uses, or by a function of the test's module they call.
_STARTS_A_PROCESS = re.compile(r'\b(run_script|start_script|start_process|'
                               r'subprocess\.(run|Popen|call|check_call|'
                               r'check_output))\(')
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


class StartedProcess:
  """A process started by start_process or start_script, running in the
  background while the tests go on; result() waits for it.

  Started processes share the machine's two cores with the tests that run
  meanwhile: most of a short script run is TensorFlow's start-up and graph
  building, one core each. Its output goes to temporary files (a pipe nobody
  reads would stall a chatty process).
  """

  def __init__(self, argv, cwd=REPO_ROOT, env=None, timeout=900):
    self.args = [str(a) for a in argv]
    self._output = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    self._deadline = time.time() + timeout
    self._timeout = timeout
    self._result = None
    self._process = subprocess.Popen(self.args, cwd=cwd, env=env,
                                     stdout=self._output[0],
                                     stderr=self._output[1])

  def result(self):
    """The ended process as a subprocess.CompletedProcess (text output);
    waits for it. Past its timeout it is killed and TimeoutExpired raised, as
    subprocess.run does."""
    if self._result is None:
      try:
        returncode = self._process.wait(
            timeout=max(0.0, self._deadline - time.time()))
      except subprocess.TimeoutExpired:
        self.stop()
        raise subprocess.TimeoutExpired(self.args, self._timeout)
      stdout, stderr = [self._read(stream) for stream in self._output]
      self._result = subprocess.CompletedProcess(self.args, returncode,
                                                 stdout, stderr)
    return self._result

  def stop(self):
    """Kills the process if it still runs (a fixture's teardown: the test
    that would have waited for it did not run)."""
    if self._process.poll() is None:
      self._process.kill()
      self._process.wait()
    for stream in self._output:
      stream.close()

  @staticmethod
  def _read(stream):
    stream.seek(0)
    text = stream.read().decode('utf-8', 'replace')
    stream.close()
    return text


def _script_env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')


def start_process(argv, cwd=REPO_ROOT, env=None, timeout=900):
  """Starts `argv` in the background; returns its StartedProcess."""
  return StartedProcess(argv, cwd=cwd, env=env, timeout=timeout)


def start_script(script, *args, timeout=900):
  """Starts `python <script> args...` from the repo root in the background,
  as users run it; returns its StartedProcess (result() waits).

  Tests that check several runs of a script start them together, so that
  they share the two cores."""
  return start_process([sys.executable, script] + list(args), env=_script_env(),
                       timeout=timeout)


def run_script(script, *args, timeout=900):
  """Runs `python <script> args...` from the repo root; returns the process
  (subprocess.CompletedProcess).

  Scripts are run as users run them, so flag parsing, exit codes and messages
  are tested too.
  """
  return start_script(script, *args, timeout=timeout).result()


# ----------------------------------------------------------------------------
# Real stop signals sent by a test to its own process.


@pytest.fixture
def stray_signals_fail():
  """For a test that sends SIGINT or SIGTERM to its own process: a signal the
  code under test leaves unhandled reaches this handler and fails the test
  (instead of stopping pytest). Yields the handler, which must be back once
  that code is done."""

  def stray(signum, frame):
    raise AssertionError('signal %d reached no handler of the code under test'
                         % signum)

  previous = {s: signal.signal(s, stray)
              for s in (signal.SIGINT, signal.SIGTERM)}
  yield stray
  for s, handler in previous.items():
    signal.signal(s, handler)


def signal_this_thread(signum):
  """A real `signum`, handled before this returns (pthread_kill checks for
  signals at once), so the code under test gets it at a known point."""
  signal.pthread_kill(threading.get_ident(), signum)


class SignalsWhenCollected(object):
  """Sends `signum` to this thread from its finalizer, where the exception the
  handler raises is swallowed (as in a weakref callback of TensorFlow's).
  Made and dropped in one statement, it is collected at once."""

  def __init__(self, signum):
    self.signum = signum

  def __del__(self):
    signal_this_thread(self.signum)


# ----------------------------------------------------------------------------
# An entry script's main in this process.

# `flags.DEFINE_*('name'` in an entry script's source.
_DEFINES = re.compile(r"\bflags\.DEFINE_\w+\(\s*'(\w+)'")
# Script module name -> {flag name: its own Flag} for the flags it defines
# under a name that another script, imported before it, took.
_OWN_FLAGS = {}
# Script module name -> {flag name: default} it sets at import on flags of
# other modules (pretrain.py's, train_wss.py's defaults).
_IMPORT_DEFAULTS = {}


def _import_dependencies(source):
  """Imports the modules that a script's source imports at its top level
  (`import a.b`, `from a.b import c`: a.b, or a.b.c if that is a module)."""
  for node in ast.parse(source).body:
    if isinstance(node, ast.Import):
      for alias in node.names:
        importlib.import_module(alias.name)
    elif isinstance(node, ast.ImportFrom) and not node.level:
      for alias in node.names:
        try:
          importlib.import_module('%s.%s' % (node.module, alias.name))
        except ImportError:
          importlib.import_module(node.module)


def import_script(name):
  """Imports the entry script `name` ('eval', 'vis', ...) in this process,
  for calling its functions under script_flags or its main with run_main.

  The entry scripts are separate programs: two may define a flag of the same
  name (vis.py's, predict.py's and analyze.py's --colormap_type; eval.py's and
  analyze.py's --eval_crop_size, ...), and one may change other flags'
  defaults at import (pretrain.py). Here every flag keeps the definition and
  the default it had before the import; the script's own flags of a taken
  name, and the defaults it sets, are kept for script_flags. Import every
  entry script through this function (a plain import of the second script
  defining a name fails with absl's DuplicateFlagError).
  """
  if name in sys.modules:
    return sys.modules[name]
  with open(os.path.join(REPO_ROOT, name + '.py')) as stream:
    source = stream.read()
  # The modules defining the flags it changes first, so that every flag but
  # the script's own exists, with its default, before the script runs.
  _import_dependencies(source)
  registry = flags.FLAGS._flags()  # pylint: disable=protected-access
  taken = {flag: registry.pop(flag) for flag in _DEFINES.findall(source)
           if flag in registry}
  before = flagsaver.save_flag_values()
  try:
    module = importlib.import_module(name)
  finally:
    _OWN_FLAGS[name] = {flag: registry[flag] for flag in taken
                        if flag in registry}
    registry.update(taken)
    _IMPORT_DEFAULTS[name] = {
        flag: registry[flag].default_unparsed
        for flag, saved in before.items()
        if registry[flag].default_unparsed != saved['default_unparsed']}
    for flag, saved in before.items():
      registry[flag].__dict__ = saved
  return module


@contextlib.contextmanager
def script_flags(script):
  """Within the block the flags are those of entry script `script` (a module
  from import_script) as it runs: its own flags in place of other scripts'
  of the same names, the defaults it sets at import applied. Every flag
  value is restored after the block (flagsaver)."""
  registry = flags.FLAGS._flags()  # pylint: disable=protected-access
  own = _OWN_FLAGS.get(script.__name__, {})
  others = {name: registry[name] for name in own}
  registry.update(own)
  try:
    with flagsaver.flagsaver():
      for name, default in _IMPORT_DEFAULTS.get(script.__name__, {}).items():
        flags.FLAGS.set_default(name, default)
      yield
  finally:
    registry.update(others)


def run_main(script, *args):
  """Runs entry script `script`'s main in this process as its `__main__`
  block does (through utils.errors.run_reporting_errors), with the command
  line `args` parsed by absl; returns the exit code (0 when main returns).

  What `python <script> args...` does, without a new TensorFlow process, but
  also without absl's check of the required flags (that needs the real
  command line: run_script). The `error: …` line it prints is in capsys'
  stderr; absl log lines (progress, warnings) are caplog records.
  """
  from utils import errors
  with script_flags(script):
    flags.FLAGS([script.__file__] + [str(a) for a in args])
    try:
      errors.run_reporting_errors(script.main, [script.__file__])
    except SystemExit as exited:
      return exited.code
  return 0


# ----------------------------------------------------------------------------
# pretrain.py and train_wss.py from its export (test_pretrain.py,
# test_train_wss.py).

# A tiny run of the light model (add the dataset and logdir flags).
TINY_PRETRAIN = ['--model_variant=mobilenet_v2', '--dataset=synthetic',
                 '--train_crop_size=33,33', '--min_scale_factor=1',
                 '--max_scale_factor=1', '--num_readers=1', '--log_steps=1']


@pytest.fixture(scope='session')
def pretrained(synthetic_dir, tmp_path_factory):
  """pretrain.py's main in this process, 2 steps with the defaults the script
  sets at import: (logdir, its export prefix, what it printed)."""
  import io
  from core.train import pretraining
  logdir = tmp_path_factory.mktemp('pretrain')
  with contextlib.redirect_stdout(io.StringIO()) as printed:
    code = run_main(import_script('pretrain'), *TINY_PRETRAIN,
                    '--dataset_dir=' + synthetic_dir,
                    '--train_logdir=%s' % logdir, '--train_batch_size=2',
                    '--training_number_of_steps=2')
  assert code == 0
  return (str(logdir),
          os.path.join(str(logdir), 'export', pretraining.EXPORT_NAME),
          printed.getvalue())


@pytest.fixture(scope='session')
def pretrain_runs(request, synthetic_dir, tmp_path_factory):
  """Two runs as users run them, each (folder, StartedProcess); result()
  waits. 'rejects': pretrain.py given --tf_initial_checkpoint, started first,
  while `pretrained` trains in this process; 'train_wss': 1 step of
  train_wss.py from the export, started then. test_pretrain.py checks the
  first; train_wss.py trains while the modules after it run, and
  test_train_wss.py checks it."""
  rejected = tmp_path_factory.mktemp('pretrain_rejects')
  runs = {'rejects': (rejected, start_script(
      'pretrain.py', *TINY_PRETRAIN, '--dataset_dir=' + synthetic_dir,
      '--train_logdir=%s' % rejected,
      '--tf_initial_checkpoint=/some/model.ckpt'))}
  try:
    _, prefix, _ = request.getfixturevalue('pretrained')
    wss = tmp_path_factory.mktemp('pretrained_wss') / 'wss'
    runs['train_wss'] = (wss, start_script(
        'train_wss.py', *TINY_PRETRAIN, '--dataset_dir=' + synthetic_dir,
        '--train_split=16_clean_3', '--num_clones=1', '--train_batch_size=2',
        '--training_number_of_steps=1', '--save_interval_secs=3600',
        '--tf_initial_checkpoint=' + prefix, '--train_logdir=%s' % wss))
    yield runs
  finally:
    for _, run in runs.values():
      run.stop()


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
