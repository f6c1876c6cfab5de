"""Builds the PASCAL VOC 2012 segmentation tfrecords, subsets included.

Input layout (`--voc_root` is the VOCdevkit/VOC2012 folder):
  JPEGImages/<name>.jpg
  SegmentationClass/<name>.png            palette PNGs (read as their indices)
  ImageSets/Segmentation/{train,val,trainval}.txt
  `--sbd_label_dir`/<name>.png            SegmentationClassAug index PNGs (SBD)
  `--splits_dir`/<split>.txt              labeled subsets (2_clean, ...)

Splits written (each its own set of `--num_shards` shards):
  train, val, trainval   the ImageSets lists, labels from SegmentationClass;
  train_aug              train + SBD minus val (10,582 images with the usual
                         data), labels from `--sbd_label_dir`, falling back to
                         SegmentationClass; the SBD names come from
                         `--train_aug_list` if given, else from every label in
                         `--sbd_label_dir`. Skipped (warning) without
                         `--sbd_label_dir`;
  <split>                one per `<split>.txt` in `--splits_dir`, labels from
                         SegmentationClass.

Labels are stored as single-channel index PNGs (palette PNGs are converted:
docs/DESIGN.md §Departures 2). Every split but `val` is written in a seeded
random order (docs/DESIGN.md §Departures 2). Usage:
  python -m datasets.build_voc2012_data --voc_root=.../VOC2012 \\
      --sbd_label_dir=.../SegmentationClassAug --output_dir=DIR
"""
import collections
import os
import sys

# Lets `python datasets/build_voc2012_data.py` import the repo's packages.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from datasets import build_data  # noqa: E402
from utils import errors  # noqa: E402

FLAGS = flags.FLAGS
BuildError = build_data.BuildError

NUM_CLASSES = 21
IMAGE_SET_SPLITS = ('train', 'val', 'trainval')
DEFAULT_SPLITS_DIR = os.path.join(_REPO_ROOT, 'data_splits', 'pascal_voc_seg')

# What to write for one split: its image names, and the label folders to look
# in, in order (the first one holding `<name>.png` gives the label).
SplitPlan = collections.namedtuple('SplitPlan', ['names', 'label_dirs'])


def _train_aug_names(train, val, sbd_label_dir, train_aug_list):
  """train + SBD names - val, sorted."""
  if train_aug_list:
    sbd = build_data.read_list(train_aug_list)
  else:
    sbd = [name[:-len('.png')] for name in os.listdir(sbd_label_dir)
           if name.endswith('.png')]
  return sorted((set(train) | set(sbd)) - set(val))


def plan_splits(voc_root, sbd_label_dir=None, train_aug_list=None,
                splits_dir=DEFAULT_SPLITS_DIR):
  """Reads all lists and decides what to write.

  Returns:
    OrderedDict split -> SplitPlan.
  """
  build_data.require_dir(voc_root, 'VOC root (--voc_root)')
  class_dir = os.path.join(voc_root, 'SegmentationClass')
  build_data.require_dir(os.path.join(voc_root, 'JPEGImages'), 'JPEGImages')
  build_data.require_dir(class_dir, 'SegmentationClass')
  sets_dir = os.path.join(voc_root, 'ImageSets', 'Segmentation')
  build_data.require_dir(sets_dir, 'ImageSets/Segmentation')
  plan = collections.OrderedDict()
  for split in IMAGE_SET_SPLITS:
    names = build_data.read_list(os.path.join(sets_dir, split + '.txt'))
    plan[split] = SplitPlan(names, [class_dir])
  if sbd_label_dir:
    build_data.require_dir(sbd_label_dir,
                           'SBD labels (SegmentationClassAug, --sbd_label_dir)')
    names = _train_aug_names(plan['train'].names, plan['val'].names,
                             sbd_label_dir, train_aug_list)
    plan['train_aug'] = SplitPlan(names, [sbd_label_dir, class_dir])
  else:
    logging.warning('no --sbd_label_dir given: split train_aug is not built')
  if splits_dir:
    build_data.require_dir(splits_dir, 'subset lists (--splits_dir)')
    for file_name in sorted(os.listdir(splits_dir)):
      if file_name.endswith('.txt'):
        names = build_data.read_list(os.path.join(splits_dir, file_name))
        plan[file_name[:-len('.txt')]] = SplitPlan(names, [class_dir])
  return plan


def _paths(voc_root, split, name, label_dirs):
  """(image path, label path) of one image; BuildError if either is missing."""
  image_path = os.path.join(voc_root, 'JPEGImages', name + '.jpg')
  if not os.path.isfile(image_path):
    raise BuildError('split %s: image %s not found' % (split, image_path))
  for label_dir in label_dirs:
    label_path = os.path.join(label_dir, name + '.png')
    if os.path.isfile(label_path):
      return image_path, label_path
  raise BuildError('split %s: image %s has no label %s.png in %s' %
                   (split, image_path, name, ' or '.join(label_dirs)))


def _examples(pairs):
  """Yields the Example of each (name, image path, label path)."""
  for name, image_path, label_path in pairs:
    data, image_format, height, width = build_data.load_image(image_path)
    label = build_data.load_index_label(label_path)
    yield build_data.example_from_encoded(name, data, image_format, height,
                                          width, label, NUM_CLASSES,
                                          where=label_path)


def build(voc_root, output_dir, sbd_label_dir=None, train_aug_list=None,
          splits_dir=DEFAULT_SPLITS_DIR, num_shards=4):
  """Checks that every listed image and label exists, then writes all splits.

  Returns:
    OrderedDict split -> list of image names (in written order).
  """
  plan = plan_splits(voc_root, sbd_label_dir, train_aug_list, splits_dir)
  # Missing files are reported before anything is written; decoding checks
  # (size, label values) happen while writing.
  pairs = collections.OrderedDict()
  for split, (names, label_dirs) in plan.items():
    if split != 'val':
      names = build_data.shuffled(names)
    pairs[split] = [(name,) + _paths(voc_root, split, name, label_dirs)
                    for name in names]
  written = collections.OrderedDict()
  for split, split_pairs in pairs.items():
    build_data.write_split(output_dir, split, _examples(split_pairs),
                           len(split_pairs), num_shards)
    written[split] = [name for name, _, _ in split_pairs]
    logging.info('wrote %s: %d images', split, len(split_pairs))
  return written


def define_flags():
  """Defines the script's flags (only when run as a script: the builders share
  flag names, so importing several of them must not define flags)."""
  flags.DEFINE_string('voc_root', None, 'The VOCdevkit/VOC2012 folder.')
  flags.DEFINE_string('sbd_label_dir', None,
                      'SegmentationClassAug folder of index PNGs (SBD) for '
                      'train_aug; without it train_aug is skipped.')
  flags.DEFINE_string('train_aug_list', None,
                      'Optional list of the SBD train_aug names; default: '
                      'every label in --sbd_label_dir.')
  flags.DEFINE_string('splits_dir', DEFAULT_SPLITS_DIR,
                      'Folder of <split>.txt subset lists (data_splits/'
                      'pascal_voc_seg); empty to build none.')
  flags.DEFINE_string('output_dir', None, 'Folder for the tfrecords.')
  flags.DEFINE_integer('num_shards', 4, 'Shards per split.')


def main(argv):
  if len(argv) > 1:
    raise errors.InputError('unexpected arguments: %s' % ' '.join(argv[1:]))
  for name in ('voc_root', 'output_dir'):
    if not FLAGS[name].value:
      raise errors.InputError('--%s is required' % name)
  build(FLAGS.voc_root, FLAGS.output_dir, FLAGS.sbd_label_dir,
        FLAGS.train_aug_list, FLAGS.splits_dir, FLAGS.num_shards)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: errors.run_reporting_errors(main, argv))
