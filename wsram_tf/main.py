"""Command line: train and evaluate one experiment into a work directory.

  python -m wsram_tf.main --config=configs/mnist.py:wsram_qc --workdir=/tmp/run \
      [--config.train.learning_rate=3e-4]
  python -m wsram_tf.main --config=configs/captions.py:wsram_q --workdir=/tmp/cap \
      --config.data.flickr8k_dir=/data/flickr8k

`config.task` picks the application (`wsram_tf/tasks.py`); `wsram_tf/run.py`
does the rest. A work directory that holds another config or another run,
or whose backups are all damaged, stops the program with the message alone
(exit status 1): it is the user's situation, not a bug to trace.
"""

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
  app.run(main)
