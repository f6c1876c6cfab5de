"""train_wss.py end to end (in the default run: one step from pretrain.py's
export, the last test), and the gradient flow of one PseudoSeg clone."""
import glob
import math
import os
import re

import numpy as np
import pytest

from conftest import pseudoseg_options
from conftest import run_script
from core.method import pseudoseg
from deeplab import common
from deeplab.tf_compat import tf
from test_train_sup import SHORT_RUN
from test_train_sup import _logged_steps
from test_train_sup import _reference_variables

LIGHT_MODEL = ['--model_variant=mobilenet_v2', '--output_stride=16',
               '--dataset=synthetic']
TWO_CLONES = ['--num_clones=2', '--clone_on_cpu=true', '--train_batch_size=4',
              '--training_number_of_steps=3', '--train_split_cls=train_aug']
NUM_CLASSES = 9  # synthetic: background + 8

# The summaries of train_wss at its default flags (docs/DESIGN.md §Summary
# tags) as (kind, tag), besides one histogram per model variable: clone 0's
# losses, the learning rate and accuracies, calibration and images.
TRAIN_WSS_SUMMARIES = frozenset(
    [('scalar', tag) for tag in (
        'losses/loss_cls', 'losses/loss_consistency',
        'losses/self-attention_self-attention_logits',
        'losses/semantic_merged_logits', 'losses/regularization_loss',
        'learning_rate', 'total_loss', 'sanity_check/acc_seg',
        'sanity_check/acc_weak', 'sanity_check/acc_strong',
        'calibration/ece_pseudo', 'calibration/ece_fused',
        'calibration/ece_decoder', 'calibration/ece_attention')] +
    [('histogram', tag) for tag in (
        'max_prob_weak', 'max_prob_avg', 'max_prob_avg_t',
        'max_att_prob_weak')] +
    [('image', tag) for tag in (
        'samples/image_seg', 'samples/label_seg', 'samples/semantic_seg',
        'unlabeled/weak', 'unlabeled/strong', 'sanity_check/valid_mask',
        'unlabeled/label', 'unlabeled/logits_weak', 'unlabeled/logits_strong',
        'att/merged_logits', 'att/att_logits_weak', 'att/cam_weak',
        'att/att_logits_labeled')])


def _wss(dataset_dir, logdir, *extra):
  process = run_script('train_wss.py', *SHORT_RUN, *TWO_CLONES,
                       '--dataset_dir=%s' % dataset_dir,
                       '--train_logdir=%s' % logdir, *extra)
  assert process.returncode == 0, process.stderr[-4000:]
  steps = _logged_steps(process.stderr)
  assert steps[-1][0] == 3
  assert all(math.isfinite(loss) for _, loss in steps)
  return process


def _variable_shapes(logdir):
  shapes = tf.train.load_checkpoint(str(logdir)).get_variable_to_shape_map()
  return {n: s for n, s in shapes.items()
          if not n.endswith('/Momentum') and n != 'global_step'}


def _summary_values(logdir):
  for path in glob.glob(os.path.join(str(logdir), 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      yield from event.summary.value


def _summary_tags(logdir):
  return {value.tag for value in _summary_values(logdir)}


_KIND_OF_VALUE = {'simple_value': 'scalar', 'histo': 'histogram',
                  'image': 'image'}


def _summaries(logdir):
  """(kind, tag) of every summary written; an image summary's tag without
  the `/image/<i>` TensorFlow appends per image."""
  return {(_KIND_OF_VALUE[value.WhichOneof('value')],
           re.sub(r'/image(/\d+)?$', '', value.tag))
          for value in _summary_values(logdir)}


@pytest.mark.slow
def test_xception_checkpoint_adds_exactly_the_pseudoseg_variables(
    synthetic_dir, tmp_path):
  process = _wss(synthetic_dir, tmp_path, '--model_variant=xception_65',
                 '--atrous_rates=6', '--atrous_rates=12', '--atrous_rates=18',
                 '--output_stride=16', '--decoder_output_stride=4',
                 '--dataset=synthetic')
  for term in ('loss_consistency', 'self-attention_self-attention_logits',
               'semantic_merged_logits', 'loss_cls', 'ece_pseudo',
               'ece_fused', 'ece_decoder', 'ece_attention'):
    assert term + '=' in process.stderr
  expected = _reference_variables()
  expected['logits/semantic/weights'][-1] = NUM_CLASSES
  expected['logits/semantic/biases'][-1] = NUM_CLASSES
  expected.update({
      'xception_65/logits/weights': [1, 1, 2048, NUM_CLASSES - 1],
      'xception_65/logits/biases': [NUM_CLASSES - 1],
      'hyper_column/key/weights': [1, 1, 3072, 128],
      'hyper_column/query/weights': [1, 1, 3072, 128],
      'pixel_normalization/weights': [1, 1, NUM_CLASSES, NUM_CLASSES],
      'pixel_normalization/BatchNorm/beta': [NUM_CLASSES],
      'pixel_normalization/BatchNorm/moving_mean': [NUM_CLASSES],
      'pixel_normalization/BatchNorm/moving_variance': [NUM_CLASSES],
  })
  assert _variable_shapes(tmp_path) == expected
  assert _summaries(tmp_path) == TRAIN_WSS_SUMMARIES | {
      ('histogram', name) for name in expected}


@pytest.mark.slow
@pytest.mark.parametrize('variant', [
    ['--weakly=true'],
    ['--att_v2=false'],
    ['--soft_pseudo_label=false', '--pseudo_label_threshold=0.3'],
    ['--pseudo_src=att', '--temperature=1.0'],
])
def test_light_variants_train(synthetic_dir, tmp_path, variant):
  process = _wss(synthetic_dir, tmp_path, *LIGHT_MODEL, *variant)
  shapes = _variable_shapes(tmp_path)
  assert shapes['MobilenetV2/logits/weights'][-1] == NUM_CLASSES - 1
  if '--att_v2=false' in variant:
    assert shapes['pixel_normalization/biases'] == [NUM_CLASSES]
    assert not any(n.startswith('pixel_normalization/BatchNorm') for n in
                   shapes)
  else:
    assert 'pixel_normalization/BatchNorm/beta' in shapes
  if '--pseudo_label_threshold=0.3' in variant:
    assert 'sanity_check/valid_ratio' in _summary_tags(tmp_path)
  assert 'loss_consistency=' in process.stderr


@pytest.fixture(scope='module')
def clone_graph():
  """One PseudoSeg clone of the light model on placeholders (crop 33)."""
  graph = tf.Graph()
  with graph.as_default():
    batch, size = 2, 33
    image = lambda: tf.placeholder(tf.float32, [batch, size, size, 3])
    mask = lambda: tf.placeholder(tf.int32, [batch, size, size, 1])
    labeled = {common.IMAGE: image(), common.LABEL: mask(),
               common.VALID: mask(),
               common.CLS_LABEL: tf.placeholder(tf.float32, [batch, 8])}
    unlabeled = {common.IMAGE: image(), common.STRONG: image(),
                 common.LABEL: mask(), common.VALID: mask()}
    options = common.ModelOptions({common.OUTPUT_TYPE: NUM_CLASSES},
                                  crop_size=[size, size], output_stride=16,
                                  model_variant='mobilenet_v2')
    pseudoseg.build_clone(labeled, unlabeled, pseudoseg_options(options),
                          NUM_CLASSES, 255,
                          monitor=False)
  return graph


def _loss(graph, name_part):
  losses = [l for l in graph.get_collection(tf.GraphKeys.LOSSES)
            if name_part in l.op.name]
  assert len(losses) == 1, [l.op.name for l in losses]
  return losses[0]


def test_self_attention_loss_trains_only_attention_variables(clone_graph):
  with clone_graph.as_default():
    variables = tf.trainable_variables()
    loss = _loss(clone_graph, 'self-attention')
    gradients = tf.gradients(loss, variables)
  trained = sorted(v.op.name for v, g in zip(variables, gradients)
                   if g is not None)
  assert trained == ['hyper_column/key/weights', 'hyper_column/query/weights',
                     'pixel_normalization/BatchNorm/beta',
                     'pixel_normalization/weights']


def test_pseudo_labels_carry_no_gradient(clone_graph):
  with clone_graph.as_default():
    loss = _loss(clone_graph, 'loss_consistency')
    weak_logits = clone_graph.get_tensor_by_name(
        'cls_weak/logits/semantic/BiasAdd:0')
    assert tf.gradients(loss, weak_logits) == [None]
    strong_logits = clone_graph.get_tensor_by_name(
        'cls_strong/logits/semantic/BiasAdd:0')
    assert tf.gradients(loss, strong_logits)[0] is not None


def test_consistency_loss_is_finite_on_random_input(clone_graph):
  rng = np.random.RandomState(0)
  feed = {}
  for op in clone_graph.get_operations():
    if op.type != 'Placeholder':
      continue
    tensor = op.outputs[0]
    shape = tensor.shape.as_list()
    if tensor.dtype == tf.float32 and shape[-1] == 3:
      feed[tensor] = rng.uniform(0, 255, shape)
    elif tensor.dtype == tf.float32:
      feed[tensor] = rng.randint(0, 2, shape)
    else:
      feed[tensor] = np.ones(shape, np.int32)
  with clone_graph.as_default(), tf.Session() as session:
    session.run(tf.global_variables_initializer())
    value = session.run(_loss(clone_graph, 'loss_consistency'), feed)
  assert np.isfinite(value) and value > 0


# ----------------------------------------------------------------------------
# train_wss.py as users run it, from pretrain.py's export (started by
# test_pretrain.py's first test, conftest.pretrain_runs: it trained while the
# modules between ran).


def _checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def test_train_wss_starts_from_the_export(pretrained, pretrain_runs):
  """--tf_initial_checkpoint restores every backbone variable (names and
  shapes match); the classification head is trained from scratch."""
  _, prefix, _ = pretrained
  run_dir, run = pretrain_runs['train_wss']
  process = run.result()
  assert process.returncode == 0, process.stderr[-3000:]
  exported = _checkpoint(prefix)
  initial = _checkpoint(str(run_dir / 'model.ckpt-0'))
  backbone = [n for n in exported if not n.startswith('MobilenetV2/logits')]
  assert len(backbone) > 200
  for name in backbone:
    np.testing.assert_array_equal(initial[name], exported[name], err_msg=name)
  assert not np.array_equal(initial['MobilenetV2/logits/weights'],
                            exported['MobilenetV2/logits/weights'])
