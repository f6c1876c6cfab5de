"""The results of analyze.py as tables: RESULTS.md and the rows of results.json.

Rows come from the JSON records of the last checkpoint of each run
(`analysis.checkpoint_record`); each row says where its numbers come from:
measured here, or (the full-label row only) a committed benchmark JSON that
is used only when it was made in the same setting. A per-class table shows
the val IoU of every run and the pseudo-label IoU of every source of every
PseudoSeg run. Pure Python; reads no flag.
"""
import json
import os

from utils.errors import InputError

# Run names (the cache files' prefix) and their method names, in table order.
BASELINE, PSEUDOSEG, WEAKLY, FULL_LABEL = (
    'baseline', 'pseudoseg', 'pseudoseg_weakly', 'full_label')
METHODS = {BASELINE: 'Supervised baseline', PSEUDOSEG: 'PseudoSeg',
           WEAKLY: 'PseudoSeg (weakly: image-level labels)',
           FULL_LABEL: 'Full-label baseline'}
# Short names for column titles (per-class table, overlays.png).
SHORT_NAMES = {BASELINE: 'Baseline', PSEUDOSEG: 'PseudoSeg',
               WEAKLY: 'PseudoSeg weakly', FULL_LABEL: 'Full-label'}
_SCRIPTS = {BASELINE: 'train_sup.py', PSEUDOSEG: 'train_wss.py',
            WEAKLY: 'train_wss.py --weakly', FULL_LABEL: 'train_sup.py'}
# Pseudo-label sources of the records (fetches.CONFUSION_SOURCES) and their
# names in the tables.
PSEUDO_SOURCES = {'decoder': 'decoder', 'sgc': 'SGC', 'fused': 'fused'}


def measured_source(logdir):
  """Source of a row analysed here."""
  return 'measured in this run (%s)' % logdir


def benchmark_source(upper_bound):
  """Source of the row of a committed full-label JSON."""
  return 'committed benchmark: %s (%s)' % (
      upper_bound.get('command') or 'command not recorded',
      upper_bound.get('date') or 'undated')


def class_names(num_classes, names=None):
  """Display names of the classes, in id order: `names`, else the ids.

  Args:
    num_classes: C.
    names: sequence of C names, or None / empty.

  Returns:
    list of C str.

  Raises:
    InputError: `names` is given but has not C entries.
  """
  if not names:
    return [str(index) for index in range(num_classes)]
  if len(names) != num_classes:
    raise InputError('%d class names (%s) for %d classes' %
                     (len(names), ','.join(names), num_classes))
  return [str(name) for name in names]


# ----------------------------------------------------------------------------
# The full-label row of a committed benchmark.


def read_upper_bound(path):
  """A committed full-label result (see analyze.py --upper_bound_json).

  Returns:
    dict with at least `miou_mean` (float in [0, 1]), usually also miou_std,
    seeds, steps, train_split, setting, command and date; None if `path` is
    empty or does not exist.

  Raises:
    InputError: the file exists but is not such a JSON object.
  """
  if not path or not os.path.exists(path):
    return None
  try:
    with open(path) as stream:
      data = json.load(stream)
    float(data['miou_mean'])
  except (OSError, ValueError, TypeError, KeyError) as error:
    raise InputError('--upper_bound_json %s is not a JSON object with a '
                     'numeric "miou_mean" (%s)' % (path, error))
  return data


def full_label_bound(path, train_split, steps, setting):
  """The committed full-label result of `path`, if it fits this run.

  It fits when its `train_split`, `steps` and `setting` equal this run's;
  a missing key does not fit.

  Args:
    path: JSON file of `read_upper_bound` (may be empty or absent).
    train_split: the split a full-label run trains on (e.g. train_aug).
    steps: this run's training steps.
    setting: this run's setting text.

  Returns:
    (bound, note): the dict of `read_upper_bound` and None when it fits;
    else None and a one-line Markdown note on why the full-label row is left
    out (None when no path is given).
  """
  if not path:
    return None, None
  bound = read_upper_bound(path)
  if bound is None:
    reason = 'the file does not exist'
  else:
    reason = _mismatch(bound, {'train_split': train_split, 'steps': steps,
                               'setting': setting})
  if reason is None:
    return bound, None
  return None, ('No full-label row: the committed result `%s` does not '
                'apply to this run (%s).' % (path, reason))


def _mismatch(bound, expected):
  """Why `bound` differs from `expected` {key: value}, None if it does not."""
  for key, value in expected.items():
    if key not in bound:
      return 'it has no "%s"; this run: %s' % (key, json.dumps(value))
    if bound[key] != value:
      return 'its %s is %s, this run\'s %s' % (key, json.dumps(bound[key]),
                                               json.dumps(value))
  return None


# ----------------------------------------------------------------------------
# Rows.


def results_rows(last_records, logdirs, labeled_split, unlabeled_split,
                 upper_bound=None):
  """Rows of the results table.

  Args:
    last_records: {run: record of its last checkpoint} for BASELINE,
      PSEUDOSEG and optionally WEAKLY and FULL_LABEL.
    logdirs: {run: training logdir} of the same runs.
    labeled_split: labeled split of the baseline and the PseudoSeg runs.
    unlabeled_split: unlabeled split of the PseudoSeg runs, all of whose
      labels the full-label run trains on.
    upper_bound: a fitting committed full-label result (`full_label_bound`),
      used when FULL_LABEL is not in `last_records`; or None.

  Returns:
    list of dicts in METHODS order: method, script, split, steps, miou
    (fraction or None) and source; every row but the baseline's also gain
    (miou minus the baseline's); PseudoSeg rows also pseudo_pixel_accuracy,
    pseudo_miou_<source> (decoder, sgc, fused; absent sources left out) and
    ece_<source>; a committed row also miou_std and seeds.
  """
  splits = {BASELINE: labeled_split,
            PSEUDOSEG: '%s + unlabeled %s' % (labeled_split, unlabeled_split),
            WEAKLY: '%s + image-level %s' % (labeled_split, unlabeled_split),
            FULL_LABEL: unlabeled_split}
  rows = []
  for run in METHODS:
    if run in last_records:
      rows.append(_measured_row(run, last_records[run], logdirs[run],
                                splits[run]))
    elif run == FULL_LABEL and upper_bound is not None:
      rows.append(_committed_row(upper_bound))
  baseline = last_records[BASELINE]['miou']
  for row in rows[1:]:
    row['gain'] = (None if None in (row['miou'], baseline)
                   else row['miou'] - baseline)
  return rows


def _measured_row(run, record, logdir, split):
  row = {'method': METHODS[run], 'script': _SCRIPTS[run], 'split': split,
         'steps': record['global_step'], 'miou': record['miou'],
         'source': measured_source(logdir)}
  if 'sources' in record:
    row['pseudo_pixel_accuracy'] = record['pseudo_label']['pixel_accuracy']
    for source, summary in record['sources'].items():
      row['pseudo_miou_' + source] = summary['miou']
    for source, reliability in record['reliability'].items():
      row['ece_' + source] = reliability['ece']
  return row


def _committed_row(upper_bound):
  return {'method': METHODS[FULL_LABEL], 'script': _SCRIPTS[FULL_LABEL],
          'split': upper_bound.get('train_split'),
          'steps': upper_bound.get('steps'),
          'miou': float(upper_bound['miou_mean']),
          'miou_std': upper_bound.get('miou_std'),
          'seeds': upper_bound.get('seeds'),
          'source': benchmark_source(upper_bound)}


_COLUMNS = (
    ('Method', 'method'), ('Script', 'script'), ('Labeled split', 'split'),
    ('Steps', 'steps'), ('val mIoU (%)', 'miou'),
    ('Gain over baseline (pp)', 'gain'),
    ('Pseudo-label pixel acc. (%)', 'pseudo_pixel_accuracy'),
    ('Pseudo-label mIoU decoder (%)', 'pseudo_miou_decoder'),
    ('Pseudo-label mIoU SGC (%)', 'pseudo_miou_sgc'),
    ('Pseudo-label mIoU fused (%)', 'pseudo_miou_fused'),
    ('ECE decoder (%)', 'ece_decoder'), ('ECE SGC (%)', 'ece_sgc'),
    ('ECE fused (%)', 'ece_fused'), ('ECE sharpened (%)', 'ece_sharpened'))


def _percent(value):
  return '-' if value is None else '%.1f' % (100 * value)


def _cell(row, key):
  value = row.get(key)
  if value is None:
    return '-'
  if key in ('method', 'script', 'split', 'steps'):
    return str(value)
  if key == 'gain':
    return '%+.1f' % (100 * value)
  text = _percent(value)
  if key == 'miou' and row.get('miou_std') is not None:
    text += ' ± %.1f' % (100 * row['miou_std'])
    if row.get('seeds'):
      text += ' (%d seeds)' % len(row['seeds'])
  return text


def _markdown_table(header, lines):
  """A Markdown table of a header and rows of cells (lists of str)."""
  return '\n'.join(['| %s |' % ' | '.join(header),
                    '|%s' % ('---|' * len(header))] +
                   ['| %s |' % ' | '.join(cells) for cells in lines]) + '\n'


def results_table(rows):
  """The rows as a Markdown table (percentages, gain in points)."""
  return _markdown_table([title for title, _ in _COLUMNS],
                         [[_cell(row, key) for _, key in _COLUMNS]
                          for row in rows])


# ----------------------------------------------------------------------------
# Per class.


def per_class_columns(last_records):
  """Per-class IoU columns of the last checkpoints.

  Args:
    last_records: {run: record of its last checkpoint}.

  Returns:
    list of (title, IoU list [C] of float or None): the val IoU of every run,
    then the pseudo-label IoU of every source of every PseudoSeg run, in
    METHODS order.
  """
  runs = [run for run in METHODS if run in last_records]
  columns = [('%s val' % SHORT_NAMES[run], last_records[run]['per_class_iou'])
             for run in runs]
  for run in runs:
    for source, summary in last_records[run].get('sources', {}).items():
      columns.append(('%s pseudo-label %s' % (SHORT_NAMES[run],
                                              PSEUDO_SOURCES[source]),
                      summary['per_class_iou']))
  return columns


def per_class_table(columns, names):
  """Markdown table, one row per class: its name and an IoU (%) per column.

  Args:
    columns: `per_class_columns`.
    names: C class names (`class_names`).
  """
  return _markdown_table(
      ['Class'] + ['%s IoU (%%)' % title for title, _ in columns],
      [[name] + [_percent(values[index]) for _, values in columns]
       for index, name in enumerate(names)])


# ----------------------------------------------------------------------------
# RESULTS.md.


def results_markdown(rows, columns, names, files, tensorboard_logdir,
                     evaluation, note=None):
  """The text of RESULTS.md.

  Args:
    rows: `results_rows`.
    columns: `per_class_columns` of the same records.
    names: C class names.
    files: list of (path, description) of the outputs.
    tensorboard_logdir: folder holding every training logdir.
    evaluation: dict dataset, split (str), num_images, batch_size (int).
    note: one line on a left-out row (`full_label_bound`), or None.

  Returns:
    str: the description, the results table, where each row's numbers come
    from, the per-class table, the files and the TensorBoard command.
  """
  # The 15 bins below are calibration.NUM_BINS, written out so that this
  # module stays pure Python.
  lines = [
      '# Results: supervised baseline vs PseudoSeg', '',
      'Dataset `%(dataset)s`, split `%(split)s` (%(num_images)d images), last '
      'checkpoint of each run. val mIoU as eval.py computes it. The pseudo '
      'labels of each PseudoSeg run are measured on the same images with the '
      'model in inference mode, at the decoder-logit resolution (labels '
      'resized nearest as in training, ignored pixels left out), in batches '
      'of %(batch_size)d images: pixel accuracy of the pseudo labels (argmax '
      'of the sharpened distribution); mIoU of the argmax of each source '
      '(decoder softmax, SGC, fused distribution; the weakly run\'s SGC uses '
      'the ground-truth image-level labels, as in its training); expected '
      'calibration errors (15 equal-width confidence bins). Gain: val mIoU '
      'minus the baseline\'s, in percentage points.' % evaluation,
      '', results_table(rows), 'Where the numbers come from:', '']
  lines += ['- %s: %s' % (row['method'], row['source']) for row in rows]
  if note:
    lines += ['', note]
  lines += ['', '## IoU per class, last checkpoint', '',
            'val IoU of each run, then the IoU of the argmax of each '
            'pseudo-label source of each PseudoSeg run (`-`: the class is '
            'neither labelled nor predicted).', '',
            per_class_table(columns, names), 'Files:', '']
  lines += ['- `%s`: %s' % (path, what) for path, what in files]
  lines += ['', 'Training curves in TensorBoard:', '',
            '    .venv/bin/tensorboard --logdir %s' % tensorboard_logdir, '']
  return '\n'.join(lines)
