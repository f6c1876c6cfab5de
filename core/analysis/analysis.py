"""End-of-run analysis of baseline and PseudoSeg runs (analyze.py).

For every checkpoint of a run, one pass over the evaluation split gives:

* val mIoU, exactly as eval.py computes it (`eval_graph.predict` at the input
  resolution, `metrics.batch_confusion_matrix`, `metrics.mean_iou`);
* for a PseudoSeg run also, with the model in inference mode on the same
  images: reliability statistics (per confidence bin: pixel count, sum of
  confidence, sum of correct) and the expected calibration error (ECE) of four
  per-pixel distributions,
    `decoder`   softmax of the decoder logits,
    `sgc`       softmax of the self-attention-refined Grad-CAM
                (`pseudoseg.attention_branch(is_training=False)`), resized
                bilinear (align_corners) to the decoder-logit size; its
                Grad-CAM takes the classes the head predicts, or, for a
                --weakly run (`PseudoSegOptions.weakly`), the ground-truth
                image-level labels (`image_level_labels`), as in training,
    `fused`     `pseudo_label.fuse_probabilities` of the two,
    `sharpened` `pseudo_label.sharpen(fused, temperature)`, the soft pseudo
                labels,
  the pseudo-label accuracy: pixel accuracy and mIoU of argmax(sharpened)
  against the ground truth (`pseudo_label`), and the same per source
  (`sources`): the confusion matrix of the argmax of `decoder`, `sgc` and
  `fused` (argmax(fused) == argmax(sharpened)), which shows which part of
  the pipeline loses pixels.

All calibration and pseudo-label statistics are computed at the decoder-logit
resolution (e.g. 49 x 49 for a 193 crop at decoder stride 4), with the labels
resized nearest-neighbour to that size as training does
(`resize.labels_nearest_legacy`); only pixels whose (resized) label is not
the ignore label count, so the eval padding never counts. The confidence bins
are those of `core/method/calibration.py`: (b / B, (b + 1) / B], b = 0..B-1.

Two parts of the PseudoSeg pipeline use batch statistics and so depend on the
evaluation batch: the batch norm of the SGC's `pixel_normalization` (always in
training mode, as in the original) and the joint RMS of `logit_norm`. Their
ECEs are therefore those of batches of `batch_size` evaluation images.

The module also reads training curves from TensorBoard event files. It reads
no absl flag; a PseudoSeg run's options come in as a
`pseudoseg.PseudoSegOptions`.
"""
import collections
import glob
import json
import os
import re
import sys
import time

import numpy as np

from core.data import preprocess_utils
from core.eval import checkpoints
from core.eval import eval_graph
from core.eval import metrics
from core.eval import prediction_files
from core.eval import results_io
from core.method import pseudo_label
from core.method import pseudoseg
from deeplab import common
from deeplab import model
from deeplab import resize
from deeplab.tf_compat import tf
from utils import atomic_write
from utils import checkpoint_paths
from utils.errors import InputError

NUM_BINS = 15
# The distributions whose calibration is measured, in plotting order.
SOURCES = ('decoder', 'sgc', 'fused', 'sharpened')
# The distributions whose argmax is scored against the ground truth
# (sharpening keeps the argmax of `fused`).
CONFUSION_SOURCES = ('decoder', 'sgc', 'fused')
_STATISTICS = ('count', 'sum_confidence', 'sum_correct')
_EVENTS_PATTERN = 'events.out.tfevents.*'



def sharpening_temperature(pseudoseg_options):
  """Temperature of `sharpen` for a run: 1.0 for hard pseudo labels, which
  training never sharpens."""
  if pseudoseg_options.soft_pseudo_label:
    return pseudoseg_options.temperature
  return 1.0


# ----------------------------------------------------------------------------
# Checkpoints.


def list_checkpoints(logdir, flag_name):
  """All checkpoints `<prefix>-<step>` in `logdir`, oldest first.

  Args:
    logdir: a training logdir.
    flag_name: the flag naming it, for error messages.

  Returns:
    list of (step int, checkpoint prefix str), sorted by step.

  Raises:
    InputError: the folder does not exist or holds no checkpoint.
  """
  if not logdir or not os.path.isdir(logdir):
    raise InputError('--%s %s is not a directory (pass a training logdir)' %
                     (flag_name, logdir))
  found = [(step, prefix) for step, prefix in
           checkpoint_paths.indexed_checkpoints(logdir) if step is not None]
  if not found:
    raise InputError('--%s %s holds no checkpoint (no <prefix>-<step>.index '
                     'file)' % (flag_name, logdir))
  return sorted(found)


def select_evenly(checkpoints, limit):
  """At most `limit` of the checkpoints, evenly spaced, always the first and
  the last (all of them when limit <= 0 or there are no more)."""
  if limit <= 0 or len(checkpoints) <= limit:
    return list(checkpoints)
  if limit == 1:
    return [checkpoints[-1]]
  indices = np.unique(np.round(np.linspace(0, len(checkpoints) - 1, limit)))
  return [checkpoints[int(i)] for i in indices]


# ----------------------------------------------------------------------------
# Statistics.


def reliability_statistics(probs, labels, ignore_label, num_bins=NUM_BINS):
  """Graph op: per-bin pixel count, sum of confidence and sum of correct.

  Confidence = max_c probs, correct = [argmax_c probs == label]; the bins are
  those of `calibration.expected_calibration_error` (the same float32
  arithmetic, so both agree exactly).

  Args:
    probs: float [B, h, w, C] class probabilities.
    labels: int [B, h, w] ground truth at the same resolution.
    ignore_label: label value whose pixels are left out.
    num_bins: number of equal-width confidence bins.

  Returns:
    float64 [3, num_bins]: rows count, sum of confidence, sum of correct.
  """
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  probs = tf.reshape(tf.cast(probs, tf.float32), [-1, tf.shape(probs)[-1]])
  valid = tf.not_equal(labels, ignore_label)
  confidence = tf.boolean_mask(tf.reduce_max(probs, axis=1), valid)
  correct = tf.boolean_mask(tf.equal(tf.argmax(probs, axis=1), labels), valid)
  bins = tf.clip_by_value(
      tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1, 0,
      num_bins - 1)
  rows = [tf.ones_like(confidence, dtype=tf.float64),
          tf.cast(confidence, tf.float64), tf.cast(correct, tf.float64)]
  return tf.stack([tf.math.unsorted_segment_sum(row, bins, num_bins)
                   for row in rows])


def expected_calibration_error(statistics):
  """ECE = sum_b |sum_correct_b - sum_confidence_b| / sum_b count_b.

  Args:
    statistics: array [3, B] of `reliability_statistics` (summed over batches).

  Returns:
    float, or None when no pixel was counted.
  """
  count, confidence, correct = np.asarray(statistics, dtype=np.float64)
  total = count.sum()
  if total <= 0:
    return None
  return float(np.abs(correct - confidence).sum() / total)


def reliability_record(statistics):
  """JSON form of summed statistics [3, B]: lists per row plus `ece`."""
  statistics = np.asarray(statistics, dtype=np.float64)
  record = {name: statistics[i].tolist() for i, name in enumerate(_STATISTICS)}
  record['count'] = [int(round(value)) for value in record['count']]
  record['ece'] = expected_calibration_error(statistics)
  return record


def statistics_from_record(record):
  """Inverse of `reliability_record`: float64 [3, B]."""
  return np.array([record[name] for name in _STATISTICS], dtype=np.float64)


def pixel_accuracy(confusion):
  """Correct / counted pixels of a confusion matrix; None if it is empty."""
  confusion = np.asarray(confusion, dtype=np.float64)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total > 0 else None


def _finite_or_none(value):
  return None if value is None or not np.isfinite(value) else float(value)


def confusion_summary(confusion):
  """JSON numbers of a confusion matrix int [C, C] (rows ground truth).

  Returns:
    dict: `pixel_accuracy`, `miou` (floats or None), `per_class_iou` (list
    [C] of floats, None where TP + FP + FN = 0) and `confusion_matrix` (int
    lists [C][C]).
  """
  confusion = np.asarray(confusion, np.int64)
  return {'pixel_accuracy': pixel_accuracy(confusion),
          'miou': _finite_or_none(metrics.mean_iou(confusion)),
          'per_class_iou': [_finite_or_none(value)
                            for value in metrics.per_class_iou(confusion)],
          'confusion_matrix': confusion.tolist()}


# ----------------------------------------------------------------------------
# Graph.


def make_iterator(dataset):
  """A re-initialisable iterator over a `data_generator.Dataset`, so that one
  graph can make a pass per checkpoint."""
  return tf.data.make_initializable_iterator(dataset.get_dataset())


def build_fetches(samples, model_options, num_classes, ignore_label,
                  eval_scales=(1.0,), add_flipped_images=False,
                  image_pyramid=None, pseudo_config=None):
  """Builds the per-batch tensors of one run in the default graph.

  Args:
    samples: batch dict of an eval-mode dataset with `image` float
      [N, H, W, 3], `label` int [N, H, W, 1] and `valid` int [N, H, W, 1]
      (1 on the image, 0 on the padding).
    model_options: common.ModelOptions (crop size = the eval crop).
    num_classes: C.
    ignore_label: ignored label value.
    eval_scales, add_flipped_images, image_pyramid: as eval.py's flags.
    pseudo_config: pseudoseg.PseudoSegOptions of a PseudoSeg run (how its
      decoder and SGC outputs become pseudo labels; with `weakly` the SGC
      uses the image-level labels of `label`), None for a baseline.

  Returns:
    (per_batch, overlay): dicts of tensors. per_batch: `confusion` int64
    [C, C], `num_images` int32; PseudoSeg also the entries of
    `pseudo_label_statistics` (`sgc` absent without attention).
    overlay: `image` uint8 [N, H, W, 3],
    `label` int [N, H, W], `prediction` int64 [N, H, W], `valid` bool
    [N, H, W] (the image area), `name` string [N].
  """
  images = samples[common.IMAGE]
  labels = samples[common.LABEL]
  prediction = eval_graph.predict(images, model_options, eval_scales,
                                  add_flipped_images,
                                  image_pyramid)[common.OUTPUT_TYPE]
  per_batch = {
      'confusion': metrics.batch_confusion_matrix(
          labels, prediction, num_classes, ignore_label),
      'num_images': tf.shape(images)[0]}
  overlay = {
      'image': tf.cast(tf.clip_by_value(images, 0, 255), tf.uint8),
      'label': labels[..., 0], 'prediction': prediction,
      'valid': tf.cast(samples[common.VALID][..., 0], tf.bool),
      'name': samples[common.IMAGE_NAME]}
  if pseudo_config is not None:
    per_batch.update(_pseudo_label_fetches(
        samples, model_options, num_classes, ignore_label, image_pyramid,
        pseudo_config))
  return per_batch, overlay


def _pseudo_label_fetches(samples, model_options, num_classes, ignore_label,
                          image_pyramid, pseudo_config):
  """Calibration and pseudo-label tensors at the decoder-logit resolution."""
  images = samples[common.IMAGE]
  decoder_logits = model.multi_scale_logits(
      images, model_options, image_pyramid=image_pyramid, is_training=False,
      fine_tune_batch_norm=False)[common.OUTPUT_TYPE][
          model.MERGED_LOGITS_SCOPE]
  logits_size = tf.shape(decoder_logits)[1:3]
  labels = resize.labels_nearest_legacy(samples[common.LABEL], logits_size)
  probs = {'decoder': tf.nn.softmax(decoder_logits)}
  sgc_logits = None
  if pseudo_config.use_attention:
    valid = pseudoseg.valid_at(samples[common.VALID], logits_size)
    class_labels = (image_level_labels(samples[common.LABEL], num_classes,
                                       ignore_label)
                    if pseudo_config.weakly else None)
    with tf.name_scope('sgc_inference'):
      outputs = pseudoseg.attention_branch(
          images, class_labels, valid, pseudo_config, num_classes,
          is_training=False)
    sgc_logits = resize.bilinear_ac(outputs.logits, logits_size)
    probs['sgc'] = tf.nn.softmax(sgc_logits)
  probs['fused'] = pseudo_label.fuse_probabilities(
      decoder_logits, sgc_logits, pseudo_config.pseudo_src,
      pseudo_config.logit_norm)
  probs['sharpened'] = pseudo_label.sharpen(probs['fused'],
                                            sharpening_temperature(
                                                pseudo_config))
  return pseudo_label_statistics(probs, labels, num_classes, ignore_label)


def image_level_labels(labels, num_classes, ignore_label):
  """Graph op: the image-level labels of a batch of label maps.

  What training gives a --weakly run's SGC as `cls_label`:
  `preprocess_utils.image_level_labels` of each image, the foreground classes
  present; ignored pixels (the eval padding among them) set nothing.

  Args:
    labels: int32 [N, H, W, 1] (or [N, H, W]) label maps.
    num_classes: C, background included.
    ignore_label: label value left out.

  Returns:
    float32 [N, C - 1] multi-hot: entry k - 1 is 1 when class k >= 1 occurs.
  """
  return tf.map_fn(
      lambda label: preprocess_utils.image_level_labels(label, num_classes,
                                                        ignore_label),
      labels, fn_output_signature=tf.float32)


def pseudo_label_statistics(probs, labels, num_classes, ignore_label):
  """Graph ops: calibration and accuracy of each pseudo-label source.

  Args:
    probs: {source: float [B, h, w, C]} for the sources of SOURCES measured
      (`sharpened` required).
    labels: int [B, h, w] (or [B, h, w, 1]) ground truth at the same
      resolution.
    num_classes: C.
    ignore_label: label value whose pixels are left out.

  Returns:
    dict: `reliability` {source: float64 [3, NUM_BINS]} of every source in
    `probs`, `source_confusion` {source: int64 [C, C]} of the argmax of every
    source of CONFUSION_SOURCES in `probs`, and `pseudo_confusion` int64
    [C, C] of argmax(sharpened).
  """
  confusion = lambda source: metrics.batch_confusion_matrix(
      labels, tf.argmax(probs[source], axis=3), num_classes, ignore_label)
  return {
      'reliability': {
          source: reliability_statistics(probs[source], labels, ignore_label)
          for source in SOURCES if source in probs},
      'source_confusion': {source: confusion(source)
                           for source in CONFUSION_SOURCES if source in probs},
      'pseudo_confusion': confusion('sharpened')}


# ----------------------------------------------------------------------------
# Running.


def evaluate_checkpoint(sess, iterator, per_batch, checkpoint):
  """One pass over the split with `checkpoint`; returns the summed numbers.

  Args:
    sess: session of the graph holding `per_batch`.
    iterator: the initializable iterator feeding it.
    per_batch: the first dict of `build_fetches`.
    checkpoint: checkpoint prefix to restore.

  Returns:
    `per_batch` with every array summed over the split (numpy, same nesting)
    and `num_images` an int.
  """
  _restore(sess, checkpoint)
  sess.run(iterator.initializer)
  totals = None
  while True:
    values = _next_batch(sess, per_batch)
    if values is None:
      break
    totals = values if totals is None else _summed(totals, values)
  if totals is None:
    raise InputError('the evaluation split holds no image')
  totals['num_images'] = int(totals['num_images'])
  return totals


def _summed(totals, values):
  """Element-wise sum of two equally nested dicts of arrays."""
  if isinstance(totals, dict):
    return {key: _summed(totals[key], values[key]) for key in totals}
  return totals + values


def _restore(sess, checkpoint):
  """Restores every variable of the graph from `checkpoint`.

  Raises:
    InputError: the checkpoint lacks some (e.g. a train_sup.py checkpoint
      analysed as a PseudoSeg run, or other --att_strides/--model_variant).
  """
  missing = checkpoints.restore_variables(sess, checkpoint)
  if missing:
    raise InputError(
        'checkpoint %s lacks %d variable(s) of the analysis graph, e.g. %s: '
        'is it a run of the right script (--sup_logdir, --full_logdir: '
        'train_sup.py; --wss_logdir, --weakly_logdir: train_wss.py) with '
        'the same model flags?' %
        (checkpoint, len(missing), missing[0]))


def _next_batch(sess, fetches):
  """sess.run(fetches), or None at the end of the split; an image larger
  than the eval crop is an InputError."""
  try:
    return sess.run(fetches)
  except tf.errors.OutOfRangeError:
    return None
  except tf.errors.InvalidArgumentError as error:
    if 'larger than the eval crop size' not in error.message:
      raise
    detail = error.message.split('[[')[0].split('assertion failed:')[-1]
    raise InputError('an image of the split does not fit --eval_crop_size: %s'
                     % ' '.join(detail.split()))


def collect_overlays(sess, iterator, overlay, checkpoint, num_images):
  """Image, label and prediction of the first `num_images` images.

  Each is cropped to the image area (the bounding box of `valid`), so the eval
  padding is not shown.

  Returns:
    list of dicts `image` uint8 [h, w, 3], `label` int [h, w], `prediction`
    int [h, w], at most `num_images` long.
  """
  _restore(sess, checkpoint)
  sess.run(iterator.initializer)
  rows = []
  while len(rows) < num_images:
    values = _next_batch(sess, overlay)
    if values is None:
      break
    for index in range(len(values['image'])):
      rows.append(_cropped(values, index))
  return rows[:num_images]


def _cropped(values, index):
  area = values['valid'][index]
  rows, columns = np.flatnonzero(area.any(axis=1)), np.flatnonzero(
      area.any(axis=0))
  if rows.size == 0:
    rows = columns = np.arange(area.shape[0])
  window = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
  row = {key: values[key][index][window]
         for key in ('image', 'label', 'prediction')}
  row['name'] = prediction_files.output_name(values['name'][index], index)
  return row


def image_pixel_accuracy(label, prediction, ignore_label):
  """Share of the labelled pixels of one image predicted right (None if
  none is labelled)."""
  counted = np.asarray(label) != ignore_label
  if not counted.any():
    return None
  return float(np.mean(np.asarray(prediction)[counted] ==
                       np.asarray(label)[counted]))


class Progress(object):
  """Prints one line per checkpoint with the overall ETA.

  The ETA multiplies the checkpoints still to compute by the mean time of the
  checkpoints computed so far, per run (runs not started yet: the overall
  mean); cached checkpoints cost nothing.
  """

  def __init__(self, to_compute, total, stream=None, clock=time.time):
    """to_compute: {run: number of checkpoints}; total: their sum."""
    self._left = dict(to_compute)
    self._seconds = collections.defaultdict(list)
    self._total = total
    self._done = 0
    self._stream = stream or sys.stdout
    self._clock = clock
    self._start = None

  def start(self):
    """Marks the start of one checkpoint's computation."""
    self._start = self._clock()

  def eta(self):
    """Seconds still needed (None before the first measurement)."""
    measured = [s for values in self._seconds.values() for s in values]
    if not measured:
      return None if any(self._left.values()) else 0.
    overall = np.mean(measured)
    return float(sum(
        left * (np.mean(self._seconds[run]) if self._seconds[run] else overall)
        for run, left in self._left.items()))

  def done(self, run, step, summary, cached=False):
    """Reports a finished checkpoint (computed since `start`, or cached)."""
    self._done += 1
    self._left[run] -= 1
    if cached:
      timing = 'cached'
    else:
      seconds = self._clock() - self._start
      self._seconds[run].append(seconds)
      timing = '%.1f s' % seconds
    eta = self.eta()
    print('analysis %d/%d  %s step %d: %s  (%s, ETA %s)' % (
        self._done, self._total, run, step, summary, timing,
        '?' if eta is None else _format_seconds(eta)),
          file=self._stream, flush=True)


def _format_seconds(seconds):
  minutes, seconds = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return '%d:%02d:%02d' % (hours, minutes, seconds)


def record_summary(record):
  """Short text of a checkpoint record for the progress line."""
  text = 'val mIoU %s' % percent(record['miou'])
  if 'sources' in record:
    text += ', pseudo-label mIoU %s, ECE fused %s' % (
        ' / '.join('%s %s' % (source, percent(summary['miou']))
                   for source, summary in record['sources'].items()),
        percent(record['reliability']['fused']['ece']))
  return text


def percent(value):
  """`12.3%` of a fraction, `-` for None."""
  return '-' if value is None else '%.1f%%' % (100 * value)


# ----------------------------------------------------------------------------
# Per-checkpoint records and their cache.


def checkpoint_record(run, checkpoint, step, totals, settings):
  """The JSON-serialisable results of one checkpoint.

  Args:
    run: run name (e.g. 'baseline', 'pseudoseg', 'pseudoseg_weakly').
    checkpoint: checkpoint prefix.
    step: its global step.
    totals: the dict of `evaluate_checkpoint`.
    settings: JSON-serialisable dict of everything the numbers depend on
      (compared by `load_cached`).

  Returns:
    `results_io.results_record` (checkpoint, global_step, miou, per_class_iou,
    num_images, confusion_matrix) plus `run`, `settings` and, for PseudoSeg,
    `reliability` {source: {count, sum_confidence, sum_correct: [NUM_BINS],
    ece}}, `pseudo_label` (argmax of the sharpened pseudo labels) and
    `sources` {source of CONFUSION_SOURCES: ...}, each a `confusion_summary`
    {pixel_accuracy, miou, per_class_iou, confusion_matrix}.
  """
  extra = {'run': run, 'settings': settings}
  if 'reliability' in totals:
    extra['reliability'] = {source: reliability_record(statistics)
                            for source, statistics in
                            totals['reliability'].items()}
    extra['pseudo_label'] = confusion_summary(totals['pseudo_confusion'])
    extra['sources'] = {source: confusion_summary(confusion)
                        for source, confusion in
                        totals['source_confusion'].items()}
  return results_io.results_record(checkpoint, step, totals['confusion'],
                                   totals['num_images'], **extra)


def cache_path(output_dir, run, step):
  """`<output_dir>/analysis/<run>-<step>.json`."""
  return os.path.join(output_dir, 'analysis', '%s-%d.json' % (run, step))


def checkpoint_settings(checkpoint, **settings):
  """Settings of one checkpoint's analysis, normalised as JSON would store
  them; includes the checkpoint and its modification time so that a new
  training run in the same logdir is not mistaken for the cached one."""
  settings = dict(settings, checkpoint=checkpoint,
                  checkpoint_mtime=int(os.stat(checkpoint + '.index').st_mtime))
  return json.loads(json.dumps(settings))


def load_cached(path, settings):
  """The record at `path` if it exists, parses and has these settings."""
  try:
    with open(path) as stream:
      record = json.load(stream)
  except (OSError, ValueError):
    return None
  return record if record.get('settings') == settings else None


def overlays_path(output_dir, run, step):
  """`<output_dir>/analysis/<run>-<step>-overlays.npz`."""
  return os.path.join(output_dir, 'analysis',
                      '%s-%d-overlays.npz' % (run, step))


def save_overlays(path, rows, settings):
  """Saves `collect_overlays` rows and their settings (atomically)."""
  arrays = {'settings': np.array(json.dumps(settings, sort_keys=True))}
  for index, row in enumerate(rows):
    for key, value in row.items():
      arrays['%s_%d' % (key, index)] = np.asarray(value)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic_write.open_atomic(path) as stream:
    np.savez_compressed(stream, **arrays)


def load_overlays(path, settings, num_images):
  """The first `num_images` saved rows, or None if the file is missing, made
  with other settings or holds fewer rows."""
  try:
    with np.load(path) as data:
      if str(data['settings']) != json.dumps(settings, sort_keys=True):
        return None
      rows = []
      while len(rows) < num_images and 'image_%d' % len(rows) in data:
        index = len(rows)
        row = {key: data['%s_%d' % (key, index)]
               for key in ('image', 'label', 'prediction')}
        row['name'] = str(data['name_%d' % index])
        rows.append(row)
  except (OSError, ValueError, KeyError):
    return None
  return rows if len(rows) == num_images else None


# ----------------------------------------------------------------------------
# Training curves from event files.


def read_scalar_events(logdir):
  """Scalar summaries of the event files directly in `logdir`.

  Returns:
    {tag: (steps int64 [n], values float64 [n])}, sorted by step; when a step
    was written more than once (a resumed run), the last value written wins.
  """
  by_tag = collections.defaultdict(dict)
  paths = sorted(glob.glob(os.path.join(logdir, _EVENTS_PATTERN)))
  for path in paths:
    try:
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          scalar = _scalar_of(value)
          if scalar is not None:
            by_tag[value.tag][int(event.step)] = scalar
    except tf.errors.DataLossError:
      pass  # A file still being written ends in a truncated record.
  curves = {}
  for tag, points in by_tag.items():
    steps = np.array(sorted(points), dtype=np.int64)
    curves[tag] = (steps, np.array([points[s] for s in steps], np.float64))
  return curves


def _scalar_of(value):
  kind = value.WhichOneof('value')
  if kind == 'simple_value':
    return float(value.simple_value)
  if kind == 'tensor' and value.metadata.plugin_data.plugin_name == 'scalars':
    return float(tf.make_ndarray(value.tensor))
  return None


def find_curve(curves, tag):
  """The curve of `tag`, else of `tag_<n>` with the smallest n, else None.

  TF1 summaries of a name that already exists get a `_1` suffix (e.g.
  `total_loss_1` beside the `total_loss` op); both spellings are accepted.
  """
  if tag in curves:
    return curves[tag]
  pattern = re.compile(re.escape(tag) + r'_(\d+)$')
  matches = sorted((int(m.group(1)), name) for name in curves
                   for m in [pattern.match(name)] if m)
  return curves[matches[0][1]] if matches else None


def validation_curves(records):
  """Arrays over checkpoints (sorted by step) from checkpoint records.

  Returns:
    dict: `step` int [n], `miou` float [n] (NaN where undefined) and, when the
    records are PseudoSeg ones, `ece_<source>` per measured source and
    `pseudo_miou_<source>` per source of CONFUSION_SOURCES measured.
  """
  records = sorted(records, key=lambda r: r['global_step'])
  value = lambda v: np.nan if v is None else float(v)
  curves = {'step': np.array([r['global_step'] for r in records], np.int64),
            'miou': np.array([value(r['miou']) for r in records])}
  if records and 'reliability' in records[0]:
    for source in records[0]['reliability']:
      curves['ece_' + source] = np.array(
          [value(r['reliability'][source]['ece']) for r in records])
    for source in records[0]['sources']:
      curves['pseudo_miou_' + source] = np.array(
          [value(r['sources'][source]['miou']) for r in records])
  return curves
