"""pipelines/feature_pyramid.py: frozen maps at several depths, clear errors."""

import os

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import feature_pyramid


def _images(size: int) -> np.ndarray:
  return np.random.default_rng(0).integers(0, 256, (2, size, size, 3),
                                           dtype=np.uint8)


class FeaturePyramidTest(tf.test.TestCase):

  def test_small_gives_two_maps_of_different_resolution(self):
    pyramid = feature_pyramid.build_feature_pyramid("small", None, 64)
    maps = pyramid(_images(64))
    self.assertLen(maps, 2)
    self.assertEqual([tuple(m.shape) for m in maps],
                     [(2, 16, 16, 32), (2, 8, 8, 64)])

  def test_vgg16_default_taps_differ_in_resolution(self):
    pyramid = feature_pyramid.build_feature_pyramid("vgg16", None, 64)
    self.assertEqual(pyramid.taps, ("block4_conv3", "block5_conv3"))
    maps = pyramid(_images(64))
    self.assertEqual([tuple(m.shape) for m in maps],
                     [(2, 8, 8, 512), (2, 4, 4, 512)])

  def test_backbone_is_frozen(self):
    for name in ("small", "vgg16"):
      pyramid = feature_pyramid.build_feature_pyramid(name, "", 64)
      self.assertEmpty(pyramid.model.trainable_weights, msg=name)
      self.assertNotEmpty(pyramid.model.non_trainable_weights, msg=name)

  def test_random_init_is_repeatable_for_a_seed(self):
    for name in ("small", "vgg16"):
      build = lambda seed, n=name: feature_pyramid.build_feature_pyramid(
          n, None, 32, seed=seed)(_images(32))[1]
      self.assertAllClose(build(3), build(3), msg=name)
      self.assertNotAllClose(build(3), build(4), msg=name)

  def test_taps_can_be_overridden(self):
    pyramid = feature_pyramid.build_feature_pyramid(
        "small", None, 64, taps=("conv1", "conv2", "conv3"))
    self.assertEqual([m.shape[1] for m in pyramid(_images(64))], [32, 16, 8])

  def test_weights_file_round_trips(self):
    pyramid = feature_pyramid.build_feature_pyramid("small", None, 32, seed=1)
    path = os.path.join(self.get_temp_dir(), "small.weights.h5")
    pyramid.model.save_weights(path)
    loaded = feature_pyramid.build_feature_pyramid("small", path, 32, seed=2)
    self.assertAllClose(pyramid(_images(32))[0], loaded(_images(32))[0])

  def test_unknown_backbone_lists_valid_names(self):
    with self.assertRaisesRegex(ValueError, "'vgg19'.*vgg16.*resnet50.*small"):
      feature_pyramid.build_feature_pyramid("vgg19")

  def test_missing_weights_file_names_backbone_and_path(self):
    with self.assertRaisesRegex(FileNotFoundError, "'vgg16'.*/nowhere/w.h5"):
      feature_pyramid.build_feature_pyramid("vgg16", "/nowhere/w.h5", 64)

  def test_unknown_tap_names_the_layer(self):
    with self.assertRaisesRegex(ValueError, "'small' has no layer 'conv9'"):
      feature_pyramid.build_feature_pyramid("small", None, 64, taps=("conv9",))


if __name__ == "__main__":
  tf.test.main()
