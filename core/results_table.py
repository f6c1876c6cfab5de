"""The results table of analyze.py: rows from checkpoint records, Markdown.

Pure Python on the JSON records of core/analysis.py; reads no flag.
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


def read_upper_bound(path):
  """The full-label upper bound JSON (see analyze.py --upper_bound_json).

  Returns:
    dict with at least `miou_mean` (float in [0, 1]); None if `path` is empty
    or does not exist.

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


def results_rows(baseline, pseudoseg_record, labeled_split, unlabeled_split,
                 upper_bound=None):
  """Rows of the results table from the last records of both runs.

  Args:
    baseline: checkpoint record of the baseline's last checkpoint.
    pseudoseg_record: checkpoint record of PseudoSeg's last checkpoint.
    labeled_split: labeled split of both runs (e.g. 16_clean_3).
    unlabeled_split: PseudoSeg's unlabeled split (e.g. train_aug).
    upper_bound: dict of `read_upper_bound`, or None.

  Returns:
    list of dicts with keys method, script, split, steps, miou (fractions or
    None) and, for PseudoSeg, gain, pseudo_pixel_accuracy, pseudo_miou and
    ece_<source>; the upper bound row has miou_std and seeds.
  """
  rows = [
      {'method': 'Supervised baseline', 'script': 'train_sup.py',
       'split': labeled_split, 'steps': baseline['global_step'],
       'miou': baseline['miou']},
  ]
  pseudoseg_row = {
      'method': 'PseudoSeg', 'script': 'train_wss.py',
      'split': '%s + unlabeled %s' % (labeled_split, unlabeled_split),
      'steps': pseudoseg_record['global_step'],
      'miou': pseudoseg_record['miou'],
      'gain': (None if None in (pseudoseg_record['miou'], baseline['miou'])
               else pseudoseg_record['miou'] - baseline['miou']),
      'pseudo_pixel_accuracy':
          pseudoseg_record['pseudo_label']['pixel_accuracy'],
      'pseudo_miou': pseudoseg_record['pseudo_label']['miou']}
  for source, reliability in pseudoseg_record['reliability'].items():
    pseudoseg_row['ece_' + source] = reliability['ece']
  rows.append(pseudoseg_row)
  if upper_bound is not None:
    rows.append({
        'method': 'Full-label upper bound', 'script': 'train_sup.py',
        'split': upper_bound.get('train_split', 'all labels'),
        'steps': upper_bound.get('steps'),
        'miou': float(upper_bound['miou_mean']),
        'miou_std': upper_bound.get('miou_std'),
        'seeds': upper_bound.get('seeds')})
  return rows


_COLUMNS = (
    ('Method', 'method'), ('Script', 'script'), ('Labeled split', 'split'),
    ('Steps', 'steps'), ('val mIoU (%)', 'miou'),
    ('Gain over baseline (pp)', 'gain'),
    ('Pseudo-label pixel acc. (%)', 'pseudo_pixel_accuracy'),
    ('Pseudo-label mIoU (%)', 'pseudo_miou'),
    ('ECE decoder (%)', 'ece_decoder'), ('ECE SGC (%)', 'ece_sgc'),
    ('ECE fused (%)', 'ece_fused'), ('ECE sharpened (%)', 'ece_sharpened'))


def _cell(row, key):
  value = row.get(key)
  if value is None:
    return '-'
  if key in ('method', 'script', 'split', 'steps'):
    return str(value)
  if key == 'gain':
    return '%+.1f' % (100 * value)
  text = '%.1f' % (100 * value)
  if key == 'miou' and row.get('miou_std') is not None:
    text += ' ± %.1f' % (100 * row['miou_std'])
    if row.get('seeds'):
      text += ' (%d seeds)' % len(row['seeds'])
  return text


def results_table(rows):
  """The rows as a Markdown table (percentages, gain in points)."""
  lines = ['| %s |' % ' | '.join(title for title, _ in _COLUMNS),
           '|%s' % ('---|' * len(_COLUMNS))]
  for row in rows:
    lines.append('| %s |' % ' | '.join(_cell(row, key) for _, key in _COLUMNS))
  return '\n'.join(lines) + '\n'
