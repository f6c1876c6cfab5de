"""PseudoSeg: consistency training with calibrated Grad-CAM + decoder pseudo labels.

Example (see README.md for the full set of flags):
  python train_wss.py --train_split=16_clean_3 --train_split_cls=train_aug \
    --model_variant=xception_65 --atrous_rates=6 --atrous_rates=12 \
    --atrous_rates=18 --output_stride=16 --decoder_output_stride=4 \
    --train_logdir=/tmp/wss --dataset_dir=dataset
"""
from absl import app
from absl import flags

from core.flags import flag_checks
from core.flags import supervised_flags
from core.flags import train_flags
from core.flags import wss_flags
from core.method import pseudoseg
from core.train import loop
from deeplab.tf_compat import tf
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS
train_flags.apply_wss_defaults()


def main(unused_argv):
  config = train_flags.deployment_from_flags()
  batch_size = flag_checks.clone_batch_size(FLAGS.train_batch_size,
                                            FLAGS.num_clones,
                                            FLAGS.num_accumulation_steps)
  with tf.Graph().as_default():
    with tf.device(config.inputs_device()):
      labeled = train_flags.training_dataset(
          FLAGS.train_split, batch_size, output_valid=True, with_cls=True)
      unlabeled = train_flags.training_dataset(
          FLAGS.train_split_cls, batch_size, strong_weak=True,
          output_valid=True, with_cls=FLAGS.weakly, seed_offset=1)
      labeled_iterator = labeled.get_one_shot_iterator()
      unlabeled_iterator = unlabeled.get_one_shot_iterator()
    options = wss_flags.pseudoseg_options_from_flags(
        supervised_flags.supervised_options_from_flags(
            train_flags.model_options(labeled.num_of_classes)))
    pseudoseg.attention_end_points(options)

    def build_clone(clone_index):
      pseudoseg.build_clone(labeled_iterator.get_next(),
                            unlabeled_iterator.get_next(), options,
                            labeled.num_of_classes, labeled.ignore_label,
                            monitor=clone_index == 0)

    loop.train(config, train_flags.train_options_from_flags(), build_clone,
               2 * FLAGS.train_batch_size, datasets=[labeled, unlabeled])


if __name__ == '__main__':
  flags.mark_flags_as_required(['train_logdir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
