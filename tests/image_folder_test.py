"""Tests of pipelines/image_folder.py on tiny generated class folders."""

import glob
import os
from unittest import mock

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import image_folder
from wsram_tf.pipelines import mnist
from tests import image_files

ImageDataError = image_datasets.ImageDataError
LUMINANCE = np.array([0.2989, 0.5870, 0.1140])


def _all(dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
  return np.concatenate(images), np.concatenate(labels)


def _padded(image: np.ndarray, canvas: int) -> np.ndarray:
  """`image` copied to the centre of a black canvas, computed by hand."""
  height, width, channels = image.shape
  out = np.zeros([canvas, canvas, channels], image.dtype)
  top, left = (canvas - height) // 2, (canvas - width) // 2
  out[top:top + height, left:left + width] = image
  return out


class ImageFolderTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.cache = self.create_tempdir().full_path
    self.originals = image_files.write_folder(self.root)

  def _config(self, **data):
    return image_files.config(dir=self.root, cache_dir=self.cache, **data)

  def _decode(self, channels=3, canvas=48):
    decoded = image_folder.decode_folder(
        image_folder.scan(self.root),
        image_cache.Settings(channels, canvas, "pad"), self.cache, False)
    return dict(zip(decoded.names, decoded.images))

  def test_every_format_size_and_colour_lands_padded_on_the_canvas(self):
    canvases = self._decode()
    self.assertCountEqual(canvases, self.originals)
    for name, image in self.originals.items():
      expected = _padded(np.repeat(image, 3 // image.shape[-1], -1), 48)
      got = canvases[name].astype(int)
      if name.endswith(".jpg"):  # Lossy: close inside, black outside.
        self.assertLess(np.abs(got - expected).mean(), 8.0, name)
        outside = _padded(np.ones_like(image), 48)[..., 0] == 0
        self.assertEqual(got[outside].max(), 0, name)
      else:
        self.assertAllEqual(got, expected, msg=name)

  def test_colour_becomes_luminance_with_one_channel(self):
    canvases = self._decode(channels=1)
    for name, image in self.originals.items():
      if name.endswith(".jpg"):
        continue
      grey = image if image.shape[-1] == 1 else np.rint(
          image @ LUMINANCE)[..., None]
      self.assertAllClose(canvases[name], _padded(grey, 48), atol=1,
                          msg=name)

  def test_a_gif_gives_its_first_frame(self):
    first = image_files.pattern(10, 14, 1, seed=1)
    path = os.path.join(self.root, "train", "ants", "moving.gif")
    image_files.write(path, image_files.gif([first, 255 - first]))
    canvas = self._decode()["train/ants/moving.gif"]
    self.assertAllEqual(canvas, _padded(np.repeat(first, 3, -1), 48))

  def test_datasets_have_the_mnist_interface_shapes_and_classes(self):
    self.assertEqual(image_datasets.ImageDatasets._fields[:11],
                     mnist.Datasets._fields)
    datasets = image_folder.make_datasets(self._config())
    self.assertEqual(datasets.class_names, ("ants", "bees", "cats"))
    self.assertEqual((datasets.num_classes, datasets.image_shape),
                     (3, (48, 48, 3)))
    self.assertEqual((datasets.num_train, datasets.num_validation,
                      datasets.num_test, datasets.num_skipped), (18, 0, 6, 0))
    self.assertEqual(datasets.train.element_spec[0].shape, (4, 48, 48, 3))
    images, labels = next(iter(datasets.train))
    self.assertEqual((images.dtype, labels.dtype), (tf.float32, tf.int32))
    self.assertAllInRange(images, 0.0, 1.0)
    test_images, test_labels = _all(datasets.test)
    self.assertAllEqual(test_labels, [0, 0, 1, 1, 2, 2])
    canvases = self._decode()
    self.assertAllEqual(np.rint(test_images[2] * 255),
                        canvases["test/bees/bees00.png"])

  def test_a_second_build_reads_the_cache_and_never_decodes(self):
    first = _all(image_folder.make_datasets(self._config()).test)
    self.assertLen(glob.glob(os.path.join(self.cache, "image_folder", "*.npz")),
                   1)
    self.assertEmpty(glob.glob(os.path.join(self.cache, "**", "*.tmp"),
                               recursive=True))
    with mock.patch.object(image_cache, "decode_image",
                           side_effect=AssertionError("decoded")), \
         mock.patch.object(image_cache, "decode_all",  # A valid key: no pass.
                           side_effect=AssertionError("re-read")):
      second = _all(image_folder.make_datasets(self._config()).test)
    self.assertAllEqual(first[0], second[0])

  def test_a_changed_file_is_decoded_again_and_alone(self):
    image_folder.make_datasets(self._config())
    new = image_files.pattern(16, 16, 3, seed=99)
    image_files.write(os.path.join(self.root, "test", "cats", "cats00.png"),
                      image_files.png(new))
    with mock.patch.object(image_cache, "decode_image",
                           wraps=image_cache.decode_image) as decode:
      test_images, _ = _all(image_folder.make_datasets(self._config()).test)
    self.assertEqual(decode.call_count, 1)
    self.assertAllEqual(np.rint(test_images[4] * 255), _padded(new, 48))

  def test_other_settings_get_their_own_cache(self):
    image_folder.make_datasets(self._config())
    with mock.patch.object(image_cache, "decode_image",
                           wraps=image_cache.decode_image) as decode:
      datasets = image_folder.make_datasets(self._config(canvas_size=32))
    self.assertEqual(decode.call_count, 24)
    self.assertEqual(datasets.image_shape, (32, 32, 3))
    self.assertLen(glob.glob(os.path.join(self.cache, "image_folder", "*.npz")),
                   2)

  def test_held_out_validation_is_the_same_across_runs_seeds_and_order(self):
    config = self._config(validation_fraction=0.34)  # floor(2.04) per class.
    datasets = image_folder.make_datasets(config)
    self.assertEqual((datasets.num_train, datasets.num_validation), (12, 6))
    images, labels = _all(datasets.validation)
    self.assertAllEqual(np.sort(labels), [0, 0, 1, 1, 2, 2])
    config.seed = 9
    self.assertAllEqual(_all(image_folder.make_datasets(config).validation)[0],
                        images)
    # A copy of the folder elsewhere (other paths, other listing) agrees.
    copy = self.create_tempdir().full_path
    image_files.write_folder(copy)
    config.data.dir = copy
    self.assertAllEqual(_all(image_folder.make_datasets(config).validation)[0],
                        images)

  def test_a_validation_folder_replaces_the_held_out_fraction(self):
    image_files.write_folder(self.root, per_class={"validation": 1}, seed=5)
    datasets = image_folder.make_datasets(
        self._config(validation_fraction=0.5))
    self.assertEqual((datasets.num_train, datasets.num_validation), (18, 3))
    self.assertAllEqual(_all(datasets.validation)[1], [0, 1, 2])

  def test_train_from_equals_skip_and_epochs_are_whole(self):
    datasets = image_folder.make_datasets(self._config())
    for start in (0, 2, 5, 9):  # 18 images, batches of 4: epochs end mid-batch.
      expected = _all(datasets.train.skip(start).take(3))
      got = _all(datasets.train_from(start).take(3))
      self.assertAllEqual(got[0], expected[0], msg=f"start {start}")
      self.assertAllEqual(got[1], expected[1], msg=f"start {start}")
    epoch = _all(datasets.train.take(9))
    self.assertAllEqual(np.bincount(epoch[1][:18]), [6, 6, 6])
    self.assertLen(np.unique(epoch[0][:18].reshape(18, -1), axis=0), 18)

  def test_max_train_examples_mixes_the_classes(self):
    datasets = image_folder.make_datasets(self._config(max_train_examples=6,
                                                       max_test_examples=4))
    self.assertEqual((datasets.num_train, datasets.num_test), (6, 4))
    self.assertGreater(len(np.unique(_all(datasets.train.take(3))[1])), 1)


class BadInputTest(tf.test.TestCase):
  """Each unusable layout or file raises ImageDataError naming it."""

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.cache = self.create_tempdir().full_path

  def _build(self, **data):
    return image_folder.make_datasets(
        image_files.config(dir=self.root, cache_dir=self.cache, **data))

  def _write(self, relative: str, contents: bytes = b"") -> str:
    return image_files.write(os.path.join(self.root, relative), contents)

  def _assert_names(self, path: str, what: str, **data):
    with self.assertRaises(ImageDataError) as caught:
      self._build(**data)
    self.assertIn(path, str(caught.exception))
    self.assertRegex(str(caught.exception), what)

  def _two_classes(self, splits=("train", "test")):
    image = image_files.png(image_files.pattern(8, 8, 3, seed=0))
    for split in splits:
      for name in ("ants", "bees"):
        self._write(f"{split}/{name}/a.png", image)

  def test_missing_data_dir(self):
    missing = os.path.join(self.root, "nowhere")
    with self.assertRaisesRegex(ImageDataError, f"{missing}.*no such folder"):
      image_folder.make_datasets(image_files.config(dir=missing,
                                                    cache_dir=self.cache))

  def test_missing_train_or_test_folder(self):
    self._two_classes(splits=("test",))
    self._assert_names(os.path.join(self.root, "train"), "missing")
    self._two_classes(splits=("train",))
    os.rename(os.path.join(self.root, "test"), os.path.join(self.root, "tst"))
    self._assert_names(os.path.join(self.root, "test"), "missing")

  def test_a_file_that_does_not_decode(self):
    self._two_classes()
    bad = self._write("train/bees/notes.jpg", b"not a picture")
    self._assert_names(bad, "does not decode")

  def test_an_empty_class_folder(self):
    self._two_classes()
    os.makedirs(os.path.join(self.root, "train", "cats"))
    self._write("train/cats/.hidden", b"ignored")
    self._assert_names(os.path.join(self.root, "train", "cats"),
                       "empty class folder")

  def test_a_test_or_validation_class_that_train_lacks(self):
    self._two_classes()
    image = image_files.png(image_files.pattern(8, 8, 3, seed=0))
    zebra = self._write("test/zebra/z.png", image)
    self._assert_names(os.path.dirname(zebra), "'zebra' has no folder in")
    os.remove(zebra)
    os.rmdir(os.path.dirname(zebra))
    self._two_classes(splits=("validation",))
    self._write("validation/yak/y.png", image)
    self._assert_names(os.path.join(self.root, "validation", "yak"),
                       "'yak' has no folder in")

  def test_a_single_class(self):
    image = image_files.png(image_files.pattern(8, 8, 3, seed=0))
    self._write("train/ants/a.png", image)
    self._write("test/ants/a.png", image)
    self._assert_names(os.path.join(self.root, "train"), "at least two")

  def test_a_file_outside_the_class_folders(self):
    self._two_classes()
    stray = self._write("train/loose.png", b"")
    self._assert_names(stray, "directly in train")

  def test_skip_bad_skips_and_counts_then_strict_mode_names_the_file(self):
    self._two_classes()
    bad = [self._write("train/ants/broken.png", b"\x89PNG broken"),
           self._write("test/bees/empty.gif", b"")]
    datasets = self._build(skip_bad=True)
    self.assertEqual((datasets.num_train, datasets.num_test), (2, 2))
    self.assertEqual(datasets.num_skipped, 2)
    self.assertEqual(datasets.skipped, tuple(sorted(bad)))
    # The cache remembers the bad file: strict mode still names it.
    with mock.patch.object(image_cache, "decode_image",
                           side_effect=AssertionError("decoded")):
      self._assert_names(bad[0], "does not decode", skip_bad=False)

  def test_skip_bad_still_needs_an_image_per_class_folder(self):
    self._two_classes()
    os.remove(os.path.join(self.root, "test", "bees", "a.png"))
    self._write("test/bees/broken.png", b"broken")
    self._assert_names(os.path.join(self.root, "test", "bees"),
                       "no image in this class folder decodes", skip_bad=True)

  def test_bad_settings_name_the_config_field(self):
    self._two_classes()
    with self.assertRaisesRegex(ValueError, "config.data: resize='crop'"):
      self._build(resize="crop")
    with self.assertRaisesRegex(ValueError, "validation_fraction=1.0"):
      self._build(validation_fraction=1.0)


if __name__ == "__main__":
  tf.test.main()
