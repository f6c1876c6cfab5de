r"""FLOPs of one training step of train_sup.py or train_wss.py (TF profiler).

Builds the script's own training graph (its flags, one process, nothing runs:
training.run_loop is replaced by the count), then counts the float operations
of the whole graph with the profiler (`float_operation`): every clone's passes,
gradients (Grad-CAM's included), batch-norm updates and the optimizer update.
The data only has to exist; shapes come from the flags. Prints GFLOP per step
and per labeled image, and the trainable parameters (what a step moves between
workers and parameter servers).

Paper settings, one clone of 4 + 4 images (x 16 clones = the paper's step):
  .venv/bin/python bench/step_flops.py --script=train_wss \
      --dataset=synthetic --dataset_dir=DIR --train_split=16_clean_3 \
      --train_split_cls=cls_pretrain --model_variant=xception_65 \
      --atrous_rates=6 --atrous_rates=12 --atrous_rates=18 --output_stride=16 \
      --decoder_output_stride=4 --train_crop_size=513,513 --num_clones=1 \
      --train_batch_size=4
"""
import os
import sys
import tempfile

# Allow `python bench/step_flops.py` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from bench.model_step import graph_flops  # noqa: E402
from core import training  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
import train_sup  # noqa: E402
import train_wss  # noqa: E402  (its defaults only change logging/restore)
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum('script', 'train_wss', ['train_sup', 'train_wss'],
                  'Training script whose graph is counted.')


def _count_instead_of_training(config, train_op, learning_rate,
                               images_per_step, *unused_args, **unused_kwargs):
  del train_op, learning_rate
  gflop = graph_flops(tf.get_default_graph()) / 1e9
  labeled = FLAGS.train_batch_size
  parameters = sum(v.shape.num_elements() for v in tf.trainable_variables())
  print('%s, %d clone(s), %d labeled image(s) per step (%d images in all): '
        '%.1f GFLOP per step, %.1f GFLOP per labeled image; %.2f M trainable '
        'parameters (%.1f MB in float32)' % (
            FLAGS.script, config.num_clones, labeled, images_per_step, gflop,
            gflop / labeled, parameters / 1e6, 4 * parameters / 1e6))


def main(argv):
  if not FLAGS.train_logdir:
    FLAGS.train_logdir = tempfile.mkdtemp(prefix='step_flops_')
  training.run_loop = _count_instead_of_training
  script = train_wss if FLAGS.script == 'train_wss' else train_sup
  script.main(argv)


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
