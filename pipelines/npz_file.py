"""The pipelines' npz caches are written whole or not at all.

The core has its own atomic writes (wsram_tf/atomic.py); pipelines never
import wsram_tf, so their caches share this one.
"""

import os
import tempfile
from typing import Mapping

import numpy as np


def save_atomically(path: str, arrays: Mapping[str, np.ndarray]) -> None:
  """np.savez(`arrays`) to `path` atomically (temp file in its dir + rename).

  The folder is created; the file is readable by all (a cache may be shared).
  On any error the temporary file is removed and `path` is left as it was.
  """
  directory = os.path.dirname(path) or "."
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.chmod(tmp, 0o644)  # mkstemp made it 0600; a cache may be shared.
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
