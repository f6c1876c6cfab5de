"""utils/progress.py: the one progress line, its ETA, and that
bench/protocol.sh `progress_of` (the quick start's console line) reads the
line of every script the same way."""
import subprocess

import pytest

from conftest import REPO_ROOT
from utils import progress

# The prefix absl logging puts before a message.
_ABSL_PREFIX = 'I1203 10:00:00.000000 1402 file.py:42] '


@pytest.mark.parametrize('seconds, text', [
    (0, '0:00:00'), (0.4, '0:00:00'), (59.6, '0:01:00'), (3725, '1:02:05'),
    (36000, '10:00:00'), (-3, '0:00:00')])
def test_format_duration(seconds, text):
  assert progress.format_duration(seconds) == text


def test_progress_line_fields_and_eta():
  assert progress.progress_line(
      'step', 250, 1000, fields=['total_loss=0.5000', '', 'lr=0.01'],
      eta_seconds=187.2) == (
          'step 250/1000  total_loss=0.5000  lr=0.01  ETA 0:03:07')
  assert progress.progress_line('eval', 0, 8, 'images') == (
      'eval 0/8 images  ETA ?')


def _messages(caplog):
  return [record.getMessage() for record in caplog.records]


def test_item_progress_logs_first_then_every_n_seconds_then_the_total(caplog):
  now = [100.]
  counter = progress.ItemProgress('eval', 10, every_secs=10.,
                                  clock=lambda: now[0])
  with caplog.at_level('INFO'):
    for when, count in ((102., 2), (105., 3), (113., 1), (114., 4)):
      now[0] = when
      counter.add(count)
    counter.finish()  # the total was logged already
  # 2 in 2 s: 8 left at 1 image/s; 6 in 13 s: 4 left at 13/6 s each.
  assert _messages(caplog) == [
      'eval 2/10 images  1.00 images/s  ETA 0:00:08',
      'eval 6/10 images  0.46 images/s  ETA 0:00:09',
      'eval 10/10 images  0.71 images/s  ETA 0:00:00']
  assert counter.done == 10


def test_item_progress_finish_logs_a_short_pass(caplog):
  # A split holding fewer images than registered (the eval test fixture).
  now = [0.]
  counter = progress.ItemProgress('eval', 300, clock=lambda: now[0])
  with caplog.at_level('INFO'):
    now[0] = 1.
    counter.add(3)
    now[0] = 1.5
    counter.finish()
  assert _messages(caplog) == [
      'eval 3/300 images  3.00 images/s  ETA 0:01:39',
      'eval 3/300 images  2.00 images/s  ETA 0:00:00']
  caplog.clear()
  empty = progress.ItemProgress('vis', 5, clock=lambda: now[0])
  with caplog.at_level('INFO'):
    empty.finish()
  assert _messages(caplog) == ['vis 0/5 images  0.00 images/s  ETA 0:00:00']


def _progress_of(log_path):
  """bench/protocol.sh's `progress_of LOG`, run by bash."""
  return subprocess.run(
      ['bash', '-c', 'source bench/protocol.sh && progress_of "$1"', 'bash',
       str(log_path)], cwd=REPO_ROOT, capture_output=True, text=True,
      check=True).stdout


@pytest.mark.parametrize('line, shown', [
    (progress.progress_line(
        'step', 250, 1000, fields=[
            'total_loss=0.8123', 'losses/loss_cls=0.1000 calibration=0.0500',
            'lr=0.01', '0.25 s/step', '16.00 images/s'], eta_seconds=187.),
     'step 250/1000 ... ETA 0:03:07'),
    (progress.progress_line('eval', 300, 1449, 'images', ['2.10 images/s'],
                            547.), 'eval 300/1449 images ... ETA 0:09:07'),
    (progress.progress_line('predict', 3, 10, 'images', ['0.67 images/s'],
                            10.), 'predict 3/10 images ... ETA 0:00:10'),
    (progress.progress_line(
        'analysis', 2, 6, 'checkpoints',
        ['baseline step 250: val mIoU 41.0%, ECE fused 5.0%', '12.3 s'], 49.),
     'analysis 2/6 checkpoints ... ETA 0:00:49')])
def test_protocol_progress_of_reads_every_script_alike(tmp_path, line, shown):
  log = tmp_path / 'run.log'
  # Around it a plain log line and a line without an ETA yet: both skipped.
  log.write_text(''.join(_ABSL_PREFIX + text + '\n' for text in (
      'starting', line, progress.progress_line('eval', 0, 8, 'images'))))
  assert _progress_of(log) == shown
