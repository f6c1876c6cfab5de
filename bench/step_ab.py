r"""train_wss step time of formulations or session options, side by side.

Builds the train_wss training graph in this process once per distinct graph
formulation, opens one session per --arms entry and runs them in alternating
rounds of --steps_per_round steps after --warmup_steps, so each arm sees the
same machine load. Prints, per round, the load and each arm's median wall
and process-CPU seconds per step so far, then the ratios to the first arm.
A step fetches what a training step fetches when it does not log: the train
op and the global step (arm `fetch_console_scalars` also fetches the console
scalars, as the progress hook did on every step before it fetched them only
when logging).

Arms:
  current                 the code as it is;
  before                  the code before the speed branch: atrous_depthwise
                          + fetch_console_scalars;
  two_pass_labeled        current, but the labeled batch's passes 4 and 5
                          each run the backbone (bench/two_pass_labeled.py),
                          as before they shared one forward;
  atrous_depthwise        ASPP depthwise convolutions always through TF's
                          atrous depthwise conv (before the centre-tap form);
  fetch_console_scalars   current + the console scalars fetched every step;
  inter_op_1              current, one inter-op thread;
  no_memory_optimizer     current, Grappler's memory optimizer off.

  .venv/bin/python bench/step_ab.py \
      --arms=before,current,inter_op_1 --rounds=6
Flags after `--` go to train_wss (defaults: xception_65, README model flags,
crop 129, batch 2, one clone, a temporary synthetic dataset).
"""
import os
import sys
import tempfile
import time

# Allow `python bench/step_ab.py` from the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

from bench import graph_flops  # noqa: E402
from bench import two_pass_labeled  # noqa: E402
from core.method import monitoring  # noqa: E402
from core.method import pseudoseg  # noqa: E402
from core.train import summaries  # noqa: E402
from datasets import build_synthetic_data  # noqa: E402
from deeplab import model  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

DEFAULT_FLAGS = ['--model_variant=xception_65', '--atrous_rates=6',
                 '--atrous_rates=12', '--atrous_rates=18',
                 '--output_stride=16', '--decoder_output_stride=4',
                 '--dataset=synthetic', '--train_split=2_clean',
                 '--train_split_cls=train_aug', '--train_crop_size=129,129',
                 '--num_clones=1', '--train_batch_size=2',
                 '--training_number_of_steps=100000']


def _no_memory_optimizer():
  options = tf.GraphOptions()
  options.rewrite_options.memory_optimization = (
      rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)
  return {'graph_options': options}


# arm -> (graph formulation, session config keywords, fetch console scalars)
ARMS = {
    'current': ('current', {}, False),
    'before': ('atrous_depthwise', {}, True),
    'atrous_depthwise': ('atrous_depthwise', {}, False),
    'two_pass_labeled': ('two_pass_labeled', {}, False),
    'fetch_console_scalars': ('current', {}, True),
    'inter_op_1': ('current', {'inter_op_parallelism_threads': 1}, False),
    'no_memory_optimizer': ('current', _no_memory_optimizer(), False),
}


# Graph collection where the build keeps (train op, console scalars).
STEP_COLLECTION = 'bench_step_ab_fetches'


def build(formulation, argv):
  """(graph, (train op, console scalars)) of train_wss in `formulation`."""
  saved = model.only_centre_tap_sees_input, pseudoseg.labeled_passes
  if formulation == 'atrous_depthwise':
    model.only_centre_tap_sees_input = lambda *unused_args: False
  if formulation == 'two_pass_labeled':
    pseudoseg.labeled_passes = two_pass_labeled.labeled_passes
  try:
    graph = graph_flops.build_graph('train_wss', argv)
  finally:
    model.only_centre_tap_sees_input, pseudoseg.labeled_passes = saved
  return graph, graph.get_collection(STEP_COLLECTION)[0]


def _remember_fetches(original_run_loop):
  """Wraps the stop-before-training hook to keep the step's fetches."""

  def run_loop(config, options, train_op, *args, **kwargs):
    graph = tf.get_default_graph()
    scalars = {summaries.console_name(t): t
               for t in graph.get_collection(monitoring.CONSOLE_SCALARS)}
    graph.add_to_collection(STEP_COLLECTION, (train_op, scalars))
    original_run_loop(config, options, train_op, *args, **kwargs)
  return run_loop


def open_session(graph, config):
  session = tf.Session(graph=graph, config=tf.ConfigProto(
      allow_soft_placement=True, **config))
  with graph.as_default():
    session.run([tf.global_variables_initializer(),
                 tf.local_variables_initializer(), tf.tables_initializer()])
  return session


def timed_steps(session, fetches, count):
  """Lists of wall and process-CPU seconds of `count` runs of `fetches`."""
  wall, cpu = [], []
  for _ in range(count):
    start, start_cpu = time.perf_counter(), time.process_time()
    session.run(fetches)
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  return wall, cpu


def split_options(argv, defaults):
  """`--name=value ... [-- SCRIPT FLAGS]` -> ({name: value str}, script flags).

  Names must be keys of `defaults` (which also give the values left out).
  """
  options, rest = dict(defaults), []
  for index, arg in enumerate(argv[1:], 1):
    if arg == '--':
      rest = argv[index + 1:]
      break
    name, _, value = arg.lstrip('-').partition('=')
    if name not in options or not value:
      raise InputError('unknown or empty option %s (expected --%s=...).' %
                       (arg, '=..., --'.join(sorted(options))))
    options[name] = value
  return options, rest


def parse(argv):
  options, rest = split_options(
      argv, {'arms': 'before,current', 'rounds': '6', 'steps_per_round': '3',
             'warmup_steps': '3'})
  arms = options['arms'].split(',')
  unknown = [a for a in arms if a not in ARMS]
  if unknown:
    raise InputError('--arms: unknown %s; known: %s.' %
                     (', '.join(unknown), ', '.join(sorted(ARMS))))
  return (arms, int(options['rounds']), int(options['steps_per_round']),
          int(options['warmup_steps']), rest)


def main(argv):
  arms, rounds, steps_per_round, warmup_steps, rest = parse(argv)
  graph_flops._stop_before_training = _remember_fetches(
      graph_flops._stop_before_training)
  with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, 'data')
    build_synthetic_data.build(data, num_train=32, num_val=4, num_shards=1)
    argv = (['train_wss', '--train_logdir=%s' % os.path.join(work, 'log'),
             '--dataset_dir=%s' % data] + DEFAULT_FLAGS + rest)
    graphs = {}
    for arm in arms:
      formulation = ARMS[arm][0]
      if formulation not in graphs:
        start = time.perf_counter()
        graphs[formulation] = build(formulation, argv)
        print('built %s graph: %d ops in %.1f s' % (
            formulation, len(graphs[formulation][0].get_operations()),
            time.perf_counter() - start), flush=True)
    sessions = {}
    for arm in arms:
      formulation, config, scalars = ARMS[arm]
      graph, (train_op, console) = graphs[formulation]
      fetches = [train_op.train_tensor, train_op.step]
      if scalars:
        fetches.append(console)
      sessions[arm] = (open_session(graph, config), fetches)
      timed_steps(*sessions[arm], warmup_steps)
    times = {arm: ([], []) for arm in arms}
    for round_index in range(rounds):
      load = os.getloadavg()[0]
      for arm in arms:
        wall, cpu = timed_steps(*sessions[arm], steps_per_round)
        times[arm][0].extend(wall)
        times[arm][1].extend(cpu)
      print('round %d load %.2f  %s' % (round_index + 1, load, '  '.join(
          '%s %.3f s wall %.3f s cpu' % (arm, np.median(times[arm][0]),
                                         np.median(times[arm][1]))
          for arm in arms)), flush=True)
    first = arms[0]
    for arm in arms[1:]:
      print('%s / %s: wall %.2fx, cpu %.2fx' % (
          first, arm, np.median(times[first][0]) / np.median(times[arm][0]),
          np.median(times[first][1]) / np.median(times[arm][1])))


if __name__ == '__main__':
  run_reporting_errors(main, sys.argv)
