"""PseudoSeg flags of train_wss.py (docs/DESIGN.md §Flags), also read by
analyze.py; `weakly` lives in core/flags/common_flags.py and `train_split_cls`
in core/flags/supervised_flags.py because train_sup.py uses them too."""
from absl import flags

from core.flags import supervised_flags  # noqa: F401  (the shared flags)
from core.method import calibration
from core.method import pseudoseg

FLAGS = flags.FLAGS

flags.DEFINE_boolean('soft_pseudo_label', True,
                     'Train on soft (sharpened) pseudo labels; else on argmax.')
flags.DEFINE_float('pseudo_label_threshold', 0.0,
                   'Keep only pixels whose pseudo-label confidence reaches this '
                   '(0 keeps all).')
flags.DEFINE_float('unlabeled_weight', 1.0,
                   'Weight of the consistency loss on unlabeled images.')
flags.DEFINE_list('att_strides', '15,16',
                  'Backbone strides whose end points form the hypercolumn of '
                  'the self-attention (see deeplab/feature_extractor.py).')
flags.DEFINE_integer('attention_dim', 128, 'Key/query width of the attention.')
flags.DEFINE_boolean('use_attention', True,
                     'Build the Grad-CAM + self-attention branch (else pseudo '
                     'labels come from the decoder alone).')
flags.DEFINE_boolean('att_v2', True,
                     'Self-attention v2 (skip connection + batch norm).')
flags.DEFINE_enum('pseudo_src', 'avg', ['att', 'avg'],
                  'Pseudo labels from the attention alone or the calibrated '
                  'average with the decoder.')
flags.DEFINE_float('temperature', 0.5, 'Sharpening temperature of soft labels.')
flags.DEFINE_boolean('logit_norm', True,
                     'Normalise both logit sources by a joint RMS before '
                     'averaging.')
flags.DEFINE_boolean('cls_with_cls', True,
                     'With --weakly: train the classifier on the image-level '
                     'split (else on the labeled split).')
flags.DEFINE_integer('calibration_bins', calibration.NUM_BINS,
                     'Bins of the expected calibration error of pseudo labels.')


def pseudoseg_options_from_flags(supervised_options):
  """The PseudoSegOptions of the parsed flags around `supervised_options`;
  every other field is the flag of the same name."""
  return pseudoseg.PseudoSegOptions(
      supervised=supervised_options,
      **{name: getattr(FLAGS, name)
         for name in pseudoseg.PseudoSegOptions._fields
         if name != 'supervised'})
