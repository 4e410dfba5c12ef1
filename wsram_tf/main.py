"""Command line: train and evaluate one experiment into a work directory.

  python -m wsram_tf.main --config=configs/mnist.py:wsram_qc --workdir=/tmp/run \
      [--config.train.learning_rate=3e-4]
  python -m wsram_tf.main --config=configs/captions.py:wsram_q --workdir=/tmp/cap \
      --config.data.flickr8k_dir=/data/flickr8k

`config.task` picks the task (`wsram_tf/tasks.py`); `wsram_tf/run.py`
does the rest. A work directory that holds another config or another run,
or whose backups are all damaged, stops the program with the message alone
(exit status 1): it is the user's situation, not a bug to trace.
"""

import importlib.util
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags

from wsram_tf import checkpoints
from wsram_tf import run
from wsram_tf import workdir

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file and preset, e.g. configs/mnist.py:wsram_qc.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results land.")
flags.mark_flags_as_required(["config", "workdir"])


def unknown_field_message(config, overrides) -> str:
  """Names the first `--config.a.b=v` whose field `config` lacks, with the
  valid names where it stops."""
  for override in overrides:
    path = override[len("--config."):].split("=", 1)[0].split(".")
    node, walked = config, "config"
    for name in path:
      if not hasattr(node, "keys") or name not in node.keys():
        valid = (", ".join(sorted(node.keys())) if hasattr(node, "keys")
                 else f"none: {walked} is a value, not a section")
        return (f"{override.split('=', 1)[0]}: {walked} has no field "
                f"{name!r}; valid: {valid}.")
      node, walked = node[name], f"{walked}.{name}"
  return ""


def parse_flags(argv):
  """absl's flag parsing, with an unknown --config.<field> named with the
  valid fields (ml_collections raises a bare AttributeError)."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    message = ""
    config_arg = [a for a in argv[1:] if a.startswith("--config=")]
    if config_arg:
      path, _, preset = config_arg[-1][len("--config="):].partition(":")
      spec = importlib.util.spec_from_file_location("_wsram_config", path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      config = module.get_config(preset) if preset else module.get_config()
      message = unknown_field_message(config, overrides)
    sys.exit(f"Error: {message or str(e)}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.info("Config:\n%s", _CONFIG.value)
  try:
    run.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (workdir.WorkdirError, checkpoints.CheckpointError) as e:
    logging.error("%s", e)
    sys.exit(f"Error: {e}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
