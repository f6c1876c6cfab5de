"""Throughput of the training input pipeline (images per second).

Measures the unlabeled-branch pipeline of train_wss: weak + strong views, random
scale 0.5..2, crop, cut-out, flip, `cls_label` and `valid`, over --num_batches
batches after --warmup_batches. Without --dataset_dir it builds a temporary
`synthetic` dataset of --num_images ~400x500 JPEG images first.

  python -m bench.input_pipeline --num_batches=50
  python -m bench.input_pipeline --dataset=pascal_voc_seg \
      --dataset_dir=/data/voc --split=train_aug
"""
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

from core.data import data_generator  # noqa: E402
from core.flags import common_flags  # noqa: E402,F401  (--dataset)
from datasets import build_data  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils import errors  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string('split', 'train_aug', 'Split to read.')
flags.DEFINE_integer('batch_size', 4, 'Images per batch.')
flags.DEFINE_list('crop_size', '513,513', 'Crop height,width.')
flags.DEFINE_integer('num_readers', 4, 'Files read in parallel.')
flags.DEFINE_integer('num_batches', 150, 'Timed batches.')
flags.DEFINE_integer('warmup_batches', 30,
                     'Untimed batches first (they fill the shuffle buffer).')
flags.DEFINE_integer('num_images', 36,
                     'Images of the temporary dataset (no --dataset_dir).')
flags.DEFINE_integer('seed', 0, 'Pipeline seed.')

_SYNTHETIC_SIZE = (400, 500)  # height, width


def _synthetic_example(index, rng):
  """A ~400x500 JPEG of a few coloured rectangles plus noise, labels 0..8."""
  height, width = _SYNTHETIC_SIZE
  height -= rng.randint(0, 60)
  width -= rng.randint(0, 60)
  label = np.zeros((height, width), np.uint8)
  for _ in range(4):
    top, left = rng.randint(0, height - 50), rng.randint(0, width - 50)
    label[top:top + rng.randint(40, 200), left:left + rng.randint(40, 200)] = (
        rng.randint(1, 9))
  palette = rng.randint(0, 256, size=(9, 3))
  image = palette[label] + rng.normal(0, 12, size=(height, width, 3))
  image = np.clip(image, 0, 255).astype(np.uint8)
  return build_data.example_from_arrays('bench_%04d' % index, image, label, 9)


def build_temporary_dataset(directory, split, num_images):
  """Writes `num_images` synthetic examples as `split` into `directory`."""
  rng = np.random.RandomState(0)
  build_data.write_split(
      directory, split, (_synthetic_example(i, rng) for i in range(num_images)),
      num_images, num_shards=4)


def measure(dataset_name, dataset_dir):
  """Returns (images per second, seconds) over the timed batches."""
  crop_size = [int(size) for size in FLAGS.crop_size]
  dataset = data_generator.Dataset(
      dataset_name, FLAGS.split, dataset_dir, FLAGS.batch_size, crop_size,
      min_scale_factor=0.5, max_scale_factor=2., scale_factor_step_size=0.25,
      num_readers=FLAGS.num_readers, is_training=True, should_shuffle=True,
      should_repeat=True, with_cls=True, strong_weak=True, output_valid=True,
      seed=FLAGS.seed)
  with tf.Graph().as_default():
    samples = dataset.get_one_shot_iterator().get_next()
    # Fetch a small tensor that depends on every output, so all of them are
    # computed but little is copied back to Python.
    check = tf.add_n([tf.reduce_sum(tf.cast(value, tf.float32))
                      for value in samples.values() if value.dtype.is_numeric])
    with tf.Session() as session:
      for _ in range(FLAGS.warmup_batches):
        session.run(check)
      start = time.perf_counter()
      for _ in range(FLAGS.num_batches):
        session.run(check)
      elapsed = time.perf_counter() - start
  return FLAGS.num_batches * FLAGS.batch_size / elapsed, elapsed


def main(argv):
  del argv
  temporary = None
  dataset_name, dataset_dir = FLAGS.dataset, FLAGS.dataset_dir
  if not dataset_dir:
    temporary = tempfile.mkdtemp(prefix='bench_input_')
    dataset_name, dataset_dir = 'synthetic', temporary
    build_temporary_dataset(temporary, FLAGS.split, FLAGS.num_images)
  try:
    images_per_second, elapsed = measure(dataset_name, dataset_dir)
  finally:
    if temporary:
      shutil.rmtree(temporary)
  print('command: %s' % ' '.join(sys.argv))
  print('dataset %s split %s%s, batch %d, crop %s, num_readers %d' %
        (dataset_name, FLAGS.split,
         ' (temporary, %d synthetic JPEGs)' % FLAGS.num_images if temporary
         else '', FLAGS.batch_size, 'x'.join(FLAGS.crop_size),
         FLAGS.num_readers))
  print('input pipeline (weak+strong, with_cls, valid): %.1f images/s '
        '(%d batches in %.2f s after %d warm-up batches)' %
        (images_per_second, FLAGS.num_batches, elapsed, FLAGS.warmup_batches))


if __name__ == '__main__':
  app.run(lambda argv: errors.run_reporting_errors(main, argv))
