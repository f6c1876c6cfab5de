"""Training-time monitoring: class-balanced accuracies and summaries (docs/DESIGN.md §Summary tags).

`add_summary` makes every summary of the training graph (also those of
core/train/summaries.py and model_deploy.py): at the root name scope and with
an exact tag, so tags are the same with one clone or many
(`sanity_check/acc_seg`, not `clone_0/sanity_check/acc_seg`).
"""
from core.method import wss_losses
from deeplab.tf_compat import tf

# Scalar tensors the training loop logs to the console every --log_steps (by
# short name).
CONSOLE_SCALARS = 'console_scalars'
# Ops that update streaming monitoring metrics; the train op runs them with
# every training step (core/train/model_deploy.py).
MONITORING_UPDATES = 'monitoring_updates'


def add_balanced_accuracy(name, labels, predictions, num_classes, ignore_label):
  """Streaming class-balanced pixel accuracy, updated with every train step.

  Args:
    name: summary name under `sanity_check/`.
    labels: int32 [B,h,w] ground truth (ignore_label excluded).
    predictions: int [B,h,w] predicted classes at the same resolution.
    num_classes: number of classes C.
    ignore_label: label value without ground truth.

  Returns:
    The accuracy tensor (mean over classes of the per-class recall since start).
  """
  weights = wss_losses.class_balanced_pixel_weights(labels, num_classes,
                                                    ignore_label)
  valid_labels = tf.where(tf.equal(labels, ignore_label),
                          tf.zeros_like(labels), labels)
  accuracy, update = tf.metrics.mean_per_class_accuracy(
      tf.reshape(valid_labels, [-1]),
      tf.reshape(tf.cast(predictions, tf.int32), [-1]),
      num_classes, weights=tf.reshape(weights, [-1]), name=name)
  tf.add_to_collection(MONITORING_UPDATES, update)
  add_summary('scalar', 'sanity_check/%s' % name, accuracy)
  return accuracy


def label_map_image(class_map, num_classes, size=None):
  """An int class map [B,h,w] as a uint8 image [B,H,W,1] spread over 0..255."""
  scale = max(1, 255 // num_classes)
  image = tf.cast(class_map, tf.float32)[..., tf.newaxis] * scale
  if size is not None:
    image = tf.image.resize_bilinear(image, size, align_corners=True)
  return tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)


# The summary op of each kind: f(tag, tensor, name).
_SUMMARY_OPS = {
    'scalar': lambda tag, tensor, name: tf.raw_ops.ScalarSummary(
        tags=tag, values=tensor, name=name),
    'histogram': lambda tag, tensor, name: tf.raw_ops.HistogramSummary(
        tag=tag, values=tensor, name=name),
    # max_images=3: tf.summary.image's default (tags `<tag>/image/<i>`).
    'image': lambda tag, tensor, name: tf.raw_ops.ImageSummary(
        tag=tag, tensor=tensor, max_images=3, name=name),
}


def add_summary(kind, tag, tensor, op_name=None):
  """The one way a summary enters a training graph: an op at the root name
  scope whose tag is exactly `tag`, in the SUMMARIES collection (which the
  loop's SummarySaverHook merges).

  tf.summary.* take the tag from a fresh name scope instead, which adds the
  enclosing clone scope and a `_1` suffix when an op of that name exists
  (docs/DESIGN.md §Summary tags).

  Args:
    kind: 'scalar' (tensor: a float scalar), 'histogram' (a float or int
      tensor of any shape) or 'image' (uint8 [B, H, W, 1 or 3]).
    tag: the summary tag.
    tensor: the value to summarise.
    op_name: the op's name; default `tag` (TF's own naming, suffixed when the
      name is taken).

  Returns:
    The string scalar tensor of the serialized summary.
  """
  with tf.name_scope(None):
    summary = _SUMMARY_OPS[kind](tag, tensor, op_name or tag)
  tf.add_to_collection(tf.GraphKeys.SUMMARIES, summary)
  return summary


def add_image_summary(name, images):
  """Image summary of float [0,255] or uint8 images [B, H, W, 1 or 3]."""
  images = tf.cast(tf.clip_by_value(tf.cast(images, tf.float32), 0, 255),
                   tf.uint8)
  return add_summary('image', name, images)
