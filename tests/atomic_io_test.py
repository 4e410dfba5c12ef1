"""wsram_tf/atomic.py and wsram_tf/workdir.py without training: atomic
writes under failure, log trimming, the config comparison and the lock."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import ml_collections

from wsram_tf import atomic
from wsram_tf import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AtomicWriteTest(absltest.TestCase):

  def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(self):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, "results.json")
    atomic.write_json(path, {"step": 1})
    with self.assertRaises(KeyboardInterrupt):
      with atomic.replacing(path) as tmp:
        with open(tmp, "w") as f:
          f.write('{"step": ')
        raise KeyboardInterrupt
    with open(path) as f:
      self.assertEqual(json.load(f), {"step": 1})
    self.assertEqual(os.listdir(directory), ["results.json"])

  def test_a_failed_directory_write_keeps_the_old_directory(self):
    root = self.create_tempdir().full_path
    target = os.path.join(root, "export")

    def write(marker):
      def writer(tmp):
        os.makedirs(tmp)
        with open(os.path.join(tmp, "saved_model.pb"), "w") as f:
          f.write(marker)
        if marker == "broken":
          raise ValueError("export failed")
      return writer

    atomic.replace_dir(write("old"), target)
    with self.assertRaises(ValueError):
      atomic.replace_dir(write("broken"), target)
    with open(os.path.join(target, "saved_model.pb")) as f:
      self.assertEqual(f.read(), "old")
    atomic.replace_dir(write("new"), target)
    with open(os.path.join(target, "saved_model.pb")) as f:
      self.assertEqual(f.read(), "new")
    self.assertEqual(os.listdir(root), ["export"])

  def test_a_directory_that_is_no_export_is_not_replaced(self):
    target = self.create_tempdir().full_path
    open(os.path.join(target, "notes.txt"), "w").close()
    with self.assertRaisesRegex(FileExistsError, "saved_model.pb"):
      atomic.replace_dir(os.makedirs, target)
    self.assertEqual(os.listdir(target), ["notes.txt"])

  def test_leftovers_of_killed_writers_are_removed(self):
    directory = self.create_tempdir().full_path
    for name in (".final.weights.h5.tmp123.weights.h5", "metrics.csv",
                 ".hidden"):
      open(os.path.join(directory, name), "w").close()
    os.makedirs(os.path.join(directory, ".export.tmp77"))
    removed = atomic.remove_leftovers(directory)
    self.assertLen(removed, 2)
    self.assertCountEqual(os.listdir(directory), ["metrics.csv", ".hidden"])

  def test_a_fault_point_kills_only_at_its_count(self):
    code = ("from wsram_tf import atomic\n"
            "for i in range(3):\n"
            "  print(i, flush=True)\n"
            "  atomic.fault_point('backup')\n")
    for spec, printed, returncode in (("backup@2", "0\n1\n", -9),
                                      ("epoch_end@1", "0\n1\n2\n", 0),
                                      ("", "0\n1\n2\n", 0)):
      result = subprocess.run(
          [sys.executable, "-c", code], cwd=ROOT, capture_output=True,
          text=True, check=False,
          env=dict(os.environ, PYTHONPATH=ROOT,
                   **{atomic.FAULT_ENV: spec}))
      self.assertEqual((result.stdout, result.returncode),
                       (printed, returncode), spec)


class TrimCsvTest(absltest.TestCase):

  def test_rows_past_the_restored_epoch_and_a_torn_line_go(self):
    path = os.path.join(self.create_tempdir().full_path, "metrics.csv")
    with open(path, "w") as f:
      f.write("epoch,loss\n0,1.5\n1,1.2\n2,1.1\n3,0.")
    dropped = workdir_lib.trim_csv(path, lambda row: int(row["epoch"]) < 2)
    self.assertEqual(dropped, 1)
    with open(path) as f:
      self.assertEqual(f.read(), "epoch,loss\n0,1.5\n1,1.2\n")

  def test_an_untouched_file_is_not_rewritten(self):
    path = os.path.join(self.create_tempdir().full_path, "metrics.csv")
    with open(path, "w") as f:
      f.write("epoch,loss\n0,1.5\n")
    before = os.stat(path).st_ino
    self.assertEqual(workdir_lib.trim_csv(path, lambda row: True), 0)
    self.assertEqual(os.stat(path).st_ino, before)


def _config(**train):
  c = ml_collections.ConfigDict({
      "seed": 0, "preset": "tiny",
      "model": {"num_glimpses": 4},
      "train": {"num_train_steps": 4, "learning_rate": 1e-3,
                "checkpoint_every_steps": 2},
      "eval": {"num_samples": 2}, "data": {"mnist_dir": "/a"}})
  c.train.update(train)
  return c


class StoredConfigTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = self.create_tempdir().full_path
    with open(os.path.join(self.workdir, "config.json"), "w") as f:
      f.write(_config().to_json_best_effort())

  def test_a_new_directory_has_nothing_to_compare(self):
    empty = self.create_tempdir().full_path
    self.assertIsNone(workdir_lib.check_stored_config(_config(), empty))
    self.assertEqual(os.listdir(empty), [])

  def test_safe_changes_pass(self):
    config = _config(num_train_steps=8, checkpoint_every_steps=100)
    config.eval.num_samples = 10
    config.data.mnist_dir = "/moved"
    changes = workdir_lib.check_stored_config(config, self.workdir)
    self.assertEqual(changes["train.num_train_steps"], (4, 8))
    self.assertLen(changes, 4)

  def test_unsafe_changes_are_all_named(self):
    config = _config(num_train_steps=2, learning_rate=0.1)
    config.seed = 3
    with self.assertRaisesRegex(
        workdir_lib.WorkdirError,
        r"seed: 0 -> 3; train.learning_rate: 0.001 -> 0.1; "
        r"train.num_train_steps: 4 -> 2"):
      workdir_lib.check_stored_config(config, self.workdir)

  def test_settings_of_another_library_version_do_not_block_a_resume(self):
    # A run started before `task` and the clutter fields existed.
    config = _config()
    config.task = "classifier"
    config.data.clutter_pieces = 8
    with self.assertLogs(level="WARNING") as logs:
      changes = workdir_lib.check_stored_config(config, self.workdir)
    self.assertEqual(changes, {"data.clutter_pieces": ("<absent>", 8)})
    self.assertIn("data.clutter_pieces", "".join(logs.output))

  def test_an_absent_task_still_must_match_the_stored_data(self):
    path = os.path.join(self.workdir, "config.json")
    stored = _config()
    stored.data.name = "flickr8k"
    with open(path, "w") as f:
      f.write(stored.to_json_best_effort())
    config = _config()
    config.data.name = "flickr8k"
    config.task = "classifier"
    with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                r"task: 'captioner' -> 'classifier'"):
      workdir_lib.check_stored_config(config, self.workdir)

  def test_an_unreadable_stored_config_is_named(self):
    path = os.path.join(self.workdir, "config.json")
    with open(path, "w") as f:
      f.write('{"seed": ')
    with self.assertRaisesRegex(workdir_lib.WorkdirError, path):
      workdir_lib.check_stored_config(_config(), self.workdir)


class LockTest(absltest.TestCase):

  def test_the_second_holder_fails_naming_the_first(self):
    workdir = self.create_tempdir().full_path
    with workdir_lib.locked(workdir):
      with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                  f"pid {os.getpid()} on host .*started"):
        with workdir_lib.locked(workdir):
          pass
    with workdir_lib.locked(workdir):  # Released on exit.
      pass

  def test_a_killed_holder_releases_the_lock(self):
    workdir = self.create_tempdir().full_path
    code = ("import os, signal\nfrom wsram_tf import workdir\n"
            f"with workdir.locked({workdir!r}):\n"
            "  os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    with workdir_lib.locked(workdir):
      pass


if __name__ == "__main__":
  absltest.main()
