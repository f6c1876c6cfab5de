"""Predicts segmentations of ordinary JPEG/PNG images of any size.

The model is a checkpoint (--checkpoint_dir: a folder, whose latest checkpoint
is used, or a checkpoint prefix; with the model flags and --dataset) or a
SavedModel written by export_model.py (--saved_model_dir; scales, flips and
padding were fixed at export). --input is a folder (its *.jpg, *.jpeg, *.png
files, any case, not recursive) or a glob. For an input `<name>.<ext>` it
writes, at the image's size:

  <output_dir>/segmentation_results/<name>.png      colour prediction
  <output_dir>/raw_segmentation_results/<name>.png  class ids (uint8;
                                                    Cityscapes: eval label ids)
  <output_dir>/overlay_results/<name>.png           image blended with it

Images are decoded with their EXIF orientation applied (upright, as viewers
show them) and converted to RGB. An unreadable file is skipped with a warning
(--on_bad_file=skip, listed again at the end) or stops the run with an error
(--on_bad_file=stop, exit code 2; files already written stay).

  python predict.py --checkpoint_dir=TRAIN_LOGDIR --input=photos/ \
    --output_dir=PRED --model_variant=xception_65 --atrous_rates=6 \
    --atrous_rates=12 --atrous_rates=18 --output_stride=16 \
    --decoder_output_stride=4 --dataset=pascal_voc_seg
  python predict.py --saved_model_dir=EXPORT --input='photos/*.jpg' \
    --output_dir=PRED
"""
import os

from absl import app
from absl import flags
from absl import logging

from core.eval import prediction_files
from core.flags import eval_flags
from core.flags import flag_checks
from core.flags import model_flags
from core.serving import export
from core.serving import inference
from core.serving import input_files
from utils import progress
from utils import save_annotation
from utils.errors import InputError
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS

flags.DEFINE_string('saved_model_dir', None,
                    'SavedModel from export_model.py (instead of '
                    '--checkpoint_dir).')
flags.DEFINE_string('input', None,
                    'A folder of JPEG/PNG images or a glob such as '
                    '"photos/*.jpg".')
flags.DEFINE_string('output_dir', None, 'Output root folder (required).')
flags.DEFINE_enum('on_bad_file', 'skip', ['skip', 'stop'],
                  'An unreadable input: skip it with a warning, or stop with '
                  'an error.')
flags.DEFINE_list('predict_crop_size', '513,513',
                  'With --checkpoint_dir: height,width inputs are padded up '
                  'to, as eval.py pads to --eval_crop_size (larger dimensions '
                  'are kept; empty: no padding).')
flags.DEFINE_enum('colormap_type', None, ['pascal', 'cityscapes', 'ade20k'],
                  'Colormap of the colour PNGs; default from the dataset.')

_FOLDERS = {'colour': 'segmentation_results',
            'raw': 'raw_segmentation_results',
            'overlay': 'overlay_results'}


def _load_predictor():
  """Returns (predictor, dataset name, description) from the flags."""
  if bool(FLAGS.checkpoint_dir) == bool(FLAGS.saved_model_dir):
    raise InputError('pass exactly one of --checkpoint_dir and '
                     '--saved_model_dir')
  if FLAGS.saved_model_dir:
    fixed = [name for name in ('eval_scales', 'add_flipped_images',
                               'predict_crop_size', 'image_pyramid')
             if FLAGS[name].present]
    if fixed:
      logging.warning('Ignored with --saved_model_dir (fixed at export): %s',
                      ', '.join('--' + name for name in fixed))
    predictor = inference.SavedModelPredictor(FLAGS.saved_model_dir)
    info = export.read_export_info(FLAGS.saved_model_dir)
    return (predictor, info.get('dataset'),
            'SavedModel %s' % FLAGS.saved_model_dir)
  settings = eval_flags.checkpoint_settings_from_flags('predict_crop_size')
  options = model_flags.model_options_from_flags(settings.num_classes, None)
  predictor = inference.CheckpointPredictor(
      settings.checkpoint, options, settings.eval_scales,
      FLAGS.add_flipped_images, settings.crop_size, FLAGS.image_pyramid)
  return predictor, FLAGS.dataset, 'checkpoint %s' % settings.checkpoint


def _save(image, classes, name, folders, colormap, dataset):
  """Writes the colour, raw and overlay PNGs of one image."""
  save_annotation.save_annotation(classes, folders['colour'], name,
                                  add_colormap=True, colormap_type=colormap)
  save_annotation.save_overlay(image, classes, folders['overlay'], name,
                               colormap_type=colormap)
  raw = classes
  if dataset == 'cityscapes':
    raw = prediction_files.convert_train_id_to_eval_id(
        classes, prediction_files.CITYSCAPES_TRAIN_ID_TO_EVAL_ID)
  save_annotation.save_annotation(raw, folders['raw'], name,
                                  add_colormap=False)


def _predict_all(paths, predictor, counter, folders, colormap, dataset):
  """Predicts and saves every image, counting each (read or skipped) on the
  progress.ItemProgress `counter`; returns the unreadable paths skipped."""
  skipped = []
  for path in paths:
    try:
      image = input_files.read_image(path)
    except InputError as error:
      if FLAGS.on_bad_file == 'stop':
        raise InputError('%s (--on_bad_file=stop; use skip to go on)' % error)
      logging.warning('skipping unreadable file: %s', error)
      skipped.append(path)
      counter.add()
      continue
    classes = predictor.predict(image)
    _save(image, classes, input_files.output_name(path), folders, colormap,
          dataset)
    counter.add()
  return skipped


def main(unused_argv):
  flag_checks.check_output_dir(FLAGS.output_dir, 'output_dir')
  paths = input_files.list_input_images(FLAGS.input)
  predictor, dataset, description = _load_predictor()
  colormap = FLAGS.colormap_type or input_files.colormap_of(dataset)
  folders = {kind: os.path.join(FLAGS.output_dir, name)
             for kind, name in _FOLDERS.items()}
  logging.info('Predicting %d images with %s.', len(paths), description)
  try:
    skipped = _predict_all(paths, predictor,
                           progress.ItemProgress('predict', len(paths)),
                           folders, colormap, dataset)
  finally:
    predictor.close()
  written = len(paths) - len(skipped)
  if not written:
    raise InputError('none of the %d input files could be read' % len(paths))
  print('%d images predicted with %s:' % (written, description))
  for kind, folder in sorted(folders.items()):
    print('  %s: %s' % (kind, folder))
  if skipped:
    print('%d unreadable files skipped: %s' % (len(skipped),
                                               ', '.join(skipped)))


if __name__ == '__main__':
  flags.mark_flags_as_required(['input', 'output_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
