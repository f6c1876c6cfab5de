r"""train_wss start-up of two source trees, launched in alternation.

Start-up is the time from the launch of the script to the end of its first
step (imports, graph build, Grappler, initialisation, first step), read from
the progress lines as `bench/run_all.py` reads it. Each round launches the
same training command (run_all's: synthetic data, one clone, README model
flags, --batch_size, --train_steps) from every tree in --trees, so the trees
see the same machine load; the medians over --rounds are printed with the
ratio to the first tree, and every launch with its load.

  git worktree add /tmp/before <commit before a change>
  .venv/bin/python bench/startup_ab.py --trees=/tmp/before,. --rounds=3 \
      --variants=xception_65 --crop_sizes=129 --train_steps=4 --skip_steps=1
"""
import os
import sys
import tempfile

# Allow `python bench/startup_ab.py` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from bench import run_all  # noqa: E402  (defines the run flags)
from datasets import build_synthetic_data  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_list('trees', None, 'Source trees (repository roots) to compare.')
flags.DEFINE_integer('rounds', 3, 'Launches of each tree.')


def startup_seconds(tree, variant, crop, dataset_dir, work):
  """(start-up seconds, s/step, load at launch) of one train_wss launch."""
  command = run_all.train_command('train_wss', variant, crop, dataset_dir,
                                  tempfile.mkdtemp(dir=work),
                                  repo_root=os.path.abspath(tree))
  load = os.getloadavg()[0]
  log, launch, _ = run_all.run_measured(command)
  seconds, startup = run_all.step_timings(log, launch)
  return startup, seconds, load


def main(argv):
  if len(argv) > 1:
    raise InputError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  if not FLAGS.trees or len(FLAGS.trees) < 2:
    raise InputError('--trees needs at least two source trees.')
  missing = [t for t in FLAGS.trees
             if not os.path.isfile(os.path.join(t, 'train_wss.py'))]
  if missing:
    raise InputError('--trees: no train_wss.py in %s.' % ', '.join(missing))
  variant, crop = FLAGS.variants[0], int(FLAGS.crop_sizes[0])
  startups = {tree: [] for tree in FLAGS.trees}
  with tempfile.TemporaryDirectory() as work:
    dataset_dir = os.path.join(work, 'data')
    build_synthetic_data.build(dataset_dir, num_train=32, num_val=4,
                               num_shards=1)
    for round_index in range(FLAGS.rounds):
      for tree in FLAGS.trees:
        startup, seconds, load = startup_seconds(tree, variant, crop,
                                                 dataset_dir, work)
        startups[tree].append(startup)
        print('round %d %s: start-up %.1f s, %.3f s/step, load %.2f' % (
            round_index + 1, tree, startup, seconds, load), flush=True)
  first = np.median(startups[FLAGS.trees[0]])
  for tree in FLAGS.trees:
    print('%s: median start-up %.1f s (%s), %s / this %.2fx' % (
        tree, np.median(startups[tree]),
        ', '.join('%.1f' % s for s in startups[tree]), FLAGS.trees[0],
        first / np.median(startups[tree])))


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
