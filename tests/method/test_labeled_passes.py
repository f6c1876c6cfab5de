"""One backbone forward for the labeled batch computes what two passes did.

train_wss's passes 4 (supervised decoder) and 5 (classification head,
Grad-CAM, self-attention) share one training-mode backbone forward
(`pseudoseg.labeled_passes`). The graph that ran the backbone once per pass
(`bench/two_pass_labeled.py`) is built beside it, from one checkpoint, with
dropout off, on the same batch: the losses, the gradients and every variable
after one training step must agree, the batch-norm moving statistics
included.

In train_wss a step's writes race with its reads (`_without_races`); here
they wait for them, in both graphs, so that the step is one computation:
the one the original makes when its updates come last.
"""
import numpy as np
import pytest
from tensorflow.core.protobuf import rewriter_config_pb2

from bench import two_pass_labeled
from conftest import pseudoseg_options
from conftest import train_options
from core.method import pseudoseg
from core.train import loop
from core.train import model_deploy
from deeplab import common
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf

BATCH, SIZE, NUM_CLASSES = 2, 33, 6
MODEL_VARIANT = 'mobilenet_v2'
RTOL = 1e-5


def _batches():
  """Placeholders of the labeled and unlabeled batch, named by key."""
  shapes = {common.IMAGE: [BATCH, SIZE, SIZE, 3],
            common.STRONG: [BATCH, SIZE, SIZE, 3],
            common.LABEL: [BATCH, SIZE, SIZE, 1],
            common.VALID: [BATCH, SIZE, SIZE, 1],
            common.CLS_LABEL: [BATCH, NUM_CLASSES - 1]}

  def batch(prefix, keys):
    return {key: tf.placeholder(
        tf.int32 if key in (common.LABEL, common.VALID) else tf.float32,
        shapes[key], name='%s_%s' % (prefix, key)) for key in keys}

  shared = [common.IMAGE, common.LABEL, common.VALID, common.CLS_LABEL]
  return (batch('labeled', shared),
          batch('unlabeled', shared + [common.STRONG]))


def _feed(graph):
  """The same random batch for every graph: placeholders sorted by name."""
  rng = np.random.RandomState(0)
  placeholders = sorted((op for op in graph.get_operations()
                         if op.type == 'Placeholder'), key=lambda op: op.name)
  feed = {}
  for op in placeholders:
    shape = op.outputs[0].shape.as_list()
    key = op.name.split('_', 1)[1]
    if key == common.VALID:
      value = np.ones(shape, np.int32)
      value[:, :, -5:] = 0  # padding on the right
    elif key == common.LABEL:
      value = rng.randint(0, NUM_CLASSES, shape)
    elif key == common.CLS_LABEL:
      value = rng.randint(0, 2, shape).astype(np.float32)
    else:
      value = rng.uniform(0, 255, shape)
    feed[op.outputs[0]] = value
  return feed


def _build(labeled_passes):
  """(graph, train op, {loss name: tensor}) of one clone of train_wss with
  `labeled_passes` in place of the shared one."""
  graph = tf.Graph()
  model_options = common.ModelOptions(
      {common.OUTPUT_TYPE: NUM_CLASSES}, crop_size=[SIZE, SIZE],
      atrous_rates=[6, 12, 18], output_stride=16, decoder_output_stride=[4],
      model_variant=MODEL_VARIANT)
  options = pseudoseg_options(model_options)

  def build_clone(unused_index):
    labeled, unlabeled = _batches()
    pseudoseg.build_clone(labeled, unlabeled, options, NUM_CLASSES, 255,
                          monitor=False)

  with graph.as_default(), pytest.MonkeyPatch.context() as patch:
    patch.setattr(pseudoseg, 'labeled_passes', labeled_passes)
    patch.setattr(slim, 'dropout', lambda inputs, *args, **kwargs: inputs)
    train_op, _ = loop.build_graph(model_deploy.DeploymentConfig(num_clones=1,
                                                             clone_on_cpu=True),
                                   train_options('unused', 10), build_clone)
    _without_races(graph)
    losses = {l.op.name: l for l in tf.losses.get_losses()}
    losses['total'] = train_op.total_loss
  return graph, train_op, losses


def _without_races(graph):
  """Orders the step's writes after the reads they race with in train_wss.

  The batch-norm updates wait for pass 2's inference batch norms, the only
  other readers of the moving statistics (docs/DESIGN.md §Quirks 3), and
  every weight update waits for all gradients: a TF1 variable can otherwise
  be updated while a backward pass still reads it, which the two-pass graph,
  with its two backbone backward passes, does often enough to move the
  gradients by 1e-4.
  """
  statistics = {v.op for v in _moving_statistics(graph)}
  batch_norm_reads = [op for op in graph.get_operations()
                      if op.type in ('FusedBatchNorm', 'FusedBatchNormV3') and
                      not op.get_attr('is_training')]
  assert batch_norm_reads
  for update in graph.get_collection(tf.GraphKeys.UPDATE_OPS):
    assert update.op.inputs[0].op in statistics
    # No public API adds a control input to an op already built.
    update.op._add_control_inputs(batch_norm_reads)
  applies = [op for op in graph.get_operations() if op.type == 'ApplyMomentum']
  gradients = [op.inputs[3].op for op in applies]
  assert applies
  for apply in applies:
    apply._add_control_inputs(gradients)


# Grappler may fuse an inference batch norm into its convolution, and the
# reads would no longer wait for anything.
_WITHOUT_GRAPPLER = tf.ConfigProto(graph_options=tf.GraphOptions(
    rewrite_options=rewriter_config_pb2.RewriterConfig(
        disable_meta_optimizer=True)))


def _moving_statistics(graph):
  with graph.as_default():
    return [v for v in tf.global_variables() if 'moving_' in v.op.name]


def _start_checkpoint(graph, path):
  """Initialises `graph` with moving statistics far from any batch's and
  saves it to `path`."""
  rng = np.random.RandomState(1)
  with graph.as_default(), tf.Session(config=_WITHOUT_GRAPPLER) as session:
    feed = {}
    for variable in _moving_statistics(graph):
      low = 0.5 if 'variance' in variable.op.name else -2.0
      feed[variable.initial_value] = rng.uniform(
          low, 2.0, variable.shape.as_list())
    session.run(tf.global_variables_initializer(), feed)
    tf.train.Saver().save(session, path)


def _one_step(graph, train_op, losses, checkpoint):
  """Losses (a run without updates), then every global variable after one
  training step, by name."""
  with graph.as_default(), tf.Session(config=_WITHOUT_GRAPPLER) as session:
    tf.train.Saver().restore(session, checkpoint)
    feed = _feed(graph)
    loss_values = session.run(losses, feed)
    session.run(train_op.train_tensor, feed)
    variables = {v.op.name: v for v in tf.global_variables()}
    after = dict(zip(variables, session.run(list(variables.values()))))
  return loss_values, after


@pytest.fixture(scope='module')
def both_graphs(tmp_path_factory):
  """One step of the shared and of the two-pass graph from one checkpoint:
  {'shared': ..., 'two_pass': ...} of (losses, variables after), the start
  checkpoint's values, and the built graphs."""
  checkpoint = str(tmp_path_factory.mktemp('start') / 'model.ckpt')
  built = {'shared': _build(pseudoseg.labeled_passes),
           'two_pass': _build(two_pass_labeled.labeled_passes)}
  _start_checkpoint(built['shared'][0], checkpoint)
  start = {name: tf.train.load_variable(checkpoint, name) for name, _ in
           tf.train.list_variables(checkpoint)}
  steps = {name: _one_step(*parts, checkpoint)
           for name, parts in built.items()}
  return steps, start, built


def test_the_shared_graph_has_one_backbone_fewer(both_graphs):
  """Same variables; the two-pass graph builds one more training-mode
  backbone (its batch norms and update ops)."""
  _, _, built = both_graphs

  def batch_norms(graph):
    return [op for op in graph.get_operations()
            if op.type in ('FusedBatchNorm', 'FusedBatchNormV3')]

  def names(graph):
    with graph.as_default():
      return sorted((v.op.name, tuple(v.shape.as_list()))
                    for v in tf.global_variables())

  shared, two_pass = built['shared'][0], built['two_pass'][0]
  assert names(shared) == names(two_pass)
  backbone_norms = len([op for op in batch_norms(two_pass)
                        if op.name.startswith('seg_data_cls/MobilenetV2/')])
  assert backbone_norms > 30
  assert (len(batch_norms(two_pass)) - len(batch_norms(shared)) ==
          backbone_norms)


def test_losses_are_equal(both_graphs):
  steps, _, _ = both_graphs
  shared, two_pass = steps['shared'][0], steps['two_pass'][0]
  assert sorted(shared) == sorted(two_pass) == sorted([
      'loss_cls', 'loss_consistency', 'self-attention_self-attention_logits/'
      'loss', 'semantic_merged_logits/loss', 'total'])
  for name in shared:
    assert shared[name] == pytest.approx(two_pass[name], rel=RTOL), name


def _largest(values):
  return max(np.abs(v).max() for v in values)


def _is_slot(name):
  return name.endswith('/Momentum')


def test_gradients_are_equal(both_graphs):
  """The step's gradients: the momentum slots, zero before the step, hold
  them after it. Per variable, the difference is within 1e-4 of the
  gradient's norm plus float noise, 1e-6 of the largest gradient entry (the
  backbone's gradient sums its two heads' in another order)."""
  steps, start, _ = both_graphs
  shared, two_pass = steps['shared'][1], steps['two_pass'][1]
  slots = [name for name in two_pass if _is_slot(name)]
  assert len(slots) > 100 and not any(start[name].any() for name in slots)
  noise = 1e-6 * _largest(two_pass[name] for name in slots)
  for name in slots:
    difference = np.linalg.norm(shared[name] - two_pass[name])
    assert difference <= 1e-4 * np.linalg.norm(two_pass[name]) + noise, name
  assert np.abs(shared['MobilenetV2/Conv/weights/Momentum']).max() > (
      1000 * noise)


def test_every_variable_after_a_step_is_equal(both_graphs):
  """Weights and moving statistics to 1e-5 relative, near zero to 1e-5 of
  the largest value. The moving statistics moved far more than that: one
  update of decay d in place of the two passes' d^2 would fail."""
  steps, start, _ = both_graphs
  shared, two_pass = steps['shared'][1], steps['two_pass'][1]
  assert sorted(shared) == sorted(two_pass)
  kept = [name for name in two_pass if not _is_slot(name)]
  scale = _largest(two_pass[name] for name in kept)
  for name in kept:
    np.testing.assert_allclose(shared[name], two_pass[name], rtol=RTOL,
                               atol=RTOL * scale, err_msg=name)
  moves = {name: np.abs(shared[name] - start[name]).max()
           for name in shared if 'moving_' in name}
  assert len(moves) > 100
  assert min(moves.values()) > 10 * RTOL * scale
