"""Translated, scaled MNIST as tf.data pipelines (paper §5.1, DESIGN.md §4).

Each 28x28 digit is resized to a random side in [min_digit_size,
max_digit_size] and pasted at a random position wholly inside a black
canvas_size x canvas_size canvas. A placement is a pure function of a
stateless per-example seed:
  train:       fold_in(fold_in([seed, 0], epoch), index): new every epoch,
               reproducible from config.seed;
  validation:  fold_in([test_seed, 1], index), index into the train digits;
  test:        fold_in([test_seed, 2], index);
so validation and test canvases are the same in every run and are computed on
the fly instead of being stored (60k float canvases would take 2.4 GB).
"""

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from pipelines import mnist_source

NUM_CLASSES = 10
DIGIT_SIZE = 28
_TRAIN_STREAM, _VALIDATION_STREAM, _TEST_STREAM = 0, 1, 2
_AUTO = tf.data.AUTOTUNE


class Datasets(NamedTuple):
  train: tf.data.Dataset  # Infinite: (float32 [B, S, S, 1], int32 [B]).
  validation: tf.data.Dataset  # Finite, eval batches, same canvases every run.
  test: tf.data.Dataset  # Finite, eval batches, same canvases every run.
  num_train: int
  num_validation: int
  num_test: int
  image_shape: tuple[int, int, int]  # (S, S, 1).
  num_classes: int
  source: str  # Where the digits came from (MnistArrays.source).


def sample_placement(seed: tf.Tensor, canvas_size: int, min_size: int,
                     max_size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(side, top, left) int32: side uniform in [min_size, max_size], position
  uniform over the places where the whole digit fits."""
  size_seed, row_seed, col_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 3))
  side = tf.random.stateless_uniform(
      [], size_seed, min_size, max_size + 1, dtype=tf.int32)
  room = canvas_size - side + 1
  top = tf.random.stateless_uniform([], row_seed, 0, room, dtype=tf.int32)
  left = tf.random.stateless_uniform([], col_seed, 0, room, dtype=tf.int32)
  return side, top, left


def resize_matrix(sides: tf.Tensor, offsets: tf.Tensor,
                  canvas_size: int) -> tf.Tensor:
  """[B, S, 28] weights: canvas row s <- digit rows, resized and shifted.

  The weights of tf.image.resize(method="bilinear", antialias=True) (a
  triangle kernel widened by 28/side when shrinking, normalised per output
  pixel), zero outside [offset, offset + side). As a matrix, resizing and
  pasting a whole batch of differently placed digits is two batched matmuls.
  """
  sides = tf.cast(sides, tf.float32)[:, tf.newaxis, tf.newaxis]
  inverse_scale = DIGIT_SIZE / sides
  kernel_scale = tf.maximum(inverse_scale, 1.0)
  offsets = tf.cast(offsets, tf.int32)[:, tf.newaxis]
  out = tf.cast(tf.range(canvas_size)[tf.newaxis, :] - offsets, tf.float32)
  out = out[:, :, tf.newaxis]  # Canvas row relative to the digit's top.
  src = tf.range(DIGIT_SIZE, dtype=tf.float32)[tf.newaxis, tf.newaxis, :]
  weights = tf.nn.relu(
      1.0 - tf.abs(src + 0.5 - (out + 0.5) * inverse_scale) / kernel_scale)
  weights *= tf.cast((out >= 0.0) & (out < sides), tf.float32)
  return tf.math.divide_no_nan(
      weights, tf.reduce_sum(weights, axis=-1, keepdims=True))


def place_digits(digits: tf.Tensor, sides: tf.Tensor, tops: tf.Tensor,
                 lefts: tf.Tensor, canvas_size: int) -> tf.Tensor:
  """Pastes uint8 [B, 28, 28] digits into black float32 [B, S, S, 1] canvases.

  Digit b is resized to sides[b] x sides[b] (bilinear, antialiased: values
  stay in [0, 1] and the pixel mass ~ original * (side / 28)^2) with its
  top-left corner at (tops[b], lefts[b]).
  """
  rows = resize_matrix(sides, tops, canvas_size)
  cols = resize_matrix(sides, lefts, canvas_size)
  pixels = tf.cast(digits, tf.float32)
  canvases = tf.matmul(tf.matmul(rows, pixels), cols, transpose_b=True)
  # Divide last: an identity placement (side 28) then gives digit / 255 exactly.
  canvases = tf.clip_by_value(canvases / 255.0, 0.0, 1.0)
  return tf.ensure_shape(canvases[..., tf.newaxis],
                         [None, canvas_size, canvas_size, 1])


def place_digit(digit: tf.Tensor, seed: tf.Tensor, canvas_size: int,
                min_size: int, max_size: int) -> tf.Tensor:
  """One uint8 [28, 28] digit on a float32 [S, S, 1] canvas, placed by the
  stateless `seed` [2] (see sample_placement and place_digits)."""
  placement = sample_placement(seed, canvas_size, min_size, max_size)
  return place_digits(digit[tf.newaxis], *[v[tf.newaxis] for v in placement],
                      canvas_size)[0]


def example_seed(base: int, stream: int, *data: tf.Tensor) -> tf.Tensor:
  """Stateless seed [2] of one placement: `data` folded into (base, stream)."""
  seed = tf.constant([base, stream], tf.int64)
  for value in data:
    seed = tf.random.experimental.stateless_fold_in(
        seed, tf.cast(value, tf.int64))
  return seed


def _check_config(config: Any, arrays: mnist_source.MnistArrays) -> None:
  data = config.data
  if not 1 <= data.min_digit_size <= data.max_digit_size <= data.canvas_size:
    raise ValueError(
        "config.data: need 1 <= min_digit_size <= max_digit_size <= "
        f"canvas_size, got {data.min_digit_size}, {data.max_digit_size}, "
        f"{data.canvas_size}")
  if not 0 <= data.validation_size < len(arrays.train_labels):
    raise ValueError(
        f"config.data.validation_size={data.validation_size}: must be in "
        f"[0, {len(arrays.train_labels)}), the number of train digits")
  for name in ("train", "test"):
    images = getattr(arrays, f"{name}_images")
    labels = getattr(arrays, f"{name}_labels")
    if (images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE)
        or len(images) != len(labels)):
      raise ValueError(f"{arrays.source}: {name} images {images.shape} do not "
                       f"match {len(labels)} labels of 28x28 digits")
    if len(labels) and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
      raise ValueError(f"{arrays.source}: {name} labels outside [0, 10)")


def _slices(images: np.ndarray, labels: np.ndarray,
            indices: np.ndarray) -> tf.data.Dataset:
  return tf.data.Dataset.from_tensor_slices(
      (images[indices], labels[indices].astype(np.int32),
       indices.astype(np.int64)))


def _placed_batches(samples: tf.data.Dataset, batch_size: int,
                    drop_remainder: bool, canvas_size: int) -> tf.data.Dataset:
  """Batches (digit, label, placement) and pastes the batch in one go."""

  def place(digits, labels, placement):
    return place_digits(digits, *placement, canvas_size), labels

  return (samples.batch(batch_size, drop_remainder=drop_remainder)
          .map(place, num_parallel_calls=_AUTO).prefetch(_AUTO))


def _fixed_canvases(config: Any, examples: tf.data.Dataset,
                    stream: int) -> tf.data.Dataset:
  data = config.data

  def sample(digit, label, index):
    seed = example_seed(data.test_seed, stream, index)
    return digit, label, sample_placement(
        seed, data.canvas_size, data.min_digit_size, data.max_digit_size)

  return _placed_batches(examples.map(sample, num_parallel_calls=_AUTO),
                         config.eval.batch_size, False, data.canvas_size)


def _train_canvases(config: Any, examples: tf.data.Dataset,
                    num: int) -> tf.data.Dataset:
  data = config.data
  if data.shuffle_buffer > 1:
    # Shuffling before repeat keeps epochs whole, so position // num = epoch.
    examples = examples.shuffle(data.shuffle_buffer, seed=config.seed,
                                reshuffle_each_iteration=True)

  def sample(position, example):
    digit, label, index = example
    seed = example_seed(config.seed, _TRAIN_STREAM, position // num, index)
    return digit, label, sample_placement(
        seed, data.canvas_size, data.min_digit_size, data.max_digit_size)

  return _placed_batches(
      examples.repeat().enumerate().map(sample, num_parallel_calls=_AUTO),
      config.train.batch_size, True, data.canvas_size)


def make_datasets_from_arrays(config: Any,
                              arrays: mnist_source.MnistArrays) -> Datasets:
  """The three pipelines over given digits (validation: last train digits)."""
  _check_config(config, arrays)
  data = config.data
  num_all = len(arrays.train_labels)
  train_idx = np.arange(num_all - data.validation_size)
  validation_idx = np.arange(num_all - data.validation_size, num_all)
  test_idx = np.arange(len(arrays.test_labels))
  if data.max_train_examples > 0:
    train_idx = train_idx[:data.max_train_examples]
  if data.max_test_examples > 0:
    test_idx = test_idx[:data.max_test_examples]
  if not len(train_idx):
    raise ValueError(f"{arrays.source}: no train digits left after holding "
                     f"out config.data.validation_size={data.validation_size}")
  train_set = (arrays.train_images, arrays.train_labels)
  return Datasets(
      train=_train_canvases(config, _slices(*train_set, train_idx),
                            len(train_idx)),
      validation=_fixed_canvases(config, _slices(*train_set, validation_idx),
                                 _VALIDATION_STREAM),
      test=_fixed_canvases(
          config, _slices(arrays.test_images, arrays.test_labels, test_idx),
          _TEST_STREAM),
      num_train=len(train_idx),
      num_validation=len(validation_idx),
      num_test=len(test_idx),
      image_shape=(data.canvas_size, data.canvas_size, 1),
      num_classes=NUM_CLASSES,
      source=arrays.source)


def make_datasets(config: Any) -> Datasets:
  """Loads MNIST (mnist_source.load_mnist) and builds the three pipelines."""
  return make_datasets_from_arrays(config, mnist_source.load_mnist(config.data))
