"""Every resize of the code base, one function per semantics.

numpy version of nearest-neighbour with aligned corners (vis.py).
"""
import numpy as np


def resize_nearest_align_corners(label, height, width):
  """Nearest-neighbour resize of a [h, w] array with align_corners semantics.

  Source index = min(round(dst * (in - 1) / (out - 1)), in - 1), rounding half
  away from zero, like `resize_nearest_neighbor(align_corners=True)`.
  """
  def indices(size_in, size_out):
    if size_out == 1:
      return np.zeros([1], dtype=np.int64)
    positions = np.arange(size_out) * (size_in - 1) / float(size_out - 1)
    return np.minimum(np.floor(positions + 0.5).astype(np.int64), size_in - 1)
  label = np.asarray(label)
  rows = indices(label.shape[0], height)
  columns = indices(label.shape[1], width)
  return label[rows][:, columns]
