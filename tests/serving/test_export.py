"""export_model.py, predict.py and core/serving/inference.py.

A tiny mobilenet_v2 checkpoint (9 synthetic classes, crop 65, random weights
with a logits layer chosen so that the class map has several classes) is
exported by export_model.py (its main, in-process) with --eval_scales=0.75 and
--add_flipped_images. The reference
is eval.py's computation written out here: the image padded bottom/right with
the mean pixel to a static crop, `eval_graph.predict` with a crop-sized model,
the result cropped back. The SavedModel, loaded with plain TensorFlow in a
fresh process that cannot import this repository, must give the same class
map (0 differing pixels) on an image that fits the crop and on one larger than
it (reference crop = its own size).

That process and predict.py run as users run it start together once the
export exists; the in-process tests run meanwhile.
"""
import os
import re
import sys
import textwrap

import numpy as np
import pytest
from absl.testing import flagsaver
from PIL import Image

from conftest import import_script
from conftest import script_flags
from conftest import start_process
from conftest import start_script
from core.data import input_preprocess
from core.data import preprocess_utils
from core.eval import checkpoints
from core.eval import eval_graph
from core.serving import export
from core.serving import input_files
from datasets import build_synthetic_data
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf
from utils import get_dataset_colormap
from utils.errors import InputError

export_model = import_script('export_model')
predict = import_script('predict')

NUM_CLASSES = 9
CROP = [65, 65]
# One scale other than 1 and flips: the multi-scale/flip path, two towers.
SCALES = [0.75]
# Sorted input order: a good PNG, a corrupt JPEG, a good JPEG, a text file.
GOOD = {'a_small': 'a_small.png', 'c_large': 'c_large.jpg'}
BAD = 'b_bad.jpg'


def _options(crop_size, num_classes=NUM_CLASSES):
  return common.ModelOptions({common.OUTPUT_TYPE: num_classes},
                             crop_size=crop_size, atrous_rates=None,
                             output_stride=16, model_variant='mobilenet_v2')


def _save_checkpoint(directory, image):
  """model.ckpt-5: random weights, except that the logits weights are random
  directions orthogonal to the mean feature of `image`, scaled to logits of
  std ~5 there (random weights alone give near-equal logits, one class almost
  everywhere); plus training-only variables (global
  step, momentum slots) that an export must leave out."""
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    images = tf.constant(image[np.newaxis], tf.float32)
    model.predict_labels(images, _options(None))
    model_variables = tf.global_variables()
    tf.train.get_or_create_global_step()
    for variable in model_variables[:3]:
      tf.Variable(tf.zeros(variable.shape), name=variable.op.name + '/Momentum')
    weights = [v for v in model_variables
               if v.op.name.endswith('logits/semantic/weights')][0]
    features = tf.get_default_graph().get_operation_by_name(
        'logits/semantic/Conv2D').inputs[0]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(features).reshape(-1, features.shape[-1])
      mean = values.mean(axis=0)
      directions = np.random.RandomState(0).normal(
          size=(mean.size, NUM_CLASSES))
      directions -= np.outer(mean, mean @ directions) / (mean @ mean)
      # The untrained features are tiny: scale the logits to std ~5.
      directions *= 5.0 / np.std((values - mean) @ directions)
      sess.run(weights.assign(
          directions.reshape(weights.shape.as_list()).astype(np.float32)))
      return tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'),
                                   global_step=5)


def _write_inputs(directory):
  """The input folder; returns {name: decoded uint8 image} of the good files."""
  small, _ = build_synthetic_data.generate_example(0, 7, 0, image_size=56)
  large, _ = build_synthetic_data.generate_example(0, 7, 1, image_size=72)
  assert small.shape[0] <= CROP[0] and small.shape[1] <= CROP[1]
  assert max(large.shape[:2]) > max(CROP)
  Image.fromarray(small).save(os.path.join(directory, GOOD['a_small']))
  Image.fromarray(large).save(os.path.join(directory, GOOD['c_large']),
                              quality=90)
  with open(os.path.join(directory, GOOD['c_large']), 'rb') as stream:
    jpeg = stream.read()
  with open(os.path.join(directory, BAD), 'wb') as stream:
    stream.write(jpeg[:len(jpeg) // 3])  # truncated: the header reads fine
  with open(os.path.join(directory, 'notes.txt'), 'w') as stream:
    stream.write('not an image\n')
  return {name: input_files.read_image(os.path.join(directory, filename))
          for name, filename in GOOD.items()}


def _eval_py_predictions(checkpoint, images):
  """eval.py's prediction of each image: padded to max(crop, size) with the
  mean pixel, a model with that static crop, cropped back.

  Returns:
    {name: (classes int64 [H, W], probabilities float32 [H, W, C])}.
  """
  fetches = {}
  with tf.Graph().as_default():
    for name, image in sorted(images.items()):
      height, width = image.shape[:2]
      crop = [max(CROP[0], height), max(CROP[1], width)]
      padded = preprocess_utils.pad_to_size(
          tf.constant(image, tf.float32), crop[0], crop[1],
          input_preprocess.MEAN_PIXEL)
      padded = tf.reshape(padded, [1] + crop + [3])
      with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
        predictions = eval_graph.predict(padded, _options(crop), SCALES, True)
      fetches[name] = (
          predictions[common.OUTPUT_TYPE][0, :height, :width],
          predictions[common.OUTPUT_TYPE + '_prob'][0, :height, :width])
    with tf.Session() as sess:
      checkpoints.restore_variables(sess, checkpoint)
      return sess.run(fetches)


@pytest.fixture(scope='module')
def setup(tmp_path_factory, repo_root):
  root = tmp_path_factory.mktemp('export')
  checkpoint_dir = root / 'train'
  input_dir = root / 'photos'
  checkpoint_dir.mkdir()
  input_dir.mkdir()
  images = _write_inputs(str(input_dir))
  checkpoint = _save_checkpoint(str(checkpoint_dir), images['a_small'])
  export_dir = root / 'exported'
  # The script's main with its flags, in this process (no second TF start-up).
  with script_flags(export_model), flagsaver.flagsaver(
      checkpoint_dir=str(checkpoint_dir), export_dir=str(export_dir),
      dataset='synthetic', model_variant='mobilenet_v2', output_stride=16,
      export_crop_size=['65', '65'], eval_scales=SCALES,
      add_flipped_images=True):
    export_model.main(None)
  reference = _eval_py_predictions(checkpoint, images)
  return {'root': root, 'checkpoint': checkpoint,
          'checkpoint_dir': str(checkpoint_dir), 'input_dir': str(input_dir),
          'export_dir': str(export_dir), 'images': images,
          'reference': reference}


# A fresh interpreter in isolated mode (-I: no script dir, PYTHONPATH or user
# site on sys.path) run from a folder outside the repository.
_LOAD_WITH_PLAIN_TF = textwrap.dedent('''
    import importlib.util, sys
    import numpy as np
    import tensorflow as tf
    for package in ('core', 'deeplab', 'utils'):
      assert importlib.util.find_spec(package) is None, package
    serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']
    inputs = np.load(sys.argv[2])
    outputs = {}
    for name in inputs.files:
      result = serve(images=tf.constant(inputs[name][np.newaxis]))
      for key, value in result.items():
        outputs[name + '/' + key] = value.numpy()
    np.savez(sys.argv[3], **outputs)
''')


@pytest.fixture(scope='module')
def processes(setup, tmp_path_factory):
  """Started together once the export exists (StartedProcess; result()
  waits): 'plain_tf', the SavedModel loaded by plain TensorFlow in a fresh
  process on the good images, in folder 'plain_tf_dir'; 'predict', predict.py
  on the SavedModel as users run it, writing to 'predict_output'."""
  plain = tmp_path_factory.mktemp('plain_tf')
  np.savez(plain / 'inputs.npz', **setup['images'])
  (plain / 'load.py').write_text(_LOAD_WITH_PLAIN_TF)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PYTHONPATH', None)
  output_dir = str(tmp_path_factory.mktemp('predict') / 'out')
  started = {
      'plain_tf': start_process(
          [sys.executable, '-I', 'load.py', setup['export_dir'], 'inputs.npz',
           'outputs.npz'], cwd=plain, env=env, timeout=600),
      'predict': start_script(
          'predict.py', '--saved_model_dir=%s' % setup['export_dir'],
          '--input=%s' % setup['input_dir'], '--output_dir=%s' % output_dir,
          timeout=600),
  }
  yield dict(started, plain_tf_dir=plain, predict_output=output_dir)
  for name in ('plain_tf', 'predict'):
    started[name].stop()


# The first test: it starts both processes; predict.py's is checked last.
def test_saved_model_in_fresh_tf_process_matches_eval_prediction(setup,
                                                                 processes):
  tmp_path = processes['plain_tf_dir']
  result = processes['plain_tf'].result()
  assert result.returncode == 0, result.stderr[-3000:]
  outputs = np.load(tmp_path / 'outputs.npz')
  for name, image in setup['images'].items():
    classes = outputs[name + '/classes']
    probabilities = outputs[name + '/probabilities']
    expected_classes, expected_probabilities = setup['reference'][name]
    height, width = image.shape[:2]
    assert classes.dtype == np.int32 and classes.shape == (1, height, width)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (1, height, width, NUM_CLASSES)
    assert len(np.unique(expected_classes)) >= 3, 'trivial class map'
    assert np.sum(classes[0] != expected_classes) == 0, name
    np.testing.assert_allclose(probabilities[0], expected_probabilities,
                               atol=1e-5)


def test_export_info_and_no_training_ops(setup):
  export_dir = setup['export_dir']
  info = export.read_export_info(export_dir)
  assert info['num_classes'] == NUM_CLASSES and info['dataset'] == 'synthetic'
  assert info['eval_scales'] == SCALES and info['add_flipped_images'] is True
  assert info['crop_size'] == CROP and info['checkpoint'] == setup['checkpoint']
  stored = dict(tf.train.list_variables(
      os.path.join(export_dir, 'variables', 'variables')))
  source = dict(tf.train.list_variables(setup['checkpoint']))
  training_only = [name for name in source
                   if name == 'global_step' or name.endswith('/Momentum')]
  assert len(training_only) == 4
  assert sorted(stored) == sorted(set(source) - set(training_only))
  from tensorflow.core.protobuf import saved_model_pb2
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as stream:
    saved_model.ParseFromString(stream.read())
  (meta_graph,) = saved_model.meta_graphs
  op_types = {node.op for node in meta_graph.graph_def.node}
  assert not [op for op in op_types if 'Apply' in op or 'Gradient' in op]
  assert 'Conv2D' in op_types


def test_export_refuses_existing_dir_and_replaces_atomically(setup, tmp_path):
  export_dir = str(tmp_path / 'model')
  os.mkdir(export_dir)
  open(os.path.join(export_dir, 'old.txt'), 'w').close()
  export_to = lambda options, **kwargs: export.export_saved_model(
      setup['checkpoint'], export_dir, options, {'run': 1}, crop_size=CROP,
      **kwargs)
  with pytest.raises(InputError, match='already exists; pass --overwrite'):
    export_to(_options(None))
  assert os.listdir(export_dir) == ['old.txt']
  assert export_to(_options(None), overwrite=True) == []
  assert sorted(os.listdir(export_dir)) == ['assets.extra', 'saved_model.pb',
                                            'variables']
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as stream:
    good = stream.read()
  # 21 classes do not fit the 9-class checkpoint: the export fails while
  # restoring, and the previous export must stay whole.
  with pytest.raises(InputError, match='shape'):
    export_to(_options(None, num_classes=21), overwrite=True)
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as stream:
    assert stream.read() == good
  assert os.listdir(tmp_path) == ['model']  # no temporary folders left


def _read_png(path):
  return np.asarray(Image.open(path))


def _check_outputs(output_dir, name, image, expected_classes):
  raw = _read_png(os.path.join(output_dir, 'raw_segmentation_results',
                               name + '.png'))
  assert raw.shape == image.shape[:2]
  assert np.sum(raw != expected_classes) == 0
  colour = _read_png(os.path.join(output_dir, 'segmentation_results',
                                  name + '.png'))
  np.testing.assert_array_equal(
      colour, get_dataset_colormap.label_to_color_image(raw, 'pascal'))
  overlay = _read_png(os.path.join(output_dir, 'overlay_results',
                                   name + '.png'))
  assert overlay.shape == image.shape


def test_predict_checkpoint_stops_at_bad_file(setup, tmp_path):
  # predict.py's main in this process (the exit code of an InputError is
  # run_reporting_errors' business): the checkpoint route, --on_bad_file=stop.
  output_dir = str(tmp_path / 'out')
  with script_flags(predict), flagsaver.flagsaver(
      checkpoint_dir=setup['checkpoint_dir'],
      input=os.path.join(setup['input_dir'], '*'), output_dir=output_dir,
      dataset='synthetic', model_variant='mobilenet_v2', output_stride=16,
      predict_crop_size=['65', '65'], eval_scales=SCALES,
      add_flipped_images=True, on_bad_file='stop'):
    with pytest.raises(InputError) as raised:
      predict.main(None)
  message = str(raised.value)
  assert message.startswith('cannot read image ')
  assert BAD in message and '--on_bad_file=stop' in message
  _check_outputs(output_dir, 'a_small', setup['images']['a_small'],
                 setup['reference']['a_small'][0])
  for folder in os.listdir(output_dir):
    assert os.listdir(os.path.join(output_dir, folder)) == ['a_small.png']


def test_predict_saved_model_skips_bad_file(setup, processes):
  """predict.py as users run it (started with the plain-TF process)."""
  output_dir = processes['predict_output']
  result = processes['predict'].result()
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.search(r'^W.*\] skipping unreadable file', result.stderr, re.M)
  assert BAD in result.stderr
  assert re.search(r'\] predict 3/3 images  [0-9.]+ images/s  ETA 0:00:00$',
                   result.stderr, re.M)
  assert '1 unreadable files skipped' in result.stdout
  for name, image in setup['images'].items():
    _check_outputs(output_dir, name, image, setup['reference'][name][0])
  for folder in os.listdir(output_dir):
    assert sorted(os.listdir(os.path.join(output_dir, folder))) == [
        'a_small.png', 'c_large.png']


# ----------------------------------------------------------------------------
# Input listing and decoding (no model).


def test_list_input_images_folder_glob_and_errors(tmp_path):
  for name in ['b.JPG', 'a.png', 'c.jpeg', 'd.gif', 'e.txt']:
    (tmp_path / name).write_bytes(b'')
  (tmp_path / 'sub.png').mkdir()
  expected = [str(tmp_path / name) for name in ['a.png', 'b.JPG', 'c.jpeg']]
  assert input_files.list_input_images(str(tmp_path)) == expected
  assert input_files.list_input_images(str(tmp_path / '*')) == expected
  assert input_files.list_input_images(str(tmp_path / 'b.*')) == expected[1:2]
  with pytest.raises(InputError, match=r'--input .*no JPEG/PNG files in this '
                     'glob'):
    input_files.list_input_images(str(tmp_path / '*.gif'))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(InputError, match='no JPEG/PNG files in this folder'):
    input_files.list_input_images(str(empty))
  (tmp_path / 'a.jpg').write_bytes(b'')
  with pytest.raises(InputError, match='both be written as a.png'):
    input_files.list_input_images(str(tmp_path))


def test_read_image_converts_and_rejects_corrupt_files(tmp_path):
  grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
  Image.fromarray(grey).save(tmp_path / 'grey.png')
  image = input_files.read_image(str(tmp_path / 'grey.png'))
  assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
  np.testing.assert_array_equal(image[..., 2], grey)
  # EXIF orientation 6 (rotate 90 degrees clockwise to view): 3x4 -> 4x3.
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(np.zeros([3, 4, 3], np.uint8)).save(
      tmp_path / 'rotated.jpg', exif=exif)
  rotated = input_files.read_image(str(tmp_path / 'rotated.jpg'))
  assert rotated.shape == (4, 3, 3)
  Image.fromarray(np.zeros([64, 64, 3], np.uint8)).save(tmp_path / 'full.png')
  data = (tmp_path / 'full.png').read_bytes()
  (tmp_path / 'cut.png').write_bytes(data[:len(data) - 20])
  (tmp_path / 'text.png').write_text('not an image')
  for name in ['cut.png', 'text.png']:
    with pytest.raises(InputError, match='cannot read image .*' + name):
      input_files.read_image(str(tmp_path / name))
