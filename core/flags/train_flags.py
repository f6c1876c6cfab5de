"""Flags of the training scripts (docs/DESIGN.md §Flags), defined once for
train_sup.py, train_wss.py and pretrain.py, and the options they give.

The scripts build everything the training loop needs here, once:
`deployment_from_flags` (a model_deploy.DeploymentConfig; it starts the
TensorFlow servers of a cluster), `training_dataset`, `model_options` and
`train_options_from_flags` (a loop.TrainOptions). The flags of the supervised
branch and the training splits are in core/flags/supervised_flags.py.
train_wss.py changes a few defaults with `apply_wss_defaults` (docs/DESIGN.md
§Flags) and defines its PseudoSeg flags in core/flags/wss_flags.py.
"""
from absl import flags

from core.data import data_generator
from core.flags import flag_checks
from core.flags import model_flags
from core.flags import supervised_flags  # noqa: F401  (the shared flags)
from core.train import cluster
from core.train import loop
from core.train import model_deploy
from core.train import optimization
from deeplab.tf_compat import tf
from utils.errors import InputError

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
flags.DEFINE_list('train_crop_size', '513,513', 'Training crop height,width.')
flags.DEFINE_float('last_layer_gradient_multiplier', 1.0,
                   'Gradient multiplier of the last layers.')
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

# Augmentation.
flags.DEFINE_float('min_scale_factor', 0.5, 'Smallest random scale.')
flags.DEFINE_float('max_scale_factor', 2.0, 'Largest random scale.')
flags.DEFINE_float('scale_factor_step_size', 0.25, 'Step between random scales.')

# Data.
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
                     'the chief to accept connections before giving up, at '
                     'the start and after it lost them during training.')

# train_wss.py's values of these flags (tests build its graph with them).
WSS_DEFAULTS = dict(
    save_summaries_secs=180,
    save_summaries_images=True,
    initialize_last_layer=False,
    last_layers_contain_logits_only=True)


def apply_wss_defaults():
  """Switches to train_wss.py's defaults (docs/DESIGN.md §Flags)."""
  for name, value in WSS_DEFAULTS.items():
    FLAGS.set_default(name, value)


def deployment_from_flags():
  """Checks the deployment flags and returns a DeploymentConfig.

  With --worker_hosts this process starts its own TensorFlow server, once the
  flags are checked; a `ps` task serves the variables here until it is killed
  (no return). Without --num_devices the clones are spread over every GPU
  this process sees, or run on the CPU if it sees none.
  """
  flag_checks.clone_batch_size(FLAGS.train_batch_size, FLAGS.num_clones,
                               FLAGS.num_accumulation_steps)
  num_replicas, num_ps_tasks = FLAGS.num_replicas, FLAGS.num_ps_tasks
  own_server = bool(FLAGS.worker_hosts or FLAGS.ps_hosts or FLAGS.job_name)
  if own_server:
    if FLAGS.job_name == 'ps':
      cluster.serve_parameters(FLAGS.ps_hosts, FLAGS.worker_hosts, FLAGS.task)
    num_replicas, num_ps_tasks = _cluster_size()
  clone_on_cpu, num_devices = FLAGS.clone_on_cpu, FLAGS.num_devices or None
  if num_devices is None and not clone_on_cpu:
    num_devices = len(tf.config.list_physical_devices('GPU')) or None
    clone_on_cpu = num_devices is None
  config = model_deploy.DeploymentConfig(
      FLAGS.num_clones, clone_on_cpu, FLAGS.task, num_replicas, num_ps_tasks,
      num_devices=num_devices,
      num_accumulation_steps=FLAGS.num_accumulation_steps,
      sync_replicas=FLAGS.sync_replicas, master=FLAGS.master)
  if own_server:
    config.master = cluster.start_worker_server(
        FLAGS.ps_hosts, FLAGS.worker_hosts, FLAGS.job_name, FLAGS.task,
        FLAGS.cluster_timeout_secs)
    config.cluster_hosts = cluster.needed_hosts(
        FLAGS.ps_hosts, FLAGS.worker_hosts, FLAGS.task)
    config.cluster_timeout_secs = FLAGS.cluster_timeout_secs
  return config


def _cluster_size():
  """(num_replicas, num_ps_tasks) given by --worker_hosts and --ps_hosts."""
  for name, value in (('num_replicas', len(FLAGS.worker_hosts)),
                      ('num_ps_tasks', len(FLAGS.ps_hosts))):
    if not FLAGS[name].using_default_value and FLAGS[name].value != value:
      raise InputError('--%s=%d disagrees with the %d host(s) of --%s; drop '
                       '--%s.' % (name, FLAGS[name].value, value,
                                  'worker_hosts' if name == 'num_replicas'
                                  else 'ps_hosts', name))
  return len(FLAGS.worker_hosts), len(FLAGS.ps_hosts)


def model_options(num_classes):
  """ModelOptions of the training graph (crop = --train_crop_size)."""
  crop_size = flag_checks.parse_crop_size(FLAGS.train_crop_size,
                                          'train_crop_size')
  return model_flags.model_options_from_flags(num_classes, crop_size)


def training_dataset(split, batch_size, strong_weak=False, output_valid=False,
                     with_cls=False, seed_offset=0):
  """The training-mode Dataset of a split, configured from the flags."""
  seed = None if FLAGS.seed is None else FLAGS.seed + seed_offset
  return data_generator.Dataset(
      dataset_name=FLAGS.dataset,
      split_name=split,
      dataset_dir=FLAGS.dataset_dir,
      batch_size=batch_size,
      crop_size=flag_checks.parse_crop_size(FLAGS.train_crop_size,
                                            'train_crop_size'),
      min_resize_value=FLAGS.min_resize_value,
      max_resize_value=FLAGS.max_resize_value,
      resize_factor=FLAGS.resize_factor,
      min_scale_factor=FLAGS.min_scale_factor,
      max_scale_factor=FLAGS.max_scale_factor,
      scale_factor_step_size=FLAGS.scale_factor_step_size,
      model_variant=FLAGS.model_variant,
      num_readers=FLAGS.num_readers,
      is_training=True,
      should_shuffle=True,
      should_repeat=True,
      with_cls=with_cls,
      strong_weak=strong_weak,
      output_valid=output_valid,
      seed=seed)


def train_options_from_flags():
  """The loop.TrainOptions of the parsed flags; every field but
  `optimization` (an optimization.OptimizerOptions) is the flag of the same
  name."""
  optimizer_options = optimization.OptimizerOptions(
      **{name: getattr(FLAGS, name)
         for name in optimization.OptimizerOptions._fields})
  return loop.TrainOptions(
      optimization=optimizer_options,
      **{name: getattr(FLAGS, name) for name in loop.TrainOptions._fields
         if name != 'optimization'})
