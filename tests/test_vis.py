"""End-to-end tests of vis.py on DeepLab's 3-record PASCAL format fixture.

vis.py runs at --vis_crop_size=513,513 with a mobilenet_v2 checkpoint made
here: `model.ckpt-1` predicts class 1 or 0 depending on the features, the
newer `model.ckpt-2` predicts 15 everywhere. Two runs of the script as users
run it (a subprocess from the repository root) start together: the latest
checkpoint of a folder, and one without a required flag; the other cases run
its main in this process (conftest.run_main) meanwhile.
"""
import os
import re

import numpy as np
import pytest
from PIL import Image

from conftest import import_script
from conftest import run_main
from conftest import start_script
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf

vis = import_script('vis')

NUM_CLASSES = 21
# name -> (width, height) of the fixture's records.
SIZES = {'2007_000033': (500, 366), '2007_000042': (500, 335),
         '2007_000061': (500, 333)}
PASCAL_COLOURS = {0: (0, 0, 0), 1: (128, 0, 0), 15: (192, 128, 128)}


def _variable(suffix):
  matches = [v for v in tf.global_variables() if v.op.name.endswith(suffix)]
  assert len(matches) == 1, (suffix, [v.op.name for v in matches])
  return matches[0]


def _save_checkpoints(directory):
  """Writes model.ckpt-1 (classes 0/1 by a random projection), -2 (all 15)."""
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    options = common.ModelOptions(
        {common.OUTPUT_TYPE: NUM_CLASSES}, crop_size=[65, 65],
        atrous_rates=None, output_stride=16, model_variant='mobilenet_v2')
    model.predict_labels(tf.zeros([1, 65, 65, 3]), options)
    weights = _variable('logits/semantic/weights')
    biases = _variable('logits/semantic/biases')
    depth = weights.shape.as_list()[2]
    projection = np.random.RandomState(0).normal(size=depth).astype(np.float32)
    # Class 1 where features . projection > 0, else class 0 (logit 0); all
    # other classes far below.
    mixed_weights = np.zeros(weights.shape.as_list(), np.float32)
    mixed_weights[0, 0, :, 1] = 100.0 * projection
    mixed_biases = np.full([NUM_CLASSES], -1e4, np.float32)
    mixed_biases[[0, 1]] = 0.0
    saver = tf.train.Saver()
    prefix = os.path.join(directory, 'model.ckpt')
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run([weights.assign(mixed_weights), biases.assign(mixed_biases)])
      mixed = saver.save(sess, prefix, global_step=1)
      sess.run([weights.assign(tf.zeros_like(weights)),
                biases.assign(10.0 * tf.one_hot(15, NUM_CLASSES))])
      constant = saver.save(sess, prefix, global_step=2)
  return mixed, constant


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
  directory = tmp_path_factory.mktemp('vis_ckpt')
  mixed, constant = _save_checkpoints(str(directory))
  return {'dir': str(directory), 'mixed': mixed, 'constant': constant}


def _vis_args(dataset_dir, checkpoint, logdir, *extra):
  """vis.py's flags (later flags win)."""
  return ['--vis_split=val', '--model_variant=mobilenet_v2',
          '--output_stride=16', '--vis_crop_size=513,513',
          '--checkpoint_dir=%s' % checkpoint, '--vis_logdir=%s' % logdir,
          '--dataset_dir=%s' % dataset_dir] + list(extra)


def _with_old_output(logdir):
  """Puts an earlier output file into `logdir`; returns its path."""
  existing = logdir / 'segmentation_results' / '2007_000033.png'
  existing.parent.mkdir(parents=True)
  existing.write_bytes(b'old')
  return existing


def _check_untouched(logdir, existing):
  assert existing.read_bytes() == b'old'
  assert sorted(p.name for p in logdir.rglob('*')) == [
      '2007_000033.png', 'segmentation_results']


@pytest.fixture(scope='module')
def script_runs(format_fixture_dir, checkpoints, tmp_path_factory):
  """vis.py as users run it, two runs started together, each (vis_logdir,
  StartedProcess); result() waits: 'latest', the folder's latest checkpoint
  with raw predictions; 'missing_flags', without --vis_logdir (a folder with
  an earlier output stands for the one the user forgot)."""
  latest = tmp_path_factory.mktemp('vis_latest') / 'vis'
  forgotten = tmp_path_factory.mktemp('vis_missing_flags') / 'vis'
  _with_old_output(forgotten)
  runs = {
      'latest': (latest, start_script('vis.py', '--logtostderr', *_vis_args(
          format_fixture_dir, checkpoints['dir'], latest,
          '--also_save_raw_predictions=true'))),
      'missing_flags': (forgotten, start_script(
          'vis.py', '--checkpoint_dir=%s' % checkpoints['dir'],
          '--dataset_dir=%s' % format_fixture_dir)),
  }
  yield runs
  for _, run in runs.values():
    run.stop()


def _read(path):
  with Image.open(path) as image:
    return image.mode, np.asarray(image)


def _check_outputs(logdir, allowed_classes):
  """Checks names, sizes, modes, colour = colormap[raw]; returns the classes."""
  seen = set()
  for folder in ('segmentation_results', 'raw_segmentation_results',
                 'overlay_results'):
    assert sorted(os.listdir(os.path.join(logdir, folder))) == sorted(
        name + '.png' for name in SIZES)
  for name, (width, height) in SIZES.items():
    raw_mode, raw = _read(os.path.join(logdir, 'raw_segmentation_results',
                                       name + '.png'))
    colour_mode, colour = _read(os.path.join(logdir, 'segmentation_results',
                                             name + '.png'))
    overlay_mode, overlay = _read(os.path.join(logdir, 'overlay_results',
                                               name + '.png'))
    assert (raw_mode, colour_mode, overlay_mode) == ('L', 'RGB', 'RGB')
    assert raw.shape == (height, width)
    assert colour.shape == overlay.shape == (height, width, 3)
    classes = set(np.unique(raw).tolist())
    assert classes <= set(allowed_classes)
    for value in classes:
      np.testing.assert_array_equal(colour[raw == value], np.tile(
          PASCAL_COLOURS[value], [int((raw == value).sum()), 1]))
    seen |= classes
  return seen


# The first test: it starts both runs of the script (script_runs).
def test_vis_missing_flags_exit_without_touching_outputs(script_runs):
  logdir, run = script_runs['missing_flags']
  result = run.result()
  # absl's required-flag check exits with 1.
  assert result.returncode == 1
  assert ('FATAL Flags parsing error: flag --vis_logdir=None: Flag '
          '--vis_logdir must have a value other than None.') in result.stderr
  assert 'Traceback' not in result.stderr
  _check_untouched(logdir, logdir / 'segmentation_results' /
                   '2007_000033.png')


def test_vis_prefix_multi_scale_flip(format_fixture_dir, checkpoints,
                                     tmp_path):
  logdir = str(tmp_path / 'vis')
  assert run_main(vis, *_vis_args(
      format_fixture_dir, checkpoints['mixed'], logdir,
      '--also_save_raw_predictions', '--eval_scales=0.75', '--eval_scales=1.0',
      '--add_flipped_images')) == 0
  assert _check_outputs(logdir, [0, 1]) == {0, 1}
  # The overlay keeps the image where the prediction is background (black).
  _, raw = _read(os.path.join(logdir, 'raw_segmentation_results',
                              '2007_000033.png'))
  _, colour = _read(os.path.join(logdir, 'segmentation_results',
                                 '2007_000033.png'))
  _, overlay = _read(os.path.join(logdir, 'overlay_results', '2007_000033.png'))
  foreground = raw == 1
  # 0.5 * image + 0.5 * (128, 0, 0): red >= 64, green and blue <= 127.5.
  assert (overlay[foreground][:, 0] >= 64).all()
  assert (overlay[foreground][:, 1:] <= 128).all()
  assert not np.array_equal(overlay, colour)


@pytest.mark.parametrize('case', ['unknown_split', 'empty_checkpoint_dir'])
def test_vis_bad_inputs_exit_without_touching_outputs(
    case, format_fixture_dir, checkpoints, tmp_path, capsys):
  """main in this process (the missing flag:
  test_vis_missing_flags_exit_without_touching_outputs)."""
  logdir = tmp_path / 'vis'
  existing = _with_old_output(logdir)
  if case == 'unknown_split':
    args = _vis_args(format_fixture_dir, checkpoints['dir'], str(logdir),
                     '--vis_split=tset')
    message = "error: Unknown split 'tset' of dataset 'pascal_voc_seg'"
  else:
    empty = tmp_path / 'empty'
    empty.mkdir()
    args = _vis_args(format_fixture_dir, str(empty), str(logdir))
    message = 'error: --checkpoint_dir %s holds no checkpoint' % empty
  # InputError: exit code 2.
  assert run_main(vis, *args) == 2
  err = capsys.readouterr().err
  assert message in err
  assert 'Traceback' not in err
  _check_untouched(logdir, existing)


def test_vis_resized_inputs_are_mapped_back_to_the_original_size(
    format_fixture_dir, checkpoints, tmp_path):
  # Short side 366 -> 200 (long 273 <= 300) fits the 301 x 301 crop.
  logdir = str(tmp_path / 'vis')
  assert run_main(vis, *_vis_args(
      format_fixture_dir, checkpoints['constant'], logdir,
      '--min_resize_value=200', '--max_resize_value=300',
      '--vis_crop_size=301,301')) == 0
  # Without --also_save_raw_predictions there is no raw folder.
  assert sorted(os.listdir(logdir)) == ['overlay_results',
                                        'segmentation_results']
  for name, (width, height) in SIZES.items():
    mode, colour = _read(os.path.join(logdir, 'segmentation_results',
                                      name + '.png'))
    assert mode == 'RGB' and colour.shape == (height, width, 3)
    assert (colour == PASCAL_COLOURS[15]).all()
    _, overlay = _read(os.path.join(logdir, 'overlay_results', name + '.png'))
    assert overlay.shape == (height, width, 3)


# The run of the script as users run it, last: it worked while the
# in-process tests ran.
def test_vis_directory_uses_latest_checkpoint(script_runs, checkpoints):
  logdir, run = script_runs['latest']
  result = run.result()
  assert result.returncode == 0, result.stderr[-3000:]
  logdir = str(logdir)
  assert _check_outputs(logdir, [15]) == {15}
  assert checkpoints['constant'] in result.stdout
  assert os.path.join(logdir, 'overlay_results') in result.stdout
  # The progress line, at the end of the pass (VOC val size).
  assert re.search(r'\] vis 3/1449 images  [0-9.]+ images/s  ETA 0:00:00$',
                   result.stderr, re.M)
