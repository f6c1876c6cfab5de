"""Tests of deeplab/model.py, deeplab/mobilenet_v2.py and feature_extractor."""

import os
import numpy as np
import pytest

from deeplab import common
from deeplab import feature_extractor
from deeplab import mobilenet_v2
from deeplab import model
from conftest import REPO_ROOT
from deeplab.tf_compat import tf
from utils.errors import InputError

REFERENCE_VARIABLES = os.path.join(
    REPO_ROOT, 'tests', 'fixtures', 'xception_65_deeplabv3plus_variables.tsv')
SEMANTIC = common.OUTPUT_TYPE


def deeplab_options(num_classes, crop, output_stride=16, decoder=(4,),
                    variant='xception_65', **overrides):
  return common.ModelOptions(
      {SEMANTIC: num_classes}, crop_size=[crop, crop],
      atrous_rates=[6, 12, 18] if output_stride == 16 else [12, 24, 36],
      output_stride=output_stride, model_variant=variant,
      decoder_output_stride=list(decoder) if decoder else None, **overrides)


def random_images(batch, size, seed=0):
  rng = np.random.RandomState(seed)
  return tf.constant(rng.uniform(0, 255, [batch, size, size, 3]),
                     dtype=tf.float32)


def regularised_variable(loss):
  """Name of the variable an L2 loss tensor reads (loss names carry the name
  scope of the call, e.g. `xception_65_1/...`, not the variable's)."""
  pending = [loss.op]
  while pending:
    op = pending.pop()
    if op.type in ('VariableV2', 'VarHandleOp'):
      return op.name
    pending.extend(t.op for t in op.inputs)
  raise AssertionError('no variable behind %s' % loss.name)


def variables_by_name():
  return {v.op.name: tuple(v.shape.as_list()) for v in tf.global_variables()}


@pytest.fixture(scope='module')
def deeplab_513():
  """DeepLabv3+ Xception-65 training graph at crop 513 (never run).

  Then the classification head is added to the same graph.
  """
  graph = tf.Graph()
  with graph.as_default():
    images = tf.zeros([2, 513, 513, 3])
    options = deeplab_options(21, 513)
    outputs, end_points = model.multi_scale_logits(
        images, options, image_pyramid=None, is_training=True,
        fine_tune_batch_norm=True, return_end_points=True)
    seg_variables = variables_by_name()
    cls_logits, cls_end_points = model.classification_logits(
        images, options, 20, is_training=True, fine_tune_batch_norm=True)
    all_variables = variables_by_name()
    os8_outputs, os8_end_points = model.multi_scale_logits(
        images, deeplab_options(21, 513, output_stride=8), image_pyramid=None,
        return_end_points=True)
  return dict(graph=graph, outputs=outputs, end_points=end_points,
              seg_variables=seg_variables, cls_logits=cls_logits,
              cls_end_points=cls_end_points, all_variables=all_variables,
              os8_outputs=os8_outputs, os8_end_points=os8_end_points)


def test_variables_match_deeplab_checkpoint_list_exactly(deeplab_513):
  reference = {}
  with open(REFERENCE_VARIABLES) as f:
    for line in f:
      name, shape = line.rstrip('\n').split('\t')
      reference[name] = tuple(int(d) for d in shape.split(','))
  assert len(reference) == 732
  got = deeplab_513['seg_variables']
  assert sorted(set(reference) - set(got)) == []
  assert sorted(set(got) - set(reference)) == []
  assert {n: (got[n], s) for n, s in reference.items() if got[n] != s} == {}


def test_classification_head_shares_backbone_variables(deeplab_513):
  new = set(deeplab_513['all_variables']) - set(deeplab_513['seg_variables'])
  assert new == {'xception_65/logits/weights', 'xception_65/logits/biases'}
  assert deeplab_513['all_variables']['xception_65/logits/weights'] == (
      1, 1, 2048, 20)
  assert deeplab_513['cls_logits'].shape.as_list() == [2, 20]
  assert deeplab_513['cls_end_points']['global_pool'].shape.as_list() == [
      2, 1, 1, 2048]


def test_static_shapes_at_crop_513(deeplab_513):
  for prefix, feature_size in (('', 33), ('os8_', 65)):
    outputs = deeplab_513[prefix + 'outputs']
    assert list(outputs) == [SEMANTIC]
    assert list(outputs[SEMANTIC]) == [model.MERGED_LOGITS_SCOPE]
    # The decoder (stride 4) fixes the logits size at both output strides.
    assert outputs[SEMANTIC][model.MERGED_LOGITS_SCOPE].shape.as_list() == [
        2, 129, 129, 21]
    assert deeplab_513[prefix + 'end_points'][
        'xception_65/exit_flow/block2'].shape.as_list() == [
            2, feature_size, feature_size, 2048]


def test_aspp_and_decoder_wiring_at_crop_513(deeplab_513):
  graph = deeplab_513['graph']
  pools = [op for op in graph.get_operations() if op.type == 'AvgPool']
  # Image pooling window = scale_dimension(513, 1/OS): 33 at OS 16, 65 at 8.
  assert [op.get_attr('ksize') for op in pools] == [[1, 33, 33, 1],
                                                    [1, 65, 65, 1]]
  assert [op.get_attr('strides') for op in pools] == [[1, 1, 1, 1]] * 2
  projection = graph.get_operation_by_name(
      'decoder/feature_projection0/Conv2D')
  low_level, = feature_extractor.decoder_end_point_names('xception_65', 4)
  assert projection.inputs[0] is deeplab_513['end_points'][low_level]
  dropouts = [op.name for op in graph.get_operations()
              if op.name.startswith('concat_projection_dropout/') and
              op.type == 'RandomUniform']
  assert dropouts  # keep_prob 0.9 dropout is built in training mode.


def test_regularisation_covers_head_but_not_depthwise(deeplab_513):
  with deeplab_513['graph'].as_default():
    regularised = {regularised_variable(loss).rsplit('/', 1)[0]
                   for loss in tf.losses.get_regularization_losses()}
  head = {'image_pooling', 'aspp0', 'aspp1_pointwise', 'aspp2_pointwise',
          'aspp3_pointwise', 'concat_projection',
          'decoder/feature_projection0', 'decoder/decoder_conv0_pointwise',
          'decoder/decoder_conv1_pointwise', 'logits/semantic',
          'xception_65/logits'}
  assert regularised >= head
  assert not any('depthwise' in name for name in regularised)
  # 69 backbone convs + 10 head convs + the classification logits.
  assert len(regularised) == 80


def test_scale_dimension_and_extra_layer_scopes():
  assert [model.scale_dimension(513, 1.0 / 16),
          model.scale_dimension(513, 0.25),
          model.scale_dimension(641, 1.0 / 16),
          model.scale_dimension(641, 0.25),
          model.scale_dimension(65, 0.5)] == [33, 129, 41, 161, 33]
  with tf.Graph().as_default():
    with tf.Session() as sess:
      assert sess.run(model.scale_dimension(tf.constant(513), 0.25)) == 129
  assert model.get_extra_layer_scopes(True) == ['logits']
  assert model.get_extra_layer_scopes() == [
      'logits', 'image_pooling', 'aspp', 'concat_projection', 'decoder',
      'meta_architecture'
  ]


@pytest.fixture(scope='module')
def xception_small():
  """Xception-65 eval graphs at crops 65/129, OS 8/16, with and without decoder.

  All calls share one set of variables (AUTO_REUSE).
  """
  cases = [(65, 16, None), (65, 8, None), (129, 16, None), (129, 8, None),
           (65, 16, (4,)), (129, 8, (4,))]
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1)
    images = {65: random_images(1, 65), 129: random_images(1, 129)}
    logits = {}
    for crop, output_stride, decoder in cases:
      options = deeplab_options(3, crop, output_stride, decoder)
      logits[(crop, output_stride, decoder)] = model.multi_scale_logits(
          images[crop], options, None)[SEMANTIC][model.MERGED_LOGITS_SCOPE]
    num_variables = len(tf.global_variables())
    train_logits = model.multi_scale_logits(
        images[65], deeplab_options(3, 65, 16, (4,)), None,
        is_training=True)[SEMANTIC][model.MERGED_LOGITS_SCOPE]
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
  yield dict(graph=graph, sess=sess, logits=logits, train_logits=train_logits,
             num_variables=num_variables)
  sess.close()


def test_output_shapes_at_small_crops(xception_small):
  expected = {(65, 16, None): 5, (65, 8, None): 9, (129, 16, None): 9,
              (129, 8, None): 17, (65, 16, (4,)): 17, (129, 8, (4,)): 33}
  values = xception_small['sess'].run(xception_small['logits'])
  for case, size in expected.items():
    assert values[case].shape == (1, size, size, 3), case
    assert np.all(np.isfinite(values[case]))
  # One set of variables for all builds: backbone + ASPP + decoder + logits.
  assert xception_small['num_variables'] == 732


def test_eval_forward_is_deterministic_and_training_uses_dropout(
    xception_small):
  sess = xception_small['sess']
  logits = xception_small['logits'][(65, 16, (4,))]
  first, second = sess.run(logits), sess.run(logits)
  np.testing.assert_array_equal(first, second)
  train_a = sess.run(xception_small['train_logits'])
  train_b = sess.run(xception_small['train_logits'])
  # fine_tune_batch_norm=False: BN uses moving statistics, only the ASPP
  # dropout (keep 0.9) differs between runs.
  assert np.abs(train_a - train_b).max() > 1e-3 * np.abs(train_a).max()


def test_image_pooling_branch_is_spatially_constant():
  with tf.Graph().as_default():
    features = random_images(2, 5) / 255.0
    options = deeplab_options(3, 65)
    branch = model._image_pooling_branch(features, options, 4)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(branch)
  assert values.shape == (2, 5, 5, 4)
  np.testing.assert_allclose(values, np.broadcast_to(values[:, :1, :1],
                                                     values.shape), atol=1e-6)


@pytest.fixture(scope='module')
def mobilenet_graph():
  """MobileNet-v2 DeepLabv3+ at crop 65: segmentation, classification,
  single/multi-scale predictions, sharing variables."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(2)
    images = random_images(2, 65, seed=3)
    options = deeplab_options(4, 65, variant='mobilenet_v2')
    outputs, end_points = model.multi_scale_logits(
        images, options, None, return_end_points=True)
    seg_variables = variables_by_name()
    cls_logits, cls_end_points = model.classification_logits(images, options, 3)
    cls_variables = variables_by_name()
    predictions = {
        'single': model.predict_labels(images, options),
        'multi_flip': model.predict_labels_multi_scale(images, options,
                                                       [0.5, 1.0], True),
    }
    final_variables = variables_by_name()
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
  yield dict(sess=sess, outputs=outputs, end_points=end_points,
             seg_variables=seg_variables, cls_logits=cls_logits,
             cls_end_points=cls_end_points, cls_variables=cls_variables,
             predictions=predictions, final_variables=final_variables)
  sess.close()


def test_mobilenet_v2_runs_at_crop_65(mobilenet_graph):
  variables = mobilenet_graph['seg_variables']
  assert variables['MobilenetV2/Conv/weights'] == (3, 3, 3, 32)
  assert variables['MobilenetV2/expanded_conv/depthwise/depthwise_weights'] == (
      3, 3, 32, 1)
  assert 'MobilenetV2/expanded_conv/expand/weights' not in variables
  assert variables['MobilenetV2/expanded_conv_1/expand/weights'] == (1, 1, 16,
                                                                     96)
  assert variables['MobilenetV2/expanded_conv_16/project/weights'] == (
      1, 1, 960, 320)
  assert variables['MobilenetV2/expanded_conv_16/project/BatchNorm/gamma'] == (
      320,)
  assert not any(name.startswith('MobilenetV2/expanded_conv_17')
                 for name in variables)
  assert variables['decoder/feature_projection0/weights'] == (1, 1, 144, 48)
  end_points = mobilenet_graph['end_points']
  assert end_points['MobilenetV2/layer_4/depthwise_output'].shape.as_list() == [
      2, 17, 17, 144]
  for key, size, depth in ((15, 5, 160), (16, 5, 320), (4, 17, 24)):
    name = feature_extractor.HYPERCOLUMN_END_POINTS['mobilenet_v2'][key]
    assert end_points[name].shape.as_list() == [2, size, size, depth]
  logits = mobilenet_graph['sess'].run(
      mobilenet_graph['outputs'][SEMANTIC][model.MERGED_LOGITS_SCOPE])
  assert logits.shape == (2, 17, 17, 4)
  assert np.all(np.isfinite(logits)) and np.std(logits) > 0


def test_mobilenet_classification_logits_are_pooled_linear_head(
    mobilenet_graph):
  assert set(mobilenet_graph['cls_variables']) - set(
      mobilenet_graph['seg_variables']) == {'MobilenetV2/logits/weights',
                                            'MobilenetV2/logits/biases'}
  assert mobilenet_graph['final_variables'] == mobilenet_graph['cls_variables']
  end_points = mobilenet_graph['cls_end_points']
  sess = mobilenet_graph['sess']
  with sess.graph.as_default():
    weights, biases = [v for v in tf.global_variables()
                       if v.op.name.startswith('MobilenetV2/logits/')]
  feature_name = feature_extractor.CLASSIFIER_FEATURE_END_POINT[
      'mobilenet_v2']
  feature, logits, w, b = sess.run([
      end_points[feature_name], mobilenet_graph['cls_logits'], weights, biases
  ])
  # Eval mode: no dropout, logits = mean_hw(feature) . W + b.
  expected = feature.mean(axis=(1, 2)) @ w[0, 0] + b
  # Untrained features are tiny: compare relative to their magnitude.
  np.testing.assert_allclose(logits, expected,
                             atol=1e-4 * np.abs(expected).max())
  assert np.abs(expected).max() > 0


def test_predictions_of_the_real_network(mobilenet_graph):
  values = mobilenet_graph['sess'].run(mobilenet_graph['predictions'])
  for prediction in values.values():
    assert prediction[SEMANTIC].shape == (2, 65, 65)
    assert prediction[SEMANTIC].dtype == np.int64
    probs = prediction[SEMANTIC + '_prob']
    assert probs.shape == (2, 65, 65, 4)
    np.testing.assert_allclose(probs.sum(axis=3), 1.0, rtol=1e-5)


def fake_get_logits(images, model_options, weight_decay, is_training,
                    fine_tune_batch_norm, backbone=None):
  """Stand-in for the network: a fixed linear map of the stride-4 image plus
  a left-to-right ramp on class 0 (so flipping changes the result).

  Its logits vary strongly across pixels (unlike an untrained network whose
  logits are ~1e-7), so the averaging arithmetic is tested on real values.
  """
  del weight_decay, is_training, fine_tune_batch_norm, backbone
  size = [model.scale_dimension(d, 0.25) for d in model_options.crop_size]
  small = tf.image.resize_bilinear(images, size, align_corners=True)
  mixing = tf.constant([[1., 0., -1., 2.], [0., 1., 1., -2.],
                        [-1., 2., 0., 1.]]) / 40.0
  ramp = tf.linspace(0.0, 4.0, size[1])[tf.newaxis, tf.newaxis, :, tf.newaxis]
  logits = tf.einsum('nhwc,ck->nhwk', small, mixing) + ramp * tf.constant(
      [1.0, 0.0, 0.0, 0.0])
  return {SEMANTIC: logits}, {}


def test_multi_scale_and_flip_average_probabilities(monkeypatch):
  monkeypatch.setattr(model, '_get_logits', fake_get_logits)
  with tf.Graph().as_default():
    images = random_images(2, 33, seed=4)
    options = deeplab_options(4, 33, variant='mobilenet_v2')
    graphs = {
        'single': model.predict_labels(images, options),
        'multi_1': model.predict_labels_multi_scale(images, options, [1.0]),
        'on_flipped': model.predict_labels(tf.reverse(images, [2]), options),
        'flip_1': model.predict_labels_multi_scale(images, options, [1.0],
                                                   True),
        'flip_half': model.predict_labels_multi_scale(images, options, [0.5],
                                                      True),
        'flip_both': model.predict_labels_multi_scale(images, options,
                                                      [0.5, 1.0], True),
    }
    with tf.Session() as sess:
      values = sess.run(graphs)
  prob = lambda name: values[name][SEMANTIC + '_prob']
  assert prob('single').shape == (2, 33, 33, 4)
  assert prob('single').max() - prob('single').min() > 0.2
  for prediction in values.values():
    np.testing.assert_array_equal(prediction[SEMANTIC],
                                  prediction[SEMANTIC + '_prob'].argmax(3))
  np.testing.assert_allclose(prob('multi_1'), prob('single'), atol=1e-6)
  # Flip: average with the flipped-back prediction on the flipped images.
  np.testing.assert_allclose(
      prob('flip_1'), (prob('single') + prob('on_flipped')[:, :, ::-1]) / 2,
      atol=1e-6)
  assert np.abs(prob('flip_1') - prob('single')).max() > 1e-2
  np.testing.assert_allclose(prob('flip_both'),
                             (prob('flip_half') + prob('flip_1')) / 2,
                             atol=1e-6)
  assert np.abs(prob('flip_half') - prob('flip_1')).max() > 1e-3


def test_predict_labels_with_unknown_crop_size():
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [1, None, None, 3])
    options = common.ModelOptions(
        {SEMANTIC: 3}, crop_size=None, atrous_rates=[6, 12, 18],
        output_stride=16, model_variant='mobilenet_v2',
        decoder_output_stride=[4])
    predictions = model.predict_labels(images, options)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(predictions, {images: np.full([1, 33, 45, 3], 9.0)})
  assert values[SEMANTIC].shape == (1, 33, 45)
  assert values[SEMANTIC + '_prob'].shape == (1, 33, 45, 3)
  np.testing.assert_allclose(values[SEMANTIC + '_prob'].sum(3), 1.0,
                             rtol=1e-5)


def test_multi_scale_logits_merge_scales():
  with tf.Graph().as_default():
    images = random_images(1, 33)
    options = deeplab_options(2, 33, variant='mobilenet_v2', decoder=None,
                              merge_method='avg')
    scales = model.multi_scale_logits(images, options, [0.5, 1.0])[SEMANTIC]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(scales)
  assert sorted(values) == ['logits_0.50', 'logits_1.00', 'merged_logits']
  # Logits of every scale are resized to scale_dimension(33, 1/16) = 3.
  assert {v.shape for v in values.values()} == {(1, 3, 3, 2)}
  mean = (values['logits_0.50'] + values['logits_1.00']) / 2
  # Untrained logits are tiny: compare relative to their magnitude.
  np.testing.assert_allclose(values['merged_logits'], mean,
                             atol=1e-5 * np.abs(mean).max())
  assert np.abs(values['logits_0.50'] - values['logits_1.00']).max() > (
      1e-2 * np.abs(mean).max())


def test_mobilenet_output_stride_and_final_endpoint():
  with tf.Graph().as_default() as graph:
    images = tf.zeros([1, 65, 65, 3])
    features, end_points = feature_extractor.extract_features(
        images, output_stride=8, model_variant='mobilenet_v2')
    truncated, _ = feature_extractor.extract_features(
        images, output_stride=16, final_endpoint='layer_4',
        model_variant='mobilenet_v2', reuse=True)
  assert features.shape.as_list() == [1, 9, 9, 320]
  assert end_points['MobilenetV2/layer_7'].shape.as_list() == [1, 9, 9, 32]
  assert truncated.shape.as_list() == [1, 17, 17, 24]
  # expanded_conv_6 loses its stride (rate 1), later layers run at rate 2,
  # and after expanded_conv_13 (stride 2 -> rate 2 itself) at rate 4.
  rates = {op.name.split('/')[1]: tf.get_static_value(op.inputs[1]).tolist()
           for op in graph.get_operations()
           if op.type == 'SpaceToBatchND' and
           op.name.startswith('MobilenetV2/')}
  assert rates == dict(
      [('expanded_conv_%d' % i, [2, 2]) for i in range(7, 14)] +
      [('expanded_conv_%d' % i, [4, 4]) for i in range(14, 17)])


def test_make_divisible_and_depth_multiplier():
  assert [mobilenet_v2.make_divisible(v, 8) for v in (16, 5.6, 18, 36, 320)
         ] == [16, 8, 24, 40, 320]
  with tf.Graph().as_default():
    features, _ = feature_extractor.extract_features(
        tf.zeros([1, 33, 33, 3]), output_stride=32, depth_multiplier=0.5,
        model_variant='mobilenet_v2')
  assert features.shape.as_list() == [1, 2, 2, 160]


def test_bad_model_options_are_input_errors():
  with tf.Graph().as_default():
    images = tf.zeros([1, 33, 33, 3])
    with pytest.raises(InputError, match='decoder_output_stride'):
      model.multi_scale_logits(images, deeplab_options(2, 33, decoder=(2,)),
                               None)
    with pytest.raises(InputError, match='nas_training_hyper_parameters'):
      model.multi_scale_logits(images, deeplab_options(2, 33), None,
                               nas_training_hyper_parameters={})
    with pytest.raises(InputError, match='final_endpoint'):
      feature_extractor.extract_features(images, 16, final_endpoint='layer_19',
                                         model_variant='mobilenet_v2')
