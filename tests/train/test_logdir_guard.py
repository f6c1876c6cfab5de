"""core/train/logdir_guard.py checkpoint_step: the step the training loop
compares with --training_number_of_steps, read by the one reader of a
checkpoint's step (core/eval/checkpoints.py checkpoint_global_step). The lock
and the clean-up are tested in tests/test_reliability.py."""
import os

from core.train import logdir_guard
from deeplab.tf_compat import tf


def _save(logdir, name_step, global_step=None):
  """Saves `<logdir>/model.ckpt-<name_step>`, holding `global_step` unless
  None; returns its prefix."""
  with tf.Graph().as_default():
    tf.Variable(1.0, name='a')
    if global_step is not None:
      step = tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      if global_step is not None:
        sess.run(step.assign(global_step))
      return saver.save(sess, os.path.join(logdir, 'model.ckpt'),
                        global_step=name_step)


def test_checkpoint_step_of_the_latest_checkpoint(tmp_path):
  trained, converted = str(tmp_path / 'trained'), str(tmp_path / 'converted')
  assert logdir_guard.checkpoint_step(trained) is None  # no folder yet
  assert logdir_guard.checkpoint_step('') is None
  os.makedirs(trained)
  os.makedirs(converted)
  _save(trained, 3, global_step=3)
  latest = _save(trained, 5, global_step=1005)
  assert logdir_guard.checkpoint_step(trained) == (latest, 1005)
  # Without the variable, the step in the name.
  assert logdir_guard.checkpoint_step(converted) is None
  plain = _save(converted, 7)
  assert logdir_guard.checkpoint_step(converted) == (plain, 7)
