"""wsram_tf/captioner/pictures.py: cell boxes, drawing, the training callback."""

import glob
import os

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from tests import builders
from wsram_tf.captioner import pictures as caption_pictures
from wsram_tf.captioner import model as captioner

RED = caption_pictures.SCALE_COLOURS[0]
GREEN = caption_pictures.SCALE_COLOURS[1]
SHAPES = ((8, 8, 5), (4, 4, 7))
TITLE = caption_pictures._TITLE_PIXELS  # pylint: disable=protected-access


class CellBoxesTest(tf.test.TestCase):

  def test_box_is_the_read_cell_in_image_pixels(self):
    boxes = caption_pictures.cell_boxes(
        [[-1.0, -1.0], [1.0, 1.0], [0.1, -0.3]], [0, 1, 0], SHAPES, 64, 64)
    self.assertAllClose(boxes, [[0, 0, 8, 8], [48, 48, 16, 16],
                                [32, 16, 8, 8]])

  def test_box_origin_is_the_cell_the_captioner_reads(self):
    locations = np.random.default_rng(0).uniform(-1.2, 1.2, (20, 2))
    boxes = caption_pictures.cell_boxes(locations, np.zeros(20, np.int32),
                                        SHAPES, 64, 64)
    cells = captioner.cell_indices(tf.constant(locations, tf.float32), 8, 8)
    self.assertAllClose(boxes[:, :2], cells.numpy() * 8)

  def test_scale_out_of_range_is_named(self):
    with self.assertRaisesRegex(ValueError, "scales"):
      caption_pictures.cell_boxes([[0.0, 0.0]], [2], SHAPES, 64, 64)


class DrawTest(tf.test.TestCase):

  def test_panel_outlines_the_box_and_keeps_the_rest(self):
    black = np.zeros((32, 32, 3), np.uint8)
    panel = caption_pictures.draw_panel(black, (0, 8, 8, 8), RED)
    zoom = panel.shape[0] // 32
    self.assertEqual(panel.shape, (32 * zoom, 32 * zoom, 3))
    self.assertAllEqual(panel[0, 8 * zoom], RED)  # Top-left corner.
    self.assertAllEqual(panel[8 * zoom - 1, 8 * zoom], RED)  # Bottom edge.
    self.assertAllEqual(panel[4 * zoom, 12 * zoom], [0, 0, 0])  # Interior.
    self.assertAllEqual(panel[4 * zoom, 20 * zoom], [0, 0, 0])  # Outside.

  def test_grid_has_one_titled_panel_per_word_box_where_expected(self):
    black = np.zeros((32, 32, 3), np.uint8)
    words = ["a", "dog", "$x_1$ \\frac{", "<end>"]
    picture = caption_pictures.draw_caption_glimpses(
        black, words, [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
        [0, 1, 0, 0], [(8, 8), (4, 4)], title="a dog", columns=2)
    self.assertEqual(picture.dtype, np.uint8)
    panel = caption_pictures.draw_panel(black, (0, 0, 0, 0), RED).shape[0]
    gap = caption_pictures._GAP  # pylint: disable=protected-access
    # Title row, then 2 rows of (title strip + panel) separated by a gap.
    self.assertEqual(picture.shape,
                     (TITLE + 2 * (TITLE + panel) + gap,
                      2 * panel + gap, 3))
    zoom = panel // 32
    top = 2 * TITLE  # Word 1's panel body: cell (0, 0) of the 8x8 map.
    self.assertAllEqual(picture[top, 0], RED)
    self.assertAllEqual(picture[top + 4 * zoom - 1, 0], RED)
    self.assertAllEqual(picture[top + 2 * zoom, 2 * zoom], [0, 0, 0])
    # Word 2 (right panel): the bottom-right 8x8-pixel cell of the 4x4 map.
    left = panel + gap
    self.assertAllEqual(picture[top + panel - 1, left + panel - 1], GREEN)
    self.assertAllEqual(picture[top + 24 * zoom, left + 24 * zoom], GREEN)
    self.assertAllEqual(picture[top + 20 * zoom, left + 20 * zoom], [0, 0, 0])
    # Title strips hold dark text pixels.
    self.assertLess(picture[TITLE:2 * TITLE, :panel].min(), 128)

  def test_step_words_stop_after_end(self):
    vocab = flickr8k.Vocabulary(flickr8k.Vocabulary.SPECIALS + ("a", "dog"))
    self.assertEqual(caption_pictures.step_words([4, 5, 2, 0, 0], vocab),
                     ["a", "dog", "<end>"])


class LoadImagesTest(tf.test.TestCase):

  def test_jpeg_is_squashed_to_the_square_input(self):
    path = os.path.join(self.get_temp_dir(), "image.jpg")
    tf.io.write_file(path, tf.io.encode_jpeg(
        tf.fill([40, 30, 3], tf.constant(200, tf.uint8))))
    images = caption_pictures.load_images([path], 32)
    self.assertEqual(images.shape, (1, 32, 32, 3))
    self.assertEqual(images.dtype, np.uint8)
    self.assertAllClose(images.mean(), 200.0, atol=3.0)

  def test_missing_image_is_named(self):
    with self.assertRaisesRegex(FileNotFoundError, "nowhere.jpg"):
      caption_pictures.load_images(["/nonexistent/nowhere.jpg"], 32)


class FirstFeaturesTest(tf.test.TestCase):

  def test_takes_the_first_images_across_batches(self):
    features = builders.caption_features(batch=5)
    dataset = tf.data.Dataset.from_tensor_slices(features).batch(2)
    first = caption_pictures.first_features(dataset, 3)
    self.assertEqual(sorted(first), sorted(features))
    for name, value in features.items():
      self.assertAllEqual(first[name], value[:3])


class CallbackTest(tf.test.TestCase):

  def test_writes_pngs_and_a_tensorboard_image(self):
    model = builders.build_captioner()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 24, 24, 3), np.uint8)
    vocab = flickr8k.Vocabulary(flickr8k.Vocabulary.SPECIALS + tuple(
        f"w{i}" for i in range(builders.VOCAB - 4)))
    workdir = self.create_tempdir().full_path
    logdir = os.path.join(workdir, "tensorboard")
    callback = caption_pictures.CaptionGlimpsePictures(
        images, builders.caption_features(batch=2), logdir, 2, vocab,
        workdir=workdir, max_steps=4)
    callback.set_model(model)
    callback.on_epoch_end(0)  # Epoch 1: not a multiple of 2, nothing drawn.
    self.assertEmpty(glob.glob(os.path.join(workdir, "glimpses", "*.png")))
    callback.on_epoch_end(1)
    callback.on_train_end()  # Already drawn at epoch 2: no duplicate.
    pngs = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(workdir, "glimpses", "*.png")))
    self.assertEqual(pngs, ["epoch_0002_img_00.png", "epoch_0002_img_01.png"])
    decoded = tf.io.decode_png(tf.io.read_file(
        os.path.join(workdir, "glimpses", pngs[0])))
    self.assertEqual(decoded.shape[-1], 3)
    tags = []
    for event_file in glob.glob(os.path.join(logdir, "glimpses", "events.*")):
      for event in tf.compat.v1.train.summary_iterator(event_file):
        tags += [(v.tag, event.step) for v in event.summary.value]
    self.assertIn(("caption_glimpses", 2), tags)

  def test_bad_every_epochs_is_named(self):
    with self.assertRaisesRegex(ValueError, "every_epochs"):
      caption_pictures.CaptionGlimpsePictures(
          np.zeros((2, 8, 8, 3)), builders.caption_features(batch=2), "/tmp", 0,
          None)


if __name__ == "__main__":
  tf.test.main()
