r"""Float operations of one training step of train_sup.py or train_wss.py.

Builds the script's own training graph in this process (its flags, its
model, its passes and monitoring) without running it, and counts the FLOPs
of every op with the TF profiler (`float_operation`; ops without a FLOP
statistic, e.g. batch norm, count 0). Prints `GFLOP/step <value>`.

  .venv/bin/python bench/graph_flops.py --script=train_wss -- \
      --model_variant=xception_65 --dataset=synthetic --dataset_dir=DIR ...

Everything after `--` goes to the script's flags (--train_logdir defaults to
a temporary folder; nothing is written there but the logdir lock).
"""
import importlib
import os
import sys
import tempfile

# Allow `python bench/graph_flops.py` from the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from absl import flags  # noqa: E402

from bench import model_step  # noqa: E402
from core.train import loop  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

SCRIPTS = ('train_sup', 'train_wss')


class _Built(Exception):
  """Raised in place of the training loop once the graph is complete."""

  def __init__(self, graph):
    super().__init__('graph built')
    self.graph = graph


def _stop_before_training(*unused_args, **unused_kwargs):
  raise _Built(tf.get_default_graph())


def build_graph(script, argv):
  """The training graph `script` builds for `argv` (its flags), not run."""
  module = importlib.import_module(script)
  # A second parse would append to multi flags (--atrous_rates) instead of
  # replacing them.
  flags.FLAGS.unparse_flags()
  flags.FLAGS(argv)
  loop.run_loop = _stop_before_training
  try:
    module.main([script])
  except _Built as built:
    return built.graph
  raise RuntimeError('%s.main returned without reaching its training loop.'
                     % script)


def step_gflop(graph):
  return model_step.graph_flops(graph) / 1e9


def trainable_parameters(graph):
  with graph.as_default():
    return sum(v.shape.num_elements() for v in tf.trainable_variables())


def main(argv):
  if len(argv) < 2 or not argv[1].startswith('--script='):
    raise InputError('usage: bench/graph_flops.py --script={%s} -- FLAGS...'
                     % ','.join(SCRIPTS))
  script = argv[1].split('=', 1)[1]
  if script not in SCRIPTS:
    raise InputError('--script=%s: expected one of %s.' %
                     (script, ', '.join(SCRIPTS)))
  rest = argv[2:]
  if rest and rest[0] == '--':
    rest = rest[1:]
  with tempfile.TemporaryDirectory() as logdir:
    graph = build_graph(script, [script, '--train_logdir=%s' % logdir] + rest)
    print('ops %d' % len(graph.get_operations()))
    print('GFLOP/step %.3f' % step_gflop(graph))
    print('trainable parameters %d' % trainable_parameters(graph))


if __name__ == '__main__':
  run_reporting_errors(main, sys.argv)
