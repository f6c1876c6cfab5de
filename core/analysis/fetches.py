"""The tensors of the end-of-run analysis (analyze.py): what is measured.

For every checkpoint of a run, one pass over the evaluation split gives:

* val mIoU, exactly as eval.py computes it (`eval_graph.predict` at the input
  resolution, `metrics.batch_confusion_matrix`, `metrics.mean_iou`);
* for a PseudoSeg run also, with the model in inference mode on the same
  images: reliability statistics (per confidence bin: pixel count, sum of
  confidence, sum of correct) and the expected calibration error (ECE) of four
  per-pixel distributions,
    `decoder`   softmax of the decoder logits,
    `sgc`       softmax of the self-attention-refined Grad-CAM
                (`pseudoseg.attention_branch(is_training=False)`), resized
                bilinear (align_corners) to the decoder-logit size; its
                Grad-CAM takes the classes the head predicts, or, for a
                --weakly run (`PseudoSegOptions.weakly`), the ground-truth
                image-level labels (`image_level_labels`), as in training,
    `fused`     `pseudo_label.fuse_probabilities` of the two,
    `sharpened` `pseudo_label.sharpen(fused, temperature)`, the soft pseudo
                labels,
  the pseudo-label accuracy: pixel accuracy and mIoU of argmax(sharpened)
  against the ground truth (`pseudo_label`), and the same per source
  (`sources`): the confusion matrix of the argmax of `decoder`, `sgc` and
  `fused` (argmax(fused) == argmax(sharpened)), which shows which part of
  the pipeline loses pixels.

All calibration and pseudo-label statistics are computed at the decoder-logit
resolution (e.g. 49 x 49 for a 193 crop at decoder stride 4), with the labels
resized nearest-neighbour to that size as training does
(`resize.labels_nearest_legacy`); only pixels whose (resized) label is not
the ignore label count, so the eval padding never counts. The confidence bins
and the ECE are those of `core/method/calibration.py` (the one rule, also of
the training summaries): (b / B, (b + 1) / B], b = 0..B-1, B = NUM_BINS.

Two parts of the PseudoSeg pipeline use batch statistics and so depend on the
evaluation batch: the batch norm of the SGC's `pixel_normalization` (always in
training mode, as in the original) and the joint RMS of `logit_norm`. Their
ECEs are therefore those of batches of `batch_size` evaluation images.

The other modules of core/analysis/ run the passes (passes.py), summarise the
numbers (scores.py), cache them per checkpoint (cache.py) and read the
training curves of the event files (event_files.py). Nothing reads a flag; a
PseudoSeg run's options come in as a `pseudoseg.PseudoSegOptions`.
"""

from core.data import preprocess_utils
from core.eval import eval_graph
from core.eval import metrics
from core.method import calibration
from core.method import pseudo_label
from core.method import pseudoseg
from deeplab import common
from deeplab import model
from deeplab import resize
from deeplab.tf_compat import tf

# The distributions whose calibration is measured, in plotting order.
SOURCES = ('decoder', 'sgc', 'fused', 'sharpened')
# The distributions whose argmax is scored against the ground truth
# (sharpening keeps the argmax of `fused`).
CONFUSION_SOURCES = ('decoder', 'sgc', 'fused')


def sharpening_temperature(pseudoseg_options):
  """Temperature of `sharpen` for a run: 1.0 for hard pseudo labels, which
  training never sharpens."""
  if pseudoseg_options.soft_pseudo_label:
    return pseudoseg_options.temperature
  return 1.0


def make_iterator(dataset):
  """A re-initialisable iterator over a `data_generator.Dataset`, so that one
  graph can make a pass per checkpoint."""
  return tf.data.make_initializable_iterator(dataset.get_dataset())


def build_fetches(samples, model_options, num_classes, ignore_label,
                  eval_scales=(1.0,), add_flipped_images=False,
                  image_pyramid=None, pseudo_config=None):
  """Builds the per-batch tensors of one run in the default graph.

  Args:
    samples: batch dict of an eval-mode dataset with `image` float
      [N, H, W, 3], `label` int [N, H, W, 1] and `valid` int [N, H, W, 1]
      (1 on the image, 0 on the padding).
    model_options: common.ModelOptions (crop size = the eval crop).
    num_classes: C.
    ignore_label: ignored label value.
    eval_scales, add_flipped_images, image_pyramid: as eval.py's flags.
    pseudo_config: pseudoseg.PseudoSegOptions of a PseudoSeg run (how its
      decoder and SGC outputs become pseudo labels; with `weakly` the SGC
      uses the image-level labels of `label`), None for a baseline.

  Returns:
    (per_batch, overlay): dicts of tensors. per_batch: `confusion` int64
    [C, C], `num_images` int32; PseudoSeg also the entries of
    `pseudo_label_statistics` (`sgc` absent without attention).
    overlay: `image` uint8 [N, H, W, 3],
    `label` int [N, H, W], `prediction` int64 [N, H, W], `valid` bool
    [N, H, W] (the image area), `name` string [N].
  """
  images = samples[common.IMAGE]
  labels = samples[common.LABEL]
  prediction = eval_graph.predict(images, model_options, eval_scales,
                                  add_flipped_images,
                                  image_pyramid)[common.OUTPUT_TYPE]
  per_batch = {
      'confusion': metrics.batch_confusion_matrix(
          labels, prediction, num_classes, ignore_label),
      'num_images': tf.shape(images)[0]}
  overlay = {
      'image': tf.cast(tf.clip_by_value(images, 0, 255), tf.uint8),
      'label': labels[..., 0], 'prediction': prediction,
      'valid': tf.cast(samples[common.VALID][..., 0], tf.bool),
      'name': samples[common.IMAGE_NAME]}
  if pseudo_config is not None:
    per_batch.update(_pseudo_label_fetches(
        samples, model_options, num_classes, ignore_label, image_pyramid,
        pseudo_config))
  return per_batch, overlay


def _pseudo_label_fetches(samples, model_options, num_classes, ignore_label,
                          image_pyramid, pseudo_config):
  """Calibration and pseudo-label tensors at the decoder-logit resolution."""
  images = samples[common.IMAGE]
  decoder_logits = model.multi_scale_logits(
      images, model_options, image_pyramid=image_pyramid, is_training=False,
      fine_tune_batch_norm=False)[common.OUTPUT_TYPE][
          model.MERGED_LOGITS_SCOPE]
  logits_size = tf.shape(decoder_logits)[1:3]
  labels = resize.labels_nearest_legacy(samples[common.LABEL], logits_size)
  probs = {'decoder': tf.nn.softmax(decoder_logits)}
  sgc_logits = None
  if pseudo_config.use_attention:
    valid = pseudoseg.valid_at(samples[common.VALID], logits_size)
    class_labels = (image_level_labels(samples[common.LABEL], num_classes,
                                       ignore_label)
                    if pseudo_config.weakly else None)
    with tf.name_scope('sgc_inference'):
      outputs = pseudoseg.attention_branch(
          images, class_labels, valid, pseudo_config, num_classes,
          is_training=False)
    sgc_logits = resize.bilinear_ac(outputs.logits, logits_size)
    probs['sgc'] = tf.nn.softmax(sgc_logits)
  probs['fused'] = pseudo_label.fuse_probabilities(
      decoder_logits, sgc_logits, pseudo_config.pseudo_src,
      pseudo_config.logit_norm)
  probs['sharpened'] = pseudo_label.sharpen(probs['fused'],
                                            sharpening_temperature(
                                                pseudo_config))
  return pseudo_label_statistics(probs, labels, num_classes, ignore_label)


def image_level_labels(labels, num_classes, ignore_label):
  """Graph op: the image-level labels of a batch of label maps.

  What training gives a --weakly run's SGC as `cls_label`:
  `preprocess_utils.image_level_labels` of each image, the foreground classes
  present; ignored pixels (the eval padding among them) set nothing.

  Args:
    labels: int32 [N, H, W, 1] (or [N, H, W]) label maps.
    num_classes: C, background included.
    ignore_label: label value left out.

  Returns:
    float32 [N, C - 1] multi-hot: entry k - 1 is 1 when class k >= 1 occurs.
  """
  return tf.map_fn(
      lambda label: preprocess_utils.image_level_labels(label, num_classes,
                                                        ignore_label),
      labels, fn_output_signature=tf.float32)


def pseudo_label_statistics(probs, labels, num_classes, ignore_label):
  """Graph ops: calibration and accuracy of each pseudo-label source.

  Args:
    probs: {source: float [B, h, w, C]} for the sources of SOURCES measured
      (`sharpened` required).
    labels: int [B, h, w] (or [B, h, w, 1]) ground truth at the same
      resolution.
    num_classes: C.
    ignore_label: label value whose pixels are left out.

  Returns:
    dict: `reliability` {source: float64 [3, calibration.NUM_BINS]} of every
    source in `probs`, `source_confusion` {source: int64 [C, C]} of the
    argmax of every source of CONFUSION_SOURCES in `probs`, and
    `pseudo_confusion` int64 [C, C] of argmax(sharpened).
  """
  confusion = lambda source: metrics.batch_confusion_matrix(
      labels, tf.argmax(probs[source], axis=3), num_classes, ignore_label)
  return {
      'reliability': {
          source: calibration.reliability_statistics(probs[source], labels,
                                                     ignore_label)
          for source in SOURCES if source in probs},
      'source_confusion': {source: confusion(source)
                           for source in CONFUSION_SOURCES if source in probs},
      'pseudo_confusion': confusion('sharpened')}
