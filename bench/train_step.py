r"""Steady-state speed of train_sup.py itself (input pipeline, clones, hooks).

For each crop size the script builds a small synthetic dataset (once), runs
`train_sup.py` for `--train_steps` steps with batch `--batch_size` and one clone,
and takes the median seconds per step of the progress lines after the first
few. Next to it: the model's forward+backward GFLOP per image (TF profiler on
the same DeepLabv3+ graph) and the practical peak (a large float32 matmul)
measured in the same run, and the achieved fraction of that peak.

Example:
  .venv/bin/python bench/train_step.py --crop_sizes=129,513 \
      --variants=xception_65
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

# Allow `python bench/train_step.py` from the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from bench import model_step  # noqa: E402  (defines variants, crop_sizes, ...)
from datasets import build_synthetic_data  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_integer('train_steps', 25, 'Steps of each train_sup.py run.')
flags.DEFINE_integer('skip_steps', 5,
                     'Leading steps left out of the median (start-up).')

_SECONDS_PER_STEP = re.compile(r'step (\d+)/\d+ .* ([0-9.]+) s/step')


def run_train_sup(variant, crop, dataset_dir, logdir):
  """Median seconds per step of a short train_sup.py run."""
  command = [
      sys.executable, os.path.join(REPO_ROOT, 'train_sup.py'),
      '--model_variant=%s' % variant, '--atrous_rates=6', '--atrous_rates=12',
      '--atrous_rates=18', '--output_stride=16', '--decoder_output_stride=4',
      '--dataset=synthetic', '--dataset_dir=%s' % dataset_dir,
      '--train_split=train_aug', '--train_crop_size=%d,%d' % (crop, crop),
      '--num_clones=1', '--train_batch_size=%d' % FLAGS.batch_size,
      '--training_number_of_steps=%d' % FLAGS.train_steps, '--log_steps=1',
      '--save_interval_secs=100000', '--save_summaries_secs=100000',
      '--train_logdir=%s' % logdir]
  process = subprocess.run(command, capture_output=True, text=True,
                           cwd=REPO_ROOT)
  if process.returncode:
    raise RuntimeError('train_sup.py failed:\n%s' % process.stderr[-3000:])
  times = [float(m.group(2)) for m in _SECONDS_PER_STEP.finditer(
      process.stderr) if int(m.group(1)) > FLAGS.skip_steps]
  return float(np.median(times))


def training_gflop(variant, crop):
  with tf.Graph().as_default():
    return model_step.build_training_graph(variant, crop)[3]


def main(argv):
  if len(argv) > 1:
    raise InputError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  if FLAGS.train_steps <= FLAGS.skip_steps + 2:
    raise InputError('--train_steps must exceed --skip_steps + 2.')
  crops = [int(c) for c in FLAGS.crop_sizes]
  print('command: %s' % ' '.join(shlex.quote(a) for a in sys.argv))
  peak = model_step.matmul_gflops(FLAGS.matmul_size, FLAGS.warmup_steps,
                                  FLAGS.steps)
  print('float32 matmul n=%d: %.1f GFLOP/s (practical peak)' %
        (FLAGS.matmul_size, peak))
  print('%-13s %5s %5s %9s %9s %12s %9s %7s' % (
      'variant', 'crop', 'batch', 's/step', 'images/s', 'GFLOP/image',
      'GFLOP/s', '% peak'))
  with tempfile.TemporaryDirectory() as work:
    dataset_dir = os.path.join(work, 'data')
    build_synthetic_data.build(dataset_dir, num_train=32, num_val=4,
                               num_shards=1)
    for variant in FLAGS.variants:
      for crop in crops:
        logdir = tempfile.mkdtemp(dir=work)
        seconds = run_train_sup(variant, crop, dataset_dir, logdir)
        gflop = training_gflop(variant, crop)
        rate = gflop * FLAGS.batch_size / seconds
        print('%-13s %5d %5d %9.3f %9.2f %12.2f %9.1f %6.0f%%' % (
            variant, crop, FLAGS.batch_size, seconds,
            FLAGS.batch_size / seconds, gflop, rate, 100 * rate / peak))


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
