"""The labeled batch's passes 4 and 5 as two backbone passes.

This is how train_wss built them before `pseudoseg.labeled_passes` shared one
backbone forward: the supervised pass and the classification/attention pass
each run the backbone in training mode with batch-norm decay d. It is no
option of any script. The equivalence test
(`tests/method/test_labeled_passes.py`) and `bench/step_ab.py` (arm
`two_pass_labeled`) put it in place of `pseudoseg.labeled_passes` to compare
the two graphs.
"""
from core.method import pseudoseg
from core.method import supervised
from deeplab import common
from deeplab.tf_compat import tf


def labeled_passes(labeled, options, num_classes, ignore_label, monitor):
  """Same arguments and result as `pseudoseg.labeled_passes`."""
  logits_seg = supervised.supervised_branch(labeled, options.supervised,
                                            num_classes, ignore_label, monitor)
  if not options.use_attention:
    return logits_seg, None
  valid = pseudoseg.valid_at(labeled[common.VALID], tf.shape(logits_seg)[1:3])
  with tf.name_scope(pseudoseg.LABELED_ATTENTION_SCOPE):
    outputs = pseudoseg.attention_branch(
        labeled[common.IMAGE], labeled[common.CLS_LABEL], valid, options,
        num_classes, is_training=True)
  pseudoseg.add_labeled_attention_losses(outputs, labeled, options,
                                         num_classes, ignore_label)
  return logits_seg, outputs
