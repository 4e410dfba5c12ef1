"""Re-runs in one work directory (issue 10 items 2-7, 9): changed configs,
torn best weights, kills at epoch ends, long backup intervals, damaged
backups, two runs at once, and shared fields out of range."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from unittest import mock

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_configs
from tests import builders
from tests import toy_data
from wsram_tf import callbacks as callbacks_lib
from wsram_tf import run
from wsram_tf import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def tiny_config(mnist_dir: str, **train_fields):
  return builders.mnist_run_config(
      mnist_dir, **{"export": False, "glimpse_every_epochs": 0,
                    **train_fields})


weights = builders.h5_weights


def assert_same_weights(test, actual: dict, expected: dict):
  """Bit-identical: the same arrays under the same names."""
  test.assertEqual(sorted(actual), sorted(expected))
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)


def metric_epochs(workdir: str) -> list:
  with open(os.path.join(workdir, "metrics.csv")) as f:
    return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]


class KillAtEpochEnd(keras.callbacks.Callback):
  """A kill after epoch `epoch`'s (1-based) end, after every other callback."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch + 1 >= self.epoch:
      raise KeyboardInterrupt(f"killed after epoch {self.epoch}")


class RerunTest(tf.test.TestCase):
  """Re-runs of one finished 4-step run (copied per test)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "rerun")
    cls.mnist_dir = os.path.join(cls.root, "mnist")
    os.makedirs(cls.mnist_dir, exist_ok=True)
    toy_data.write_idx_dir(cls.mnist_dir, toy_data.random_mnist_arrays(80, 24))
    cls.finished = os.path.join(cls.root, "finished")
    cls.results = run.train_and_evaluate(tiny_config(cls.mnist_dir),
                                         cls.finished)

  def copy(self) -> str:
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    shutil.copytree(self.finished, workdir)
    return workdir

  def _with_callbacks(self, *extra):
    original = run.callbacks_for
    return mock.patch.object(run, "callbacks_for",
                             lambda *args: original(*args) + list(extra))

  # Item 2: a work directory belongs to one config.
  def test_a_model_change_is_refused_before_anything_is_written(self):
    workdir = self.copy()
    before = {p: open(p, "rb").read()
              for p in glob.glob(os.path.join(workdir, "*.*"))}
    config = tiny_config(self.mnist_dir)
    stored_rate = config.train.learning_rate
    with config.unlocked():
      config.model.num_glimpses = 6
      config.train.learning_rate = 0.5
    with self.assertRaisesRegex(
        RuntimeError, r"model.num_glimpses: 4 -> 6.*"
        rf"train.learning_rate: {re.escape(str(stored_rate))} -> 0.5"):
      run.train_and_evaluate(config, workdir)
    after = {p: open(p, "rb").read()
             for p in glob.glob(os.path.join(workdir, "*.*"))}
    self.assertEqual(before, after)

  def test_more_steps_continue_training(self):
    workdir = self.copy()
    results = run.train_and_evaluate(
        tiny_config(self.mnist_dir, num_train_steps=6), workdir)
    self.assertEqual(results["train_steps"], 6)
    self.assertEqual(metric_epochs(workdir), [0, 1, 2])
    with open(os.path.join(workdir, "config.json")) as f:
      self.assertEqual(json.load(f)["train"]["num_train_steps"], 6)

  def test_more_steps_are_refused_under_a_learning_rate_schedule(self):
    # The cosine spans num_train_steps: more updates would change its past.
    workdir = self.create_tempdir().full_path
    cosine = dict(lr_schedule="cosine", warmup_steps=2)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(tiny_config(self.mnist_dir, **cosine).to_json_best_effort())
    with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                "train.num_train_steps: 4 -> 6"):
      workdir_lib.check_stored_config(
          tiny_config(self.mnist_dir, num_train_steps=6, **cosine), workdir)

  def test_an_eval_change_only_re_evaluates(self):
    workdir = self.copy()
    config = tiny_config(self.mnist_dir)
    with config.unlocked():
      config.eval.num_samples = 3
    results = run.train_and_evaluate(config, workdir)
    self.assertEqual(results["train_steps"], 4)
    self.assertEqual(metric_epochs(workdir), [0, 1])

  def test_the_cli_states_the_refusal_without_a_traceback(self):
    workdir = self.create_tempdir().full_path
    config = mnist_configs.get_config("wsram_qc,tiny")
    with config.unlocked():
      config.seed = 1
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort())
    result = subprocess.run(
        [sys.executable, "-m", "wsram_tf.main",
         "--config=configs/mnist.py:wsram_qc,tiny", f"--workdir={workdir}"],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONPATH=ROOT))
    self.assertEqual(result.returncode, 1, result.stderr[-2000:])
    self.assertIn("seed: 1 -> 0", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

  # Item 3: best.weights.h5 is replaced whole, and checked on resume.
  def test_a_kill_while_best_is_rewritten_keeps_the_previous_best(self):
    workdir = self.copy()
    best = os.path.join(workdir, "checkpoints", "best.weights.h5")
    with open(os.path.join(workdir, "checkpoints", "best.weights.h5.json"),
              "w") as f:
      json.dump({"val_error": 2.0}, f)  # Any new validation improves on it.
    previous = weights(best)

    def torn_save(model, path, *args, **kwargs):
      with open(path, "wb") as f:
        f.write(b"\x89HDF\r\n half a file")
      raise KeyboardInterrupt("killed while saving " + path)

    with mock.patch.object(keras.Model, "save_weights", torn_save), \
        self.assertRaises(KeyboardInterrupt):
      run.train_and_evaluate(tiny_config(self.mnist_dir, num_train_steps=6),
                             workdir)
    assert_same_weights(self, weights(best), previous)

  def test_a_resumed_run_names_a_missing_best_model(self):
    workdir = self.copy()
    os.remove(os.path.join(workdir, "checkpoints", "best.weights.h5"))
    with self.assertLogs(logging.get_absl_logger(), "WARNING") as logs:
      run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
    self.assertIn("best.weights.h5", "\n".join(logs.output))

  # Item 6: a damaged newest backup falls back to the older one.
  def test_a_damaged_newest_backup_falls_back_to_the_older_one(self):
    workdir = self.copy()
    data, = glob.glob(os.path.join(workdir, "checkpoints",
                                   "ckpt-4.data-*"))
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
    with self.assertLogs(logging.get_absl_logger(), "WARNING") as logs:
      results = run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
    self.assertIn("ckpt-4", "\n".join(logs.output))
    self.assertEqual(results["train_steps"], 4)
    self.assertEqual(metric_epochs(workdir), [0, 1])
    assert_same_weights(
        self, weights(os.path.join(workdir, "final.weights.h5")),
        weights(os.path.join(self.finished, "final.weights.h5")))

  def test_no_intact_backup_fails_naming_the_files(self):
    workdir = self.copy()
    for index in glob.glob(os.path.join(workdir, "checkpoints",
                                        "ckpt-*.index")):
      with open(index, "wb") as f:
        f.write(b"garbage, not an sstable")
    with self.assertRaisesRegex(RuntimeError, r"ckpt-4.*ckpt-2"):
      run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)

  def test_a_garbled_backup_index_falls_back_to_the_files(self):
    # TF reads a garbled index as "no backups": the run would start over.
    workdir = self.copy()
    with open(os.path.join(workdir, "checkpoints", "checkpoint"), "w") as f:
      f.write("model_checkpoint_path: \"ckpt-4\n garbage {{")
    with self.assertLogs(logging.get_absl_logger(), "WARNING") as logs:
      results = run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
    self.assertIn("checkpoints/checkpoint", "\n".join(logs.output))
    self.assertEqual(results["train_steps"], 4)
    self.assertEqual(metric_epochs(workdir), [0, 1])  # Nothing trained again.

  # Item 7: one run at a time.
  def test_a_second_run_fails_at_once_naming_the_first(self):
    workdir = self.create_tempdir().full_path
    started, release = threading.Event(), threading.Event()

    class Hold(keras.callbacks.Callback):
      """Holds the first run at its first step (once: the second run, if
      it were let in, would pass)."""

      def on_train_batch_end(self, batch, logs=None):
        if not started.is_set():
          started.set()
          release.wait(300)

    first_error = []

    def first():
      try:
        run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
      except Exception as e:  # pylint: disable=broad-except
        first_error.append(e)

    with self._with_callbacks(Hold()):
      thread = threading.Thread(target=first)
      thread.start()
      try:
        self.assertTrue(started.wait(300))
        with self.assertRaisesRegex(RuntimeError,
                                    f"in use.*pid {os.getpid()} on host"):
          run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
      finally:
        release.set()
        thread.join()
    self.assertEqual(first_error, [])
    self.assertEqual(metric_epochs(workdir), [0, 1])


class EpochBoundaryTest(tf.test.TestCase):
  """Item 4: killed at an epoch end and resumed equals never stopped; item 5:
  a backup interval longer than the run."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.mnist_dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "mnist4")
    os.makedirs(cls.mnist_dir, exist_ok=True)
    toy_data.write_idx_dir(cls.mnist_dir, toy_data.random_mnist_arrays(80, 24))
    cls.straight = os.path.join(tf.compat.v1.test.get_temp_dir(), "straight")
    run.train_and_evaluate(cls.config(), cls.straight)

  @classmethod
  def config(cls, **fields):
    return tiny_config(cls.mnist_dir, num_train_steps=6, **fields)

  def _with_callbacks(self, *extra):
    original = run.callbacks_for
    return mock.patch.object(run, "callbacks_for",
                             lambda *args: original(*args) + list(extra))

  def assert_same_as_straight(self, workdir):
    """Bit-identical weights; every metrics row once, with the same values."""
    self.assertEqual(metric_epochs(workdir), [0, 1, 2])
    with open(os.path.join(workdir, "metrics.csv")) as f, open(
        os.path.join(self.straight, "metrics.csv")) as g:
      self.assertEqual(f.read(), g.read())
    assert_same_weights(
        self, weights(os.path.join(workdir, "final.weights.h5")),
        weights(os.path.join(self.straight, "final.weights.h5")))

  def test_killed_at_an_epoch_end_resumes_as_never_stopped(self):
    for kill in (builders.KillAt(4), KillAtEpochEnd(2)):
      with self.subTest(type(kill).__name__):
        workdir = self.create_tempdir().full_path
        with self._with_callbacks(kill), self.assertRaises(KeyboardInterrupt):
          run.train_and_evaluate(self.config(), workdir)
        run.train_and_evaluate(self.config(), workdir)
        self.assert_same_as_straight(workdir)

  def test_killed_mid_epoch_logs_the_same_epoch_averages(self):
    workdir = self.create_tempdir().full_path
    config = self.config(checkpoint_every_steps=1)
    with self._with_callbacks(builders.KillAt(3)), \
        self.assertRaises(KeyboardInterrupt):
      run.train_and_evaluate(config, workdir)
    run.train_and_evaluate(config, workdir)
    self.assert_same_as_straight(workdir)

  def test_a_backup_interval_longer_than_the_run(self):
    workdir = self.create_tempdir().full_path
    config = self.config(checkpoint_every_steps=100)
    with self._with_callbacks(builders.KillAt(5)), \
        self.assertRaises(KeyboardInterrupt):
      run.train_and_evaluate(config, workdir)
    run.train_and_evaluate(config, workdir)
    self.assert_same_as_straight(workdir)

  def test_validation_leaves_the_training_stream_alone(self):
    model = builders.toy_model("wsram_qc", jit_compile=False)
    images, labels = toy_data.corner_patterns(16)
    before = model.seed_generator.state.numpy()
    first = model.evaluate(images, labels, batch_size=8, verbose=0)
    self.assertAllEqual(model.seed_generator.state.numpy(), before)
    self.assertAllEqual(model.evaluate(images, labels, batch_size=8,
                                       verbose=0), first)


MIRRORED_EVALUATE = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests import builders, toy_data
with tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]).scope():
  model = builders.toy_model("wsram_qc", jit_compile=False)
images, labels = toy_data.corner_patterns(16)
first = model.evaluate(images, labels, batch_size=8, verbose=0)
second = model.evaluate(images, labels, batch_size=8, verbose=0)
print(model.seed_generator.state.numpy().tolist(), first == second)
"""


class MirroredEvaluationTest(tf.test.TestCase):

  def test_evaluation_stream_under_a_mirrored_strategy(self):
    # Its own process: logical devices must be set before TF starts.
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_EVALUATE], cwd=ROOT,
        capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND="tensorflow"))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(result.stdout.strip().splitlines()[-1], "[0, 0] True")


class SharedFieldsTest(tf.test.TestCase):
  """Item 9: shared fields out of range fail naming the field."""

  def test_bad_shared_fields_name_the_field(self):
    for field, value in (("train.batch_size", 0), ("eval.batch_size", 0),
                         ("train.learning_rate", -1e-3),
                         ("train.inference_learning_rate", 0.0),
                         ("train.learning_rate", float("nan")),
                         ("objective.num_samples", 0),
                         ("eval.num_samples", 0)):
      config = tiny_config("/nonexistent")
      section, name = field.split(".")
      with config.unlocked():
        config[section][name] = value
      with self.subTest(field), self.assertRaisesRegex(ValueError, field):
        run.check_config(config)

  def test_a_nan_before_any_backup_mentions_no_checkpoint(self):
    stop = callbacks_lib.StopOnNonFinite(self.create_tempdir().full_path)
    stop.set_model(builders.toy_model("wsram_qc", jit_compile=False))
    with self.assertRaises(callbacks_lib.NonFiniteLossError) as caught:
      stop.on_train_batch_end(0, {"loss": np.nan})
    self.assertIn("No backup has been written yet", str(caught.exception))
    self.assertNotIn("checkpoint predates", str(caught.exception))


if __name__ == "__main__":
  tf.test.main()
