"""--tf_initial_checkpoint: an ImageNet-style checkpoint with a 1001-way head."""
import os

import numpy as np
import pytest

from core.train import loop
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf

VARIANT = 'mobilenet_v2'
HEAD = 'MobilenetV2/logits'
NUM_CLASSES = 6  # The model's classification head predicts 5 classes.


def _options():
  return common.ModelOptions({common.OUTPUT_TYPE: NUM_CLASSES},
                             crop_size=[33, 33], model_variant=VARIANT)


def _build(num_head_classes):
  """Backbone + segmentation head + classification head (num_head_classes)."""
  images = tf.zeros([1, 33, 33, 3])
  model.multi_scale_logits(images, _options(), image_pyramid=None,
                           is_training=False)
  model.classification_logits(images, _options(), num_head_classes)
  return tf.train.get_or_create_global_step()


def _values(sess):
  """name -> value of every global variable, read in one run."""
  return sess.run({v.op.name: v for v in tf.global_variables()})


@pytest.fixture(scope='module')
def imagenet_like_checkpoint(tmp_path_factory):
  """A checkpoint whose classification head is 1001-way; returns (prefix,
  name -> value)."""
  directory = str(tmp_path_factory.mktemp('imagenet'))
  with tf.Graph().as_default():
    _build(1001)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      rng = np.random.RandomState(0)
      # Every float variable loaded in one run, as Variable.load does it
      # (one run per variable, each with its own executor, took seconds).
      floats = [v for v in tf.global_variables()
                if v.dtype.base_dtype == tf.float32]
      sess.run([v.initializer for v in floats], {
          v.initializer.inputs[1]: rng.uniform(1, 2, v.shape.as_list())
          for v in floats})
      values = _values(sess)
      prefix = tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'))
  assert values[HEAD + '/weights'].shape[-1] == 1001
  return prefix, values


@pytest.mark.parametrize('initialize_last_layer', [True, False])
def test_the_1001_way_head_is_never_restored(imagenet_like_checkpoint,
                                             tmp_path, initialize_last_layer):
  """Regression: with initialize_last_layer=True the head used to be restored
  and the shape mismatch stopped train_sup --weakly / train_wss."""
  prefix, saved = imagenet_like_checkpoint
  with tf.Graph().as_default():
    _build(NUM_CLASSES - 1)
    init_fn = loop.initial_checkpoint_init_fn(
        str(tmp_path), prefix, initialize_last_layer,
        model.get_extra_layer_scopes(False), VARIANT)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      fresh_head = sess.run(HEAD + '/weights:0')
      init_fn(sess)
      restored = _values(sess)
  backbone = [n for n in saved if n.startswith('MobilenetV2/') and
              not n.startswith(HEAD)]
  assert len(backbone) > 200
  for name in backbone:
    np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)
  np.testing.assert_array_equal(restored[HEAD + '/weights'], fresh_head)
  segmentation_head = 'logits/semantic/weights'
  assert np.array_equal(restored[segmentation_head],
                        saved[segmentation_head]) == initialize_last_layer
