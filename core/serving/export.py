"""SavedModel export of the inference graph (export_model.py).

A SavedModel written by `export_saved_model` holds only the inference graph of
core/serving/inference.py (no training ops, no global step, no optimizer
slots) and the restored variables, with one signature:

  serving_default: images uint8 [N, H, W, 3]
                   -> classes int32 [N, H, W], probabilities float32
                      [N, H, W, C]

It loads with TensorFlow alone: `tf.saved_model.load(path)
.signatures['serving_default'](images=batch)`. `assets.extra/export_info.json`
records how it was made (dataset, classes, crop, scales, checkpoint).
"""
import json
import os
import shutil
import tempfile

from core.eval import checkpoints
from core.serving import inference
from deeplab.tf_compat import tf
from utils.errors import InputError

EXPORT_INFO_FILE = 'export_info.json'


def check_export_dir(export_dir, overwrite):
  """Raises InputError if `export_dir` may not be written."""
  if os.path.lexists(export_dir):
    if not overwrite:
      raise InputError('--export_dir %s already exists; pass --overwrite to '
                       'replace it, or choose a new folder' % export_dir)
    if not os.path.isdir(export_dir):
      raise InputError('--export_dir %s exists and is not a directory'
                       % export_dir)
  parent = os.path.dirname(os.path.abspath(export_dir))
  if not os.path.isdir(parent):
    raise InputError('the parent folder of --export_dir %s does not exist'
                     % export_dir)


def _replace_directory(source, target):
  """Moves the finished `source` folder to `target`, replacing any old one.

  The old folder is first renamed aside, so `target` is at every moment either
  the complete old export or the complete new one.
  """
  aside = None
  if os.path.lexists(target):
    aside = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)),
                             prefix='.%s.old-' % os.path.basename(target))
    aside = os.path.join(aside, 'old')
    os.rename(target, aside)
  try:
    os.rename(source, target)
  except BaseException:
    if aside is not None:
      os.rename(aside, target)
    raise
  if aside is not None:
    shutil.rmtree(os.path.dirname(aside))


def export_saved_model(checkpoint_path, export_dir, model_options, info,
                       eval_scales=(1.0,), add_flipped_images=False,
                       crop_size=None, image_pyramid=None, overwrite=False):
  """Writes the inference graph with the checkpoint's variables as a SavedModel.

  The SavedModel is built in a temporary folder next to `export_dir` and
  renamed into place when complete; an existing `export_dir` is an InputError
  unless `overwrite`.

  Args:
    checkpoint_path: checkpoint prefix (see checkpoint_paths.resolve_checkpoint).
    export_dir: folder to create.
    model_options: common.ModelOptions of the trained model.
    info: dict of JSON-serialisable facts stored as
      `assets.extra/export_info.json` (dataset, num_classes, ...).
    eval_scales, add_flipped_images, crop_size, image_pyramid: see
      `inference.build_inference`; baked into the graph.
    overwrite: replace an existing `export_dir`.

  Returns:
    The names of the model variables the checkpoint lacked (kept at their
    initial values; see checkpoints.restore_variables).
  """
  check_export_dir(export_dir, overwrite)
  staging = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(export_dir)),
                             prefix='.%s.tmp-' % os.path.basename(export_dir))
  try:
    saved_model_dir = os.path.join(staging, 'saved_model')
    with tf.Graph().as_default():
      images = inference.image_placeholder()
      # Resource variables: TF2's loader wraps them without complaint (one
      # warning per reference variable otherwise); same names and values.
      with tf.variable_scope(tf.get_variable_scope(), use_resource=True):
        outputs = inference.build_inference(images, model_options,
                                            eval_scales, add_flipped_images,
                                            crop_size, image_pyramid)
      with tf.Session() as sess:
        missing = checkpoints.restore_variables(sess, checkpoint_path)
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={inference.INPUT_KEY: images}, outputs=outputs)
        builder = tf.saved_model.Builder(saved_model_dir)
        builder.add_meta_graph_and_variables(
            sess, [tf.saved_model.tag_constants.SERVING],
            signature_def_map={inference.SIGNATURE_KEY: signature},
            strip_default_attrs=True)
        builder.save()
    extra = os.path.join(saved_model_dir, 'assets.extra')
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, EXPORT_INFO_FILE), 'w') as stream:
      json.dump(info, stream, indent=2, sort_keys=True)
      stream.write('\n')
    _replace_directory(saved_model_dir, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return missing


def read_export_info(saved_model_dir):
  """The export's `export_info.json` as a dict ({} when absent)."""
  path = os.path.join(saved_model_dir, 'assets.extra', EXPORT_INFO_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path) as stream:
    return json.load(stream)
