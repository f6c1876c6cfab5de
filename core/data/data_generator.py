"""The tf.data input pipeline over DeepLab tfrecords of a registered dataset.

Records follow DeepLab's `build_data.image_seg_to_tfexample` schema
(docs/DESIGN.md §Data); datasets and the shard files of their splits are
those of core/data/registry.py. Usage:

  dataset = Dataset('pascal_voc_seg', 'train_aug', dataset_dir, batch_size=4,
                    crop_size=[513, 513], min_scale_factor=0.5,
                    max_scale_factor=2., scale_factor_step_size=0.25,
                    is_training=True, should_shuffle=True, should_repeat=True,
                    strong_weak=True, output_valid=True, seed=0)
  samples = dataset.get_one_shot_iterator().get_next()

Bad arguments (unknown dataset or split, missing dataset_dir or files) raise
`utils.errors.InputError` at construction. Problems inside the data surface when
the iterator runs: a corrupt tfrecord raises `tf.errors.DataLossError`, an
undecodable image, an image larger than the eval crop or (training only) a
label value that is neither a class id nor the ignore label raises
`tf.errors.InvalidArgumentError` with the reason in its message.
`explain_data_error` turns the first two kinds into a one-line InputError
naming the file, image and value.

Randomness: every example gets its own stateless seed from a
`tf.data.Dataset.random(seed)` stream and all its augmentation draws derive from
it. With `seed` set, the file order, the shuffle buffer and these draws are
seeded and the map and interleave stages keep their order, so two pipelines
with the same seed yield identical batches.
"""
import re

from core.data import input_preprocess
from core.data import preprocess_utils
from core.data import registry
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import InputError

# Examples held in the shuffle buffer after preprocessing (as in the original).
# do not fix: changes results (docs/DESIGN.md §Quirks 16)
_SHUFFLE_BUFFER_SIZE = 100

_FEATURES = {
    'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/filename': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
    'image/height': tf.io.FixedLenFeature((), tf.int64, default_value=0),
    'image/width': tf.io.FixedLenFeature((), tf.int64, default_value=0),
    'image/segmentation/class/encoded':
        tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/segmentation/class/format':
        tf.io.FixedLenFeature((), tf.string, default_value='png'),
}


# First item of the assertion a training label out of range fails with; the
# message is then `[marker] [split] [image name] [value]`.
_LABEL_RANGE_MARKER = 'Training label value out of class range:'
_LABEL_RANGE_MESSAGE = re.compile(
    re.escape(_LABEL_RANGE_MARKER) + r'\] \[(.*?)\] \[(.*?)\] \[(\d+)\]')


def _first_corrupt_file(files):
  """(path, reason) of the first file with a bad record, or None.

  Reads every record of `files`; called only after a DataLossError, so the
  cost (one pass over the split) is paid on the error path alone.
  """
  for path in files:
    try:
      for _ in tf.compat.v1.io.tf_record_iterator(path):
        pass
    except tf.errors.OpError as error:
      return path, error.message.splitlines()[0]
  return None


def explain_data_error(error, datasets):
  """An InputError naming the data behind a training-time TF error, or None.

  Args:
    error: a tf.errors.OpError raised while running the input pipeline.
    datasets: the Dataset objects of the run (their files are searched).

  Returns:
    InputError for a corrupt/truncated tfrecord (naming the file and the
    record offset TensorFlow reports) or a training label outside the class
    range (naming split, image, value and dataset); None for other errors.
  """
  if isinstance(error, tf.errors.DataLossError):
    files = [path for dataset in datasets for path in dataset.files]
    found = _first_corrupt_file(files)
    if found is None:
      return InputError('a tfrecord of the training data is corrupt (%s); '
                        'rebuild the split.' % error.message.splitlines()[0])
    return InputError('corrupt tfrecord %s: %s; rebuild this split with '
                      'its datasets/build_*.py builder.' % found)
  if isinstance(error, tf.errors.InvalidArgumentError):
    match = _LABEL_RANGE_MESSAGE.search(error.message)
    if match is None:
      return None
    split, image_name, value = match.groups()
    dataset = next((d for d in datasets if d.split_name == split),
                   datasets[0] if datasets else None)
    name = dataset.dataset_name if dataset else '?'
    descriptor = registry.DATASETS.get(name)
    classes = ('0..%d, ignore label %d' % (descriptor.num_classes - 1,
                                           descriptor.ignore_label)
               if descriptor else 'unknown')
    likely = [other for other, d in sorted(registry.DATASETS.items())
              if other != name and int(value) < d.num_classes]
    hint = (' (a class id of: %s)' % ', '.join(likely)) if likely else ''
    return InputError(
        'image %s of split %s has label value %s, which is no class of '
        '--dataset=%s (%s): the records belong to another dataset; pass the '
        'matching --dataset%s.' % (image_name, split, value, name, classes,
                                   hint))
  return None



def decode_image(content, channels):
  """Decodes JPEG (sniffed by magic bytes) or else PNG to uint8 [h, w, c]."""
  return tf.cond(
      tf.image.is_jpeg(content),
      lambda: tf.image.decode_jpeg(content, channels),
      lambda: tf.image.decode_png(content, channels))


class Dataset(object):
  """An input pipeline over one split of a registered dataset."""

  def __init__(self, dataset_name, split_name, dataset_dir, batch_size,
               crop_size, min_resize_value=None, max_resize_value=None,
               resize_factor=None, min_scale_factor=1., max_scale_factor=1.,
               scale_factor_step_size=0, model_variant=None, num_readers=1,
               is_training=False, should_shuffle=False, should_repeat=False,
               with_cls=False, strong_weak=False,
               output_valid=False, output_original=True, seed=None):
    """Checks the arguments and finds the split's files.

    Args:
      dataset_name: a key of registry.DATASETS.
      split_name: a split of that dataset (the tfrecord file prefix).
      dataset_dir: folder holding `<split_name>-*` tfrecord files.
      batch_size: examples per batch.
      crop_size: [height, width] of the output images.
      min_resize_value: resize-to-range short side, or None.
      max_resize_value: resize-to-range long-side cap, or None.
      resize_factor: resize-to-range sides = 1 (mod factor), or None.
      min_scale_factor: smallest training scale.
      max_scale_factor: largest training scale.
      scale_factor_step_size: training scale step (0: continuous).
      model_variant: backbone name (padding uses its mean pixel, 127.5).
      num_readers: files read in parallel.
      is_training: training augmentation (else eval padding).
      should_shuffle: shuffle the file order and the examples.
      should_repeat: repeat forever (else one pass).
      with_cls: add `cls_label`, the image-level labels of the output label.
      strong_weak: add the strong view `strong` (training only).
      output_valid: add the `valid` mask.
      output_original: add `original_image` (uint8, eval only).
      seed: int or None; seeds file order, shuffle buffer and augmentation.

    Raises:
      InputError: unknown dataset or split, bad sizes, or no files found.
    """
    split = registry.check_split(dataset_name, split_name, dataset_dir)
    crop_size = [int(size) for size in crop_size]
    if len(crop_size) != 2 or min(crop_size) <= 0:
      raise InputError('crop_size must be two positive ints [height, width], '
                       'got %s.' % (crop_size,))
    if batch_size < 1 or num_readers < 1:
      raise InputError('batch_size (%s) and num_readers (%s) must be >= 1.' %
                       (batch_size, num_readers))
    is_test = split_name == common.TEST_SET
    if is_test and with_cls:
      raise InputError('The %r split has no labels, so with_cls is '
                       'not available.' % split_name)
    if strong_weak and not is_training:
      raise InputError('strong_weak (weak/strong views) needs is_training.')

    self.dataset_name = dataset_name
    self.split_name = split_name
    self.dataset_dir = dataset_dir
    self.batch_size = batch_size
    self.crop_size = crop_size
    self.min_resize_value = min_resize_value
    self.max_resize_value = max_resize_value
    self.resize_factor = resize_factor
    self.min_scale_factor = min_scale_factor
    self.max_scale_factor = max_scale_factor
    self.scale_factor_step_size = scale_factor_step_size
    self.model_variant = model_variant
    self.num_readers = num_readers
    self.is_training = is_training
    self.should_shuffle = should_shuffle
    self.should_repeat = should_repeat
    self.with_cls = with_cls
    self.strong_weak = strong_weak
    self.output_valid = output_valid
    self.output_original = output_original
    self.seed = seed
    self.num_of_classes = split.descriptor.num_classes
    self.ignore_label = split.descriptor.ignore_label
    self.decode_label = not is_test
    self.files = split.files

  def _parse_function(self, example_proto):
    """Parses and decodes one serialised Example.

    Returns:
      Dict with `image` uint8 [h, w, 3], `label` uint8 [h, w, 1] (unless the
      split is `test`), `image_name` string, `height`/`width` int64.
    """
    features = tf.io.parse_single_example(example_proto, _FEATURES)
    image = decode_image(features['image/encoded'], 3)
    image.set_shape([None, None, 3])
    sample = {
        common.IMAGE: image,
        common.IMAGE_NAME: features['image/filename'],
        common.HEIGHT: features['image/height'],
        common.WIDTH: features['image/width'],
    }
    if self.decode_label:
      label = decode_image(features['image/segmentation/class/encoded'], 1)
      label.set_shape([None, None, 1])
      check = tf.debugging.Assert(
          tf.reduce_all(tf.equal(tf.shape(label)[:2], tf.shape(image)[:2])),
          ['Label size differs from image size for', sample[common.IMAGE_NAME],
           tf.shape(label), tf.shape(image)])
      checks = [check]
      if self.is_training:
        checks.append(self._label_range_check(label, sample[common.IMAGE_NAME]))
      with tf.control_dependencies(checks):
        sample[common.LABEL] = tf.identity(label)
    return sample

  def _label_range_check(self, label, image_name):
    """Assertion: every label value is a class id or the ignore label.

    Training would otherwise fail deep inside a metric or the loss (or, with
    one-hot targets, silently train on zero vectors); eval.py counts such
    pixels itself. `explain_data_error` reads the failure message.
    """
    bad = tf.logical_and(tf.greater_equal(label, self.num_of_classes),
                         tf.not_equal(label, self.ignore_label))
    first_bad = tf.reduce_max(tf.where(bad, label, tf.zeros_like(label)))
    return tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        [_LABEL_RANGE_MARKER, self.split_name, image_name,
         tf.cast(first_bad, tf.int32)])

  def _preprocess_image(self, sample, seed):
    """Preprocesses one parsed sample with its [2] int64 seed (docs/DESIGN.md §Data flow)."""
    image = sample[common.IMAGE]
    outputs = input_preprocess.preprocess_image_and_label(
        image, sample.get(common.LABEL), self.crop_size[0], self.crop_size[1],
        min_resize_value=self.min_resize_value,
        max_resize_value=self.max_resize_value,
        resize_factor=self.resize_factor,
        min_scale_factor=self.min_scale_factor,
        max_scale_factor=self.max_scale_factor,
        scale_factor_step_size=self.scale_factor_step_size,
        ignore_label=self.ignore_label, is_training=self.is_training,
        model_variant=self.model_variant, strong_weak=self.strong_weak,
        output_valid=self.output_valid, seed=seed)
    result = {key: sample[key]
              for key in (common.IMAGE_NAME, common.HEIGHT, common.WIDTH)}
    result.update(outputs)
    if self.output_original and not self.is_training:
      result[common.ORIGINAL_IMAGE] = image
    # From the augmented crop; do not fix: changes results (docs/DESIGN.md §Quirks 12)
    if self.with_cls:
      result[common.CLS_LABEL] = preprocess_utils.image_level_labels(
          result[common.LABEL], self.num_of_classes, self.ignore_label)
    return result

  def _element_seeds(self):
    """An endless dataset of int64 [2] seeds, one per example."""
    return tf.data.Dataset.random(seed=self.seed).batch(2)

  def get_dataset(self):
    """Builds the batched tf.data.Dataset of sample dicts.

    Keys (N = batch): `image` float32 [N, crop_h, crop_w, 3], `label` int32
    [N, crop_h, crop_w, 1] (not for the test split), `image_name` string [N],
    `height`/`width` int64 [N]; with the options also `valid` int32
    [N, crop_h, crop_w, 1], `strong` float32 [N, crop_h, crop_w, 3],
    `cls_label` float32 [N, C - 1] and `original_image` uint8 [N, h, w, 3]
    (zero-padded to the largest image of the batch).
    """
    autotune = tf.data.experimental.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices(self.files)
    if self.should_shuffle:
      dataset = dataset.shuffle(len(self.files), seed=self.seed,
                                reshuffle_each_iteration=True)
    # Interleave and map keep their input order (deterministic by default).
    dataset = dataset.interleave(tf.data.TFRecordDataset,
                                 cycle_length=self.num_readers,
                                 num_parallel_calls=autotune)
    dataset = dataset.map(self._parse_function, num_parallel_calls=autotune)
    # Repeat before seeding so that every epoch draws fresh augmentations (and
    # re-shuffles the file order).
    if self.should_repeat:
      dataset = dataset.repeat()
    dataset = tf.data.Dataset.zip((dataset, self._element_seeds()))
    dataset = dataset.map(self._preprocess_image, num_parallel_calls=autotune)
    if self.should_shuffle:
      dataset = dataset.shuffle(_SHUFFLE_BUFFER_SIZE, seed=self.seed)
    if self.is_training:
      # Static batch shapes: clones and losses rely on them.
      dataset = dataset.batch(self.batch_size, drop_remainder=True)
    else:
      # Pads `original_image` (variable size) with zeros, so batches > 1 work.
      dataset = dataset.padded_batch(self.batch_size)
    return dataset.prefetch(self.batch_size)

  def get_one_shot_iterator(self):
    """Returns a one-shot iterator; `get_next()` yields the batched samples."""
    return tf.data.make_one_shot_iterator(self.get_dataset())
