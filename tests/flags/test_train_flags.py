"""The deployment flags of core/flags/train_flags.py and the batch check of
core/flags/flag_checks.py (deployment itself: tests/train/
test_model_deploy.py)."""
import socket

import pytest
from absl.testing import flagsaver

from core.flags import flag_checks
from core.flags import train_flags
from utils.errors import InputError


def test_batch_must_divide_by_clones():
  with pytest.raises(InputError, match='multiple of --num_clones=3'):
    flag_checks.clone_batch_size(8, 3)
  assert flag_checks.clone_batch_size(8, 2) == 4


def test_accumulation_divides_the_batch_further():
  assert flag_checks.clone_batch_size(64, 4, 4) == 4
  with pytest.raises(InputError, match=r'--train_batch_size=64 must be a '
                     r'positive multiple of --num_clones x '
                     r'--num_accumulation_steps = 4 x 3 = 12'):
    flag_checks.clone_batch_size(64, 4, 3)


def _free_port():
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def test_clones_spread_over_the_devices_given():
  with flagsaver.flagsaver(num_clones=4, train_batch_size=8, num_devices=2,
                           clone_on_cpu=True, num_accumulation_steps=2):
    config = train_flags.deployment_from_flags()
  assert [config.clone_device(i) for i in range(4)] == [
      '/device:CPU:0', '/device:CPU:1', '/device:CPU:0', '/device:CPU:1']
  assert config.num_accumulation_steps == 2 and config.master == ''
  # No GPU on this machine: without --num_devices the clones use the CPU.
  with flagsaver.flagsaver(num_clones=2, train_batch_size=2):
    config = train_flags.deployment_from_flags()
  assert {config.clone_device(i) for i in range(2)} == {'/device:CPU:0'}


@pytest.mark.parametrize('flag_values, message', [
    (dict(job_name='chief'), r'--job_name=chief is not a job of the cluster'),
    (dict(job_name='worker', task=2), r'--task=2 must be in \[0, '
     r'--num_replicas=1\)'),
    (dict(job_name='ps', task=1), r'task 1 of --job_name=ps is out of range: '
     r'--ps_hosts lists 1 host\(s\), tasks 0..0'),
    (dict(job_name='worker', ps_hosts=['nohost']), r"--ps_hosts: 'nohost' is "
     r'not host:port'),
    (dict(job_name='worker', num_replicas=3), r'--num_replicas=3 disagrees '
     r'with the 1 host\(s\) of --worker_hosts'),
    (dict(job_name='worker'), r'cannot reach 127.0.0.1:\d+ within '
     r'--cluster_timeout_secs=1'),
    (dict(job_name='worker', sync_replicas=True), r'--sync_replicas needs '
     r'several workers'),
    (dict(num_clones=3, train_batch_size=8), r'multiple of --num_clones=3'),
])
def test_cluster_flags_are_checked(flag_values, message):
  # Nothing listens on the ps port: only the unreachable case gets that far.
  values = dict(ps_hosts=['127.0.0.1:%d' % _free_port()],
                worker_hosts=['127.0.0.1:%d' % _free_port()], num_clones=1,
                train_batch_size=2, cluster_timeout_secs=1)
  values.update(flag_values)
  with flagsaver.flagsaver(**values):
    with pytest.raises(InputError, match=message):
      train_flags.deployment_from_flags()
