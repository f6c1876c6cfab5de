"""Names and label ids of the prediction files vis.py and predict.py write."""
import os

import numpy as np

# Image extensions dropped from record names so outputs are `<name>.png`,
# not `<name>.jpg.png` (VOC names carry none; other builders might).
_IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')

# Cityscapes: network train ids 0..18 -> official label ids (the benchmark's
# evaluation ids), applied to raw predictions as DeepLab's vis does.
CITYSCAPES_TRAIN_ID_TO_EVAL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24,
                                  25, 26, 27, 28, 31, 32, 33)


def output_name(image_name, index):
  """File stem for one record: the basename of `image/filename`, as str.

  Args:
    image_name: the record's `image/filename` (bytes or str), e.g.
      b'2007_000033' or b'train2017/000000177254'.
    index: running image index, used when the name is empty.
  """
  if isinstance(image_name, bytes):
    image_name = image_name.decode('utf-8', errors='replace')
  name = os.path.basename(image_name.replace('\\', '/'))
  root, extension = os.path.splitext(name)
  if extension.lower() in _IMAGE_EXTENSIONS:
    name = root
  return name or '%06d' % index


def convert_train_id_to_eval_id(prediction, train_id_to_eval_id):
  """Maps class ids through `train_id_to_eval_id`; other ids stay unchanged."""
  table = np.arange(max(256, int(prediction.max()) + 1), dtype=np.int64)
  table[:len(train_id_to_eval_id)] = train_id_to_eval_id
  return table[prediction].astype(prediction.dtype)
