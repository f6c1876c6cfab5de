"""Helpers shared by eval.py and vis.py.

Checkpoint resolution and polling, restoring with missing variables skipped,
the confusion matrix -> IoU arithmetic, multi-label classification counts,
results JSON / summary writing, flag checks and output-name handling.

Conventions: a confusion matrix is an int64 numpy array [C, C] whose rows are
ground-truth classes and whose columns are predicted classes (the layout of
`tf.math.confusion_matrix`).
"""
import collections
import json
import math
import os
import re
import tempfile
import time

import numpy as np
from absl import flags
from absl import logging

from core import data_generator
from deeplab import model
from deeplab.tf_compat import tf
from utils.errors import InputError

# Suffixes of the files that make up one TF checkpoint `<prefix>`.
_CHECKPOINT_FILE_SUFFIX = re.compile(r'\.(index|meta|data-\d{5}-of-\d{5})$')
_TRAILING_STEP = re.compile(r'-(\d+)$')
# Image extensions dropped from record names so outputs are `<name>.png`,
# not `<name>.jpg.png` (VOC names carry none; other builders might).
_IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')

# Cityscapes: network train ids 0..18 -> official label ids (the benchmark's
# evaluation ids), applied to raw predictions as DeepLab's vis does.
CITYSCAPES_TRAIN_ID_TO_EVAL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24,
                                  25, 26, 27, 28, 31, 32, 33)


# ----------------------------------------------------------------------------
# Flag checks.


def require_flags(flag_values, names):
  """Raises InputError naming every flag in `names` that is unset or empty."""
  missing = ['--%s' % name for name in names if not flag_values[name].value]
  if missing:
    raise InputError('missing required flag(s): %s' % ', '.join(missing))


def parse_crop_size(values, flag_name):
  """Returns [height, width] (ints > 0) from a list flag like ['513', '513']."""
  try:
    crop = [int(value) for value in values]
  except (TypeError, ValueError):
    crop = None
  if not crop or len(crop) != 2 or min(crop) <= 0:
    raise InputError('--%s must be two positive integers "height,width", got %r'
                     % (flag_name, values))
  return crop


def check_positive(value, flag_name):
  """Raises InputError unless the integer flag value is >= 1."""
  if value < 1:
    raise InputError('--%s must be >= 1, got %d' % (flag_name, value))


def check_scales(scales):
  """Returns the eval scales as a list of floats; each must be > 0."""
  scales = [float(scale) for scale in (scales or [1.0])]
  if min(scales) <= 0:
    raise InputError('--eval_scales must all be > 0, got %s' % scales)
  return scales


def check_dataset_split(registry, dataset_name, split, dataset_dir):
  """Validates dataset name, split and files; returns the registered split size.

  Args:
    registry: dict dataset name -> descriptor with `splits_to_sizes`
      (core.data_generator.DATASETS).
    dataset_name: --dataset.
    split: split name (tfrecord file prefix).
    dataset_dir: folder that must hold `<split>-*` files.

  Returns:
    The number of images the registry records for the split (used for progress).
  """
  if dataset_name not in registry:
    raise InputError('unknown --dataset %r; known: %s' %
                     (dataset_name, ', '.join(sorted(registry))))
  splits_to_sizes = registry[dataset_name].splits_to_sizes
  if split not in splits_to_sizes:
    raise InputError('unknown split %r for dataset %s; known: %s' %
                     (split, dataset_name, ', '.join(sorted(splits_to_sizes))))
  if not tf.io.gfile.isdir(dataset_dir):
    raise InputError('--dataset_dir %s is not a directory' % dataset_dir)
  if not data_generator.split_files(dataset_dir, split):
    raise InputError('no tfrecord files %s-NNNNN-of-NNNNN in --dataset_dir %s'
                     % (split, dataset_dir))
  return splits_to_sizes[split]


# ----------------------------------------------------------------------------
# Checkpoints.


class CheckpointVanished(Exception):
  """A checkpoint was deleted (rotated away by training) before it was read."""


def _is_checkpoint_prefix(path):
  return tf.io.gfile.exists(path + '.index')


def _step_of(prefix):
  match = _TRAILING_STEP.search(prefix)
  return int(match.group(1)) if match else -1


def latest_checkpoint(directory):
  """Returns the newest checkpoint prefix in `directory`, or None.

  Uses the `checkpoint` state file when it names an existing checkpoint;
  otherwise (state file missing or stale, e.g. copied checkpoints) the prefix
  with the highest `-<step>` suffix, then the most recent, among `*.index`
  files. Either way the checkpoint is complete: the Saver writes the state
  file, and the `.index` file, only after the data files.
  """
  path = tf.train.latest_checkpoint(directory)
  if path and _is_checkpoint_prefix(path):
    return path
  indexes = tf.io.gfile.glob(os.path.join(directory, '*.index'))
  if not indexes:
    return None
  newest = max(indexes, key=lambda index: (_step_of(index[:-len('.index')]),
                                           tf.io.gfile.stat(index).mtime_nsec))
  return newest[:-len('.index')]


def resolve_checkpoint(path, flag_name='checkpoint_dir'):
  """Returns the checkpoint prefix named by a directory or a prefix.

  Args:
    path: a directory (its latest checkpoint is used), a checkpoint prefix such
      as `.../model.ckpt-30000`, or one of that checkpoint's files
      (`.index`, `.meta`, `.data-*`).
    flag_name: the flag `path` came from, for error messages.

  Returns:
    The checkpoint prefix (str).
  """
  if tf.io.gfile.isdir(path):
    found = latest_checkpoint(path)
    if found is None:
      raise InputError('--%s %s holds no checkpoint' % (flag_name, path))
    return found
  prefix = _CHECKPOINT_FILE_SUFFIX.sub('', path)
  if _is_checkpoint_prefix(prefix):
    return prefix
  raise InputError('--%s %s is neither a directory nor a checkpoint prefix '
                   '(no %s.index)' % (flag_name, path, prefix))


def checkpoints_to_evaluate(checkpoint_dir, interval_secs, max_evaluations,
                            find_latest=latest_checkpoint, sleep=time.sleep,
                            clock=time.time, skipped=None):
  """Yields checkpoint prefixes to evaluate, newest first, then new ones.

  The latest checkpoint is yielded at once; afterwards `checkpoint_dir` is
  polled every `interval_secs` and each new checkpoint is yielded, at least
  `interval_secs` after the previous yield. A checkpoint prefix (instead of a
  directory) is yielded once. Stops after `max_evaluations` yields (<= 0:
  never).

  With `max_evaluations > 0` an absent checkpoint is an InputError at once (a
  bounded run must not wait forever); otherwise the first checkpoint is awaited.

  `skipped`: an optional set; a yielded prefix the caller adds to it before
  asking for the next one (e.g. it vanished before it could be read) does not
  count towards `max_evaluations`, and the next checkpoint is looked for at
  once.
  """
  if not tf.io.gfile.isdir(checkpoint_dir):
    if max_evaluations > 0 or _is_checkpoint_prefix(
        _CHECKPOINT_FILE_SUFFIX.sub('', checkpoint_dir)):
      yield resolve_checkpoint(checkpoint_dir)
      return
    logging.info('Waiting for %s to be created.', checkpoint_dir)
  elif max_evaluations > 0 and find_latest(checkpoint_dir) is None:
    raise InputError('--checkpoint_dir %s holds no checkpoint' % checkpoint_dir)
  poll_secs = max(interval_secs, 1)
  last, count, last_start = None, 0, None
  while max_evaluations <= 0 or count < max_evaluations:
    if last_start is not None:
      remaining = last_start + interval_secs - clock()
      if remaining > 0:
        sleep(remaining)
    path = (find_latest(checkpoint_dir) if tf.io.gfile.isdir(checkpoint_dir)
            else None)
    if path is None or path == last:
      logging.info('Waiting for a new checkpoint in %s.', checkpoint_dir)
      sleep(poll_secs)
      continue
    last, count, last_start = path, count + 1, clock()
    yield path
    if skipped is not None and path in skipped:
      count, last_start = count - 1, None


def checkpoint_global_step(checkpoint_path):
  """The checkpoint's `global_step`, else its `-<step>` suffix, else None."""
  reader = tf.train.load_checkpoint(checkpoint_path)
  if reader.has_tensor('global_step'):
    return int(reader.get_tensor('global_step'))
  step = _step_of(checkpoint_path)
  return step if step >= 0 else None


# A checkpoint read into memory: prefix, global step (or None), name -> array.
CheckpointSnapshot = collections.namedtuple('CheckpointSnapshot',
                                            ['path', 'global_step', 'values'])


def snapshot_checkpoint(checkpoint_path, settle_secs=1.0):
  """Reads a checkpoint that may vanish (a watcher's) into memory at once.

  Training with `--max_to_keep` deletes old checkpoints at any time, so a
  watcher reads every tensor right after it picks the checkpoint, before it
  builds the model and runs the evaluation pass.

  Returns:
    CheckpointSnapshot (global step from `global_step`, else the `-<step>`
    suffix, else None).

  Raises:
    CheckpointVanished: the checkpoint was deleted before or while it was read.
  """
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
    values = {name: reader.get_tensor(name)
              for name in reader.get_variable_to_shape_map()}
  except (tf.errors.NotFoundError, tf.errors.DataLossError) as error:
    # Deleting a checkpoint's files is not atomic: give the Saver a moment.
    if _is_checkpoint_prefix(checkpoint_path):
      time.sleep(settle_secs)
    if _is_checkpoint_prefix(checkpoint_path):
      raise
    raise CheckpointVanished(
        'checkpoint %s was deleted before it could be read (rotated away by '
        'training, see --max_to_keep); skipped' % checkpoint_path) from error
  if 'global_step' in values:
    step = int(values['global_step'])
  else:
    step = _step_of(checkpoint_path)
    step = step if step >= 0 else None
  return CheckpointSnapshot(checkpoint_path, step, values)


def _non_finite_error(checkpoint_path, bad_names):
  return InputError('checkpoint %s holds NaN or Inf in %d variable(s) (e.g. '
                    '%s): training diverged before it was saved; use an '
                    'earlier checkpoint' % (checkpoint_path, len(bad_names),
                                            ', '.join(bad_names[:3])))


def check_finite_variables(sess, variables, checkpoint_path):
  """Raises InputError if any float variable holds NaN or Inf after restore."""
  floats = [v for v in variables if v.dtype.base_dtype.is_floating]
  if not floats:
    return
  finite = sess.run([tf.reduce_all(tf.math.is_finite(v)) for v in floats])
  bad = [v.op.name for v, ok in zip(floats, finite) if not ok]
  if bad:
    raise _non_finite_error(checkpoint_path, bad)


def _match_variables(variables, shapes, checkpoint_path):
  """Splits variables into {name: variable} found in `shapes` and missing ones.

  Raises InputError on a shape mismatch or when none is found.
  """
  present, missing = {}, []
  for variable in variables:
    name = variable.op.name
    if name not in shapes:
      missing.append(variable)
      continue
    if list(shapes[name]) != variable.shape.as_list():
      raise InputError('variable %s has shape %s in checkpoint %s but %s in '
                       'the model: check the model flags and the dataset' %
                       (name, list(shapes[name]), checkpoint_path,
                        variable.shape.as_list()))
    present[name] = variable
  if variables and not present:
    raise InputError('checkpoint %s holds none of the model variables (wrong '
                     '--model_variant?)' % checkpoint_path)
  return present, missing


def _initialize_missing(sess, missing, checkpoint_path):
  for variable in sorted(missing, key=lambda v: v.op.name):
    logging.warning('Variable %s is missing from checkpoint %s; it keeps its '
                    'initial value.', variable.op.name, checkpoint_path)
  if missing:
    sess.run(tf.variables_initializer(missing))
  return sorted(variable.op.name for variable in missing)


def restore_variables(sess, checkpoint_path, variables=None):
  """Restores `variables` (default: all global) from a checkpoint.

  Variables missing from the checkpoint keep their initial value and are
  logged one warning each (e.g. a classification head the checkpoint never
  had). A shape mismatch means the model flags do not fit the checkpoint and is
  an InputError, as is a checkpoint holding none of the variables or one
  holding NaN or Inf (a diverged training run).

  Returns:
    The sorted list of names of the variables that were not restored.
  """
  variables = tf.global_variables() if variables is None else variables
  shapes = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  present, missing = _match_variables(variables, shapes, checkpoint_path)
  not_restored = _initialize_missing(sess, missing, checkpoint_path)
  if present:
    tf.train.Saver(var_list=present).restore(sess, checkpoint_path)
    check_finite_variables(sess, list(present.values()), checkpoint_path)
  return not_restored


def restore_snapshot(sess, snapshot, variables=None):
  """restore_variables from a CheckpointSnapshot (same checks and result)."""
  variables = tf.global_variables() if variables is None else variables
  shapes = {name: list(value.shape) for name, value in snapshot.values.items()}
  present, missing = _match_variables(variables, shapes, snapshot.path)
  bad = sorted(name for name in present
               if np.issubdtype(snapshot.values[name].dtype, np.floating) and
               not np.isfinite(snapshot.values[name]).all())
  if bad:
    raise _non_finite_error(snapshot.path, bad)
  not_restored = _initialize_missing(sess, missing, snapshot.path)
  # One run that feeds each initializer the checkpoint's value (what
  # Variable.load does one variable and one run at a time).
  sess.run([variable.initializer for variable in present.values()],
           feed_dict={variable.initializer.inputs[1]: snapshot.values[name]
                      for name, variable in present.items()})
  return not_restored


# ----------------------------------------------------------------------------
# Metrics.


def _flat_labels(labels, num_classes, ignore_label):
  """Flattens labels: returns labels int64 [P], counted [P], bad [P] (bool).

  `counted`: a class id in 0..C-1 other than ignore_label (ADE20K ignores 0);
  `bad`: neither a class id nor ignore_label.
  """
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  in_range = (labels >= 0) & (labels < num_classes)
  not_ignored = tf.not_equal(labels, ignore_label)
  return labels, in_range & not_ignored, ~in_range & not_ignored


def batch_confusion_matrix(labels, predictions, num_classes, ignore_label):
  """Graph op: the confusion matrix of one batch over the labelled pixels.

  Args:
    labels: int tensor [N, H, W] or [N, H, W, 1], class ids or `ignore_label`.
    predictions: int tensor with the same number of pixels, [N, H, W].
    num_classes: C.
    ignore_label: label value given weight 0.

  Returns:
    int64 tensor [C, C], rows = ground truth, columns = prediction. Pixels whose
    label is not in 0..C-1 (ignored or invalid, see `invalid_label_count`) are
    not counted.
  """
  labels, counted, _ = _flat_labels(labels, num_classes, ignore_label)
  predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
  # Uncounted pixels get a legal class id so confusion_matrix accepts them;
  # their weight 0 keeps them out of the counts.
  labels = tf.where(counted, labels, tf.zeros_like(labels))
  return tf.math.confusion_matrix(labels, predictions, num_classes=num_classes,
                                  weights=tf.cast(counted, tf.int64),
                                  dtype=tf.int64)


def invalid_label_count(labels, num_classes, ignore_label):
  """Graph op: int64 scalar, pixels whose label is no class id nor ignore_label.

  Non-zero means the labels are not class-index maps of this dataset (e.g. a
  palette PNG decoded as luminance, or the wrong --dataset).
  """
  _, _, bad = _flat_labels(labels, num_classes, ignore_label)
  return tf.reduce_sum(tf.cast(bad, tf.int64))


def iou_denominators(confusion):
  """Returns (TP, TP + FP + FN) per class as float arrays [C]."""
  confusion = np.asarray(confusion, dtype=np.float64)
  true_positives = np.diag(confusion)
  denominators = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
  return true_positives, denominators


def per_class_iou(confusion):
  """IoU = TP / (TP + FP + FN) per class; NaN where the denominator is 0."""
  true_positives, denominators = iou_denominators(confusion)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(denominators > 0, true_positives / denominators, np.nan)


def mean_iou(confusion):
  """Mean IoU over the classes with TP + FP + FN > 0 (NaN if there are none)."""
  ious = per_class_iou(confusion)
  valid = ~np.isnan(ious)
  return float(ious[valid].mean()) if valid.any() else float('nan')


def summary_class_iou(confusion):
  """Per-class values of `eval/miou_class_<c>`: NaN for classes not in the GT.

  Same IoU, but a class with no ground-truth pixel (TP + FN = 0) is NaN even
  when it was predicted, as in the original's summaries.
  Kept so eval curves compare with the original's (docs/DESIGN.md §Quirks 22).
  """
  ious = per_class_iou(confusion)
  ground_truth = np.asarray(confusion).sum(axis=1)
  return np.where(ground_truth > 0, ious, np.nan)


def multilabel_counts(logits, labels, threshold=0.5):
  """Graph op: [TP, FP, FN, TN] (int64 [4]) of sigmoid(logits) >= threshold.

  Args:
    logits: float tensor [N, K] of the classification head.
    labels: float tensor [N, K], multi-hot image-level labels.
    threshold: probability at or above which a class is predicted.
  """
  predicted = tf.sigmoid(logits) >= threshold
  actual = labels > 0.5
  def count(condition):
    return tf.reduce_sum(tf.cast(condition, tf.int64))
  return tf.stack([
      count(predicted & actual), count(predicted & ~actual),
      count(~predicted & actual), count(~predicted & ~actual)])


def classification_metrics(counts):
  """Returns dict accuracy/precision/recall from [TP, FP, FN, TN] counts.

  Each is 0 when its denominator is 0 (as TF's streaming metrics report).
  """
  tp, fp, fn, tn = [float(value) for value in counts]
  def ratio(numerator, denominator):
    return numerator / denominator if denominator > 0 else 0.0
  return {'accuracy': ratio(tp + tn, tp + fp + fn + tn),
          'precision': ratio(tp, tp + fp), 'recall': ratio(tp, tp + fn)}


# ----------------------------------------------------------------------------
# Results.


def _json_value(value):
  """A float for JSON, None for NaN/inf (JSON has no NaN)."""
  value = float(value)
  return value if math.isfinite(value) else None


def results_record(checkpoint_path, global_step, confusion, num_images,
                   classification=None, **extra):
  """The JSON-serialisable results of one evaluation.

  Args:
    checkpoint_path: evaluated checkpoint prefix.
    global_step: its step (int or None).
    confusion: int array [C, C] over the split.
    num_images: images evaluated.
    classification: optional dict accuracy/precision/recall (--weakly).
    **extra: more JSON-serialisable entries (dataset, split, ...).

  Returns:
    dict with checkpoint, global_step, miou, per_class_iou (null where the
    class has TP + FP + FN = 0), num_images, confusion_matrix (+ cls_*).
  """
  record = {
      'checkpoint': checkpoint_path,
      'global_step': global_step,
      'miou': _json_value(mean_iou(confusion)),
      'per_class_iou': [_json_value(v) for v in per_class_iou(confusion)],
      'num_images': int(num_images),
      'confusion_matrix': np.asarray(confusion, dtype=np.int64).tolist(),
  }
  if classification is not None:
    for key, value in classification.items():
      record['cls_' + key] = _json_value(value)
  record.update(extra)
  return record


def _format_json(data):
  """JSON text of a dict, one line per key (a C x C matrix stays one line)."""
  lines = ['  %s: %s' % (json.dumps(key), json.dumps(value, allow_nan=False))
           for key, value in data.items()]
  return '{\n%s\n}\n' % ',\n'.join(lines)


def write_json_atomically(path, data):
  """Writes the dict `data` as JSON to `path` (see write_text_atomically)."""
  write_text_atomically(path, _format_json(data))


def write_text_atomically(path, text):
  """Writes `text` to `path` (temporary file + os.replace).

  The file gets the mode of any new file (0644 under the usual umask), not
  mkstemp's 0600.
  """
  directory = os.path.dirname(os.path.abspath(path))
  handle, temporary = tempfile.mkstemp(
      dir=directory, prefix='.%s.' % os.path.basename(path), suffix='.tmp')
  try:
    with os.fdopen(handle, 'w') as stream:
      stream.write(text)
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)
  except BaseException:
    os.remove(temporary)
    raise


def _umask():
  """The process umask (reading it means setting it; set it straight back)."""
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def write_results(logdir, record):
  """Writes `results-<step>.json` and `results.json` (latest) into `logdir`.

  Returns:
    The path of the per-checkpoint file.
  """
  step = record['global_step']
  tag = (str(step) if step is not None
         else os.path.basename(record['checkpoint']))
  path = os.path.join(logdir, 'results-%s.json' % tag)
  write_json_atomically(path, record)
  write_json_atomically(os.path.join(logdir, 'results.json'), record)
  return path


def write_scalar_summaries(writer, values, step):
  """Writes {tag: float} as scalar summaries at `step` and flushes."""
  summary = tf.Summary(value=[
      tf.Summary.Value(tag=tag, simple_value=float(value))
      for tag, value in values.items()])
  writer.add_summary(summary, global_step=step)
  writer.flush()


class ProgressLogger(object):
  """Logs `done/total images (x images/s)` every `every` images."""

  def __init__(self, total, every):
    self._total = total
    self._every = max(1, every)
    self._start = time.time()
    self._next = self._every
    self.done = 0

  def _log(self, prefix=''):
    elapsed = max(time.time() - self._start, 1e-9)
    logging.info('%s%d/%d images (%.2f images/s)', prefix, self.done,
                 self._total, self.done / elapsed)

  def add(self, count):
    """Records `count` more images; logs on passing a multiple of `every`."""
    self.done += count
    if self.done >= self._next:
      self._log()
      self._next = (self.done // self._every + 1) * self._every

  def finish(self):
    """Logs the final count."""
    self._log('Done: ')


# ----------------------------------------------------------------------------
# Visualisation helpers.


def output_name(image_name, index):
  """File stem for one record: the basename of `image/filename`, as str.

  Args:
    image_name: the record's `image/filename` (bytes or str), e.g.
      b'2007_000033' or b'train2017/000000177254'.
    index: running image index, used when the name is empty.
  """
  if isinstance(image_name, bytes):
    image_name = image_name.decode('utf-8', errors='replace')
  name = os.path.basename(image_name.replace('\\', '/'))
  root, extension = os.path.splitext(name)
  if extension.lower() in _IMAGE_EXTENSIONS:
    name = root
  return name or '%06d' % index


def convert_train_id_to_eval_id(prediction, train_id_to_eval_id):
  """Maps class ids through `train_id_to_eval_id`; other ids stay unchanged."""
  table = np.arange(max(256, int(prediction.max()) + 1), dtype=np.int64)
  table[:len(train_id_to_eval_id)] = train_id_to_eval_id
  return table[prediction].astype(prediction.dtype)


def resize_nearest_align_corners(label, height, width):
  """Nearest-neighbour resize of a [h, w] array with align_corners semantics.

  Source index = min(round(dst * (in - 1) / (out - 1)), in - 1), rounding half
  away from zero, like `resize_nearest_neighbor(align_corners=True)`.
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


def predict(images, model_options, eval_scales, add_flipped_images,
            image_pyramid=None):
  """Predicted classes {'semantic': int [N,H,W]}: single scale, or the average
  of the softmax over `eval_scales` (and left-right flips) otherwise."""
  if list(eval_scales) == [1.0] and not add_flipped_images:
    return model.predict_labels(images, model_options,
                                image_pyramid=image_pyramid)
  return model.predict_labels_multi_scale(
      images, model_options, eval_scales=eval_scales,
      add_flipped_images=add_flipped_images)


def eval_dataset(split, batch_size, crop_size, num_readers, with_cls=False,
                 output_original=False):
  """One un-shuffled pass over `split`, padded to crop_size, configured by the
  shared dataset and resize flags (eval.py and vis.py)."""
  config = flags.FLAGS
  return data_generator.Dataset(
      dataset_name=config.dataset, split_name=split,
      dataset_dir=config.dataset_dir, batch_size=batch_size,
      crop_size=crop_size, min_resize_value=config.min_resize_value,
      max_resize_value=config.max_resize_value,
      resize_factor=config.resize_factor, model_variant=config.model_variant,
      num_readers=num_readers, is_training=False, should_shuffle=False,
      should_repeat=False, with_cls=with_cls, output_original=output_original)
