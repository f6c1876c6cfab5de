"""bench/gain_table.py: per-seed table, gain, mean and spread, upper bound."""
import json
import os

from conftest import run_script


def _write_result(runs_dir, seed, run, miou, step=1000):
  directory = os.path.join(runs_dir, 'seed%d' % seed, 'eval_' + run)
  os.makedirs(directory)
  with open(os.path.join(directory, 'results.json'), 'w') as f:
    json.dump({'miou': miou, 'global_step': step}, f)


def test_table_gains_and_upper_bound(tmp_path):
  runs = str(tmp_path / 'runs')
  for seed, (sup, wss, weakly, full) in enumerate([(0.40, 0.45, 0.50, 0.70),
                                                   (0.42, 0.44, 0.48, 0.72)]):
    _write_result(runs, seed, 'sup', sup)
    _write_result(runs, seed, 'wss', wss)
    _write_result(runs, seed, 'weakly', weakly)
    _write_result(runs, seed, 'full', full)
  output = str(tmp_path / 'out' / 'table')
  setting = 'synthetic 128_clean, 1000 steps, batch 4'
  process = run_script('bench/gain_table.py', '--runs_dir=' + runs,
                       '--output=' + output, '--command=bash x.sh',
                       '--setting=' + setting)
  assert process.returncode == 0, process.stderr
  with open(output + '.md') as f:
    text = f.read()
  # Gains +5 and +2: mean 3.5, sample std sqrt(4.5) = 2.12.
  assert '| **PseudoSeg gain** | +5.00 | +2.00 | **+3.50 ± 2.12** |' in text
  # Weakly gains +10 and +6: mean 8, sample std sqrt(8) = 2.83.
  assert ('| **PseudoSeg weakly gain** | +10.00 | +6.00 | **+8.00 ± 2.83** |'
          in text)
  assert '| 40.00 | 42.00 | 41.00 ± 1.41 |' in text
  assert 'Setting: %s.' % setting in text
  with open(output + '.json') as f:
    record = json.load(f)
  assert set(record) == {'sup', 'wss', 'weakly', 'full', 'gain',
                         'gain_weakly', 'setting'}
  assert abs(record['weakly']['1'] - 48.0) < 1e-9
  assert abs(record['gain_weakly']['0'] - 10.0) < 1e-9
  assert record['setting'] == setting
  with open(output + '_upper_bound.json') as f:
    bound = json.load(f)
  assert abs(bound['miou_mean'] - 0.71) < 1e-9
  assert abs(bound['miou_std'] - 0.02 / 2 ** 0.5) < 1e-9
  assert bound['seeds'] == [0, 1] and bound['steps'] == 1000
  assert bound['setting'] == setting


def test_no_results_is_one_error_line(tmp_path):
  process = run_script('bench/gain_table.py', '--runs_dir=%s' % tmp_path,
                       '--output=%s' % (tmp_path / 'table'))
  assert process.returncode == 2
  assert 'error: no seed*/eval_*/results.json under --runs_dir' in process.stderr
  assert not os.path.exists(str(tmp_path / 'table.md'))
