"""Runs a script in a fresh interpreter that cannot import this project.

Export tests use it to show a SavedModel serves for a user who has only
TensorFlow. The package is pip-installed in editable mode, so a clean
PYTHONPATH and cwd alone would not hide it: the child's first lines install a
meta-path hook that refuses our packages and TensorFlow Probability outright
(scripts may append to its BLOCKED list, e.g. Keras after TensorFlow loaded).
"""

import os
import subprocess
import sys

_PREAMBLE = r"""
import importlib.abc
import sys

BLOCKED = ["wsram_tf", "pipelines", "configs", "tests",
           "tensorflow_probability"]


class Block(importlib.abc.MetaPathFinder):

  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in BLOCKED:
      raise ImportError(f"{name} is blocked in this test")


sys.meta_path.insert(0, Block())
try:
  import wsram_tf  # noqa
  raise SystemExit("wsram_tf is importable in the child")
except ImportError:
  pass
"""


def run(script: str, args, cwd: str,
        timeout: int = 300) -> subprocess.CompletedProcess:
  """Runs `script` (after the blocking preamble) with `args` in `cwd`."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return subprocess.run(
      [sys.executable, "-c", _PREAMBLE + script, *args],
      cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
