"""core/train/hooks.py ProgressHook: the training progress line, its speed and
ETA (from an injected clock), and the runs that fetch its values. The
fetches of a real session are tested in tests/test_speed.py."""
from core.train import hooks
from core.train import model_deploy
from deeplab.tf_compat import tf


def test_progress_hook_line_and_eta_from_the_speed_since_its_last_line(
    caplog):
  now = [0.]
  with tf.Graph().as_default():
    loss = tf.constant(0.5)
    train_op = model_deploy.TrainOp(loss, loss, tf.constant(0, tf.int64),
                                    micro_steps=(), hooks=[])
    hook = hooks.ProgressHook(train_op, tf.constant(0.01), last_step=10,
                              images_per_step=8, every_n=2,
                              clock=lambda: now[0])
  hook.begin()

  def run(step, at, values=None):
    """One session run that reaches `step` at time `at`; whether it fetched
    the logged values."""
    fetched = 'values' in hook.before_run(None).fetches
    now[0] = at
    results = {'step': step}
    if values is not None:
      results['values'] = values
    hook.after_run(None, tf.train.SessionRunValues(
        results=results, options=None, run_metadata=None))
    return fetched

  with caplog.at_level('INFO'):
    assert not run(1, 5.)  # graph set-up: only starts the clock
    assert run(2, 7., {'total_loss': 0.5, 'learning_rate': 0.01,
                       'scalars': {'calibration/ece_pseudo': 0.125}})
    assert not run(3, 8.)
    assert run(4, 10., {'total_loss': 0.25, 'learning_rate': 0.01,
                        'scalars': {}})
  # Step 2: 2 s for 1 step, 8 steps left; step 4: 3 s for 2 steps, 6 left.
  assert [r.getMessage() for r in caplog.records
          if r.getMessage().startswith('step ')] == [
      'step 2/10  total_loss=0.5000  calibration/ece_pseudo=0.1250  lr=0.01  '
      '2.00 s/step  4.00 images/s  ETA 0:00:16',
      'step 4/10  total_loss=0.2500  lr=0.01  1.50 s/step  5.33 images/s  '
      'ETA 0:00:09']
  assert hook.last_completed_step == 4
