"""Tests of pipelines/image_resize.py against hand-computed canvases."""

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_resize


def _ramp(height: int, width: int, channels: int = 1) -> np.ndarray:
  """float32 [h, w, c], every value different and in (0, 1]."""
  size = height * width * channels
  return (np.arange(1, size + 1, dtype=np.float32) / size).reshape(
      height, width, channels)


class ResizeToCanvasTest(tf.test.TestCase):

  def test_pad_centres_a_small_image_unchanged(self):
    image = _ramp(4, 2)
    out = image_resize.resize_to_canvas(image, 6, "pad").numpy()
    expected = np.zeros([6, 6, 1], np.float32)
    expected[1:5, 2:4] = image  # top (6 - 4) // 2 = 1, left (6 - 2) // 2 = 2.
    self.assertAllEqual(out, expected)

  def test_odd_margin_puts_the_extra_pixel_bottom_right(self):
    out = image_resize.resize_to_canvas(np.ones([3, 2, 1]), 6, "pad").numpy()
    rows, cols = np.nonzero(out[..., 0])
    self.assertEqual((rows.min(), rows.max(), cols.min(), cols.max()),
                     (1, 3, 2, 3))

  def test_pad_shrinks_a_large_image_keeping_its_aspect(self):
    # 12 x 6 into 6: scale 1/2 -> 6 x 3, left (6 - 3) // 2 = 1.
    out = image_resize.resize_to_canvas(np.ones([12, 6, 1]), 6, "pad").numpy()
    expected = np.zeros([6, 6, 1], np.float32)
    expected[:, 1:4] = 1.0
    self.assertAllClose(out, expected, atol=1e-6)

  def test_fit_scales_up_until_the_longer_side_fills_the_canvas(self):
    # 4 x 2 into 6: scale 3/2 -> 6 x 3 at left 1; 3 x 9: scale 2/3 -> 2 x 6
    # at top 2.
    out = image_resize.resize_to_canvas(np.ones([4, 2, 1]), 6, "fit").numpy()
    expected = np.zeros([6, 6, 1], np.float32)
    expected[:, 1:4] = 1.0
    self.assertAllClose(out, expected, atol=1e-6)
    out = image_resize.resize_to_canvas(np.ones([3, 9, 2]), 6, "fit").numpy()
    expected = np.zeros([6, 6, 2], np.float32)
    expected[2:4, :] = 1.0
    self.assertAllClose(out, expected, atol=1e-6)

  def test_fit_resamples_like_tf_image_resize(self):
    image = _ramp(4, 2, 3)
    out = image_resize.resize_to_canvas(image, 6, "fit")
    resized = tf.image.resize(image, [6, 3], antialias=True)
    self.assertAllClose(out[:, 1:4], resized, atol=1e-6)
    self.assertAllEqual(out[:, 0], tf.zeros([6, 3]))
    self.assertAllEqual(out[:, 4:], tf.zeros([6, 2, 3]))

  def test_stretch_fills_the_canvas(self):
    image = _ramp(4, 2)
    out = image_resize.resize_to_canvas(image, 6, "stretch")
    self.assertAllClose(out, tf.image.resize(image, [6, 6], antialias=True))
    ones = image_resize.resize_to_canvas(np.ones([4, 2, 1]), 6, "stretch")
    self.assertAllClose(ones, np.ones([6, 6, 1]), atol=1e-6)

  def test_an_image_of_canvas_size_is_copied_in_every_mode(self):
    image = _ramp(6, 6, 3)
    for mode in image_resize.RESIZE_MODES:
      self.assertAllEqual(image_resize.resize_to_canvas(image, 6, mode), image)

  def test_scaled_sides_round_half_up_and_stay_at_least_one(self):
    cases = [((4, 2, "pad"), (4, 2)), ((12, 6, "pad"), (6, 3)),
             ((4, 2, "fit"), (6, 3)), ((100, 1, "fit"), (6, 1)),
             ((7, 3, "fit"), (6, 3)),  # 3 * 6/7 = 2.57 -> 3.
             ((8, 5, "fit"), (6, 4)),  # 5 * 6/8 = 3.75 -> 4.
             ((4, 1, "fit"), (6, 2)),  # 1 * 6/4 = 1.5 -> 2 (half up).
             ((4, 2, "stretch"), (6, 6))]
    for (height, width, mode), expected in cases:
      got = image_resize.scaled_size(height, width, 6, mode)
      self.assertEqual(tuple(int(v) for v in got), expected,
                       msg=f"{height}x{width} {mode}")

  def test_batches_and_unknown_shapes_inside_a_tf_function(self):
    preprocess = tf.function(
        lambda x: image_resize.preprocess(x, 3, 6, "fit"),
        input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    for shape in ([4, 2, 1], [3, 9, 3], [6, 6, 4], [12, 5, 2]):
      image = _ramp(*shape)
      self.assertAllClose(preprocess(image),
                          image_resize.preprocess(image, 3, 6, "fit"))
    batch = np.stack([_ramp(4, 2, 3), 1 - _ramp(4, 2, 3)])
    out = image_resize.resize_to_canvas(batch, 6, "pad")
    self.assertEqual(out.shape, (2, 6, 6, 3))
    self.assertAllEqual(out[1], image_resize.resize_to_canvas(batch[1], 6))

  def test_bad_arguments_name_the_setting(self):
    with self.assertRaisesRegex(ValueError, "resize='crop'"):
      image_resize.resize_to_canvas(np.ones([2, 2, 1]), 4, "crop")
    with self.assertRaisesRegex(ValueError, "canvas_size=0"):
      image_resize.resize_to_canvas(np.ones([2, 2, 1]), 0)
    with self.assertRaisesRegex(ValueError, "channels=2"):
      image_resize.to_channels(np.ones([2, 2, 1]), 2)


class ToChannelsTest(tf.test.TestCase):

  def test_grey_to_colour_repeats_and_colour_to_grey_is_luminance(self):
    grey = _ramp(2, 3)
    self.assertAllEqual(image_resize.to_channels(grey, 3),
                        np.repeat(grey, 3, -1))
    self.assertAllEqual(image_resize.to_channels(grey, 1), grey)
    colour = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]],
                      np.float32)
    self.assertAllClose(image_resize.to_channels(colour, 1)[0, :, 0],
                        [0.2989, 0.5870, 0.1140, 0.9999])
    self.assertAllEqual(image_resize.to_channels(colour, 3), colour)

  def test_alpha_is_composited_onto_black(self):
    rgba = np.array([[[1, 0.5, 0, 1], [1, 1, 1, 0], [0.8, 0.4, 0.2, 0.5]]],
                    np.float32)
    self.assertAllClose(image_resize.to_channels(rgba, 3),
                        [[[1, 0.5, 0], [0, 0, 0], [0.4, 0.2, 0.1]]])
    grey_alpha = np.array([[[0.6, 0.5], [1.0, 1.0]]], np.float32)
    self.assertAllClose(image_resize.to_channels(grey_alpha, 1),
                        [[[0.3], [1.0]]])
    self.assertAllClose(image_resize.to_channels(grey_alpha, 3),
                        [[[0.3] * 3, [1.0] * 3]])


if __name__ == "__main__":
  tf.test.main()
