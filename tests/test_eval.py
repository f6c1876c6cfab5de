"""End-to-end tests of eval.py.

A tiny `synthetic` val split with known labels and checkpoints whose
prediction is known (logits weights 0, biases favouring one class) give a
confusion matrix that follows from the label histogram alone.

Two runs of the script as users run it (a subprocess from the repository
root) start together: a single-scale evaluation, and one without its required
flags; the other cases run its main in this process (conftest.run_main)
meanwhile.
"""
import functools
import json
import os
import re
import shutil
import time

import numpy as np
import pytest

from conftest import import_script
from conftest import run_main
from conftest import start_script
from core.eval import checkpoints
from datasets import build_data
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf

eval_script = import_script('eval')

NUM_CLASSES = 9  # the `synthetic` dataset: background + 8
CROP = 65
IGNORE = 255


def _labels():
  """The three label maps of the val split (hand-made, sizes below the crop)."""
  first = np.zeros([33, 33], np.uint8)
  first[:10] = 1                       # 330 px class 1, 759 px class 0
  second = np.full([20, 30], 4, np.uint8)
  second[0] = IGNORE                   # 570 px class 4, 30 ignored
  third = np.zeros([30, 20], np.uint8)
  third[:, :10] = IGNORE               # 300 px class 0, 300 ignored
  return [first, second, third]


# Ground-truth pixel counts per class: 0 -> 759 + 300, 1 -> 330, 4 -> 570.
GT_COUNTS = {0: 1059, 1: 330, 4: 570}
VALID_PIXELS = 1959


def _constant_prediction_confusion(predicted_class):
  confusion = np.zeros([NUM_CLASSES, NUM_CLASSES], np.int64)
  for label, count in GT_COUNTS.items():
    confusion[label, predicted_class] = count
  return confusion


def _write_dataset(directory):
  rng = np.random.RandomState(0)
  examples = []
  for index, label in enumerate(_labels()):
    image = rng.randint(0, 256, size=label.shape + (3,)).astype(np.uint8)
    examples.append(build_data.example_from_arrays(
        'img_%d' % index, image, label, NUM_CLASSES, image_format='png'))
  build_data.write_split(directory, 'val', examples, len(examples),
                         num_shards=1)


def _variable(suffix):
  matches = [v for v in tf.global_variables() if v.op.name.endswith(suffix)]
  assert len(matches) == 1, (suffix, [v.op.name for v in matches])
  return matches[0]


def _save_constant_checkpoints(specs):
  """Saves mobilenet_v2 DeepLab + classifier checkpoints, one graph for all;
  returns their prefixes.

  Each of `specs` is (directory, step, predicted_class, cls_index): the
  segmentation logits are constant with `predicted_class` winning; the
  classification head predicts exactly class index `cls_index` present.
  """
  prefixes = []
  with tf.Graph().as_default():
    images = tf.zeros([1, CROP, CROP, 3])
    options = common.ModelOptions(
        {common.OUTPUT_TYPE: NUM_CLASSES}, crop_size=[CROP, CROP],
        atrous_rates=None, output_stride=16, model_variant='mobilenet_v2')
    model.predict_labels(images, options)
    model.classification_logits(images, options, num_classes=NUM_CLASSES - 1,
                                weight_decay=0.0, is_training=False,
                                fine_tune_batch_norm=False)
    global_step = tf.train.get_or_create_global_step()
    seg_weights = _variable('logits/semantic/weights')
    seg_biases = _variable('logits/semantic/biases')
    cls_weights = _variable('/logits/weights')  # MobilenetV2/logits
    cls_biases = _variable('/logits/biases')
    predicted = tf.placeholder(tf.int32, [])
    present = tf.placeholder(tf.int32, [])
    step_value = tf.placeholder(tf.int64, [])
    assign = [
        seg_weights.assign(tf.zeros_like(seg_weights)),
        seg_biases.assign(10.0 * tf.one_hot(predicted, NUM_CLASSES)),
        cls_weights.assign(tf.zeros_like(cls_weights)),
        cls_biases.assign(10.0 * tf.one_hot(present, NUM_CLASSES - 1) - 5.0),
        global_step.assign(step_value)]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for directory, step, predicted_class, cls_index in specs:
        sess.run(assign, {predicted: predicted_class, present: cls_index,
                          step_value: step})
        # A Saver per folder: its `checkpoint` file lists that folder's only.
        prefixes.append(tf.train.Saver().save(
            sess, os.path.join(directory, 'model.ckpt'), global_step=step))
  return prefixes


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  """Dataset, checkpoint dir with step 7 (class 4), staged step 9 (class 0)."""
  root = tmp_path_factory.mktemp('eval_e2e')
  paths = {name: str(root / name) for name in ('data', 'train', 'staged')}
  _write_dataset(paths['data'])
  paths['ckpt7'], paths['ckpt9'] = _save_constant_checkpoints(
      [(paths['train'], 7, 4, 3), (paths['staged'], 9, 0, 3)])
  paths['root'] = str(root)
  return paths


def _eval_args(setup, logdir, *extra):
  """eval.py's flags for the val split, the checkpoints of setup['train']
  and `logdir` (later flags win)."""
  return ['--dataset=synthetic', '--eval_split=val',
          '--model_variant=mobilenet_v2', '--output_stride=16',
          '--eval_crop_size=%d,%d' % (CROP, CROP),
          '--checkpoint_dir=%s' % setup['train'], '--eval_logdir=%s' % logdir,
          '--dataset_dir=%s' % setup['data']] + list(extra)


@pytest.fixture(scope='module')
def script_runs(setup):
  """eval.py as users run it, two runs started together (StartedProcess;
  result() waits): 'single', a single-scale evaluation into
  <root>/eval_single; 'missing_flags', without --checkpoint_dir,
  --eval_logdir and --dataset_dir."""
  runs = {
      'single': start_script(
          'eval.py', '--logtostderr', *_eval_args(
              setup, os.path.join(setup['root'], 'eval_single'),
              '--max_number_of_evaluations=1')),
      'missing_flags': start_script('eval.py', '--eval_crop_size=65,65'),
  }
  yield runs
  for run in runs.values():
    run.stop()


def _load(path):
  with open(path) as stream:
    return json.load(stream)


def _summaries(logdir):
  values = {}
  for name in os.listdir(logdir):
    if name.startswith('events.out.tfevents'):
      for event in tf.train.summary_iterator(os.path.join(logdir, name)):
        for value in event.summary.value:
          values[(event.step, value.tag)] = value.simple_value
  return values


def _check_constant_class_4(record):
  """Prediction 4 everywhere: IoU_4 = 570/1959, IoU_0 = IoU_1 = 0."""
  expected_miou = 570.0 / VALID_PIXELS / 3
  expected = _constant_prediction_confusion(4).tolist()
  assert record['confusion_matrix'] == expected
  assert record['miou'] == pytest.approx(expected_miou)
  expected_iou = [0.0, 0.0, None, None, 570.0 / VALID_PIXELS, None, None, None,
                  None]
  assert record['per_class_iou'] == pytest.approx(expected_iou)
  assert record['num_images'] == 3


# The first test: it starts both runs of the script (script_runs).
def test_eval_missing_flags_exit_1(script_runs):
  """absl's required-flag check: one line per missing flag, exit code 1."""
  result = script_runs['missing_flags'].result()
  assert result.returncode == 1
  for name in ('checkpoint_dir', 'eval_logdir', 'dataset_dir'):
    assert ('Flag --%s must have a value other than None' % name
            in result.stderr)
  assert 'Traceback' not in result.stderr


def test_eval_multi_scale_flip_and_weakly(setup):
  logdir = os.path.join(setup['root'], 'eval_multi')
  assert run_main(eval_script, *_eval_args(
      setup, logdir, '--max_number_of_evaluations=1', '--eval_scales=0.5',
      '--eval_scales=1.0', '--add_flipped_images', '--weakly')) == 0
  record = _load(os.path.join(logdir, 'results.json'))
  _check_constant_class_4(record)
  assert record['eval_scales'] == [0.5, 1.0]
  assert record['add_flipped_images'] is True
  # The head predicts only class 4 (index 3). cls_label: img_0 {1}, img_1 {4},
  # img_2 {}: TP 1, FP 2, FN 1, TN 20 over 3 x 8 entries.
  assert record['cls_accuracy'] == pytest.approx(21.0 / 24)
  assert record['cls_precision'] == pytest.approx(1.0 / 3)
  assert record['cls_recall'] == pytest.approx(0.5)
  summaries = _summaries(logdir)
  assert summaries[(7, 'eval/cls_overall')] == pytest.approx(21.0 / 24)


def _copy_checkpoint(prefix, directory):
  """Copies a checkpoint's data/index files, then points `checkpoint` at it."""
  for name in os.listdir(os.path.dirname(prefix)):
    if name.startswith(os.path.basename(prefix) + '.'):
      shutil.copy(os.path.join(os.path.dirname(prefix), name), directory)
  copied = os.path.join(directory, os.path.basename(prefix))
  tf.train.update_checkpoint_state(directory, copied)
  return copied


def test_eval_evaluates_latest_then_polls_for_new_checkpoints(setup,
                                                              monkeypatch):
  """A watcher (2 evaluations, polling every second) evaluates step 7, then
  step 9, which training saves while the watcher waits."""
  train = os.path.join(setup['root'], 'train_poll')
  shutil.copytree(setup['train'], train)
  logdir = os.path.join(setup['root'], 'eval_poll')
  os.makedirs(logdir)
  with open(os.path.join(logdir, 'keep.txt'), 'w') as stream:
    stream.write('mine')
  copied = []

  def sleep_while_training_saves_step_9(seconds):
    if not copied:
      # The watcher waits after step 7's results.
      assert os.path.exists(os.path.join(logdir, 'results-7.json'))
      copied.append(_copy_checkpoint(setup['ckpt9'], train))
    time.sleep(seconds)

  monkeypatch.setattr(checkpoints, 'checkpoints_to_evaluate', functools.partial(
      checkpoints.checkpoints_to_evaluate,
      sleep=sleep_while_training_saves_step_9))
  assert run_main(eval_script, *_eval_args(
      setup, logdir, '--max_number_of_evaluations=2', '--eval_interval_secs=1',
      '--checkpoint_dir=%s' % train)) == 0
  assert copied
  _check_constant_class_4(_load(os.path.join(logdir, 'results-7.json')))
  latest = _load(os.path.join(logdir, 'results.json'))
  assert latest == _load(os.path.join(logdir, 'results-9.json'))
  assert latest['checkpoint'] == copied[0] and latest['global_step'] == 9
  # Prediction 0 everywhere: IoU_0 = 1059/1959, IoU_1 = IoU_4 = 0.
  expected = _constant_prediction_confusion(0).tolist()
  assert latest['confusion_matrix'] == expected
  assert latest['miou'] == pytest.approx(1059.0 / VALID_PIXELS / 3)
  with open(os.path.join(logdir, 'keep.txt')) as stream:
    assert stream.read() == 'mine'


@pytest.mark.parametrize('case', ['unknown_split', 'empty_checkpoint_dir'])
def test_eval_bad_inputs_exit_with_a_message(case, setup, tmp_path, capsys):
  """main in this process (the missing flags: test_eval_missing_flags_exit_1)."""
  logdir = str(tmp_path / 'eval_logdir')
  if case == 'unknown_split':
    args = _eval_args(setup, logdir, '--eval_split=tset',
                      '--max_number_of_evaluations=1')
    message = "error: Unknown split 'tset' of dataset 'synthetic'"
  else:
    empty = tmp_path / 'empty'
    empty.mkdir()
    args = _eval_args(setup, logdir, '--max_number_of_evaluations=1',
                      '--checkpoint_dir=%s' % empty)
    message = 'error: --checkpoint_dir %s holds no checkpoint' % empty
  assert run_main(eval_script, *args) == 2
  err = capsys.readouterr().err
  assert message in err
  assert 'Traceback' not in err
  assert not os.path.exists(logdir)


# The runs of the script as users run it finish last: the single-scale one
# started with the missing-flags one (the first test here) and evaluated
# while the in-process tests ran.
def test_eval_single_scale_matches_hand_computed_confusion(setup, script_runs):
  logdir = os.path.join(setup['root'], 'eval_single')
  result = script_runs['single'].result()
  assert result.returncode == 0, result.stderr[-3000:]
  record = _load(os.path.join(logdir, 'results-7.json'))
  assert _load(os.path.join(logdir, 'results.json')) == record
  _check_constant_class_4(record)
  assert record['checkpoint'] == setup['ckpt7']
  assert record['global_step'] == 7
  assert 'cls_accuracy' not in record
  summaries = _summaries(logdir)
  assert summaries[(7, 'eval/miou_overall')] == pytest.approx(
      570.0 / VALID_PIXELS / 3)
  assert summaries[(7, 'eval/miou_class_4')] == pytest.approx(
      570.0 / VALID_PIXELS)
  assert summaries[(7, 'eval/miou_class_1')] == 0.0
  assert np.isnan(summaries[(7, 'eval/miou_class_2')])
  assert 'mIoU' in result.stdout and 'results-7.json' in result.stdout
  # The progress line, at the end of the pass (split size 300).
  assert re.search(r'\] eval 3/300 images  [0-9.]+ images/s  ETA 0:00:00$',
                   result.stderr, re.M)
