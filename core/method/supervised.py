"""The supervised branch shared by train_sup.py and train_wss.py (docs/DESIGN.md §Passes, pass 4)."""
import collections

from core.method import monitoring
from core.method import wss_losses
from deeplab import common
from deeplab import model
from deeplab import resize
from deeplab import train_utils
from deeplab.tf_compat import tf

# How the training graph is built around the model (core/flags/
# supervised_flags.py builds it from the flags of the training scripts).
SupervisedOptions = collections.namedtuple('SupervisedOptions', [
    'model',  # common.ModelOptions.
    'image_pyramid',  # Input scales (list of float) or None.
    'weight_decay',  # L2 scale of the model's kernels.
    'fine_tune_batch_norm',  # Train batch norm (batch statistics, updates).
    'upsample_logits',  # Loss at the label size (else labels downsampled).
    'hard_example_mining_step',  # Steps over which top-k mining ramps in.
    'top_k_percent_pixels',  # Fraction of the hardest pixels in the loss.
    'save_summaries_images',  # Add image summaries (clone 0).
])


def segmentation_logits(images, options, is_training=True,
                        return_end_points=False, backbone=None):
  """DeepLab logits of a batch (dict output type -> scale -> logits);
  `backbone` as in `model.multi_scale_logits`."""
  return model.multi_scale_logits(
      images, options.model, image_pyramid=options.image_pyramid,
      weight_decay=options.weight_decay, is_training=is_training,
      fine_tune_batch_norm=options.fine_tune_batch_norm,
      return_end_points=return_end_points, backbone=backbone)


def add_segmentation_loss(scales_to_logits, labels, options, num_classes,
                          ignore_label, scope):
  """Softmax cross-entropy of every scale (class weights of the model)."""
  train_utils.add_softmax_cross_entropy_loss_for_each_scale(
      scales_to_logits, labels, num_classes, ignore_label,
      loss_weight=options.model.label_weights or 1.0,
      upsample_logits=options.upsample_logits,
      hard_example_mining_step=options.hard_example_mining_step,
      top_k_percent_pixels=options.top_k_percent_pixels,
      scope=scope)


def supervised_branch(samples, options, num_classes, ignore_label, monitor,
                      backbone=None):
  """Labeled pass: segmentation loss (scope `semantic`) and monitoring.

  Args:
    samples: labeled batch dict (image float [B,H,W,3], label int [B,H,W,1]).
    options: SupervisedOptions.
    num_classes: number of classes C.
    ignore_label: ignored label value.
    monitor: whether to add accuracy and image summaries (clone 0 only).
    backbone: (features, end points) of the backbone already built on the
      images in training mode, or None to build it.

  Returns:
    The merged logits [B,h,w,C] at the decoder resolution.
  """
  scales_to_logits = segmentation_logits(samples[common.IMAGE], options,
                                         backbone=backbone)
  scales_to_logits = scales_to_logits[common.OUTPUT_TYPE]
  add_segmentation_loss(scales_to_logits, samples[common.LABEL], options,
                        num_classes, ignore_label, scope=common.OUTPUT_TYPE)
  logits = tf.identity(scales_to_logits[model.MERGED_LOGITS_SCOPE],
                       name='semantic_logits')
  if monitor:
    _monitor_segmentation(samples, logits, num_classes, ignore_label,
                          options.save_summaries_images)
  return logits


def _monitor_segmentation(samples, logits, num_classes, ignore_label,
                          with_images):
  labels = resize.labels_nearest_legacy(samples[common.LABEL],
                                       tf.shape(logits)[1:3])
  predictions = tf.argmax(logits, axis=3, output_type=tf.int32)
  monitoring.add_balanced_accuracy('acc_seg', labels, predictions,
                                   num_classes, ignore_label)
  if with_images:
    crop = tf.shape(samples[common.IMAGE])[1:3]
    monitoring.add_image_summary('samples/image_seg', samples[common.IMAGE])
    monitoring.add_image_summary(
        'samples/label_seg',
        monitoring.label_map_image(samples[common.LABEL][..., 0], num_classes))
    monitoring.add_image_summary(
        'samples/semantic_seg',
        monitoring.label_map_image(predictions, num_classes, crop))


def add_classification_loss(images, cls_labels, options, num_classes):
  """Image-level multi-label loss `loss_cls` on the backbone's cls head.

  Args:
    images: float [B,H,W,3].
    cls_labels: float multi-hot [B, C-1].
    options: SupervisedOptions.
    num_classes: C (the head predicts the C-1 foreground classes).

  Returns:
    (loss scalar, cls logits [B, C-1], backbone end points).
  """
  logits, end_points = model.classification_logits(
      images, options.model, num_classes - 1,
      weight_decay=options.weight_decay, is_training=True,
      fine_tune_batch_norm=options.fine_tune_batch_norm)
  return add_loss_cls(logits, cls_labels), logits, end_points


def add_loss_cls(cls_logits, cls_labels):
  """Adds the sigmoid cross-entropy `loss_cls` (float [B,C-1] inputs)."""
  loss = tf.identity(wss_losses.classification_loss(cls_logits, cls_labels),
                     name='loss_cls')
  tf.losses.add_loss(loss)
  return loss
