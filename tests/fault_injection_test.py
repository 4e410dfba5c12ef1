"""Kill -9 at random points, resume until done: the same run as never stopped.

For the classifier and the captioner, a tiny CLI run (8 updates, 4 epochs, a
backup every update) is SIGKILLed at a few seeded random points named by
`wsram_tf.atomic.fault_point` (before a backup, a moment into one, after an
epoch's metrics row, while the best or final weights, the export or
results.json are renamed into place), then started again with the same
command until it exits 0. The final weights must be bit-identical to an
uninterrupted run's, metrics.csv identical (every row once), and every file
the finished run leaves readable.
"""

import glob
import json
import os
import random
import subprocess
import sys

import h5py
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import synthetic_captions
from tests import builders
from tests import toy_data
from wsram_tf import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = 3  # Per task: the file's time budget is ~3 minutes.
SHARED = ["--config.train.num_train_steps=8", "--config.train.steps_per_epoch=2",
          "--config.train.checkpoint_every_steps=1",
          "--config.train.jit_compile=False",
          "--config.train.glimpse_every_epochs=0"]


def kill_points(seed: int) -> list:
  """KILLS fault points, training ones first (a resumed process counts its
  own passes from 1, so small counts are reached in every process)."""
  rng = random.Random(seed)
  training = ([f"backup@{k}" for k in (1, 2, 3)]
              + [f"backup@{k}@{rng.uniform(0.001, 0.05):.3f}" for k in (1, 2)]
              + [f"epoch_end@{k}" for k in (1, 2)]
              + ["atomic:best.weights.h5@1"])
  ending = ["atomic:final.weights.h5@1", "atomic:export@1",
            "atomic:results.json@1"]
  chosen = rng.sample(training, KILLS - 1) + rng.sample(ending, 1)
  return chosen


def run_cli(args, workdir, fault=None):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop(atomic.FAULT_ENV, None)
  if fault:
    env[atomic.FAULT_ENV] = fault
  return subprocess.run(
      [sys.executable, "-m", "wsram_tf.main", f"--workdir={workdir}",
       *args, *SHARED], cwd=ROOT, env=env, capture_output=True, text=True,
      check=False)


weights = builders.h5_weights


class FaultInjectionTest(tf.test.TestCase):

  def check_killed_runs_end_as_never_stopped(self, args, seed):
    straight = self.create_tempdir().full_path
    result = run_cli(args, straight)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])

    workdir = self.create_tempdir().full_path
    points = kill_points(seed)
    for i, point in enumerate(points):
      result = run_cli(args, workdir, fault=point)
      # -9: killed at the point; 0: this process never reached it (a
      # resumed one may not), but a fresh run passes every training point.
      self.assertIn(result.returncode, (-9,) if i == 0 else (-9, 0),
                    f"{point}: {result.stderr[-3000:]}")
    result = run_cli(args, workdir)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])

    expected = weights(os.path.join(straight, "final.weights.h5"))
    final = weights(os.path.join(workdir, "final.weights.h5"))
    self.assertEqual(sorted(final), sorted(expected))
    for name, value in expected.items():
      np.testing.assert_array_equal(final[name], value,
                                    err_msg=f"{name} after kills {points}")
    with open(os.path.join(straight, "metrics.csv")) as f:
      expected_rows = f.read()
    with open(os.path.join(workdir, "metrics.csv")) as f:
      self.assertEqual(f.read(), expected_rows, f"kills {points}")
    self.assert_all_readable(workdir)

  def assert_all_readable(self, workdir):
    leftovers = [p for p in glob.glob(os.path.join(workdir, "**", ".*"),
                                      recursive=True) if ".tmp" in p]
    self.assertEqual(leftovers, [])
    for path in glob.glob(os.path.join(workdir, "**", "*.json"),
                          recursive=True):
      with open(path) as f:
        json.load(f)
    for path in glob.glob(os.path.join(workdir, "**", "*.h5"),
                          recursive=True):
      with h5py.File(path, "r"):
        pass
    self.assertTrue(os.path.exists(os.path.join(workdir, "checkpoints",
                                                "best.weights.h5")))
    self.assertNotEmpty(
        tf.saved_model.load(os.path.join(workdir, "export")).signatures)

  def test_classifier(self):
    mnist_dir = self.create_tempdir().full_path
    toy_data.write_idx_dir(mnist_dir, toy_data.random_mnist_arrays(80, 24))
    self.check_killed_runs_end_as_never_stopped(
        ["--config=configs/mnist.py:wsram_qc,tiny",
         f"--config.data.mnist_dir={mnist_dir}",
         "--config.data.validation_size=16", "--config.model.hidden_size=16",
         "--config.train.batch_size=8", "--config.eval.batch_size=16"],
        seed=1)

  def test_captioner(self):
    root = self.create_tempdir().full_path
    data_dir = os.path.join(root, "data")
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8)
    synthetic_captions.generate(data_dir, digits, np.arange(30) % 10,
                                num_images=20, image_size=64, seed=0)
    self.check_killed_runs_end_as_never_stopped(
        ["--config=configs/captions.py:wsram_q,tiny",
         f"--config.data.flickr8k_dir={data_dir}",
         f"--config.data.cache_dir={os.path.join(root, 'cache')}",
         "--config.data.verify_images=False",
         "--config.data.max_caption_length=8",
         "--config.train.batch_size=8", "--config.eval.batch_size=8"],
        seed=2)


if __name__ == "__main__":
  tf.test.main()
