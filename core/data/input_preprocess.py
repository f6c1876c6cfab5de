"""Training and evaluation preprocessing of one (image, label) pair.

Training (docs/DESIGN.md §Data flow): optional resize-to-range, random scale, optional strong
colour jitter on the scaled image, pad to the crop (image and strong view with
the mean pixel, label with the ignore label, valid mask with 0), one random crop
shared by all views, cut-out on the strong view (which also ignores the label
and the valid mask there), one horizontal flip shared by all views.

Evaluation (docs/DESIGN.md §Data flow): optional resize-to-range, then pad to the crop size; the
image must already fit in the crop.
"""
from core.data import preprocess_utils
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import InputError

# Every supported backbone (xception_*, mobilenet_v2) normalises inputs as
# x / 127.5 - 1, so padding with 127.5 pads with zeros after normalisation.
MEAN_PIXEL = 127.5

# Strong view (docs/DESIGN.md §Data flow): colour jitter strengths and cut-out half side.
STRONG_BRIGHTNESS = 0.5
STRONG_CONTRAST = 0.5
STRONG_SATURATION = 0.5
STRONG_HUE = 0.25
CUTOUT_PAD_SIZE = 50

# Number of independent random draws per example (scale, jitter, crop,
# cut-out, flip).
_NUM_DRAWS = 5


def strong_color_jitter(image, seed):
  """The strong view's colour jitter of a float image in [0, 255] (docs/DESIGN.md §Data flow)."""
  jittered = preprocess_utils.color_jitter(
      image / 255., STRONG_BRIGHTNESS, STRONG_CONTRAST, STRONG_SATURATION,
      STRONG_HUE, seed)
  jittered.set_shape(image.get_shape())
  return jittered * 255.


_TOO_LARGE = ('Image larger than the eval crop size; increase the crop size '
              '(eval_crop_size / vis_crop_size) to at least the largest image.')


def _check_fits_crop(image, crop_height, crop_width):
  """Checks that `image` is not larger than the eval crop.

  Returns:
    The run-time assertion op (for dynamic shapes).

  Raises:
    InputError: if the image shape is static and too large.
  """
  height, width, _ = preprocess_utils.resolve_shape(image, 3)
  if isinstance(height, int) and isinstance(width, int) and (
      height > crop_height or width > crop_width):
    raise InputError('%s Image height, width: %d, %d; crop: %d, %d.' %
                     (_TOO_LARGE, height, width, crop_height, crop_width))
  return tf.debugging.Assert(
      tf.logical_and(height <= crop_height, width <= crop_width),
      [_TOO_LARGE, 'Image height, width:', height, width,
       'crop height, width:', crop_height, crop_width])


def _valid_mask(image):
  """int32 [h, w, 1] of ones: the non-padded area before padding."""
  return tf.ones_like(image[:, :, :1], dtype=tf.int32)


def preprocess_image_and_label(image, label, crop_height, crop_width,
                               min_resize_value=None, max_resize_value=None,
                               resize_factor=None, min_scale_factor=1.,
                               max_scale_factor=1., scale_factor_step_size=0,
                               ignore_label=255, is_training=True,
                               model_variant=None, strong_weak=False,
                               output_valid=False, seed=None):
  """Preprocesses one example.

  Args:
    image: uint8 (or float) [h, w, 3].
    label: uint8/int [h, w, 1], or None (test split).
    crop_height: Python int, output height.
    crop_width: Python int, output width.
    min_resize_value: resize-to-range short side, or None.
    max_resize_value: resize-to-range long-side cap, or None.
    resize_factor: resize-to-range sides = 1 (mod factor), or None.
    min_scale_factor: smallest augmentation scale (training).
    max_scale_factor: largest augmentation scale (training).
    scale_factor_step_size: scale step (0: continuous), see
      `preprocess_utils.get_random_scale`.
    ignore_label: label value of padding and cut-out.
    is_training: training augmentation, else eval padding only.
    model_variant: backbone name; every supported variant pads with
      MEAN_PIXEL (kept for DeepLab's interface).
    strong_weak: also return the strong view (training only).
    output_valid: also return the valid mask.
    seed: int64 [2] stateless seed of this example; None draws one at random.

  Returns:
    Dict with `common.IMAGE` float32 [crop_h, crop_w, 3] in [0, 255],
    `common.LABEL` int32 [crop_h, crop_w, 1] (if a label was given),
    `common.VALID` int32 [crop_h, crop_w, 1] (if output_valid: 1 on the image,
    0 on padding and cut-out) and `common.STRONG` float32 [crop_h, crop_w, 3]
    (if strong_weak). Training outputs have a static crop shape; eval outputs
    are padded to the crop size; a (resized) image larger than the crop raises
    InputError for static shapes, else InvalidArgumentError at run time.

  Raises:
    InputError: if strong_weak is requested outside training, or the scale
      range is invalid.
  """
  del model_variant  # The pad value is MEAN_PIXEL for every variant.
  if strong_weak and not is_training:
    raise InputError('strong_weak (weak/strong views) is a training '
                     'augmentation; it needs is_training=True.')
  if seed is None:
    seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
  seeds = preprocess_utils.split_seed(seed, _NUM_DRAWS)

  image = tf.cast(image, tf.float32)
  if label is not None:
    label = tf.cast(label, tf.int32)
  if min_resize_value or max_resize_value:
    image, label = preprocess_utils.resize_to_range(
        image, label, min_resize_value, max_resize_value, resize_factor)

  if not is_training:
    return _preprocess_for_eval(image, label, crop_height, crop_width,
                                ignore_label, output_valid)

  # Only scale 1 skips the resize; do not fix: changes results (docs/DESIGN.md §Quirks 14)
  if not min_scale_factor == max_scale_factor == 1:
    scale = preprocess_utils.get_random_scale(
        min_scale_factor, max_scale_factor, scale_factor_step_size, seeds[0])
    image, label = preprocess_utils.scale_image_and_label(image, label, scale)

  # Views and their pad values, cropped and flipped together.
  views = [(common.IMAGE, image, MEAN_PIXEL)]
  if strong_weak:
    views.append((common.STRONG, strong_color_jitter(image, seeds[1]),
                  MEAN_PIXEL))
  if label is not None:
    views.append((common.LABEL, label, ignore_label))
  if output_valid:
    views.append((common.VALID, _valid_mask(image), 0))

  height, width, _ = preprocess_utils.resolve_shape(image, 3)
  target_height = tf.maximum(height, crop_height)
  target_width = tf.maximum(width, crop_width)
  padded = [preprocess_utils.pad_to_size(tensor, target_height, target_width,
                                         pad)
            for _, tensor, pad in views]
  cropped = preprocess_utils.random_crop(padded, crop_height, crop_width,
                                         seeds[2])
  outputs = {key: tensor for (key, _, _), tensor in zip(views, cropped)}

  if strong_weak:
    # The cut-out hides content from the strong view only; the label and valid
    # mask are cleared there so no loss looks at the hidden pixels.
    # do not fix: changes results (docs/DESIGN.md §Quirks 7, 8, 12)
    cut = [(common.STRONG, MEAN_PIXEL), (common.LABEL, ignore_label),
           (common.VALID, 0)]
    cut = [(key, fill) for key, fill in cut if key in outputs]
    cut_tensors = preprocess_utils.random_cutout(
        [(outputs[key], fill) for key, fill in cut], CUTOUT_PAD_SIZE, seeds[3])
    outputs.update(zip([key for key, _ in cut], cut_tensors))

  keys = sorted(outputs)
  flipped, _ = preprocess_utils.random_flip_left_right(
      [outputs[key] for key in keys], seeds[4])
  return dict(zip(keys, flipped))


def _preprocess_for_eval(image, label, crop_height, crop_width, ignore_label,
                         output_valid):
  """Pads image/label/valid bottom/right to the crop size, with static shape."""
  with tf.control_dependencies([_check_fits_crop(image, crop_height,
                                                 crop_width)]):
    image = tf.identity(image)
  views = [(common.IMAGE, image, MEAN_PIXEL, 3)]
  if label is not None:
    views.append((common.LABEL, label, ignore_label, 1))
  if output_valid:
    views.append((common.VALID, _valid_mask(image), 0, 1))
  outputs = {}
  for key, tensor, pad, channels in views:
    padded = preprocess_utils.pad_to_size(tensor, crop_height, crop_width, pad)
    padded.set_shape([crop_height, crop_width, channels])
    outputs[key] = padded
  return outputs
