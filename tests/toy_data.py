"""Tiny synthetic data for tests: idx MNIST files, and problems only a glimpse solves.

Each image is a black square canvas with one bright pattern at a random
corner. The four patterns (filled square, ring, cross, checkerboard) differ
in shape, and each is normalised to the same pixel mass, so the low-resolution
context shows where the pattern is but not which one: the class needs a
glimpse at full resolution.
"""

import gzip
import os

import numpy as np

from wsram_tf.pipelines import mnist_source

NUM_CLASSES = 4


def _patterns(side: int) -> np.ndarray:
  square = np.ones((side, side))
  ring = np.ones((side, side))
  ring[2:-2, 2:-2] = 0
  cross = np.zeros((side, side))
  cross[side // 2 - 1:side // 2 + 1, :] = 1
  cross[:, side // 2 - 1:side // 2 + 1] = 1
  checker = (np.indices((side, side)).sum(0) // 2 % 2).astype(float)
  patterns = np.stack([square, ring, cross, checker])
  mass = patterns.sum(axis=(1, 2), keepdims=True)
  return patterns * (mass.min() / mass)


def corner_patterns(num: int, canvas: int = 32, side: int = 8,
                    seed: int = 0):
  """Returns (images float32 [num, canvas, canvas, 1], labels int32 [num])."""
  rng = np.random.default_rng(seed)
  patterns = _patterns(side)
  labels = rng.integers(0, NUM_CLASSES, num).astype(np.int32)
  corners = rng.integers(0, 4, num)
  images = np.zeros((num, canvas, canvas, 1), np.float32)
  margin = 2
  far = canvas - side - margin
  for i, (label, corner) in enumerate(zip(labels, corners)):
    row = margin if corner < 2 else far
    col = margin if corner % 2 == 0 else far
    images[i, row:row + side, col:col + side, 0] = patterns[label]
  return images, labels


# -- MNIST-format files ------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
  header = magic.to_bytes(4, "big") + b"".join(
      d.to_bytes(4, "big") for d in array.shape)
  return header + array.astype(np.uint8).tobytes()


def write_file(path: str, data: bytes) -> str:
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if path.endswith(".gz") else data)
  return path


def random_mnist_arrays(num_train: int = 6, num_test: int = 4):
  rng = np.random.default_rng(0)
  return mnist_source.MnistArrays(
      rng.integers(0, 256, [num_train, 28, 28], dtype=np.uint8),
      rng.integers(0, 10, [num_train]).astype(np.int32),
      rng.integers(0, 256, [num_test, 28, 28], dtype=np.uint8),
      rng.integers(0, 10, [num_test]).astype(np.int32), source="tiny")


def write_idx_dir(directory: str, arrays, names=None) -> None:
  names = names or mnist_source.IDX_FILES
  for field, name in names.items():
    magic = (mnist_source.IMAGES_MAGIC if field.endswith("images")
             else mnist_source.LABELS_MAGIC)
    write_file(os.path.join(directory, name),
               idx_bytes(getattr(arrays, field), magic))
