"""Tests of pipelines/epoch_stream.py: whole epochs, random access, purity."""

import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_config
from wsram_tf.pipelines import epoch_stream
from wsram_tf.pipelines import mnist
from tests import toy_data


def _labels_stream(num, batch_size, seed=(3, 0), shuffle=True):
  """train_from of a stream whose batches are (order, draw)."""
  return epoch_stream.train_stream(
      num, batch_size, list(seed), shuffle, lambda order, u: (order, u),
      lambda s: [tf.random.stateless_uniform([num], s)])


def _take(dataset, num_batches):
  batches = dataset.take(num_batches)
  parts = list(zip(*[[t.numpy() for t in b] for b in batches]))
  return [np.concatenate(p) for p in parts]


class EpochStreamTest(tf.test.TestCase):

  def test_is_the_stream_of_pipelines_mnist(self):
    # The same seeds and draw give mnist.py's train batches bit for bit.
    config = mnist_config.get_config("wsram_qc,tiny")
    config.data.update(dict(canvas_size=40, min_digit_size=14,
                            max_digit_size=30, validation_size=0,
                            max_train_examples=0))
    config.train.batch_size = 4
    arrays = toy_data.random_mnist_arrays(num_train=10)
    expected = mnist.make_datasets_from_arrays(config, arrays).train
    data = config.data
    digits = tf.constant(arrays.train_images)

    def make_batch(order, *placements):
      return (mnist.place_digits(tf.gather(digits, order), *placements,
                                 data.canvas_size),
              tf.gather(arrays.train_labels, order))

    train_from = epoch_stream.train_stream(
        10, 4, [config.seed, 0], True, make_batch,
        lambda seed: mnist.sample_placements(
            seed, 10, data.canvas_size, data.min_digit_size,
            data.max_digit_size))
    for got, want in zip(_take(train_from(0), 6), _take(expected, 6)):
      self.assertAllEqual(got, want)

  def test_epochs_are_whole_permutations_new_every_epoch(self):
    order = _take(_labels_stream(10, 3)(0), 10)[0].reshape(3, 10)
    for epoch in order:
      self.assertAllEqual(np.sort(epoch), np.arange(10))
    self.assertNotAllEqual(order[0], order[1])
    unshuffled = epoch_stream.train_stream(
        10, 3, [3, 0], False, lambda order: (order,))
    self.assertAllEqual(_take(unshuffled(0), 10)[0], np.arange(30) % 10)

  def test_draw_is_a_function_of_seed_epoch_and_index_only(self):
    by_four = _take(_labels_stream(10, 4)(0), 10)  # 40 positions.
    by_five = _take(_labels_stream(10, 5)(0), 8)
    self.assertAllEqual(by_four[0], by_five[0])
    self.assertAllEqual(by_four[1], by_five[1])
    # Digit i's draw differs across epochs and across seeds.
    order, draws = by_four
    first = draws[:10][np.argsort(order[:10])]
    second = draws[10:20][np.argsort(order[10:20])]
    self.assertTrue(np.all(first != second))
    other_seed = _take(_labels_stream(10, 4, seed=(4, 0))(0), 3)[1]
    self.assertNotAllEqual(other_seed, draws[:12])

  def test_train_from_equals_skip(self):
    train_from = _labels_stream(10, 3)
    for start in (0, 1, 3, 7, 10):  # Mid-epoch and on epoch ends.
      expected = _take(train_from(0).skip(start), 4)
      got = _take(train_from(start), 4)
      for a, b in zip(got, expected):
        self.assertAllEqual(a, b, msg=f"start {start}")

  def test_batches_have_a_static_size(self):
    train = _labels_stream(10, 4)(0)
    self.assertEqual(train.element_spec[0].shape, (4,))

  def test_bad_arguments_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "train_from.*-1"):
      _labels_stream(10, 3)(-1)
    with self.assertRaisesRegex(ValueError, "train_from.*1.5"):
      _labels_stream(10, 3)(1.5)
    with self.assertRaisesRegex(ValueError, "0 examples"):
      _labels_stream(0, 3)


if __name__ == "__main__":
  tf.test.main()
