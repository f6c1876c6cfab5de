"""Grad-CAM class activation maps for PseudoSeg (docs/DESIGN.md §Grad-CAM).

The CAMs are computed from the feature map A of the classification pass (the end
point of the largest stride, `xception_65/exit_flow/block2`) and the image-level
classification logits built on top of it (GAP -> dropout -> 1x1 conv).
"""
from deeplab.tf_compat import tf

# Lower bound of the per-map maximum the CAMs are divided by.
_MIN_NORMALIZER = 1e-5


def grad_cam(features, cls_logits, class_labels):
  """Normalised Grad-CAMs of every foreground class, with the original weights.

  For each class c, G_c = d(sum_n cls_logits[n, c]) / dA. The channel weights
  are the mean of G_c over the batch AND the row axis (the original averages a
  Python list holding G_c over axes (1, 2) of the stacked [1, B, h, w, F]
  tensor), so they have shape [1, 1, w, F] and broadcast over the batch and the
  rows. With the GAP -> dropout -> 1x1 conv head, G_c is spatially constant and
  the weights are W[:, c] / (h * w) in inference mode and
  W[:, c] * mean_n(dropout mask) / (h * w) in training mode, exactly as in the
  original.

  cam_c = ReLU(sum_k weight_k * A[..., k]); absent classes are zeroed by
  `class_labels`; every map is divided by max(1e-5, its spatial max) when that
  max is positive (0 otherwise).

  Args:
    features: float [B, h, w, F] feature map A; `cls_logits` must depend on it.
    cls_logits: float [B, K] classification logits (K = foreground classes).
    class_labels: {0, 1} [B, K] (any real or integer dtype) image-level labels.

  Returns:
    float [B, h, w, K] CAMs (dtype of `features`) in [0, 1], gradient stopped.
  """
  num_classes = cls_logits.shape.as_list()[-1]
  if num_classes is None:
    raise ValueError('grad_cam needs a static number of classes, got logits '
                     'of shape %s.' % cls_logits.shape)
  cams = []
  for c in range(num_classes):
    # One gradient per class: summing over the batch is exact because sample n's
    # logit only depends on sample n's features.
    grads = tf.gradients(tf.reduce_sum(cls_logits[:, c]), features)[0]
    if grads is None:
      raise ValueError('cls_logits do not depend on the CAM features.')
    # Mean over batch AND rows; do not fix: changes results (docs/DESIGN.md §Quirks 2)
    weights = tf.reduce_mean(grads, axis=[0, 1], keepdims=True)
    cams.append(tf.nn.relu(tf.reduce_sum(weights * features, axis=3)))
  cams = tf.stack(cams, axis=3)
  labels = tf.cast(class_labels, cams.dtype)
  cams *= labels[:, tf.newaxis, tf.newaxis, :]
  peak = tf.reduce_max(cams, axis=[1, 2], keepdims=True)
  normalized = cams / tf.maximum(tf.cast(_MIN_NORMALIZER, cams.dtype), peak)
  cams = tf.where_v2(peak > 0, normalized, tf.zeros_like(normalized))
  return tf.stop_gradient(cams)


def background_cam(cams):
  """Prepends a background map 1 - max_c cams (the CAM used for summaries).

  Args:
    cams: float [B, h, w, K] normalised foreground CAMs in [0, 1].

  Returns:
    float [B, h, w, K + 1], background first.
  """
  background = 1. - tf.reduce_max(cams, axis=3, keepdims=True)
  return tf.concat([background, cams], axis=3)


def predicted_class_labels(cls_logits):
  """Image-level labels predicted by the classifier: sigmoid(logits) >= 0.5.

  Args:
    cls_logits: float [B, K] classification logits.

  Returns:
    float32 [B, K] in {0, 1}, gradient stopped.
  """
  return tf.stop_gradient(
      tf.cast(tf.sigmoid(cls_logits) >= 0.5, tf.float32))
