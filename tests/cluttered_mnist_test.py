"""Tests of pipelines/cluttered_mnist.py on tiny random digits (no download)."""

import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_config
from wsram_tf.pipelines import cluttered_mnist
from wsram_tf.pipelines import mnist
from tests import toy_data


def _config(pieces: int = 4, **data):
  config = mnist_config.get_config("wsram_qc,tiny")
  config.unlock()
  config.data.clutter_pieces = pieces
  config.data.clutter_size = 8
  config.data.update(dict(dict(canvas_size=60, min_digit_size=28,
                               max_digit_size=28, validation_size=4,
                               max_train_examples=0, max_test_examples=0,
                               shuffle=True), **data))
  config.train.batch_size = 4
  config.eval.batch_size = 3
  return config


def _arrays():
  return toy_data.random_mnist_arrays(num_train=14, num_test=7)


def _all(dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
  return np.concatenate(images), np.concatenate(labels)


def _reference(digits, drawn, index, canvas_size, piece):
  """Canvas of digit `index` from its draws, pasted pixel by pixel (side 28)."""
  side, top, left, sources, crop_tops, crop_lefts, tops, lefts = [
      np.asarray(v)[index] for v in drawn]
  assert side == 28 and top + 28 <= canvas_size and left + 28 <= canvas_size
  canvas = np.zeros([canvas_size, canvas_size])
  canvas[top:top + 28, left:left + 28] = digits[index] / 255.0
  for k in range(len(sources)):
    assert sources[k] != index  # Pieces of other digits only.
    canvas[tops[k]:tops[k] + piece, lefts[k]:lefts[k] + piece] += (
        digits[sources[k], crop_tops[k]:crop_tops[k] + piece,
               crop_lefts[k]:crop_lefts[k] + piece] / 255.0)
  return np.clip(canvas, 0.0, 1.0)[..., None]


class ClutterTest(tf.test.TestCase):

  def test_sampled_pieces_come_from_other_digits_and_fit(self):
    clutter = [v.numpy() for v in cluttered_mnist.sample_clutter(
        tf.constant([1, 2]), num=7, num_pieces=60, canvas_size=40,
        piece_size=8)]
    sources, crop_tops, crop_lefts, tops, lefts = clutter
    self.assertEqual(sources.shape, (7, 60))
    for i in range(7):
      self.assertEqual(set(sources[i]), set(range(7)) - {i})
    for crop in (crop_tops, crop_lefts):
      self.assertEqual((crop.min(), crop.max()), (0, 20))
    for place in (tops, lefts):
      self.assertEqual((place.min(), place.max()), (0, 32))

  def test_pieces_are_pasted_whole_at_their_place(self):
    digits = tf.fill([3, 28, 28], tf.constant(255, tf.uint8))
    as_tensors = lambda *v: cluttered_mnist.Clutter(
        *[tf.constant([x], tf.int32) for x in v])
    # Three 5x5 pieces for one canvas, two overlapping by a 2x3 corner.
    clutter = as_tensors([1, 2, 1], [0, 23, 4], [23, 0, 9], [0, 10, 13],
                         [0, 15, 13])
    layer = cluttered_mnist.clutter_layer(digits, clutter, 20, 5)[0].numpy()
    expected = np.zeros([20, 20])
    for top, left in ((0, 0), (10, 15), (13, 13)):
      expected[top:top + 5, left:left + 5] += 1.0
    self.assertAllClose(layer, expected)
    self.assertAllClose(layer.sum(), 3 * 25)

  def test_a_piece_is_the_drawn_crop_of_its_source(self):
    digits = _arrays().train_images
    clutter = cluttered_mnist.Clutter(*[tf.constant([[v]], tf.int32) for v in
                                        (5, 3, 17, 30, 2)])
    layer = cluttered_mnist.clutter_layer(digits, clutter, 40, 8)[0].numpy()
    expected = np.zeros([40, 40])
    expected[30:38, 2:10] = digits[5, 3:11, 17:25] / 255.0
    self.assertAllClose(layer, expected, atol=1e-6)


class ClutteredDatasetsTest(tf.test.TestCase):

  def test_eval_canvases_are_the_digit_inside_plus_clipped_pieces(self):
    arrays = _arrays()
    for pieces in (0, 4):
      config = _config(pieces)
      datasets = cluttered_mnist.make_datasets_from_arrays(config, arrays)
      self.assertEqual(datasets.image_shape, (60, 60, 1))
      self.assertEqual(datasets.class_names, tuple("0123456789"))
      for name, digits, labels, first, stream in (
          ("test", arrays.test_images, arrays.test_labels, 0, 2),
          ("validation", arrays.train_images, arrays.train_labels, 10, 1)):
        images, got_labels = _all(getattr(datasets, name))
        drawn = cluttered_mnist._draw(  # pylint: disable=protected-access
            tf.constant([config.data.test_seed, stream], tf.int64),
            len(digits), config.data)
        self.assertAllEqual(got_labels, labels[first:])
        for row, index in enumerate(range(first, len(digits))):
          self.assertAllClose(
              images[row], _reference(digits, drawn, index, 60, 8),
              atol=1e-5, msg=f"{name} {index}, {pieces} pieces")

  def test_pieces_add_mass(self):
    arrays = _arrays()
    plain = _all(cluttered_mnist.make_datasets_from_arrays(
        _config(0), arrays).test)[0]
    cluttered = _all(cluttered_mnist.make_datasets_from_arrays(
        _config(8), arrays).test)[0]
    self.assertTrue(np.all(cluttered.sum(axis=(1, 2, 3))
                           > plain.sum(axis=(1, 2, 3))))

  def test_test_canvases_are_fixed_across_seeds_batches_and_truncation(self):
    first = cluttered_mnist.make_datasets_from_arrays(_config(), _arrays())
    config = _config(max_test_examples=5)
    config.seed = 42
    config.eval.batch_size = 2
    second = cluttered_mnist.make_datasets_from_arrays(config, _arrays())
    self.assertAllEqual(_all(first.test)[0][:5], _all(second.test)[0])
    self.assertAllEqual(_all(first.validation)[0],
                        _all(second.validation)[0])

  def test_train_canvas_depends_on_seed_epoch_and_index_only(self):
    def stream(batch_size, num_batches, seed=0):
      config = _config()
      config.seed = seed
      config.train.batch_size = batch_size
      return _all(cluttered_mnist.make_datasets_from_arrays(
          config, _arrays()).train.take(num_batches))

    by_four, by_five = stream(4, 10), stream(5, 8)  # 40 positions, 4 epochs.
    self.assertAllEqual(by_four[0], by_five[0])
    self.assertAllEqual(by_four[1], by_five[1])
    self.assertNotAllEqual(stream(4, 2, seed=1)[0], by_four[0][:8])

  def test_train_canvases_are_new_every_epoch(self):
    config = _config(validation_size=4)
    config.train.batch_size = 10  # 10 train digits: batch k is epoch k.
    config.data.shuffle = False
    images, labels = _all(cluttered_mnist.make_datasets_from_arrays(
        config, _arrays()).train.take(3))
    self.assertAllEqual(labels[:10], labels[10:20])
    epochs = images.reshape(3, 10, -1)
    for a, b in ((0, 1), (1, 2)):
      self.assertTrue(np.all(np.any(epochs[a] != epochs[b], axis=-1)))

  def test_train_from_equals_skip(self):
    datasets = cluttered_mnist.make_datasets_from_arrays(_config(), _arrays())
    for start in (0, 2, 5):  # 10 digits, batches of 4.
      expected = _all(datasets.train.skip(start).take(3))
      got = _all(datasets.train_from(start).take(3))
      self.assertAllEqual(got[0], expected[0], msg=f"start {start}")
      self.assertAllEqual(got[1], expected[1], msg=f"start {start}")
    images, _ = next(iter(datasets.train))
    self.assertEqual(images.shape, (4, 60, 60, 1))
    self.assertAllInRange(images, 0.0, 1.0)

  def test_bad_clutter_settings_name_the_field(self):
    with self.assertRaisesRegex(ValueError, "clutter_size=29"):
      cluttered_mnist.make_datasets_from_arrays(
          _config(clutter_size=29), _arrays())
    with self.assertRaisesRegex(ValueError, "clutter_pieces=-1"):
      cluttered_mnist.make_datasets_from_arrays(_config(-1), _arrays())
    with self.assertRaisesRegex(ValueError, "need >= 2 train"):
      cluttered_mnist.make_datasets_from_arrays(
          _config(max_train_examples=1), _arrays())
    with self.assertRaisesRegex(ValueError, "min_digit_size"):  # mnist's.
      cluttered_mnist.make_datasets_from_arrays(
          _config(min_digit_size=70, max_digit_size=70), _arrays())


if __name__ == "__main__":
  tf.test.main()
