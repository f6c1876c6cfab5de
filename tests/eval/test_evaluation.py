"""Tests of the evaluation helpers: core/eval/metrics.py, checkpoints.py,
results_io.py, flag_checks.py and prediction_files.py."""
import itertools
import json
import logging
import math
import os

import numpy as np
import pytest

from core.eval import checkpoints
from core.eval import metrics
from core.eval import prediction_files
from core.eval import results_io
from core.flags import flag_checks
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils.errors import InputError

# Rows = ground truth, columns = prediction. Class 2 never occurs (excluded
# from the mean), class 3 is predicted once but never in the ground truth
# (IoU 0, counted in the mean, NaN in the per-class summary).
CONFUSION = np.array([[5, 1, 0, 1],
                      [2, 3, 0, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 0]], dtype=np.int64)
# class 0: TP 5, FP 2, FN 2 -> 5/9; class 1: TP 3, FP 1, FN 2 -> 3/6.
EXPECTED_IOU = [5 / 9., 0.5, float('nan'), 0.0]
EXPECTED_MIOU = (5 / 9. + 0.5 + 0.0) / 3


def test_per_class_iou_and_mean_iou_match_hand_computation():
  np.testing.assert_allclose(metrics.per_class_iou(CONFUSION), EXPECTED_IOU)
  assert metrics.mean_iou(CONFUSION) == pytest.approx(EXPECTED_MIOU)


def test_summary_class_iou_is_nan_for_classes_absent_from_ground_truth():
  np.testing.assert_allclose(metrics.summary_class_iou(CONFUSION),
                             [5 / 9., 0.5, float('nan'), float('nan')])


def test_mean_iou_of_empty_matrix_is_nan():
  assert math.isnan(metrics.mean_iou(np.zeros([3, 3], np.int64)))


def test_batch_confusion_matrix_ignores_255():
  labels = np.array([[[0, 1, 255], [2, 2, 1]]], np.int32)[..., None]
  predictions = np.array([[[0, 2, 1], [2, 0, 1]]], np.int64)
  with tf.Graph().as_default(), tf.Session() as sess:
    confusion = sess.run(metrics.batch_confusion_matrix(
        tf.constant(labels), tf.constant(predictions), 3, 255))
  # Pairs (gt, pred): (0,0) (1,2) (2,2) (2,0) (1,1); (255, 1) is dropped.
  np.testing.assert_array_equal(confusion, [[1, 0, 0], [0, 1, 1], [1, 0, 1]])


def test_invalid_labels_are_counted_and_left_out_of_the_matrix():
  labels = np.array([[3, 0, 255, 1, 7, 2]], np.int32)
  predictions = np.array([[1, 0, 2, 1, 0, 2]], np.int64)
  with tf.Graph().as_default(), tf.Session() as sess:
    confusion, invalid = sess.run([
        metrics.batch_confusion_matrix(labels, predictions, 3, 255),
        metrics.invalid_label_count(labels, 3, 255)])
    # ADE20K-style: 0 is the ignore label although it lies in 0..C-1.
    ade_confusion, ade_invalid = sess.run([
        metrics.batch_confusion_matrix(labels, predictions, 3, 0),
        metrics.invalid_label_count(labels, 3, 0)])
  np.testing.assert_array_equal(confusion, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
  assert invalid == 2  # 3 and 7 (>= C), not 255
  np.testing.assert_array_equal(ade_confusion,
                                [[0, 0, 0], [0, 1, 0], [0, 0, 1]])
  assert ade_invalid == 3  # 3, 255, 7


def test_multilabel_counts_and_classification_metrics():
  logits = np.array([[2.0, -1.0], [0.0, -3.0]], np.float32)
  labels = np.array([[1, 1], [0, 1]], np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    counts = sess.run(metrics.multilabel_counts(tf.constant(logits),
                                                tf.constant(labels)))
  # Predicted (sigmoid >= 0.5): [[1, 0], [1, 0]] (sigmoid(0) = 0.5 counts).
  np.testing.assert_array_equal(counts, [1, 1, 2, 0])
  values = metrics.classification_metrics(counts)
  assert values == pytest.approx(
      {'accuracy': 0.25, 'precision': 0.5, 'recall': 1 / 3.})
  assert metrics.classification_metrics([0, 0, 0, 3]) == {
      'accuracy': 1.0, 'precision': 0.0, 'recall': 0.0}


def test_results_json_content_and_atomic_write(tmp_path):
  record = results_io.results_record(
      '/ckpt/model.ckpt-42', 42, CONFUSION, 7,
      classification={'accuracy': 0.25, 'precision': 0.5, 'recall': 0.1},
      dataset='synthetic')
  path = results_io.write_results(str(tmp_path), record)
  assert path == str(tmp_path / 'results-42.json')
  assert sorted(os.listdir(tmp_path)) == ['results-42.json', 'results.json']
  with open(path) as stream:
    loaded = json.load(stream)
  with open(tmp_path / 'results.json') as stream:
    assert json.load(stream) == loaded
  assert loaded['checkpoint'] == '/ckpt/model.ckpt-42'
  assert loaded['global_step'] == 42
  assert loaded['num_images'] == 7
  assert loaded['miou'] == pytest.approx(EXPECTED_MIOU)
  assert loaded['per_class_iou'][2] is None
  assert loaded['per_class_iou'][:2] == pytest.approx([5 / 9., 0.5])
  assert loaded['per_class_iou'][3] == 0.0
  assert loaded['confusion_matrix'] == CONFUSION.tolist()
  assert loaded['cls_accuracy'] == 0.25
  assert loaded['dataset'] == 'synthetic'
  # A later checkpoint replaces results.json and keeps results-42.json.
  results_io.write_results(str(tmp_path), results_io.results_record(
      '/ckpt/model.ckpt-50', 50, CONFUSION, 7))
  assert sorted(os.listdir(tmp_path)) == [
      'results-42.json', 'results-50.json', 'results.json']
  with open(tmp_path / 'results.json') as stream:
    assert json.load(stream)['global_step'] == 50


def test_write_json_atomically_leaves_nothing_on_failure(tmp_path):
  target = tmp_path / 'out.json'
  target.write_text('old')
  with pytest.raises(ValueError):
    results_io.write_json_atomically(str(target), {'x': float('nan')})
  assert os.listdir(tmp_path) == ['out.json']
  assert target.read_text() == 'old'


def _save_checkpoint(directory, step, values, with_global_step=False):
  """Saves variables {name: np.array} to `<directory>/model.ckpt-<step>`."""
  with tf.Graph().as_default():
    for name, value in values.items():
      tf.Variable(value, name=name)
    if with_global_step:
      tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      if with_global_step:
        sess.run(tf.train.get_global_step().assign(step + 1000))
      return tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'),
                                   global_step=step)


def test_resolve_checkpoint_directory_prefix_and_files(tmp_path):
  directory = str(tmp_path)
  with pytest.raises(InputError, match='holds no checkpoint'):
    checkpoint_paths.resolve_checkpoint(directory, 'c')
  first = _save_checkpoint(directory, 5, {'a': np.float32(1)})
  latest = _save_checkpoint(directory, 12, {'a': np.float32(2)})
  assert checkpoint_paths.resolve_checkpoint(directory, 'c') == latest
  assert checkpoint_paths.resolve_checkpoint(first, 'c') == first
  assert checkpoint_paths.resolve_checkpoint(first + '.index', 'c') == first
  with pytest.raises(InputError, match='neither a directory nor'):
    checkpoint_paths.resolve_checkpoint(
        os.path.join(directory, 'model.ckpt-7'), 'c')
  # Without the `checkpoint` state file the highest step is chosen.
  os.remove(os.path.join(directory, 'checkpoint'))
  assert checkpoint_paths.resolve_checkpoint(directory, 'c') == latest


def test_checkpoint_global_step(tmp_path):
  # The variable wins over the name (saved as model.ckpt-3 at step 1003).
  with_step = _save_checkpoint(str(tmp_path / 'a'), 3, {'a': np.float32(1)},
                               with_global_step=True)
  assert with_step.endswith('model.ckpt-3')
  assert checkpoints.checkpoint_global_step(with_step) == 1003
  without = _save_checkpoint(str(tmp_path / 'b'), 9, {'a': np.float32(1)})
  assert checkpoints.checkpoint_global_step(without) == 9


def test_snapshot_global_step_is_read_from_memory(tmp_path):
  path = _save_checkpoint(str(tmp_path), 3, {'a': np.float32(1)},
                          with_global_step=True)
  snapshot = checkpoints.snapshot_checkpoint(path)
  assert snapshot.global_step == 1003
  for name in os.listdir(str(tmp_path)):  # training rotated it away
    os.remove(os.path.join(str(tmp_path), name))
  assert checkpoints.checkpoint_global_step(path, snapshot.values) == 1003
  assert checkpoints.checkpoint_global_step(
      os.path.join(str(tmp_path), 'model.ckpt-8'), {'a': 1.0}) == 8
  assert checkpoints.checkpoint_global_step('converted', {}) is None


def test_restore_skips_missing_variables_with_a_warning(tmp_path, caplog):
  path = _save_checkpoint(str(tmp_path), 1, {'a': np.float32([1, 2])})
  with tf.Graph().as_default():
    a = tf.Variable(np.float32([0, 0]), name='a')
    b = tf.Variable(np.float32(7), name='b')
    with tf.Session() as sess, caplog.at_level(logging.WARNING):
      missing = checkpoints.restore_variables(sess, path)
      np.testing.assert_array_equal(sess.run(a), [1, 2])
      assert sess.run(b) == 7
  assert missing == ['b']
  assert any('Variable b is missing' in r.getMessage() for r in caplog.records)


def test_restore_rejects_shape_mismatch_and_foreign_checkpoints(tmp_path):
  path = _save_checkpoint(str(tmp_path), 1, {'a': np.float32([1, 2])})
  with tf.Graph().as_default():
    tf.Variable(np.float32([0, 0, 0]), name='a')
    with tf.Session() as sess, pytest.raises(InputError, match='shape'):
      checkpoints.restore_variables(sess, path)
  with tf.Graph().as_default():
    tf.Variable(np.float32(0), name='other')
    with tf.Session() as sess, pytest.raises(InputError, match='none of'):
      checkpoints.restore_variables(sess, path)


class _FakeTime(object):
  """A clock advanced only by `sleep`."""

  def __init__(self):
    self.now = 100.0
    self.sleeps = []

  def sleep(self, seconds):
    self.sleeps.append(seconds)
    self.now += seconds

  def clock(self):
    return self.now


def test_checkpoints_to_evaluate_yields_latest_then_new_ones(tmp_path):
  answers = iter(['c1', 'c1', None, 'c2', 'c2', 'c3'])
  fake = _FakeTime()
  iterator = checkpoints.checkpoints_to_evaluate(
      str(tmp_path), 10, 0, find_latest=lambda d: next(answers),
      sleep=fake.sleep, clock=fake.clock)
  assert list(itertools.islice(iterator, 3)) == ['c1', 'c2', 'c3']
  # Wait out the interval, then poll every interval until a new one appears.
  assert fake.sleeps == [10, 10, 10, 10, 10]


def test_checkpoints_to_evaluate_stops_after_max(tmp_path):
  answers = iter(['c1', 'c1', 'c2', 'c3'])
  fake = _FakeTime()
  found = list(checkpoints.checkpoints_to_evaluate(
      str(tmp_path), 0, 2, find_latest=lambda d: next(answers),
      sleep=fake.sleep, clock=fake.clock))
  assert found == ['c1', 'c2']
  assert fake.sleeps == [1]  # an interval of 0 still polls once a second


def _must_not_wait(seconds):
  raise AssertionError('a single evaluation waited (%s s)' % seconds)


def test_checkpoints_to_evaluate_single_evaluation_fails_without_checkpoint(
    tmp_path):
  with pytest.raises(InputError, match='holds no checkpoint'):
    next(checkpoints.checkpoints_to_evaluate(str(tmp_path), 1, 1,
                                             sleep=_must_not_wait))
  with pytest.raises(InputError, match='neither a directory'):
    next(checkpoints.checkpoints_to_evaluate(str(tmp_path / 'nope'), 1, 1,
                                             sleep=_must_not_wait))


@pytest.mark.parametrize('max_evaluations', [2, 0, -1])
@pytest.mark.parametrize('folder_exists', [True, False])
def test_watcher_started_before_its_trainer_waits_for_the_first_checkpoint(
    tmp_path, caplog, folder_exists, max_evaluations):
  folder = tmp_path / 'train'
  if folder_exists:
    folder.mkdir()
  fake, saved = _FakeTime(), []

  def sleep(seconds):
    fake.sleep(seconds)
    if len(fake.sleeps) == 3:  # the trainer's first save, after three polls
      folder.mkdir(exist_ok=True)
      saved.append(_save_checkpoint(str(folder), 0, {'a': np.float32(1)}))

  caplog.set_level(logging.INFO)
  watcher = checkpoints.checkpoints_to_evaluate(
      str(folder), 10, max_evaluations, sleep=sleep, clock=fake.clock)
  assert next(watcher) == saved[0]
  assert fake.sleeps == [10, 10, 10]
  # One line for the whole wait, naming the folder.
  waiting = [record.getMessage() for record in caplog.records
             if record.getMessage().startswith('Waiting')]
  assert waiting == ['Waiting for the first checkpoint in %s%s.' % (
      folder, '' if folder_exists else ', which does not exist yet')]


def test_checkpoints_to_evaluate_prefix_is_evaluated_once(tmp_path):
  path = _save_checkpoint(str(tmp_path), 4, {'a': np.float32(1)})
  assert list(checkpoints.checkpoints_to_evaluate(path, 1, 0)) == [path]


def test_flag_helpers():
  assert flag_checks.parse_crop_size(['513', '641'], 'c') == [513, 641]
  for bad in (['513'], ['a', 'b'], ['0', '5'], None):
    with pytest.raises(InputError, match='--c must be two positive'):
      flag_checks.parse_crop_size(bad, 'c')
  assert flag_checks.check_scales([0.5, 1]) == [0.5, 1.0]
  with pytest.raises(InputError):
    flag_checks.check_scales([0.0])
  with pytest.raises(InputError, match='--x must be >= 1'):
    flag_checks.check_positive(0, 'x')


def test_optional_crop_size_and_output_dir(tmp_path):
  assert flag_checks.parse_optional_crop_size([], 'c') is None
  assert flag_checks.parse_optional_crop_size(['3', '4'], 'c') == [3, 4]
  with pytest.raises(InputError, match='--c must be two positive'):
    flag_checks.parse_optional_crop_size(['3'], 'c')
  flag_checks.check_output_dir(str(tmp_path), 'out')
  flag_checks.check_output_dir(str(tmp_path / 'new'), 'out')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(InputError, match='--out .*file exists and is not a dir'):
    flag_checks.check_output_dir(str(tmp_path / 'file'), 'out')


def test_output_name_is_a_decoded_basename():
  assert prediction_files.output_name(b'2007_000033', 0) == '2007_000033'
  assert prediction_files.output_name(b'train2017/000000177254',
                                     0) == '000000177254'
  assert prediction_files.output_name('dir/pic.JPG', 0) == 'pic'
  assert prediction_files.output_name(b'a.b', 0) == 'a.b'
  assert prediction_files.output_name(b'', 7) == '000007'


def test_convert_train_id_to_eval_id():
  prediction = np.array([[0, 18], [5, 255]], np.uint8)
  converted = prediction_files.convert_train_id_to_eval_id(
      prediction, prediction_files.CITYSCAPES_TRAIN_ID_TO_EVAL_ID)
  np.testing.assert_array_equal(converted, [[7, 33], [17, 255]])
  assert converted.dtype == np.uint8
