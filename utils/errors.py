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


# The stop signal received inside a sigterm_like_ctrl_c block, or None.
_pending_signal = None


def _raise_interrupted(signum, unused_frame):
  global _pending_signal
  _pending_signal = signum
  raise Interrupted(signum=signum)


def _hide_swallowed_interrupt(previous_hook):
  """An unraisablehook that keeps quiet about an Interrupted.

  Python runs a signal handler between any two bytecodes, also inside a
  finalizer (a weakref callback, a __del__). An exception raised there cannot
  propagate: Python prints it with a traceback ("Exception ignored in ...")
  and goes on. The signal is then only pending: raise_if_interrupted raises
  it at the next place the work checks.
  """

  def hook(unraisable):
    if not isinstance(unraisable.exc_value, Interrupted):
      previous_hook(unraisable)

  return hook


def raise_if_interrupted():
  """Raises Interrupted if a stop signal came inside a sigterm_like_ctrl_c
  block and was swallowed (see _hide_swallowed_interrupt). Loops call it
  between their units of work: steps, checkpoints, images."""
  if _pending_signal is not None:
    raise Interrupted(signum=_pending_signal)


@contextlib.contextmanager
def sigterm_like_ctrl_c():
  """Within the block SIGTERM stops the work as Ctrl-C does, and neither
  signal is ever lost.

  SIGTERM (what `kill`, Slurm and Kubernetes send) kills at once by default;
  here it raises Interrupted(signum=SIGTERM), so the work winds down as from
  Ctrl-C (training saves a checkpoint) and run_reporting_errors ends with one
  line and exit code 143. Ctrl-C raises Interrupted(signum=SIGINT), a
  KeyboardInterrupt as usual. Python runs the handler in the main thread
  between bytecodes, so a TensorFlow run under way finishes first. A signal
  that lands in a finalizer, where the exception is swallowed, stays pending
  for raise_if_interrupted, without a traceback on the console. The previous
  handlers are back after the block. Only the main thread may set handlers:
  in another one this does nothing.
  """
  global _pending_signal
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  _pending_signal = None
  previous = {signum: signal.signal(signum, _raise_interrupted)
              for signum in (signal.SIGINT, signal.SIGTERM)}
  previous_hook = sys.unraisablehook
  sys.unraisablehook = _hide_swallowed_interrupt(previous_hook)
  try:
    yield
  finally:
    sys.unraisablehook = previous_hook
    _pending_signal = None
    for signum, handler in previous.items():
      # None: a handler set outside Python, which cannot be put back.
      signal.signal(signum, signal.SIG_DFL if handler is None else handler)


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
