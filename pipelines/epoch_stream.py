"""A random-access, stateless train stream of whole epochs over n examples.

The scheme of pipelines/mnist.py's train stream, for any per-example data:
epoch e splits fold_in(seed, e) into an order seed and a draw seed. The
order seed gives a full stateless permutation of the n examples (or the
identity without shuffle); `draw(draw_seed)` gives per-example random values
(tensors [n, ...], e.g. placements), which are gathered in visiting order. So
example i's draw in epoch e is a pure function of (seed, e, i), whatever the
batch size or the order. Epochs are cut into fixed batches that run on
across epoch ends: stream position p is slot p % n of epoch p // n, and
`train_from(k)` starts at batch k at no cost, yielding what skip(k) would.

With the same seed and draw, the stream is the one of pipelines/mnist.py
(tests/epoch_stream_test.py checks it), so mnist.py could use it too.
"""

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

_AUTO = tf.data.AUTOTUNE

# draw(seed [2]) -> per-example values, each [n, ...].
Draw = Callable[[tf.Tensor], Sequence[tf.Tensor]]
# make_batch(order [B], *values [B, ...]) -> one train batch.
MakeBatch = Callable[..., tuple[tf.Tensor, ...]]


def check_start_batch(start_batch: int) -> int:
  if (isinstance(start_batch, bool)
      or not isinstance(start_batch, (int, np.integer)) or start_batch < 0):
    raise ValueError(f"train_from: start batch must be an int >= 0, got "
                     f"{start_batch!r}")
  return int(start_batch)


def train_stream(num: int, batch_size: int, seed: tf.Tensor, shuffle: bool,
                 make_batch: MakeBatch,
                 draw: Draw | None = None) -> Callable[[int], tf.data.Dataset]:
  """train_from(k): the infinite batches make_batch(order, *draws), from k on.

  `num` examples, `seed` int64 [2] (e.g. [config.seed, stream id]); `order`
  holds example indices in [0, num). `draw` runs once per epoch.
  """
  if num < 1 or batch_size < 1:
    raise ValueError(f"train stream: need >= 1 example and batch size, got "
                     f"{num} examples, batch size {batch_size}")
  base_seed = tf.constant(seed, tf.int64)

  def train_from(start_batch: int) -> tf.data.Dataset:
    first_epoch, skip = divmod(check_start_batch(start_batch) * batch_size,
                               num)

    def epoch_plan(epoch):
      order_seed, draw_seed = tf.unstack(
          tf.random.experimental.stateless_split(
              tf.random.experimental.stateless_fold_in(base_seed, epoch), 2))
      order = tf.range(num)
      if shuffle:
        order = tf.random.experimental.stateless_shuffle(order, order_seed)
      order = order[tf.where(epoch == first_epoch, skip, 0):]
      values = draw(draw_seed) if draw is not None else ()
      return (order, *[tf.gather(v, order) for v in values])

    # One element per epoch, cut into fixed batches that run on into the
    # next epoch: stream positions do not depend on epoch ends.
    return (tf.data.Dataset.counter(first_epoch).map(epoch_plan).prefetch(1)
            .rebatch(batch_size, drop_remainder=True)
            .map(make_batch, num_parallel_calls=_AUTO).prefetch(_AUTO))

  return train_from
