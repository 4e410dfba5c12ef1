"""Cluttered translated MNIST, the RAM paper's benchmark (Mnih et al. 2014).

One 28x28 digit is placed wholly inside a black S x S canvas (S = 60 or 100
in the paper; data.min/max_digit_size = 28 keeps it unscaled, other sizes
scale it as in pipelines/mnist.py), plus data.clutter_pieces distractors:
data.clutter_size-square crops (8x8) of other digits of the same set, cut at
a random place inside the 28x28 and pasted at a random place of the canvas.
Pieces and digit are summed and clipped to [0, 1] ("added", Mnih et al.;
DeepMind's generator github.com/deepmind/mnist-cluttered, whose data the
published numbers come from, adds and clips too). It differs from a max only
where strokes overlap: faint edges add up and saturate sooner.

Generated like the translated-scaled set (same seeds and streams, the same
building blocks of pipelines/mnist.py): train draws are a pure function of
(config.seed, epoch, index) through pipelines/epoch_stream.py, with
`train_from(k)` equal to train.skip(k); validation ([test_seed, 1], over all
train digits) and test ([test_seed, 2], over all test digits) are drawn once
and are the same in every run. Test clutter comes from test digits only, so
no train pixel is ever in a test image. Canvases are pasted a batch at a
time with gathers and batched matmuls: no per-example Python or map.
"""

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import epoch_stream
from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import mnist
from wsram_tf.pipelines import mnist_source

_AUTO = tf.data.AUTOTUNE
# The stream ids of pipelines/mnist.py: seeds [config.seed, 0] for train,
# [test_seed, 1] for validation and [test_seed, 2] for test.
_TRAIN_STREAM, _VALIDATION_STREAM, _TEST_STREAM = 0, 1, 2
CLASS_NAMES = tuple(str(d) for d in range(mnist.NUM_CLASSES))


class Clutter(NamedTuple):
  sources: tf.Tensor  # int32 [n, K]: digit each piece is cut from (not i).
  crop_tops: tf.Tensor  # int32 [n, K], in [0, 28 - piece].
  crop_lefts: tf.Tensor  # int32 [n, K], in [0, 28 - piece].
  tops: tf.Tensor  # int32 [n, K], in [0, S - piece].
  lefts: tf.Tensor  # int32 [n, K], in [0, S - piece].


def sample_clutter(seed: tf.Tensor, num: int, num_pieces: int,
                   canvas_size: int, piece_size: int) -> Clutter:
  """`num_pieces` pieces for each of `num` digits from the stateless `seed`.

  Piece k of digit i comes from digit (i + 1 + u) mod num, u uniform in
  [0, num - 2]: any digit but i. Full-range int64 draws modulo each range, as
  in mnist.sample_placements.
  """
  bits = tf.random.stateless_uniform([5, num, num_pieces], seed, minval=None,
                                     maxval=None, dtype=tf.int64)
  index = tf.range(num, dtype=tf.int64)[:, tf.newaxis]
  sources = (index + 1 + tf.math.floormod(bits[0], max(num - 1, 1))) % num
  crop_room = mnist.DIGIT_SIZE - piece_size + 1
  room = canvas_size - piece_size + 1
  return Clutter(*[tf.cast(v, tf.int32) for v in (
      sources, tf.math.floormod(bits[1], crop_room),
      tf.math.floormod(bits[2], crop_room), tf.math.floormod(bits[3], room),
      tf.math.floormod(bits[4], room))])


def clutter_layer(digits: tf.Tensor, clutter: Clutter, canvas_size: int,
                  piece_size: int) -> tf.Tensor:
  """float32 [B, S, S]: the sum of the pieces of clutter [B, K] (/ 255).

  Crops are gathers; pasting is one matmul: with P_k [S, p] the one-hot
  rows of piece k, sum_k P_k X_k Q_k^T = [P_1 .. P_K] [X_1 Q_1^T; ..], so no
  [B, K, S, S] intermediate.
  """
  steps = tf.range(piece_size)
  pieces = tf.gather(tf.cast(digits, tf.float32), clutter.sources)  # B K 28 28
  pieces = tf.gather(pieces, clutter.crop_tops[..., None] + steps, axis=2,
                     batch_dims=2)
  pieces = tf.gather(pieces, clutter.crop_lefts[..., None] + steps, axis=3,
                     batch_dims=2)  # [B, K, p, p].
  rows = tf.one_hot(clutter.tops[..., None] + steps, canvas_size)  # B K p S
  cols = tf.one_hot(clutter.lefts[..., None] + steps, canvas_size)
  batch, num_pieces = tf.shape(pieces)[0], tf.shape(pieces)[1]
  rows = tf.reshape(rows, [batch, num_pieces * piece_size, canvas_size])
  placed_cols = tf.reshape(tf.matmul(pieces, cols),  # [B, K, p, S].
                           [batch, num_pieces * piece_size, canvas_size])
  return tf.matmul(rows, placed_cols, transpose_a=True) / 255.0


def cluttered_canvases(digits: tf.Tensor, indices: tf.Tensor,
                       placements: mnist.Placements, clutter: Clutter,
                       canvas_size: int, piece_size: int,
                       table: tf.Tensor | None = None) -> tf.Tensor:
  """float32 [B, S, S, 1]: digits[indices] placed, clutter added, clipped."""
  canvases = mnist.place_digits(tf.gather(digits, indices), *placements,
                                canvas_size, table)
  layer = clutter_layer(digits, clutter, canvas_size, piece_size)
  return tf.clip_by_value(canvases + layer[..., tf.newaxis], 0.0, 1.0)


def _draw(seed: tf.Tensor, num: int, data: Any) -> tuple[tf.Tensor, ...]:
  """Placements then clutter of `num` digits: entry i belongs to digit i."""
  digit_seed, clutter_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  return (*mnist.sample_placements(digit_seed, num, data.canvas_size,
                                   data.min_digit_size, data.max_digit_size),
          *sample_clutter(clutter_seed, num, data.clutter_pieces,
                          data.canvas_size, data.clutter_size))


def _batch_fn(data: Any, digits: np.ndarray, labels: np.ndarray):
  digits, labels = tf.constant(digits), tf.constant(labels.astype(np.int32))
  table = mnist.resize_table(data.canvas_size, data.max_digit_size)

  def make_batch(indices, *drawn):
    return (cluttered_canvases(digits, indices, mnist.Placements(*drawn[:3]),
                               Clutter(*drawn[3:]), data.canvas_size,
                               data.clutter_size, table),
            tf.gather(labels, indices))

  return make_batch


def _fixed_canvases(config: Any, images: np.ndarray, labels: np.ndarray,
                    indices: np.ndarray, stream: int) -> tf.data.Dataset:
  """Eval batches of digits `indices`, drawn once over all of `images`."""
  data = config.data
  drawn = _draw(tf.constant([data.test_seed, stream], tf.int64), len(images),
                data)
  return (tf.data.Dataset.from_tensor_slices(
      (indices.astype(np.int32), *[v.numpy()[indices] for v in drawn]))
          .batch(config.eval.batch_size)
          .map(_batch_fn(data, images, labels), num_parallel_calls=_AUTO)
          .prefetch(_AUTO))


def _check_clutter(data: Any, num_train: int, num_test: int) -> None:
  if not 1 <= data.clutter_size <= min(mnist.DIGIT_SIZE, data.canvas_size):
    raise ValueError(f"config.data.clutter_size={data.clutter_size}: must be "
                     f"in [1, min(28, canvas_size={data.canvas_size})]")
  if data.clutter_pieces < 0:
    raise ValueError(f"config.data.clutter_pieces={data.clutter_pieces}: "
                     "must be >= 0")
  if data.clutter_pieces and min(num_train, num_test) < 2:
    raise ValueError("config.data.clutter_pieces > 0 cuts pieces from other "
                     f"digits: need >= 2 train and test digits, got "
                     f"{num_train} and {num_test}")


def make_datasets_from_arrays(
    config: Any, arrays: mnist_source.MnistArrays
) -> image_datasets.ImageDatasets:
  """The three pipelines over given digits (validation: last train digits)."""
  mnist.check_config(config, arrays)
  data = config.data
  train_idx, validation_idx, test_idx = mnist.split_indices(config, arrays)
  _check_clutter(data, len(train_idx), len(arrays.test_labels))
  train_images = arrays.train_images[train_idx]
  train_from = epoch_stream.train_stream(
      len(train_idx), config.train.batch_size,
      [config.seed, _TRAIN_STREAM], data.shuffle,
      _batch_fn(data, train_images, arrays.train_labels[train_idx]),
      lambda seed: _draw(seed, len(train_idx), data))
  return image_datasets.ImageDatasets(
      train=train_from(0),
      validation=_fixed_canvases(config, arrays.train_images,
                                 arrays.train_labels, validation_idx,
                                 _VALIDATION_STREAM),
      test=_fixed_canvases(config, arrays.test_images, arrays.test_labels,
                           test_idx, _TEST_STREAM),
      num_train=len(train_idx),
      num_validation=len(validation_idx),
      num_test=len(test_idx),
      image_shape=(data.canvas_size, data.canvas_size, 1),
      num_classes=mnist.NUM_CLASSES,
      source=arrays.source,
      train_from=train_from,
      class_names=CLASS_NAMES,
      num_skipped=0,
      skipped=(),
      fingerprint=mnist_source.fingerprint(arrays, CLASS_NAMES))


def make_datasets(config: Any) -> image_datasets.ImageDatasets:
  """Loads MNIST (mnist_source.load_mnist) and builds the three pipelines."""
  return make_datasets_from_arrays(config, mnist_source.load_mnist(config.data))
