"""pytest setup shared by all tests: quiet TF logs, Keras on the TF backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

# absltest helpers (create_tempdir, ...) read flags that only absltest.main
# parses; under pytest mark them parsed so their defaults apply.
flags.FLAGS.mark_as_parsed()
