"""Translated, scaled MNIST as tf.data pipelines (paper §5.1, docs/design.md §4).

Each 28x28 digit is resized to a random side in [min_digit_size,
max_digit_size] and pasted at a random position wholly inside a black
canvas_size x canvas_size canvas. Placements are drawn for many digits at once
(`sample_placements`: entry i of three stateless random vectors) and a whole
batch is pasted with two batched matmuls (`place_digits`, resize matrices
looked up in `resize_table`). There is no per-example tf.data map: drawing
each placement in its own map call cost ~90% of the pipeline's CPU.

  train:       epoch e splits fold_in([seed, 0], e) into a placement seed,
               from which it draws one placement per train digit, and an
               order seed. Digit i's placement in epoch e is thus a pure
               function of (config.seed, e, i), not of the batch size, the
               visiting order or where i lands in a batch: reproducible and
               new every epoch. Epochs are whole: each visits every train
               digit once, in a full stateless permutation from the order
               seed (data.shuffle; not a shuffle buffer: with it off the
               digits come in order). Batches run on across epoch ends.
  validation:  drawn once at build time from [test_seed, 1] over all train
               digits, indexed by train index;
  test:        drawn once from [test_seed, 2] over all test digits;
so validation and test canvases are the same in every run, for every eval
batch size and max_test_examples, and are pasted on the fly instead of being
stored (60k float canvases would take 2.4 GB; their placements are 3 ints).

The train stream is random access: batch k holds stream positions
[k * B, (k + 1) * B) and position p is slot p % n of epoch p // n (n train
digits), so `Datasets.train_from(k)` starts at batch k at no cost and yields
what `train.skip(k)` would, e.g. for a run resumed after k updates.
"""

from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import mnist_source

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
  # train_from(k): the train stream from its batch k on (train_from(0) is
  # train), equal to train.skip(k) without computing the k skipped batches.
  train_from: Callable[[int], tf.data.Dataset]
  # What the run was trained on (mnist_source.fingerprint).
  fingerprint: Optional[dict]


class Placements(NamedTuple):
  sides: tf.Tensor  # int32 [n], each in [min_size, max_size].
  tops: tf.Tensor  # int32 [n], each in [0, canvas_size - side].
  lefts: tf.Tensor  # int32 [n], each in [0, canvas_size - side].


def sample_placements(seed: tf.Tensor, num: int, canvas_size: int,
                      min_size: int, max_size: int) -> Placements:
  """Placements of `num` digits from the stateless `seed` [2].

  Side uniform in [min_size, max_size], top-left corner uniform over the
  places where the whole digit fits. Each value is a full-range int64 draw
  modulo its range: the bias (~range / 2^64) is negligible and every range,
  even one that depends on the side, is one vectorised op.
  """
  bits = tf.random.stateless_uniform([3, num], seed, minval=None, maxval=None,
                                     dtype=tf.int64)
  sides = min_size + tf.math.floormod(bits[0], max_size - min_size + 1)
  room = canvas_size - sides + 1
  return Placements(*[tf.cast(v, tf.int32) for v in (
      sides, tf.math.floormod(bits[1], room), tf.math.floormod(bits[2], room))])


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


def resize_table(canvas_size: int, max_size: int) -> tf.Tensor:
  """float32 [(max_size + 1) * 2S, 28]: the resize_matrix of every side.

  Block k (2S rows) is S zero rows, then resize_matrix(side k, offset 0)
  (block 0, side 0, is all zero). A resize matrix depends on its offset only
  through (canvas row - offset), so the matrix of (side, offset) is S
  consecutive rows of block `side`, and a batch of them is one gather instead
  of ~15 ops over [B, S, 28] (the larger half of the pasting cost).
  """
  sides = tf.range(1, max_size + 1)
  blocks = resize_matrix(sides, tf.zeros_like(sides), canvas_size)
  blocks = tf.concat([tf.zeros_like(blocks), blocks], axis=1)
  blocks = tf.concat([tf.zeros_like(blocks[:1]), blocks], axis=0)
  return tf.reshape(blocks, [-1, DIGIT_SIZE])


def lookup_resize_matrix(table: tf.Tensor, sides: tf.Tensor,
                         offsets: tf.Tensor, canvas_size: int) -> tf.Tensor:
  """resize_matrix(sides, offsets, canvas_size), read from resize_table."""
  first = (tf.cast(sides, tf.int32) * 2 * canvas_size + canvas_size
           - tf.cast(offsets, tf.int32))
  return tf.gather(table, first[:, tf.newaxis] + tf.range(canvas_size))


def place_digits(digits: tf.Tensor, sides: tf.Tensor, tops: tf.Tensor,
                 lefts: tf.Tensor, canvas_size: int,
                 table: tf.Tensor | None = None) -> tf.Tensor:
  """Pastes uint8 [B, 28, 28] digits into black float32 [B, S, S, 1] canvases.

  Digit b is resized to sides[b] x sides[b] (bilinear, antialiased: values
  stay in [0, 1] and the pixel mass ~ original * (side / 28)^2) with its
  top-left corner at (tops[b], lefts[b]). With `table` (resize_table of this
  canvas and a max side >= every side) the same matrices are looked up.
  """
  if table is None:
    rows = resize_matrix(sides, tops, canvas_size)
    cols = resize_matrix(sides, lefts, canvas_size)
  else:
    rows = lookup_resize_matrix(table, sides, tops, canvas_size)
    cols = lookup_resize_matrix(table, sides, lefts, canvas_size)
  pixels = tf.cast(digits, tf.float32)
  canvases = tf.matmul(tf.matmul(rows, pixels), cols, transpose_b=True)
  # Divide last: an identity placement (side 28) then gives digit / 255 exactly.
  canvases = tf.clip_by_value(canvases / 255.0, 0.0, 1.0)
  return tf.ensure_shape(canvases[..., tf.newaxis],
                         [None, canvas_size, canvas_size, 1])


def check_config(config: Any, arrays: mnist_source.MnistArrays) -> None:
  """Raises ValueError naming a config.data field or digits that misfit."""
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


def _fixed_canvases(config: Any, table: tf.Tensor, images: np.ndarray,
                    labels: np.ndarray, indices: np.ndarray,
                    stream: int) -> tf.data.Dataset:
  """Eval batches of digits `indices`, placed once from (test_seed, stream).

  Drawn over all of `images` and then indexed, so a digit keeps its canvas
  whatever the subset (max_test_examples, validation_size) or batch size.
  """
  data = config.data
  seed = tf.constant([data.test_seed, stream], tf.int64)
  placements = sample_placements(seed, len(images), data.canvas_size,
                                 data.min_digit_size, data.max_digit_size)

  def paste(digits, digit_labels, *placement):
    return (place_digits(digits, *placement, data.canvas_size, table),
            digit_labels)

  return (tf.data.Dataset.from_tensor_slices(
      (images[indices], labels[indices].astype(np.int32),
       *[v.numpy()[indices] for v in placements]))
          .batch(config.eval.batch_size)
          .map(paste, num_parallel_calls=_AUTO).prefetch(_AUTO))


def _train_stream(config: Any, table: tf.Tensor, images: np.ndarray,
                  labels: np.ndarray) -> Callable[[int], tf.data.Dataset]:
  """train_from(k): the infinite train batches from batch k on."""
  data, batch_size, num = config.data, config.train.batch_size, len(labels)
  digits = tf.constant(images)
  labels = tf.constant(labels.astype(np.int32))
  base_seed = tf.constant([config.seed, _TRAIN_STREAM], tf.int64)

  def train_from(start_batch: int) -> tf.data.Dataset:
    if not isinstance(start_batch, (int, np.integer)) or start_batch < 0:
      raise ValueError(f"train_from: start batch must be an int >= 0, got "
                       f"{start_batch!r}")
    first_epoch, skip = divmod(int(start_batch) * batch_size, num)

    def epoch_plan(epoch):
      """Visiting order of one epoch and the placements in that order."""
      order_seed, placement_seed = tf.unstack(
          tf.random.experimental.stateless_split(
              tf.random.experimental.stateless_fold_in(base_seed, epoch), 2))
      order = tf.range(num)
      if data.shuffle:
        order = tf.random.experimental.stateless_shuffle(order, order_seed)
      order = order[tf.where(epoch == first_epoch, skip, 0):]
      placements = sample_placements(placement_seed, num, data.canvas_size,
                                     data.min_digit_size, data.max_digit_size)
      return (order, *[tf.gather(v, order) for v in placements])

    def paste(order, *placement):
      return (place_digits(tf.gather(digits, order), *placement,
                           data.canvas_size, table), tf.gather(labels, order))

    # One element per epoch (n slots), cut into fixed batches that run on
    # into the next epoch: stream positions do not depend on epoch ends.
    return (tf.data.Dataset.counter(first_epoch).map(epoch_plan).prefetch(1)
            .rebatch(batch_size, drop_remainder=True)
            .map(paste, num_parallel_calls=_AUTO).prefetch(_AUTO))

  return train_from


def split_indices(config: Any, arrays: mnist_source.MnistArrays
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(train, validation, test) digit indices; `config` passed check_config.

  Validation is the last config.data.validation_size train digits; train is
  the rest and test all test digits, each cut to config.data.max_*_examples
  when that is > 0.
  """
  data = config.data
  num_all = len(arrays.train_labels)
  train_idx = np.arange(num_all - data.validation_size)
  validation_idx = np.arange(num_all - data.validation_size, num_all)
  test_idx = np.arange(len(arrays.test_labels))
  if data.max_train_examples > 0:
    train_idx = train_idx[:data.max_train_examples]
  if data.max_test_examples > 0:
    test_idx = test_idx[:data.max_test_examples]
  return train_idx, validation_idx, test_idx


def make_datasets_from_arrays(config: Any,
                              arrays: mnist_source.MnistArrays) -> Datasets:
  """The three pipelines over given digits (validation: last train digits)."""
  check_config(config, arrays)
  data = config.data
  train_idx, validation_idx, test_idx = split_indices(config, arrays)
  if not len(train_idx):
    raise ValueError(f"{arrays.source}: no train digits left after holding "
                     f"out config.data.validation_size={data.validation_size}")
  table = resize_table(data.canvas_size, data.max_digit_size)
  train_from = _train_stream(config, table, arrays.train_images[train_idx],
                             arrays.train_labels[train_idx])
  return Datasets(
      train=train_from(0),
      validation=_fixed_canvases(config, table, arrays.train_images,
                                 arrays.train_labels, validation_idx,
                                 _VALIDATION_STREAM),
      test=_fixed_canvases(config, table, arrays.test_images,
                           arrays.test_labels, test_idx, _TEST_STREAM),
      num_train=len(train_idx),
      num_validation=len(validation_idx),
      num_test=len(test_idx),
      image_shape=(data.canvas_size, data.canvas_size, 1),
      num_classes=NUM_CLASSES,
      source=arrays.source,
      train_from=train_from,
      fingerprint=mnist_source.fingerprint(
          arrays, [str(d) for d in range(NUM_CLASSES)]))


def make_datasets(config: Any) -> Datasets:
  """Loads MNIST (mnist_source.load_mnist) and builds the three pipelines."""
  return make_datasets_from_arrays(config, mnist_source.load_mnist(config.data))
