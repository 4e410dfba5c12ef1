"""Data pipelines do not depend on Python's string hashing.

Set and dict-of-set iteration order follows `hash(str)`, which Python
randomises per process unless PYTHONHASHSEED is fixed. A pipeline that
iterates a set of words or file names (a vocabulary, a split list) would
give another vocabulary, other caption ids or another order in another
process, and a resumed or multi-worker run would silently see other data.
Two child processes with different PYTHONHASHSEED build the translated,
scaled MNIST pipeline (from fixed synthetic digits) and the Flickr8k
pipeline (from a tiny data set, each with its own feature cache, so
nothing is shared between them), and their first batches must be equal.
"""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import os
import sys

import numpy as np

from wsram_tf.configs import mnist as mnist_config
from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines import mnist
from wsram_tf.pipelines import mnist_source
from tests import flickr8k_data

out_path, root = sys.argv[1:]
out = {"hash": np.array([hash("wsram") % 1000003])}

rng = np.random.default_rng(0)
digits = lambda n: rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
arrays = mnist_source.MnistArrays(
    digits(24), np.arange(24, dtype=np.int32) % 10, digits(6),
    np.arange(6, dtype=np.int32) % 10, source="synthetic")
config = mnist_config.get_config("wsram_qc,tiny")
config.data.update(dict(canvas_size=40, min_digit_size=14, max_digit_size=30,
                        validation_size=4, max_train_examples=0,
                        max_test_examples=0, shuffle=True))
config.train.batch_size = 4
data = mnist.make_datasets_from_arrays(config, arrays)
for i, (images, labels) in enumerate(data.train.take(2)):
  out[f"mnist_train_images_{i}"] = images.numpy()
  out[f"mnist_train_labels_{i}"] = labels.numpy()
images, labels = next(iter(data.validation))
out["mnist_validation_images"] = images.numpy()

config = flickr8k_data.tiny_dataset_config(root)
data = flickr8k.make_datasets(config)
out["flickr8k_vocabulary"] = np.array(data.vocab.words)
for i, (features, ids) in enumerate(data.train.take(2)):
  out[f"flickr8k_train_ids_{i}"] = ids.numpy()
  for key, value in features.items():
    out[f"flickr8k_train_{key}_{i}"] = value.numpy()
features, ids = next(iter(data.validation))
out["flickr8k_validation_ids"] = ids.numpy()
out["flickr8k_validation_features_0"] = features["features_0"].numpy()
np.savez(out_path, **out)
"""


def first_batches(hash_seeds, work: str) -> list[dict]:
  """Runs one child per PYTHONHASHSEED value, side by side; their arrays."""
  children = []
  for hash_seed in hash_seeds:
    root = os.path.join(work, f"hash_{hash_seed}")
    os.makedirs(root)
    env = dict(os.environ, PYTHONHASHSEED=hash_seed,
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    out_path = os.path.join(root, "batches.npz")
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, out_path, root], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    children.append((hash_seed, out_path, process))
  results = []
  for hash_seed, out_path, process in children:
    _, stderr = process.communicate(timeout=600)
    if process.returncode:
      raise AssertionError(f"child with PYTHONHASHSEED={hash_seed} failed:\n"
                           f"{stderr[-3000:]}")
    with np.load(out_path) as arrays:
      results.append(dict(arrays))
  return results


class HashSeedTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    work = tf.compat.v1.test.get_temp_dir()
    cls.a, cls.b = first_batches(("1", "2"), work)

  def test_children_hash_strings_differently(self):
    # Otherwise the comparisons below would prove nothing.
    self.assertNotEqual(int(self.a["hash"][0]), int(self.b["hash"][0]))

  def test_mnist_first_batches_are_equal(self):
    keys = sorted(k for k in self.a if k.startswith("mnist_"))
    self.assertLen(keys, 5)
    for key in keys:
      self.assertAllEqual(self.a[key], self.b[key], msg=key)

  def test_flickr8k_vocabulary_ids_and_features_are_equal(self):
    keys = sorted(k for k in self.a if k.startswith("flickr8k_"))
    self.assertLen(keys, 9)
    for key in keys:
      self.assertAllEqual(self.a[key], self.b[key], msg=key)

  def test_flickr8k_batches_are_not_all_alike(self):
    # Two different batches: the shuffle and the captions really vary.
    self.assertNotAllEqual(self.a["flickr8k_train_ids_0"],
                           self.a["flickr8k_train_ids_1"])


if __name__ == "__main__":
  tf.test.main()
