"""Reliability under faults and bad input, checked in process.

Training runs here use `core.train.loop.train` on a tiny linear model (a second
or two each), so the logdir machinery (lock, orphans, finite checkpoints,
finished runs, data errors, graph/summaries, Ctrl-C) is tested without the
cost of DeepLab; docs/RELIABILITY.md maps every fault to its test.
"""
import glob
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from absl.testing import flagsaver

from conftest import import_script
from conftest import script_flags
from conftest import SignalsWhenCollected
from conftest import signal_this_thread
from conftest import train_options
from core.data import data_generator
from core.data import registry
from core.eval import checkpoints
from core.eval import results_io
from core.flags import flag_checks
from core.flags import model_flags
from core.train import hooks
from core.train import logdir_guard
from core.train import loop
from core.train import model_deploy
from datasets import build_data
from deeplab import common
from deeplab import model
from deeplab import train_utils
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils import errors
from utils.errors import InputError
from utils.errors import TrainingError

eval_script = import_script('eval')

_INPUTS = np.random.RandomState(0).randn(4, 3).astype(np.float32)
_TARGETS = np.random.RandomState(1).randn(4, 2).astype(np.float32)

# The tiny runs log every step and save a checkpoint at the end only.
_TRAIN_OPTIONS = dict(log_steps=1, save_interval_secs=3600,
                      optimization={'base_learning_rate': 0.01})


def _linear_clone(index, nan_moving_variance_from_step=None, samples=None):
  """A linear model (+ a BN-like statistic that may turn NaN) with an MSE loss.

  With `samples` (a data_generator batch) the loss also reads the images, so
  the input pipeline runs with every step.
  """
  del index
  weights = slim.model_variable('linear/weights', shape=[3, 2],
                                initializer=tf.ones_initializer())
  loss = tf.losses.mean_squared_error(tf.constant(_TARGETS),
                                      tf.matmul(tf.constant(_INPUTS), weights))
  if samples is not None:
    tf.losses.add_loss(1e-3 * weights[0, 0] * tf.reduce_mean(
        tf.cast(samples[common.IMAGE], tf.float32)))
  if nan_moving_variance_from_step is not None:
    # Like batch norm's moving variance: updated each step, unused by the loss.
    moving = slim.model_variable('bn/moving_variance', shape=[2],
                                 initializer=tf.ones_initializer(),
                                 trainable=False)
    step = tf.train.get_global_step()
    value = tf.where(step + 1 >= nan_moving_variance_from_step,
                     tf.fill([2], np.nan), tf.ones([2]))
    tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, moving.assign(value))


def _train(logdir, steps, clone_fn=_linear_clone, datasets=()):
  """train() in a fresh graph with the tiny model; returns nothing."""
  with tf.Graph().as_default():
    config = model_deploy.DeploymentConfig(num_clones=1)
    extra = {'datasets': datasets} if datasets else {}
    loop.train(config, train_options(logdir, steps, **_TRAIN_OPTIONS),
               clone_fn, images_per_step=1, **extra)


def _registered_steps(logdir):
  state = tf.train.get_checkpoint_state(str(logdir))
  if state is None:
    return []
  return sorted(int(p.rsplit('-', 1)[1])
                for p in state.all_model_checkpoint_paths)


def _events(logdir):
  """(number of graph/meta-graph events, set of summary tags) per events file,
  oldest file first."""
  result = []
  for path in sorted(glob.glob(os.path.join(str(logdir), 'events.out.*')),
                     key=os.path.getmtime):
    graphs, tags = 0, set()
    for event in tf.compat.v1.train.summary_iterator(path):
      graphs += event.HasField('graph_def') + event.HasField('meta_graph_def')
      tags.update(value.tag for value in event.summary.value)
    result.append((graphs, tags))
  return result


@pytest.fixture(scope='module')
def trained_logdir(tmp_path_factory):
  """The tiny model trained for 3 steps (copy it before changing it)."""
  logdir = tmp_path_factory.mktemp('rel_trained') / 'train'
  _train(logdir, 3)
  return logdir


def _copy(logdir, tmp_path):
  target = tmp_path / 'train'
  shutil.copytree(str(logdir), str(target))
  return target


def _error_lines(stderr):
  """The `error: …` lines run_reporting_errors printed (absl may log the
  error too)."""
  return [line for line in stderr.splitlines() if line.startswith('error: ')]


# ----------------------------------------------------------------------------
# 1. eval.py's watcher and a checkpoint rotated away.


def _save_steps(directory, steps, value=1.0):
  """Checkpoints model.ckpt-<step> of one variable `w` (= value) + global step."""
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    tf.get_variable('w', initializer=tf.constant([value, value]))
    saver = tf.train.Saver(max_to_keep=None)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for step in steps:
        sess.run(global_step.assign(step))
        saver.save(sess, os.path.join(str(directory), 'model.ckpt'),
                   global_step=step)


def _restore_graph():
  graph = tf.Graph()
  with graph.as_default():
    variable = tf.get_variable('w', shape=[2])
  return graph, variable


def test_watcher_skips_a_checkpoint_rotated_away_and_goes_on(tmp_path, caplog,
                                                            monkeypatch):
  _save_steps(tmp_path, [1])
  snapshot = checkpoints.snapshot_checkpoint

  def rotated_before_it_is_read(path):
    if path.endswith('-1'):
      # Training rotates step 1 away (and saves step 2) before it is read.
      _save_steps(tmp_path, [2])
      for name in glob.glob(path + '.*'):
        os.remove(name)
    return snapshot(path, settle_secs=0)

  monkeypatch.setattr(checkpoints, 'snapshot_checkpoint',
                      rotated_before_it_is_read)
  evaluated = []
  eval_script.evaluate_checkpoints(
      str(tmp_path), 1, 1, lambda snapshot: evaluated.append(
          snapshot.global_step))
  # The vanished checkpoint did not use up --max_number_of_evaluations=1.
  assert evaluated == [2]
  assert any('model.ckpt-1 was deleted before it could be read' in r.message
             for r in caplog.records)


def test_watcher_stops_on_sigterm_like_ctrl_c(tmp_path, capsys,
                                              stray_signals_fail):
  _save_steps(tmp_path, [1])
  evaluated = []

  def evaluate(snapshot):
    signal_this_thread(signal.SIGTERM)
    evaluated.append(snapshot.global_step)

  def main(argv):
    eval_script.evaluate_checkpoints(str(tmp_path), 1, 0, evaluate)

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == 143
  assert capsys.readouterr().err.strip().splitlines() == ['terminated']
  assert evaluated == []  # stopped where the signal came
  assert signal.getsignal(signal.SIGTERM) is stray_signals_fail


def test_watcher_stops_on_a_sigterm_its_finalizer_swallowed(
    tmp_path, capsys, stray_signals_fail):
  _save_steps(tmp_path, [1])
  evaluated = []

  def evaluate(snapshot):
    evaluated.append(snapshot.global_step)
    # Collected here: the raise inside it is lost.
    SignalsWhenCollected(signal.SIGTERM)
    _save_steps(tmp_path, [2])  # without the stop, the watcher evaluates it

  def main(argv):
    eval_script.evaluate_checkpoints(str(tmp_path), 0, 2, evaluate)

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == 143
  assert evaluated == [1]
  assert capsys.readouterr().err.strip().splitlines() == ['terminated']
  assert signal.getsignal(signal.SIGTERM) is stray_signals_fail


def test_partial_checkpoints_are_never_picked(tmp_path):
  _save_steps(tmp_path, [1, 3])
  complete = str(tmp_path / 'model.ckpt-3')
  # What a save killed before its index leaves (data only, temporaries), and
  # an index whose data file is gone (deleted or copied by halves).
  (tmp_path / 'model.ckpt-5.data-00000-of-00001').write_bytes(b'partial')
  (tmp_path / 'model.ckpt-6.data-00000-of-00001.tempstate42').write_bytes(b'')
  (tmp_path / 'model.ckpt-7_temp').mkdir()
  shutil.copy(complete + '.index', str(tmp_path / 'model.ckpt-8.index'))
  assert checkpoint_paths.latest_checkpoint(str(tmp_path)) == complete
  # The `checkpoint` state file naming files that are gone: the newest
  # complete checkpoint is taken, not the bare index of step 8.
  tf.train.update_checkpoint_state(
      str(tmp_path), str(tmp_path / 'model.ckpt-9'),
      [complete, str(tmp_path / 'model.ckpt-9')])
  assert checkpoint_paths.latest_checkpoint(str(tmp_path)) == complete
  evaluated = []
  eval_script.evaluate_checkpoints(
      str(tmp_path), 1, 1,
      lambda snapshot: evaluated.append((snapshot.path, snapshot.global_step)))
  assert evaluated == [(complete, 3)]
  # Named directly, the bare index is refused in one line.
  with pytest.raises(InputError, match='model.ckpt-8 is neither a directory '
                     'nor a checkpoint prefix'):
    next(checkpoints.checkpoints_to_evaluate(
        str(tmp_path / 'model.ckpt-8'), 1, 1))


def test_snapshot_holds_step_and_weights_once_the_files_are_gone(tmp_path):
  _save_steps(tmp_path, [5], value=3.0)
  prefix = str(tmp_path / 'model.ckpt-5')
  snapshot = checkpoints.snapshot_checkpoint(prefix)
  for name in glob.glob(prefix + '.*'):
    os.remove(name)  # rotated away before the model was even built
  graph, variable = _restore_graph()
  with graph.as_default(), tf.Session() as sess:
    assert checkpoints.restore_snapshot(sess, snapshot, [variable]) == []
    np.testing.assert_array_equal(sess.run(variable), [3.0, 3.0])
  assert snapshot.global_step == 5


# ----------------------------------------------------------------------------
# 2. No non-finite checkpoint is written; eval refuses one.


def test_non_finite_batch_norm_state_is_never_saved(tmp_path):
  logdir = tmp_path / 'train'
  with pytest.raises(TrainingError) as raised:
    _train(logdir, 3, lambda i: _linear_clone(i, nan_moving_variance_from_step=2))
  message = str(raised.value)
  # The loss stays finite; the final save at step 3 is refused.
  assert 'NaN or Inf at step 3' in message and 'bn/moving_variance' in message
  assert 'model.ckpt-0' in message
  assert _registered_steps(logdir) == [0]
  assert not glob.glob(str(logdir / 'model.ckpt-3*'))
  reader = tf.train.load_checkpoint(str(logdir / 'model.ckpt-0'))
  assert np.isfinite(reader.get_tensor('bn/moving_variance')).all()


def test_nan_loss_stops_with_one_line_and_keeps_the_checkpoint(tmp_path,
                                                              capsys):
  """A loss that is NaN from the first step (train_sup.py with
  --label_weights=nan: test_train_sup.py's slow test) stops training with one
  line, exit code 1, and the checkpoint of step 0 stays the last."""
  logdir = tmp_path / 'train'

  def nan_loss_clone(index):
    _linear_clone(index)
    tf.losses.add_loss(tf.constant(np.nan, tf.float32))

  def main(argv):
    _train(logdir, 3, nan_loss_clone)

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == 1
  err = capsys.readouterr().err
  assert _error_lines(err) == [
      'error: The loss became NaN or Inf in the first step; training stopped. '
      'The last good checkpoint is %s.' % (logdir / 'model.ckpt-0')]
  assert 'Traceback' not in err
  assert _registered_steps(logdir) == [0]


def test_restore_refuses_a_non_finite_checkpoint(tmp_path):
  _save_steps(tmp_path, [4], value=np.nan)
  prefix = str(tmp_path / 'model.ckpt-4')
  graph, variable = _restore_graph()
  message = (r'model.ckpt-4 holds NaN or Inf in 1 variable\(s\) \(e.g. w\): '
             r'training diverged')
  with graph.as_default(), tf.Session() as sess:
    with pytest.raises(InputError, match=message):  # vis.py's path
      checkpoints.restore_variables(sess, prefix, [variable])
    with pytest.raises(InputError, match=message):  # eval.py's path
      checkpoints.restore_snapshot(
          sess, checkpoints.snapshot_checkpoint(prefix), [variable])


def test_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(
    trained_logdir, tmp_path, monkeypatch):
  logdir = _copy(trained_logdir, tmp_path)
  save = tf.train.Saver.save

  def disk_full_at_step_5(self, sess, save_path, global_step=None, **kwargs):
    if global_step == 5:
      raise tf.errors.ResourceExhaustedError(
          None, None, '%s-5.data-00000-of-00001.tempstate1; No space left on '
          'device' % save_path)
    return save(self, sess, save_path, global_step=global_step, **kwargs)

  monkeypatch.setattr(tf.train.Saver, 'save', disk_full_at_step_5)
  with pytest.raises(TrainingError, match=r'disk of --train_logdir .* is full '
                     r'.*last complete checkpoint is .*model.ckpt-3: free '
                     r'space and rerun'):
    _train(logdir, 5)
  assert _registered_steps(logdir) == [0, 3]


# ----------------------------------------------------------------------------
# 3. A finished training does nothing.


def test_rerun_of_a_finished_training_does_nothing(trained_logdir, tmp_path,
                                                   caplog):
  logdir = _copy(trained_logdir, tmp_path)
  before = sorted(os.listdir(str(logdir)))
  caplog.set_level(logging.INFO)
  _train(logdir, 3)
  assert sorted(os.listdir(str(logdir))) == before
  assert _registered_steps(logdir) == [0, 3]
  assert any('Training already finished' in r.message and 'nothing to do' in
             r.message for r in caplog.records)


# ----------------------------------------------------------------------------
# 4. A builder killed mid-write; the reader takes only shard names.


def _examples(count, label_value=1):
  for index in range(count):
    image = np.full((8, 8, 3), 10 * index, dtype=np.uint8)
    label = np.full((8, 8), label_value, dtype=np.uint8)
    yield build_data.example_from_arrays('img%d' % index, image, label, 81)


def test_builder_temporaries_never_match_the_split_pattern(tmp_path):
  seen = []

  def watching():
    for example in _examples(3):
      seen.append(sorted(os.listdir(str(tmp_path))))
      yield example

  build_data.write_split(str(tmp_path), 'val', watching(), 3, num_shards=1)
  # While the shard was being written (a kill here leaves the temporary):
  assert seen[-1] == ['.val-00000-of-00001.tfrecord.tmp']
  assert not glob.glob(str(tmp_path / 'val-*.tmp'))


def test_reader_ignores_a_leftover_temporary_and_builder_removes_it(tmp_path):
  out = str(tmp_path)
  build_data.write_split(out, 'val', _examples(2), 2, num_shards=1)
  # What the old builder left when killed, and what the new one leaves.
  for name in ('val-00000-of-00001.tfrecord.tmp',
               '.val-00000-of-00001.tfrecord.tmp'):
    with open(os.path.join(out, name), 'wb') as f:
      f.write(b'\x00partial')
  dataset = data_generator.Dataset('coco', 'val', out, 1, [9, 9])
  assert [os.path.basename(f) for f in dataset.files] == [
      'val-00000-of-00001.tfrecord']
  assert registry.check_split('coco', 'val', out).num_images == 5000
  build_data.write_split(out, 'val', _examples(2), 2, num_shards=1)
  assert sorted(os.listdir(out)) == ['val-00000-of-00001.tfrecord']


# ----------------------------------------------------------------------------
# 5 and 6. Corrupt records and labels outside the class range.


def _data_run(logdir, dataset_dir, dataset_name, split):
  """Trains 2 steps reading `split`; returns the InputError raised."""
  with tf.Graph().as_default():
    dataset = data_generator.Dataset(
        dataset_name, split, dataset_dir, 1, [9, 9], is_training=True,
        should_shuffle=True,
        should_repeat=True, seed=0)
    samples = dataset.get_one_shot_iterator().get_next()
    with pytest.raises(InputError) as raised:
      loop.train(model_deploy.DeploymentConfig(num_clones=1),
                 train_options(logdir, 2, **_TRAIN_OPTIONS),
                 lambda i: _linear_clone(i, samples=samples), 1,
                 datasets=[dataset])
  return str(raised.value)


@pytest.mark.parametrize('damage, reason', [
    ('truncate', r'truncated record at \d+'),
    ('garbage', r'corrupted record at 0'),
])
def test_corrupt_tfrecord_is_one_line_naming_the_file(tmp_path, damage, reason):
  data = str(tmp_path / 'data')
  path = build_data.write_split(data, 'val', _examples(3), 3, num_shards=1)[0]
  content = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(content[:-40] if damage == 'truncate' else b'not a tfrecord' * 9)
  logdir = tmp_path / 'fresh'
  message = _data_run(logdir, data, 'coco', 'val')
  assert re.search(r'corrupt tfrecord %s: .*%s' % (re.escape(path), reason),
                   message), message
  # Nothing written into the fresh logdir (it did not exist before).
  assert not logdir.exists()


def test_training_labels_outside_the_class_range_name_dataset_and_flag(
    tmp_path):
  data = str(tmp_path / 'data')
  build_data.write_split(data, 'train', _examples(2, label_value=34), 2,
                         num_shards=1)
  logdir = tmp_path / 'train'
  logdir.mkdir()
  (logdir / 'keep.txt').write_text('existing')
  message = _data_run(logdir, data, 'pascal_voc_seg', 'train')
  assert re.search(r'image img\d of split train has label value 34, which is '
                   r'no class of --dataset=pascal_voc_seg \(0..20, ignore '
                   r'label 255\).*pass the matching --dataset.*coco', message)
  assert sorted(os.listdir(str(logdir))) == ['keep.txt']


# ----------------------------------------------------------------------------
# 6b. eval.py, run in process, on bad labels and another model's checkpoint.

# The `synthetic` dataset: background + 8 classes.
_SYNTHETIC_CLASSES = 9
_EVAL_CROP = 33


def _eval_flags(dataset_dir, checkpoint_dir, eval_logdir):
  """eval.py's flags for one evaluation of the light model on split `val`."""
  return dict(dataset='synthetic', dataset_dir=str(dataset_dir),
              eval_split='val', checkpoint_dir=str(checkpoint_dir),
              eval_logdir=str(eval_logdir),
              eval_crop_size=[str(_EVAL_CROP)] * 2,
              model_variant='mobilenet_v2', output_stride=16,
              max_number_of_evaluations=1)


def _deeplab_checkpoint(directory, step):
  """Saves a DeepLab checkpoint of the model the current flags describe
  (run under flagsaver with _eval_flags); returns its prefix."""
  os.makedirs(directory, exist_ok=True)
  with tf.Graph().as_default():
    options = model_flags.model_options_from_flags(_SYNTHETIC_CLASSES,
                                                   [_EVAL_CROP] * 2)
    model.predict_labels(tf.zeros([1, _EVAL_CROP, _EVAL_CROP, 3]), options)
    global_step = tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(global_step.assign(step))
      return tf.train.Saver().save(
          sess, os.path.join(directory, 'model.ckpt'), global_step=step)


def _run_eval(flag_values):
  """eval.py's main under `flag_values` through run_reporting_errors;
  returns its exit code."""
  with script_flags(eval_script), flagsaver.flagsaver(**flag_values):
    with pytest.raises(SystemExit) as exited:
      errors.run_reporting_errors(eval_script.main, [])
  return exited.value.code


def test_eval_labels_outside_the_class_range_are_one_line_and_exit_2(
    tmp_path, capsys):
  data = tmp_path / 'data'
  build_data.write_split(str(data), 'val', _examples(2, label_value=34), 2,
                         num_shards=1)
  flag_values = _eval_flags(data, tmp_path / 'train', tmp_path / 'eval')
  with flagsaver.flagsaver(**flag_values):
    _deeplab_checkpoint(str(tmp_path / 'train'), 5)
  assert _run_eval(flag_values) == 2
  lines = _error_lines(capsys.readouterr().err)
  # One batch of one 8x8 image: 64 pixels of value 34, no class of 0..8.
  assert len(lines) == 1 and re.fullmatch(
      r'error: 64 label pixels of image\(s\) img[01] in split val are '
      r'neither a class id 0\.\.8 of dataset synthetic nor its ignore label: '
      r'the labels must be class-index PNGs of this dataset', lines[0]), lines
  assert not (tmp_path / 'eval').exists()


def test_eval_of_another_models_checkpoint_is_one_line_and_exit_2(
    trained_logdir, tmp_path, capsys):
  """The tiny linear model's checkpoint given to eval.py's DeepLab."""
  data = tmp_path / 'data'
  build_data.write_split(str(data), 'val', _examples(2), 2, num_shards=1)
  flag_values = _eval_flags(data, trained_logdir, tmp_path / 'eval')
  assert _run_eval(flag_values) == 2
  assert _error_lines(capsys.readouterr().err) == [
      'error: checkpoint %s holds none of the model variables (wrong '
      '--model_variant?)' % (trained_logdir / 'model.ckpt-3')]
  assert not (tmp_path / 'eval').exists()


# ----------------------------------------------------------------------------
# 7. One run per train_logdir.

_HOLDER = '''
import fcntl, os, sys, time
handle = open(sys.argv[1], 'a+')
fcntl.flock(handle, fcntl.LOCK_EX)
handle.write('%d otherhost\\n' % os.getpid()); handle.flush()
print('locked', flush=True)
time.sleep(60)
'''


@pytest.fixture
def lock_holder(tmp_path):
  """A live process holding the lock of tmp_path/train (as a running trainer)."""
  logdir = tmp_path / 'train'
  logdir.mkdir()
  holder = subprocess.Popen(
      [sys.executable, '-c', _HOLDER, str(logdir / 'train.lock')],
      stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'locked'
  yield logdir, holder
  if holder.poll() is None:
    holder.kill()
  holder.wait()


def test_second_run_on_a_locked_logdir_names_the_holder(lock_holder):
  logdir, holder = lock_holder
  before = sorted(os.listdir(str(logdir)))
  with pytest.raises(InputError) as raised:
    _train(logdir, 2)
  assert ('is in use by another training run (pid %d on host otherhost'
          % holder.pid) in str(raised.value)
  assert sorted(os.listdir(str(logdir))) == before


@pytest.mark.parametrize('where, problem', [
    ('file', 'exists and is not a directory.'),
    ('under a file', 'cannot be created (Not a directory).'),
])
def test_uncreatable_logdir_is_one_line_and_exit_2(tmp_path, capsys, where,
                                                   problem):
  """The tests run as root, who may write into any folder: a file where the
  logdir, or a folder above it, should be is what makes it impossible."""
  blocker = tmp_path / 'notes.txt'
  blocker.write_text('mine')
  logdir = blocker if where == 'file' else blocker / 'train'

  def main(argv):
    _train(logdir, 2)

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == 2
  assert _error_lines(capsys.readouterr().err) == [
      'error: --train_logdir %s %s' % (logdir, problem)]
  assert os.listdir(str(tmp_path)) == ['notes.txt']
  assert blocker.read_text() == 'mine'


def test_lock_of_a_killed_run_does_not_block_a_restart(lock_holder):
  logdir, holder = lock_holder
  os.kill(holder.pid, signal.SIGKILL)
  holder.wait()
  lock = logdir_guard.LogdirLock(str(logdir)).acquire()
  with open(lock.path) as f:
    assert f.read().split()[0] == str(os.getpid())
  lock.release()
  assert not os.path.exists(lock.path)


# ----------------------------------------------------------------------------
# 8. The hint for a checkpoint of another backbone.


def test_backbone_mismatch_points_at_model_variant(tmp_path):
  prefix = str(tmp_path / 'mobilenet.ckpt')
  with tf.Graph().as_default():
    tf.get_variable('MobilenetV2/Conv/weights', shape=[3, 3, 3, 32])
    tf.get_variable('aspp0/weights', shape=[1, 1, 320, 256])
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver().save(sess, prefix)
  with tf.Graph().as_default():
    tf.get_variable('xception_65/entry_flow/conv1_1/weights',
                    shape=[3, 3, 3, 32])
    tf.get_variable('aspp0/weights', shape=[1, 1, 2048, 256])
    with pytest.raises(InputError) as raised:
      train_utils.get_model_init_fn(None, prefix, True,
                                    ['logits', 'aspp', 'decoder'])
  message = str(raised.value)
  assert 'aspp0/weights' in message and '--model_variant' in message
  assert 'MobilenetV2/Conv/weights' in message
  assert '--initialize_last_layer' not in message


# ----------------------------------------------------------------------------
# 9. Housekeeping.


def test_orphans_of_killed_runs_are_removed_on_restart(trained_logdir,
                                                       tmp_path):
  logdir = _copy(trained_logdir, tmp_path)
  # A save killed mid-write, and one killed before the state file named it.
  orphans = ['model.ckpt-3.data-00000-of-00001.tempstate1234567',
             'model.ckpt-3.meta.tmp4d2a1f', 'model.ckpt-7.index',
             'model.ckpt-7.data-00000-of-00001']
  for name in orphans:
    (logdir / name).write_bytes(b'')
  (logdir / 'model.ckpt-9_temp').mkdir()
  (logdir / 'notes.txt').write_text('mine')
  before = set(os.listdir(str(logdir)))
  _train(logdir, 4)  # the restart
  after = set(os.listdir(str(logdir)))
  assert before - after == set(orphans + ['model.ckpt-9_temp'])
  assert {n for n in after - before if not n.startswith('events')} == {
      'model.ckpt-4.index', 'model.ckpt-4.data-00000-of-00001',
      'model.ckpt-4.meta'}
  assert _registered_steps(logdir) == [0, 3, 4]


def test_graph_is_written_once_per_logdir(trained_logdir, tmp_path):
  logdir = _copy(trained_logdir, tmp_path)
  _train(logdir, 5)
  events = _events(logdir)
  assert [graphs for graphs, _ in events] == [2, 0]  # graph + meta graph once
  assert _registered_steps(logdir) == [0, 3, 5]


def test_summary_tags_carry_no_suffix(trained_logdir):
  (_, tags), = _events(trained_logdir)
  assert {'learning_rate', 'total_loss', 'linear/weights'} <= tags
  assert not [tag for tag in tags if re.search(r'_\d+$', tag)]


def test_results_json_is_world_readable(tmp_path, umask_022):
  path = results_io.write_results(str(tmp_path), {
      'checkpoint': 'x/model.ckpt-3', 'global_step': 3})
  for name in (path, str(tmp_path / 'results.json')):
    assert os.stat(name).st_mode & 0o777 == umask_022


def test_ctrl_c_saves_then_reports_one_line(trained_logdir, tmp_path,
                                            monkeypatch, capsys):
  logdir = _copy(trained_logdir, tmp_path)
  after_run = hooks.ProgressHook.after_run

  def interrupted_at_step_5(self, run_context, run_values):
    after_run(self, run_context, run_values)
    if run_values.results['step'] == 5:
      raise KeyboardInterrupt()

  monkeypatch.setattr(hooks.ProgressHook, 'after_run', interrupted_at_step_5)

  def main(argv):
    _train(logdir, 100)

  try:
    with pytest.raises(SystemExit) as exited:
      errors.run_reporting_errors(main, [])
  except KeyboardInterrupt:
    pytest.fail('KeyboardInterrupt escaped: the user sees a traceback')
  assert exited.value.code == 130
  lines = capsys.readouterr().err.strip().splitlines()
  assert lines == ['interrupted: training stopped after step 5; saved %s' %
                   (logdir / 'model.ckpt-5')]
  assert _registered_steps(logdir) == [0, 3, 5]
  assert not (logdir / logdir_guard.LOCK_FILE).exists()


@pytest.mark.parametrize('where', ['between bytecodes', 'in a finalizer'])
def test_sigterm_saves_then_reports_one_line_like_ctrl_c(
    where, trained_logdir, tmp_path, monkeypatch, capsys,
    stray_signals_fail):
  logdir = _copy(trained_logdir, tmp_path)
  after_run = hooks.ProgressHook.after_run

  def terminated_at_step_5(self, run_context, run_values):
    after_run(self, run_context, run_values)
    if run_values.results['step'] == 5:
      if where == 'in a finalizer':
        # Swallowed: the loop's next check stops it.
        SignalsWhenCollected(signal.SIGTERM)
      else:
        signal_this_thread(signal.SIGTERM)

  monkeypatch.setattr(hooks.ProgressHook, 'after_run', terminated_at_step_5)

  def main(argv):
    _train(logdir, 100)

  with pytest.raises(SystemExit) as exited:
    errors.run_reporting_errors(main, [])
  assert exited.value.code == 143
  lines = capsys.readouterr().err.strip().splitlines()
  assert lines == ['terminated: training stopped after step 5; saved %s' %
                   (logdir / 'model.ckpt-5')]
  assert _registered_steps(logdir) == [0, 3, 5]
  assert not (logdir / logdir_guard.LOCK_FILE).exists()
  # The training loop put the previous handler back.
  assert signal.getsignal(signal.SIGTERM) is stray_signals_fail


# ----------------------------------------------------------------------------
# Also: the --num_clones default.


def test_num_clones_message_names_both_flags():
  with pytest.raises(InputError, match=r'--train_batch_size=2 must be a '
                     r'positive multiple of --num_clones=16; lower both '
                     r'together.*--num_clones=1 --train_batch_size=2'):
    flag_checks.clone_batch_size(2, 16)


class _CountingCreator(tf.train.SessionCreator):
  """A session creator whose sessions are the numbers 1, 2, ..."""

  def __init__(self):
    self.made = 0

  def create_session(self):
    self.made += 1
    return self.made


def test_a_lost_cluster_task_is_awaited_at_most_the_timeout(tmp_path):
  """The sessions a cluster task makes after its first (MonitoredSession
  makes one after UnavailableError: a parameter server or the chief was
  lost) wait for the lost hosts, and end training with one line if they do
  not answer within --cluster_timeout_secs (test_cluster.py: slow, a real
  parameter server killed)."""
  with socket.socket() as listening, socket.socket() as closed:
    listening.bind(('127.0.0.1', 0))
    listening.listen()
    closed.bind(('127.0.0.1', 0))  # bound, not listening: refuses
    up = '127.0.0.1:%d' % listening.getsockname()[1]
    down = '127.0.0.1:%d' % closed.getsockname()[1]
    answered = loop._ReconnectingSessionCreator(_CountingCreator(), [up], 5,
                                                str(tmp_path))
    assert [answered.create_session() for _ in range(2)] == [1, 2]
    counting = _CountingCreator()
    lost = loop._ReconnectingSessionCreator(counting, [up, down], 1,
                                            str(tmp_path))
    assert lost.create_session() == 1
    started = time.time()
    with pytest.raises(TrainingError) as raised:
      lost.create_session()
  assert 1 <= time.time() - started < 5
  assert str(raised.value) == (
      'lost the connection to %s during training and could not connect '
      'again within --cluster_timeout_secs=1; restart every task with its '
      'command to resume from the last checkpoint in %s.' % (down, tmp_path))
  assert counting.made == 1
