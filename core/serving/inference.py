"""Using a trained model outside training: export_model.py, predict.py.

One inference graph serves both scripts: uint8 images [N, H, W, 3] of any size
-> `classes` int32 [N, H, W] and `probabilities` float32 [N, H, W, C] at the
input size. It is the eval-mode prediction of eval.py / vis.py
(`eval_graph.predict`: one scale, or the softmax averaged over --eval_scales
and flips) with two differences that make any input size work:

* The model is built without a static crop size (`crop_size=None`), so every
  size that reaches the network is accepted; image pooling is then the mean
  over the whole feature map, which is what DeepLab's crop-sized average pool
  computes on a crop-sized input (the feature map of a crop c has
  floor((c - 1) / OS) + 1 = ceil(c / OS) cells, the pool's window).
* Like eval.py, each batch is padded at the bottom and right with the mean
  pixel (zero after the backbone's normalisation) up to `crop_size`, but a
  dimension already larger than the crop is left as it is (eval.py refuses
  such images); the outputs are cropped back to the input size. Without
  `crop_size` nothing is padded and the network sees the image alone.

With the eval crop size, an image that fits the crop therefore gets eval.py's
prediction up to float summation order in the pooled mean (probabilities agree
to ~1e-6; a class can differ only on an exact near-tie).

A SavedModel written by `export_saved_model` holds only this graph (no
training ops, no global step, no optimizer slots) and the restored variables,
with one signature:

  serving_default: images uint8 [N, H, W, 3]
                   -> classes int32 [N, H, W], probabilities float32
                      [N, H, W, C]

It loads with TensorFlow alone: `tf.saved_model.load(path)
.signatures['serving_default'](images=batch)`. `assets.extra/export_info.json`
records how it was made (dataset, classes, crop, scales, checkpoint).
"""
import collections
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from PIL import ImageOps

from core.data import data_generator
from core.eval import checkpoints
from core.eval import eval_graph
from core.flags import flag_checks
from deeplab import common
from deeplab import feature_extractor
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils.errors import InputError

SIGNATURE_KEY = 'serving_default'
INPUT_KEY = 'images'
CLASSES_KEY = 'classes'
PROBABILITIES_KEY = 'probabilities'
EXPORT_INFO_FILE = 'export_info.json'
# File extensions read by predict.py (case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


# ----------------------------------------------------------------------------
# The inference graph.


def colormap_of(dataset_name):
  """The colormap vis.py users pick for a dataset (COCO and others: pascal)."""
  return {'cityscapes': 'cityscapes', 'ade20k': 'ade20k'}.get(dataset_name,
                                                              'pascal')


def check_inference_options(image_pooling_crop_size, min_resize_value,
                            max_resize_value):
  """Raises InputError for model/eval flags the inference graph cannot honour.

  The graph has no static crop, so a separate image-pooling crop has no
  meaning, and it does not resize images to a range (eval.py's
  --min_resize_value/--max_resize_value): resize such images beforehand.
  """
  if image_pooling_crop_size:
    raise InputError('--image_pooling_crop_size is not supported by '
                     'export_model.py / predict.py (images of any size are '
                     'pooled over the whole feature map); unset it')
  if min_resize_value or max_resize_value:
    raise InputError('--min_resize_value/--max_resize_value are not supported '
                     'by export_model.py / predict.py; resize the images '
                     'beforehand and unset them')


# What export_model.py and predict.py need to build the inference graph of a
# checkpoint: crop_size [h, w] or None, eval_scales (floats > 0), num_classes
# and the checkpoint prefix.
CheckpointSettings = collections.namedtuple(
    'CheckpointSettings', ['crop_size', 'eval_scales', 'num_classes',
                           'checkpoint'])


def checkpoint_settings(flag_values, crop_flag):
  """Checks the flags export_model.py and predict.py share (one rule).

  Args:
    flag_values: the parsed flags; reads `crop_flag`, eval_scales, dataset,
      checkpoint_dir, image_pooling_crop_size, min_resize_value and
      max_resize_value.
    crop_flag: the name of the script's crop-size flag (empty: no padding).

  Returns:
    CheckpointSettings.
  """
  crop_size = flag_checks.parse_optional_crop_size(
      getattr(flag_values, crop_flag), crop_flag)
  scales = flag_checks.check_scales(flag_values.eval_scales)
  check_inference_options(flag_values.image_pooling_crop_size,
                          flag_values.min_resize_value,
                          flag_values.max_resize_value)
  descriptor = data_generator.get_dataset_descriptor(flag_values.dataset)
  checkpoint = checkpoint_paths.resolve_checkpoint(flag_values.checkpoint_dir,
                                                   'checkpoint_dir')
  return CheckpointSettings(crop_size, scales, descriptor.num_classes,
                            checkpoint)


def _pad_bottom_right(images, crop_size, pad_value):
  """Pads float [N, H, W, 3] to [N, max(H, crop_h), max(W, crop_w), 3]."""
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  extra_height = tf.maximum(crop_size[0] - height, 0)
  extra_width = tf.maximum(crop_size[1] - width, 0)
  return tf.pad(images, [[0, 0], [0, extra_height], [0, extra_width], [0, 0]],
                constant_values=pad_value)


def build_inference(images, model_options, eval_scales=(1.0,),
                    add_flipped_images=False, crop_size=None,
                    image_pyramid=None):
  """Eval-mode prediction of uint8 images at their own size (graph ops).

  Args:
    images: uint8 tensor [N, H, W, 3], any H and W.
    model_options: common.ModelOptions; its crop_size is ignored (None is
      used, see the module docstring).
    eval_scales: inference scales (>0).
    add_flipped_images: also average over left-right flipped inputs.
    crop_size: [h, w] to pad the inputs up to (bottom/right, mean pixel), or
      None for no padding.
    image_pyramid: single-scale input pyramid (--image_pyramid), or None.

  Returns:
    {'classes': int32 [N, H, W], 'probabilities': float32 [N, H, W, C]}.
  """
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  inputs = tf.cast(images, tf.float32)
  if crop_size:
    inputs = _pad_bottom_right(
        inputs, [int(d) for d in crop_size],
        feature_extractor.mean_pixel(model_options.model_variant))
  predictions = eval_graph.predict(
      inputs, model_options._replace(crop_size=None), list(eval_scales),
      add_flipped_images, image_pyramid)
  classes = predictions[common.OUTPUT_TYPE][:, :height, :width]
  probabilities = predictions[common.OUTPUT_TYPE + '_prob']
  probabilities = probabilities[:, :height, :width, :]
  return {CLASSES_KEY: tf.identity(tf.cast(classes, tf.int32),
                                   name=CLASSES_KEY),
          PROBABILITIES_KEY: tf.identity(tf.cast(probabilities, tf.float32),
                                         name=PROBABILITIES_KEY)}


def _image_placeholder():
  return tf.placeholder(tf.uint8, [None, None, None, 3], name=INPUT_KEY)


# ----------------------------------------------------------------------------
# Export.


def check_export_dir(export_dir, overwrite):
  """Raises InputError if `export_dir` may not be written."""
  if os.path.lexists(export_dir):
    if not overwrite:
      raise InputError('--export_dir %s already exists; pass --overwrite to '
                       'replace it, or choose a new folder' % export_dir)
    if not os.path.isdir(export_dir):
      raise InputError('--export_dir %s exists and is not a directory'
                       % export_dir)
  parent = os.path.dirname(os.path.abspath(export_dir))
  if not os.path.isdir(parent):
    raise InputError('the parent folder of --export_dir %s does not exist'
                     % export_dir)


def _replace_directory(source, target):
  """Moves the finished `source` folder to `target`, replacing any old one.

  The old folder is first renamed aside, so `target` is at every moment either
  the complete old export or the complete new one.
  """
  aside = None
  if os.path.lexists(target):
    aside = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)),
                             prefix='.%s.old-' % os.path.basename(target))
    aside = os.path.join(aside, 'old')
    os.rename(target, aside)
  try:
    os.rename(source, target)
  except BaseException:
    if aside is not None:
      os.rename(aside, target)
    raise
  if aside is not None:
    shutil.rmtree(os.path.dirname(aside))


def export_saved_model(checkpoint_path, export_dir, model_options, info,
                       eval_scales=(1.0,), add_flipped_images=False,
                       crop_size=None, image_pyramid=None, overwrite=False):
  """Writes the inference graph with the checkpoint's variables as a SavedModel.

  The SavedModel is built in a temporary folder next to `export_dir` and
  renamed into place when complete; an existing `export_dir` is an InputError
  unless `overwrite`.

  Args:
    checkpoint_path: checkpoint prefix (see checkpoint_paths.resolve_checkpoint).
    export_dir: folder to create.
    model_options: common.ModelOptions of the trained model.
    info: dict of JSON-serialisable facts stored as
      `assets.extra/export_info.json` (dataset, num_classes, ...).
    eval_scales, add_flipped_images, crop_size, image_pyramid: see
      `build_inference`; baked into the graph.
    overwrite: replace an existing `export_dir`.

  Returns:
    The names of the model variables the checkpoint lacked (kept at their
    initial values; see checkpoints.restore_variables).
  """
  check_export_dir(export_dir, overwrite)
  staging = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(export_dir)),
                             prefix='.%s.tmp-' % os.path.basename(export_dir))
  try:
    saved_model_dir = os.path.join(staging, 'saved_model')
    with tf.Graph().as_default():
      images = _image_placeholder()
      # Resource variables: TF2's loader wraps them without complaint (one
      # warning per reference variable otherwise); same names and values.
      with tf.variable_scope(tf.get_variable_scope(), use_resource=True):
        outputs = build_inference(images, model_options, eval_scales,
                                  add_flipped_images, crop_size,
                                  image_pyramid)
      with tf.Session() as sess:
        missing = checkpoints.restore_variables(sess, checkpoint_path)
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={INPUT_KEY: images}, outputs=outputs)
        builder = tf.saved_model.Builder(saved_model_dir)
        builder.add_meta_graph_and_variables(
            sess, [tf.saved_model.tag_constants.SERVING],
            signature_def_map={SIGNATURE_KEY: signature},
            strip_default_attrs=True)
        builder.save()
    extra = os.path.join(saved_model_dir, 'assets.extra')
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, EXPORT_INFO_FILE), 'w') as stream:
      json.dump(info, stream, indent=2, sort_keys=True)
      stream.write('\n')
    _replace_directory(saved_model_dir, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return missing


def read_export_info(saved_model_dir):
  """The export's `export_info.json` as a dict ({} when absent)."""
  path = os.path.join(saved_model_dir, 'assets.extra', EXPORT_INFO_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path) as stream:
    return json.load(stream)


# ----------------------------------------------------------------------------
# Predictors: uint8 [H, W, 3] -> int32 class map [H, W].


class CheckpointPredictor(object):
  """Runs the inference graph on a checkpoint in its own graph and session."""

  def __init__(self, checkpoint_path, model_options, eval_scales=(1.0,),
               add_flipped_images=False, crop_size=None, image_pyramid=None):
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._images = _image_placeholder()
      self._outputs = build_inference(self._images, model_options,
                                      eval_scales, add_flipped_images,
                                      crop_size, image_pyramid)
      self._session = tf.Session(graph=self._graph)
      checkpoints.restore_variables(self._session, checkpoint_path)

  def predict(self, image, key=CLASSES_KEY):
    """Output `key` for one uint8 image [H, W, 3] (batch dimension dropped)."""
    return self._session.run(self._outputs[key],
                             {self._images: image[np.newaxis]})[0]

  def close(self):
    self._session.close()


class SavedModelPredictor(object):
  """Runs the `serving_default` signature of an exported SavedModel."""

  def __init__(self, saved_model_dir):
    if not tf.saved_model.contains_saved_model(saved_model_dir):
      raise InputError('--saved_model_dir %s holds no SavedModel '
                       '(saved_model.pb)' % saved_model_dir)
    self._graph = tf.Graph()
    self._session = tf.Session(graph=self._graph)
    with self._graph.as_default():
      meta_graph = tf.saved_model.loader.load(
          self._session, [tf.saved_model.tag_constants.SERVING],
          saved_model_dir)
    signatures = meta_graph.signature_def
    if SIGNATURE_KEY not in signatures:
      raise InputError('--saved_model_dir %s has no %r signature (not made '
                       'by export_model.py?)' % (saved_model_dir,
                                                 SIGNATURE_KEY))
    signature = signatures[SIGNATURE_KEY]
    missing = ({INPUT_KEY} - set(signature.inputs)) | (
        {CLASSES_KEY, PROBABILITIES_KEY} - set(signature.outputs))
    if missing:
      raise InputError('the %r signature of --saved_model_dir %s lacks %s' %
                       (SIGNATURE_KEY, saved_model_dir,
                        ', '.join(sorted(missing))))
    self._images = signature.inputs[INPUT_KEY].name
    self._outputs = {key: tensor.name
                     for key, tensor in signature.outputs.items()}

  def predict(self, image, key=CLASSES_KEY):
    """Output `key` for one uint8 image [H, W, 3] (batch dimension dropped)."""
    return self._session.run(self._outputs[key],
                             {self._images: image[np.newaxis]})[0]

  def close(self):
    self._session.close()


# ----------------------------------------------------------------------------
# Input files.


def list_input_images(pattern):
  """The image files named by a folder or a glob, sorted.

  A folder gives its *.jpg/*.jpeg/*.png files (not recursive, any case); a
  glob gives the matching files with those extensions.

  Raises:
    InputError: no image matches, or two inputs share an output name.
  """
  if os.path.isdir(pattern):
    candidates = [os.path.join(pattern, name) for name in os.listdir(pattern)]
    where = 'folder'
  else:
    candidates = tf.io.gfile.glob(pattern)
    where = 'glob'
  paths = sorted(path for path in candidates if os.path.isfile(path) and
                 os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS)
  if not paths:
    raise InputError('--input %s: no JPEG/PNG files in this %s (extensions: '
                     '%s)' % (pattern, where, ', '.join(IMAGE_EXTENSIONS)))
  seen = {}
  for path in paths:
    name = output_name(path)
    if name in seen:
      raise InputError('--input %s: %s and %s would both be written as '
                       '%s.png; rename one' % (pattern, seen[name], path,
                                               name))
    seen[name] = path
  return paths


def output_name(path):
  """Output file stem of an input image: its name without the extension."""
  return os.path.splitext(os.path.basename(path))[0]


def read_image(path):
  """Decodes an image file to uint8 [H, W, 3] RGB.

  EXIF orientation is applied (photos come out upright, as viewers show
  them); grey, palette and alpha images are converted to RGB.

  Raises:
    InputError: the file cannot be read or decoded (names the file).
  """
  try:
    with Image.open(path) as image:
      image.load()
      image = ImageOps.exif_transpose(image).convert('RGB')
      return np.asarray(image, dtype=np.uint8)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise InputError('cannot read image %s: %s' % (path, e))


# ----------------------------------------------------------------------------
# Progress.


class ProgressLine(object):
  """One progress line `done/total images, s/image, ETA` on a stream.

  On a terminal the line is rewritten in place; otherwise a line is printed at
  most every `every_secs` seconds and at the end.
  """

  def __init__(self, total, label, stream=None, every_secs=10.0,
               clock=time.time):
    self._total = total
    self._label = label
    self._stream = stream or sys.stderr
    self._every_secs = every_secs
    self._clock = clock
    self._start = clock()
    self._last_print = None
    self._tty = hasattr(self._stream, 'isatty') and self._stream.isatty()
    self.done = 0

  def text(self):
    """The current line, e.g. `predict: 3/10 images, 1.50 s/image, ETA 0:10`."""
    elapsed = self._clock() - self._start
    line = '%s: %d/%d images' % (self._label, self.done, self._total)
    if self.done:
      per_image = elapsed / self.done
      remaining = int(round(per_image * (self._total - self.done)))
      line += ', %.2f s/image, ETA %d:%02d' % (per_image, remaining // 60,
                                              remaining % 60)
    return line

  def add(self, count=1):
    """Counts `count` more images (done or skipped) and shows the line."""
    self.done += count
    now = self._clock()
    if self._tty:
      self._stream.write('\r' + self.text() + '\x1b[K')
      self._stream.flush()
    elif (self.done == self._total or self._last_print is None or
          now - self._last_print >= self._every_secs):
      self._stream.write(self.text() + '\n')
      self._stream.flush()
      self._last_print = now

  def note(self, text):
    """Writes `text` on a line of its own (a warning between updates)."""
    if self._tty:
      self._stream.write('\r\x1b[K')
    self._stream.write(text + '\n')
    if self._tty and self.done:
      self._stream.write(self.text())
    self._stream.flush()

  def finish(self):
    """Ends the line (terminal)."""
    if self._tty:
      self._stream.write('\n')
      self._stream.flush()
