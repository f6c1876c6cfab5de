"""Tests of the dataset builders (VOC, COCO, synthetic) and build_data writing.

Records are read back with tf_record_iterator + tf.train.Example parsing and
decoded with PIL, independently of core/data/data_generator.py.
"""
import glob
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from core.data import registry
from datasets import build_coco_data
from datasets import build_data
from datasets import build_synthetic_data
from datasets import build_voc2012_data
from deeplab.tf_compat import tf

KEYS = {'image/encoded', 'image/filename', 'image/format', 'image/height',
        'image/width', 'image/channels', 'image/segmentation/class/encoded',
        'image/segmentation/class/format'}


def _bytes_feature(example, key):
  return example.features.feature[key].bytes_list.value[0]


def _int_feature(example, key):
  return example.features.feature[key].int64_list.value[0]


def read_split(output_dir, split):
  """Parses every record of `split`: list of dicts, in shard order."""
  records = []
  paths = sorted(glob.glob(os.path.join(output_dir, split + '-*')))
  assert paths, 'no shards for split %s' % split
  for path in paths:
    for serialized in tf.io.tf_record_iterator(path):
      example = tf.train.Example.FromString(serialized)
      assert set(example.features.feature) == KEYS
      label_png = Image.open(io.BytesIO(
          _bytes_feature(example, 'image/segmentation/class/encoded')))
      assert label_png.mode == 'L'  # raw indices, no palette
      label_format = 'image/segmentation/class/format'
      assert _bytes_feature(example, label_format) == b'png'
      assert _int_feature(example, 'image/channels') == 3
      image_data = _bytes_feature(example, 'image/encoded')
      records.append({
          'name': _bytes_feature(example, 'image/filename').decode(),
          'format': _bytes_feature(example, 'image/format').decode(),
          'height': _int_feature(example, 'image/height'),
          'width': _int_feature(example, 'image/width'),
          'image_data': image_data,
          'image': np.asarray(Image.open(io.BytesIO(image_data))),
          'label': np.asarray(label_png),
      })
  return records


def by_name(records):
  return {record['name']: record for record in records}


# ---------------------------------------------------------------- build_data


def _tiny_examples(count):
  for index in range(count):
    image = np.full((4, 5, 3), index, dtype=np.uint8)
    label = np.full((4, 5), index % 3, dtype=np.uint8)
    yield build_data.example_from_arrays('x%d' % index, image, label, 3)


def test_write_split_shards_and_stale_shards(tmp_path):
  out = str(tmp_path)
  build_data.write_split(out, 's', _tiny_examples(5), 5, num_shards=4)
  assert len(glob.glob(os.path.join(out, 's-*-of-00004.tfrecord'))) == 4
  build_data.write_split(out, 's', _tiny_examples(5), 5, num_shards=2)
  # The 4-shard build is replaced, not mixed with the new one.
  assert sorted(os.listdir(out)) == ['s-00000-of-00002.tfrecord',
                                     's-00001-of-00002.tfrecord']
  records = read_split(out, 's')
  assert [r['name'] for r in records] == ['x0', 'x1', 'x2', 'x3', 'x4']
  assert records[4]['label'].tolist() == [[1] * 5] * 4


def test_interrupted_write_leaves_no_partial_split(tmp_path):
  out = str(tmp_path)
  build_data.write_split(out, 's', _tiny_examples(2), 2, num_shards=1)
  before = open(os.path.join(out, 's-00000-of-00001.tfrecord'), 'rb').read()

  def failing():
    yield from _tiny_examples(3)
    raise RuntimeError('disk on fire')

  with pytest.raises(RuntimeError, match='disk on fire'):
    build_data.write_split(out, 's', failing(), 6, num_shards=2)
  # No shard of the failed build (finished or not), no temporary file; the
  # earlier build is untouched.
  assert os.listdir(out) == ['s-00000-of-00001.tfrecord']
  assert open(os.path.join(out, 's-00000-of-00001.tfrecord'),
              'rb').read() == before
  with pytest.raises(build_data.BuildError, match='expected 6 examples'):
    build_data.write_split(out, 't', _tiny_examples(3), 6, num_shards=2)
  assert os.listdir(out) == ['s-00000-of-00001.tfrecord']


# ---------------------------------------------------------------------- VOC

VOC_SIZES = {  # name -> (height, width)
    '2007_000001': (12, 16), '2007_000002': (10, 10), '2007_000003': (8, 14),
    '2007_000004': (9, 11), '2007_000005': (10, 12), '2007_000006': (7, 9),
    '2007_000007': (6, 6),
}


def _voc_palette():
  """VOC-like colour map: class colours whose luminance is not the index."""
  palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128,
             128, 0, 128, 0, 128, 128, 128, 128, 128, 64, 0, 0]
  palette += [37] * (3 * 256 - len(palette))
  palette[3 * 255:] = [224, 224, 192]
  return palette


def _voc_label(name, offset):
  """Index label of one image: class (name's number + offset) % 21 in a box,
  255 on its first row, 0 elsewhere."""
  height, width = VOC_SIZES[name]
  label = np.zeros((height, width), dtype=np.uint8)
  label[2:5, 3:7] = (int(name[-1]) + offset) % 21
  label[2, 3:7] = 255
  return label


def _save_palette_png(label, path):
  image = Image.fromarray(label, mode='P')
  image.putpalette(_voc_palette())
  image.save(path)


def _voc_image(name):
  height, width = VOC_SIZES[name]
  rng = np.random.default_rng(int(name[-1]))
  return rng.integers(0, 256, (height, width, 3)).astype(np.uint8)


def make_voc(root):
  """A tiny VOC2012 + SegmentationClassAug + splits_dir layout under root.

  train 1-3, val 4-5, trainval 1-5; SBD labels for 1, 2, 4, 6, 7 (with class
  offset 10, grayscale PNGs); SegmentationClass for 1-5 (palette PNGs).
  """
  voc = os.path.join(root, 'VOC2012')
  for folder in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
    os.makedirs(os.path.join(voc, folder))
  sbd = os.path.join(root, 'SegmentationClassAug')
  splits = os.path.join(root, 'splits')
  os.makedirs(sbd)
  os.makedirs(splits)
  for name in VOC_SIZES:
    Image.fromarray(_voc_image(name)).save(
        os.path.join(voc, 'JPEGImages', name + '.jpg'), quality=90)
  for number in (1, 2, 3, 4, 5):
    name = '2007_00000%d' % number
    _save_palette_png(_voc_label(name, 0),
                      os.path.join(voc, 'SegmentationClass', name + '.png'))
  for number in (1, 2, 4, 6, 7):
    name = '2007_00000%d' % number
    Image.fromarray(_voc_label(name, 10), mode='L').save(
        os.path.join(sbd, name + '.png'))
  lists = {'train': (1, 2, 3), 'val': (4, 5), 'trainval': (1, 2, 3, 4, 5)}
  for split, numbers in lists.items():
    _write_list(os.path.join(voc, 'ImageSets', 'Segmentation', split + '.txt'),
                ['2007_00000%d' % n for n in numbers])
  _write_list(os.path.join(splits, '2_clean.txt'), ['2007_000001',
                                                    '2007_000003'])
  _write_list(os.path.join(splits, '16_clean_3.txt'), ['2007_000002'])
  return voc, sbd, splits


def _write_list(path, names):
  with open(path, 'w') as f:
    f.write('\n'.join(names) + '\n')


@pytest.fixture(scope='module')
def voc_build(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('voc'))
  voc, sbd, splits = make_voc(root)
  out = os.path.join(root, 'out')
  written = build_voc2012_data.build(voc, out, sbd_label_dir=sbd,
                                     splits_dir=splits, num_shards=2)
  return voc, sbd, splits, out, written


def test_voc_splits_membership(voc_build):
  _, _, _, out, written = voc_build
  expected = {
      'train': {1, 2, 3}, 'val': {4, 5}, 'trainval': {1, 2, 3, 4, 5},
      # train + every SBD label - val: 4 is val, 5 has no SBD label.
      'train_aug': {1, 2, 3, 6, 7},
      '2_clean': {1, 3}, '16_clean_3': {2},
  }
  assert list(written) == ['train', 'val', 'trainval', 'train_aug',
                           '16_clean_3', '2_clean']
  for split, numbers in expected.items():
    names = [r['name'] for r in read_split(out, split)]
    assert sorted(names) == ['2007_00000%d' % n for n in sorted(numbers)]
    assert names == written[split]
  assert [r['name'] for r in read_split(out, 'val')] == ['2007_000004',
                                                         '2007_000005']
  assert len(glob.glob(os.path.join(out, 'train-*-of-00002.tfrecord'))) == 2
  assert glob.glob(os.path.join(out, '16_clean_3-*')) == [
      os.path.join(out, '16_clean_3-00000-of-00001.tfrecord')]


def test_voc_record_contents(voc_build):
  voc, _, _, out, _ = voc_build
  for split, offset in (('trainval', 0), ('2_clean', 0)):
    for name, record in by_name(read_split(out, split)).items():
      assert record['format'] == 'jpeg'
      assert (record['height'], record['width']) == VOC_SIZES[name]
      # The JPEG is stored byte for byte; the palette PNG became its indices.
      with open(os.path.join(voc, 'JPEGImages', name + '.jpg'), 'rb') as f:
        assert record['image_data'] == f.read()
      assert record['image'].shape == VOC_SIZES[name] + (3,)
      np.testing.assert_array_equal(record['label'], _voc_label(name, offset))
  aug = by_name(read_split(out, 'train_aug'))
  # SBD labels where they exist, else SegmentationClass (image 3).
  for name, offset in (('2007_000001', 10), ('2007_000003', 0),
                       ('2007_000007', 10)):
    np.testing.assert_array_equal(aug[name]['label'], _voc_label(name, offset))
  assert set(np.unique(aug['2007_000001']['label'])) == {0, 11, 255}


def test_voc_train_aug_list_and_no_sbd(voc_build, tmp_path):
  voc, sbd, splits, _, _ = voc_build
  aug_list = str(tmp_path / 'aug.txt')
  _write_list(aug_list, ['2007_000006', '2007_000004'])
  out = str(tmp_path / 'out')
  written = build_voc2012_data.build(voc, out, sbd_label_dir=sbd,
                                     train_aug_list=aug_list, splits_dir='',
                                     num_shards=1)
  assert sorted(written['train_aug']) == ['2007_000001', '2007_000002',
                                          '2007_000003', '2007_000006']
  written = build_voc2012_data.build(voc, str(tmp_path / 'out2'),
                                     splits_dir=splits, num_shards=1)
  assert 'train_aug' not in written and '2_clean' in written


def _break_voc(voc, sbd, splits, problem):
  """Damages a fresh tiny VOC layout; returns build kwargs."""
  kwargs = {'voc_root': voc, 'sbd_label_dir': sbd, 'splits_dir': splits}
  label = os.path.join(voc, 'SegmentationClass', '2007_000002.png')
  if problem == 'missing_root':
    kwargs['voc_root'] = voc + '_nowhere'
  elif problem == 'missing_jpeg_folder':
    os.rename(os.path.join(voc, 'JPEGImages'), voc + '_moved')
  elif problem == 'missing_sbd_folder':
    kwargs['sbd_label_dir'] = sbd + '_nowhere'
  elif problem == 'no_label':
    _write_list(os.path.join(splits, '4_clean.txt'), ['2007_000006'])
  elif problem == 'size':
    _save_palette_png(np.zeros((3, 3), np.uint8), label)
  elif problem == 'range':
    _save_palette_png(np.full(VOC_SIZES['2007_000002'], 21, np.uint8), label)
  elif problem == 'rgb':
    Image.new('RGB', VOC_SIZES['2007_000002'][::-1]).save(label)
  return kwargs


@pytest.mark.parametrize('problem,message', [
    ('missing_root', r'VOC root \(--voc_root\) folder not found: .*_nowhere'),
    ('missing_jpeg_folder', 'JPEGImages folder not found'),
    ('missing_sbd_folder', r'SBD labels .* folder not found: .*_nowhere'),
    ('no_label', r'split 4_clean: image .*2007_000006.jpg has no label '
                 r'2007_000006.png'),
    ('size', r'SegmentationClass/2007_000002.png: label size \(3, 3\) differs '
             r'from image size \(10, 10\)'),
    ('range', r'2007_000002.png: label values \[21\] are outside 0..20'),
    ('rgb', r'2007_000002.png: label is an RGB colour image; convert it'),
])
def test_voc_bad_input(tmp_path, problem, message):
  voc, sbd, splits = make_voc(str(tmp_path))
  kwargs = _break_voc(voc, sbd, splits, problem)
  out = str(tmp_path / 'out')
  with pytest.raises(build_data.BuildError, match=message):
    build_voc2012_data.build(output_dir=out, num_shards=1, **kwargs)
  # Nothing half-written is left behind by the failing split.
  assert not glob.glob(os.path.join(out, '*.tmp'))


# --------------------------------------------------------------------- COCO

# The 80 COCO category ids (1..90 with gaps): sorted -> indices 1..80.
COCO_IDS = [i for i in range(1, 91)
            if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def _uncompressed_rle(mask):
  """COCO uncompressed RLE of a bool mask: column-major runs, zeros first."""
  flat = mask.flatten(order='F').astype(np.uint8)
  counts, current, run = [], 0, 0
  for value in flat:
    if value == current:
      run += 1
    else:
      counts.append(run)
      current, run = value, 1
  counts.append(run)
  return {'size': list(mask.shape), 'counts': counts}


def _coco_masks():
  """Hand-made masks (20 x 24 image 1) and the label they must give."""
  small = np.zeros((20, 24), dtype=bool)
  small[6:10, 8:12] = True           # inside the big square
  crowd = np.zeros((20, 24), dtype=bool)
  crowd[12:18, 10:22] = True         # overlaps the big square's lower right
  return small, crowd


def make_coco(root):
  """Tiny COCO layout: train 1 (objects, crowd), train 2 (none), val 3 (gray).

  Skips the calling test without pycocotools (not in requirements.txt).
  """
  mask_api = pytest.importorskip(
      'pycocotools.mask', reason='pip install -r requirements-coco.txt')
  for folder in ('train2017', 'val2017', 'annotations', 'splits'):
    os.makedirs(os.path.join(root, folder))
  rng = np.random.default_rng(0)
  sizes = {1: (20, 24), 2: (16, 16), 3: (12, 10)}
  for image_id, folder in ((1, 'train2017'), (2, 'train2017'), (3, 'val2017')):
    shape = sizes[image_id] + (() if image_id == 3 else (3,))
    Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(
        os.path.join(root, folder, '%012d.jpg' % image_id))
  small, crowd = _coco_masks()
  small_rle = mask_api.encode(np.asfortranarray(small.astype(np.uint8)))
  small_rle['counts'] = small_rle['counts'].decode('ascii')
  categories = [{'id': i, 'name': 'c%d' % i} for i in COCO_IDS]

  def image(image_id):
    return {'id': image_id, 'file_name': '%012d.jpg' % image_id,
            'height': sizes[image_id][0], 'width': sizes[image_id][1]}

  train = {
      'images': [image(1), image(2)],
      'categories': categories,
      'annotations': [
          # Listed first (lower id) but smaller: still painted on top.
          {'id': 1, 'image_id': 1, 'category_id': 90, 'iscrowd': 0,
           'segmentation': small_rle},
          {'id': 2, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
           'segmentation': [[2, 2, 16, 2, 16, 16, 2, 16]]},
          {'id': 3, 'image_id': 1, 'category_id': 1, 'iscrowd': 1,
           'segmentation': _uncompressed_rle(crowd)},
      ]}
  val = {
      'images': [image(3)],
      'categories': categories,
      'annotations': [
          {'id': 4, 'image_id': 3, 'category_id': 13, 'iscrowd': 0,
           'segmentation': [[1, 1, 9, 1, 9, 7, 1, 7], [0, 0, 1, 0]]},
      ]}
  for folder, content in (('train2017', train), ('val2017', val)):
    with open(os.path.join(root, 'annotations',
                           'instances_%s.json' % folder), 'w') as f:
      json.dump(content, f)
  _write_list(os.path.join(root, 'splits', '32_all.txt'),
              ['train2017/000000000001'])
  return os.path.join(root, 'splits')


@pytest.fixture(scope='module')
def coco_build(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('coco'))
  splits = make_coco(root)
  out = os.path.join(root, 'out')
  written = build_coco_data.build(root, out, splits_dir=splits, num_shards=1)
  return root, out, written


def test_coco_splits_and_names(coco_build):
  _, out, written = coco_build
  assert list(written) == ['train', 'val', '32_all']
  members = {split: sorted(r['name'] for r in read_split(out, split))
             for split in written}
  assert members == {
      'train': ['train2017/000000000001', 'train2017/000000000002'],
      'val': ['val2017/000000000003'],
      '32_all': ['train2017/000000000001'],
  }


def test_coco_labels(coco_build):
  _, out, _ = coco_build
  train = by_name(read_split(out, 'train'))
  label = train['train2017/000000000001']['label']
  assert label.shape == (20, 24)
  small, crowd = _coco_masks()
  # Polygon square (2,2)-(16,16), category id 1 -> 1; edges are pycocotools'
  # rasterisation, so check its sure interior and the far background only.
  interior = np.zeros_like(small)
  interior[3:15, 3:15] = True
  assert np.all(label[interior & ~small & ~crowd] == 1)
  assert np.all(label[small] == 80)     # category 90 -> 80, smaller on top
  assert np.all(label[crowd] == 255)    # crowd wins, also over the square
  assert np.all(label[:, 22:] == 0) and np.all(label[18:] == 0)
  assert set(np.unique(label)) == {0, 1, 80, 255}
  empty = train['train2017/000000000002']
  assert (empty['height'], empty['width']) == (16, 16)
  assert not empty['label'].any()
  val = read_split(out, 'val')[0]
  # Grayscale JPEG re-encoded as RGB; category 13 -> 12 (id 12 is absent).
  assert val['image'].shape == (12, 10, 3) and val['format'] == 'jpeg'
  assert val['label'][3, 4] == 12 and val['label'][10, 9] == 0
  assert set(np.unique(val['label'])) == {0, 12}


def test_coco_bad_input(coco_build, tmp_path, monkeypatch):
  root, _, _ = coco_build
  out = str(tmp_path / 'out')
  with pytest.raises(build_data.BuildError, match='COCO root .* not found'):
    build_coco_data.build(root + '_nowhere', out)
  bad_list = tmp_path / 'splits'
  bad_list.mkdir()
  _write_list(str(bad_list / '64_all.txt'), ['train2017/000000000009'])
  with pytest.raises(build_data.BuildError,
                     match='image train2017/000000000009 has no entry'):
    build_coco_data.build(root, out, splits_dir=str(bad_list),
                          splits=['64_all'])
  with pytest.raises(build_data.BuildError,
                     match=r'unknown split\(s\) 8_all; known: train, val'):
    build_coco_data.build(root, out, splits_dir='', splits=['8_all'])
  monkeypatch.setitem(sys.modules, 'pycocotools', None)
  with pytest.raises(build_data.BuildError, match='pip install pycocotools'):
    build_coco_data.build(root, out)
  assert not os.path.exists(out)


# ---------------------------------------------------------------- synthetic

SYNTH_SIZES = {'train_aug': 32, 'val': 8, '2_clean': 16, '4_clean': 8,
               '8_clean': 4, '16_clean_3': 2, 'cls_pretrain': 6}


@pytest.fixture(scope='module')
def synth_build(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('synth'))
  names = build_synthetic_data.build(out, seed=0, num_train=32, num_val=8,
                                     image_size=64, num_shards=2, num_cls=6)
  return out, names


def test_synthetic_splits(synth_build):
  out, names = synth_build
  records = {split: read_split(out, split) for split in SYNTH_SIZES}
  assert {split: len(r) for split, r in records.items()} == SYNTH_SIZES
  train = {r['name'] for r in records['train_aug']}
  assert train == {'synth_%06d' % i for i in range(32)}
  assert {r['name'] for r in records['val']} == {
      'synthval_%06d' % i for i in range(8)}
  for split in SYNTH_SIZES:
    split_names = [r['name'] for r in records[split]]
    with open(os.path.join(out, 'lists', split + '.txt')) as f:
      assert f.read().split() == split_names == names[split]
    if split not in ('val', 'cls_pretrain'):
      assert set(split_names) <= train
  # The classification set has its own ids and its own images.
  assert {r['name'] for r in records['cls_pretrain']} == {
      'synthcls_%06d' % i for i in range(6)}
  train_pixels = {r['image'].tobytes() for r in records['train_aug']}
  assert not any(r['image'].tobytes() in train_pixels
                 for r in records['cls_pretrain'])
  # Subsets are independent draws, not all the same images.
  assert len({tuple(names[s]) for s in ('2_clean', '4_clean')}) == 2


def test_synthetic_images_and_labels(synth_build):
  out, _ = synth_build
  seen = set()
  for record in read_split(out, 'train_aug') + read_split(out, 'val'):
    label, image = record['label'], record['image']
    assert 56 <= record['height'] <= 72 and 56 <= record['width'] <= 72
    assert image.shape == label.shape + (3,) and record['format'] == 'jpeg'
    values = set(np.unique(label).tolist())
    assert values <= set(range(9)) | {255}
    seen |= values
    # The ignore outline separates regions: two different classes never touch.
    for a, b in ((label[1:], label[:-1]), (label[:, 1:], label[:, :-1])):
      touching = (a != b) & (a != 255) & (b != 255)
      assert not touching.any()
  assert seen == set(range(9)) | {255}


def test_synthetic_determinism(synth_build, tmp_path):
  out, _ = synth_build
  again = str(tmp_path / 'again')
  build_synthetic_data.build(again, seed=0, num_train=32, num_val=8,
                             image_size=64, num_shards=2, num_cls=6)
  for path in glob.glob(os.path.join(out, '*.tfrecord')):
    with open(path, 'rb') as a, open(
        os.path.join(again, os.path.basename(path)), 'rb') as b:
      assert a.read() == b.read()
  image, _ = build_synthetic_data.generate_example(0, 0, 0, 64)
  other_seed, _ = build_synthetic_data.generate_example(1, 0, 0, 64)
  assert not np.array_equal(image, other_seed)


def test_synthetic_registered_sizes():
  names = build_synthetic_data.split_names(0, 2000, 300, 3000)
  sizes = {split: len(n) for split, n in names.items()}
  assert sizes == {
      'train_aug': 2000, 'val': 300, '2_clean': 1000, '4_clean': 500,
      '8_clean': 250, '16_clean_3': 125, '32_clean': 62, '64_clean': 31,
      '128_clean': 15, 'cls_pretrain': 3000}
  assert sizes == registry.DATASETS['synthetic'].splits_to_sizes
  for split, _ in build_synthetic_data.SUBSETS:
    assert len(set(names[split])) == len(names[split])
    assert set(names[split]) <= set(names['train_aug'])


def test_appended_synthetic_subsets_leave_earlier_ones_unchanged(monkeypatch):
  """The draws of 1/32 ... 1/128 come after the earlier ones in the same
  random stream, so the splits built before them keep their images."""
  names = build_synthetic_data.split_names(0, 2000, 300)
  monkeypatch.setattr(build_synthetic_data, 'SUBSETS',
                      build_synthetic_data.SUBSETS[:4])
  before = build_synthetic_data.split_names(0, 2000, 300)
  assert set(before) == {'train_aug', 'val', '2_clean', '4_clean', '8_clean',
                         '16_clean_3'}
  for split, split_names in before.items():
    assert names[split] == split_names
  # Each new subset is a fresh draw, not a prefix of an earlier one.
  assert names['128_clean'] != names['16_clean_3'][:15]


# ------------------------------------------------------------ entry scripts


def test_scripts_report_errors_and_run(repo_root, tmp_path):
  """`python datasets/x.py` and `python -m datasets.x` both work; bad input
  gives one `error:` line and exit code 2."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  failing = subprocess.Popen(
      [sys.executable, os.path.join('datasets', 'build_voc2012_data.py'),
       '--voc_root=' + str(tmp_path / 'nowhere'),
       '--output_dir=' + str(tmp_path / 'out')],
      cwd=repo_root, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  running = subprocess.Popen(
      [sys.executable, '-m', 'datasets.build_synthetic_data',
       '--output_dir=' + str(tmp_path / 'synth'), '--num_train=2',
       '--num_val=1', '--num_cls=1', '--image_size=32', '--num_shards=1'],
      cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  _, failing_err = failing.communicate(timeout=120)
  _, running_err = running.communicate(timeout=120)
  assert failing.returncode == 2, failing_err
  error_lines = [line for line in failing_err.splitlines()
                 if line.startswith('error: ')]
  assert error_lines == ['error: VOC root (--voc_root) folder not found: %s' %
                         (tmp_path / 'nowhere')]
  assert running.returncode == 0, running_err
  assert os.path.exists(str(tmp_path / 'synth' /
                            'train_aug-00000-of-00001.tfrecord'))
