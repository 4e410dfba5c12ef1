"""examples/ and the README's Python block run as a user would run them."""

import json
import os
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ExamplesTest(tf.test.TestCase):

  def test_train_on_arrays_trains_saves_loads_and_serves(self):
    out = self.get_temp_dir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable,
                    os.path.join(ROOT, "examples", "train_on_arrays.py"),
                    f"--out={out}", "--tiny"], check=True, env=env,
                   capture_output=True, cwd=out)
    with open(os.path.join(out, "summary.json")) as f:
      summary = json.load(f)
    self.assertTrue(summary["loaded_predicts_the_same"])
    self.assertEqual(set(summary["test"]),
                     {"loss", "accuracy", "error", "log_likelihood"})
    self.assertLen(summary["served_classes"], 4)
    for name in ("model.keras", "best.keras", "serving/saved_model.pb"):
      self.assertTrue(os.path.exists(os.path.join(out, name)), name)

  def test_the_readmes_python_block_runs(self):
    with open(os.path.join(ROOT, "README.md")) as f:
      block = f.read().split("```python\n")[1].split("```")[0]
    folder = self.get_temp_dir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", block], env=env, cwd=folder,
                          capture_output=True, text=True)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertIn("'accuracy'", done.stdout)
    for name in ("m.keras", "serving/saved_model.pb"):
      self.assertTrue(os.path.exists(os.path.join(folder, name)), name)


if __name__ == "__main__":
  tf.test.main()
