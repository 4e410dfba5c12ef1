"""Tests of pipelines/mnist.py on tiny synthetic digits (no download)."""

import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_config
from wsram_tf.pipelines import mnist
from wsram_tf.pipelines import mnist_source


def _blobs(num: int, seed: int = 0) -> np.ndarray:
  """uint8 [num, 28, 28] smooth blobs, each different, with a black border."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:28, 0:28]
  out = []
  for _ in range(num):
    cy, cx = rng.uniform(11, 17, 2)
    sigma = rng.uniform(2.5, 3.5)
    blob = np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * sigma**2))
    out.append(np.rint(255 * blob))
  return np.stack(out).astype(np.uint8)


def _arrays(num_train: int = 40,
            num_test: int = 12) -> mnist_source.MnistArrays:
  return mnist_source.MnistArrays(
      _blobs(num_train, 1), np.arange(num_train, dtype=np.int32) % 10,
      _blobs(num_test, 2), np.arange(num_test, dtype=np.int32) % 10,
      source="synthetic")


def _config(preset: str = "wsram_qc,tiny", **data):
  config = mnist_config.get_config(preset)
  config.data.update(dict(dict(canvas_size=40, min_digit_size=14,
                               max_digit_size=30, validation_size=8,
                               max_train_examples=0, max_test_examples=0,
                               shuffle=True), **data))
  config.train.batch_size = 8
  config.eval.batch_size = 5
  return config


def _all(dataset: tf.data.Dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
  return np.concatenate(images), np.concatenate(labels)


class MnistPipelineTest(tf.test.TestCase):

  def test_train_batches_have_shape_dtype_and_range(self):
    datasets = mnist.make_datasets_from_arrays(_config(), _arrays())
    images, labels = next(iter(datasets.train))
    self.assertEqual(images.shape, (8, 40, 40, 1))
    # Static batch size: tf.distribute splits the global batch by it.
    self.assertEqual(datasets.train.element_spec[0].shape, (8, 40, 40, 1))
    self.assertEqual(images.dtype, tf.float32)
    self.assertEqual(labels.shape, (8,))
    self.assertEqual(labels.dtype, tf.int32)
    self.assertAllInRange(images, 0.0, 1.0)
    self.assertEqual(datasets.image_shape, (40, 40, 1))
    self.assertEqual(datasets.num_classes, 10)

  def test_eval_sets_are_finite_in_order_and_validation_is_last_train(self):
    arrays = _arrays()
    datasets = mnist.make_datasets_from_arrays(_config(), arrays)
    test_images, test_labels = _all(datasets.test)
    _, validation_labels = _all(datasets.validation)
    self.assertEqual(test_images.shape, (12, 40, 40, 1))
    self.assertAllEqual(test_labels, arrays.test_labels)
    self.assertAllEqual(validation_labels, arrays.train_labels[-8:])
    self.assertEqual((datasets.num_train, datasets.num_validation,
                      datasets.num_test), (32, 8, 12))

  def test_max_examples_truncate_train_and_test(self):
    datasets = mnist.make_datasets_from_arrays(
        _config(max_train_examples=10, max_test_examples=7), _arrays())
    self.assertEqual((datasets.num_train, datasets.num_test), (10, 7))
    self.assertLen(_all(datasets.test)[1], 7)

  def test_digit_lies_wholly_inside_its_box_inside_the_canvas(self):
    squares = np.full([30, 28, 28], 255, np.uint8)  # Fill exactly their box.
    placements = mnist.sample_placements(tf.constant([7, 1]), 30, 40, 14, 30)
    canvases = mnist.place_digits(squares, *placements, 40).numpy()[..., 0]
    for canvas, side, top, left in zip(canvases, *[v.numpy() for v in
                                                   placements]):
      self.assertTrue(0 <= top and top + side <= 40)
      self.assertTrue(0 <= left and left + side <= 40)
      rows, cols = np.nonzero(canvas)
      self.assertEqual((rows.min(), rows.max() + 1), (top, top + side))
      self.assertEqual((cols.min(), cols.max() + 1), (left, left + side))

  def test_pixel_mass_scales_with_area(self):
    # A normalised triangle kernel moves mass only by interpolating at
    # sub-pixel phases: <= 1.1% measured on these smooth blobs for every side
    # 14..56 (3.1% on real MNIST strokes); a wrong area factor is >= 7%.
    digits = _blobs(16)
    mass = digits.sum(axis=(1, 2)) / 255.0
    for side in (14, 19, 27, 28, 33, 56):
      canvases = mnist.place_digits(digits, tf.fill([16], side),
                                    tf.zeros([16], tf.int32),
                                    tf.fill([16], 100 - side), 100)
      self.assertAllClose(tf.reduce_sum(canvases, [1, 2, 3]),
                          mass * (side / 28.0)**2, rtol=0.03)

  def test_place_digits_matches_tf_image_resize_and_pad(self):
    digits = _blobs(4)
    sides, tops, lefts = [30, 17, 36, 23], [0, 5, 2, 17], [10, 0, 4, 3]
    canvases = mnist.place_digits(digits, sides, tops, lefts, 40)
    for i in range(4):
      resized = tf.image.resize(digits[i, ..., None] / 255.0,
                                [sides[i], sides[i]], antialias=True)
      expected = tf.image.pad_to_bounding_box(resized, tops[i], lefts[i],
                                              40, 40)
      self.assertAllClose(canvases[i], expected, atol=1e-5)

  def test_looked_up_resize_matrices_equal_computed_ones(self):
    digits = _blobs(50)
    placements = mnist.sample_placements(tf.constant([4, 2]), 50, 40, 1, 40)
    table = mnist.resize_table(40, 40)
    self.assertAllEqual(mnist.place_digits(digits, *placements, 40, table),
                        mnist.place_digits(digits, *placements, 40))

  def test_placements_stay_within_bounds_and_reach_them(self):
    sides, tops, lefts = [v.numpy() for v in mnist.sample_placements(
        tf.constant([3, 0]), 300, 40, 14, 18)]
    self.assertEqual(set(sides), {14, 15, 16, 17, 18})
    for corner in (tops, lefts):
      self.assertEqual(corner.min(), 0)
      self.assertEqual((corner + sides).max(), 40)

  def test_digit_as_large_as_canvas_is_not_translated(self):
    digits = _blobs(3)
    config = _config(canvas_size=40, min_digit_size=40, max_digit_size=40)
    arrays = _arrays()._replace(test_images=digits,
                                test_labels=np.arange(3, dtype=np.int32))
    images, _ = _all(mnist.make_datasets_from_arrays(config, arrays).test)
    expected = tf.image.resize(digits[..., None] / 255.0, [40, 40],
                               antialias=True)
    self.assertAllClose(images, expected, atol=1e-5)

  def test_ram28_gives_the_plain_digits(self):
    arrays = _arrays()
    config = _config("ram28,tiny", canvas_size=28, min_digit_size=28,
                     max_digit_size=28)
    images, _ = _all(mnist.make_datasets_from_arrays(config, arrays).test)
    self.assertAllEqual(images[..., 0],
                        arrays.test_images.astype(np.float32) / 255.0)

  def test_test_and_validation_sets_are_identical_across_constructions(self):
    first = mnist.make_datasets_from_arrays(_config(), _arrays())
    other_config = _config()
    other_config.seed = 123  # Training seed must not move the test canvases.
    second = mnist.make_datasets_from_arrays(other_config, _arrays())
    self.assertAllEqual(_all(first.test)[0], _all(second.test)[0])
    self.assertAllEqual(_all(first.validation)[0], _all(second.validation)[0])

  def test_eval_canvases_do_not_depend_on_batch_size_or_truncation(self):
    first = mnist.make_datasets_from_arrays(_config(), _arrays())
    config = _config(max_test_examples=7, validation_size=8)
    config.eval.batch_size = 3
    second = mnist.make_datasets_from_arrays(config, _arrays())
    self.assertAllEqual(_all(first.test)[0][:7], _all(second.test)[0])
    self.assertAllEqual(_all(first.validation)[0],
                        _all(second.validation)[0])

  def test_training_placements_differ_across_epochs(self):
    # 10 train digits with labels 0..9 and batch 10: batch k is epoch k.
    config = _config(validation_size=0)
    config.train.batch_size = 10
    arrays = _arrays(num_train=10)
    train = mnist.make_datasets_from_arrays(config, arrays).train
    batches = list(train.take(3))
    epochs = []
    for images, labels in batches:
      self.assertAllEqual(np.sort(labels), np.arange(10))  # Whole epochs.
      epochs.append(images.numpy()[np.argsort(labels.numpy())])
    for a, b in ((0, 1), (1, 2)):
      differs = np.any(epochs[a] != epochs[b], axis=(1, 2, 3))
      self.assertTrue(np.all(differs), f"epochs {a}, {b}: {differs}")

  def test_training_stream_is_reproducible_for_the_same_seed(self):
    def first_batches(seed):
      config = _config()
      config.seed = seed
      train = mnist.make_datasets_from_arrays(config, _arrays()).train
      return np.concatenate([x.numpy() for x, _ in train.take(6)])

    self.assertAllEqual(first_batches(5), first_batches(5))
    self.assertNotAllEqual(first_batches(5), first_batches(6))

  def test_training_stream_does_not_depend_on_the_batch_size(self):
    def first_images(batch_size, num_batches):
      config = _config()
      config.train.batch_size = batch_size
      train = mnist.make_datasets_from_arrays(config, _arrays()).train
      return _all(train.take(num_batches))

    # 80 stream positions: 2.5 epochs of 32 digits, cut into different batches.
    by_eight, by_five = first_images(8, 10), first_images(5, 16)
    self.assertAllEqual(by_eight[0], by_five[0])
    self.assertAllEqual(by_eight[1], by_five[1])

  def test_training_placement_does_not_depend_on_the_visiting_order(self):
    def epochs(shuffle):
      config = _config(validation_size=0, shuffle=shuffle)
      config.train.batch_size = 10
      train = mnist.make_datasets_from_arrays(config, _arrays(10)).train
      return [x.numpy()[np.argsort(y.numpy())] for x, y in train.take(2)]

    self.assertAllEqual(epochs(True), epochs(False))

  def test_shuffle_off_keeps_the_digits_in_order(self):
    config = _config(validation_size=0, shuffle=False)
    config.train.batch_size = 4
    train = mnist.make_datasets_from_arrays(config, _arrays(10)).train
    self.assertAllEqual(_all(train.take(5))[1], np.arange(20) % 10)

  def _stream_labels(self, num_batches: int) -> np.ndarray:
    # 10 digits with labels 0..9, batches of 3: epochs end mid-batch.
    config = _config(validation_size=0)
    config.train.batch_size = 3
    train = mnist.make_datasets_from_arrays(config, _arrays(10)).train
    return _all(train.take(num_batches))[1]

  def test_epochs_are_whole_across_batch_boundaries(self):
    for epoch in self._stream_labels(10).reshape(3, 10):
      self.assertAllEqual(np.sort(epoch), np.arange(10))

  def test_visiting_order_is_new_every_epoch(self):
    orders = self._stream_labels(10).reshape(3, 10)
    self.assertNotAllEqual(orders[0], orders[1])
    self.assertNotAllEqual(orders[1], orders[2])

  def test_train_from_equals_skipping_batches(self):
    config = _config(validation_size=0)
    config.train.batch_size = 3
    datasets = mnist.make_datasets_from_arrays(config, _arrays(10))
    for start in (0, 1, 4, 7):  # Position 12 is mid-epoch 1, 21 mid-epoch 2.
      expected = _all(datasets.train.skip(start).take(4))
      got = _all(datasets.train_from(start).take(4))
      self.assertAllEqual(got[0], expected[0], msg=f"start {start}")
      self.assertAllEqual(got[1], expected[1], msg=f"start {start}")

  def test_bad_start_batch_is_rejected(self):
    datasets = mnist.make_datasets_from_arrays(_config(), _arrays())
    with self.assertRaisesRegex(ValueError, "train_from.*-1"):
      datasets.train_from(-1)

  def test_bad_digit_sizes_name_the_fields(self):
    with self.assertRaisesRegex(ValueError, "min_digit_size"):
      mnist.make_datasets_from_arrays(
          _config(min_digit_size=31, max_digit_size=30), _arrays())
    with self.assertRaisesRegex(ValueError, "validation_size"):
      mnist.make_datasets_from_arrays(_config(validation_size=40), _arrays())


if __name__ == "__main__":
  tf.test.main()
