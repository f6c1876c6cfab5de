"""Table of the PseudoSeg-vs-baseline benchmark from its eval results.

Reads <runs_dir>/seed<k>/eval_<run>/results.json for every seed and run
(`sup`: baseline on the labeled split, `wss`: PseudoSeg, `weakly`: PseudoSeg
with the image-level labels of the unlabeled images, `full`: baseline on all
of train_aug, the upper bound), and writes
  <output>.md    per-seed mIoU, gains over the baseline, mean and spread;
  <output>.json  the same numbers (percent) by run and seed, the gains
                 (`gain`: PseudoSeg, `gain_weakly`) and the setting;
  <output>_upper_bound.json  the full-label record analyze.py
                 --upper_bound_json reads (mIoU as fractions in [0, 1]),
                 with the --setting it was measured in.

Usage:
  python bench/gain_table.py --runs_dir=work_dirs/bench_gain \
    --output=bench/results/pseudoseg_vs_baseline --command="..." \
    --setting="synthetic 128_clean, 1000 steps, batch 4, crop 129, pretrain 600 steps"
"""
import datetime
import glob
import json
import os
import re
import sys

from absl import app
from absl import flags
import numpy as np

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from utils import atomic_write  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('runs_dir', None, 'Folder holding seed<k>/eval_<run>/.')
flags.DEFINE_string('output', None, 'Output path without extension.')
flags.DEFINE_string('command', '', 'The command that produced the runs.')
flags.DEFINE_string('machine', '', 'Machine and load, for the record.')
flags.DEFINE_string('setting', '',
                    'The training setting of the runs (bench/protocol.sh '
                    'setting_of), written into both JSON files; analyze.py '
                    'uses the upper bound only in the same setting.')

RUNS = (('sup', 'Baseline (train_sup), labeled split'),
        ('wss', 'PseudoSeg (train_wss), labeled + unlabeled'),
        ('weakly', 'PseudoSeg weakly (train_wss --weakly), labeled + '
         'image-level labels'),
        ('full', 'Full-label baseline (train_sup, all train_aug)'))
# (JSON key, table title, method run) of each gain over the baseline.
GAINS = (('gain', 'PseudoSeg gain', 'wss'),
         ('gain_weakly', 'PseudoSeg weakly gain', 'weakly'))


def read_results(runs_dir):
  """{run: {seed: (miou, step)}} from the eval results found."""
  found = {}
  for path in sorted(glob.glob(os.path.join(runs_dir, 'seed*', 'eval_*',
                                            'results.json'))):
    seed = int(re.search(r'seed(\d+)', path).group(1))
    run = os.path.basename(os.path.dirname(path))[len('eval_'):]
    with open(path) as f:
      record = json.load(f)
    found.setdefault(run, {})[seed] = (100.0 * record['miou'],
                                       record['global_step'])
  if not found:
    raise InputError('no seed*/eval_*/results.json under --runs_dir=%s' %
                     runs_dir)
  return found


def summarize(values):
  """Mean and sample standard deviation (0 for a single value)."""
  values = np.asarray(values, dtype=np.float64)
  spread = values.std(ddof=1) if values.size > 1 else 0.0
  return float(values.mean()), float(spread)


def gains(found, method='wss'):
  """{seed: `method` mIoU - baseline mIoU} for seeds with both runs."""
  sup, runs = found.get('sup', {}), found.get(method, {})
  return {seed: runs[seed][0] - sup[seed][0] for seed in sorted(sup)
          if seed in runs}


def mean_and_spread(values, number_format):
  """'mean ± std' over seeds, or 'value (1 seed)' when there is no spread."""
  mean, std = summarize(values)
  if len(values) == 1:
    return (number_format + ' (1 seed)') % mean
  return (number_format + ' ± %.2f') % (mean, std)


def upper_bound(full, command, date, setting):
  """analyze.py's --upper_bound_json record from {seed: (miou %, step)}."""
  mean, std = summarize([miou for miou, _ in full.values()])
  return {'miou_mean': mean / 100.0, 'miou_std': std / 100.0,
          'seeds': sorted(full), 'steps': max(step for _, step in full.values()),
          'train_split': 'train_aug', 'setting': setting, 'command': command,
          'date': date}


def markdown(found, command, machine, date, setting):
  seeds = sorted({seed for runs in found.values() for seed in runs})
  header = ['run'] + ['seed %d' % s for s in seeds] + ['mean ± std']
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '---|' * len(header)]
  for run, title in RUNS:
    if run not in found:
      continue
    cells = ['%.2f' % found[run][s][0] if s in found[run] else '–'
             for s in seeds]
    lines.append('| %s | %s | %s |' % (
        title, ' | '.join(cells),
        mean_and_spread([v[0] for v in found[run].values()], '%.2f')))
  for _, title, method in GAINS:
    per_seed = gains(found, method)
    if per_seed:
      cells = ['%+.2f' % per_seed[s] if s in per_seed else '–' for s in seeds]
      lines.append('| **%s** | %s | **%s** |' % (
          title, ' | '.join(cells),
          mean_and_spread(list(per_seed.values()), '%+.2f')))
  steps = sorted({v[1] for runs in found.values() for v in runs.values()})
  notes = ['', 'Val mIoU (%%) on the synthetic `val` split (300 images), '
           'last checkpoint (step %s); std is the sample standard deviation '
           'over seeds.' % ', '.join(str(s) for s in steps),
           'Date: %s.' % date]
  if setting:
    notes.append('Setting: %s.' % setting)
  if machine:
    notes.append('Machine: %s.' % machine)
  if command:
    notes.append('Command: `%s`' % command)
  return '\n'.join(lines + notes) + '\n'


def main(argv):
  if len(argv) > 1:
    raise InputError('unexpected arguments: %s' % ' '.join(argv[1:]))
  if not FLAGS.runs_dir or not FLAGS.output:
    raise InputError('--runs_dir and --output are required')
  found = read_results(FLAGS.runs_dir)
  date = datetime.date.today().isoformat()
  text = markdown(found, FLAGS.command, FLAGS.machine, date, FLAGS.setting)
  record = {run: {str(s): v[0] for s, v in runs.items()}
            for run, runs in found.items()}
  for key, _, method in GAINS:
    if method in found:
      record[key] = {str(s): g for s, g in gains(found, method).items()}
  record['setting'] = FLAGS.setting
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  atomic_write.write_text(FLAGS.output + '.md', text)
  atomic_write.write_text(FLAGS.output + '.json',
                          json.dumps(record, indent=2) + '\n')
  if 'full' in found:
    atomic_write.write_text(
        FLAGS.output + '_upper_bound.json',
        json.dumps(upper_bound(found['full'], FLAGS.command, date,
                               FLAGS.setting), indent=2) + '\n')
  print(text)


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
