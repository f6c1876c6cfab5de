"""Builds a small PASCAL-like synthetic segmentation dataset from a seed.

Eight foreground classes, each a SHAPE with its own TEXTURE; the two colours of
every object are drawn independently of its class, so only shape and texture
tell the classes apart:

  index  class     texture (image-frame, unchanged by a horizontal flip)
  1      disc      horizontal stripes
  2      square    checkerboard
  3      triangle  diagonal cross-hatch (both diagonals)
  4      ring      polka dots
  5      cross     vertical stripes
  6      star      smooth linear gradient in a random direction
  7      ellipse   concentric bands around the object centre
  8      hexagon   per-pixel speckle

Each image (side lengths drawn in image_size * [0.875, 1.125], 140-180 px by
default) has a cluttered background of class 0 (smooth colour field, pixel
noise, random lines and plain ellipses) and 1-3 randomly rotated objects with
radii uniform from 12 px (24 px across) to 0.45 of the shorter image side,
centred so that at least half the radius is inside the image; objects may
overlap: a later object occludes an earlier one and the label follows what is
visible. About 23 % of the pixels are foreground (VOC-like). As in VOC, a
2-pixel band on every object outline is labeled 255 (ignore); the largest
image side is round(1.125 * image_size) (180 px by default), which bounds the
eval crop. Colour never gives the class away; texture and shape do.

Difficulty: an earlier default (1-4 objects from 6 px radius, and up to two
background polygons painted with class textures, so that only shape separated
object from clutter) was too hard for the CPU budget: 2000 steps from scratch
reached about 28% mIoU with 500 labeled images. --textured_clutter=2 restores
that clutter for a harder variant.

Splits (registered in core/data/registry.py for the default sizes):
`train_aug` (all --num_train training images, `synth_000123`), the labeled
subsets `2_clean`, `4_clean`, `8_clean`, `16_clean_3`, `32_clean`, `64_clean`,
`128_clean` (independent random draws of num_train // N training images, in
that order from one stream seeded by --seed) and `val`
(--num_val further images, `synthval_000042`), and the classification set
`cls_pretrain` (--num_cls images, `synthcls_000007`, its own random stream:
one large object near the centre, like an ImageNet photo; pretrain.py uses
only its image-level labels). Their name lists are also written
to `<output_dir>/lists/<split>.txt`. Other --num_train/--num_val values scale
all sizes proportionally; such builds do not match the registered sizes and are
meant for tests only.

Every image is generated from its own random stream (seed, split, index), so the
output is fully determined by the flags.

Usage:
  python -m datasets.build_synthetic_data --output_dir=DIR [--seed=0]
"""
import os
import sys

# Lets `python datasets/build_synthetic_data.py` import the repo's packages.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import ImageDraw  # noqa: E402

from datasets import build_data  # noqa: E402
from utils import errors  # noqa: E402

FLAGS = flags.FLAGS

CLASS_NAMES = ('background', 'disc', 'square', 'triangle', 'ring', 'cross',
               'star', 'ellipse', 'hexagon')
NUM_CLASSES = len(CLASS_NAMES)

# (split, N): `N_clean...` holds num_train // N training images.
# Appended draws come after the earlier ones from the same random stream, so
# adding one never changes the images of an existing split.
SUBSETS = (('2_clean', 2), ('4_clean', 4), ('8_clean', 8), ('16_clean_3', 16),
           ('32_clean', 32), ('64_clean', 64), ('128_clean', 128))

_TRAIN_STREAM, _VAL_STREAM, _SUBSET_STREAM, _CLS_STREAM = 0, 1, 2, 3

# The classification set that stands in for ImageNet: its own random stream and
# image ids, disjoint from `train_aug` and `val`; pretrain.py reads only its
# image-level labels.
CLS_SPLIT = 'cls_pretrain'
# Object sizes and counts (see the module docstring for why).
_MIN_RADIUS = 12.0
_MAX_RADIUS_FRACTION = 0.45
_MAX_OBJECTS = 3
_BORDER_LABEL = build_data.IGNORE_LABEL


# Shapes: boolean masks from rotated object coordinates u, v (float32 arrays,
# pixels from the centre) and the circumradius r.

def _disc(u, v, r, rng):
  del rng
  return u * u + v * v <= r * r


def _square(u, v, r, rng):
  del rng
  half_side = r * 0.75
  return np.maximum(np.abs(u), np.abs(v)) <= half_side


def _regular_polygon(u, v, r, sides):
  """Inside of a regular polygon with circumradius r: all edge half-planes."""
  apothem = r * np.cos(np.pi / sides)
  inside = np.ones(u.shape, dtype=bool)
  for k in range(sides):
    angle = 2.0 * np.pi * k / sides
    inside &= u * np.cos(angle) + v * np.sin(angle) <= apothem
  return inside


def _triangle(u, v, r, rng):
  del rng
  return _regular_polygon(u, v, r, 3)


def _ring(u, v, r, rng):
  del rng
  squared = u * u + v * v
  return (squared <= r * r) & (squared >= (0.55 * r) ** 2)


def _cross(u, v, r, rng):
  del rng
  half_width = 0.3 * r
  au, av = np.abs(u), np.abs(v)
  return ((au <= r) & (av <= half_width)) | ((av <= r) & (au <= half_width))


def _star(u, v, r, rng):
  """Five-pointed star: outer radius r, inner radius 0.45 r.

  The angle is folded into [0, 36 degrees] (symmetry of the star), where the
  outline is the segment from the tip (r, 0) to the inner corner at 36 degrees.
  """
  del rng
  half_sector = np.pi / 5.0
  radius = np.sqrt(u * u + v * v)
  angle = np.mod(np.arctan2(v, u), 2.0 * half_sector)
  angle = np.minimum(angle, 2.0 * half_sector - angle)
  x, y = radius * np.cos(angle), radius * np.sin(angle)
  tip = np.array([r, 0.0])
  corner = 0.45 * r * np.array([np.cos(half_sector), np.sin(half_sector)])
  normal = np.array([corner[1] - tip[1], tip[0] - corner[0]])
  return x * normal[0] + y * normal[1] <= tip @ normal


def _ellipse(u, v, r, rng):
  minor = r * rng.uniform(0.35, 0.55)
  return (u / r) ** 2 + (v / minor) ** 2 <= 1.0


def _hexagon(u, v, r, rng):
  del rng
  return _regular_polygon(u, v, r, 6)


# Textures: mixing weight in [0, 1] between the object's two colours, from
# absolute image coordinates x, y, offsets from the centre dx, dy, the radius r
# and a period in pixels. Orientations are axis-aligned or symmetric so that a
# horizontal flip (training augmentation) keeps each class's texture.

def _horizontal_stripes(x, y, dx, dy, r, period, rng):
  del x, dx, dy, r
  return np.floor((y + rng.uniform(0, period)) * 2.0 / period) % 2


def _vertical_stripes(x, y, dx, dy, r, period, rng):
  del y, dx, dy, r
  return np.floor((x + rng.uniform(0, period)) * 2.0 / period) % 2


def _checker(x, y, dx, dy, r, period, rng):
  del dx, dy, r
  cell = period / 2.0
  return (np.floor((x + rng.uniform(0, period)) / cell) +
          np.floor((y + rng.uniform(0, period)) / cell)) % 2


def _cross_hatch(x, y, dx, dy, r, period, rng):
  del dx, dy, r
  width = max(1.0, period / 3.0)
  rising = np.mod(x + y + rng.uniform(0, period), period) < width
  falling = np.mod(x - y + rng.uniform(0, period), period) < width
  return (rising | falling).astype(np.float32)


def _dots(x, y, dx, dy, r, period, rng):
  del dx, dy, r
  fx = np.mod(x + rng.uniform(0, period), period) - period / 2.0
  fy = np.mod(y + rng.uniform(0, period), period) - period / 2.0
  return (fx * fx + fy * fy <= (0.3 * period) ** 2).astype(np.float32)


def _gradient(x, y, dx, dy, r, period, rng):
  del x, y, period
  direction = rng.uniform(0, 2.0 * np.pi)
  along = dx * np.cos(direction) + dy * np.sin(direction)
  return np.clip(along / (2.0 * r) + 0.5, 0.0, 1.0)


def _concentric(x, y, dx, dy, r, period, rng):
  del x, y, r
  radius = np.sqrt(dx * dx + dy * dy)
  return np.floor((radius + rng.uniform(0, period)) * 2.0 / period) % 2


def _speckle(x, y, dx, dy, r, period, rng):
  del y, dx, dy, r, period
  return (rng.random(x.shape) < 0.5).astype(np.float32)


# Index k-1 holds class k's (shape, texture).
_CLASS_DEFINITIONS = (
    (_disc, _horizontal_stripes),
    (_square, _checker),
    (_triangle, _cross_hatch),
    (_ring, _dots),
    (_cross, _vertical_stripes),
    (_star, _gradient),
    (_ellipse, _concentric),
    (_hexagon, _speckle),
)
_TEXTURES = tuple(texture for _, texture in _CLASS_DEFINITIONS)


def _colour_pair(rng):
  """Two random RGB colours (float32 [3]), different enough to show texture."""
  first = rng.uniform(0, 255, 3)
  while True:
    second = rng.uniform(0, 255, 3)
    if np.abs(first - second).mean() >= 60:
      return first.astype(np.float32), second.astype(np.float32)


def _paint(image, mask, weight, colours, top, left):
  """Blends the two colours by `weight` into `image` where `mask` (a window)."""
  first, second = colours
  window = image[top:top + mask.shape[0], left:left + mask.shape[1]]
  pixels = first + weight[mask][:, None] * (second - first)
  window[mask] = pixels


def _background(height, width, rng, textured_clutter=0):
  """Cluttered class-0 background: float32 [height, width, 3] in 0..255,
  with up to `textured_clutter` polygons painted with class textures."""
  first, second = _colour_pair(rng)
  direction = rng.uniform(0, 2.0 * np.pi)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  along = xx * np.cos(direction) + yy * np.sin(direction)
  along = (along - along.min()) / max(1e-6, along.max() - along.min())
  image = first + along[..., None] * (second - first)
  coarse = rng.integers(0, 256, (rng.integers(3, 8), rng.integers(3, 8), 3))
  field = Image.fromarray(coarse.astype(np.uint8)).resize(
      (width, height), Image.BILINEAR)
  image = 0.5 * image + 0.5 * np.asarray(field, dtype=np.float32)

  canvas = Image.fromarray(image.astype(np.uint8))
  draw = ImageDraw.Draw(canvas)
  for _ in range(rng.integers(1, 5)):
    box = _random_box(height, width, rng)
    draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
  for _ in range(rng.integers(2, 9)):
    points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height)))
              for _ in range(2)]
    draw.line(points, fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
              width=int(rng.integers(1, 5)))
  image = np.asarray(canvas, dtype=np.float32).copy()
  for _ in range(rng.integers(0, textured_clutter + 1)):
    _textured_clutter(image, rng)
  return image


def _random_box(height, width, rng):
  """A random [x0, y0, x1, y1] box of 8 to 60 pixels per side."""
  box_w, box_h = rng.uniform(8, 60, 2)
  x0, y0 = rng.uniform(-box_w / 2, width), rng.uniform(-box_h / 2, height)
  return [float(x0), float(y0), float(x0 + box_w), float(y0 + box_h)]


def _textured_clutter(image, rng):
  """Paints an irregular polygon with one of the class textures (background).

  This keeps texture alone from giving the class away: the shape must match.
  """
  height, width = image.shape[:2]
  cx, cy = rng.uniform(0, width), rng.uniform(0, height)
  r = rng.uniform(8, 30)
  count = int(rng.integers(5, 9))
  angles = np.sort(rng.uniform(0, 2.0 * np.pi, count))
  radii = r * rng.uniform(0.3, 1.0, count)
  points = [(float(cx + a * np.cos(t)), float(cy + a * np.sin(t)))
            for a, t in zip(radii, angles)]
  canvas = Image.new('L', (width, height))
  ImageDraw.Draw(canvas).polygon(points, fill=1)
  mask = np.asarray(canvas, dtype=bool)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  texture = _TEXTURES[rng.integers(len(_TEXTURES))]
  weight = texture(xx, yy, xx - cx, yy - cy, r, rng.uniform(4, 10), rng)
  _paint(image, mask, np.asarray(weight, np.float32), _colour_pair(rng), 0, 0)


def _add_object(image, label, instances, instance_id, class_id, rng,
                object_centric=False):
  """Paints one random object of `class_id` over the image, label, instances.

  object_centric: one large object near the centre (radius 0.25-0.45 of the
  shorter side), as in an ImageNet photo; otherwise the segmentation layout.
  """
  height, width = label.shape
  shape, texture = _CLASS_DEFINITIONS[class_id - 1]
  max_radius = max(_MIN_RADIUS, _MAX_RADIUS_FRACTION * min(height, width))
  if object_centric:
    r = float(rng.uniform(0.25, 0.45) * min(height, width))
    cx = width / 2 + rng.uniform(-0.15, 0.15) * width
    cy = height / 2 + rng.uniform(-0.15, 0.15) * height
  else:
    r = float(rng.uniform(_MIN_RADIUS, max_radius))
    # The centre keeps at least half the radius inside the image: objects may
    # be cut by the border, but most of each one is visible.
    cx = rng.uniform(min(0.5 * r, width / 2), max(width - 0.5 * r, width / 2))
    cy = rng.uniform(min(0.5 * r, height / 2),
                     max(height - 0.5 * r, height / 2))
  top, left = max(0, int(cy - r - 1)), max(0, int(cx - r - 1))
  bottom, right = min(height, int(cy + r + 2)), min(width, int(cx + r + 2))
  # Pixel centres of the object's window, absolute and relative to its centre.
  yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
  dx, dy = xx - cx, yy - cy
  rotation = rng.uniform(0, 2.0 * np.pi)
  u = dx * np.cos(rotation) + dy * np.sin(rotation)
  v = dy * np.cos(rotation) - dx * np.sin(rotation)
  mask = shape(u, v, r, rng)
  weight = np.asarray(texture(xx, yy, dx, dy, r, rng.uniform(4, 10), rng),
                      np.float32)
  _paint(image, mask, weight, _colour_pair(rng), top, left)
  label[top:bottom, left:right][mask] = class_id
  instances[top:bottom, left:right][mask] = instance_id


def _ignore_outlines(label, instances):
  """Sets label 255 on both sides of every edge between different instances."""
  border = np.zeros(label.shape, dtype=bool)
  vertical = instances[1:, :] != instances[:-1, :]
  horizontal = instances[:, 1:] != instances[:, :-1]
  border[1:, :] |= vertical
  border[:-1, :] |= vertical
  border[:, 1:] |= horizontal
  border[:, :-1] |= horizontal
  label[border] = _BORDER_LABEL


def generate_example(seed, stream, index, image_size, textured_clutter=0):
  """Generates one image and its label from random stream (seed, stream, index).

  The classification stream (`cls_pretrain`) is object-centric, like ImageNet:
  one large object near the centre on the same cluttered backgrounds.

  Returns:
    (image uint8 [H, W, 3], label uint8 [H, W]) with H, W in
    image_size * [0.875, 1.125]; label values in 0..8 or 255.
  """
  rng = np.random.default_rng([seed, stream, index])
  low, high = int(round(image_size * 0.875)), int(round(image_size * 1.125))
  height, width = (int(side) for side in rng.integers(low, high + 1, 2))
  image = _background(height, width, rng, textured_clutter)
  label = np.zeros((height, width), dtype=np.uint8)
  instances = np.zeros((height, width), dtype=np.int32)
  object_centric = stream == _CLS_STREAM
  num_objects = 1 if object_centric else int(rng.integers(1, _MAX_OBJECTS + 1))
  for instance_id in range(1, num_objects + 1):
    class_id = int(rng.integers(1, NUM_CLASSES))
    _add_object(image, label, instances, instance_id, class_id, rng,
                object_centric)
  _ignore_outlines(label, instances)
  image += rng.normal(0.0, rng.uniform(3, 12), image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8), label


def split_names(seed, num_train, num_val, num_cls=0):
  """The image names of every split: dict split -> list of names.

  `train_aug`, `val` and (if num_cls > 0) `cls_pretrain` list all their images
  in index order; each subset is an independent random draw (sorted) of
  num_train // N training images.
  """
  train = ['synth_%06d' % i for i in range(num_train)]
  names = {'train_aug': train,
           'val': ['synthval_%06d' % i for i in range(num_val)]}
  if num_cls > 0:
    names[CLS_SPLIT] = ['synthcls_%06d' % i for i in range(num_cls)]
  rng = np.random.default_rng([seed, _SUBSET_STREAM])
  for split, fraction in SUBSETS:
    chosen = rng.choice(num_train, max(1, num_train // fraction), replace=False)
    names[split] = [train[i] for i in sorted(chosen)]
  return names


def _examples(seed, stream, count, prefix, image_size, textured_clutter):
  """Yields (name, tf.train.Example) for `count` images of one stream."""
  for index in range(count):
    name = '%s_%06d' % (prefix, index)
    image, label = generate_example(seed, stream, index, image_size,
                                    textured_clutter)
    yield name, build_data.example_from_arrays(name, image, label, NUM_CLASSES)


def build(output_dir, seed=0, num_train=2000, num_val=300, image_size=160,
          num_shards=4, num_cls=0, textured_clutter=0):
  """Generates and writes every split and its list. Returns split -> names."""
  if num_train < 1 or num_val < 1:
    raise errors.InputError('--num_train and --num_val must be positive, got '
                            '%d and %d' % (num_train, num_val))
  if num_cls < 0:
    raise errors.InputError('--num_cls must be >= 0, got %d' % num_cls)
  if image_size < 32:
    raise errors.InputError('--image_size must be at least 32, got %d' %
                            image_size)
  names = split_names(seed, num_train, num_val, num_cls)
  # Training images are generated once and reused by the subsets.
  train = dict(_examples(seed, _TRAIN_STREAM, num_train, 'synth', image_size,
                         textured_clutter))
  sources = {
      'val': dict(_examples(seed, _VAL_STREAM, num_val, 'synthval',
                            image_size, textured_clutter)),
      CLS_SPLIT: dict(_examples(seed, _CLS_STREAM, num_cls, 'synthcls',
                                image_size, textured_clutter)),
  }
  lists_dir = os.path.join(output_dir, 'lists')
  os.makedirs(lists_dir, exist_ok=True)
  for split, split_list in names.items():
    source = sources.get(split, train)
    build_data.write_split(output_dir, split,
                           (source[name] for name in split_list),
                           len(split_list), num_shards)
    with open(os.path.join(lists_dir, split + '.txt'), 'w') as f:
      f.write(''.join(name + '\n' for name in split_list))
    logging.info('wrote %s: %d images', split, len(split_list))
  return names


def define_flags():
  """Defines the script's flags (only when run as a script: the builders share
  flag names, so importing several of them must not define flags)."""
  flags.DEFINE_string('output_dir', None, 'Folder for the tfrecords and lists.')
  flags.DEFINE_integer('seed', 0, 'Seed that determines the whole dataset.')
  flags.DEFINE_integer('num_train', 2000, 'Number of `train_aug` images.')
  flags.DEFINE_integer('num_val', 300, 'Number of `val` images.')
  flags.DEFINE_integer('num_cls', 3000,
                       'Number of `cls_pretrain` images: a disjoint '
                       'classification set for pretrain.py (0: none).')
  flags.DEFINE_integer('image_size', 160, 'Typical image side in pixels.')
  flags.DEFINE_integer(
      'textured_clutter', 0,
      'Up to this many background polygons painted with a class texture per '
      'image, so that only the shape tells object from clutter (a harder '
      'variant; 0 keeps the default task).')
  flags.DEFINE_integer('num_shards', 4, 'Shards per split.')


def main(argv):
  if len(argv) > 1:
    raise errors.InputError('unexpected arguments: %s' % ' '.join(argv[1:]))
  if not FLAGS.output_dir:
    raise errors.InputError('--output_dir is required')
  build(FLAGS.output_dir, FLAGS.seed, FLAGS.num_train, FLAGS.num_val,
        FLAGS.image_size, FLAGS.num_shards, FLAGS.num_cls,
        FLAGS.textured_clutter)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: errors.run_reporting_errors(main, argv))
