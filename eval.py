"""Evaluates segmentation checkpoints on a split: mIoU (and, with --weakly,
multi-label classification accuracy/precision/recall).

The latest checkpoint in --checkpoint_dir is evaluated at once; new checkpoints
are then picked up every --eval_interval_secs until --max_number_of_evaluations
checkpoints were evaluated (<= 0: forever). With a value other than 1 eval.py
is a watcher: started before its trainer, it waits for the first checkpoint
(a single evaluation stops with an error instead). For each checkpoint the
results go to scalar summaries in --eval_logdir and to
`<eval_logdir>/results-<step>.json` and `<eval_logdir>/results.json` (latest).
Ctrl-C or SIGTERM stops it with one line (exit code 130 or 143).

  python eval.py --logtostderr --eval_split=val --model_variant=xception_65 \
    --atrous_rates=6 --atrous_rates=12 --atrous_rates=18 --output_stride=16 \
    --decoder_output_stride=4 --eval_crop_size=513,513 \
    --checkpoint_dir=TRAIN_LOGDIR --eval_logdir=EVAL_LOGDIR \
    --dataset_dir=DATASET --max_number_of_evaluations=1
"""

import numpy as np
from absl import app
from absl import flags
from absl import logging

from core.data import registry
from core.eval import checkpoints
from core.eval import eval_graph
from core.eval import metrics
from core.eval import results_io
from core.flags import eval_flags
from core.flags import flag_checks
from core.flags import model_flags
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf
from utils import progress
from utils.errors import InputError
from utils.errors import run_reporting_errors
from utils.errors import sigterm_like_ctrl_c

FLAGS = flags.FLAGS

flags.DEFINE_string('eval_logdir', None,
                    'Where summaries and results JSON files are written '
                    '(required).')
flags.DEFINE_integer('eval_batch_size', 1, 'Images per evaluation batch.')
flags.DEFINE_list('eval_crop_size', '513,513',
                  'Height,width every image is padded to: 513,513 for VOC, '
                  '641,641 for COCO (larger images fail).')
flags.DEFINE_string('eval_split', 'val', 'Split (tfrecord prefix) to evaluate.')
flags.DEFINE_integer('max_number_of_evaluations', 0,
                     'Number of checkpoints to evaluate before exiting; <= 0 '
                     'evaluates new checkpoints forever.')


def _check_flags():
  """Validates the flags; returns (crop_size, eval_scales, split_size)."""
  crop_size = flag_checks.parse_crop_size(FLAGS.eval_crop_size,
                                          'eval_crop_size')
  flag_checks.check_positive(FLAGS.eval_batch_size, 'eval_batch_size')
  if FLAGS.eval_interval_secs < 0:
    raise InputError('--eval_interval_secs must be >= 0')
  scales = flag_checks.check_scales(FLAGS.eval_scales)
  if FLAGS.eval_split == common.TEST_SET:
    raise InputError('the %s split has no labels to evaluate' % common.TEST_SET)
  split = registry.check_split(FLAGS.dataset, FLAGS.eval_split,
                               FLAGS.dataset_dir)
  model_flags.model_options_from_flags(
      split.descriptor.num_classes, crop_size)
  flag_checks.check_output_dir(FLAGS.eval_logdir, 'eval_logdir')
  return crop_size, scales, split.num_images


def _build_graph(crop_size, scales):
  """Builds the input pipeline, the model and the per-batch metric tensors.

  Returns:
    (fetches, num_classes). Fetches: `confusion` int64 [C, C] of the batch,
    `invalid_labels` int64 (pixels with a label that is no class id nor the
    ignore label), `image_name` string [N], and with --weakly `cls_counts`
    int64 [4] (TP, FP, FN, TN).
  """
  dataset = eval_graph.eval_dataset(eval_flags.eval_data_options_from_flags(),
                                    FLAGS.eval_split, FLAGS.eval_batch_size,
                                    crop_size, num_readers=2,
                                    with_cls=FLAGS.weakly)
  samples = dataset.get_one_shot_iterator().get_next()
  num_classes = dataset.num_of_classes
  options = model_flags.model_options_from_flags(num_classes, crop_size)
  images = samples[common.IMAGE]
  predictions = eval_graph.predict(images, options, scales,
                                   FLAGS.add_flipped_images,
                                   FLAGS.image_pyramid)
  labels = samples[common.LABEL]
  fetches = {
      'confusion': metrics.batch_confusion_matrix(
          labels, predictions[common.OUTPUT_TYPE], num_classes,
          dataset.ignore_label),
      'invalid_labels': metrics.invalid_label_count(
          labels, num_classes, dataset.ignore_label),
      'image_name': samples[common.IMAGE_NAME],
  }
  if FLAGS.weakly:
    cls_logits, _ = model.classification_logits(
        images, options, num_classes=num_classes - 1, weight_decay=0.0,
        is_training=False, fine_tune_batch_norm=False)
    fetches['cls_counts'] = metrics.multilabel_counts(
        cls_logits, samples[common.CLS_LABEL])
  return fetches, num_classes


def _check_labels(values, num_classes):
  """Raises InputError if the batch holds labels that are no class id."""
  if values['invalid_labels']:
    names = ', '.join(name.decode('utf-8', 'replace')
                      for name in values['image_name'])
    raise InputError(
        '%d label pixels of image(s) %s in split %s are neither a class id '
        '0..%d of dataset %s nor its ignore label: the labels must be '
        'class-index PNGs of this dataset' %
        (values['invalid_labels'], names, FLAGS.eval_split, num_classes - 1,
         FLAGS.dataset))


def _evaluate(snapshot, crop_size, scales, split_size):
  """One pass over the split with one checkpoint (a
  checkpoints.CheckpointSnapshot, read before the model is built: training may
  delete the files meanwhile); returns the results record."""
  with tf.Graph().as_default():
    fetches, num_classes = _build_graph(crop_size, scales)
    with tf.Session(FLAGS.master) as sess:
      checkpoints.restore_snapshot(sess, snapshot)
      confusion = np.zeros([num_classes, num_classes], dtype=np.int64)
      cls_counts = np.zeros([4], dtype=np.int64)
      counter = progress.ItemProgress('eval', split_size)
      while True:
        try:
          values = sess.run(fetches)
        except tf.errors.OutOfRangeError:
          break
        _check_labels(values, num_classes)
        confusion += values['confusion']
        if FLAGS.weakly:
          cls_counts += values['cls_counts']
        counter.add(len(values['image_name']))
      counter.finish()
  classification = (metrics.classification_metrics(cls_counts)
                    if FLAGS.weakly else None)
  return results_io.results_record(
      snapshot.path, snapshot.global_step, confusion, counter.done,
      classification, dataset=FLAGS.dataset,
      split=FLAGS.eval_split, eval_scales=scales,
      add_flipped_images=FLAGS.add_flipped_images)


def _summary_values(record, confusion):
  """Summary tag -> value of one evaluation (the original's tag names)."""
  miou = record['miou']
  values = {'eval/miou_overall': float('nan') if miou is None else miou}
  for index, value in enumerate(metrics.summary_class_iou(confusion)):
    values['eval/miou_class_%d' % index] = value
  if 'cls_accuracy' in record:
    values['eval/cls_overall'] = record['cls_accuracy']
    values['eval/cls_precision'] = record['cls_precision']
    values['eval/cls_recall'] = record['cls_recall']
  return values


def _report(record, json_path):
  """Logs and prints the headline numbers of one evaluation."""
  logging.info('per-class IoU: %s', ', '.join(
      '%d: %s' % (index, 'n/a' if value is None else '%.4f' % value)
      for index, value in enumerate(record['per_class_iou'])))
  miou = 'n/a' if record['miou'] is None else '%.4f' % record['miou']
  line = 'checkpoint %s (step %s): mIoU %s over %d images' % (
      record['checkpoint'], record['global_step'], miou, record['num_images'])
  if 'cls_accuracy' in record:
    line += ', cls accuracy %.4f precision %.4f recall %.4f' % (
        record['cls_accuracy'], record['cls_precision'], record['cls_recall'])
  logging.info('%s', line)
  print(line)
  print('results written to %s' % json_path)


def evaluate_checkpoints(checkpoint_dir, interval_secs, max_evaluations,
                         evaluate):
  """Calls evaluate(snapshot) for each checkpoint that
  checkpoints.checkpoints_to_evaluate yields, once snapshot_checkpoint read it
  into memory.

  A checkpoint deleted before it was read (rotated away by training) is
  skipped with one warning and does not count towards `max_evaluations`.
  SIGTERM stops it as Ctrl-C does.
  """
  skipped = set()
  with sigterm_like_ctrl_c():
    for checkpoint_path in checkpoints.checkpoints_to_evaluate(
        checkpoint_dir, interval_secs, max_evaluations, skipped=skipped):
      logging.info('Evaluating %s on %s/%s.', checkpoint_path, FLAGS.dataset,
                   FLAGS.eval_split)
      try:
        snapshot = checkpoints.snapshot_checkpoint(checkpoint_path)
      except checkpoints.CheckpointVanished as vanished:
        logging.warning('%s', vanished)
        skipped.add(checkpoint_path)
        continue
      evaluate(snapshot)


def main(unused_argv):
  crop_size, scales, split_size = _check_flags()
  writer = None

  def evaluate_and_write(snapshot):
    nonlocal writer
    record = _evaluate(snapshot, crop_size, scales, split_size)
    if writer is None:
      # Created with the first results: a failed run leaves no eval_logdir.
      tf.io.gfile.makedirs(FLAGS.eval_logdir)
      writer = tf.summary.FileWriter(FLAGS.eval_logdir)
    confusion = np.asarray(record['confusion_matrix'])
    results_io.write_scalar_summaries(
        writer, _summary_values(record, confusion), record['global_step'] or 0)
    _report(record, results_io.write_results(FLAGS.eval_logdir, record))

  try:
    evaluate_checkpoints(FLAGS.checkpoint_dir, FLAGS.eval_interval_secs,
                         FLAGS.max_number_of_evaluations, evaluate_and_write)
  finally:
    # Also on Ctrl-C or SIGTERM: the summaries written so far reach the disk.
    if writer is not None:
      writer.close()


if __name__ == '__main__':
  flags.mark_flags_as_required(['checkpoint_dir', 'eval_logdir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
