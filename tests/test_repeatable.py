"""The same training command gives the same numbers twice on one machine.

train_wss's inference-mode Grad-CAM pass reads the batch-norm moving
statistics that the train-mode passes of the same step update in place; the
original leaves that order to the scheduler. core/pseudoseg.py fixes it
(`read_moving_statistics_before_updates`), so two runs of one command agree on
every loss and every saved variable, bit for bit.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from deeplab.tf_compat import tf
from test_train_sup import SHORT_RUN
from test_train_sup import _logged_steps

STEPS = 4


def _command(dataset_dir, logdir):
  return [sys.executable, 'train_wss.py', *SHORT_RUN,
          '--model_variant=mobilenet_v2', '--output_stride=16',
          '--dataset=synthetic', '--dataset_dir=%s' % dataset_dir,
          '--train_logdir=%s' % logdir, '--num_clones=1',
          '--train_batch_size=2', '--training_number_of_steps=%d' % STEPS,
          '--batch_norm_decay=0.9', '--seed=3']


def _variables(logdir):
  reader = tf.train.load_checkpoint(str(logdir))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


@pytest.mark.e2e
def test_train_wss_twice_gives_identical_losses_and_variables(synthetic_dir,
                                                              tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  logdirs = [tmp_path / 'first', tmp_path / 'second']
  # Both at once: the same machine, the same load.
  processes = [subprocess.Popen(_command(synthetic_dir, logdir), cwd=REPO_ROOT,
                                env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for logdir in logdirs]
  outputs = [process.communicate(timeout=600)[1] for process in processes]
  for process, output in zip(processes, outputs):
    assert process.returncode == 0, output[-3000:]
  losses = [_logged_steps(output) for output in outputs]
  assert losses[0] and losses[0][-1][0] == STEPS
  assert losses[0] == losses[1]
  first, second = (_variables(logdir) for logdir in logdirs)
  assert sorted(first) == sorted(second)
  moving = [n for n in first if n.endswith('moving_mean')]
  assert moving, 'no batch-norm statistics saved'
  for name in first:
    np.testing.assert_array_equal(first[name], second[name], err_msg=name)
