"""core/method/monitoring.py add_summary, the one summary helper: exact tags
at any name scope, and, where tf.summary.* gave the same tag, the very op it
built."""
import pytest

from core.method import monitoring
from deeplab.tf_compat import tf


def _tags(serialized):
  return [value.tag for value in tf.Summary.FromString(serialized).value]


def test_tags_are_exact_inside_a_clone_scope_and_beside_a_namesake_op():
  with tf.Graph().as_default():
    value = tf.constant(2.0, name='learning_rate')
    with tf.name_scope('clone_0'):
      summaries = [
          monitoring.add_summary('scalar', 'learning_rate', value),
          monitoring.add_summary('histogram', 'max_prob_weak',
                                 tf.constant([0.5, 1.0])),
          monitoring.add_image_summary('samples/image_seg',
                                       tf.fill([1, 2, 2, 3], 300.)),
          monitoring.add_summary('scalar', 'total_loss', value,
                                 op_name='summary_scalar')]
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == summaries
    with tf.Session() as sess:
      serialized = sess.run(summaries)
  # tf.summary.* would have given `clone_0/learning_rate_1`.
  assert [_tags(s) for s in serialized] == [
      ['learning_rate'], ['max_prob_weak'], ['samples/image_seg/image/0'],
      ['total_loss']]
  assert [s.op.name for s in summaries] == [
      'learning_rate_1', 'max_prob_weak', 'samples/image_seg',
      'summary_scalar']


@pytest.mark.parametrize('kind, tag, make, tf_summary', [
    ('scalar', 'sanity_check/acc_seg', lambda: tf.constant(0.5),
     lambda tag, value: tf.summary.scalar(tag, value)),
    ('histogram', 'max_prob_weak', lambda: tf.constant([0.25, 1.0]),
     lambda tag, value: tf.summary.histogram(tag, value)),
    ('image', 'unlabeled/weak', lambda: tf.zeros([2, 4, 4, 3], tf.uint8),
     lambda tag, value: tf.summary.image(tag, value))])
def test_without_a_name_clash_the_op_is_the_one_tf_summary_built(
    kind, tag, make, tf_summary):
  def built(add):
    """(node of the summary op, its serialized value) in a fresh graph."""
    with tf.Graph().as_default() as graph, tf.name_scope(None):
      summary = add(tag, make())
      with tf.Session() as sess:
        serialized = sess.run(summary)
    nodes = {node.name: node for node in graph.as_graph_def().node}
    return nodes[summary.op.name], serialized

  ours = built(lambda tag_, value: monitoring.add_summary(kind, tag_, value))
  assert ours == built(tf_summary)
  assert _tags(ours[1])[0].startswith(tag)
