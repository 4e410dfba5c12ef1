"""workdir.check_stored_config against config.json files written by older
versions of the library: a field the stored config predates counts as the
value that version used, so a changed default cannot slip into a resumed
run, and a refusal says how to resume."""

import json
import os

import ml_collections
import tensorflow as tf

from wsram_tf import workdir as workdir_lib


def _config(**model) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "task": "classifier",
      "model": {"hidden_size": 256, **model},
      "train": {"lr_schedule": "constant", "num_train_steps": 10}})


class StoredConfigTest(tf.test.TestCase):

  def _workdir(self, stored: ml_collections.ConfigDict) -> str:
    workdir = self.create_tempdir().full_path
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(stored.to_dict(), f)
    return workdir

  def test_an_absent_field_implied_by_its_version_matches_that_value(self):
    workdir = self._workdir(_config())  # Written before inference_units.
    self.assertEqual(
        workdir_lib.check_stored_config(_config(inference_units=0), workdir),
        {})

  def test_an_absent_field_implied_otherwise_is_refused_naming_both(self):
    workdir = self._workdir(_config())
    with self.assertRaises(workdir_lib.WorkdirError) as e:
      workdir_lib.check_stored_config(_config(inference_units=32), workdir)
    self.assertIn("model.inference_units: 0 -> 32", str(e.exception))
    self.assertIn("--config.model.inference_units=0", str(e.exception))

  def test_other_absent_fields_are_kept_as_the_new_defaults(self):
    workdir = self._workdir(_config())
    changes = workdir_lib.check_stored_config(
        _config(inference_units=0, glimpse_units=0), workdir)
    self.assertEqual(changes,
                     {"model.glimpse_units": (workdir_lib.ABSENT, 0)})

  def test_a_stored_value_is_never_replaced_by_the_implied_one(self):
    workdir = self._workdir(_config(inference_units=32))
    self.assertEqual(
        workdir_lib.check_stored_config(_config(inference_units=32), workdir),
        {})

  def test_the_refusal_gives_flags_for_scalar_fields_only(self):
    workdir = self._workdir(_config(scale_factors=[1, 2, 4], cell="relu"))
    with self.assertRaises(workdir_lib.WorkdirError) as e:
      workdir_lib.check_stored_config(
          _config(inference_units=0, scale_factors=[1, 2], cell="lstm",
                  hidden_size=64), workdir)
    message = str(e.exception)
    self.assertIn("--config.model.hidden_size=256", message)
    self.assertIn("--config.model.cell='relu'", message)
    self.assertNotIn("--config.model.scale_factors", message)
    self.assertIn("model.scale_factors: [1, 2, 4] -> [1, 2]", message)


if __name__ == "__main__":
  tf.test.main()
