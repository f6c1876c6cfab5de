"""Pretrains the backbone and its classification head on image-level labels.

The stand-in for DeepLab's ImageNet checkpoint on machines that cannot download
it (see core/train/pretraining.py). Trains on --train_split (default `cls_pretrain`,
the synthetic builder's classification set, disjoint from `train_aug` and
`val`) with multi-label sigmoid cross-entropy, then exports the model variables
to --export_checkpoint (default <train_logdir>/export/model.ckpt), to be passed
as --tf_initial_checkpoint to train_sup.py / train_wss.py.

Example:
  python pretrain.py --dataset=synthetic --dataset_dir=work_dirs/synthetic \
    --model_variant=mobilenet_v2 --train_logdir=work_dirs/pretrain
"""
import os

from absl import app
from absl import flags

from core.flags import flag_checks
from core.flags import supervised_flags
from core.flags import train_flags
from core.method import monitoring
from core.method import supervised
from core.train import loop
from core.train import pretraining
from deeplab import common
from deeplab.tf_compat import tf
from utils.errors import InputError
from utils.errors import run_reporting_errors

FLAGS = flags.FLAGS

flags.DEFINE_string(
    'export_checkpoint', None,
    'Prefix of the exported backbone checkpoint (model variables only); '
    'default <train_logdir>/export/model.ckpt.')

# Defaults for the synthetic classification set on one CPU (about 6 minutes on
# 2 cores): whole images (scales 0.5-0.75 of ~160 px fit the 97 px crop) and
# Adam, which got the head off its prior within the budget where momentum SGD
# at 0.02 and 0.1 did not move it in 400 steps. All can be overridden.
for _name, _value in (('train_split', 'cls_pretrain'), ('num_clones', 1),
                      ('train_batch_size', 16), ('train_crop_size', ['97', '97']),
                      ('min_scale_factor', 0.5), ('max_scale_factor', 0.75),
                      ('training_number_of_steps', 600), ('optimizer', 'adam'),
                      ('adam_learning_rate', 0.002), ('batch_norm_decay', 0.99),
                      ('save_interval_secs', 120), ('log_steps', 50)):
  FLAGS.set_default(_name, _value)


def export_prefix():
  return FLAGS.export_checkpoint or os.path.join(FLAGS.train_logdir, 'export',
                                                 pretraining.EXPORT_NAME)


def main(unused_argv):
  if FLAGS.tf_initial_checkpoint:
    raise InputError('pretrain.py starts from scratch; drop '
                     '--tf_initial_checkpoint.')
  config = train_flags.deployment_from_flags()
  batch_size = flag_checks.clone_batch_size(FLAGS.train_batch_size,
                                            FLAGS.num_clones,
                                            FLAGS.num_accumulation_steps)
  with tf.Graph().as_default():
    with tf.device(config.inputs_device()):
      dataset = train_flags.training_dataset(FLAGS.train_split, batch_size,
                                             with_cls=True)
      iterator = dataset.get_one_shot_iterator()
    model_options = train_flags.model_options(dataset.num_of_classes)

    def build_clone(clone_index):
      samples = iterator.get_next()
      _, logits, _ = supervised.add_classification_loss(
          samples[common.IMAGE], samples[common.CLS_LABEL],
          supervised_flags.supervised_options_from_flags(model_options),
          dataset.num_of_classes)
      if clone_index == 0:
        accuracy = pretraining.add_multilabel_accuracy(
            logits, samples[common.CLS_LABEL])
        # Not monitoring.add_summary: that would make the tag exact
        # (`acc_cls`), but existing runs logged TF's scope-derived
        # `acc_cls_1` (`clone_0/acc_cls_1` with several clones; the accuracy
        # op itself is named `acc_cls`), and the tag is kept.
        tf.summary.scalar('acc_cls', accuracy)
        tf.add_to_collection(monitoring.CONSOLE_SCALARS, accuracy)

    loop.train(config, train_flags.train_options_from_flags(), build_clone,
               FLAGS.train_batch_size)
  pretraining.export_model_variables(
      tf.train.latest_checkpoint(FLAGS.train_logdir), export_prefix(),
      model_options, dataset.num_of_classes - 1,
      flag_checks.parse_crop_size(FLAGS.train_crop_size, 'train_crop_size'))
  print('pretrained checkpoint: %s (pass it as --tf_initial_checkpoint)' %
        export_prefix())


if __name__ == '__main__':
  flags.mark_flags_as_required(['train_logdir', 'dataset_dir'])
  app.run(lambda argv: run_reporting_errors(main, argv))
