"""Tests for wsram_tf/classifier/glimpse.py against a loop-by-loop NumPy reference.

The reference re-implements the pixel geometry of the module docstring on its
own (float32, same operation order), one pixel at a time.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from wsram_tf.classifier import glimpse

F32 = np.float32


def reference_glimpses(images, locations, scale_index, patch_size, factors):
  images = np.asarray(images, F32)
  locations = np.asarray(locations, F32)
  scale_index = np.asarray(scale_index)
  batch, height, width, channels = images.shape
  samples = locations.shape[1]
  sides = [patch_size * f for f in factors]
  wmax = max(sides)
  out = np.zeros([batch, samples, patch_size, patch_size, channels], F32)
  for b in range(batch):
    for s in range(samples):
      row_c = (locations[b, s, 0] + F32(1)) / F32(2) * F32(height)
      col_c = (locations[b, s, 1] + F32(1)) / F32(2) * F32(width)
      top = int(np.floor(row_c - F32(wmax / 2 - 0.5)))
      left = int(np.floor(col_c - F32(wmax / 2 - 0.5)))
      k = int(scale_index[b, s])
      side, f = sides[k], factors[k]
      top += (wmax - side) // 2
      left += (wmax - side) // 2
      window = np.zeros([side, side, channels], np.float64)
      for i in range(side):
        for j in range(side):
          r, c = top + i, left + j
          if 0 <= r < height and 0 <= c < width:
            window[i, j] = images[b, r, c]
      out[b, s] = window.reshape(patch_size, f, patch_size, f,
                                 channels).mean(axis=(1, 3))
  return out


def reference_context(images, size):
  images = np.asarray(images, np.float64)
  _, height, width, _ = images.shape
  fh, fw = height // size, width // size
  top, left = (height - fh * size) // 2, (width - fw * size) // 2
  out = np.zeros([images.shape[0], size, size, images.shape[-1]])
  for i in range(size):
    for j in range(size):
      block = images[:, top + i * fh:top + (i + 1) * fh,
                     left + j * fw:left + (j + 1) * fw]
      out[:, i, j] = block.mean(axis=(1, 2))
  return out


def _random(shape, seed=0):
  return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(F32)


class ExtractGlimpsesTest(tf.test.TestCase, parameterized.TestCase):

  def _check(self, images, locations, scale_index, patch_size, factors,
             fn=glimpse.extract_glimpses):
    got = fn(tf.constant(images), tf.constant(locations, tf.float32),
             tf.constant(scale_index, tf.int32), patch_size, factors)
    want = reference_glimpses(images, locations, scale_index, patch_size,
                              factors)
    self.assertAllClose(got, want, rtol=1e-6, atol=1e-6)
    return np.asarray(got)

  def test_hand_computed_window(self):
    # 8x8, centre (0, 0) -> pixel (4, 4); a 2-pixel window rounds its centre
    # to the grid: rows and columns 3..4.
    image = np.arange(64, dtype=F32).reshape(1, 8, 8, 1)
    got = glimpse.extract_glimpses(image, [[[0.0, 0.0]]], [[0]], 2, [1, 2])
    self.assertAllEqual(got[0, 0, :, :, 0], [[27, 28], [35, 36]])
    got = glimpse.extract_glimpses(image, [[[0.0, 0.0]]], [[1]], 2, [1, 2])
    self.assertAllClose(got[0, 0, :, :, 0],
                        [[(18 + 19 + 26 + 27) / 4, (20 + 21 + 28 + 29) / 4],
                         [(34 + 35 + 42 + 43) / 4, (36 + 37 + 44 + 45) / 4]])

  @parameterized.parameters(0, 1, 2)
  def test_matches_reference_at_every_scale(self, k):
    images = _random([2, 40, 40, 2])
    locations = np.random.default_rng(1).uniform(-0.8, 0.8, [2, 3, 2])
    self._check(images, locations, np.full([2, 3], k), 4, (1, 2, 4))

  def test_windows_hanging_off_every_edge_and_corner(self):
    edges = [-1.0, -0.97, 0.0, 0.97, 1.0, 1.05]
    locations = np.array([[[r, c] for r in edges for c in edges]])
    scale = np.arange(locations.shape[1])[None] % 3
    self._check(_random([1, 20, 20, 1]), locations, scale, 4, (1, 2, 4))

  def test_window_wholly_outside_reads_zeros(self):
    locations = [[[-3.0, 0.0], [0.0, 2.5], [4.0, 4.0], [1e9, -1e9]]]
    got = self._check(_random([1, 16, 16, 3]) + 1.0, locations,
                      [[2, 2, 0, 1]], 3, (1, 2, 3))
    self.assertAllEqual(got, np.zeros_like(got))

  def test_non_square_image(self):
    locations = np.random.default_rng(2).uniform(-1.1, 1.1, [3, 4, 2])
    scale = np.random.default_rng(3).integers(0, 3, [3, 4])
    self._check(_random([3, 18, 45, 2]), locations, scale, 3, (1, 2, 4))

  def test_samples_read_different_places_of_one_image(self):
    images = _random([2, 24, 24, 1])
    locations = np.array([[[-0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]],
                          [[0.0, 0.0], [0.6, -0.6], [0.0, 0.0]]])
    scale = np.array([[0, 1, 0], [1, 0, 0]])
    got = self._check(images, locations, scale, 4, (1, 2))
    for b in range(2):
      for s in range(3):
        alone = glimpse.extract_glimpses(
            images[b:b + 1], locations[None, b, s:s + 1].astype(F32),
            scale[None, b, s:s + 1], 4, (1, 2))
        self.assertAllClose(got[b, s], alone[0, 0], rtol=1e-6, atol=1e-6)
    self.assertNotAllClose(got[0, 0], got[0, 1])

  @parameterized.named_parameters(
      ("eager", None), ("graph", False), ("xla", True))
  def test_compiled_and_uncompiled_match_reference(self, jit_compile):
    fn = glimpse.extract_glimpses
    if jit_compile is not None:
      fn = tf.function(fn, jit_compile=jit_compile)
    locations = np.random.default_rng(4).uniform(-1.2, 1.2, [4, 5, 2])
    scale = np.random.default_rng(5).integers(0, 3, [4, 5])
    self._check(_random([4, 30, 26, 2]), locations, scale, 4, (1, 2, 4), fn)

  def test_dynamic_shapes_match_reference(self):
    fn = tf.function(
        lambda i, l, s: glimpse.extract_glimpses(i, l, s, 3, (1, 2)),
        input_signature=[tf.TensorSpec([None, None, None, None], tf.float32),
                         tf.TensorSpec([None, None, 2], tf.float32),
                         tf.TensorSpec([None, None], tf.int32)])
    locations = np.random.default_rng(6).uniform(-1.1, 1.1, [2, 3, 2])
    scale = np.random.default_rng(7).integers(0, 2, [2, 3])
    self._check(_random([2, 11, 17, 1]), locations, scale, 3, (1, 2),
                lambda i, l, s, p, f: fn(i, l, s))

  def test_constant_image_inside_gives_ones(self):
    locations = [[[0.0, 0.0], [0.3, -0.2], [-0.1, 0.1]]]
    got = glimpse.extract_glimpses(np.ones([1, 50, 50, 3], F32), locations,
                                   [[0, 1, 2]], 5, (1, 2, 4))
    self.assertAllEqual(got, np.ones([1, 3, 5, 5, 3]))

  def test_scale_index_out_of_range_reads_zeros(self):
    got = glimpse.extract_glimpses(np.ones([1, 8, 8, 1], F32),
                                   [[[0.0, 0.0]]], [[2]], 2, (1, 2))
    self.assertAllEqual(got, np.zeros([1, 1, 2, 2, 1]))

  def test_bad_arguments_raise(self):
    images, loc, scale = np.ones([1, 8, 8, 1], F32), [[[0.0, 0.0]]], [[0]]
    for patch, factors in [(0, (1,)), (2.0, (1,)), (2, ()), (2, (1, 0)),
                           (2, (1, 1.5)), (True, (1,))]:
      with self.assertRaises(ValueError, msg=f"{patch} {factors}"):
        glimpse.extract_glimpses(images, loc, scale, patch, factors)
    with self.assertRaisesRegex(ValueError, "locations"):
      glimpse.extract_glimpses(images, [[[0.0, 0.0, 0.0]]], scale, 2, (1,))
    with self.assertRaisesRegex(ValueError, "scale_index"):
      glimpse.extract_glimpses(images, loc, [[0, 0]], 2, (1,))
    with self.assertRaisesRegex(ValueError, "images"):
      glimpse.extract_glimpses(np.ones([8, 8, 1], F32), loc, scale, 2, (1,))


class GeometryHelpersTest(tf.test.TestCase):

  def test_window_sides(self):
    self.assertEqual(glimpse.window_sides(12, (1, 2, 4)), [12, 24, 48])

  def test_locations_to_pixels_maps_edges_and_centre(self):
    got = glimpse.locations_to_pixels([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]],
                                      30, 50)
    self.assertAllClose(got, [[0.0, 0.0], [30.0, 50.0], [15.0, 37.5]])

  def test_window_origins_are_the_pixels_read(self):
    # A one-hot image lights up a glimpse iff its pixel is inside the box.
    locations = np.array([[-0.9, 0.3], [0.2, -0.6]], F32)
    origins = glimpse.window_origins(locations, 12, 14, 2, (1, 3)).numpy()
    for n, loc in enumerate(locations):
      for k, side in enumerate(glimpse.window_sides(2, (1, 3))):
        for r in range(12):
          for c in range(14):
            image = np.zeros([1, 12, 14, 1], F32)
            image[0, r, c] = 1.0
            seen = glimpse.extract_glimpses(image, loc[None, None], [[k]], 2,
                                            (1, 3)).numpy().sum() > 0
            top, left = origins[n, k]
            inside = top <= r < top + side and left <= c < left + side
            self.assertEqual(seen, inside, (n, k, r, c))


class ContextViewTest(tf.test.TestCase):

  def test_matches_reference_on_centred_crop(self):
    images = _random([2, 100, 37, 3])
    self.assertAllClose(glimpse.context_view(images, 12),
                        reference_context(images, 12), rtol=1e-5, atol=1e-6)

  def test_100x100_pools_the_centre_96_by_8(self):
    images = _random([1, 100, 100, 1])
    want = images[:, 2:98, 2:98].reshape(1, 12, 8, 12, 8, 1).mean(axis=(2, 4))
    self.assertAllClose(glimpse.context_view(images, 12), want, rtol=1e-5)

  def test_preserves_mean_when_side_is_multiple_of_size(self):
    images = _random([3, 24, 36, 2])
    got = glimpse.context_view(images, 12)
    self.assertAllClose(tf.reduce_mean(got, axis=[1, 2]),
                        images.mean(axis=(1, 2)), rtol=1e-5)

  def test_compiles_with_xla(self):
    images = _random([2, 30, 30, 1])
    got = tf.function(lambda x: glimpse.context_view(x, 7),
                      jit_compile=True)(images)
    self.assertAllClose(got, reference_context(images, 7), rtol=1e-5)

  def test_image_smaller_than_size_raises(self):
    with self.assertRaisesRegex(ValueError, "width 10 is smaller"):
      glimpse.context_view(np.ones([1, 20, 10, 1], F32), 12)
    with self.assertRaisesRegex(ValueError, "size"):
      glimpse.context_view(np.ones([1, 20, 20, 1], F32), 0)


if __name__ == "__main__":
  tf.test.main()
