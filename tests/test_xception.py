"""Tests of deeplab/xception.py (and the Xception side of feature_extractor)."""
import os

import numpy as np
import pytest

from deeplab import feature_extractor
from deeplab import xception
from deeplab.tf_compat import slim
from conftest import REPO_ROOT
from deeplab.tf_compat import tf
from utils.errors import InputError

REFERENCE_DIR = os.path.join(REPO_ROOT, 'tests', 'fixtures')
# Nominal unit strides of Xception-65: entry (3), middle (16), exit (2).
XCEPTION_65_UNIT_STRIDES = [2, 2, 2] + [1] * 16 + [2, 1]


def read_reference_tsv(name):
  """{name: shape tuple} of one reference TSV (`name<TAB>d1,d2,...`)."""
  rows = {}
  with open(os.path.join(REFERENCE_DIR, name)) as f:
    for line in f:
      key, shape = line.rstrip('\n').split('\t')
      assert key not in rows, 'duplicate reference row %s' % key
      rows[key] = tuple(int(d) for d in shape.split(','))
  return rows


def separable_conv_graph(inputs, stride, rate):
  """A 1-channel separable conv with an all-ones 3x3 kernel, no BN/act."""
  with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                      weights_initializer=tf.ones_initializer(),
                      normalizer_fn=None):
    return xception.separable_conv2d_same(
        tf.constant(inputs), 1, stride=stride, rate=rate,
        activation_fn_in_separable_conv=True, activation_fn=tf.identity,
        scope='conv')


def run(fetches):
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    return sess.run(fetches)


@pytest.fixture(scope='module')
def end_points_513():
  """Xception-65 at batch 1, crop 513, global pool + 20 classes (not run)."""
  with tf.Graph().as_default():
    images = tf.zeros([1, 513, 513, 3])
    _, end_points = feature_extractor.extract_features(
        images, output_stride=16, model_variant='xception_65',
        num_classes=20, global_pool=True)
    return {name: tuple(t.shape.as_list()) for name, t in end_points.items()}


def test_end_points_match_reference_exactly(end_points_513):
  reference = read_reference_tsv('xception_65_end_points.tsv')
  assert len(reference) == 162
  assert sorted(set(reference) - set(end_points_513)) == []
  assert sorted(set(end_points_513) - set(reference)) == []
  mismatches = {name: (end_points_513[name], shape)
                for name, shape in reference.items()
                if end_points_513[name] != shape}
  assert mismatches == {}


def test_named_end_points_exist_with_expected_shapes(end_points_513):
  strides_to_names = feature_extractor.HYPERCOLUMN_END_POINTS['xception_65']
  channels = {4: 128, 8: 256, 13: 728, 14: 728, 15: 1024, 16: 2048}
  sizes = {4: 129, 8: 65, 13: 33, 14: 33, 15: 33, 16: 33}
  for key, name in strides_to_names.items():
    assert end_points_513[name] == (1, sizes[key], sizes[key], channels[key])
  decoder = feature_extractor.decoder_end_point_names('xception_65', 4)
  assert decoder == [
      'xception_65/entry_flow/block2/unit_1/xception_module/'
      'separable_conv2_pointwise'
  ]
  assert end_points_513[decoder[0]] == (1, 129, 129, 256)
  assert (feature_extractor.CLASSIFIER_FEATURE_END_POINT['xception_65'] ==
          'xception_65/exit_flow/block2')
  assert end_points_513[feature_extractor.LOGITS_END_POINT['xception_65']] == (
      1, 1, 1, 20)


def test_fixed_padding_splits_effective_kernel():
  with tf.Graph().as_default():
    ones = tf.ones([1, 2, 3, 1])
    padded = run([xception.fixed_padding(ones, 3),
                  xception.fixed_padding(ones, 3, rate=2),
                  xception.fixed_padding(ones, 4)])
  # k=3: 1 + 1; k=3, rate 2 -> k_eff 5: 2 + 2; k=4: 1 before, 2 after.
  assert [p.shape for p in padded] == [(1, 4, 5, 1), (1, 6, 7, 1),
                                       (1, 5, 6, 1)]
  np.testing.assert_array_equal(padded[0][0, :, :, 0],
                                [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0],
                                 [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(padded[2][0, :, 1, 0], [0, 1, 1, 0, 0])


def test_atrous_schedule_of_xception_65():
  schedule = xception.atrous_schedule(XCEPTION_65_UNIT_STRIDES, 16)
  # Entry flow strided (2 -> 16), middle flow plain, exit block1 loses its
  # stride (rate 1) and exit block2 runs at rate 2.
  assert schedule == [(2, 1)] * 3 + [(1, 1)] * 16 + [(1, 1), (1, 2)]
  schedule = xception.atrous_schedule(XCEPTION_65_UNIT_STRIDES, 8)
  assert schedule == [(2, 1), (2, 1), (1, 1)] + [(1, 2)] * 16 + [(1, 2),
                                                                  (1, 4)]
  all_strides = [(s, 1) for s in XCEPTION_65_UNIT_STRIDES]
  assert xception.atrous_schedule(XCEPTION_65_UNIT_STRIDES, 32) == all_strides
  assert xception.atrous_schedule(XCEPTION_65_UNIT_STRIDES,
                                  None) == all_strides


@pytest.mark.parametrize('output_stride', [1, 12, 64])
def test_unreachable_output_stride_is_an_input_error(output_stride):
  with pytest.raises(InputError, match='output_stride'):
    xception.atrous_schedule(XCEPTION_65_UNIT_STRIDES, output_stride)


def test_atrous_rate_dilates_the_depthwise_kernel():
  impulse = np.zeros([1, 9, 9, 1], np.float32)
  impulse[0, 4, 4, 0] = 1.0
  with tf.Graph().as_default():
    dilated = run(separable_conv_graph(impulse, stride=1, rate=2))[0, :, :, 0]
  # An all-ones 3x3 kernel at rate 2 spreads the impulse to offsets {-2,0,2}.
  expected = np.zeros([9, 9], np.float32)
  for dy in (-2, 0, 2):
    for dx in (-2, 0, 2):
      expected[4 + dy, 4 + dx] = 1.0
  np.testing.assert_array_equal(dilated, expected)


def test_strided_separable_conv_uses_fixed_padding():
  ramp = np.arange(25, dtype=np.float32).reshape([1, 5, 5, 1])
  with tf.Graph().as_default():
    out = run(separable_conv_graph(ramp, stride=2, rate=1))[0, :, :, 0]
  # Padding 1 on each side; 3x3 window sums centred on pixels 0, 2, 4.
  padded = np.pad(ramp[0, :, :, 0], 1)
  expected = np.array([[padded[r:r + 3, c:c + 3].sum() for c in (0, 2, 4)]
                       for r in (0, 2, 4)])
  np.testing.assert_array_equal(out, expected)


def _block_shapes(graph, scope):
  """Atrous block shapes (rates) of the depthwise convs under `scope`."""
  rates = {}
  for op in graph.get_operations():
    if op.name.startswith(scope) and op.type == 'SpaceToBatchND':
      conv = op.name.split('/')[-3]
      rates[conv] = tf.get_static_value(op.inputs[1]).tolist()
  return rates


def test_multi_grid_multiplies_rates_of_the_last_block():
  with tf.Graph().as_default() as graph:
    features, end_points = feature_extractor.extract_features(
        tf.zeros([1, 65, 65, 3]), output_stride=16, multi_grid=[1, 2, 4],
        model_variant='xception_41')
  assert features.shape.as_list() == [1, 5, 5, 2048]
  assert end_points['xception_41/middle_flow/block1'].shape.as_list() == [
      1, 5, 5, 728]
  assert 'xception_41/middle_flow/block1/unit_8/xception_module' in end_points
  assert 'xception_41/middle_flow/block1/unit_9/xception_module' not in (
      end_points)
  rates = _block_shapes(graph, 'xception_41/exit_flow/block2/')
  assert rates == {'separable_conv1_depthwise': [2, 2],
                   'separable_conv2_depthwise': [4, 4],
                   'separable_conv3_depthwise': [8, 8]}
  assert _block_shapes(graph, 'xception_41/exit_flow/block1/') == {}


def test_xception_71_entry_flow_and_decoder_end_points():
  with tf.Graph().as_default():
    features, end_points = feature_extractor.extract_features(
        tf.zeros([1, 65, 65, 3]), output_stride=8, model_variant='xception_71')
  assert features.shape.as_list() == [1, 9, 9, 2048]
  for stride in (4, 8):
    name, = feature_extractor.decoder_end_point_names('xception_71', stride)
    size = (65 - 1) // stride + 1
    assert end_points[name].shape.as_list()[1:3] == [size, size]
  for key, name in feature_extractor.HYPERCOLUMN_END_POINTS[
      'xception_71'].items():
    assert name in end_points, key


def test_regularisation_and_batch_norm_updates():
  with tf.Graph().as_default():
    feature_extractor.extract_features(
        tf.zeros([1, 33, 33, 3]), output_stride=16,
        model_variant='xception_41', is_training=True,
        fine_tune_batch_norm=True, num_classes=3, global_pool=True)
    regularised = [
        loss.op.name for loss in tf.losses.get_regularization_losses()
    ]
    num_batch_norms = len([v for v in tf.global_variables()
                           if v.op.name.endswith('BatchNorm/moving_mean')])
    num_updates = len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
  # conv1_1, conv1_2, 3 pointwise per module (3 + 8 + 2 modules), 4 shortcuts
  # and the logits; depthwise weights are not regularised.
  assert len(regularised) == 2 + 3 * 13 + 4 + 1
  assert not any('depthwise' in name for name in regularised)
  assert any(name.startswith('xception_41/logits/') for name in regularised)
  # Two moving-average updates (mean, variance) per batch norm.
  assert num_updates == 2 * num_batch_norms


def test_bounded_activation_uses_relu6_only():
  with tf.Graph().as_default() as graph:
    feature_extractor.extract_features(
        tf.zeros([1, 33, 33, 3]), output_stride=16,
        model_variant='xception_41', use_bounded_activation=True)
  types = [op.type for op in graph.get_operations()]
  assert 'Relu6' in types and 'Relu' not in types
  clips = [op.name for op in graph.get_operations()
           if op.type == 'Maximum' and 'clip_by_value' in op.name]
  # Residual and shortcut clipped in the 12 modules with a skip (3 entry,
  # 8 middle, 1 exit).
  assert len(clips) == 2 * 12


def test_bad_options_are_input_errors():
  with tf.Graph().as_default():
    images = tf.zeros([1, 33, 33, 3])
    with pytest.raises(InputError, match='multi_grid'):
      feature_extractor.extract_features(images, 16, multi_grid=[1, 2],
                                         model_variant='xception_41')
    with pytest.raises(InputError, match='model_variant'):
      feature_extractor.extract_features(images, 16, model_variant='resnet')
    with pytest.raises(InputError, match='final_endpoint'):
      feature_extractor.extract_features(images, 16, final_endpoint='layer_4',
                                         model_variant='xception_41')
  with pytest.raises(InputError, match='decoder_output_stride'):
    feature_extractor.decoder_end_point_names('xception_65', 8)


def test_preprocessing_and_mean_pixel():
  assert feature_extractor.mean_pixel('xception_65') == 127.5
  assert feature_extractor.mean_pixel('mobilenet_v2') == 127.5
  with pytest.raises(InputError):
    feature_extractor.mean_pixel(None)
  with tf.Graph().as_default():
    values = run(feature_extractor.preprocess_zero_mean_unit_range(
        tf.constant([0.0, 127.5, 255.0, 51.0])))
  np.testing.assert_allclose(values, [-1.0, 0.0, 1.0, -0.6], atol=1e-6)
