"""The error type for bad user input, and how entry scripts report it."""
import sys

from absl import logging


class InputError(ValueError):
  """Bad user input (flag, dataset, checkpoint); the message names the problem."""


def run_reporting_input_errors(main, argv):
  """Calls main(argv); an InputError is logged as one clear line, exit code 2."""
  try:
    return main(argv)
  except InputError as error:
    logging.error('%s', error)
    print('error: %s' % error, file=sys.stderr)
    sys.exit(2)
