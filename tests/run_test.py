"""wsram_tf/run.py and the CLI: end to end on tiny idx MNIST, resume, profiling."""

import glob
import json
import os
import subprocess
import sys
from unittest import mock

import keras
import tensorflow as tf

from tests import builders
from tests import toy_data
from wsram_tf import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(mnist_dir: str, **train_fields):
  # These tests are about the loop around the step: XLA is off (the CLI test
  # and model_test cover it). The CLI test checks the export at the end of
  # training; the rest skip it.
  return builders.mnist_run_config(mnist_dir,
                                   **{"export": False, **train_fields})


class StepRecorder(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.first_step = None
    self.batches = 0

  def on_train_begin(self, logs=None):
    if self.first_step is None:
      self.first_step = int(self.model.optimizer.iterations)

  def on_train_batch_end(self, batch, logs=None):
    self.batches += 1


class TrainTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.mnist_dir = self.create_tempdir().full_path
    toy_data.write_idx_dir(self.mnist_dir,
                           toy_data.random_mnist_arrays(80, 24))

  def _with_callbacks(self, *extra):
    original = run.callbacks_for
    return mock.patch.object(
        run, "callbacks_for",
        lambda *args: original(*args) + list(extra))

  def test_cli_runs_tiny_end_to_end(self):
    workdir = self.create_tempdir().full_path
    command = [
        sys.executable, "-m", "wsram_tf.main",
        "--config=configs/mnist.py:wsram_qc,tiny", f"--workdir={workdir}",
        f"--config.data.mnist_dir={self.mnist_dir}",
        "--config.data.validation_size=16", "--config.model.hidden_size=16"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    with open(os.path.join(workdir, "config.json")) as f:
      self.assertEqual(json.load(f)["variant"], "wsram_qc")
    with open(os.path.join(workdir, "results.json")) as f:
      results = json.load(f)
    for key in ("test_error", "test_log_likelihood", "train_steps", "variant",
                "wall_seconds", "data_source"):
      self.assertIn(key, results)
    self.assertEqual(results["train_steps"], 4)
    self.assertStartsWith(results["data_source"], "idx:")
    exported = tf.saved_model.load(os.path.join(workdir, "export"))
    self.assertIn("serve_sampled", exported.signatures)
    # An error rate is a whole number of mistakes over the 24 test digits
    # written above (a batch-averaged rate with a short last batch is not).
    self.assertEqual(results["num_test"], 24)
    mistakes = results["test_error"] * results["num_test"]
    self.assertAllClose(mistakes, round(mistakes), atol=1e-4)
    self.assertBetween(round(mistakes), 0, 24)

  def test_cli_rejects_a_misspelt_field(self):
    result = subprocess.run(
        [sys.executable, "-m", "wsram_tf.main",
         "--config=configs/mnist.py:tiny", "--workdir=/tmp/unused",
         "--config.train.learning_rat=1"],
        cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("learning_rate", result.stderr)

  def test_killed_run_resumes_from_its_last_backup(self):
    workdir = self.create_tempdir().full_path
    config = tiny_config(self.mnist_dir, num_train_steps=6, steps_per_epoch=3,
                         checkpoint_every_steps=2)
    with self._with_callbacks(builders.KillAt(4)), \
        self.assertRaises(KeyboardInterrupt):
      run.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, "results.json")))

    recorder = StepRecorder()
    with self._with_callbacks(recorder):
      results = run.train_and_evaluate(config, workdir)
    self.assertEqual(recorder.first_step, 4)
    self.assertEqual(recorder.batches, 2)
    self.assertEqual(results["train_steps"], 6)

  def test_killed_and_resumed_run_equals_an_uninterrupted_run(self):
    # Same parameters, optimizer state, sampling state and data stream: the
    # resumed run must continue the train stream, not restart it.
    config = tiny_config(self.mnist_dir, num_train_steps=6, steps_per_epoch=3,
                         checkpoint_every_steps=2)
    straight = run.train_and_evaluate(config, self.create_tempdir().full_path)
    workdir = self.create_tempdir().full_path
    with self._with_callbacks(builders.KillAt(4)), \
        self.assertRaises(KeyboardInterrupt):
      run.train_and_evaluate(config, workdir)
    resumed = run.train_and_evaluate(config, workdir)
    self.assertAllClose(resumed["test_log_likelihood"],
                        straight["test_log_likelihood"], rtol=1e-6, atol=0)

  def test_finished_run_restarted_does_not_train_again(self):
    workdir = self.create_tempdir().full_path
    config = tiny_config(self.mnist_dir)
    run.train_and_evaluate(config, workdir)
    recorder = StepRecorder()
    with self._with_callbacks(recorder):
      results = run.train_and_evaluate(config, workdir)
    self.assertEqual(recorder.batches, 0)
    self.assertEqual(results["train_steps"], config.train.num_train_steps)

  def test_best_and_last_checkpoints_are_kept(self):
    workdir = self.create_tempdir().full_path
    run.train_and_evaluate(tiny_config(self.mnist_dir), workdir)
    checkpoints = os.path.join(workdir, "checkpoints")
    self.assertTrue(os.path.exists(os.path.join(checkpoints,
                                                "best.weights.h5")))
    self.assertEqual(tf.train.latest_checkpoint(checkpoints),
                     os.path.join(checkpoints, "ckpt-4"))

  def test_eval_weights_best_tests_the_best_checkpoint(self):
    # With the long recipe's schedule, as `wsram_qc_long,tiny` runs it.
    workdir = self.create_tempdir().full_path
    config = tiny_config(self.mnist_dir, lr_schedule="cosine", warmup_steps=1)
    with config.unlocked():
      config.eval.weights = "best"
    results = run.train_and_evaluate(config, workdir)
    best = os.path.join(workdir, "checkpoints", "best.weights.h5")
    with open(best + ".json") as f:
      self.assertEqual(results["best_step"], json.load(f)["step"])
    self.assertEqual(results["weights"], "best")
    model, _ = builders.load_run("classifier", workdir)  # Final weights.
    self.assertEqual(run.evaluated_weights(model, config, workdir),
                     {"weights": "best", "best_step": results["best_step"]})
    expected, _ = builders.load_run("classifier", workdir)
    expected.load_weights(best)
    for loaded, stored in zip(model.get_weights(), expected.get_weights()):
      self.assertAllEqual(loaded, stored)

  def test_eval_weights_best_without_a_best_file_uses_the_final(self):
    workdir = self.create_tempdir().full_path
    config = tiny_config(self.mnist_dir)
    with config.unlocked():
      config.eval.weights = "best"
    run.train_and_evaluate(config, workdir)
    os.remove(os.path.join(workdir, "checkpoints", "best.weights.h5"))
    model, _ = builders.load_run("classifier", workdir)
    before = [w.numpy() for w in model.weights]
    with self.assertLogs(level="WARNING") as logs:
      self.assertEqual(run.evaluated_weights(model, config, workdir),
                       {"weights": "final"})
    self.assertIn("best.weights.h5", "\n".join(logs.output))
    for old, new in zip(before, model.weights):
      self.assertAllEqual(old, new.numpy())

  def test_profile_steps_write_a_trace(self):
    workdir = self.create_tempdir().full_path
    run.train_and_evaluate(
        tiny_config(self.mnist_dir, profile_steps="2,3"), workdir)
    traces = glob.glob(os.path.join(workdir, "tensorboard", "**", "*.xplane.pb"),
                       recursive=True)
    self.assertNotEmpty(traces)

  def test_steps_per_execution_runs_several_updates_per_call(self):
    workdir = self.create_tempdir().full_path
    recorder = StepRecorder()
    with self._with_callbacks(recorder):
      results = run.train_and_evaluate(
          tiny_config(self.mnist_dir, steps_per_execution=2), workdir)
    self.assertEqual(results["train_steps"], 4)
    self.assertEqual(recorder.batches, 2)  # Callbacks see each call once.
    self.assertEqual(
        tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")),
        os.path.join(workdir, "checkpoints", "ckpt-4"))

  def test_profile_start_inside_a_multi_step_call_still_traces(self):
    workdir = self.create_tempdir().full_path
    run.train_and_evaluate(
        tiny_config(self.mnist_dir, profile_steps="2,3",
                    steps_per_execution=2), workdir)
    traces = glob.glob(os.path.join(workdir, "tensorboard", "**", "*.xplane.pb"),
                       recursive=True)
    self.assertNotEmpty(traces)

  def test_bad_settings_name_the_field(self):
    for fields, name in (({"num_train_steps": 5}, "steps_per_epoch"),
                         ({"steps_per_execution": 0}, "steps_per_execution"),
                         ({"steps_per_execution": 3}, "steps_per_execution"),
                         ({"strategy": "tpu"}, "strategy"),
                         ({"profile_steps": "9,3"}, "profile_steps"),
                         ({"lr_schedule": "step"}, "lr_schedule"),
                         ({"lr_schedule": "cosine", "warmup_steps": 4},
                          "warmup_steps")):
      with self.assertRaisesRegex(ValueError, name):
        run.check_config(tiny_config(self.mnist_dir, **fields))

  def test_unknown_eval_weights_are_named(self):
    config = tiny_config(self.mnist_dir)
    with config.unlocked():
      config.eval.weights = "last"
    with self.assertRaisesRegex(ValueError, "eval.weights.*'last'"):
      run.check_config(config)

  def test_unknown_task_names_the_valid_ones(self):
    config = tiny_config(self.mnist_dir)
    config.task = "translator"
    with self.assertRaisesRegex(ValueError,
                                "'translator'.*classifier, captioner"):
      run.check_config(config)


class CommandLineTest(tf.test.TestCase):

  def test_an_unknown_config_field_names_the_valid_ones(self):
    workdir = os.path.join(self.get_temp_dir(), "never")
    result = subprocess.run(
        [sys.executable, "-m", "wsram_tf.main",
         "--config=configs/mnist.py:var_c,tiny", f"--workdir={workdir}",
         "--config.data.validation_sise=3"],
        cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Error: --config.data.validation_sise: config.data has no "
                  "field 'validation_sise'; valid: cache_dir,",
                  result.stderr)
    self.assertIn("validation_size.", result.stderr)
    self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
  tf.test.main()
