"""Tests of utils/atomic_write.py: the content, the mode umask allows (not
mkstemp's 0600), and on a failure the old file kept and nothing left behind."""
import io
import os

import numpy as np
import pytest

from utils import atomic_write


def _mode(path):
  return os.stat(path).st_mode & 0o777


@pytest.fixture(params=[(0o022, 0o644), (0o002, 0o664), (0o027, 0o640)])
def umask_and_mode(request):
  """(umask set for the test, mode a new file gets under it)."""
  mask, mode = request.param
  old = os.umask(mask)
  yield mask, mode
  os.umask(old)


def test_text_and_bytes_get_their_content_and_the_umask_mode(
    tmp_path, umask_and_mode):
  _, mode = umask_and_mode
  text_path, bytes_path = str(tmp_path / 'a.md'), str(tmp_path / 'b.bin')
  atomic_write.write_text(text_path, 'mIoU 0.5 – ü\n')
  with atomic_write.open_atomic(bytes_path) as stream:
    stream.write(b'\x00\x01')
    stream.write(b'\xff')
  with open(text_path, encoding='utf-8') as stream:
    assert stream.read() == 'mIoU 0.5 – ü\n'
  with open(bytes_path, 'rb') as stream:
    assert stream.read() == b'\x00\x01\xff'
  assert _mode(text_path) == _mode(bytes_path) == mode
  assert sorted(os.listdir(tmp_path)) == ['a.md', 'b.bin']


def test_text_mode_context_manager(tmp_path, umask_022):
  path = str(tmp_path / 'out.txt')
  with atomic_write.open_atomic(path, 'w', encoding='utf-8') as stream:
    assert isinstance(stream, io.TextIOBase)
    stream.write('line 1\n')
    stream.write('line 2\n')
  with open(path) as stream:
    assert stream.read() == 'line 1\nline 2\n'
  assert _mode(path) == umask_022


def test_an_existing_file_is_replaced_with_the_umask_mode(tmp_path,
                                                          umask_022):
  path = tmp_path / 'out.json'
  path.write_text('old')
  os.chmod(path, 0o600)
  atomic_write.write_text(str(path), 'new')
  assert path.read_text() == 'new'
  assert _mode(path) == umask_022
  assert os.listdir(tmp_path) == ['out.json']


def test_the_temporary_is_hidden_next_to_the_target(tmp_path):
  with atomic_write.open_atomic(str(tmp_path / 'x.png')) as stream:
    stream.write(b'partial')
    (name,) = os.listdir(tmp_path)
    assert name.startswith('.x.png.') and name.endswith('.tmp')
    assert not os.path.exists(tmp_path / 'x.png')
  assert os.listdir(tmp_path) == ['x.png']


@pytest.mark.parametrize('mode', ['w', 'wb'])
@pytest.mark.parametrize('error', [RuntimeError, KeyboardInterrupt])
def test_a_writer_raising_midway_keeps_the_target_and_leaves_nothing(
    tmp_path, mode, error):
  path = tmp_path / 'out.txt'
  path.write_text('old')
  with pytest.raises(error):
    with atomic_write.open_atomic(str(path), mode) as stream:
      stream.write('half' if mode == 'w' else b'half')
      stream.flush()
      raise error()
  assert path.read_text() == 'old'
  assert os.listdir(tmp_path) == ['out.txt']


def test_a_failed_first_write_creates_nothing(tmp_path):
  with pytest.raises(ValueError):
    with atomic_write.open_atomic(str(tmp_path / 'new.bin')):
      raise ValueError('writer failed')
  assert os.listdir(tmp_path) == []


def test_a_failed_rename_keeps_the_target_and_leaves_nothing(tmp_path,
                                                             monkeypatch):
  path = tmp_path / 'out.txt'
  path.write_text('old')

  def failing_replace(source, target):
    raise OSError('disk gone')

  monkeypatch.setattr(os, 'replace', failing_replace)
  with pytest.raises(OSError, match='disk gone'):
    atomic_write.write_text(str(path), 'new')
  assert path.read_text() == 'old'
  assert os.listdir(tmp_path) == ['out.txt']


def test_numpy_savez_to_the_stream_adds_no_extension(tmp_path, umask_022):
  path = str(tmp_path / 'cache.npz')
  with atomic_write.open_atomic(path) as stream:
    np.savez_compressed(stream, a=np.arange(3))
  with np.load(path) as data:
    np.testing.assert_array_equal(data['a'], [0, 1, 2])
  assert os.listdir(tmp_path) == ['cache.npz']
  assert _mode(path) == umask_022


def test_other_modes_are_refused_before_any_file_exists(tmp_path):
  with pytest.raises(ValueError, match="'a'"):
    with atomic_write.open_atomic(str(tmp_path / 'out.txt'), 'a'):
      pass
  assert os.listdir(tmp_path) == []


def test_reading_the_umask_leaves_it_unchanged(umask_022):
  assert atomic_write._umask() == 0o022
  assert atomic_write._umask() == 0o022
  assert os.umask(0o022) == 0o022
