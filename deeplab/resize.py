"""Every resize of the code base, one function per semantics.

Names follow the project notation: AC = `align_corners=True`, AA = antialiased,
legacy = TF1's default nearest (`align_corners=False`,
`half_pixel_centers=False`). Each function is the one TF op its callers used
before, with the same arguments, so results are bit-identical.

Sizes are [height, width]: Python ints or an int32 tensor of shape [2].
"""
import numpy as np

from deeplab.tf_compat import tf


def bilinear_ac(images, size):
  """Bilinear-AC resize (features, logits, probabilities, eval images).

  Args:
    images: numeric tensor [N, H, W, C].
    size: [h, w].

  Returns:
    float32 [N, h, w, C].
  """
  return tf.image.resize_bilinear(images, size, align_corners=True)


def nearest_ac(labels, size):
  """Nearest-AC resize (labels in the loss, preprocessing and prediction).

  Args:
    labels: tensor [N, H, W, C] of any dtype.
    size: [h, w].

  Returns:
    [N, h, w, C], same dtype.
  """
  return tf.image.resize_nearest_neighbor(labels, size, align_corners=True)


def bilinear_aa(image, size):
  """Bilinear resize with antialiasing (TF2 API), the augmentation's scaling.

  Args:
    image: float32 [H, W, C] or [N, H, W, C].
    size: [h, w].

  Returns:
    float32 [h, w, C] or [N, h, w, C].
  """
  return tf.compat.v2.image.resize(image, size, method='bilinear',
                                   antialias=True)


def labels_nearest_legacy(labels, size):
  """Legacy nearest resize of a label or mask map, squeezed to int32.

  The valid mask of the losses and the labels of the training accuracies use
  it (the original's choice; unlike nearest-AC it picks the top-left source
  pixel of each cell). TF1 legacy nearest; do not fix: changes results
  (docs/DESIGN.md §Quirks 13).

  Args:
    labels: int tensor [N, H, W, 1].
    size: [h, w].

  Returns:
    int32 [N, h, w].
  """
  resized = tf.image.resize_nearest_neighbor(
      labels, size, align_corners=False, half_pixel_centers=False)
  return tf.cast(tf.squeeze(resized, axis=3), tf.int32)


def nearest_ac_numpy(label, height, width):
  """Nearest-AC resize of a numpy [h, w] array (vis.py's original-size maps).

  Source index = min(round(dst * (in - 1) / (out - 1)), in - 1), rounding half
  away from zero, as `nearest_ac` computes.

  Returns:
    [height, width], the dtype of `label`.
  """
  def indices(size_in, size_out):
    if size_out == 1:
      return np.zeros([1], dtype=np.int64)
    positions = np.arange(size_out) * (size_in - 1) / float(size_out - 1)
    return np.minimum(np.floor(positions + 0.5).astype(np.int64), size_in - 1)
  label = np.asarray(label)
  rows = indices(label.shape[0], height)
  columns = indices(label.shape[1], width)
  return label[rows][:, columns]
