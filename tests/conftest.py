"""Shared pytest set-up: import paths, parsed absl flags, fixture locations."""
import os
import sys

import pytest
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

# Flags keep their defaults in tests; tests pass other values explicitly.
flags.FLAGS.mark_as_parsed()

FORMAT_FIXTURE = os.path.join(REPO_ROOT, 'tests',
                              'deeplab_voc_val-00000-of-00001.tfrecord')


@pytest.fixture(scope='session')
def repo_root():
  return REPO_ROOT


@pytest.fixture(scope='session')
def format_fixture_dir(tmp_path_factory):
  """A dataset_dir holding DeepLab's 3-record PASCAL fixture as split `val`."""
  directory = tmp_path_factory.mktemp('voc_fixture')
  os.symlink(FORMAT_FIXTURE,
             os.path.join(directory, 'val-00000-of-00001.tfrecord'))
  return str(directory)
