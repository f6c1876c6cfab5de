"""Saving label maps and overlays as PNG files (vis.py), docs/DESIGN.md §Evaluation.

Files are written atomically (utils/atomic_write.py), so a crash never leaves a
truncated PNG behind and every PNG gets the mode umask allows (0644 usually).
"""
import os

import numpy as np
from PIL import Image

from utils import atomic_write
from utils import get_dataset_colormap
from utils.errors import InputError


def _png_path(save_dir, filename):
  """`<save_dir>/<filename>.png`; bytes names (from tf strings) are decoded."""
  if isinstance(filename, bytes):
    filename = filename.decode('utf-8')
  return os.path.join(save_dir, '%s.png' % filename)


def _write_png_atomically(array_uint8, path):
  """Writes a uint8 [H, W] or [H, W, 3] array to `path` as a PNG, creating
  its folder (`atomic_write.open_atomic`)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic_write.open_atomic(path) as stream:
    Image.fromarray(array_uint8).save(stream, format='PNG')


def _to_uint8(values):
  """Rounds values to uint8; InputError if any falls outside [0, 255]."""
  values = np.asarray(values, dtype=np.float64)
  if values.size and (values.min() < 0 or values.max() > 255):
    raise InputError('Values to save must lie in [0, 255], got range '
                     '[%g, %g]; use add_colormap, normalize_to_unit_values or '
                     'scale_values' % (values.min(), values.max()))
  return np.round(values).astype(np.uint8)


def save_annotation(label,
                    save_dir,
                    filename,
                    add_colormap=True,
                    normalize_to_unit_values=False,
                    scale_values=False,
                    colormap_type=get_dataset_colormap.PASCAL):
  """Saves a 2-D label map as `<save_dir>/<filename>.png`.

  Args:
    label: array [H, W]; integer labels when add_colormap.
    save_dir: output directory (created if needed).
    filename: file name without extension (str or bytes).
    add_colormap: write an RGB image coloured with `colormap_type` (True) or
      the raw values as a grayscale uint8 image (False).
    normalize_to_unit_values: without colormap, first map [min, max] to
      [0, 1] (a constant map becomes 0).
    scale_values: without colormap, multiply the values by 255.
    colormap_type: 'pascal', 'cityscapes' or 'ade20k'.

  Returns:
    The path written.

  Raises:
    InputError: bad label shape/values for the chosen mode.
  """
  label = np.asarray(label)
  if add_colormap:
    image = get_dataset_colormap.label_to_color_image(label, colormap_type)
  else:
    if label.ndim != 2:
      raise InputError('Expected a 2-D label map, got shape %s'
                       % (label.shape,))
    values = label.astype(np.float64)
    if normalize_to_unit_values:
      low, high = values.min(), values.max()
      values = (values - low) / (high - low) if high > low else values * 0.0
    if scale_values:
      values = 255.0 * values
    image = _to_uint8(values)
  path = _png_path(save_dir, filename)
  _write_png_atomically(image, path)
  return path


def save_overlay(image_uint8,
                 label,
                 save_dir,
                 filename,
                 alpha=0.5,
                 colormap_type=get_dataset_colormap.PASCAL):
  """Saves the image blended with the coloured labels as `<filename>.png`.

  Pixels whose label colour is black (PASCAL/ADE20K label 0, Cityscapes
  labels beyond the 19 classes) keep the image; the others become
  (1 - alpha) * image + alpha * colour.

  Args:
    image_uint8: uint8 array [H, W, 3].
    label: integer array [H, W].
    save_dir: output directory (created if needed).
    filename: file name without extension (str or bytes).
    alpha: weight of the colour, in [0, 1].
    colormap_type: 'pascal', 'cityscapes' or 'ade20k'.

  Returns:
    The path written.

  Raises:
    InputError: bad shapes, dtype or alpha.
  """
  image = np.asarray(image_uint8)
  if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
    raise InputError('Expected a uint8 [H, W, 3] image, got %s %s'
                     % (image.dtype, image.shape))
  if not 0.0 <= alpha <= 1.0:
    raise InputError('alpha must be in [0, 1], got %r' % alpha)
  colors = get_dataset_colormap.label_to_color_image(label, colormap_type)
  if colors.shape != image.shape:
    raise InputError('Image %s and label %s sizes differ'
                     % (image.shape[:2], np.shape(label)))
  blended = (1.0 - alpha) * image + alpha * colors.astype(np.float64)
  foreground = np.any(colors != 0, axis=2, keepdims=True)
  overlay = np.where(foreground, np.round(blended), image).astype(np.uint8)
  path = _png_path(save_dir, filename)
  _write_png_atomically(overlay, path)
  return path
