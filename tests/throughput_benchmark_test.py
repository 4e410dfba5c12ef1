"""Smoke test of benchmarks/throughput.py: every measure yields a sane JSON line.

No timing assertions: only that the records carry the required keys and
positive, finite numbers. The input pipeline runs on tiny random digits.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from benchmarks import throughput
from wsram_tf.configs import mnist as mnist_config
from wsram_tf.pipelines import mnist
from wsram_tf.pipelines import mnist_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON_KEYS = ("measure", "xla", "config", "batch", "M", "glimpses",
               "tf_version", "cpu_count")


def _tiny_digits(config):
  rng = np.random.default_rng(0)
  arrays = mnist_source.MnistArrays(
      train_images=rng.integers(0, 256, (600, 28, 28), np.uint8),
      train_labels=rng.integers(0, 10, 600).astype(np.int32),
      test_images=rng.integers(0, 256, (64, 28, 28), np.uint8),
      test_labels=rng.integers(0, 10, 64).astype(np.int32),
      source="test:random")
  data = mnist.make_datasets_from_arrays(config, arrays)
  return data.train, data.image_shape


def _positive_finite(value):
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


class ThroughputBenchmarkTest(tf.test.TestCase):

  def test_every_measure_yields_a_complete_json_record(self):
    config = mnist_config.get_config("ram28,tiny")
    records = [json.loads(json.dumps(r)) for r in throughput.run(
        config, xla_modes=(True,), steps_per_execution=(2,),
        glimpse_sides=(30, 60), repeats=2, warmup=2, min_time=0.01,
        train_data=_tiny_digits)]

    measures = [r["measure"] for r in records]
    self.assertEqual(measures, ["train_step"] + ["glimpse"] * 2 +
                     ["input_pipeline"])
    for record in records:
      for key in COMMON_KEYS:
        self.assertIn(key, record)
      self.assertEqual(record["config"], "ram28,tiny")
      self.assertEqual(record["batch"], config.train.batch_size)
      self.assertTrue(_positive_finite(record["cpu_count"]))
    for record in records:
      if record["measure"] == "glimpse":
        self.assertTrue(_positive_finite(record["ms_per_glimpse"]))
        self.assertIn(record["image_side"], (30, 60))
      else:
        self.assertTrue(_positive_finite(record["images_per_s"]))
    self.assertEqual(records[0]["steps_per_execution"], 2)
    self.assertTrue(_positive_finite(records[-1]["over_train_step"]))

  def test_the_command_line_records_its_config_overrides(self):
    output = os.path.join(self.get_temp_dir(), "lines.jsonl")
    subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput",
         "--config=configs/mnist.py:ram28,tiny", "--measures=glimpse",
         "--glimpse_sides=30", "--xla=off", "--repeats=1", "--warmup=1",
         "--min_time=0.01", "--config.model.hidden_size=8",
         f"--output={output}"],
        check=True, capture_output=True, cwd=ROOT)
    with open(output) as f:
      record = json.loads(f.readline())
    self.assertEqual(record["overrides"], ["model.hidden_size=8"])

  def test_unknown_measure_raises(self):
    config = mnist_config.get_config("ram28,tiny")
    with self.assertRaisesRegex(ValueError, "unknown"):
      list(throughput.run(config, measures=("train_step", "typo")))


if __name__ == "__main__":
  tf.test.main()
