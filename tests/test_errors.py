"""Stop signals under utils.errors.sigterm_like_ctrl_c: never lost, one line.

A signal handler runs between any two bytecodes, also inside a finalizer,
where the exception it raises is swallowed: these tests put a real signal
there and check that the work still stops at its next check, quietly.
"""
import gc
import signal

import pytest

from conftest import SignalsWhenCollected
from conftest import signal_this_thread
from utils import errors


def _signal_inside_a_finalizer(signum):
  SignalsWhenCollected(signum)
  gc.collect()


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_swallowed_by_a_finalizer_stops_at_the_next_check(
    signum, capsys, stray_signals_fail):
  with errors.sigterm_like_ctrl_c():
    _signal_inside_a_finalizer(signum)  # the raise inside __del__ is lost
    with pytest.raises(errors.Interrupted) as raised:
      errors.raise_if_interrupted()
  assert raised.value.signum == signum
  # No "Exception ignored in ... Traceback" on the console.
  assert capsys.readouterr().err == ''
  assert signal.getsignal(signal.SIGINT) is stray_signals_fail
  assert signal.getsignal(signal.SIGTERM) is stray_signals_fail


def test_nothing_pending_without_a_signal_or_after_the_block(
    stray_signals_fail):
  with errors.sigterm_like_ctrl_c():
    errors.raise_if_interrupted()  # nothing came
  with pytest.raises(errors.Interrupted):
    with errors.sigterm_like_ctrl_c():
      signal_this_thread(signal.SIGTERM)
  errors.raise_if_interrupted()  # the block's signal does not outlive it


def test_other_unraisable_exceptions_are_still_reported(stray_signals_fail):
  seen = []

  class FailsWhenCollected(object):

    def __del__(self):
      raise ValueError('a real bug in a finalizer')

  previous_hook = errors.sys.unraisablehook
  errors.sys.unraisablehook = seen.append
  try:
    with errors.sigterm_like_ctrl_c():
      FailsWhenCollected()
  finally:
    errors.sys.unraisablehook = previous_hook
  assert [type(u.exc_value) for u in seen] == [ValueError]


@pytest.mark.parametrize('signum,code,line', [
    (signal.SIGINT, 130, 'interrupted'), (signal.SIGTERM, 143, 'terminated')])
def test_swallowed_signal_is_reported_in_one_line(signum, code, line, capsys,
                                                   stray_signals_fail):

  def main(argv):
    with errors.sigterm_like_ctrl_c():
      _signal_inside_a_finalizer(signum)
      errors.raise_if_interrupted()

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == code
  assert capsys.readouterr().err.strip().splitlines() == [line]
