"""The eval-mode input and prediction shared by eval.py, vis.py, analyze.py
and the inference graph of export_model.py / predict.py."""
import collections

from core.data import data_generator
from deeplab import model

# Where the evaluation data is and how its images are resized; each field is
# the flag of the same name (core/flags/eval_flags.py builds it).
EvalDataOptions = collections.namedtuple('EvalDataOptions', [
    'dataset',  # Registered dataset name.
    'dataset_dir',  # Folder holding its tfrecords.
    'min_resize_value',  # Resize-to-range short side, or None.
    'max_resize_value',  # Resize-to-range long-side cap, or None.
    'resize_factor',  # Resized sides = 1 (mod factor), or None.
    'model_variant',  # Backbone (padding uses its mean pixel).
])


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


def eval_dataset(data_options, split, batch_size, crop_size, num_readers,
                 with_cls=False, output_original=False, output_valid=False):
  """One un-shuffled pass over `split`, padded to crop_size.

  Args:
    data_options: EvalDataOptions, shared by eval.py, vis.py and analyze.py.
    split: split name.
    batch_size: images per batch.
    crop_size: [height, width] every image is padded to.
    num_readers: files read in parallel.
    with_cls: add the image-level labels `cls_label`.
    output_original: add `original_image` (uint8, before resizing).
    output_valid: add the `valid` mask of the image area.

  Returns:
    data_generator.Dataset.
  """
  return data_generator.Dataset(
      dataset_name=data_options.dataset, split_name=split,
      dataset_dir=data_options.dataset_dir, batch_size=batch_size,
      crop_size=crop_size, min_resize_value=data_options.min_resize_value,
      max_resize_value=data_options.max_resize_value,
      resize_factor=data_options.resize_factor,
      model_variant=data_options.model_variant,
      num_readers=num_readers, is_training=False, should_shuffle=False,
      should_repeat=False, with_cls=with_cls, output_original=output_original,
      output_valid=output_valid)
