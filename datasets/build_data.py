"""Writing DeepLab-format segmentation tfrecords.

One `tf.train.Example` per image with the feature keys of DeepLab's
`build_data.image_seg_to_tfexample`; shards are named
`{split}-{shard:05d}-of-{num_shards:05d}.tfrecord` and written under a temporary
name first, so an interrupted run never leaves a half-written shard behind.
"""
import io
import math
import os

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


def shard_path(output_dir, split, shard, num_shards):
  return os.path.join(output_dir, '%s-%05d-of-%05d.tfrecord' %
                      (split, shard, num_shards))


def write_split(output_dir, split, examples, num_examples, num_shards=4):
  """Writes an iterable of serialised-able Examples as `num_shards` shards.

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
  paths = []
  for shard in range(num_shards):
    path = shard_path(output_dir, split, shard, num_shards)
    temporary = path + '.tmp'
    with tf.io.TFRecordWriter(temporary) as writer:
      for _ in range(min(per_shard, num_examples - shard * per_shard)):
        writer.write(next(iterator).SerializeToString())
    os.replace(temporary, path)
    paths.append(path)
  return paths
