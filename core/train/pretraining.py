"""Backbone pretraining on image-level labels: the project's stand-in for the
ImageNet checkpoint that PseudoSeg starts from.

The paper initialises DeepLab from an ImageNet-pretrained Xception-65, whose
features already separate object classes; Grad-CAM and the decoder then give
usable pseudo labels early. Machines here cannot download that checkpoint, so
pretrain.py trains the backbone and its classification head (multi-label
sigmoid cross-entropy, `loss_cls`) on a classification set that shares no image
with the segmentation splits, then exports a checkpoint holding only the model
variables under DeepLab's names (`<backbone scope>/...` and
`<backbone scope>/logits`), which `--tf_initial_checkpoint` restores exactly as
it restores `xception_65/model.ckpt`.
"""
import os

from absl import logging

from core.eval import checkpoints
from deeplab import model
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf

EXPORT_NAME = 'model.ckpt'


def add_multilabel_accuracy(cls_logits, cls_labels):
  """Fraction of (image, class) decisions right at sigmoid >= 0.5.

  Args:
    cls_logits: float [B, K] logits.
    cls_labels: float [B, K] multi-hot labels.

  Returns:
    float32 scalar tensor named `acc_cls`.
  """
  predicted = tf.cast(cls_logits >= 0.0, tf.float32)
  correct = tf.cast(tf.equal(predicted, tf.cast(cls_labels, tf.float32)),
                    tf.float32)
  return tf.reduce_mean(correct, name='acc_cls')


def export_model_variables(checkpoint_path, export_prefix, model_options,
                           num_classes, crop_size):
  """Writes the model variables of a training checkpoint to `export_prefix`.

  Builds the backbone + classification head in inference mode, restores them
  from `checkpoint_path` and saves only `slim.get_model_variables()` (weights,
  batch-norm statistics, the head), without global_step or optimizer slots.
  The files are written under a temporary prefix and moved into place, so an
  existing export is never left half-written.

  Args:
    checkpoint_path: training checkpoint prefix (model.ckpt-<step>).
    export_prefix: output prefix, e.g. <dir>/model.ckpt.
    model_options: common.ModelOptions of the backbone.
    num_classes: K, the width of the classification head.
    crop_size: [height, width] of the placeholder used to build the graph.

  Returns:
    The sorted list of exported variable names.
  """
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [1] + list(crop_size) + [3])
    model.classification_logits(images, model_options, num_classes,
                                is_training=False)
    variables = slim.get_model_variables()
    with tf.Session() as sess:
      checkpoints.restore_variables(sess, checkpoint_path, variables)
      directory = os.path.dirname(os.path.abspath(export_prefix))
      os.makedirs(directory, exist_ok=True)
      temporary = os.path.join(directory, '.export-%d' % os.getpid(),
                               os.path.basename(export_prefix))
      tf.train.Saver(var_list=variables, write_version=tf.train.SaverDef.V2,
                     save_relative_paths=True).save(
                         sess, temporary, write_meta_graph=False,
                         write_state=False)
  _move_checkpoint_files(temporary, export_prefix)
  logging.info('Exported %d model variables to %s', len(variables),
               export_prefix)
  return sorted(variable.op.name for variable in variables)


def _move_checkpoint_files(source_prefix, target_prefix):
  """Moves <source_prefix>.index/.data-* to <target_prefix>.*; data first and
  the index last, so a reader never sees an index without its data."""
  source_dir = os.path.dirname(source_prefix)
  base = os.path.basename(source_prefix)
  names = sorted(os.listdir(source_dir), key=lambda n: n.endswith('.index'))
  for name in names:
    suffix = name[len(base):]
    os.replace(os.path.join(source_dir, name), target_prefix + suffix)
  os.rmdir(source_dir)
