"""Flags of the training scripts (docs/DESIGN.md §Flags), defined once for train_sup and train_wss.

train_wss.py changes a few defaults with `apply_wss_defaults` (docs/DESIGN.md §Flags) and
defines its PseudoSeg flags in `core/flags/wss_flags.py`.
"""
from absl import flags

from core.method import supervised
from deeplab import common  # noqa: F401  (defines the shared model flags)

FLAGS = flags.FLAGS

# Deployment.
flags.DEFINE_integer('num_clones', 16,
                     'Model replicas in this process, one per GPU (or all on '
                     'the CPU with --clone_on_cpu).')
flags.DEFINE_boolean('clone_on_cpu', False, 'Place every clone on the CPU.')
flags.DEFINE_integer('num_replicas', 1,
                     'Number of worker replicas (between-graph replication).')
flags.DEFINE_integer('startup_delay_steps', 15,
                     'Task k waits until global_step >= k * this before training.')
flags.DEFINE_integer('num_ps_tasks', 0,
                     'Number of parameter-server tasks; 0 keeps variables local.')
flags.DEFINE_integer('task', 0, 'Task id of this worker; task 0 is the chief.')

# Logging and checkpoints.
flags.DEFINE_string('train_logdir', None,
                    'Where checkpoints and event files are written (required).')
flags.DEFINE_integer('log_steps', 10, 'Log progress every this many steps.')
flags.DEFINE_integer('save_interval_secs', 1200,
                     'Seconds between checkpoints (one more is written at the end).')
flags.DEFINE_integer('max_to_keep', 5, 'Number of recent checkpoints kept.')
flags.DEFINE_integer('save_summaries_secs', 600, 'Seconds between summaries.')
flags.DEFINE_boolean('save_summaries_images', False,
                     'Add image summaries (inputs, labels, predictions).')
flags.DEFINE_string('profile_logdir', None,
                    'If set, write Chrome-trace timelines of a few steps here.')

# Optimisation.
flags.DEFINE_enum('optimizer', 'momentum', ['momentum', 'adam'], 'Optimizer.')
flags.DEFINE_enum('learning_policy', 'poly', ['poly', 'step'],
                  'Learning-rate policy.')
# The original train_sup.py defaulted to 1e-4, 70x below train_wss (docs/DESIGN.md §Departures 3);
# both scripts use 0.007 so the README's baseline is a real baseline.
flags.DEFINE_float('base_learning_rate', 0.007,
                   'Base learning rate of the poly/step policies.')
flags.DEFINE_float('decay_steps', 0.0,
                   'Poly decay steps; 0 means training_number_of_steps - '
                   'slow_start_step.')
flags.DEFINE_float('end_learning_rate', 0.0, 'Final poly learning rate.')
flags.DEFINE_float('learning_rate_decay_factor', 0.1,
                   'Step policy: multiply the rate by this every decay step.')
flags.DEFINE_integer('learning_rate_decay_step', 2000,
                     'Step policy: steps between decays.')
flags.DEFINE_float('learning_power', 0.9, 'Poly policy power.')
flags.DEFINE_integer('training_number_of_steps', 30000,
                     'Train until global_step reaches this.')
flags.DEFINE_float('momentum', 0.9, 'Momentum of the momentum optimizer.')
flags.DEFINE_float('adam_learning_rate', 0.001,
                   'Constant learning rate used with --optimizer=adam.')
flags.DEFINE_float('adam_epsilon', 1e-08, 'Adam epsilon.')

# Batch and model.
flags.DEFINE_integer('train_batch_size', 64,
                     'Global batch size of labeled images; must be divisible by '
                     'num_clones (train_wss also draws this many unlabeled ones).')
flags.DEFINE_float('weight_decay', 0.00004, 'L2 weight decay.')
flags.DEFINE_list('train_crop_size', '513,513', 'Training crop height,width.')
flags.DEFINE_float('last_layer_gradient_multiplier', 1.0,
                   'Gradient multiplier of the last layers.')
flags.DEFINE_boolean('upsample_logits', True,
                     'Compute the loss on logits upsampled to the label size '
                     '(else on labels downsampled to the logits size).')
flags.DEFINE_float('drop_path_keep_prob', 1.0,
                   'NAS only; kept for command-line compatibility.')

# Fine-tuning.
flags.DEFINE_string('tf_initial_checkpoint', None,
                    'Checkpoint (e.g. ImageNet xception_65) to start from when '
                    'train_logdir holds none.')
flags.DEFINE_boolean('initialize_last_layer', True,
                     'Also restore the last layers from tf_initial_checkpoint.')
flags.DEFINE_boolean('last_layers_contain_logits_only', False,
                     'Treat only the logits as last layers (else also ASPP and '
                     'decoder).')
flags.DEFINE_integer('slow_start_step', 0, 'Steps trained at a slow rate first.')
flags.DEFINE_float('slow_start_learning_rate', 1e-4,
                   'Learning rate during the slow start.')
flags.DEFINE_boolean('fine_tune_batch_norm', True,
                     'Train batch norm (batch statistics and moving averages).')

# Augmentation.
flags.DEFINE_float('min_scale_factor', 0.5, 'Smallest random scale.')
flags.DEFINE_float('max_scale_factor', 2.0, 'Largest random scale.')
flags.DEFINE_float('scale_factor_step_size', 0.25, 'Step between random scales.')

# Loss.
flags.DEFINE_integer('hard_example_mining_step', 0,
                     'Steps over which top-k pixel mining ramps in.')
flags.DEFINE_float('top_k_percent_pixels', 1.0,
                   'Fraction of the hardest pixels kept in the loss.')

# Data.
flags.DEFINE_string('train_split', 'train', 'Labeled split (tfrecord prefix).')
flags.DEFINE_string('train_split_cls', 'train_aug',
                    'Unlabeled / image-level-labeled split.')
flags.DEFINE_integer('num_readers', 4, 'Parallel tfrecord readers.')
flags.DEFINE_integer('seed', 0,
                     'Graph-level seed; also seeds the input pipeline so runs '
                     'repeat their augmentation sequence.')

# Scaling (README "Scaling"): clones on fewer devices, gradient accumulation,
# synchronous replicas and a cluster started by the scripts themselves.
flags.DEFINE_integer('num_devices', 0,
                     'Devices the clones are spread over, round-robin (clone i '
                     'on device i % num_devices); 0 = every GPU this process '
                     'sees, or the CPU if there is none (1 CPU with '
                     '--clone_on_cpu).')
flags.DEFINE_integer('num_accumulation_steps', 1,
                     'Micro-steps whose summed gradients make one update; the '
                     'batch of a micro-step is train_batch_size / (num_clones '
                     'x num_accumulation_steps). global_step, the learning '
                     'rate and checkpoints count updates.')
flags.DEFINE_boolean('sync_replicas', False,
                     'Aggregate the gradients of all --num_replicas workers '
                     'into each update (SyncReplicasOptimizer) instead of '
                     'applying each worker\'s gradients as they come.')
flags.DEFINE_string('job_name', None,
                    'With --worker_hosts: this process is task --task of job '
                    '"ps" (serves variables until killed) or "worker".')
flags.DEFINE_list('ps_hosts', [],
                  'host:port of every parameter-server task, e.g. '
                  'h1:2222,h2:2222 (sets --num_ps_tasks).')
flags.DEFINE_list('worker_hosts', [],
                  'host:port of every worker task; the first is the chief. '
                  'Given, the script starts its own TensorFlow server (sets '
                  '--num_replicas and --master).')
flags.DEFINE_integer('cluster_timeout_secs', 120,
                     'Seconds a worker waits for the parameter servers and '
                     'the chief to accept connections before giving up.')

_WSS_DEFAULTS = dict(
    save_summaries_secs=180,
    save_summaries_images=True,
    initialize_last_layer=False,
    last_layers_contain_logits_only=True)


def apply_wss_defaults():
  """Switches to train_wss.py's defaults (docs/DESIGN.md §Flags)."""
  for name, value in _WSS_DEFAULTS.items():
    FLAGS.set_default(name, value)


def supervised_options_from_flags(model_options):
  """The SupervisedOptions of the parsed flags around `model_options`."""
  return supervised.SupervisedOptions(
      model=model_options,
      image_pyramid=FLAGS.image_pyramid,
      weight_decay=FLAGS.weight_decay,
      fine_tune_batch_norm=FLAGS.fine_tune_batch_norm,
      upsample_logits=FLAGS.upsample_logits,
      hard_example_mining_step=FLAGS.hard_example_mining_step,
      top_k_percent_pixels=FLAGS.top_k_percent_pixels,
      save_summaries_images=FLAGS.save_summaries_images)
