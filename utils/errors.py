"""Error types reported to users as one line, and how entry scripts do it."""
import sys

from absl import logging


class InputError(ValueError):
  """Bad user input (flag, dataset, checkpoint); the message names the problem."""


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C, after the work was wound down; the message says what was kept."""


# Exit code of a process stopped by SIGINT (128 + 2), as shells report it.
INTERRUPTED_EXIT_CODE = 130


def run_reporting_errors(main, argv):
  """Calls main(argv); reports an InputError (exit code 2), a TrainingError
  (exit code 1) or Ctrl-C (exit code 130) as one clear line instead of a
  traceback."""
  try:
    return main(argv)
  except (InputError, TrainingError) as error:
    logging.error('%s', error)
    print('error: %s' % error, file=sys.stderr)
    sys.exit(2 if isinstance(error, InputError) else 1)
  except KeyboardInterrupt as interrupt:
    detail = str(interrupt)
    print('interrupted%s' % (': ' + detail if detail else ''), file=sys.stderr)
    sys.exit(INTERRUPTED_EXIT_CODE)
