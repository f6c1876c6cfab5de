"""predict.py's input files (listing, decoding, output names) and the colormap
of its outputs."""
import os

import numpy as np
from PIL import Image
from PIL import ImageOps

from deeplab.tf_compat import tf
from utils.errors import InputError

# File extensions read by predict.py (case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def colormap_of(dataset_name):
  """The colormap vis.py users pick for a dataset (COCO and others: pascal)."""
  return {'cityscapes': 'cityscapes', 'ade20k': 'ade20k'}.get(dataset_name,
                                                              'pascal')


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
