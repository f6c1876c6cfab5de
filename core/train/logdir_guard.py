"""The train_logdir of a run: its lock, the files a killed run left, its state.

`LogdirGuard` guards one training run's use of its train_logdir: one run at a
time (`LogdirLock`, a lock file holding the pid and host), files left by a
killed run removed (`remove_orphans`), and a run that fails on bad input
before its first step leaves the logdir as it found it (docs/RELIABILITY.md).
"""
import errno
import fcntl
import os
import re
import shutil
import socket

from absl import logging

from core.eval import checkpoints
from deeplab.tf_compat import tf
from utils.errors import InputError

LOCK_FILE = 'train.lock'
CHECKPOINT_BASENAME = 'model.ckpt'
# Files a killed Saver leaves behind: partial data files, partial meta graphs.
_ORPHAN_TEMPORARY = re.compile(r'\.tempstate\d*$|\.meta\.tmp[0-9a-f]*$|'
                               r'^%s-\d+_temp$' % re.escape(CHECKPOINT_BASENAME))
_CHECKPOINT_FILE = re.compile(r'^(%s-\d+)\.(index|meta|data-\d{5}-of-\d{5})$' %
                              re.escape(CHECKPOINT_BASENAME))


class LogdirLock(object):
  """An exclusive lock on a train_logdir: `<logdir>/train.lock`.

  The lock is `fcntl.flock` on the open file, so the kernel drops it when the
  holder dies, also by kill -9: a lock file left by a dead process does not
  block a restart. The file holds `pid host` of the holder for the message of
  a second run.
  """

  def __init__(self, logdir):
    self.path = os.path.join(logdir, LOCK_FILE)
    self._file = None

  def acquire(self):
    """Takes the lock or raises InputError naming the holder's pid and host."""
    while self._file is None:
      try:
        handle = open(self.path, 'a+')
      except OSError as error:
        raise InputError('--train_logdir %s is not writable (%s).' % (
            os.path.dirname(self.path), error.strerror)) from None
      try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as error:
        handle.seek(0)
        holder = handle.read().split()
        handle.close()
        if error.errno not in (errno.EAGAIN, errno.EACCES):
          raise
        raise InputError(
            '--train_logdir %s is in use by another training run (pid %s on '
            'host %s, lock file %s); wait for it to end or pass another '
            '--train_logdir.' % (os.path.dirname(self.path),
                                 holder[0] if holder else '?',
                                 holder[1] if len(holder) > 1 else '?',
                                 self.path)) from None
      # The holder may have removed the file between our open and flock: then
      # the lock is on a deleted file and a third run could lock a new one.
      try:
        same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if not same:
        handle.close()
        continue
      handle.seek(0)
      handle.truncate()
      handle.write('%d %s\n' % (os.getpid(), socket.gethostname()))
      handle.flush()
      self._file = handle
    return self

  def release(self):
    """Removes the lock file and drops the lock."""
    if self._file is None:
      return
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass
    self._file.close()
    self._file = None


def remove_orphans(logdir):
  """Removes what killed runs left in `logdir`; returns the removed names.

  Temporary checkpoint files (`*.tempstate*`, `*.meta.tmp*`, `*_temp` folders)
  and `model.ckpt-N` files the `checkpoint` state file does not list (written
  or rotated out while the run was killed). Without a state file no checkpoint
  counts as an orphan. Call only while holding the LogdirLock.
  """
  names = sorted(os.listdir(logdir))
  state = tf.train.get_checkpoint_state(logdir)
  registered = None
  if state is not None:
    registered = {os.path.basename(path)
                  for path in list(state.all_model_checkpoint_paths) +
                  [state.model_checkpoint_path]}
  removed = []
  for name in names:
    path = os.path.join(logdir, name)
    match = _CHECKPOINT_FILE.match(name)
    orphan = bool(_ORPHAN_TEMPORARY.search(name)) or (
        match is not None and registered is not None and
        match.group(1) not in registered)
    if not orphan:
      continue
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)
    removed.append(name)
  if removed:
    logging.info('Removed %d file(s) left in %s by an interrupted run: %s',
                 len(removed), logdir, ', '.join(removed))
  return removed


def checkpoint_step(logdir):
  """(prefix, global step) of the latest checkpoint in logdir, or None (no
  checkpoint, an unreadable one, or one without a step)."""
  prefix = tf.train.latest_checkpoint(logdir) if logdir else None
  if prefix is None:
    return None
  try:
    step = checkpoints.checkpoint_global_step(prefix)
  except (tf.errors.OpError, ValueError):
    return None
  return None if step is None else (prefix, step)


class LogdirGuard(object):
  """Context manager guarding one training run's use of its train_logdir.

  On entry (chief only): creates the folder, takes the LogdirLock and removes
  orphans. On exit: if the run failed on bad input (InputError) before it
  completed a step, removes every file the run created, and the folder if the
  run created it, so a failed run leaves nothing behind; then releases the
  lock. Set `trained` once a step completed.
  """

  def __init__(self, logdir, is_chief):
    self.logdir = logdir
    self.is_chief = is_chief
    self.had_checkpoint = tf.train.latest_checkpoint(logdir) is not None
    self.trained = False
    self._lock = LogdirLock(logdir)
    self._created = False
    self._before = None

  def __enter__(self):
    if not self.is_chief:
      return self
    if not os.path.isdir(self.logdir):
      try:
        os.makedirs(self.logdir)
      except FileExistsError:
        # makedirs' own words would be "cannot be created (File exists)".
        raise InputError('--train_logdir %s exists and is not a directory.'
                         % self.logdir) from None
      except OSError as error:
        raise InputError('--train_logdir %s cannot be created (%s).' %
                         (self.logdir, error.strerror)) from None
      self._created = True
    try:
      self._lock.acquire()
    except InputError:
      if self._created:
        shutil.rmtree(self.logdir, ignore_errors=True)
      raise
    self._before = set(os.listdir(self.logdir))
    remove_orphans(self.logdir)
    return self

  def __exit__(self, exception_type, exception, traceback):
    if not self.is_chief:
      return False
    if (exception_type is not None and issubclass(exception_type, InputError)
        and not self.trained):
      self._remove_new_files()
    self._lock.release()
    if self._created and exception_type is not None and not self.trained:
      try:
        os.rmdir(self.logdir)
      except OSError:
        pass
    return False

  def _remove_new_files(self):
    for name in sorted(set(os.listdir(self.logdir)) - self._before):
      if name == LOCK_FILE:
        continue
      path = os.path.join(self.logdir, name)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)
