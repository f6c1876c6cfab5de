"""Training helpers: segmentation loss, learning rate, gradients, init.

Shapes use N = batch, H x W = label size, h x w = logits size, C = classes.
"""
import numbers

from absl import logging

from deeplab import resize
from deeplab.tf_compat import slim
from deeplab.tf_compat import tf
from utils import checkpoint_paths
from utils.errors import InputError

_LEARNING_POLICIES = ('poly', 'step')
# Names of variables never restored from an initial checkpoint (prefix match).
_NEVER_RESTORED = ('global_step',)
# At most this many variable names are spelled out in an error message.
_MAX_NAMES_IN_ERROR = 20


def _spatial_size(tensor):
  """[height, width] of a 4-D tensor: Python ints if static, else a tensor."""
  static = tensor.shape[1:3]
  if static.is_fully_defined():
    return static.as_list()
  return tf.shape(tensor)[1:3]


def _labels_to_4d(labels):
  """Labels as int32 [N, H, W, 1]; accepts [N, H, W] or [N, H, W, 1]."""
  rank = labels.shape.ndims
  if rank == 3:
    labels = tf.expand_dims(labels, axis=3)
  elif rank != 4:
    raise InputError('labels must be [N, H, W] or [N, H, W, 1], got shape %s'
                     % labels.shape)
  return tf.cast(labels, tf.int32)


def _pixel_weights(labels, num_classes, ignore_label, loss_weight):
  """Per-pixel loss weights and labels with the ignore label replaced by 0.

  Args:
    labels: int32 [P] flattened labels.
    num_classes: number of classes C.
    ignore_label: label value excluded from the loss (weight 0).
    loss_weight: a float, a list of C per-class floats, or None (= 1).

  Returns:
    (weights float32 [P], not-ignored mask float32 [P] of 0/1, labels int32
    [P] in which ignored pixels hold 0).
  """
  not_ignored = tf.not_equal(labels, ignore_label)
  # The ignore label (e.g. 255) is not a valid class index for one_hot/gather;
  # those pixels get weight 0, so any valid index will do.
  labels = tf.where(not_ignored, labels, tf.zeros_like(labels))
  not_ignored = tf.cast(not_ignored, tf.float32)
  if loss_weight is None:
    return not_ignored, not_ignored, labels
  if isinstance(loss_weight, numbers.Real):
    return not_ignored * float(loss_weight), not_ignored, labels
  loss_weight = [float(w) for w in loss_weight]
  if len(loss_weight) != num_classes:
    raise InputError('loss_weight has %d per-class values, expected %d '
                     '(one per class)' % (len(loss_weight), num_classes))
  class_weights = tf.gather(tf.constant(loss_weight, tf.float32), labels)
  return not_ignored * class_weights, not_ignored, labels


def _top_k_pixel_count(num_pixels, top_k_percent_pixels,
                       hard_example_mining_step):
  """Number k of hardest pixels kept (int32 scalar), docs/DESIGN.md §Quirks 17.

  Without a mining step k = int(top_k * N). With one, the kept fraction ramps
  linearly from 1 (all pixels) at step 0 to top_k at the mining step:
  k = int((r * top_k + 1 - r) * N), r = min(1, global_step / mining_step).
  """
  num_pixels = tf.cast(num_pixels, tf.float32)
  if hard_example_mining_step == 0:
    fraction = tf.constant(top_k_percent_pixels, tf.float32)
  else:
    global_step = tf.cast(tf.train.get_or_create_global_step(), tf.float32)
    ratio = tf.minimum(1.0, global_step / float(hard_example_mining_step))
    fraction = ratio * top_k_percent_pixels + 1.0 - ratio
  return tf.cast(fraction * num_pixels, tf.int32)


def _weighted_pixel_losses(logits, labels, num_classes, ignore_label,
                           loss_weight, upsample_logits):
  """Weighted softmax cross entropy per pixel.

  Args:
    logits: float [N, h, w, C].
    labels: int32 [N, H, W, 1].
    num_classes: C.
    ignore_label: label value with weight 0.
    loss_weight: see `_pixel_weights`.
    upsample_logits: resize logits to the labels (bilinear-AC), else labels
      to the logits (nearest-AC).

  Returns:
    (weighted losses float32 [P], not-ignored mask float32 [P]), P pixels in
    total.
  """
  if upsample_logits:
    logits = resize.bilinear_ac(logits, _spatial_size(labels))
  else:
    labels = resize.nearest_ac(labels, _spatial_size(logits))
  weights, not_ignored, labels = _pixel_weights(
      tf.reshape(labels, [-1]), num_classes, ignore_label, loss_weight)
  one_hot = tf.stop_gradient(tf.one_hot(labels, num_classes, dtype=tf.float32))
  pixel_losses = tf.nn.softmax_cross_entropy_with_logits_v2(
      labels=one_hot,
      logits=tf.reshape(tf.cast(logits, tf.float32), [-1, num_classes]))
  return pixel_losses * weights, not_ignored


def _normalized_loss(weighted_losses, not_ignored, top_k_percent_pixels,
                     hard_example_mining_step):
  """Scalar loss from the weighted pixel losses (see the caller's docstring)."""
  if top_k_percent_pixels == 1.0:
    kept_losses = weighted_losses
    # Pixels of a class weighted 0 still count, as in DeepLab.
    num_present = tf.reduce_sum(not_ignored)
  else:
    # do not fix: changes results (docs/DESIGN.md §Quirks 17)
    top_k = _top_k_pixel_count(tf.size(weighted_losses), top_k_percent_pixels,
                               hard_example_mining_step)
    kept_losses, _ = tf.nn.top_k(weighted_losses, k=top_k, sorted=True)
    num_present = tf.reduce_sum(
        tf.cast(tf.not_equal(kept_losses, 0.0), tf.float32))
  return tf.math.divide_no_nan(tf.reduce_sum(kept_losses), num_present,
                               name='loss')


def _check_loss_arguments(labels, gt_is_matting_map, top_k_percent_pixels,
                          hard_example_mining_step):
  if labels is None:
    raise InputError('No label for the softmax cross entropy loss.')
  if gt_is_matting_map:
    raise InputError('gt_is_matting_map=True is not supported (semantic '
                     'labels only).')
  if not 0.0 < top_k_percent_pixels <= 1.0:
    raise InputError('top_k_percent_pixels must be in (0, 1], got %r'
                     % top_k_percent_pixels)
  if hard_example_mining_step < 0:
    raise InputError('hard_example_mining_step must be >= 0, got %r'
                     % hard_example_mining_step)


def add_softmax_cross_entropy_loss_for_each_scale(scales_to_logits,
                                                  labels,
                                                  num_classes,
                                                  ignore_label,
                                                  loss_weight=1.0,
                                                  upsample_logits=True,
                                                  hard_example_mining_step=0,
                                                  top_k_percent_pixels=1.0,
                                                  gt_is_matting_map=False,
                                                  scope=None):
  """Adds one softmax cross-entropy loss per logits scale to tf.losses.

  Each scale's logits are bilinearly upsampled (align_corners) to the label
  size, or, with `upsample_logits=False`, the labels are downsampled
  nearest-neighbour (align_corners) to the logits size. Ignored pixels weigh 0.

  Normalisation: with `top_k_percent_pixels == 1` the loss is the sum of the
  weighted pixel losses divided by the number of non-ignored pixels (pixels of
  a class weighted 0 included), 0 if there are none.
  With `top_k_percent_pixels < 1` only the k largest weighted pixel losses are
  summed (k counts all pixels, ignored ones included) and divided by how many
  of those k are nonzero (docs/DESIGN.md §Quirks 17).

  Args:
    scales_to_logits: dict scale name (e.g. 'merged_logits', 'logits_1.00') ->
      float logits [N, h, w, C].
    labels: integer ground truth [N, H, W, 1] (or [N, H, W]).
    num_classes: C.
    ignore_label: label value that does not contribute to the loss.
    loss_weight: float, list of C per-class weights, or None (= 1.0).
    upsample_logits: upsample logits to the labels (True) or downsample the
      labels to the logits (False).
    hard_example_mining_step: steps over which the kept pixel fraction ramps
      from 1 to `top_k_percent_pixels` (0: no ramp). Uses the global step.
    top_k_percent_pixels: fraction of the hardest pixels kept, in (0, 1].
    gt_is_matting_map: must be False (matting targets are not supported).
    scope: loss name prefix; each loss lives in name scope `<scope>_<scale>`
      (just `<scale>` when None), e.g. 'semantic_merged_logits'.

  Returns:
    List of the added scalar float32 loss tensors, in sorted scale order.

  Raises:
    InputError: on unsupported or inconsistent arguments.
  """
  _check_loss_arguments(labels, gt_is_matting_map, top_k_percent_pixels,
                        hard_example_mining_step)
  labels = _labels_to_4d(labels)
  added_losses = []
  for scale in sorted(scales_to_logits):
    logits = scales_to_logits[scale]
    if logits.shape[-1] != num_classes:
      raise InputError('logits %r have %s channels, expected num_classes=%d'
                       % (scale, logits.shape[-1], num_classes))
    loss_scope = scale if scope is None else '%s_%s' % (scope, scale)
    with tf.name_scope(loss_scope):
      weighted_losses, not_ignored = _weighted_pixel_losses(
          logits, labels, num_classes, ignore_label, loss_weight,
          upsample_logits)
      loss = _normalized_loss(weighted_losses, not_ignored,
                              top_k_percent_pixels, hard_example_mining_step)
      tf.losses.add_loss(loss)
      added_losses.append(loss)
  return added_losses


def get_model_learning_rate(learning_policy,
                            base_learning_rate,
                            learning_rate_decay_step,
                            learning_rate_decay_factor,
                            training_number_of_steps,
                            learning_power,
                            slow_start_step,
                            slow_start_learning_rate,
                            decay_steps=0.0,
                            end_learning_rate=0.0):
  """The learning rate at the global step (float32 scalar tensor), docs/DESIGN.md §Optimisation.

  The schedule runs on t' = max(t - slow_start_step, 0):
    poly: (base - end) * (1 - min(t', D) / D)^power + end, D = decay_steps or
      training_number_of_steps - slow_start_step;
    step: base * decay_factor^floor(t' / learning_rate_decay_step).
  For t < slow_start_step the rate is slow_start_learning_rate.

  Raises:
    InputError: unknown policy or inconsistent step counts.
  """
  if learning_policy not in _LEARNING_POLICIES:
    raise InputError('Unknown learning_policy %r; expected one of %s'
                     % (learning_policy, ', '.join(_LEARNING_POLICIES)))
  global_step = tf.train.get_or_create_global_step()
  adjusted_step = tf.maximum(global_step - slow_start_step, 0)
  if learning_policy == 'poly':
    if not decay_steps:
      decay_steps = training_number_of_steps - slow_start_step
    if decay_steps <= 0:
      raise InputError(
          'poly learning rate needs decay_steps > 0 (or training_number_of_'
          'steps %d > slow_start_step %d)'
          % (training_number_of_steps, slow_start_step))
    learning_rate = tf.train.polynomial_decay(
        base_learning_rate, adjusted_step, decay_steps,
        end_learning_rate=end_learning_rate, power=learning_power)
  else:
    if learning_rate_decay_step <= 0:
      raise InputError('learning_rate_decay_step must be > 0, got %r'
                       % learning_rate_decay_step)
    learning_rate = tf.train.exponential_decay(
        base_learning_rate, adjusted_step, learning_rate_decay_step,
        learning_rate_decay_factor, staircase=True)
  learning_rate = tf.cast(learning_rate, tf.float32)

  if slow_start_step <= 0:
    return tf.identity(learning_rate, name='learning_rate')
  slow_rate = tf.constant(slow_start_learning_rate, tf.float32)
  return tf.where(global_step < slow_start_step, slow_rate, learning_rate,
                  name='learning_rate')


def get_model_gradient_multipliers(last_layers, last_layer_gradient_multiplier):
  """Gradient multipliers for the model variables, docs/DESIGN.md §Optimisation.

  Variables whose name contains 'biases' get x2; variables whose name contains
  any of `last_layers` (substring match, so 'logits' also matches
  'xception_65/logits') get x last_layer_gradient_multiplier; last-layer
  biases get both (x2 * multiplier).

  Args:
    last_layers: list of scope substrings, e.g. ['logits', 'aspp'].
    last_layer_gradient_multiplier: float multiplier of the last layers.

  Returns:
    dict variable op name -> float multiplier, only for the variables above.
  """
  multipliers = {}
  for variable in slim.get_model_variables():
    name = variable.op.name
    multiplier = 1.0
    matched = False
    if 'biases' in name:
      multiplier *= 2.0
      matched = True
    # do not fix: changes results (docs/DESIGN.md §Quirks 18)
    if any(layer in name for layer in last_layers):
      multiplier *= last_layer_gradient_multiplier
      matched = True
    if matched:
      multipliers[name] = multiplier
  return multipliers


def _resolve_checkpoint(path):
  """(prefix, {name: shape}) of the checkpoint a prefix or directory names.

  The path rule is the one of every script (utils/checkpoint_paths.py);
  InputError if the path names no checkpoint or it is unreadable.
  """
  checkpoint = checkpoint_paths.resolve_checkpoint(path,
                                                   'tf_initial_checkpoint')
  try:
    reader = tf.train.load_checkpoint(checkpoint)
  except (tf.errors.OpError, ValueError) as error:
    raise InputError('tf_initial_checkpoint %r is not a readable checkpoint: '
                     '%s' % (path, str(error).splitlines()[0])) from error
  return checkpoint, reader.get_variable_to_shape_map()


def _format_names_for_error(names):
  shown = ', '.join(names[:_MAX_NAMES_IN_ERROR])
  if len(names) > _MAX_NAMES_IN_ERROR:
    shown += ', ... (%d more)' % (len(names) - _MAX_NAMES_IN_ERROR)
  return shown


def _variables_to_restore(excluded_prefixes):
  """Global variables whose names start with none of `excluded_prefixes`."""
  return [v for v in tf.global_variables()
          if not v.op.name.startswith(tuple(excluded_prefixes))]


def _is_last_layer(name, last_layers):
  return name.startswith(tuple(last_layers))


def _other_backbone(variables, last_layers, checkpoint_shapes):
  """Whether the checkpoint lacks every backbone variable of the model.

  Backbone = the model variables outside the last layers. A checkpoint of
  another --model_variant shares none of them (only head names such as
  `aspp0/weights` may coincide, with other shapes).

  Returns:
    (a model backbone variable name, a checkpoint variable name) as examples,
    or None when the backbones match (or either has no backbone variable).
  """
  backbone = [v.op.name for v in variables
              if not _is_last_layer(v.op.name, last_layers)]
  if not backbone or any(name in checkpoint_shapes for name in backbone):
    return None
  foreign = sorted(name for name in checkpoint_shapes
                   if not _is_last_layer(name, last_layers) and
                   not name.startswith(_NEVER_RESTORED))
  if not foreign:
    return None
  return backbone[0], foreign[0]


def _mismatch_hint(name, last_layers, other_backbone):
  """What to change for a checkpoint that does not fit the model."""
  if other_backbone is not None:
    return ('the checkpoint holds another backbone (it has e.g. %s, the model '
            'needs e.g. %s): pass the --model_variant the checkpoint was '
            'trained with, or a checkpoint of this one' % (other_backbone[1],
                                                           other_backbone[0]))
  if _is_last_layer(name, last_layers):
    return ('pass --initialize_last_layer=false if the last layers (e.g. the '
            'number of classes) differ')
  return ('the backbone differs: check --model_variant and the model flags '
          '(e.g. --output_stride, --atrous_rates) against the checkpoint')


def get_model_init_fn(train_logdir,
                      tf_initial_checkpoint,
                      initialize_last_layer,
                      last_layers,
                      ignore_missing_vars=False,
                      excluded_scopes=()):
  """Initialisation from a pre-trained checkpoint, docs/DESIGN.md §Initialisation.

  Everything is checked here, while the graph is built, so a bad checkpoint
  fails before the session starts.

  Args:
    train_logdir: training directory; if it already holds a checkpoint,
      training resumes from it and no init function is needed.
    tf_initial_checkpoint: checkpoint prefix or directory (its latest
      checkpoint), or None.
    initialize_last_layer: also restore the variables whose names start with
      one of `last_layers`.
    last_layers: list of variable scope prefixes of the last layers.
    ignore_missing_vars: skip (and log in one line) model variables absent
      from the checkpoint; if False they are an error.
    excluded_scopes: variable scope prefixes never restored, whatever
      `initialize_last_layer` says (e.g. an ImageNet classification head).

  Returns:
    None, or `init_fn(scaffold, session)` restoring the variables (also
    callable as `init_fn(session)`, the slim.learning.train form).

  Raises:
    InputError: unreadable checkpoint, a variable whose shape differs from the
      checkpoint's, missing variables (unless ignore_missing_vars), or no
      variable to restore.
  """
  if not tf_initial_checkpoint:
    logging.info('No tf_initial_checkpoint; variables keep their initializers.')
    return None
  if train_logdir and tf.train.latest_checkpoint(train_logdir):
    logging.info('Checkpoint found in %s; ignoring tf_initial_checkpoint.',
                 train_logdir)
    return None
  checkpoint, checkpoint_shapes = _resolve_checkpoint(tf_initial_checkpoint)

  excluded = list(_NEVER_RESTORED) + list(excluded_scopes)
  if not initialize_last_layer:
    excluded.extend(last_layers)
  variables = _variables_to_restore(excluded)
  other_backbone = _other_backbone(variables, last_layers, checkpoint_shapes)
  var_list = {}
  missing = []
  for variable in variables:
    name = variable.op.name
    if name not in checkpoint_shapes:
      missing.append(name)
      continue
    model_shape = variable.shape.as_list()
    if model_shape != list(checkpoint_shapes[name]):
      raise InputError(
          'incompatible checkpoint %s: variable %s has shape %s in the model '
          'but %s in the checkpoint; %s'
          % (checkpoint, name, model_shape, list(checkpoint_shapes[name]),
             _mismatch_hint(name, last_layers, other_backbone)))
    var_list[name] = variable

  if missing:
    if not ignore_missing_vars:
      raise InputError('%d variables missing from checkpoint %s: %s'
                       % (len(missing), checkpoint,
                          _format_names_for_error(missing)))
    logging.info('%d variables not in checkpoint %s, keeping their '
                 'initializers: %s', len(missing), checkpoint,
                 ', '.join(missing))
  if not var_list:
    raise InputError('checkpoint %s shares no variable with the model%s'
                     % (checkpoint, '; ' + _mismatch_hint(
                         '', last_layers, other_backbone)
                        if other_backbone else ''))
  # The Saver must exist before the session finalizes the graph.
  saver = tf.train.Saver(var_list=var_list, reshape=False,
                         name='initial_checkpoint_saver')
  logging.info('Initializing %d variables from %s', len(var_list), checkpoint)

  def init_fn(*scaffold_and_session):
    """Restores the variables; (scaffold, session) or (session,)."""
    saver.restore(scaffold_and_session[-1], checkpoint)

  return init_fn

