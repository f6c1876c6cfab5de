"""Error types reported to users as one line, and how entry scripts do it."""
import sys

from absl import logging


class InputError(ValueError):
  """Bad user input (flag, dataset, checkpoint); the message names the problem."""


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. the loss became NaN)."""


def run_reporting_errors(main, argv):
  """Calls main(argv); reports an InputError (exit code 2) or a TrainingError
  (exit code 1) as one clear line instead of a traceback."""
  try:
    return main(argv)
  except (InputError, TrainingError) as error:
    logging.error('%s', error)
    print('error: %s' % error, file=sys.stderr)
    sys.exit(2 if isinstance(error, InputError) else 1)
