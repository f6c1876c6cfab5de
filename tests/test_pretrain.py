"""pretrain.py: the backbone checkpoint that stands in for ImageNet.

conftest's `pretrained`: pretrain.py's main trains 2 steps in this process
(with the defaults the script sets at import), while pretrain.py as users run
it refuses an initial checkpoint (`pretrain_runs`). train_wss.py, as users
run it, then starts from the export; test_train_wss.py checks that run.
"""
import os

import numpy as np

from conftest import import_script
from deeplab.tf_compat import tf

# At collection, like the other entry scripts: its flags and defaults are
# known before any test runs (conftest.import_script).
import_script('pretrain')


def _checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


# The first test: it starts pretrain.py's runs (conftest.pretrain_runs).
def test_rejects_an_initial_checkpoint(pretrain_runs):
  tmp_path, run = pretrain_runs['rejects']
  process = run.result()
  assert process.returncode == 2
  assert 'error: pretrain.py starts from scratch' in process.stderr
  assert not os.listdir(str(tmp_path))


def test_export_holds_only_model_variables_under_deeplab_names(pretrained):
  logdir, prefix, printed = pretrained
  assert prefix in printed
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
