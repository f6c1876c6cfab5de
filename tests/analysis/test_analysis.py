"""analyze.py and its library: reliability statistics, event curves, the
results table, the figures, and one end-to-end run on two tiny runs.

The end-to-end run of analyze.py as users run it starts with the first test
(with a run given a bad logdir, checked there) and works while the library
tests run; the last test checks it, then reruns analyze.py's main in this
process on the same output folder (the cache).
"""
import json
import logging
import os
import re

import numpy as np
import pytest

from conftest import import_script
from conftest import pseudoseg_options
from conftest import run_main
from conftest import start_script
from core.analysis import cache
from core.analysis import event_files
from core.analysis import fetches
from core.analysis import passes
from core.analysis import results_table
from core.analysis import scores
from core.eval import results_io
from core.method import calibration
from core.method import pseudoseg
from deeplab import common
from deeplab import model
from deeplab.tf_compat import tf
from utils import plots
from utils.errors import InputError

analyze = import_script('analyze')

NUM_CLASSES = 9  # synthetic: background + 8
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

# Six pixels, four classes; the last-but-one label is ignored. Confidences are
# exact in float32 so the bins are known: 0.5 -> bin 7 (ceil(7.5) - 1),
# 0.75 -> bin 11, 1.0 -> bin 14.
_PROBS = np.array([[[
    [0.5, 0.25, 0.125, 0.125],     # conf 0.5, predicts 0, label 0: correct
    [0.125, 0.75, 0.125, 0.0],     # conf 0.75, predicts 1, label 2: wrong
    [0.0, 1.0, 0.0, 0.0],          # conf 1.0, predicts 1, label 1: correct
], [
    [0.125, 0.125, 0.25, 0.5],     # ignored
    [0.0625, 0.0625, 0.375, 0.5],  # conf 0.5, predicts 3, label 3: correct
    [0.5, 0.25, 0.25, 0.0],        # conf 0.5, predicts 0, label 1: wrong
]]], np.float32)
_LABELS = np.array([[[0, 2, 1], [255, 3, 1]]], np.int32)


# The first test: it starts analyze.py's runs (script_runs, at the end of the
# file); the end-to-end one works while the library tests below run.
@pytest.mark.e2e
def test_bad_logdirs_exit_2(script_runs):
  root, run = script_runs['absent_logdir']
  process = run.result()
  assert process.returncode == 2
  assert process.stderr.strip().splitlines()[-1].startswith(
      'error: --sup_logdir %s is not a directory' % (root / 'absent'))
  assert not os.path.exists(str(script_runs['absent_logdir_output']))


@pytest.fixture(scope='module')
def statistics():
  with tf.Graph().as_default(), tf.Session() as sess:
    stats, ece = sess.run([
        calibration.reliability_statistics(tf.constant(_PROBS),
                                           tf.constant(_LABELS), 255),
        calibration.expected_calibration_error(tf.constant(_PROBS),
                                               tf.constant(_LABELS))])
  return stats, ece


def test_reliability_statistics_match_hand_computation(statistics):
  stats, _ = statistics
  expected = np.zeros([3, calibration.NUM_BINS])
  expected[:, 7] = [3, 1.5, 2]    # pixels 1, 5, 6
  expected[:, 11] = [1, 0.75, 0]  # pixel 2
  expected[:, 14] = [1, 1.0, 1]   # pixel 3
  np.testing.assert_allclose(stats, expected)
  # (|2 - 1.5| + |0 - 0.75| + |1 - 1|) / 5 pixels.
  assert calibration.ece_of_statistics(stats) == pytest.approx(0.25)


def test_ece_agrees_with_the_training_summary(statistics):
  stats, training_ece = statistics
  assert calibration.ece_of_statistics(stats) == pytest.approx(
      training_ece, abs=1e-6)
  record = scores.reliability_record(stats)
  assert record['count'][7] == 3 and record['ece'] == pytest.approx(0.25)
  np.testing.assert_allclose(scores.statistics_from_record(record), stats)
  assert scores.reliability_record(np.zeros([3, 15]))['ece'] is None


# An SGC that predicts classes 1, 2, 1 / (3, ignored), 0, 1 with 0.7.
_SGC_PROBS = (0.1 + 0.6 * np.eye(4, dtype=np.float32)[[[[1, 2, 1],
                                                        [3, 0, 1]]]])


def _pseudo_label_statistics(sources):
  """`pseudo_label_statistics` of the sources `sources` of the tiny example:
  decoder _PROBS, SGC _SGC_PROBS, fused their mean, sharpened at T = 0.5;
  five classes (class 4 never occurs)."""
  fused = (_PROBS + _SGC_PROBS) / 2
  probs = {'decoder': _PROBS, 'sgc': _SGC_PROBS, 'fused': fused,
           'sharpened': fused ** 2 / np.sum(fused ** 2, -1, keepdims=True)}
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(fetches.pseudo_label_statistics(
        {source: tf.constant(probs[source]) for source in sources},
        tf.constant(_LABELS), 5, 255))


def test_per_source_confusion_matches_hand_computation():
  totals = _pseudo_label_statistics(fetches.SOURCES)
  # Rows: labels 0..3; columns: argmax. Pixel by pixel (label: decoder, SGC,
  # fused): 0: 0 1 1, 2: 1 2 1, 1: 1 1 1, 3: 3 0 0, 1: 0 1 1.
  expected = {'decoder': [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0],
                          [0, 0, 0, 1]],
              'sgc': [[0, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]],
              'fused': [[0, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0],
                        [1, 0, 0, 0]]}
  assert list(totals['source_confusion']) == list(expected)
  for source, rows in expected.items():
    matrix = np.zeros([5, 5], np.int64)
    matrix[:4, :4] = rows
    np.testing.assert_array_equal(totals['source_confusion'][source], matrix)
  np.testing.assert_array_equal(totals['pseudo_confusion'],
                                totals['source_confusion']['fused'])
  assert list(totals['reliability']) == list(fetches.SOURCES)
  totals.update(confusion=totals['source_confusion']['decoder'], num_images=1)
  record = cache.checkpoint_record('pseudoseg', 'ckpt-7', 7, totals, {})
  json.dumps(record, allow_nan=False)
  sources = record['sources']
  # IoU = TP / (TP + FP + FN) per class; class 4 has none: None, not counted.
  for source, ious, accuracy in (('decoder', [1 / 2, 1 / 3, 0, 1], 3 / 5),
                                 ('sgc', [0, 2 / 3, 1, 0], 3 / 5),
                                 ('fused', [0, 1 / 2, 0, 0], 2 / 5)):
    assert sources[source]['per_class_iou'][:4] == pytest.approx(ious)
    assert sources[source]['per_class_iou'][4] is None
    assert sources[source]['miou'] == pytest.approx(np.mean(ious))
    assert sources[source]['pixel_accuracy'] == pytest.approx(accuracy)
  assert sources['fused']['confusion_matrix'] == record['pseudo_label'][
      'confusion_matrix']
  assert record['pseudo_label']['miou'] == pytest.approx(0.125)


def test_without_attention_there_is_no_sgc_source():
  totals = _pseudo_label_statistics(('decoder', 'fused', 'sharpened'))
  assert list(totals['source_confusion']) == ['decoder', 'fused']
  assert list(totals['reliability']) == ['decoder', 'fused', 'sharpened']


def test_image_level_labels_leave_out_background_and_ignored_pixels():
  labels = np.array([
      [[0, 3], [3, 255]],      # class 3; 255: an outline or the eval padding
      [[1, 9], [8, 255]],      # classes 1 and 8; 9 is no class of C = 9
      [[0, 255], [255, 255]],  # background only
  ], np.int32)[..., np.newaxis]
  with tf.Graph().as_default(), tf.Session() as sess:
    image_labels = sess.run(fetches.image_level_labels(
        tf.constant(labels), NUM_CLASSES, 255))
  expected = np.zeros([3, NUM_CLASSES - 1], np.float32)
  expected[0, 2] = expected[1, 0] = expected[1, 7] = 1
  np.testing.assert_array_equal(image_labels, expected)


def test_select_evenly_keeps_first_and_last():
  checkpoints = [(s, 'ckpt-%d' % s) for s in range(10)]
  assert [s for s, _ in passes.select_evenly(checkpoints, 4)] == [0, 3, 6, 9]
  assert passes.select_evenly(checkpoints, 0) == checkpoints
  assert passes.select_evenly(checkpoints, 1) == [checkpoints[-1]]


def test_progress_lines_estimate_the_time_left_per_run(caplog):
  now = [0.]
  progress = passes.Progress({'baseline': 2, 'pseudoseg': 2}, 4,
                             clock=lambda: now[0])
  with caplog.at_level('INFO'):
    progress.done('baseline', 1, 'a', cached=True)  # nothing measured yet
    progress.start()
    now[0] = 10.
    progress.done('baseline', 2, 'b')  # 2 left at the overall mean, 10 s
    progress.start()
    now[0] = 40.
    progress.done('pseudoseg', 1, 'c')  # 1 left at pseudoseg's mean, 30 s
    progress.start()
    now[0] = 70.
    progress.done('pseudoseg', 2, 'd')
  assert [r.getMessage() for r in caplog.records
          if r.getMessage().startswith('analysis ')] == [
      'analysis 1/4 checkpoints  baseline step 1: a  cached  ETA ?',
      'analysis 2/4 checkpoints  baseline step 2: b  10.0 s  ETA 0:00:20',
      'analysis 3/4 checkpoints  pseudoseg step 1: c  30.0 s  ETA 0:00:30',
      'analysis 4/4 checkpoints  pseudoseg step 2: d  30.0 s  ETA 0:00:00']


def _write_events(logdir, values_by_step):
  """One event file of scalar summaries {step: {tag: value}}."""
  writer = tf.summary.FileWriter(str(logdir))
  for step, values in values_by_step.items():
    results_io.write_scalar_summaries(writer, values, step)
  writer.close()


def test_scalar_curves_last_write_wins_and_suffix_is_matched(tmp_path):
  _write_events(tmp_path, {1: {'total_loss_1': 3.0, 'total_loss_2': 9.0},
                           2: {'total_loss_1': 2.0}})
  # A resumed run writes a second file that repeats step 2.
  import time
  time.sleep(1.1)  # event file names carry the second they were opened
  _write_events(tmp_path, {2: {'total_loss_1': 1.5, 'learning_rate': 0.5},
                           3: {'total_loss_1': 1.0}})
  curves = event_files.read_scalar_events(str(tmp_path))
  steps, values = event_files.find_curve(curves, 'total_loss')
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_allclose(values, [3.0, 1.5, 1.0])
  assert event_files.find_curve(curves, 'learning_rate')[1].tolist() == [0.5]
  assert event_files.find_curve(curves, 'total') is None


def _record(step, miou, pseudo_mious=None):
  """A last-checkpoint record: val mIoU `miou`, per-class IoU [miou,
  2 * miou, None]; a PseudoSeg one (pseudo_mious: {source: mIoU}) also
  pseudo-label pixel accuracy 0.9, per source that mIoU and per-class IoU
  [mIoU, 0, None], and ECEs 1, 2, 3, 4% (decoder, SGC, fused, sharpened; no
  SGC when pseudo_mious has none)."""
  record = {'global_step': step, 'miou': miou, 'num_images': 8,
            'per_class_iou': [miou, 2 * miou, None]}
  if pseudo_mious is not None:
    record['pseudo_label'] = {'pixel_accuracy': 0.9}
    record['sources'] = {source: {'miou': value,
                                  'per_class_iou': [value, 0.0, None]}
                         for source, value in pseudo_mious.items()}
    record['reliability'] = {source: {'ece': 0.01 * (index + 1)}
                             for index, source in enumerate(fetches.SOURCES)
                             if source != 'sgc' or 'sgc' in pseudo_mious}
  return record


def _cells(line):
  return [cell.strip() for cell in line.strip('|').split('|')]


_EVALUATION = {'dataset': 'synthetic', 'split': 'val', 'num_images': 8,
               'batch_size': 2}
_NAMES = ['background', 'disc', 'square']


def _markdown(last, rows, note=None):
  return results_table.results_markdown(
      rows, results_table.per_class_columns(last), _NAMES,
      [('/out/curves.png', 'curves')], '/runs', _EVALUATION, note)


def _upper_bound_json(path, **overrides):
  """A committed full-label result (setting 'tiny', 800 steps) at path."""
  data = dict({'miou_mean': 0.7, 'miou_std': 0.015, 'seeds': [0, 1, 2],
               'steps': 800, 'train_split': 'train_aug', 'setting': 'tiny',
               'command': 'bash bench/full.sh', 'date': '2026-11-26'},
              **overrides)
  path.write_text(json.dumps({k: v for k, v in data.items()
                              if v is not None}))
  return str(path)


def test_three_runs_and_a_committed_full_label_row(tmp_path):
  bound, note = results_table.full_label_bound(
      _upper_bound_json(tmp_path / 'upper.json'), 'train_aug', 800, 'tiny')
  assert note is None
  last = {'baseline': _record(800, 0.40),
          'pseudoseg': _record(800, 0.45, {'decoder': 0.5, 'sgc': 0.25,
                                           'fused': 0.375}),
          'pseudoseg_weakly': _record(800, 0.5, {'decoder': 0.55, 'sgc': 0.6,
                                                 'fused': 0.575})}
  logdirs = {run: '/runs/' + run for run in last}
  rows = results_table.results_rows(last, logdirs, '16_clean_3', 'train_aug',
                                    bound)
  assert [row['method'] for row in rows] == [
      'Supervised baseline', 'PseudoSeg',
      'PseudoSeg (weakly: image-level labels)', 'Full-label baseline']
  assert [row['source'] for row in rows] == [
      'measured in this run (/runs/baseline)',
      'measured in this run (/runs/pseudoseg)',
      'measured in this run (/runs/pseudoseg_weakly)',
      'committed benchmark: bash bench/full.sh (2026-11-26)']
  lines = results_table.results_table(rows).splitlines()
  assert len(lines) == 6
  assert _cells(lines[0])[6:10] == [
      'Pseudo-label pixel acc. (%)', 'Pseudo-label mIoU decoder (%)',
      'Pseudo-label mIoU SGC (%)', 'Pseudo-label mIoU fused (%)']
  assert _cells(lines[2]) == ['Supervised baseline', 'train_sup.py',
                              '16_clean_3', '800', '40.0'] + ['-'] * 9
  assert _cells(lines[3])[2:] == ['16_clean_3 + unlabeled train_aug', '800',
                                  '45.0', '+5.0', '90.0', '50.0', '25.0',
                                  '37.5', '1.0', '2.0', '3.0', '4.0']
  assert _cells(lines[4])[1:10] == [
      'train_wss.py --weakly', '16_clean_3 + image-level train_aug', '800',
      '50.0', '+10.0', '90.0', '55.0', '60.0', '57.5']
  assert _cells(lines[5])[2:] == ['train_aug', '800', '70.0 ± 1.5 (3 seeds)',
                                  '+30.0'] + ['-'] * 8
  markdown = _markdown(last, rows)
  sources = markdown.split('Where the numbers come from:\n\n')[1]
  assert sources.splitlines()[:4] == ['- %s: %s' % (row['method'],
                                                   row['source'])
                                      for row in rows]
  assert 'No full-label row' not in markdown


def test_full_label_row_left_out_when_the_setting_differs(tmp_path):
  path = _upper_bound_json(tmp_path / 'upper.json',
                           setting='synthetic 16_clean_3, 800 steps')
  bound, note = results_table.full_label_bound(
      path, 'train_aug', 800, 'synthetic 128_clean, 800 steps')
  assert bound is None
  assert note == (
      'No full-label row: the committed result `%s` does not apply to this '
      'run (its setting is "synthetic 16_clean_3, 800 steps", this run\'s '
      '"synthetic 128_clean, 800 steps").' % path)
  # Without attention there is no SGC: its cells are '-'.
  last = {'baseline': _record(800, 0.40),
          'pseudoseg': _record(800, 0.45, {'decoder': 0.5, 'fused': 0.375})}
  rows = results_table.results_rows(
      last, {run: '/runs/' + run for run in last}, '16_clean_3', 'train_aug',
      bound)
  assert [row['method'] for row in rows] == ['Supervised baseline',
                                             'PseudoSeg']
  assert _cells(results_table.results_table(rows).splitlines()[3])[7:14] == [
      '50.0', '-', '37.5', '1.0', '-', '3.0', '4.0']
  markdown = _markdown(last, rows, note)
  assert note in markdown.splitlines()
  assert '| Full-label' not in markdown
  # Nor does a JSON without a setting, of other steps or split, or absent.
  for overrides, reason in (
      ({'setting': None}, 'it has no "setting"; this run: "tiny"'),
      ({'steps': 1000}, 'its steps is 1000, this run\'s 800'),
      ({'train_split': '2_clean'},
       'its train_split is "2_clean", this run\'s "train_aug"')):
    path = _upper_bound_json(tmp_path / 'upper.json', **overrides)
    bound, note = results_table.full_label_bound(path, 'train_aug', 800,
                                                 'tiny')
    assert bound is None and '(%s).' % reason in note
  absent = str(tmp_path / 'absent.json')
  assert 'does not exist' in results_table.full_label_bound(
      absent, 'train_aug', 800, 'tiny')[1]
  assert results_table.full_label_bound('', 'train_aug', 800, 'tiny') == (
      None, None)
  (tmp_path / 'upper.json').write_text('{"miou": 1}')
  with pytest.raises(InputError, match='miou_mean'):
    results_table.full_label_bound(path, 'train_aug', 800, 'tiny')


def test_measured_full_label_row_replaces_the_committed_one(tmp_path):
  last = {'baseline': _record(800, 0.40),
          'pseudoseg': _record(800, 0.45, {'decoder': 0.5, 'fused': 0.375}),
          'full_label': _record(800, 0.6)}
  bound, _ = results_table.full_label_bound(
      _upper_bound_json(tmp_path / 'upper.json'), 'train_aug', 800, 'tiny')
  rows = results_table.results_rows(
      last, {run: '/runs/' + run for run in last}, '16_clean_3', 'train_aug',
      bound)
  assert len(rows) == 3
  assert {key: rows[2][key] for key in ('method', 'split', 'miou', 'source')
         } == {'method': 'Full-label baseline', 'split': 'train_aug',
               'miou': 0.6, 'source': 'measured in this run (/runs/full_label)'}


def test_per_class_table_names_the_classes():
  last = {'baseline': _record(800, 0.2),
          'pseudoseg': _record(800, 0.3, {'decoder': 0.5, 'sgc': 0.25,
                                          'fused': 0.375}),
          'pseudoseg_weakly': _record(800, 0.4, {'decoder': 0.1,
                                                 'fused': 0.125})}
  columns = results_table.per_class_columns(last)
  assert [title for title, _ in columns] == [
      'Baseline val', 'PseudoSeg val', 'PseudoSeg weakly val',
      'PseudoSeg pseudo-label decoder', 'PseudoSeg pseudo-label SGC',
      'PseudoSeg pseudo-label fused', 'PseudoSeg weakly pseudo-label decoder',
      'PseudoSeg weakly pseudo-label fused']
  lines = results_table.per_class_table(
      columns, results_table.class_names(3, _NAMES)).splitlines()
  assert _cells(lines[0])[:2] == ['Class', 'Baseline val IoU (%)']
  assert [_cells(line) for line in lines[2:]] == [
      ['background', '20.0', '30.0', '40.0', '50.0', '25.0', '37.5', '10.0',
       '12.5'],
      ['disc', '40.0', '60.0', '80.0'] + ['0.0'] * 5,
      ['square'] + ['-'] * 8]
  assert '\n'.join(lines) in _markdown(last, results_table.results_rows(
      last, {run: run for run in last}, 's', 'u'))
  assert results_table.class_names(3) == ['0', '1', '2']
  with pytest.raises(InputError, match='2 class names'):
    results_table.class_names(3, ['a', 'b'])


def _is_png(path):
  with open(path, 'rb') as stream:
    return stream.read(8) == PNG_MAGIC and os.path.getsize(path) > 1000


def test_plots_write_png_files(tmp_path, umask_022):
  steps = np.array([0, 10, 20])
  curve = (steps, np.array([0.1, 0.3, 0.4]))
  plots.plot_curves(str(tmp_path / 'curves.png'), {'a': curve, 'b': curve},
                    {'a': curve}, {'PseudoSeg': {'decoder': curve}},
                    {'decoder': curve, 'sgc': curve},
                    {'decoder': curve})
  plots.plot_curves(str(tmp_path / 'empty.png'), {}, {}, {}, {})
  stats = np.zeros([3, 15])
  stats[:, 7], stats[:, 14] = [3, 1.5, 2], [1, 1.0, 1]
  plots.plot_reliability(str(tmp_path / 'reliability.png'),
                         {'decoder': stats, 'fused': stats},
                         {'decoder': 0.1, 'fused': None}, 'title')
  label = np.array([[0, 1], [255, 8]])
  assert plots.colorize(label)[1, 0].tolist() == list(plots.IGNORE_COLOR)
  assert plots.colorize(label)[0, 1].tolist() == [128, 0, 0]
  image = np.zeros([2, 2, 3], np.uint8)
  plots.plot_overlays(str(tmp_path / 'overlays.png'),
                      [('row 1', [image, label, label, label])] * 2,
                      ['Image', 'GT', 'A', 'B'], NUM_CLASSES)
  names = sorted(os.listdir(str(tmp_path)))
  assert names == ['curves.png', 'empty.png', 'overlays.png',
                   'reliability.png']  # no temporary file left behind
  assert all(_is_png(str(tmp_path / name)) for name in names)
  # The umask's mode, not the 0600 of the temporary file.
  assert {os.stat(tmp_path / name).st_mode & 0o777 for name in names} == {
      umask_022}


def test_overlay_cache_round_trip_with_the_umask_mode(tmp_path, umask_022):
  rows = [{'image': np.full([2, 2, 3], index, np.uint8),
           'label': np.array([[0, 1], [255, 2]]),
           'prediction': np.array([[0, 1], [1, 2]]), 'name': 'img%d' % index}
          for index in range(2)]
  path = cache.overlays_path(str(tmp_path), 'baseline', 3)
  cache.save_overlays(path, rows, {'num_images': 2})
  assert os.listdir(tmp_path / 'analysis') == ['baseline-3-overlays.npz']
  assert os.stat(path).st_mode & 0o777 == umask_022
  loaded = cache.load_overlays(path, {'num_images': 2}, 2)
  assert [row['name'] for row in loaded] == ['img0', 'img1']
  for row, saved in zip(rows, loaded):
    for key in ('image', 'label', 'prediction'):
      np.testing.assert_array_equal(saved[key], row[key])
  assert cache.load_overlays(path, {'num_images': 3}, 2) is None


def _captured_figure(monkeypatch, plot, *args, **kwargs):
  """The figure `plot` would write (left open for the caller to inspect)."""
  figures = []
  monkeypatch.setattr(plots, 'save_figure',
                      lambda figure, path: figures.append(figure))
  plot('unused.png', *args, **kwargs)
  return figures[0]


def test_curves_show_pseudo_label_miou_per_source_of_each_run(monkeypatch):
  curve = (np.array([0, 10]), np.array([0.1, 0.3]))
  figure = _captured_figure(
      monkeypatch, plots.plot_curves, {}, {'PseudoSeg weakly': curve}, {
          'PseudoSeg': {'decoder': curve, 'sgc': curve, 'fused': curve},
          'PseudoSeg weakly': {'decoder': curve, 'fused': curve}}, {})
  lines = figure.axes[2].get_lines()
  assert [(line.get_label(), line.get_linestyle()) for line in lines] == [
      ('PseudoSeg: Decoder softmax', '-'),
      ('PseudoSeg: SGC (attention CAM)', '-'),
      ('PseudoSeg: Fused pseudo label', '-'),
      ('PseudoSeg weakly: Decoder softmax', '--'),
      ('PseudoSeg weakly: Fused pseudo label', '--')]
  assert lines[0].get_color() == lines[3].get_color() == 'tab:blue'
  assert [line.get_label() for line in figure.axes[1].get_lines()] == [
      'PseudoSeg weakly']
  plots.pyplot.close(figure)


def test_overlay_legend_names_the_classes(monkeypatch):
  label = np.array([[0, 1], [255, 2]])
  rows = [('row', [np.zeros([2, 2, 3], np.uint8)] + [label] * 4)]
  titles = ['Image', 'GT', 'Baseline', 'PseudoSeg', 'PseudoSeg weakly']
  for names, texts, title in (
      (['background', 'disc', 'square'], ['background', 'disc', 'square'],
       'class'),
      (None, ['0', '1', '2'], 'class id')):
    figure = _captured_figure(monkeypatch, plots.plot_overlays, rows, titles,
                              3, class_names=names)
    legend = figure.legends[0]
    assert [text.get_text() for text in legend.get_texts()] == texts + [
        'ignore (255)']
    assert legend.get_title().get_text() == title
    assert [axes.get_title() for axes in figure.axes] == titles
    plots.pyplot.close(figure)


def test_validation_curves_per_source():
  records = [_record(2, 0.5, {'decoder': 0.4, 'fused': 0.3}),
             _record(1, 0.2, {'decoder': None, 'fused': 0.1})]
  curves = scores.validation_curves(records)
  assert curves['step'].tolist() == [1, 2]
  np.testing.assert_allclose(curves['pseudo_miou_decoder'], [np.nan, 0.4])
  np.testing.assert_allclose(curves['pseudo_miou_fused'], [0.1, 0.3])
  assert 'pseudo_miou_sgc' not in curves and 'ece_sgc' not in curves


# ----------------------------------------------------------------------------
# End to end. The two runs' checkpoints are built in process with the model
# code of train_sup.py / train_wss.py (real training steps would add a minute
# of CPU time and nothing the analysis reads; analyze.py refuses a checkpoint
# that lacks a variable of its graph, so the names are checked).

MODEL_FLAGS = ['--model_variant=mobilenet_v2', '--output_stride=16',
               '--dataset=synthetic']


def _options():
  return common.ModelOptions({common.OUTPUT_TYPE: NUM_CLASSES},
                             crop_size=[33, 33], output_stride=16,
                             model_variant='mobilenet_v2')


def _build_baseline_on(images):
  model.multi_scale_logits(images, _options(), None, is_training=True,
                           fine_tune_batch_norm=True)


def _build_baseline():
  _build_baseline_on(tf.placeholder(tf.float32, [1, 33, 33, 3]))


def _build_pseudoseg():
  """The variables train_wss.py adds: DeepLab, the cls head, the SGC."""
  images = tf.placeholder(tf.float32, [2, 33, 33, 3])
  _build_baseline_on(images)
  pseudoseg.attention_branch(images, tf.placeholder(tf.float32, [2, 8]),
                             tf.ones([2, 3, 3]), pseudoseg_options(_options()),
                             NUM_CLASSES, is_training=True)


def test_weakly_sgc_takes_the_ground_truth_image_labels():
  """One graph, the same weights, the fetches built twice: with `weakly` the
  SGC (Grad-CAM of the ground-truth classes 3 and 5, 7) differs, the decoder
  does not."""
  labels = np.full([2, 33, 33, 1], 255, np.int32)  # the eval padding
  labels[0, :30, :30], labels[0, 5:20, 5:20] = 0, 3
  labels[1, :25], labels[1, 2:10, 2:10], labels[1, 12:20, 12:20] = 0, 5, 7
  images = np.random.RandomState(0).uniform(0, 255, [2, 33, 33, 3])
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    samples = {common.IMAGE: tf.constant(images, tf.float32),
               common.LABEL: tf.constant(labels),
               common.VALID: tf.constant((labels != 255).astype(np.int32)),
               common.IMAGE_NAME: tf.constant(['a', 'b'])}
    config = pseudoseg_options(_options())
    per_batch = {weakly: fetches.build_fetches(
        samples, _options(), NUM_CLASSES, 255,
        pseudo_config=config._replace(weakly=weakly))[0]
                 for weakly in (False, True)}
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(per_batch)
  predicted, weakly = values[False]['reliability'], values[True]['reliability']
  np.testing.assert_allclose(predicted['decoder'], weakly['decoder'])
  assert not np.allclose(predicted['sgc'], weakly['sgc'])


def _save_run(logdir, build, seed, events):
  """Checkpoints at steps 1 and 2 (different weights) and an event file."""
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    build()
    step = tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for value in (1, 2):
        sess.run(tf.assign(step, value))
        saver.save(sess, os.path.join(logdir, 'model.ckpt'), global_step=value)
        sess.run(tf.global_variables_initializer())
  _write_events(logdir, events)


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('analysis_runs')
  sup, wss = str(root / 'train_sup'), str(root / 'train_wss')
  os.makedirs(sup)
  os.makedirs(wss)
  _save_run(sup, _build_baseline, 0, {1: {'total_loss_1': 2.0},
                                      2: {'total_loss_1': 1.5}})
  _save_run(wss, _build_pseudoseg, 1, {
      1: {'total_loss': 3.0, 'calibration/ece_decoder': 0.2},
      2: {'total_loss': 2.5, 'calibration/ece_decoder': 0.1}})
  return root, sup, wss


def _analyze_args(synthetic_dir, sup, wss, output, *extra):
  return [*MODEL_FLAGS, '--dataset_dir=%s' % synthetic_dir,
          '--eval_crop_size=113,113', '--eval_batch_size=2',
          '--train_split=16_clean_3', '--sup_logdir=%s' % sup,
          '--wss_logdir=%s' % wss, '--output_dir=%s' % output, *extra]


@pytest.fixture(scope='module')
def script_runs(two_runs, synthetic_dir, tmp_path_factory):
  """analyze.py as users run it, two runs started together, each (folder,
  StartedProcess); result() waits:
  'end_to_end': the two runs into <root>/out, the PseudoSeg checkpoints
  analysed once more as a weakly run, with a committed full-label result
  <root>/upper.json;
  'absent_logdir': --sup_logdir <root>/absent, output
  'absent_logdir_output'."""
  root, sup, wss = two_runs
  upper = _upper_bound_json(root / 'upper.json', miou_mean=0.75,
                            miou_std=0.01, seeds=[0, 1], steps=2,
                            setting='e2e')
  absent_output = tmp_path_factory.mktemp('analysis_bad') / 'out'
  runs = {
      'end_to_end': (root, start_script('analyze.py', *_analyze_args(
          synthetic_dir, sup, wss, str(root / 'out'),
          '--num_overlay_images=3', '--upper_bound_json=%s' % upper,
          '--setting=e2e', '--weakly_logdir=%s' % wss), timeout=600)),
      'absent_logdir': (root, start_script('analyze.py', *_analyze_args(
          synthetic_dir, str(root / 'absent'), wss, str(absent_output)),
                                           timeout=600)),
  }
  yield dict(runs, absent_logdir_output=absent_output, upper=upper)
  for name in ('end_to_end', 'absent_logdir'):
    runs[name][1].stop()


def _load_record(output, run, step):
  with open(os.path.join(output, 'analysis', '%s-%d.json' % (run, step))) as f:
    return json.load(f)


# The last test: the end-to-end run started with the first one.
@pytest.mark.e2e
def test_analyze_end_to_end_and_cache(two_runs, script_runs, synthetic_dir,
                                      capsys, caplog):
  root, sup, wss = two_runs
  output = str(root / 'out')
  upper = script_runs['upper']
  # The PseudoSeg checkpoints, analysed once more as a weakly run.
  process = script_runs['end_to_end'][1].result()
  assert process.returncode == 0, process.stderr[-3000:]
  # The progress lines are logged (stderr): `...] analysis 1/6 checkpoints
  # baseline step 1: ...`.
  progress = re.findall(r'\] analysis (\d)/6 checkpoints  (\w+) step (\d)',
                        process.stderr)
  assert progress == [('1', 'baseline', '1'), ('2', 'baseline', '2'),
                      ('3', 'pseudoseg', '1'), ('4', 'pseudoseg', '2'),
                      ('5', 'pseudoseg_weakly', '1'),
                      ('6', 'pseudoseg_weakly', '2')]
  for name in ('curves.png', 'reliability.png', 'overlays.png'):
    assert _is_png(os.path.join(output, name)), name
  record, weakly = [_load_record(output, run, 2)
                    for run in ('pseudoseg', 'pseudoseg_weakly')]
  assert not record['settings']['weakly'] and weakly['settings']['weakly']
  # Same weights: the decoder agrees; the SGC took other class labels.
  assert weakly['sources']['decoder'] == record['sources']['decoder']
  assert weakly['reliability']['sgc'] != record['reliability']['sgc']
  assert record['num_images'] == 8 and record['global_step'] == 2
  counted = np.sum(record['pseudo_label']['confusion_matrix'])
  for source in fetches.SOURCES:
    reliability = record['reliability'][source]
    # Every labelled val pixel at the 33 x 33 decoder resolution is counted
    # once per source; the pseudo-label confusions count the same pixels.
    assert sum(reliability['count']) == counted
    assert 0 <= reliability['ece'] <= 1
  assert list(record['sources']) == list(fetches.CONFUSION_SOURCES)
  for summary in record['sources'].values():
    assert np.sum(summary['confusion_matrix']) == counted
    assert len(summary['per_class_iou']) == NUM_CLASSES
  # Logits of a 113 crop at output stride 16 are 8 x 8; the padding (the
  # images are 84-108 px) is not counted.
  assert 8 * 4 * 4 < sum(record['reliability']['decoder']['count']) < 8 * 64
  with open(os.path.join(output, 'RESULTS.md')) as stream:
    markdown = stream.read()
  assert markdown in process.stdout
  for text in ('| Supervised baseline | train_sup.py | 16_clean_3 | 2 |',
               '| PseudoSeg | train_wss.py | 16_clean_3 + unlabeled train_aug '
               '| 2 |', '| PseudoSeg (weakly: image-level labels) | '
               'train_wss.py --weakly |', '| 75.0 ± 1.0 (2 seeds) |',
               '- PseudoSeg (weakly: image-level labels): measured in this '
               'run (%s)' % wss, '- Full-label baseline: committed '
               'benchmark: bash bench/full.sh (2026-11-26)',
               '| hexagon |', 'tensorboard --logdir %s' % root):
    assert text in markdown, text
  with open(os.path.join(output, 'results.json')) as stream:
    results = json.load(stream)
  assert len(results['rows']) == 4
  assert results['per_class_iou']['class_names'][-1] == 'hexagon'
  # A rerun reuses every cached checkpoint; a measured full-label run (here
  # the baseline's checkpoints) replaces the committed row. (analyze.py's
  # main in this process: its progress lines are log records, its tables
  # stdout.)
  caplog.set_level(logging.INFO)
  capsys.readouterr()
  assert run_main(analyze, *_analyze_args(
      synthetic_dir, sup, wss, output, '--num_overlay_images=0',
      '--upper_bound_json=%s' % upper, '--setting=e2e',
      '--full_logdir=%s' % sup)) == 0
  rerun_stdout = capsys.readouterr().out
  logged = '\n'.join(record.getMessage() for record in caplog.records)
  assert len(re.findall(r'^analysis \d/\d checkpoints  .*  cached  ETA ',
                        logged, re.M)) == 4
  assert re.findall(r'^analysis \d/6 checkpoints  full_label step (\d)',
                    logged, re.M) == ['1', '2']
  assert 'pseudoseg_weakly' not in rerun_stdout
  assert '- Full-label baseline: measured in this run (%s)' % sup in (
      rerun_stdout)
  assert 'committed benchmark' not in rerun_stdout
