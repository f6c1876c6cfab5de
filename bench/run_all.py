r"""Runs the speed benchmarks and writes one markdown table.

For every --scripts x --variants x --crop_sizes, the training script itself
runs on a small synthetic dataset (batch --batch_size, one clone, README model
flags: atrous rates 6/12/18, output stride 16, decoder stride 4, from
scratch) for --train_steps steps, logging every step. Reported per run:
  * s/step: median of the steps after --skip_steps (the progress lines);
  * images/s: images the step consumes (train_wss: labeled + unlabeled);
  * start-up: launch to the end of the first step (imports, graph build,
    initialisation, first step);
  * peak RSS: the child's maximum resident set, from the OS (wait4);
  * GFLOP/s: the FLOPs of the script's own graph (bench/graph_flops.py)
    per second, and that as a fraction of a large float32 matmul measured
    first in the same run (the practical peak).
Then the input pipeline (bench/input_pipeline.py: weak + strong views, crop
513) and, with --eval, eval.py at crop 513 single-scale and multi-scale +
flip on the last train_sup checkpoint of each variant. The 1-minute load
average is recorded with every row: the figures of a loaded machine are slow.

  .venv/bin/python bench/run_all.py --output=bench/results/speed.md
  .venv/bin/python bench/run_all.py --crop_sizes=129 --scripts=train_wss \
      --variants=xception_65 --eval=false --input_pipeline=false
"""
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

# Allow `python bench/run_all.py` from the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from bench import model_step  # noqa: E402  (defines variants, crop_sizes, ...)
from datasets import build_synthetic_data  # noqa: E402
from utils import atomic_write  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_list('scripts', ['train_sup', 'train_wss'], 'Training scripts.')
flags.DEFINE_integer('train_steps', 25, 'Steps of each training run.')
flags.DEFINE_integer('skip_steps', 5,
                     'Leading steps left out of the median (warm-up).')
flags.DEFINE_boolean('input_pipeline', True, 'Run bench/input_pipeline.py.')
flags.DEFINE_boolean('eval', True,
                     'Time eval.py at crop 513 on the train_sup checkpoints.')
flags.DEFINE_string('output', None, 'Markdown file to write (else stdout).')

MODEL_FLAGS = ['--atrous_rates=6', '--atrous_rates=12', '--atrous_rates=18',
               '--output_stride=16', '--decoder_output_stride=4']
_PROGRESS = re.compile(r'^I(\d{4}) (\d\d):(\d\d):(\d\d\.\d+) .*step (\d+)/\d+ '
                       r'.* ([0-9.]+) s/step', re.MULTILINE)
# eval.py's progress lines (utils/progress.py); the last one has the mean
# rate of the whole pass.
_EVAL_RATE = re.compile(r'\] eval \d+/\d+ images  ([0-9.]+) images/s')
_IMAGES_PER_SECOND = re.compile(r'([0-9.]+) images/s')


def run_measured(command):
  """Runs `command`; returns (stdout+stderr, launch time, peak RSS in GiB)."""
  launch = time.time()
  with tempfile.TemporaryFile('w+') as output:
    process = subprocess.Popen(command, stdout=output,
                               stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    output.seek(0)
    text = output.read()
  if process.returncode:
    raise RuntimeError('%s failed:\n%s' % (' '.join(command), text[-3000:]))
  # Linux reports ru_maxrss in KiB.
  return text, launch, usage.ru_maxrss / 2.0**20


def _seconds_of_day(match):
  return (int(match.group(2)) * 3600 + int(match.group(3)) * 60 +
          float(match.group(4)))


def step_timings(log, launch):
  """(median s/step after --skip_steps, start-up seconds) of a training log.

  The first progress line (step 2 with --log_steps=1) ends its step at its
  time stamp; its step began when the first step ended.
  """
  matches = list(_PROGRESS.finditer(log))
  if not matches:
    raise RuntimeError('no progress line in the log:\n%s' % log[-2000:])
  times = [float(m.group(6)) for m in matches
           if int(m.group(5)) > FLAGS.skip_steps]
  first = matches[0]
  launch_of_day = launch - time.mktime(
      datetime.date.fromtimestamp(launch).timetuple())
  startup = _seconds_of_day(first) - float(first.group(6)) - launch_of_day
  return float(np.median(times)), startup


def train_command(script, variant, crop, dataset_dir, logdir,
                  repo_root=REPO_ROOT):
  """The command line of one measured training run of `repo_root`'s
  `script`."""
  return [sys.executable, os.path.join(repo_root, script + '.py'),
          '--logtostderr', '--model_variant=%s' % variant] + MODEL_FLAGS + [
              '--dataset=synthetic', '--dataset_dir=%s' % dataset_dir,
              '--train_split=2_clean', '--train_split_cls=train_aug',
              '--train_crop_size=%d,%d' % (crop, crop), '--num_clones=1',
              '--train_batch_size=%d' % FLAGS.batch_size,
              '--training_number_of_steps=%d' % FLAGS.train_steps,
              '--log_steps=1', '--save_interval_secs=100000',
              '--save_summaries_secs=100000', '--train_logdir=%s' % logdir]


def graph_gflop(command):
  """GFLOP of one step of the training graph `command` would build."""
  script = os.path.basename(command[1])[:-len('.py')]
  flops_command = [sys.executable, os.path.join(REPO_ROOT, 'bench',
                                                'graph_flops.py'),
                   '--script=%s' % script, '--'] + [
                       a for a in command[2:]
                       if not a.startswith('--train_logdir')]
  text = run_measured(flops_command)[0]
  return float(re.search(r'GFLOP/step ([0-9.]+)', text).group(1))


def train_row(script, variant, crop, dataset_dir, work, peak):
  logdir = tempfile.mkdtemp(dir=work)
  command = train_command(script, variant, crop, dataset_dir, logdir)
  load = os.getloadavg()[0]
  log, launch, rss = run_measured(command)
  seconds, startup = step_timings(log, launch)
  gflop = graph_gflop(command)
  images = FLAGS.batch_size * (2 if script == 'train_wss' else 1)
  return ('| %s | %s | %d | %.3f | %.2f | %.0f | %.2f | %.1f | %.0f%% | %.2f '
          '|' % (script, variant, crop, seconds, images / seconds, startup,
                 rss, gflop / seconds, 100 * gflop / seconds / peak, load),
          logdir)


def input_pipeline_row():
  load = os.getloadavg()[0]
  text, _, rss = run_measured([sys.executable, os.path.join(
      REPO_ROOT, 'bench', 'input_pipeline.py'), '--num_batches=50'])
  rate = float(_IMAGES_PER_SECOND.findall(text)[-1])
  return '| input pipeline (weak+strong, crop 513, batch 4) | %.1f | %.2f | %.2f |' % (
      rate, rss, load)


def eval_rows(variant, dataset_dir, checkpoint_dir, work):
  rows = []
  for name, extra in (('single scale', []),
                      ('scales 0.5-1.75 + flip',
                       ['--eval_scales=%s' % s for s in
                        ('0.5', '0.75', '1.0', '1.25', '1.5', '1.75')] +
                       ['--add_flipped_images'])):
    load = os.getloadavg()[0]
    text, _, rss = run_measured(
        [sys.executable, os.path.join(REPO_ROOT, 'eval.py'), '--logtostderr',
         '--model_variant=%s' % variant] + MODEL_FLAGS + [
             '--dataset=synthetic', '--dataset_dir=%s' % dataset_dir,
             '--eval_split=val', '--eval_crop_size=513,513',
             '--checkpoint_dir=%s' % checkpoint_dir,
             '--eval_logdir=%s' % tempfile.mkdtemp(dir=work),
             '--max_number_of_evaluations=1'] + extra)
    rates = _EVAL_RATE.findall(text)
    rows.append('| eval.py %s, crop 513, %s | %s | %.2f | %.2f |' % (
        variant, name, rates[-1] if rates else 'n/a', rss, load))
  return rows


def machine():
  model = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as cpuinfo:
      model = re.search(r'model name\s*:\s*(.*)', cpuinfo.read()).group(1)
  except (OSError, AttributeError):
    pass
  return '%s, %d cores, Python %s' % (model, os.cpu_count(),
                                       platform.python_version())


def main(argv):
  if len(argv) > 1:
    raise InputError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  if FLAGS.train_steps <= FLAGS.skip_steps + 2:
    raise InputError('--train_steps must exceed --skip_steps + 2.')
  unknown = set(FLAGS.scripts) - {'train_sup', 'train_wss'}
  if unknown:
    raise InputError('--scripts: unknown %s (train_sup, train_wss).' %
                     ', '.join(sorted(unknown)))
  crops = [int(c) for c in FLAGS.crop_sizes]
  lines = ['# Speed benchmarks', '',
           '%s UTC, %s.' % (datetime.datetime.utcnow().strftime(
               '%Y-%m-%d %H:%M'), machine()),
           'Command: `%s`' % ' '.join(shlex.quote(a) for a in sys.argv), '']
  peak = model_step.matmul_gflops(FLAGS.matmul_size, FLAGS.warmup_steps,
                                  FLAGS.steps)
  lines += ['float32 matmul n=%d: %.1f GFLOP/s (practical peak).' % (
      FLAGS.matmul_size, peak), '',
            '| script | variant | crop | s/step | images/s | start-up s | '
            'peak RSS GiB | GFLOP/s | of peak | load (1 min) |',
            '|---|---|---|---|---|---|---|---|---|---|']
  eval_checkpoints = {}
  with tempfile.TemporaryDirectory() as work:
    dataset_dir = os.path.join(work, 'data')
    build_synthetic_data.build(dataset_dir, num_train=32, num_val=4,
                               num_shards=1)
    for script in FLAGS.scripts:
      for variant in FLAGS.variants:
        for crop in crops:
          row, logdir = train_row(script, variant, crop, dataset_dir, work,
                                  peak)
          print(row, flush=True)
          lines.append(row)
          if script == 'train_sup':
            eval_checkpoints[variant] = logdir
    other = ['', '| benchmark | images/s | peak RSS GiB | load (1 min) |',
             '|---|---|---|---|']
    if FLAGS.input_pipeline:
      other.append(input_pipeline_row())
      print(other[-1], flush=True)
    if FLAGS.eval:
      for variant, logdir in sorted(eval_checkpoints.items()):
        other += eval_rows(variant, dataset_dir, logdir, work)
        print('\n'.join(other[-2:]), flush=True)
    if len(other) > 3:
      lines += other
  text = '\n'.join(lines) + '\n'
  if FLAGS.output:
    atomic_write.write_text(FLAGS.output, text)
  print(text)


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
