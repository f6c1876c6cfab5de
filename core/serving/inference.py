"""The inference graph of a trained model and the predictors running it
(export_model.py, predict.py).

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

A predictor runs the graph on one image at a time, on a checkpoint
(`CheckpointPredictor`) or on a SavedModel of core/serving/export.py
(`SavedModelPredictor`).
"""
import numpy as np

from core.eval import checkpoints
from core.eval import eval_graph
from deeplab import common
from deeplab import feature_extractor
from deeplab.tf_compat import tf
from utils.errors import InputError

SIGNATURE_KEY = 'serving_default'
INPUT_KEY = 'images'
CLASSES_KEY = 'classes'
PROBABILITIES_KEY = 'probabilities'


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


def image_placeholder():
  """A uint8 [N, H, W, 3] placeholder named `images` (the signature input)."""
  return tf.placeholder(tf.uint8, [None, None, None, 3], name=INPUT_KEY)


# ----------------------------------------------------------------------------
# Predictors: uint8 [H, W, 3] -> int32 class map [H, W].


class CheckpointPredictor(object):
  """Runs the inference graph on a checkpoint in its own graph and session."""

  def __init__(self, checkpoint_path, model_options, eval_scales=(1.0,),
               add_flipped_images=False, crop_size=None, image_pyramid=None):
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._images = image_placeholder()
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
