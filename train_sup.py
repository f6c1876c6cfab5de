"""Supervised DeepLabv3+ baseline on a labeled split (optionally + image-level head).

Example (see README.md for the full set of flags):
  python train_sup.py --train_split=16_clean_3 --model_variant=xception_65 \
    --atrous_rates=6 --atrous_rates=12 --atrous_rates=18 --output_stride=16 \
    --decoder_output_stride=4 --train_logdir=/tmp/sup --dataset_dir=dataset
"""
from absl import app
from absl import flags

from core.flags import flag_checks
from core.flags import supervised_flags
from core.flags import train_flags
from core.method import supervised
from core.train import loop
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS


def main(unused_argv):
  config = train_flags.deployment_from_flags()
  batch_size = flag_checks.clone_batch_size(FLAGS.train_batch_size,
                                            FLAGS.num_clones,
                                            FLAGS.num_accumulation_steps)
  with tf.Graph().as_default():
    with tf.device(config.inputs_device()):
      labeled = train_flags.training_dataset(FLAGS.train_split, batch_size,
                                             with_cls=FLAGS.weakly)
      labeled_iterator = labeled.get_one_shot_iterator()
      if FLAGS.weakly:
        image_level = train_flags.training_dataset(
            FLAGS.train_split_cls, batch_size, with_cls=True, seed_offset=1)
        image_level_iterator = image_level.get_one_shot_iterator()
    options = supervised_flags.supervised_options_from_flags(
        train_flags.model_options(labeled.num_of_classes))

    def build_clone(clone_index):
      samples = labeled_iterator.get_next()
      supervised.supervised_branch(samples, options,
                                   labeled.num_of_classes,
                                   labeled.ignore_label,
                                   monitor=clone_index == 0)
      if FLAGS.weakly:
        cls_samples = image_level_iterator.get_next()
        supervised.add_classification_loss(
            cls_samples[common.IMAGE], cls_samples[common.CLS_LABEL],
            options, labeled.num_of_classes)

    images_per_step = FLAGS.train_batch_size * (2 if FLAGS.weakly else 1)
    datasets = [labeled, image_level] if FLAGS.weakly else [labeled]
    loop.train(config, train_flags.train_options_from_flags(), build_clone,
               images_per_step, datasets=datasets)


if __name__ == '__main__':
  flags.mark_flags_as_required(['train_logdir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
