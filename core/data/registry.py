"""The registry of datasets and the shard files of their splits.

Each registered dataset has a `DatasetDescriptor`: its splits and their sizes,
its number of classes and its ignore label. A split is the set of shard files
`<dataset_dir>/<split>-NNNNN-of-NNNNN` (with or without the `.tfrecord`
extension; nothing else that starts with `<split>-`, such as a builder's
temporary file, is read). `check_split` is the one check of a dataset, split
and folder, made by core/data/data_generator.py's Dataset and by the scripts.
"""
import collections
import os
import re

from deeplab.tf_compat import tf
from utils.errors import InputError

DatasetDescriptor = collections.namedtuple(
    'DatasetDescriptor', ['splits_to_sizes', 'num_classes', 'ignore_label'])

_PASCAL_VOC_SEG = DatasetDescriptor(
    splits_to_sizes={
        'train': 1464,
        'train_aug': 10582,
        'trainval': 2913,
        'val': 1449,
        # Random subsets of the 1464 clean `train` images.
        '2_clean': 732,
        '4_clean': 366,
        '8_clean': 183,
        '16_clean_3': 92,
        '16_clean_14': 92,
        '16_clean_20': 92,
        'coco2voc_labeled': 91937,
        'coco2voc_unlabeled': 215340,
    },
    num_classes=21,
    ignore_label=255,
)

_COCO = DatasetDescriptor(
    splits_to_sizes={
        'train': 118287,
        'val': 5000,
        '32_all': 3697,
        '64_all': 1849,
        '128_all': 925,
        '256_all': 463,
        '512_all': 232,
        'unlabeled': 123403,
    },
    num_classes=81,
    ignore_label=255,
)

_CITYSCAPES = DatasetDescriptor(
    splits_to_sizes={
        'train_fine': 2975,
        'train_coarse': 22973,
        'trainval_fine': 3475,
        'trainval_coarse': 23473,
        'val_fine': 500,
        'test_fine': 1525,
    },
    num_classes=19,
    ignore_label=255,
)

_ADE20K = DatasetDescriptor(
    splits_to_sizes={
        'train': 20210,
        'val': 2000,
    },
    num_classes=151,
    ignore_label=0,
)

# Written by the synthetic-data builder: background + 8 shape classes.
_SYNTHETIC = DatasetDescriptor(
    splits_to_sizes={
        'train_aug': 2000,
        '2_clean': 1000,
        '4_clean': 500,
        '8_clean': 250,
        '16_clean_3': 125,
        '32_clean': 62,
        '64_clean': 31,
        '128_clean': 15,
        'val': 300,
        'cls_pretrain': 3000,  # image-level labels only (pretrain.py)
    },
    num_classes=9,
    ignore_label=255,
)

DATASETS = {
    'pascal_voc_seg': _PASCAL_VOC_SEG,
    'coco': _COCO,
    'cityscapes': _CITYSCAPES,
    'ade20k': _ADE20K,
    'synthetic': _SYNTHETIC,
}


def shard_pattern(split_name):
  """Regex of the file names of a split's shards (DeepLab's naming)."""
  return re.compile(r'^%s-\d{5}-of-\d{5}(\.tfrecord)?$' %
                    re.escape(split_name))


def split_files(dataset_dir, split_name):
  """The sorted shard files of a split in `dataset_dir` (maybe none).

  Only `<split>-NNNNN-of-NNNNN[.tfrecord]` counts: a half-written temporary file
  or any other name sharing the prefix is never read.
  """
  pattern = shard_pattern(split_name)
  candidates = tf.io.gfile.glob(os.path.join(dataset_dir, '%s-*' % split_name))
  return sorted(path for path in candidates
                if pattern.match(os.path.basename(path)))


def get_dataset_descriptor(dataset_name):
  """Returns the DatasetDescriptor of a registered dataset name.

  Raises:
    InputError: if the name is not registered.
  """
  if dataset_name not in DATASETS:
    raise InputError('Unknown dataset %r; known datasets: %s.' %
                     (dataset_name, ', '.join(sorted(DATASETS))))
  return DATASETS[dataset_name]


# A split checked by `check_split`: its dataset's DatasetDescriptor, its shard
# files (sorted, at least one) and the number of images the registry records.
CheckedSplit = collections.namedtuple('CheckedSplit',
                                      ['descriptor', 'files', 'num_images'])


def check_split(dataset_name, split_name, dataset_dir):
  """Validates a registered dataset, one of its splits and the folder of its
  tfrecords: the one check of Dataset and of the scripts' flags.

  Returns:
    CheckedSplit.

  Raises:
    InputError: unknown dataset or split, dataset_dir unset or not a folder,
      or no `<split>-NNNNN-of-NNNNN` file in it.
  """
  descriptor = get_dataset_descriptor(dataset_name)
  known_splits = ', '.join(sorted(descriptor.splits_to_sizes))
  if split_name not in descriptor.splits_to_sizes:
    raise InputError('Unknown split %r of dataset %r; known splits: %s.' %
                     (split_name, dataset_name, known_splits))
  if not dataset_dir:
    raise InputError('dataset_dir is not set; pass the folder holding the '
                     '%s tfrecords (--dataset_dir).' % dataset_name)
  if not tf.io.gfile.isdir(dataset_dir):
    raise InputError('dataset_dir %r does not exist or is not a folder '
                     '(--dataset_dir).' % dataset_dir)
  files = split_files(dataset_dir, split_name)
  if not files:
    raise InputError(
        'No tfrecord files match %s (dataset %r, split %r; known splits: '
        '%s).' % (os.path.join(dataset_dir, '%s-*' % split_name),
                  dataset_name, split_name, known_splits))
  return CheckedSplit(descriptor, files,
                      descriptor.splits_to_sizes[split_name])
