"""pretrain.py: the backbone checkpoint that stands in for ImageNet."""
import os

import numpy as np
import pytest

from conftest import run_script
from core.train import pretraining
from deeplab.tf_compat import tf

TINY = ['--model_variant=mobilenet_v2', '--dataset=synthetic',
        '--train_crop_size=33,33', '--min_scale_factor=1',
        '--max_scale_factor=1', '--num_readers=1', '--log_steps=1']


def _checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


@pytest.fixture(scope='module')
def pretrained(synthetic_dir, tmp_path_factory):
  logdir = tmp_path_factory.mktemp('pretrain')
  process = run_script('pretrain.py', *TINY, '--dataset_dir=' + synthetic_dir,
                       '--train_logdir=%s' % logdir, '--train_batch_size=2',
                       '--training_number_of_steps=2')
  assert process.returncode == 0, process.stderr[-3000:]
  return str(logdir), process


def test_export_holds_only_model_variables_under_deeplab_names(pretrained):
  logdir, process = pretrained
  prefix = os.path.join(logdir, 'export', pretraining.EXPORT_NAME)
  assert prefix in process.stdout
  exported = _checkpoint(prefix)
  assert 'global_step' not in exported
  assert not [n for n in exported if 'Momentum' in n]
  assert all(n.startswith('MobilenetV2/') for n in exported)
  # The 8-way head of the synthetic classes and the batch-norm statistics.
  assert exported['MobilenetV2/logits/weights'].shape == (1, 1, 320, 8)
  assert 'MobilenetV2/Conv/BatchNorm/moving_mean' in exported
  # Same values as the training checkpoint it came from.
  trained = _checkpoint(tf.train.latest_checkpoint(logdir))
  for name, value in exported.items():
    np.testing.assert_array_equal(value, trained[name], err_msg=name)


def test_train_wss_starts_from_the_export(pretrained, synthetic_dir, tmp_path):
  """--tf_initial_checkpoint restores every backbone variable (names and
  shapes match); the classification head is trained from scratch."""
  logdir, _ = pretrained
  prefix = os.path.join(logdir, 'export', pretraining.EXPORT_NAME)
  run = tmp_path / 'wss'
  process = run_script('train_wss.py', *TINY, '--dataset_dir=' + synthetic_dir,
                       '--train_split=16_clean_3', '--num_clones=1',
                       '--train_batch_size=2', '--training_number_of_steps=1',
                       '--save_interval_secs=3600',
                       '--tf_initial_checkpoint=' + prefix,
                       '--train_logdir=%s' % run)
  assert process.returncode == 0, process.stderr[-3000:]
  exported = _checkpoint(prefix)
  initial = _checkpoint(str(run / 'model.ckpt-0'))
  backbone = [n for n in exported if not n.startswith('MobilenetV2/logits')]
  assert len(backbone) > 200
  for name in backbone:
    np.testing.assert_array_equal(initial[name], exported[name], err_msg=name)
  assert not np.array_equal(initial['MobilenetV2/logits/weights'],
                            exported['MobilenetV2/logits/weights'])


def test_rejects_an_initial_checkpoint(synthetic_dir, tmp_path):
  process = run_script('pretrain.py', *TINY, '--dataset_dir=' + synthetic_dir,
                       '--train_logdir=%s' % tmp_path,
                       '--tf_initial_checkpoint=/some/model.ckpt')
  assert process.returncode == 2
  assert 'error: pretrain.py starts from scratch' in process.stderr
  assert not os.listdir(str(tmp_path))
