"""Atomic file writes: a reader sees the old file or the whole new one.

The single-file outputs go through `open_atomic` (or `write_text`): results
JSON and RESULTS.md, the PNGs of vis.py, predict.py and analyze.py,
analyze.py's overlay cache. Outputs of several files commit differently
(tfrecord shards: datasets/build_data.py; checkpoints and exports:
core/train/pretraining.py, core/serving/export.py).

Guarantees of `open_atomic(path)` (and so of `write_text`):

* The data goes to a hidden temporary file `.<basename of path>.<random>.tmp`
  in the folder of `path`: the same file system, so the final `os.replace` is
  atomic, and a name that no reader globbing for outputs ever matches.
* When the with-block ends normally, the file is closed, given the mode that
  `open()` would give a new file, 0o666 & ~umask (0644 under the usual umask
  0022; mkstemp's own 0600 would leave the file readable by its owner only),
  and renamed to `path`, replacing any existing file (its old mode is not
  kept).
* When anything raises, in the block or while committing (also
  KeyboardInterrupt), the temporary file is removed, an existing `path` is
  left untouched and the exception propagates.

Not guaranteed: durability after a power loss (no fsync), and the folder of
`path` is not created (the callers that promise that create it).
"""
import contextlib
import os
import tempfile
import threading

# os.umask can only be read by setting it; see _umask.
_UMASK_LOCK = threading.Lock()


def _umask():
  """The process umask.

  Reading it means setting a temporary mask and putting the old one back.
  The lock keeps two readers from interleaving (the second would read, and
  then restore, the first one's temporary mask for good). The temporary mask
  is the strictest one, 0o077, so a file another thread creates in that
  instant gets too few permissions, never too many.
  """
  with _UMASK_LOCK:
    mask = os.umask(0o077)
    os.umask(mask)
  return mask


def _remove_if_present(path):
  """Removes `path`; a file already gone is fine (the caller is failing)."""
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


@contextlib.contextmanager
def open_atomic(path, mode='wb', encoding=None):
  """Yields a file object whose content replaces `path` atomically.

  See the module docstring for the guarantees. The temporary file has no
  extension, so writers that guess the format from the name need it
  explicitly, e.g. `image.save(stream, format='PNG')`,
  `figure.savefig(stream, format='png')`; `np.savez(stream, ...)` adds no
  '.npz' to a file object.

  Args:
    path: the file to write; its folder must exist.
    mode: 'wb' (bytes) or 'w' (text).
    encoding: text encoding for mode 'w' (as for `open`); None for 'wb'.

  Yields:
    The open file object of the temporary file.

  Raises:
    ValueError: another mode.
  """
  if mode not in ('w', 'wb'):
    raise ValueError("mode must be 'w' or 'wb', got %r" % (mode,))
  handle, temporary = tempfile.mkstemp(
      dir=os.path.dirname(os.path.abspath(path)),
      prefix='.%s.' % os.path.basename(path), suffix='.tmp')
  try:
    with os.fdopen(handle, mode, encoding=encoding) as stream:
      yield stream
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)
  except BaseException:
    _remove_if_present(temporary)
    raise


def write_text(path, text, encoding='utf-8'):
  """Writes the string `text` to `path` atomically (see `open_atomic`)."""
  with open_atomic(path, 'w', encoding=encoding) as stream:
    stream.write(text)
