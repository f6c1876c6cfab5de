"""Error types reported to users as one line, and how entry scripts do it."""
import contextlib
import signal
import sys
import threading

from absl import logging


class InputError(ValueError):
  """Bad user input (flag, dataset, checkpoint); the message names the problem."""


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C or SIGTERM, after the work was wound down; the message says what
  was kept.

  `signum` is the signal that stopped the work (SIGINT for Ctrl-C). It is a
  KeyboardInterrupt so that code winds down from SIGTERM as from Ctrl-C, and
  so that TensorFlow's `except Exception` clauses let it through.
  """

  def __init__(self, detail='', signum=signal.SIGINT):
    super(Interrupted, self).__init__(detail)
    self.signum = signum


def signal_of(interrupt):
  """The signal behind a KeyboardInterrupt: an Interrupted's, else SIGINT."""
  return getattr(interrupt, 'signum', signal.SIGINT)


def _raise_interrupted(signum, unused_frame):
  raise Interrupted(signum=signum)


@contextlib.contextmanager
def sigterm_like_ctrl_c():
  """Within the block SIGTERM stops the work as Ctrl-C does.

  SIGTERM (what `kill`, Slurm and Kubernetes send) kills at once by default;
  here it raises Interrupted(signum=SIGTERM), so the work winds down as from
  Ctrl-C (training saves a checkpoint) and run_reporting_errors ends with one
  line and exit code 143. Python runs the handler in the main thread between
  bytecodes, so a TensorFlow run under way finishes first. The previous
  handler is back after the block. Only the main thread may set handlers: in
  another one this does nothing.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGTERM, _raise_interrupted)
  try:
    yield
  finally:
    # None: a handler set outside Python, which cannot be put back.
    signal.signal(signal.SIGTERM,
                  signal.SIG_DFL if previous is None else previous)


def run_reporting_errors(main, argv):
  """Calls main(argv); reports an InputError (exit code 2), a TrainingError
  (exit code 1), Ctrl-C (exit code 130) or SIGTERM under sigterm_like_ctrl_c
  (exit code 143) as one clear line instead of a traceback."""
  try:
    return main(argv)
  except (InputError, TrainingError) as error:
    logging.error('%s', error)
    print('error: %s' % error, file=sys.stderr)
    sys.exit(2 if isinstance(error, InputError) else 1)
  except KeyboardInterrupt as interrupt:
    signum = signal_of(interrupt)
    detail = str(interrupt)
    print('%s%s' % ('terminated' if signum == signal.SIGTERM else
                    'interrupted', ': ' + detail if detail else ''),
          file=sys.stderr)
    # 128 + the signal number, as shells report a process the signal killed.
    sys.exit(128 + signum)
