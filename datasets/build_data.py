"""Writing DeepLab-format segmentation tfrecords.

One `tf.train.Example` per image with the feature keys of DeepLab's
`build_data.image_seg_to_tfexample`; shards are named
`{split}-{shard:05d}-of-{num_shards:05d}.tfrecord` and written under temporary
names first (`.{shard file}.tmp`, hidden and never matching `{split}-*`), so an
interrupted run never leaves a half-written split behind that a reader could
pick up.
Also the file readers the dataset builders share (lists, images, index labels).
"""
import io
import math
import os
import re

import numpy as np
from PIL import Image

from deeplab.tf_compat import tf
from utils.errors import InputError

IGNORE_LABEL = 255


class BuildError(InputError):
  """Bad builder input; the message names the offending file or value."""


def encode_image(array, image_format):
  """Encodes an HxWx3 (or HxW) uint8 array as 'jpeg' or 'png' bytes."""
  buffer = io.BytesIO()
  pil_format = {'jpeg': 'JPEG', 'jpg': 'JPEG', 'png': 'PNG'}[image_format]
  kwargs = {'quality': 95} if pil_format == 'JPEG' else {}
  Image.fromarray(np.asarray(array, dtype=np.uint8)).save(
      buffer, format=pil_format, **kwargs)
  return buffer.getvalue()


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def image_seg_to_tfexample(image_data, filename, height, width, seg_data,
                           image_format='jpeg'):
  """Returns the tf.train.Example of one image and its label PNG (bytes)."""
  feature = {
      'image/encoded': _bytes(image_data),
      'image/filename': _bytes(filename.encode('utf-8')),
      'image/format': _bytes(image_format.encode('utf-8')),
      'image/height': _int64(height),
      'image/width': _int64(width),
      'image/channels': _int64(3),
      'image/segmentation/class/encoded': _bytes(seg_data),
      'image/segmentation/class/format': _bytes(b'png'),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def check_label(label, num_classes, where):
  """Raises BuildError unless `label` (HxW uint8) holds classes or IGNORE_LABEL."""
  values = np.unique(label)
  bad = values[(values >= num_classes) & (values != IGNORE_LABEL)]
  if bad.size:
    raise BuildError('%s: label values %s are outside 0..%d and not the ignore '
                     'value %d' % (where, bad.tolist(), num_classes - 1,
                                   IGNORE_LABEL))


def example_from_arrays(name, image, label, num_classes, image_format='jpeg'):
  """Checks and encodes one (HxWx3 uint8 image, HxW uint8 label) pair."""
  if image.shape[:2] != label.shape[:2]:
    raise BuildError('%s: label size %s differs from image size %s' %
                     (name, label.shape[:2], image.shape[:2]))
  check_label(label, num_classes, name)
  return image_seg_to_tfexample(
      encode_image(image, image_format), name, image.shape[0], image.shape[1],
      encode_image(label, 'png'), image_format)


def example_from_encoded(name, image_data, image_format, height, width, label,
                         num_classes, where=None):
  """Checks and encodes an already encoded image with its HxW uint8 label.

  `where` (default `name`) names the label in error messages, e.g. its file.
  """
  where = where or name
  if label.shape[:2] != (height, width):
    raise BuildError('%s: label size %s differs from image size %s' %
                     (where, label.shape[:2], (height, width)))
  check_label(label, num_classes, where)
  return image_seg_to_tfexample(image_data, name, height, width,
                                encode_image(label, 'png'), image_format)


def require_dir(path, what):
  """Raises BuildError unless `path` is an existing folder; `what` names it."""
  if not os.path.isdir(path):
    raise BuildError('%s folder not found: %s' % (what, path))


def read_list(path):
  """Returns the non-empty, stripped lines of a text list file."""
  if not os.path.isfile(path):
    raise BuildError('list file not found: %s' % path)
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]


def load_image(path):
  """Reads an RGB image file for an Example without re-encoding it if possible.

  JPEG and PNG files already in RGB are stored byte for byte (no generation
  loss); any other mode (grayscale or CMYK JPEGs occur in COCO) is converted to
  RGB and re-encoded, so the reader can always decode 3 channels.

  Returns:
    (encoded bytes, 'jpeg' or 'png', height, width).
  """
  try:
    with open(path, 'rb') as f:
      data = f.read()
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, ValueError) as error:
    raise BuildError('cannot read image %s: %s' % (path, error)) from error
  image_format = 'png' if image.format == 'PNG' else 'jpeg'
  if image.mode != 'RGB' or image.format not in ('JPEG', 'PNG'):
    data = encode_image(np.asarray(image.convert('RGB')), image_format)
  return data, image_format, image.height, image.width


def load_index_label(path):
  """Reads a label PNG as an HxW uint8 array of class indices.

  A palette PNG (mode 'P', VOC's SegmentationClass) gives its palette indices,
  not the colours: decoding it as grayscale would give luminance garbage. An
  8-bit grayscale PNG (SegmentationClassAug) is taken as is.
  """
  if not os.path.isfile(path):
    raise BuildError('label file not found: %s' % path)
  try:
    label = Image.open(path)
    label.load()
  except (OSError, ValueError) as error:
    raise BuildError('cannot read label %s: %s' % (path, error)) from error
  if label.mode in ('RGB', 'RGBA'):
    raise BuildError(
        '%s: label is an %s colour image; convert it to a single-channel '
        'index PNG (palette or 8-bit grayscale of class indices) first' %
        (path, label.mode))
  if label.mode not in ('P', 'L'):
    raise BuildError('%s: unsupported label PNG mode %r (expected a palette or '
                     '8-bit grayscale index PNG)' % (path, label.mode))
  return np.asarray(label, dtype=np.uint8)


def shuffled(names, seed=0):
  """Returns `names` in a seeded random order.

  Builders write training splits in this order so that every shard (and every
  stretch of a shard) is a random sample: the reader's shuffle buffer holds only
  100 examples (docs/DESIGN.md §Quirks 16, §Departures 2).
  """
  order = np.random.RandomState(seed).permutation(len(names))
  return [names[i] for i in order]


def shard_path(output_dir, split, shard, num_shards):
  return os.path.join(output_dir, '%s-%05d-of-%05d.tfrecord' %
                      (split, shard, num_shards))


def temporary_path(path):
  """The name a shard is written under before it is complete.

  It starts with a dot, so it never matches a reader's `<split>-*` pattern even
  if the builder is killed before it can remove it.
  """
  directory, name = os.path.split(path)
  return os.path.join(directory, '.%s.tmp' % name)


def _leftover_temporaries(output_dir, split):
  """Temporary shard files of `split` left by a killed build (old or new names)."""
  pattern = re.compile(r'^\.?%s-\d{5}-of-\d{5}\.tfrecord\.tmp$' %
                       re.escape(split))
  return [os.path.join(output_dir, name) for name in os.listdir(output_dir)
          if pattern.match(name)]


def _split_shards(output_dir, split):
  """The existing shard files of `split` in `output_dir`, any shard count."""
  pattern = re.compile(r'^%s-\d{5}-of-\d{5}\.tfrecord$' % re.escape(split))
  return [os.path.join(output_dir, name) for name in os.listdir(output_dir)
          if pattern.match(name)]


def write_split(output_dir, split, examples, num_examples, num_shards=4):
  """Writes an iterable of serialised-able Examples as `num_shards` shards.

  The split is written all or nothing: every shard goes to a temporary file
  (`temporary_path`) first
  and only when all examples are written are they renamed to their final names
  (and shards of an earlier build with another shard count removed, since the
  reader globs `<split>-*`). If `examples` raises, the temporary files are
  deleted and any earlier build of the split is left untouched; temporaries a
  killed build left behind are removed when the split is built again.

  Args:
    output_dir: destination folder (created if missing).
    split: split name, the file prefix.
    examples: iterable yielding `tf.train.Example`s, `num_examples` of them.
    num_examples: how many `examples` yields (to fill the shards evenly).
    num_shards: number of output files.

  Returns:
    The list of written shard paths.
  """
  tf.io.gfile.makedirs(output_dir)
  num_shards = max(1, min(num_shards, num_examples))
  per_shard = int(math.ceil(num_examples / float(num_shards)))
  iterator = iter(examples)
  paths = [shard_path(output_dir, split, shard, num_shards)
           for shard in range(num_shards)]
  for leftover in _leftover_temporaries(output_dir, split):
    os.remove(leftover)
  temporaries = []
  try:
    for shard, path in enumerate(paths):
      temporaries.append(temporary_path(path))
      with tf.io.TFRecordWriter(temporaries[-1]) as writer:
        for _ in range(min(per_shard, num_examples - shard * per_shard)):
          example = next(iterator, None)
          if example is None:
            raise BuildError('split %s: expected %d examples, got fewer' %
                             (split, num_examples))
          writer.write(example.SerializeToString())
  except BaseException:
    for temporary in temporaries:
      if os.path.exists(temporary):
        os.remove(temporary)
    raise
  for stale in set(_split_shards(output_dir, split)) - set(paths):
    os.remove(stale)
  for temporary, path in zip(temporaries, paths):
    os.replace(temporary, path)
  return paths
