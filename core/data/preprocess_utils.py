"""Tensor helpers of the input preprocessing (pad, crop, flip, scale, jitter).

Every random helper takes an explicit `seed`: an int64 tensor of shape [2] that
keys TF's stateless random ops. The same seed always gives the same draw, so a
pipeline that derives one seed per element from a seeded stream is repeatable
even with parallel map calls. Sub-seeds for independent draws come from
`split_seed`.

Images are float32 [height, width, channels]; labels and masks are int32
[height, width, 1]. Resize semantics follow the project notation: image scaling
in augmentation is bilinear with antialiasing ("bilinear-AA"), label scaling is
nearest with align_corners ("nearest-AC"), resize-to-range uses bilinear-AC for
images.
"""
from deeplab import resize
from deeplab.tf_compat import tf
from utils.errors import InputError

def split_seed(seed, num):
  """Derives `num` independent stateless seeds from `seed`.

  Args:
    seed: int64 (or int32) tensor of shape [2].
    num: Python int, number of sub-seeds.

  Returns:
    int64 tensor of shape [num, 2].
  """
  return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num)


def resolve_shape(tensor, rank):
  """Returns the shape of `tensor`: static ints where known, else scalars."""
  static = tensor.get_shape().with_rank(rank).as_list()
  dynamic = tf.unstack(tf.shape(tensor), rank)
  return [s if s is not None else d for s, d in zip(static, dynamic)]


def pad_to_size(tensor, target_height, target_width, pad_value):
  """Pads `tensor` [h, w, c] at the bottom and right to [target_h, target_w, c].

  Args:
    tensor: rank-3 tensor.
    target_height: int or int32 scalar, >= h (checked at run time).
    target_width: int or int32 scalar, >= w (checked at run time).
    pad_value: Python number of `tensor`'s dtype used for the new pixels.

  Returns:
    The padded tensor, same dtype.

  Raises:
    InputError: if the sizes are static and the target is smaller.
  """
  height, width, _ = resolve_shape(tensor, 3)
  if all(isinstance(size, int)
         for size in (height, width, target_height, target_width)):
    if target_height < height or target_width < width:
      raise InputError('Cannot pad a tensor of height, width %d, %d to the '
                       'smaller size %d, %d.' % (height, width, target_height,
                                                 target_width))
  check = tf.debugging.Assert(
      tf.logical_and(tf.greater_equal(target_height, height),
                     tf.greater_equal(target_width, width)),
      ['Cannot pad a tensor of height, width', height, width,
       'to the smaller size', target_height, target_width])
  with tf.control_dependencies([check]):
    paddings = tf.stack([[0, target_height - height], [0, target_width - width],
                         [0, 0]])
  return tf.pad(tensor, paddings, constant_values=pad_value)


def random_crop(tensors, crop_height, crop_width, seed):
  """Crops every tensor of `tensors` at the same random offset.

  Args:
    tensors: list of rank-3 tensors with equal height and width (>= crop).
    crop_height: Python int.
    crop_width: Python int.
    seed: stateless seed, shape [2].

  Returns:
    List of tensors of static spatial shape [crop_height, crop_width].
  """
  height, width, _ = resolve_shape(tensors[0], 3)
  check = tf.debugging.Assert(
      tf.logical_and(tf.greater_equal(height, crop_height),
                     tf.greater_equal(width, crop_width)),
      ['Crop size is larger than the (padded) image:', height, width])
  seeds = split_seed(seed, 2)
  with tf.control_dependencies([check]):
    offset_height = tf.random.stateless_uniform(
        [], seeds[0], minval=0, maxval=height - crop_height + 1, dtype=tf.int32)
    offset_width = tf.random.stateless_uniform(
        [], seeds[1], minval=0, maxval=width - crop_width + 1, dtype=tf.int32)
  cropped = []
  for tensor in tensors:
    channels = tensor.get_shape().as_list()[2]
    crop = tf.slice(tensor, tf.stack([offset_height, offset_width, 0]),
                    [crop_height, crop_width, -1])
    crop.set_shape([crop_height, crop_width, channels])
    cropped.append(crop)
  return cropped


def random_flip_left_right(tensors, seed, prob=0.5):
  """Flips all `tensors` horizontally together with probability `prob`.

  The flip happens when U[0, 1) <= prob, as in the original.
  Kept on purpose, no measurable effect (docs/DESIGN.md §Quirks 15).

  Args:
    tensors: list of rank-3 tensors.
    seed: stateless seed, shape [2].
    prob: flip probability.

  Returns:
    (list of tensors, boolean scalar `is_flipped`).
  """
  is_flipped = tf.less_equal(
      tf.random.stateless_uniform([], seed, dtype=tf.float32), prob)
  flipped = [
      tf.cond(is_flipped, lambda t=t: tf.reverse(t, [1]), lambda t=t: t)
      for t in tensors]
  return flipped, is_flipped


def get_random_scale(min_scale_factor, max_scale_factor, step_size, seed):
  """Draws the augmentation scale factor.

  Args:
    min_scale_factor: Python float > 0.
    max_scale_factor: Python float >= min_scale_factor.
    step_size: 0 for a continuous U[min, max) draw; otherwise the scale is
      uniformly one of linspace(min, max, int((max - min) / step_size + 1)).
    seed: stateless seed, shape [2].

  Returns:
    float32 scalar. Equals min_scale_factor when min == max.

  Raises:
    InputError: if the range is invalid.
  """
  if min_scale_factor <= 0 or min_scale_factor > max_scale_factor:
    raise InputError('Invalid scale range: need 0 < min_scale_factor (%s) <= '
                     'max_scale_factor (%s).' % (min_scale_factor,
                                                 max_scale_factor))
  if step_size < 0:
    raise InputError('scale_factor_step_size must be >= 0, got %s.' % step_size)
  if min_scale_factor == max_scale_factor:
    return tf.constant(min_scale_factor, tf.float32)
  if step_size == 0:
    return tf.random.stateless_uniform(
        [], seed, minval=min_scale_factor, maxval=max_scale_factor,
        dtype=tf.float32)
  num_steps = int((max_scale_factor - min_scale_factor) / step_size + 1)
  scales = tf.linspace(float(min_scale_factor), float(max_scale_factor),
                       num_steps)
  index = tf.random.stateless_uniform([], seed, minval=0, maxval=num_steps,
                                      dtype=tf.int32)
  return scales[index]


def scale_image_and_label(image, label, scale):
  """Rescales image (bilinear-AA) and label (nearest-AC) by `scale`.

  The new size truncates (h * scale, w * scale).

  Args:
    image: float32 [h, w, 3].
    label: int32 [h, w, 1] or None.
    scale: float32 scalar.

  Returns:
    (image float32 [h', w', 3], label int32 [h', w', 1] or None).
  """
  height, width, _ = resolve_shape(image, 3)
  new_size = tf.stack([
      tf.cast(tf.cast(height, tf.float32) * scale, tf.int32),
      tf.cast(tf.cast(width, tf.float32) * scale, tf.int32)])
  # do not fix: changes results (docs/DESIGN.md §Quirks 13)
  image = resize.bilinear_aa(image, new_size)
  if label is not None:
    label = resize.nearest_ac(label[tf.newaxis], new_size)[0]
  return image, label


def resize_to_range_size(height, width, min_size=None, max_size=None,
                         factor=None):
  """Computes the resize-to-range output size (keeps the aspect ratio).

  The short side becomes `min_size` unless that makes the long side exceed
  `max_size`, in which case the long side becomes `max_size`. With `factor`,
  both sides are then rounded up to the next value = 1 (mod factor), and
  `max_size` is first lowered to such a value so the cap still holds.

  Args:
    height: int32 scalar.
    width: int32 scalar.
    min_size: Python int or None (None: size driven by max_size only).
    max_size: Python int or None.
    factor: Python int or None.

  Returns:
    int32 tensor [new_height, new_width].
  """
  if factor and max_size:
    max_size -= (max_size - 1) % factor
  size = tf.cast(tf.stack([height, width]), tf.float32)
  new_size = size
  if min_size:
    new_size = tf.floor(size * (min_size / tf.reduce_min(size)))
  if max_size:
    capped = tf.floor(size * (max_size / tf.reduce_max(size)))
    new_size = tf.cond(tf.reduce_max(new_size) > max_size,
                       lambda: capped, lambda: new_size)
  new_size = tf.cast(new_size, tf.int32)
  if factor:
    new_size += (factor - (new_size - 1) % factor) % factor
  return new_size


def resize_to_range(image, label=None, min_size=None, max_size=None,
                    factor=None):
  """Resizes image (bilinear-AC) and label (nearest-AC) to the range size.

  Args:
    image: float32 [h, w, 3].
    label: int32 [h, w, 1] or None.
    min_size, max_size, factor: see `resize_to_range_size`.

  Returns:
    (image, label) resized; label None if it was None.
  """
  height, width, _ = resolve_shape(image, 3)
  new_size = resize_to_range_size(height, width, min_size, max_size, factor)
  image = resize.bilinear_ac(image[tf.newaxis], new_size)[0]
  if label is not None:
    label = resize.nearest_ac(label[tf.newaxis], new_size)[0]
  return image, label


def color_jitter(image, brightness, contrast, saturation, hue, seed):
  """Applies the four colour jitters once each, in a random order.

  Uses TF's `adjust_*` semantics and clips to [0, 1] after every op.

  Args:
    image: float32 [h, w, 3] in [0, 1].
    brightness: max additive delta (delta ~ U[-b, b]).
    contrast: factor ~ U[1 - c, 1 + c] around the per-channel mean.
    saturation: factor ~ U[1 - s, 1 + s] (HSV).
    hue: shift ~ U[-h, h] (HSV, modulo 1).
    seed: stateless seed, shape [2].

  Returns:
    float32 [h, w, 3] in [0, 1].
  """
  seeds = split_seed(seed, 5)

  def uniform(index, low, high):
    return tf.random.stateless_uniform([], seeds[index], minval=low,
                                       maxval=high, dtype=tf.float32)

  delta_brightness = uniform(0, -brightness, brightness)
  factor_contrast = uniform(1, 1. - contrast, 1. + contrast)
  factor_saturation = uniform(2, 1. - saturation, 1. + saturation)
  delta_hue = uniform(3, -hue, hue)
  # A uniformly random permutation of the 4 ops: argsort of 4 uniform draws.
  order = tf.argsort(tf.random.stateless_uniform([4], seeds[4]))

  def clipped(op):
    return lambda: tf.clip_by_value(op(), 0., 1.)

  for position in range(4):
    current = image
    image = tf.switch_case(order[position], [
        clipped(lambda: tf.image.adjust_brightness(current, delta_brightness)),
        clipped(lambda: tf.image.adjust_contrast(current, factor_contrast)),
        clipped(lambda: tf.image.adjust_saturation(current, factor_saturation)),
        clipped(lambda: tf.image.adjust_hue(current, delta_hue)),
    ])
  return image


def cutout_mask(height, width, center_y, center_x, pad_size):
  """Boolean [height, width] mask of the cut-out square.

  Rows [max(0, cy - pad_size), min(height, cy + pad_size)), columns likewise.
  """
  rows = tf.range(height)
  cols = tf.range(width)
  in_rows = tf.logical_and(rows >= center_y - pad_size,
                           rows < center_y + pad_size)
  in_cols = tf.logical_and(cols >= center_x - pad_size,
                           cols < center_x + pad_size)
  return tf.logical_and(in_rows[:, tf.newaxis], in_cols[tf.newaxis, :])


def random_cutout(tensors_and_fill_values, pad_size, seed):
  """Overwrites one random square (centre uniform over the image) per tensor.

  Args:
    tensors_and_fill_values: list of (rank-3 tensor, Python fill value); all
      tensors have the same height and width.
    pad_size: half side of the square (50 in PseudoSeg).
    seed: stateless seed, shape [2].

  Returns:
    List of tensors with the square set to their fill value.
  """
  height, width, _ = resolve_shape(tensors_and_fill_values[0][0], 3)
  seeds = split_seed(seed, 2)
  center_y = tf.random.stateless_uniform([], seeds[0], minval=0, maxval=height,
                                         dtype=tf.int32)
  center_x = tf.random.stateless_uniform([], seeds[1], minval=0, maxval=width,
                                         dtype=tf.int32)
  mask = cutout_mask(height, width, center_y, center_x, pad_size)
  mask = mask[:, :, tf.newaxis]
  return [tf.where(tf.broadcast_to(mask, tf.shape(tensor)),
                   tf.fill(tf.shape(tensor), tf.cast(fill, tensor.dtype)),
                   tensor)
          for tensor, fill in tensors_and_fill_values]


def image_level_labels(label, num_classes, ignore_label):
  """Multi-hot vector of the foreground classes present in `label`.

  Values >= ignore_label are skipped; value k >= 1 sets entry k - 1; background
  (0) sets nothing. Values in [num_classes, ignore_label) are skipped too (the
  data pipeline does not validate the label range).

  Args:
    label: int32 tensor of any shape.
    num_classes: Python int C, including background.
    ignore_label: Python int.

  Returns:
    float32 [C - 1].
  """
  values = tf.reshape(label, [-1])
  values = tf.boolean_mask(
      values, tf.logical_and(values >= 0, values < ignore_label))
  counts = tf.math.bincount(values, minlength=num_classes,
                            maxlength=num_classes)
  present = tf.cast(counts[1:] > 0, tf.float32)
  present.set_shape([num_classes - 1])
  return present
