"""Exports a checkpoint as a TensorFlow SavedModel for use without this code.

The SavedModel's `serving_default` signature takes a uint8 image batch
`images` [N, H, W, 3] of any size and returns `classes` int32 [N, H, W] and
`probabilities` float32 [N, H, W, C] at the input size; --eval_scales and
--add_flipped_images are baked in, C comes from --dataset. Inputs are padded
(bottom/right, mean pixel) up to --export_crop_size as eval.py pads to
--eval_crop_size, so an image that fits the crop gets eval.py's prediction;
larger images run at their own size. See core/serving/inference.py and
core/serving/export.py for details.

  python export_model.py --checkpoint_dir=TRAIN_LOGDIR --export_dir=EXPORT \
    --model_variant=xception_65 --atrous_rates=6 --atrous_rates=12 \
    --atrous_rates=18 --output_stride=16 --decoder_output_stride=4 \
    --dataset=pascal_voc_seg --export_crop_size=513,513

Load it with TensorFlow alone:

  model = tf.saved_model.load(EXPORT)
  out = model.signatures['serving_default'](images=uint8_batch)
  out['classes'], out['probabilities']

The export is written to a temporary folder and renamed to --export_dir when
complete; an existing --export_dir is only replaced with --overwrite.
"""
from absl import app
from absl import flags
from absl import logging

from core.eval import checkpoints
from core.flags import eval_flags
from core.flags import model_flags
from core.serving import export
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS

flags.DEFINE_string('export_dir', None,
                    'Folder to write the SavedModel to (must not exist unless '
                    '--overwrite).')
flags.DEFINE_boolean('overwrite', False, 'Replace an existing --export_dir.')
flags.DEFINE_list('export_crop_size', '513,513',
                  'Height,width inputs are padded up to (bottom/right, mean '
                  'pixel), as eval.py pads to --eval_crop_size; larger '
                  'dimensions are kept. Empty: no padding.')


def main(unused_argv):
  settings = eval_flags.checkpoint_settings_from_flags('export_crop_size')
  crop_size, scales, num_classes, checkpoint = settings
  options = model_flags.model_options_from_flags(num_classes, None)
  export.check_export_dir(FLAGS.export_dir, FLAGS.overwrite)
  info = {
      'checkpoint': checkpoint,
      'global_step': checkpoints.checkpoint_global_step(checkpoint),
      'dataset': FLAGS.dataset,
      'num_classes': num_classes,
      'model_variant': FLAGS.model_variant,
      'crop_size': crop_size,
      'eval_scales': scales,
      'add_flipped_images': FLAGS.add_flipped_images,
  }
  logging.info('Exporting %s to %s.', checkpoint, FLAGS.export_dir)
  missing = export.export_saved_model(
      checkpoint, FLAGS.export_dir, options, info, eval_scales=scales,
      add_flipped_images=FLAGS.add_flipped_images, crop_size=crop_size,
      image_pyramid=FLAGS.image_pyramid, overwrite=FLAGS.overwrite)
  if missing:
    print('warning: %d variable(s) missing from the checkpoint kept their '
          'initial values (first: %s)' % (len(missing), missing[0]))
  print('SavedModel of %s (%d classes) written to %s' %
        (checkpoint, num_classes, FLAGS.export_dir))


if __name__ == '__main__':
  flags.mark_flags_as_required(['checkpoint_dir', 'export_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
