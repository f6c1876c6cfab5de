r"""Where a train_wss step's time goes: op time by pass and by op type.

Builds the train_wss graph in this process (bench/step_ab.py's defaults:
xception_65, README model flags, crop 129, batch 2, one clone, a temporary
synthetic dataset), runs --warmup_steps steps, then traces --traced_steps
steps (RunMetadata, FULL_TRACE) and sums the op durations of the traced
steps, grouped by pass (the first name scope: `cls_weak`,
`cls_data_cls_inference`, `cls_strong`, `seg_data_cls`, the supervised pass
at the root, and `gradients/<scope>` for their backward passes) and by op type.
Op durations are wall times of concurrently running ops (two threads here),
so their sum exceeds the step's wall time; tracing slows the step a little.

  .venv/bin/python bench/step_profile.py --traced_steps=3 -- --crop_size...
Flags after `--` go to train_wss.
"""
import collections
import os
import sys
import tempfile
import time

# Allow `python bench/step_profile.py` from the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import graph_flops  # noqa: E402
from bench import step_ab  # noqa: E402
from datasets import build_synthetic_data  # noqa: E402
from deeplab.tf_compat import tf  # noqa: E402
from utils.errors import InputError  # noqa: E402
from utils.errors import run_reporting_errors  # noqa: E402

# Root scopes of the supervised pass's head (built outside any pass scope).
_HEAD_SCOPES = ('aspp', 'image_pooling', 'concat_projection', 'decoder',
                'logits', 'xception_65', 'mobilenet_v2')


def pass_of(op_name):
  """Pass of an op: its first name scope; the supervised pass's layers and
  their gradients are grouped as `supervised` / `gradients/supervised`, the
  sums of a variable's gradients over passes as `gradients/(sums over
  passes)`."""
  parts = op_name.split('/')
  backward = parts[0] == 'gradients' and len(parts) > 2
  scope = parts[1] if backward else parts[0]
  if len(parts) == 1 or (parts[0] == 'gradients' and not backward):
    scope = '(other)'
  elif scope.startswith(_HEAD_SCOPES):
    scope = 'supervised'
  elif backward and scope.startswith('AddN'):
    scope = '(sums over passes)'  # a variable's gradients of several passes
  return 'gradients/' + scope if backward else scope


def op_times(run_metadata, graph):
  """[(op name, op type, seconds)] of the traced ops of a run."""
  result = []
  for device in run_metadata.step_stats.dev_stats:
    for node in device.node_stats:
      name = node.node_name.split(':')[0]
      try:
        op_type = graph.get_operation_by_name(name).type
      except KeyError:
        op_type = node.timeline_label.split('(')[0].split(' = ')[-1] or '?'
      result.append((name, op_type, node.op_end_rel_micros / 1e6))
  return result


def table(title, totals, counts, total, limit):
  lines = ['| %s | s/step | share | ops |' % title, '|---|---|---|---|']
  for key, seconds in totals.most_common(limit):
    lines.append('| %s | %.3f | %.1f%% | %d |' % (
        key, seconds, 100 * seconds / total, counts[key]))
  return lines


def parse(argv):
  options, rest = step_ab.split_options(
      argv, {'warmup_steps': '5', 'traced_steps': '3', 'top': '14'})
  for name, value in options.items():
    if not value.isdigit() or int(value) < 1:
      raise InputError('--%s=%s: expected a positive integer.' % (name, value))
  return ({k: int(v) for k, v in options.items()}, rest)


def main(argv):
  options, rest = parse(argv)
  graph_flops._stop_before_training = step_ab._remember_fetches(
      graph_flops._stop_before_training)
  with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, 'data')
    build_synthetic_data.build(data, num_train=32, num_val=4, num_shards=1)
    graph, (train_op, _) = step_ab.build('current', [
        'train_wss', '--train_logdir=%s' % os.path.join(work, 'log'),
        '--dataset_dir=%s' % data] + step_ab.DEFAULT_FLAGS + rest)
    session = step_ab.open_session(graph, {})
    fetches = [train_op.train_tensor, train_op.step]
    wall = step_ab.timed_steps(session, fetches, options['warmup_steps'])[0]
    by_pass, by_type = collections.Counter(), collections.Counter()
    pass_ops, type_ops = collections.Counter(), collections.Counter()
    trace = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for step in range(options['traced_steps']):
      metadata = tf.RunMetadata()
      session.run(fetches, options=trace, run_metadata=metadata)
      for name, op_type, seconds in op_times(metadata, graph):
        by_pass[pass_of(name)] += seconds / options['traced_steps']
        by_type[op_type] += seconds / options['traced_steps']
        if step == 0:  # ops per step
          pass_ops[pass_of(name)] += 1
          type_ops[op_type] += 1
    traced = (time.perf_counter() - start) / options['traced_steps']
  total = sum(by_pass.values())
  print('untraced step %.3f s (median of %d warm-up steps), traced step %.3f '
        's, summed op time %.3f s/step, load %.2f' % (
            sorted(wall)[len(wall) // 2], len(wall), traced, total, load))
  print('\n'.join(table('pass', by_pass, pass_ops, total, options['top'])))
  print()
  print('\n'.join(table('op type', by_type, type_ops, total, options['top'])))


if __name__ == '__main__':
  run_reporting_errors(main, sys.argv)
