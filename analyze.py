"""End-of-run analysis: which part of the PseudoSeg pipeline loses points.

Evaluates every checkpoint of the training logdirs on --eval_split: the
supervised baseline (--sup_logdir), PseudoSeg (--wss_logdir) and optionally
PseudoSeg with image-level labels (--weakly_logdir, a train_wss.py --weakly
run) and a full-label baseline (--full_logdir). Writes into --output_dir:

  curves.png       training loss and val mIoU of every run, pseudo-label
                   mIoU per source (decoder / SGC / fused) of each PseudoSeg
                   run, PseudoSeg's ECE (decoder / SGC / fused / sharpened)
                   over steps
  reliability.png  reliability diagrams of PseudoSeg's decoder, SGC, fused and
                   sharpened pseudo labels on val, last checkpoint
  overlays.png     image | ground truth | baseline | PseudoSeg (| PseudoSeg
                   weakly), first --num_overlay_images val images, last
                   checkpoints
  RESULTS.md       the results table with the source of every row, IoU per
                   class, files and TensorBoard (also printed)
  results.json     the rows and the per-class IoU as JSON
  analysis/<run>-<step>.json  per-checkpoint numbers (cache: a rerun skips
                   checkpoints already analysed with the same settings)

Pass the model, dataset and PseudoSeg flags given to training (the PseudoSeg
flags take train_wss.py's defaults), plus --train_split (and
--train_split_cls, the unlabeled split) for the table:

  python analyze.py --sup_logdir=work_dirs/quickstart/train_sup \
    --wss_logdir=work_dirs/quickstart/train_wss \
    --weakly_logdir=work_dirs/quickstart/train_wss_weakly \
    --output_dir=work_dirs/quickstart/analysis --model_variant=mobilenet_v2 \
    --output_stride=16 --dataset=synthetic --dataset_dir=work_dirs/synthetic \
    --eval_split=val --eval_crop_size=193,193 --train_split=16_clean_3

The full-label row comes from --full_logdir, else from --upper_bound_json
when that committed result was made in the same --setting, train split and
steps. What is measured is described in core/analysis/fetches.py: mIoU as
eval.py computes it; calibration and pseudo-label accuracy at the
decoder-logit resolution, labels resized nearest as in training, ignored
pixels left out.
"""
import os

from absl import app
from absl import flags

from core.analysis import cache
from core.analysis import event_files
from core.analysis import fetches
from core.analysis import passes
from core.analysis import results_table
from core.analysis import scores
from core.data import registry
from core.eval import eval_graph
from core.eval import results_io
from core.flags import eval_flags
from core.flags import flag_checks
from core.flags import model_flags
from core.flags import supervised_flags
from core.flags import wss_flags
from core.method import pseudoseg
from datasets import build_synthetic_data
from deeplab import common
from deeplab.tf_compat import tf
from utils import atomic_write
from utils import plots
from utils.errors import InputError
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS

flags.DEFINE_string('sup_logdir', None,
                    'Training logdir of the supervised baseline '
                    '(train_sup.py).')
flags.DEFINE_string('wss_logdir', None,
                    'Training logdir of the PseudoSeg run (train_wss.py).')
flags.DEFINE_string('weakly_logdir', None,
                    'Optional training logdir of a PseudoSeg run that knows '
                    'the image-level labels of its unlabeled split '
                    '(train_wss.py --weakly). As in training, its SGC takes '
                    'the ground-truth image-level labels of each image '
                    'instead of the classification head\'s predictions.')
flags.DEFINE_string('output_dir', None,
                    'Where figures, RESULTS.md and the per-checkpoint cache '
                    '(analysis/) go.')
flags.DEFINE_list('eval_crop_size', '513,513',
                  'Height,width every image is padded to (as eval.py).')
flags.DEFINE_string('eval_split', 'val', 'Split (tfrecord prefix) to analyse.')
flags.DEFINE_integer('eval_batch_size', 1,
                     'Images per batch. The SGC batch norm and logit_norm use '
                     'batch statistics, so the SGC/fused ECEs depend on it; '
                     'pass the per-clone training batch to mimic training.')
flags.DEFINE_string('full_logdir', None,
                    'Optional training logdir of a full-label baseline '
                    '(train_sup.py on all labels of --train_split_cls), '
                    'analysed like --sup_logdir; its row replaces '
                    '--upper_bound_json\'s.')
flags.DEFINE_string('upper_bound_json', None,
                    'Optional JSON of a committed full-label result, the '
                    'table\'s full-label row when there is no --full_logdir: '
                    '{"miou_mean": mean val mIoU in [0, 1], "miou_std": std '
                    'over seeds, "seeds": [ints], "steps": int, '
                    '"train_split": "train_aug", "setting": "as --setting", '
                    '"command": "the command run", "date": "ISO date"}. Used '
                    'only when its train_split, steps and setting equal '
                    '--train_split_cls, the baseline\'s last step and '
                    '--setting; otherwise RESULTS.md says why the row is '
                    'left out.')
flags.DEFINE_string('setting', '',
                    'Free text naming the training setting of these runs, '
                    'as bench/protocol.sh setting_of writes it (e.g. '
                    '"synthetic 128_clean, 1000 steps, batch 4, crop 129, '
                    'pretrain 600 steps"); --upper_bound_json must carry the '
                    'same "setting".')
flags.DEFINE_list('class_names', [],
                  'Class names in id order, for the per-class table and the '
                  'legend of overlays.png; empty: the synthetic dataset\'s '
                  'names with --dataset=synthetic, else the class ids.')
flags.DEFINE_integer('num_overlay_images', 6,
                     'Rows of overlays.png (the first images of the split).')
flags.DEFINE_integer('max_checkpoints_per_run', 0,
                     'Analyse at most this many checkpoints of each run, '
                     'evenly spaced, always the first and the last; <= 0: all '
                     '(each costs one pass over the split).')
flags.DEFINE_enum('colormap_type', 'pascal', ['pascal', 'cityscapes', 'ade20k'],
                  'Colour map of the label maps in overlays.png.')

BASELINE, PSEUDOSEG, WEAKLY, FULL_LABEL = (
    results_table.BASELINE, results_table.PSEUDOSEG, results_table.WEAKLY,
    results_table.FULL_LABEL)
# The logdir flag of every run, in table order.
_LOGDIR_FLAGS = {BASELINE: 'sup_logdir', PSEUDOSEG: 'wss_logdir',
                 WEAKLY: 'weakly_logdir', FULL_LABEL: 'full_logdir'}
_REQUIRED_RUNS = (BASELINE, PSEUDOSEG)
_PSEUDOSEG_RUNS = (PSEUDOSEG, WEAKLY)
# The runs of overlays.png, in column order.
_OVERLAY_RUNS = (BASELINE, PSEUDOSEG, WEAKLY)
# Bump when the per-checkpoint JSON changes meaning, to invalidate caches.
_CACHE_VERSION = 2
# Event tags of the training-batch ECEs (core/method/pseudoseg.py) per source.
_TRAIN_ECE_TAGS = {'decoder': 'calibration/ece_decoder',
                   'sgc': 'calibration/ece_attention',
                   'fused': 'calibration/ece_fused',
                   'sharpened': 'calibration/ece_pseudo'}
_LOSS_TAG = 'total_loss'


def _logdirs():
  """{run: training logdir} of the runs to analyse, in table order."""
  return {run: getattr(FLAGS, flag) for run, flag in _LOGDIR_FLAGS.items()
          if run in _REQUIRED_RUNS or getattr(FLAGS, flag)}


def _check_flags():
  """Validates the flags; returns (crop_size, scales, {run: checkpoints},
  class names)."""
  crop_size = flag_checks.parse_crop_size(FLAGS.eval_crop_size,
                                          'eval_crop_size')
  flag_checks.check_positive(FLAGS.eval_batch_size, 'eval_batch_size')
  if FLAGS.num_overlay_images < 0:
    raise InputError('--num_overlay_images must be >= 0')
  if FLAGS.weakly:
    raise InputError('--weakly: pass a train_wss.py --weakly run as '
                     '--weakly_logdir instead')
  scales = flag_checks.check_scales(FLAGS.eval_scales)
  checkpoints = {
      run: passes.select_evenly(
          passes.list_checkpoints(logdir, _LOGDIR_FLAGS[run]),
          FLAGS.max_checkpoints_per_run)
      for run, logdir in _logdirs().items()}
  if FLAGS.eval_split == common.TEST_SET:
    raise InputError('the %s split has no labels to analyse' % common.TEST_SET)
  split = registry.check_split(FLAGS.dataset, FLAGS.eval_split,
                               FLAGS.dataset_dir)
  options = model_flags.model_options_from_flags(
      split.descriptor.num_classes, crop_size)
  if FLAGS.use_attention:
    pseudoseg.attention_end_points(_pseudo_config(options, PSEUDOSEG))
  results_table.read_upper_bound(FLAGS.upper_bound_json)
  default_names = (build_synthetic_data.CLASS_NAMES
                   if FLAGS.dataset == 'synthetic' else None)
  try:
    names = results_table.class_names(split.descriptor.num_classes,
                                      FLAGS.class_names or default_names)
  except InputError as error:
    raise InputError('--class_names: %s' % error)
  flag_checks.check_output_dir(FLAGS.output_dir, 'output_dir')
  return crop_size, scales, checkpoints, names


def _pseudo_config(model_options, run):
  """The PseudoSegOptions of a PseudoSeg run (`weakly` for WEAKLY), None for
  a supervised one."""
  if run not in _PSEUDOSEG_RUNS:
    return None
  return wss_flags.pseudoseg_options_from_flags(
      supervised_flags.supervised_options_from_flags(model_options))._replace(
          weakly=run == WEAKLY)


def _settings(run, crop_size, scales):
  """What a run's per-checkpoint numbers depend on (the cache key)."""
  settings = {
      'version': _CACHE_VERSION, 'dataset': FLAGS.dataset,
      'dataset_dir': os.path.abspath(FLAGS.dataset_dir),
      'split': FLAGS.eval_split, 'crop_size': crop_size,
      'batch_size': FLAGS.eval_batch_size, 'eval_scales': scales,
      'add_flipped_images': FLAGS.add_flipped_images,
      'image_pyramid': FLAGS.image_pyramid,
      'model_variant': FLAGS.model_variant,
      'output_stride': FLAGS.output_stride,
      'atrous_rates': FLAGS.atrous_rates,
      'decoder_output_stride': FLAGS.decoder_output_stride}
  pseudo_config = _pseudo_config(None, run)
  if pseudo_config is not None:
    settings.update(use_attention=FLAGS.use_attention,
                    pseudo_src=FLAGS.pseudo_src, logit_norm=FLAGS.logit_norm,
                    temperature=fetches.sharpening_temperature(pseudo_config),
                    att_strides=FLAGS.att_strides, att_v2=FLAGS.att_v2,
                    attention_dim=FLAGS.attention_dim,
                    weakly=pseudo_config.weakly)
  return settings


def _analyze_run(run, checkpoints, crop_size, scales, progress):
  """Records of every checkpoint of one run and the overlay rows of its last.

  Cached records are reused; the graph is built only if something is left to
  compute.
  """
  settings = _settings(run, crop_size, scales)
  records, todo = {}, []
  for step, checkpoint in checkpoints:
    key = cache.checkpoint_settings(checkpoint, **settings)
    cached = cache.load_cached(
        cache.cache_path(FLAGS.output_dir, run, step), key)
    if cached is None:
      todo.append((step, checkpoint, key))
    else:
      records[step] = cached
      progress.done(run, step, passes.record_summary(cached), cached=True)
  last_step, last_checkpoint = checkpoints[-1]
  num_overlays = FLAGS.num_overlay_images if run in _OVERLAY_RUNS else 0
  overlay_key = dict(
      cache.checkpoint_settings(last_checkpoint, **settings),
      num_images=num_overlays)
  overlay_path = cache.overlays_path(FLAGS.output_dir, run, last_step)
  overlays = ([] if not num_overlays else cache.load_overlays(
      overlay_path, overlay_key, num_overlays))
  if not todo and overlays is not None:
    return [records[step] for step, _ in checkpoints], overlays
  with tf.Graph().as_default():
    # The valid mask (image area) feeds the SGC, as in training.
    dataset = eval_graph.eval_dataset(
        eval_flags.eval_data_options_from_flags(), FLAGS.eval_split,
        FLAGS.eval_batch_size, crop_size, num_readers=1, output_valid=True)
    iterator = fetches.make_iterator(dataset)
    options = model_flags.model_options_from_flags(dataset.num_of_classes,
                                                   crop_size)
    pseudo_config = _pseudo_config(options, run)
    per_batch, overlay = fetches.build_fetches(
        iterator.get_next(), options, dataset.num_of_classes,
        dataset.ignore_label, scales, FLAGS.add_flipped_images,
        FLAGS.image_pyramid, pseudo_config)
    with tf.Session(FLAGS.master) as sess:
      for step, checkpoint, key in todo:
        progress.start()
        totals = passes.evaluate_checkpoint(sess, iterator, per_batch,
                                            checkpoint)
        record = cache.checkpoint_record(run, checkpoint, step, totals, key)
        path = cache.cache_path(FLAGS.output_dir, run, step)
        tf.io.gfile.makedirs(os.path.dirname(path))
        results_io.write_json_atomically(path, record)
        records[step] = record
        progress.done(run, step, passes.record_summary(record))
      if overlays is None:
        overlays = passes.collect_overlays(sess, iterator, overlay,
                                           last_checkpoint, num_overlays)
        cache.save_overlays(overlay_path, overlays, overlay_key)
  return [records[step] for step, _ in checkpoints], overlays


def _curves_figure(records, scalars, path):
  loss, miou, pseudo_miou = {}, {}, {}
  for run in records:
    name = results_table.SHORT_NAMES[run]
    curve = event_files.find_curve(scalars[run], _LOSS_TAG)
    if curve is not None:
      loss[name] = curve
    val = scores.validation_curves(records[run])
    miou[name] = (val['step'], val['miou'])
    if run in _PSEUDOSEG_RUNS:
      pseudo_miou[name] = {
          source: (val['step'], val['pseudo_miou_' + source])
          for source in fetches.CONFUSION_SOURCES
          if 'pseudo_miou_' + source in val}
  val = scores.validation_curves(records[PSEUDOSEG])
  val_ece = {source: (val['step'], val['ece_' + source])
             for source in fetches.SOURCES if 'ece_' + source in val}
  train_ece = {}
  for source, tag in _TRAIN_ECE_TAGS.items():
    curve = event_files.find_curve(scalars[PSEUDOSEG], tag)
    if curve is not None and source in val_ece:
      train_ece[source] = curve
  plots.plot_curves(path, loss, miou, pseudo_miou, val_ece, train_ece)


def _reliability_figure(last, path):
  statistics = {source: scores.statistics_from_record(reliability)
                for source, reliability in last['reliability'].items()}
  eces = {source: reliability['ece']
          for source, reliability in last['reliability'].items()}
  plots.plot_reliability(
      path, statistics, eces,
      'PseudoSeg on %s, step %d (%d images; pixels at the decoder-logit '
      'resolution)' % (FLAGS.eval_split, last['global_step'],
                       last['num_images']))


def _overlays_figure(overlays, steps, num_classes, ignore_label, names,
                     path):
  """overlays: {run: rows of `collect_overlays`} (the same images in every
  run), in column order; steps: {run: step of those rows}; names: C class
  names."""
  short = results_table.SHORT_NAMES
  rows = []
  for run_rows in zip(*overlays.values()):
    first = run_rows[0]
    label = '\n'.join([first['name']] + [
        '%s %s' % (short[run], scores.percent(scores.image_pixel_accuracy(
            row['label'], row['prediction'], ignore_label)))
        for run, row in zip(overlays, run_rows)])
    rows.append((label, [first['image'], first['label']] +
                 [row['prediction'] for row in run_rows]))
  titles = ['Image', 'Ground truth'] + [
      '%s (step %d)' % (short[run], steps[run]) for run in overlays]
  plots.plot_overlays(path, rows, titles, num_classes, ignore_label,
                      FLAGS.colormap_type, names)


def _write_results(records, logdirs, names, files):
  """RESULTS.md and results.json from the last record of every run."""
  last = {run: run_records[-1] for run, run_records in records.items()}
  upper_bound, note = None, None
  if FULL_LABEL not in last:
    upper_bound, note = results_table.full_label_bound(
        FLAGS.upper_bound_json, FLAGS.train_split_cls,
        last[BASELINE]['global_step'], FLAGS.setting)
  rows = results_table.results_rows(last, logdirs, FLAGS.train_split,
                                    FLAGS.train_split_cls, upper_bound)
  columns = results_table.per_class_columns(last)
  results_io.write_json_atomically(
      os.path.join(FLAGS.output_dir, 'results.json'),
      {'rows': rows, 'per_class_iou': {'class_names': names,
                                       'columns': dict(columns)}})
  evaluation = {'dataset': FLAGS.dataset, 'split': FLAGS.eval_split,
                'num_images': last[PSEUDOSEG]['num_images'],
                'batch_size': FLAGS.eval_batch_size}
  markdown = results_table.results_markdown(
      rows, columns, names, files,
      os.path.commonpath([os.path.abspath(d) for d in logdirs.values()]),
      evaluation, note)
  results_path = os.path.join(FLAGS.output_dir, 'RESULTS.md')
  atomic_write.write_text(results_path, markdown)
  print('\n' + markdown)
  print('written: %s' % results_path)


def main(unused_argv):
  crop_size, scales, checkpoints, names = _check_flags()
  total = sum(len(c) for c in checkpoints.values())
  progress = passes.Progress({run: len(c) for run, c in checkpoints.items()},
                             total)
  records, overlays = {}, {}
  for run in checkpoints:
    records[run], overlays[run] = _analyze_run(run, checkpoints[run], crop_size,
                                               scales, progress)
  descriptor = registry.DATASETS[FLAGS.dataset]
  logdirs = _logdirs()
  scalars = {run: event_files.read_scalar_events(logdir)
             for run, logdir in logdirs.items()}
  output = FLAGS.output_dir
  overlay_runs = [run for run in _OVERLAY_RUNS if run in records]
  files = [(os.path.join(output, 'curves.png'),
            'loss, val mIoU, pseudo-label mIoU per source and PseudoSeg\'s '
            'ECE over steps'),
           (os.path.join(output, 'reliability.png'),
            'reliability diagrams, PseudoSeg last checkpoint'),
           (os.path.join(output, 'overlays.png'),
            'image | ground truth | %s (row labels: pixel accuracy of each '
            'image)' % ' | '.join(results_table.SHORT_NAMES[run]
                                  for run in overlay_runs)),
           (os.path.join(output, 'results.json'), 'these tables as JSON'),
           (os.path.join(output, 'analysis'), 'per-checkpoint JSON')]
  _curves_figure(records, scalars, files[0][0])
  _reliability_figure(records[PSEUDOSEG][-1], files[1][0])
  if FLAGS.num_overlay_images:
    last_steps = {run: c[-1][0] for run, c in checkpoints.items()}
    _overlays_figure({run: overlays[run] for run in overlay_runs}, last_steps,
                     descriptor.num_classes, descriptor.ignore_label, names,
                     files[2][0])
  else:
    del files[2]
  _write_results(records, logdirs, names, files)


if __name__ == '__main__':
  flags.mark_flags_as_required(
      ['sup_logdir', 'wss_logdir', 'output_dir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
