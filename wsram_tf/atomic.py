"""Files a user relies on are written whole or not at all.

Everything goes to a temporary name in the same directory first and is then
renamed over the target (`os.replace` is atomic on POSIX): a run killed at
any moment leaves either the previous file or the new one, never a torn one.
Used for config.json, results.json, the weights files, vocab.json, the
export directory and the CSV logs that a resumed run trims.

`fault_point(name)` is the hook of the fault-injection test
(tests/fault_injection_test.py): with WSRAM_FAULT_POINT="name@k" in the
environment the process kills itself (SIGKILL, no cleanup) the k-th time it
passes `name`; "name@k@seconds" kills it that long after, from another
thread, i.e. in the middle of whatever follows (a backup being written).
Without the variable it does nothing.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import threading
from typing import Callable, Iterator

FAULT_ENV = "WSRAM_FAULT_POINT"
_fault_counts = {}
_fault_lock = threading.Lock()


def fault_point(name: str) -> None:
  """Dies here, as a kill -9 would, if WSRAM_FAULT_POINT names this pass."""
  spec = os.environ.get(FAULT_ENV)
  if not spec:
    return
  target, *rest = spec.split("@")
  if target != name:
    return
  count = int(rest[0]) if rest else 1
  delay = float(rest[1]) if len(rest) > 1 else 0.0
  with _fault_lock:
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] != count:
      return
  if delay <= 0:
    os.kill(os.getpid(), signal.SIGKILL)
  threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()


def temporary_name(path: str, suffix: str = "") -> str:
  """A sibling of `path` that no other writer uses (pid), same filesystem."""
  directory, base = os.path.split(path)
  return os.path.join(directory, f".{base}.tmp{os.getpid()}{suffix}")


@contextlib.contextmanager
def replacing(path: str, suffix: str = "") -> Iterator[str]:
  """Yields a temporary path to write; renames it over `path` on success."""
  tmp = temporary_name(path, suffix)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  try:
    yield tmp
    fault_point("atomic:" + os.path.basename(path))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
  with replacing(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value, indent: int = 2) -> None:
  write_text(path, json.dumps(value, indent=indent))


def copy_file(source: str, path: str) -> None:
  with replacing(path) as tmp:
    shutil.copyfile(source, tmp)


def save_weights(model, path: str) -> None:
  """`model.save_weights(path)` via a temporary `.weights.h5` (Keras needs
  the suffix)."""
  with replacing(path, ".weights.h5") as tmp:
    model.save_weights(tmp)


def replace_dir(write: Callable[[str], object], path: str,
                marker: str = "saved_model.pb") -> str:
  """Calls `write(tmp_dir)`, then puts tmp_dir where `path` was.

  Only a new path, an empty directory or one holding `marker` (an earlier
  export) is replaced: a user's `--export_dir=~/models` or
  `--export_dir=notes.txt` is never swept away, and refused before `write`
  runs. Two
  renames cannot be one atomic step: a kill between them leaves the old
  directory as `.<name>.tmp<pid>.old` beside a missing `path`, never a
  half-written `path`.
  """
  path = os.path.normpath(path)
  if os.path.lexists(path) and not os.path.isdir(path):
    raise FileExistsError(
        f"{path} exists and is a file, not a directory: it is not replaced. "
        "Pass a new or empty directory, or an earlier export.")
  if os.path.isdir(path) and os.listdir(path) and not os.path.exists(
      os.path.join(path, marker)):
    raise FileExistsError(
        f"{path} exists and holds no {marker}: not an earlier export, so it "
        "is not replaced. Pass a new or empty directory.")
  tmp = temporary_name(path)
  old = temporary_name(path, ".old")
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    write(tmp)
    fault_point("atomic:" + os.path.basename(path))
    if os.path.exists(path):
      os.replace(path, old)
    os.replace(tmp, path)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
  return path


_TEMPORARY = re.compile(r"^\..+\.tmp\d+")


def remove_leftovers(directory: str) -> list:
  """Deletes temporary files and directories of killed writers in
  `directory` (call only while no other process writes there)."""
  if not os.path.isdir(directory):
    return []
  removed = [os.path.join(directory, name) for name in os.listdir(directory)
             if _TEMPORARY.match(name)]
  for path in removed:
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)
  return removed
