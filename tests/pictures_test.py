"""classifier/pictures.py and picture_callback.py: boxes where the sensor reads; writing."""

import os
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from wsram_tf import atomic
from wsram_tf import picture_callback
from wsram_tf.classifier import glimpse
from wsram_tf.classifier import pictures

PATCH, FACTORS = 8, (1, 2)  # The toy model's sensor.


def bounding_box(mask: np.ndarray) -> np.ndarray:
  rows, cols = np.nonzero(mask)
  return np.array([rows.min(), cols.min(), rows.max(), cols.max()])


def image_summaries(logdir: str) -> list:
  """[(tag, step, plugin, [width, height, png, ..])] from logdir's events."""
  found = []
  for path in sorted(tf.io.gfile.glob(os.path.join(logdir, "events.out.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        found.append((value.tag, event.step,
                      value.metadata.plugin_data.plugin_name,
                      list(tf.make_ndarray(value.tensor))))
  return found


class DrawGlimpsesTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(((0.0, 0.0), 0), ((-0.3, 0.4), 1),
                            ((0.41, -0.17), 0))
  def test_box_outlines_the_pixels_the_sensor_reads(self, location, scale):
    # The pixels the sensor reads, found from the sensor itself: the ones the
    # glimpse has a gradient for.
    blank = tf.zeros([1, 32, 32, 1])
    with tf.GradientTape() as tape:
      tape.watch(blank)
      total = tf.reduce_sum(glimpse.extract_glimpses(
          blank + 0.0, [[location]], [[scale]], PATCH, FACTORS))
    read = (tape.gradient(total, blank)[0] != 0).numpy()
    no_glimpse = (np.zeros([0, 2]), np.zeros([0], int), PATCH, FACTORS)
    # Rendered without boxes, the read window is where the canvases differ.
    window = np.any(pictures.draw_glimpses(read.astype(np.float32),
                                           *no_glimpse) !=
                    pictures.draw_glimpses(np.zeros([32, 32]), *no_glimpse),
                    axis=-1)
    drawn = pictures.draw_glimpses(np.zeros([32, 32, 1]), [location],
                                   [scale], PATCH, FACTORS).astype(int)
    coloured = drawn.max(-1) - drawn.min(-1) > 40
    # The 2-pt line straddles the window edge: within 3 output pixels, while
    # one canvas pixel is 12 output pixels here.
    self.assertAllClose(bounding_box(coloured), bounding_box(window), atol=3)

  def test_picture_size_depends_only_on_the_canvas(self):
    a = pictures.draw_glimpses(np.zeros([32, 32]), [[0.0, 0.0]], [1], PATCH,
                               FACTORS, title="a")
    b = pictures.draw_glimpses(np.ones([32, 32, 1]), [[0.5, 0.5]] * 3,
                               [0, 1, 0], PATCH, FACTORS,
                               title="a much longer title than the other")
    self.assertEqual(a.shape, b.shape)
    self.assertEqual(a.dtype, np.uint8)
    self.assertEqual(a.shape[-1], 3)


class StackPicturesTest(tf.test.TestCase):

  def test_pads_smaller_pictures_with_white(self):
    stacked = picture_callback.stack_pictures([np.zeros((2, 3, 3), np.uint8),
                                       np.zeros((4, 2, 3), np.uint8)])
    self.assertEqual(stacked.shape, (2, 4, 3, 3))
    self.assertAllEqual(stacked[0, :2], np.zeros((2, 3, 3)))
    self.assertAllEqual(stacked[0, 2:], np.full((2, 3, 3), 255))
    self.assertAllEqual(stacked[1, :, :2], np.zeros((4, 2, 3)))
    self.assertAllEqual(stacked[1, :, 2:], np.full((4, 1, 3), 255))

  def test_no_pictures_is_named(self):
    with self.assertRaisesRegex(ValueError, "stack_pictures: no pictures"):
      picture_callback.stack_pictures([])


class WritePicturesTest(tf.test.TestCase):
  """One drawing of two pictures of different sizes, at epoch 7."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.drawn = [rng.integers(0, 256, (5, 4, 3), np.uint8),
                  rng.integers(0, 256, (3, 6, 3), np.uint8)]
    self.workdir = self.create_tempdir().full_path
    self.logdir = os.path.join(self.workdir, "tensorboard")

  def write(self, png_dir):
    writer = tf.summary.create_file_writer(self.logdir)
    picture_callback.write_pictures(writer, "some_tag", self.drawn, 7, png_dir)
    writer.close()

  def test_writes_one_lossless_png_per_picture_at_its_own_size(self):
    png_dir = os.path.join(self.workdir, "glimpses")
    self.write(png_dir)
    names = sorted(os.listdir(png_dir))
    self.assertEqual(names, ["epoch_0007_img_00.png", "epoch_0007_img_01.png"])
    for name, picture in zip(names, self.drawn):
      self.assertAllEqual(
          tf.io.decode_png(tf.io.read_file(os.path.join(png_dir, name))),
          picture)

  def test_a_write_killed_before_its_rename_leaves_the_old_png_whole(self):
    png_dir = os.path.join(self.workdir, "glimpses")
    self.write(png_dir)
    first = os.path.join(png_dir, "epoch_0007_img_00.png")
    before = open(first, "rb").read()
    self.drawn[0] = 255 - self.drawn[0]
    with mock.patch.object(atomic.os, "replace",
                           side_effect=KeyboardInterrupt("killed")), \
        self.assertRaises(KeyboardInterrupt):
      self.write(png_dir)
    self.assertEqual(open(first, "rb").read(), before)
    self.assertEqual(sorted(os.listdir(png_dir)),
                     ["epoch_0007_img_00.png", "epoch_0007_img_01.png"])

  def test_writes_one_image_summary_of_all_pictures_at_the_epoch(self):
    self.write(None)
    (tag, step, plugin, value), = image_summaries(self.logdir)
    self.assertEqual((tag, step, plugin), ("some_tag", 7, "images"))
    # Width, height (padded to the largest), then one PNG per picture.
    self.assertEqual(value[:2], [b"6", b"5"])
    self.assertLen(value, 2 + 2)
    self.assertAllEqual(tf.io.decode_png(value[3]),
                        picture_callback.stack_pictures(self.drawn)[1])

  def test_without_png_dir_writes_only_the_summary(self):
    self.write(None)
    self.assertEqual(os.listdir(self.workdir), ["tensorboard"])


if __name__ == "__main__":
  tf.test.main()
