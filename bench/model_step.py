r"""Times DeepLabv3+ forward and forward+backward passes on this machine.

For every (model variant, crop size) the script builds a training-mode
DeepLabv3+ graph (batch norm in training mode, ASPP dropout on) with the
README configuration (output stride 16, atrous rates 6/12/18, decoder stride
4 unless the common flags say otherwise), counts its FLOPs with the TF
profiler (`float_operation`: forward graph, then the graph with gradients),
and reports per image:
  * forward: the logits and the cross-entropy on logits upsampled to the crop;
  * forward+backward: a full training step, i.e. the same plus the gradients
    of every trainable variable, the batch-norm moving-average updates and a
    momentum update (the update is what makes the gradients run: TF prunes
    stateless ops whose results nothing stateful or fetched consumes);
as medians over `--steps` runs after `--warmup_steps`. A large float32 matmul
measured in the same process gives the practical peak GFLOP/s; the ratio of
achieved to peak rate is printed.

Example:
  .venv/bin/python bench/model_step.py --crop_sizes=129 \
      --variants=xception_65,mobilenet_v2
"""
import os
import shlex
import sys
import time

# Allow `python bench/model_step.py` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from core.flags import common_flags  # noqa: E402,F401  (model flags)
from deeplab import common  # noqa: E402
from deeplab import model  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_list('variants', ['xception_65', 'mobilenet_v2'],
                  'Model variants to time.')
flags.DEFINE_list('crop_sizes', ['129', '513'],
                  'Square crop sizes to time.')
flags.DEFINE_integer('batch_size', 2, 'Images per step.')
flags.DEFINE_integer('num_classes', 21, 'Segmentation classes.')
flags.DEFINE_integer('warmup_steps', 2, 'Untimed steps before timing.')
flags.DEFINE_integer('steps', 5, 'Timed steps (the median is reported).')
flags.DEFINE_integer('matmul_size', 2048,
                     'n of the n x n float32 matmul measuring the peak.')


def median_seconds(sess, fetches, warmup_steps, steps):
  """Median wall time of `sess.run(fetches)` after warm-up runs."""
  for _ in range(warmup_steps):
    sess.run(fetches)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    sess.run(fetches)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def matmul_gflops(n, warmup_steps, steps):
  """Practical peak: GFLOP/s of an n x n float32 matmul (2 n^3 FLOPs)."""
  with tf.Graph().as_default():
    a = tf.Variable(tf.random.normal([n, n], seed=1))
    b = tf.Variable(tf.random.normal([n, n], seed=2))
    # Fetch a reduction (n^2 extra FLOPs) so the product must be computed.
    checksum = tf.reduce_sum(tf.matmul(a, b))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      seconds = median_seconds(sess, checksum, warmup_steps, steps)
  return 2.0 * n**3 / seconds / 1e9


def graph_flops(graph):
  """Float operations of everything built so far in `graph` (profiler)."""
  options = tf.profiler.ProfileOptionBuilder.float_operation()
  options['output'] = 'none'
  return tf.profiler.profile(graph, options=options).total_float_ops


def model_options(variant, crop):
  return common.ModelOptions(
      {common.OUTPUT_TYPE: FLAGS.num_classes}, crop_size=[crop, crop],
      atrous_rates=FLAGS.atrous_rates or [6, 12, 18],
      output_stride=FLAGS.output_stride, model_variant=variant,
      decoder_output_stride=[int(s) for s in FLAGS.decoder_output_stride or
                             [4]])


def build_training_graph(variant, crop):
  """Adds a DeepLabv3+ training step on random data to the default graph.

  Returns:
    (loss, train_step, forward GFLOP per image, forward+backward GFLOP per
    image).
  """
  batch = FLAGS.batch_size
  graph = tf.get_default_graph()
  images = tf.random.uniform([batch, crop, crop, 3], 0.0, 255.0, seed=3)
  labels = tf.random.uniform([batch, crop, crop], 0, FLAGS.num_classes,
                             dtype=tf.int32, seed=4)
  logits = model.multi_scale_logits(
      images, model_options(variant, crop), image_pyramid=None,
      is_training=True, fine_tune_batch_norm=True)[common.OUTPUT_TYPE][
          model.MERGED_LOGITS_SCOPE]
  logits = tf.image.resize_bilinear(logits, [crop, crop], align_corners=True)
  loss = tf.reduce_mean(
      tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                     logits=logits))
  forward_gflop = graph_flops(graph) / batch / 1e9
  with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
    train_step = tf.train.MomentumOptimizer(1e-4, 0.9).minimize(loss)
  both_gflop = graph_flops(graph) / batch / 1e9
  return loss, train_step, forward_gflop, both_gflop


def time_model(variant, crop):
  """Per image: forward (GFLOP, seconds) and forward+backward (GFLOP, s)."""
  batch = FLAGS.batch_size
  with tf.Graph().as_default():
    loss, train_step, forward_gflop, both_gflop = build_training_graph(
        variant, crop)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      forward = median_seconds(sess, loss, FLAGS.warmup_steps, FLAGS.steps)
      both = median_seconds(sess, train_step, FLAGS.warmup_steps, FLAGS.steps)
  return (forward_gflop, forward / batch), (both_gflop, both / batch)


def main(argv):
  if len(argv) > 1:
    raise InputError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    crops = [int(c) for c in FLAGS.crop_sizes]
  except ValueError:
    raise InputError('--crop_sizes must be integers, got %s.' %
                     ','.join(FLAGS.crop_sizes))
  if FLAGS.batch_size < 1 or FLAGS.steps < 1:
    raise InputError('--batch_size and --steps must be positive.')
  print('command: %s' % ' '.join(shlex.quote(a) for a in sys.argv))
  peak = matmul_gflops(FLAGS.matmul_size, FLAGS.warmup_steps, FLAGS.steps)
  print('float32 matmul n=%d: %.1f GFLOP/s (practical peak)' %
        (FLAGS.matmul_size, peak))
  print('%-13s %5s %5s %-16s %11s %9s %8s %8s' %
        ('variant', 'crop', 'batch', 'pass', 'GFLOP/image', 's/image',
         'GFLOP/s', '% peak'))
  for variant in FLAGS.variants:
    for crop in crops:
      timings = time_model(variant, crop)
      for name, (gflop, seconds) in zip(('forward', 'forward+backward'),
                                        timings):
        print('%-13s %5d %5d %-16s %11.2f %9.3f %8.1f %7.0f%%' %
              (variant, crop, FLAGS.batch_size, name, gflop, seconds,
               gflop / seconds, 100.0 * gflop / seconds / peak))


if __name__ == '__main__':
  app.run(lambda argv: run_reporting_errors(main, argv))
