"""One PseudoSeg clone: the passes of docs/DESIGN.md §Passes, pseudo labels and losses.

Pass order and modes (faithful to the original):
  (0) with --weakly: classification head on the image-level batch (train mode).
  1. DeepLab on the weak view, train mode (name scope `cls_weak`) -> decoder logits.
  2. Backbone + cls head on the weak view, inference mode -> Grad-CAM -> SGC.
  3. DeepLab on the strong view, train mode (`cls_strong`) -> consistency loss.
  4. DeepLab on the labeled batch, train mode -> supervised loss.
  5. Backbone + cls head on the labeled batch, train mode (`seg_data_cls`) ->
     Grad-CAM -> SGC -> self-attention loss; `loss_cls` unless --weakly.
     Passes 4 and 5 share one backbone forward (`labeled_passes`).
"""
import collections

from core.method import attention
from core.method import calibration
from core.method import cam
from core.method import monitoring
from core.method import pseudo_label
from core.method import supervised
from core.method import wss_losses
from deeplab import common
from deeplab import feature_extractor
from deeplab import model
from deeplab import resize
from deeplab.tf_compat import tf
from utils.errors import InputError

# The method's options (wss_flags.py builds them from train_wss.py's flags).
PseudoSegOptions = collections.namedtuple('PseudoSegOptions', [
    'supervised',  # supervised.SupervisedOptions (model, weight decay, ...).
    'weakly',  # Image-level labels of the unlabeled split are known.
    'cls_with_cls',  # With weakly: pass 0 trains on the unlabeled split.
    'use_attention',  # Build the Grad-CAM + self-attention branch.
    'att_strides',  # Backbone strides (str or int) of the hypercolumn.
    'att_v2',  # Self-attention v2 (skip connection + batch norm).
    'attention_dim',  # Key/query width of the attention.
    'pseudo_src',  # 'avg' (calibrated fusion) or 'att'.
    'logit_norm',  # Joint RMS normalisation of both logit sources.
    'soft_pseudo_label',  # Soft (sharpened) targets, else argmax.
    'temperature',  # Sharpening temperature.
    'pseudo_label_threshold',  # Confidence threshold (0 keeps all pixels).
    'unlabeled_weight',  # Weight of the consistency loss.
    'calibration_bins',  # Bins of the monitored calibration error.
])

SELF_ATTENTION_SCOPE = 'self-attention'
# Name scope of pass 5 (the labeled batch's backbone and attention branch).
LABELED_ATTENTION_SCOPE = 'seg_data_cls'
SELF_ATTENTION_LOGITS = 'self-attention_logits'

# Outputs of the attention branch of one batch.
AttentionOutputs = collections.namedtuple('AttentionOutputs',
                                          ['logits', 'cam', 'cls_logits'])


def valid_at(valid, size):
  """Valid mask int [B,H,W,1] -> float [B,h,w] by legacy nearest resizing."""
  return tf.cast(resize.labels_nearest_legacy(valid, size), tf.float32)


def attention_end_points(options):
  """End points of `options.att_strides`, largest stride first (it feeds
  Grad-CAM); InputError naming --att_strides for an unknown stride."""
  variant = options.supervised.model.model_variant
  try:
    strides = sorted((int(s) for s in options.att_strides), reverse=True)
  except ValueError:
    strides = []
  known = feature_extractor.HYPERCOLUMN_END_POINTS[variant]
  if not strides or any(s not in known for s in strides):
    raise InputError(
        '--att_strides=%s: each stride must be one of %s for %s.' %
        (','.join(str(s) for s in options.att_strides), sorted(known),
         variant))
  return [known[s] for s in strides]


def attention_branch(images, class_labels, valid, options, num_classes,
                     is_training):
  """Grad-CAM of the cls head refined by self-attention (docs/DESIGN.md §Grad-CAM, §Self-attention).

  Args:
    images: float [B,H,W,3].
    class_labels: float [B,C-1] image-level labels, or None to use the head's
      own predictions (sigmoid >= 0.5).
    valid: float [B,h,w] valid mask at the decoder resolution.
    options: PseudoSegOptions.
    num_classes: C.
    is_training: mode of the backbone/cls head (dropout, BN).

  Returns:
    AttentionOutputs: SGC logits [B,s,s,C], summary CAM [B,s,s,C] and cls
    logits [B,C-1], where s is the CAM (output-stride) resolution.
  """
  cls_logits, end_points = _classification_logits(
      images, options.supervised.model, options, num_classes, is_training)
  return attention_of_backbone(cls_logits, end_points, class_labels, valid,
                               options)


def _classification_logits(images, model_options, options, num_classes,
                           is_training):
  """(cls logits float [B,C-1], backbone end points) of `images`."""
  return model.classification_logits(
      images, model_options, num_classes - 1,
      weight_decay=options.supervised.weight_decay, is_training=is_training,
      fine_tune_batch_norm=(is_training and
                            options.supervised.fine_tune_batch_norm))


def attention_of_backbone(cls_logits, end_points, class_labels, valid,
                          options):
  """`attention_branch` on a backbone and cls head already built: cls_logits
  float [B,C-1] and the backbone's end points; other arguments and the
  result as `attention_branch`."""
  if class_labels is None:
    class_labels = cam.predicted_class_labels(cls_logits)
  end_point_names = attention_end_points(options)
  cams = cam.grad_cam(end_points[end_point_names[0]], cls_logits, class_labels)
  cam_size = tf.shape(cams)[1:3]
  cam_valid = valid_at(tf.cast(valid[..., tf.newaxis], tf.int32), cam_size)
  features = attention.hypercolumn(end_points, end_point_names, cam_size)
  logits = attention.self_attention(features, cams, cam_valid,
                                    att_v2=options.att_v2,
                                    attention_dim=options.attention_dim)
  return AttentionOutputs(logits, cam.background_cam(cams), cls_logits)


def _decoder_logits(images, options, scope):
  with tf.name_scope(scope):
    outputs = supervised.segmentation_logits(images, options.supervised)
  return outputs[common.OUTPUT_TYPE][model.MERGED_LOGITS_SCOPE]


def _resize_to(logits, size):
  return resize.bilinear_ac(logits, size)


def build_clone(labeled, unlabeled, options, num_classes, ignore_label,
                monitor):
  """Adds one clone's PseudoSeg losses (and, if `monitor`, its summaries).

  Args:
    labeled: labeled batch dict (image, label, valid, cls_label).
    unlabeled: unlabeled batch dict (image = weak view, strong, label, valid,
      and cls_label with --weakly).
    options: PseudoSegOptions.
    num_classes: C.
    ignore_label: ignored label value.
    monitor: add accuracies, calibration and image summaries (clone 0).
  """
  weak, strong = unlabeled[common.IMAGE], unlabeled[common.STRONG]
  if options.weakly:
    cls_batch = unlabeled if options.cls_with_cls else labeled
    supervised.add_classification_loss(cls_batch[common.IMAGE],
                                       cls_batch[common.CLS_LABEL],
                                       options.supervised, num_classes)
  # Train mode on purpose; do not fix: changes results (docs/DESIGN.md §Quirks 1)
  logits_weak = _decoder_logits(weak, options, 'cls_weak')
  logits_size = tf.shape(logits_weak)[1:3]
  # do not fix: changes results (docs/DESIGN.md §Quirks 7, 8)
  valid_unlabeled = valid_at(unlabeled[common.VALID], logits_size)
  att_weak = None
  if options.use_attention:
    # do not fix: changes results (docs/DESIGN.md §Quirks 3)
    with tf.name_scope('cls_data_cls_inference'):
      att_weak = attention_branch(
          weak, unlabeled[common.CLS_LABEL] if options.weakly else None,
          valid_unlabeled, options, num_classes, is_training=False)
  logits_strong = _decoder_logits(strong, options, 'cls_strong')
  _, att_labeled = labeled_passes(labeled, options, num_classes,
                                  ignore_label, monitor)
  pseudo = _pseudo_labels(logits_weak, att_weak, logits_size, valid_unlabeled,
                          options)
  # At the decoder resolution; do not fix: changes results (docs/DESIGN.md §Quirks 9)
  loss = wss_losses.consistency_loss(logits_strong, pseudo.targets,
                                     pseudo.mask, valid_unlabeled,
                                     soft=options.soft_pseudo_label)
  tf.losses.add_loss(tf.multiply(loss, options.unlabeled_weight,
                                 name='loss_consistency'))
  if monitor:
    _monitor(unlabeled, logits_weak, logits_strong, att_weak, att_labeled,
             pseudo, valid_unlabeled, num_classes, ignore_label, options)


def labeled_passes(labeled, options, num_classes, ignore_label, monitor):
  """Passes 4 and 5 on the labeled batch, on one backbone forward.

  Both passes run the backbone in training mode on the same images with the
  same weights, so one forward serves the decoder and the cls head, and
  back-propagation through the backbone gets the sum of both heads'
  gradients: what the two passes' backbone gradients add up to. Each of the
  two passes moved every backbone moving average m towards the same batch
  statistic x with decay d; one update with decay d^2 gives the same
  d^2*m + (1-d^2)*x (docs/DESIGN.md §Passes). With an image pyramid without
  scale 1.0, pass 4 builds its own backbones and pass 5 keeps decay d.

  Args:
    labeled: labeled batch dict (image, label, valid, cls_label).
    options: PseudoSegOptions.
    num_classes: C.
    ignore_label: ignored label value.
    monitor: add the supervised pass's summaries (clone 0).

  Returns:
    (supervised logits float [B,h,w,C], pass 5's AttentionOutputs or None
    without `use_attention`).
  """
  if not options.use_attention:
    return supervised.supervised_branch(labeled, options.supervised,
                                        num_classes, ignore_label,
                                        monitor), None
  model_options = options.supervised.model
  shared = 1.0 in (options.supervised.image_pyramid or [1.0])
  if shared:
    model_options = model_options._replace(
        batch_norm_decay=model_options.batch_norm_decay ** 2)
  with tf.name_scope(LABELED_ATTENTION_SCOPE) as pass_5_scope:
    cls_logits, end_points = _classification_logits(
        labeled[common.IMAGE], model_options, options, num_classes,
        is_training=True)
  features = end_points[feature_extractor.CLASSIFIER_FEATURE_END_POINT[
      model_options.model_variant]]
  logits_seg = supervised.supervised_branch(
      labeled, options.supervised, num_classes, ignore_label, monitor,
      backbone=(features, end_points) if shared else None)
  with tf.name_scope(pass_5_scope):
    valid = valid_at(labeled[common.VALID], tf.shape(logits_seg)[1:3])
    outputs = attention_of_backbone(cls_logits, end_points,
                                    labeled[common.CLS_LABEL], valid, options)
  add_labeled_attention_losses(outputs, labeled, options, num_classes,
                               ignore_label)
  return logits_seg, outputs


def add_labeled_attention_losses(outputs, labeled, options, num_classes,
                                 ignore_label):
  """Pass 5's losses: the SGC (AttentionOutputs `outputs`) trained with the
  ground truth, and `loss_cls` unless --weakly."""
  supervised.add_segmentation_loss({SELF_ATTENTION_LOGITS: outputs.logits},
                                   labeled[common.LABEL], options.supervised,
                                   num_classes, ignore_label,
                                   scope=SELF_ATTENTION_SCOPE)
  if not options.weakly:
    supervised.add_loss_cls(outputs.cls_logits, labeled[common.CLS_LABEL])


PseudoLabels = collections.namedtuple(
    'PseudoLabels', ['targets', 'mask', 'fused', 'sharpened', 'att_probs'])


def _pseudo_labels(logits_weak, att_weak, logits_size, valid, options):
  """Fused, sharpened pseudo labels of the weak view (docs/DESIGN.md §Fusion)."""
  att_logits = None
  att_probs = None
  if att_weak is not None:
    att_logits = _resize_to(att_weak.logits, logits_size)
    att_probs = tf.nn.softmax(att_logits)
  fused = pseudo_label.fuse_probabilities(logits_weak, att_logits,
                                          options.pseudo_src,
                                          options.logit_norm)
  targets, mask, _ = pseudo_label.make_pseudo_labels(
      fused, valid, soft=options.soft_pseudo_label,
      temperature=options.temperature,
      threshold=options.pseudo_label_threshold)
  # Hard labels are never sharpened: their final distribution is the fused one.
  sharpened = targets if options.soft_pseudo_label else fused
  return PseudoLabels(targets, mask, fused, sharpened, att_probs)


def _monitor(unlabeled, logits_weak, logits_strong, att_weak, att_labeled,
             pseudo, valid, num_classes, ignore_label, options):
  """Accuracies, calibration, histograms and images (docs/DESIGN.md §Summary tags)."""
  logits_size = tf.shape(logits_weak)[1:3]
  labels = resize.labels_nearest_legacy(unlabeled[common.LABEL], logits_size)
  pseudo_classes = tf.argmax(pseudo.sharpened, axis=3, output_type=tf.int32)
  strong_classes = tf.argmax(logits_strong, axis=3, output_type=tf.int32)
  accuracy = lambda name, predictions, gt: monitoring.add_balanced_accuracy(
      name, gt, predictions, num_classes, ignore_label)
  accuracy('acc_weak', pseudo_classes, labels)
  accuracy('acc_strong', strong_classes, labels)
  if options.pseudo_label_threshold > 0:
    confident_labels = tf.where(pseudo.mask > 0, labels,
                                tf.fill(tf.shape(labels), ignore_label))
    accuracy('acc_pseudo', pseudo_classes, confident_labels)
    accuracy('acc_strong_confident', strong_classes, confident_labels)
    valid_ratio = tf.reduce_sum(pseudo.mask) / tf.maximum(
        tf.reduce_sum(valid), 1.0)
    monitoring.add_summary('scalar', 'sanity_check/valid_ratio', valid_ratio)
  _add_calibration(pseudo, logits_weak, labels, ignore_label,
                   options.calibration_bins)
  max_prob = lambda probs: tf.reduce_max(probs, axis=3)
  histogram = lambda tag, probs: monitoring.add_summary('histogram', tag,
                                                         max_prob(probs))
  histogram('max_prob_weak', tf.nn.softmax(logits_weak))
  histogram('max_prob_avg', pseudo.fused)
  histogram('max_prob_avg_t', pseudo.sharpened)
  if pseudo.att_probs is not None:
    histogram('max_att_prob_weak', pseudo.att_probs)
  if options.supervised.save_summaries_images:
    _add_unlabeled_images(unlabeled, logits_weak, logits_strong, att_weak,
                          att_labeled, pseudo_classes, valid, num_classes)


def _add_calibration(pseudo, logits_weak, labels, ignore_label, num_bins):
  """Expected calibration error of the pseudo labels (after and before
  sharpening) and of their two sources."""
  sources = [('ece_pseudo', pseudo.sharpened), ('ece_fused', pseudo.fused),
             ('ece_decoder', tf.nn.softmax(logits_weak))]
  if pseudo.att_probs is not None:
    sources.append(('ece_attention', pseudo.att_probs))
  for name, probs in sources:
    ece = tf.identity(calibration.expected_calibration_error(
        probs, labels, ignore_label=ignore_label,
        num_bins=num_bins), name=name)
    monitoring.add_summary('scalar', 'calibration/%s' % name, ece)
    tf.add_to_collection(monitoring.CONSOLE_SCALARS, ece)


def _add_unlabeled_images(unlabeled, logits_weak, logits_strong, att_weak,
                          att_labeled, pseudo_classes, valid, num_classes):
  crop = tf.shape(unlabeled[common.IMAGE])[1:3]

  def class_map(name, classes):
    monitoring.add_image_summary(
        name, monitoring.label_map_image(classes, num_classes, crop))

  argmax = lambda logits: tf.argmax(logits, axis=3, output_type=tf.int32)
  monitoring.add_image_summary('unlabeled/weak', unlabeled[common.IMAGE])
  monitoring.add_image_summary('unlabeled/strong', unlabeled[common.STRONG])
  monitoring.add_image_summary('sanity_check/valid_mask',
                               valid[..., tf.newaxis] * 255.0)
  class_map('unlabeled/label', unlabeled[common.LABEL][..., 0])
  class_map('unlabeled/logits_weak', argmax(logits_weak))
  class_map('unlabeled/logits_strong', argmax(logits_strong))
  class_map('att/merged_logits', pseudo_classes)
  if att_weak is not None:
    class_map('att/att_logits_weak', argmax(att_weak.logits))
    class_map('att/cam_weak', argmax(att_weak.cam))
    class_map('att/att_logits_labeled', argmax(att_labeled.logits))
