"""The eval-mode input and prediction shared by eval.py, vis.py, analyze.py
and the inference graph of export_model.py / predict.py."""
from absl import flags

from core import data_generator
from deeplab import model


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
