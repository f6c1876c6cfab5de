"""Writes segmentation predictions of one checkpoint on a split as PNG files.

One pass over --vis_split. For every record `<name>` (the basename of its
`image/filename`) it writes, cropped back to the original image size:

  <vis_logdir>/segmentation_results/<name>.png      colour prediction
  <vis_logdir>/overlay_results/<name>.png           image blended with it
  <vis_logdir>/raw_segmentation_results/<name>.png  class ids (uint8), with
                                                    --also_save_raw_predictions

--checkpoint_dir is a directory (its latest checkpoint) or a checkpoint prefix.
Ctrl-C or SIGTERM stops it with one line (exit code 130 or 143); the images
written by then stay.

  python vis.py --logtostderr --vis_split=val --model_variant=xception_65 \
    --atrous_rates=6 --atrous_rates=12 --atrous_rates=18 --output_stride=16 \
    --decoder_output_stride=4 --vis_crop_size=513,513 --checkpoint_dir=CKPT \
    --vis_logdir=VIS_LOGDIR --dataset_dir=DATASET \
    --also_save_raw_predictions=true
"""
import os

from absl import app
from absl import flags
from absl import logging

from core.data import preprocess_utils
from core.data import registry
from core.eval import checkpoints
from core.eval import eval_graph
from core.eval import prediction_files
from core.flags import eval_flags
from core.flags import flag_checks
from core.flags import model_flags
from deeplab import common
from deeplab import resize
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils import progress
from utils import save_annotation
from utils.errors import run_reporting_errors
from utils.errors import raise_if_interrupted
from utils.errors import sigterm_like_ctrl_c

FLAGS = flags.FLAGS

flags.DEFINE_string('vis_logdir', None, 'Output root folder (required).')
flags.DEFINE_integer('vis_batch_size', 1, 'Images per batch.')
flags.DEFINE_list('vis_crop_size', '513,513',
                  'Height,width every image is padded to: 513,513 for VOC, '
                  '641,641 for COCO (larger images fail).')
flags.DEFINE_string('vis_split', 'val', 'Split (tfrecord prefix) to visualise.')
flags.DEFINE_enum('colormap_type', 'pascal', ['pascal', 'cityscapes', 'ade20k'],
                  'Colormap of the colour predictions (COCO uses pascal).')
flags.DEFINE_boolean('also_save_raw_predictions', False,
                     'Also write the class ids as uint8 PNGs (Cityscapes: '
                     'evaluation label ids).')
flags.DEFINE_integer('max_number_of_iterations', 0,
                     'Unused: vis.py always makes exactly one pass over the '
                     'split (kept for command-line compatibility).')

_SEGMENTATION_FOLDER = 'segmentation_results'
_RAW_FOLDER = 'raw_segmentation_results'
_OVERLAY_FOLDER = 'overlay_results'


def _check_flags():
  """Validates the flags.

  Returns:
    (crop_size, eval_scales, split_size, checkpoint prefix).
  """
  crop_size = flag_checks.parse_crop_size(FLAGS.vis_crop_size, 'vis_crop_size')
  flag_checks.check_positive(FLAGS.vis_batch_size, 'vis_batch_size')
  scales = flag_checks.check_scales(FLAGS.eval_scales)
  split = registry.check_split(FLAGS.dataset, FLAGS.vis_split,
                               FLAGS.dataset_dir)
  model_flags.model_options_from_flags(
      split.descriptor.num_classes, crop_size)
  checkpoint = checkpoint_paths.resolve_checkpoint(FLAGS.checkpoint_dir,
                                                   'checkpoint_dir')
  flag_checks.check_output_dir(FLAGS.vis_logdir, 'vis_logdir')
  if FLAGS.max_number_of_iterations:
    logging.info('--max_number_of_iterations is ignored: one pass is made.')
  return crop_size, scales, split.num_images, checkpoint


def _build_graph(crop_size, scales):
  """Builds the input pipeline and the prediction; returns the fetch dict.

  Fetches: `prediction` int64 [N, H, W] at the padded size, `image_name`
  string [N], `height`/`width` int64 [N] (original size), `original_image`
  uint8 [N, h, w, 3].
  """
  dataset = eval_graph.eval_dataset(eval_flags.eval_data_options_from_flags(),
                                    FLAGS.vis_split, FLAGS.vis_batch_size,
                                    crop_size, num_readers=1,
                                    output_original=True)
  samples = dataset.get_one_shot_iterator().get_next()
  options = model_flags.model_options_from_flags(dataset.num_of_classes,
                                                 crop_size)
  images = samples[common.IMAGE]
  predictions = eval_graph.predict(images, options, scales,
                                   FLAGS.add_flipped_images,
                                   FLAGS.image_pyramid)
  fetches = {
      'prediction': predictions[common.OUTPUT_TYPE],
      'image_name': samples[common.IMAGE_NAME],
      'height': samples[common.HEIGHT],
      'width': samples[common.WIDTH],
      'original_image': samples[common.ORIGINAL_IMAGE],
  }
  if _resizes_images():
    fetches['resized_size'] = _resized_sizes(samples[common.HEIGHT],
                                             samples[common.WIDTH])
  return fetches


def _resizes_images():
  """Whether the input pipeline resizes images to a range (then un-resized)."""
  return bool(FLAGS.min_resize_value or FLAGS.max_resize_value)


def _resized_sizes(heights, widths):
  """int32 [N, 2]: each image's size after the pipeline's resize-to-range."""
  sizes = tf.cast(tf.stack([heights, widths], axis=1), tf.int32)
  return tf.map_fn(
      lambda size: preprocess_utils.resize_to_range_size(
          size[0], size[1], FLAGS.min_resize_value, FLAGS.max_resize_value,
          FLAGS.resize_factor),
      sizes, dtype=tf.int32)


def _original_size_prediction(values, index, height, width):
  """Batch element `index` of the padded prediction, at the original size.

  The padding is cropped away; a resized image's prediction is then resized
  back (nearest, align_corners) to height x width.
  """
  prediction = values['prediction'][index]
  if 'resized_size' not in values:
    return prediction[:height, :width]
  resized_height, resized_width = values['resized_size'][index]
  return resize.nearest_ac_numpy(
      prediction[:resized_height, :resized_width], height, width)


def _save(values, index, number, folders):
  """Writes the PNGs of batch element `index` (image `number` of the split)."""
  height, width = int(values['height'][index]), int(values['width'][index])
  prediction = _original_size_prediction(values, index, height, width)
  name = prediction_files.output_name(values['image_name'][index], number)
  save_annotation.save_annotation(prediction, folders['segmentation'], name,
                                  add_colormap=True,
                                  colormap_type=FLAGS.colormap_type)
  image = values['original_image'][index][:height, :width]
  save_annotation.save_overlay(image, prediction, folders['overlay'], name,
                               colormap_type=FLAGS.colormap_type)
  if 'raw' in folders:
    if FLAGS.dataset == 'cityscapes':
      prediction = prediction_files.convert_train_id_to_eval_id(
          prediction, prediction_files.CITYSCAPES_TRAIN_ID_TO_EVAL_ID)
    save_annotation.save_annotation(prediction, folders['raw'], name,
                                    add_colormap=False)


def _output_folders():
  """Creates and returns the output folders by kind."""
  folders = {
      'segmentation': os.path.join(FLAGS.vis_logdir, _SEGMENTATION_FOLDER),
      'overlay': os.path.join(FLAGS.vis_logdir, _OVERLAY_FOLDER),
  }
  if FLAGS.also_save_raw_predictions:
    folders['raw'] = os.path.join(FLAGS.vis_logdir, _RAW_FOLDER)
  for folder in folders.values():
    tf.io.gfile.makedirs(folder)
  return folders


def main(unused_argv):
  crop_size, scales, split_size, checkpoint = _check_flags()
  logging.info('Visualising %s on %s/%s.', checkpoint, FLAGS.dataset,
               FLAGS.vis_split)
  # SIGTERM stops it as Ctrl-C does; every PNG is written whole or not at all.
  with sigterm_like_ctrl_c(), tf.Graph().as_default():
    fetches = _build_graph(crop_size, scales)
    with tf.Session(FLAGS.master) as sess:
      checkpoints.restore_variables(sess, checkpoint)
      folders = _output_folders()
      counter = progress.ItemProgress('vis', split_size)
      while True:
        raise_if_interrupted()
        try:
          values = sess.run(fetches)
        except tf.errors.OutOfRangeError:
          break
        for index in range(len(values['image_name'])):
          _save(values, index, counter.done + index, folders)
        counter.add(len(values['image_name']))
      counter.finish()
  print('%d images from checkpoint %s:' % (counter.done, checkpoint))
  for kind, folder in sorted(folders.items()):
    print('  %s: %s' % (kind, folder))


if __name__ == '__main__':
  flags.mark_flags_as_required(['vis_logdir', 'checkpoint_dir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
