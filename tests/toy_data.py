"""Tiny synthetic problems for model tests: the class is only visible in a glimpse.

Each image is a black square canvas with one bright pattern at a random
corner. The four patterns (filled square, ring, cross, checkerboard) differ
in shape, and each is normalised to the same pixel mass, so the low-resolution
context shows where the pattern is but not which one: the class needs a
glimpse at full resolution.
"""

import numpy as np

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
