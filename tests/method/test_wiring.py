"""The wiring that makes train_wss.py PseudoSeg, checked on one in-process graph.

Two clones of the light model (mobilenet_v2, crop 33, 2 + 2 images per clone)
are built exactly as train_wss.py builds them (the training loop's
build_graph, train_wss's flag values); the tests read the graph's batch-norm
and dropout ops, loss and regularisation collections and summaries, and
evaluate the losses on random inputs.
"""
import collections

import numpy as np
import pytest
from absl.testing import flagsaver

from conftest import pseudoseg_options
from conftest import train_options
from core.flags import train_flags
from core.method import pseudo_label
from core.method import pseudoseg
from core.train import loop
from core.train import model_deploy
from deeplab import common
from deeplab.tf_compat import tf
from test_train_wss import TRAIN_WSS_SUMMARIES

BATCH, SIZE, NUM_CLASSES = 2, 33, 6
UNLABELED_WEIGHT = 3.0
# The passes' name scopes inside a clone (pass 4, the labeled batch, has none;
# with --weakly pass 0 comes first and takes the backbone's plain scope).
PASS_SCOPES = {'cls_weak': 1, 'cls_data_cls_inference': 2, 'cls_strong': 3,
               'seg_data_cls': 5}


def _batches():
  """Placeholders of one clone's labeled and unlabeled batches."""
  def batch(keys):
    shapes = {common.IMAGE: [BATCH, SIZE, SIZE, 3],
              common.STRONG: [BATCH, SIZE, SIZE, 3],
              common.LABEL: [BATCH, SIZE, SIZE, 1],
              common.VALID: [BATCH, SIZE, SIZE, 1],
              common.CLS_LABEL: [BATCH, NUM_CLASSES - 1]}
    return {key: tf.placeholder(
        tf.int32 if key in (common.LABEL, common.VALID) else tf.float32,
        shapes[key], name=key) for key in keys}

  shared = [common.IMAGE, common.LABEL, common.VALID, common.CLS_LABEL]
  return batch(shared), batch(shared + [common.STRONG])


def _options(**overrides):
  model_options = common.ModelOptions({common.OUTPUT_TYPE: NUM_CLASSES},
                                      crop_size=[SIZE, SIZE], output_stride=16,
                                      model_variant='mobilenet_v2')
  return pseudoseg_options(model_options, **overrides)


Built = collections.namedtuple('Built', ['graph', 'train_op', 'fusions'])


@pytest.fixture(scope='module')
def two_clones():
  """train_wss's graph with two clones on the CPU, built by the training
  loop with train_wss's flag values (image summaries among them); every call
  of fuse_probabilities is recorded as (args, kwargs, output)."""
  fusions = []
  real_fuse = pseudo_label.fuse_probabilities

  def recording_fuse(*args, **kwargs):
    output = real_fuse(*args, **kwargs)
    fusions.append((args, kwargs, output))
    return output

  graph = tf.Graph()
  with pytest.MonkeyPatch.context() as patch, graph.as_default(), \
      flagsaver.flagsaver(**train_flags.WSS_DEFAULTS):
    patch.setattr(pseudo_label, 'fuse_probabilities', recording_fuse)
    config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
    options = _options(unlabeled_weight=UNLABELED_WEIGHT)

    def build_clone(index):
      labeled, unlabeled = _batches()
      pseudoseg.build_clone(labeled, unlabeled, options, NUM_CLASSES, 255,
                            monitor=index == 0)

    train_op, _ = loop.build_graph(config, train_options('unused', 10),
                                   build_clone)
  return Built(graph, train_op, fusions)


def _random_feed(graph, seed=0):
  """Images in [0, 255], labels in [0, C), valid masks of ones, multi-hot
  image-level labels, for every placeholder of the graph."""
  rng = np.random.RandomState(seed)
  feed = {}
  for op in graph.get_operations():
    if op.type != 'Placeholder':
      continue
    tensor, key = op.outputs[0], op.name.split('/')[-1].split('_')[0]
    shape = tensor.shape.as_list()
    feed[tensor] = {
        'image': lambda: rng.uniform(0, 255, shape),
        'strong': lambda: rng.uniform(0, 255, shape),
        'label': lambda: rng.randint(0, NUM_CLASSES, shape),
        'valid': lambda: np.ones(shape, np.int32),
        'cls': lambda: rng.randint(0, 2, shape).astype(np.float32),
    }[key]()
  return feed


@pytest.fixture(scope='module')
def session(two_clones):
  with two_clones.graph.as_default():
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
  yield sess
  sess.close()


def _pass_of(op_name, weakly=False):
  """(clone scope, pass number) of an op of the built graph."""
  parts = op_name.split('/')
  clone = parts[0] if parts[0].startswith('clone_') else ''
  first = parts[1] if clone else parts[0]
  if first in PASS_SCOPES:
    return clone, PASS_SCOPES[first]
  if weakly and first == 'MobilenetV2':
    return clone, 0
  return clone, 4


def _batch_norm_modes(graph, weakly=False):
  """(clone, pass) -> sorted set of (is_training, is pixel_normalization)."""
  modes = collections.defaultdict(set)
  for op in graph.get_operations():
    if op.type in ('FusedBatchNorm', 'FusedBatchNormV3'):
      modes[_pass_of(op.name, weakly)].add(
          (op.get_attr('is_training'), 'pixel_normalization' in op.name))
  return {key: sorted(value) for key, value in modes.items()}


def _dropout_passes(graph, weakly=False):
  return sorted({_pass_of(op.name, weakly) for op in graph.get_operations()
                 if op.type == 'RandomUniform' and 'dropout' in op.name})


def test_batch_norm_mode_of_each_pass(two_clones):
  """Pass 2 (Grad-CAM on the weak view) uses moving statistics, except the
  SGC's pixel_normalization, which always normalises with batch statistics;
  every other pass trains batch norm."""
  modes = _batch_norm_modes(two_clones.graph)
  for clone in ('clone_0', 'clone_1'):
    assert modes[(clone, 1)] == [(True, False)]
    assert modes[(clone, 2)] == [(False, False), (True, True)]
    assert modes[(clone, 3)] == [(True, False)]
    assert modes[(clone, 4)] == [(True, False)]
    assert modes[(clone, 5)] == [(True, False), (True, True)]
  assert sorted(modes) == [(clone, p) for clone in ('clone_0', 'clone_1')
                           for p in (1, 2, 3, 4, 5)]


def test_dropout_is_active_in_the_training_passes_only(two_clones):
  """ASPP's projection dropout in passes 1, 3, 4; the classification head's
  dropout in pass 5; none in the inference-mode pass 2."""
  expected = [(clone, p) for clone in ('clone_0', 'clone_1')
              for p in (1, 3, 4, 5)]
  assert _dropout_passes(two_clones.graph) == expected


def test_weakly_adds_pass_zero_in_training_mode():
  graph = tf.Graph()
  with graph.as_default():
    labeled, unlabeled = _batches()
    pseudoseg.build_clone(labeled, unlabeled, _options(weakly=True),
                          NUM_CLASSES, 255, monitor=False)
  modes = _batch_norm_modes(graph, weakly=True)
  assert modes[('', 0)] == [(True, False)]
  assert modes[('', 2)] == [(False, False), (True, True)]
  assert ('', 0) in _dropout_passes(graph, weakly=True)
  # With --weakly the classification loss comes from pass 0 only.
  losses = [l.op.name for l in graph.get_collection(tf.GraphKeys.LOSSES)]
  assert losses.count('loss_cls') == 1
  loss_cls = graph.get_tensor_by_name('loss_cls:0')
  assert not any(op.name.startswith('seg_data_cls') for op in
                 _ancestors(loss_cls.op))


def _ancestors(op, stop_at=()):
  seen, todo = set(), [op]
  while todo:
    current = todo.pop()
    if current in seen:
      continue
    seen.add(current)
    todo.extend(t.op for t in current.inputs)
    todo.extend(current.control_inputs)
  return seen


def test_batch_norm_updates_come_from_clone_zero_only(two_clones):
  updates = [getattr(update, 'op', update) for update in
             two_clones.graph.get_collection(tf.GraphKeys.UPDATE_OPS)]
  per_clone = collections.Counter(op.name.split('/')[0] for op in updates)
  assert per_clone['clone_0'] == per_clone['clone_1'] > 0
  run = _ancestors(two_clones.train_op.train_tensor.op)
  assert {op for op in updates if op.name.startswith('clone_0/')} <= run
  assert not [op for op in updates
              if op.name.startswith('clone_1/') and op in run]


def test_losses_and_their_weights(two_clones, session):
  """Per clone exactly: supervised CE, self-attention CE, loss_cls (weight
  1) and the consistency loss times --unlabeled_weight."""
  graph = two_clones.graph
  losses = graph.get_collection(tf.GraphKeys.LOSSES)
  expected = ['loss_cls', 'loss_consistency', 'self-attention_self-attention_'
              'logits/loss', 'semantic_merged_logits/loss']
  for clone in ('clone_0', 'clone_1'):
    names = sorted(l.op.name[len(clone) + 1:] for l in losses
                   if l.op.name.startswith(clone + '/'))
    assert names == expected
  weighted = graph.get_tensor_by_name('clone_0/loss_consistency:0')
  raw = weighted.op.inputs[0]
  weighted_value, raw_value = session.run([weighted, raw],
                                          _random_feed(graph))
  assert raw_value > 0
  assert weighted_value == pytest.approx(UNLABELED_WEIGHT * raw_value)


def test_total_loss_counts_regularisation_once(two_clones, session):
  """total = sum over clones of (their losses / 2) + L2 once."""
  graph = two_clones.graph
  losses = graph.get_collection(tf.GraphKeys.LOSSES)
  regularization = tf.add_n(
      graph.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))
  total, loss_values, l2 = session.run(
      [two_clones.train_op.total_loss, losses, regularization],
      _random_feed(graph, seed=1))
  assert l2 > 0
  assert total == pytest.approx(sum(loss_values) / 2 + l2, rel=1e-5)


def _is_regularised_kernel(name):
  """The L2 rule: conv and pointwise kernels everywhere except the
  attention module; no depthwise kernels, batch norm or biases."""
  if name.startswith(('hyper_column/', 'pixel_normalization/')):
    return False
  return name.endswith('weights') and 'depthwise' not in name


def _variable_of(regularization_loss):
  """Name of the one variable a regularisation loss reads."""
  variables = [op.name for op in _ancestors(regularization_loss.op)
               if op.type in ('VariableV2', 'VarHandleOp')]
  assert len(variables) == 1, variables
  return variables[0]


def test_exact_l2_set(two_clones):
  graph = two_clones.graph
  regularised = sorted(
      _variable_of(loss)
      for loss in graph.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))
  assert len(regularised) == len(set(regularised))
  with graph.as_default():
    names = [v.op.name for v in tf.trainable_variables()]
  assert regularised == sorted(n for n in names if _is_regularised_kernel(n))
  for name in ('logits/semantic/weights', 'MobilenetV2/logits/weights',
               'MobilenetV2/Conv/weights', 'concat_projection/weights'):
    assert name in regularised
  for name in ('hyper_column/key/weights', 'pixel_normalization/weights',
               'MobilenetV2/expanded_conv/depthwise/depthwise_weights'):
    assert name in names and name not in regularised


def test_logit_norm_is_one_scalar_over_both_branches_and_the_batch(
    two_clones, session):
  """Fusion gets the whole clone batch of both sources and scales them by
  one RMS; per-image scales would give other pseudo labels."""
  clone_0 = [f for f in two_clones.fusions
             if f[2].op.name.startswith('clone_0/')]
  assert len(clone_0) == 1
  args, kwargs, fused = clone_0[0]
  decoder, attention = args[:2]
  assert decoder.op.name.startswith('clone_0/cls_weak/')
  assert args[2:] == ('avg', True) and not kwargs
  decoder, attention, fused = session.run(
      [decoder, attention, fused], _random_feed(two_clones.graph, seed=2))
  assert decoder.shape[0] == attention.shape[0] == BATCH

  def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

  def fuse(scale_a, scale_b):
    return (softmax(decoder * scale_a) + softmax(attention * scale_b)) / 2

  both = np.concatenate([decoder, attention])
  one_scalar = 1 / np.sqrt(np.mean(np.square(both)) + 1e-8)
  np.testing.assert_allclose(fused, fuse(one_scalar, one_scalar), atol=1e-5)
  per_image = 1 / np.sqrt(np.mean(np.square(both.reshape(2, BATCH, -1)),
                                  axis=(0, 2)) + 1e-8)
  per_image = per_image[:, None, None, None]
  assert np.abs(fused - fuse(per_image, per_image)).max() > 1e-3


_SUMMARY_KINDS = {'ScalarSummary': 'scalar', 'HistogramSummary': 'histogram',
                  'ImageSummary': 'image'}


def _summaries(graph):
  """(kind, tag) of every summary op the training loop's writer merges."""
  found = []
  for summary in graph.get_collection(tf.GraphKeys.SUMMARIES):
    tag = np.asarray(tf.get_static_value(summary.op.inputs[0])).item()
    found.append((_SUMMARY_KINDS[summary.op.type], tag.decode('utf-8')))
  return found


def test_summary_tags_are_exactly_those_of_train_wss(two_clones):
  """Exact tags: `sanity_check/acc_seg_1` or a second `total_loss` fails."""
  found = _summaries(two_clones.graph)
  with two_clones.graph.as_default():
    variables = {v.op.name for v in tf.global_variables()
                 if v.op.name != 'global_step' and
                 not v.op.name.endswith('/Momentum')}
  assert len(found) == len(set(found))
  assert set(found) == TRAIN_WSS_SUMMARIES | {
      ('histogram', name) for name in variables}
