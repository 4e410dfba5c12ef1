"""Tests of pipelines/tfds_images.py on a tiny tfds dataset prepared offline
(tests/tfds_files.py: real tfrecords in a temp data_dir, read by files alone,
as a user's prepared copy; tfds.testing.mock_data would skip what this module
does)."""

import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import tfds_images
from tests import image_files
from tests import tfds_files
from tests.tfds_files import CLASSES



def _all(dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
  return np.concatenate(images), np.concatenate(labels)


class TfdsImagesTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tfds_files.prepare(tempfile.mkdtemp(),
                                     {"train": 12, "test": 6})

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.data_dir)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.cache = self.create_tempdir().full_path

  def _config(self, **data):
    return image_files.config(**dict(
        dict(name="tfds_images", tfds_name="wsram_tiny_shapes",
             tfds_data_dir=self.data_dir, cache_dir=self.cache), **data))

  def test_reads_the_prepared_dataset_with_its_class_names(self):
    datasets = tfds_images.make_datasets(self._config(
        validation_fraction=0.25))
    self.assertEqual(datasets.class_names, CLASSES)
    self.assertEqual((datasets.num_train, datasets.num_validation,
                      datasets.num_test), (9, 3, 6))
    self.assertEqual(datasets.image_shape, (48, 48, 3))
    images, labels = _all(datasets.test)
    self.assertAllEqual(np.bincount(labels), [2, 2, 2])
    # PNG is lossless and every image fits: each test canvas is an example
    # padded by hand (tfds stores them in its own order).
    expected = {}
    for i in range(6):
      example = tfds_files.example("test", i)
      height, width = example["image"].shape[:2]
      canvas = np.zeros([48, 48, 3], np.uint8)
      top, left = (48 - height) // 2, (48 - width) // 2
      canvas[top:top + height, left:left + width] = example["image"]
      expected[canvas.tobytes()] = example["label"]
    for image, label in zip(images, labels):
      key = np.rint(image * 255).astype(np.uint8).tobytes()
      self.assertEqual(expected.pop(key), label)

  def test_grey_canvases_and_a_second_build_without_decoding(self):
    config = self._config(channels=1, canvas_size=20, resize="fit")
    first = _all(tfds_images.make_datasets(config).test)
    self.assertEqual(first[0].shape, (6, 20, 20, 1))
    with mock.patch.object(image_cache, "decode_image",
                           side_effect=AssertionError("decoded")), \
         mock.patch.object(image_cache, "decode_all",  # A valid key: no pass.
                           side_effect=AssertionError("re-read")):
      second = _all(tfds_images.make_datasets(config).test)
    self.assertAllEqual(first[0], second[0])

  def test_held_out_validation_is_fixed_and_train_from_equals_skip(self):
    config = self._config(validation_fraction=0.5)
    datasets = tfds_images.make_datasets(config)
    config.seed = 4
    again = tfds_images.make_datasets(config)
    self.assertAllEqual(_all(datasets.validation)[0],
                        _all(again.validation)[0])
    for start in (0, 1, 3):  # 6 train images, batches of 4.
      self.assertAllEqual(_all(datasets.train_from(start).take(2))[0],
                          _all(datasets.train.skip(start).take(2))[0])

  def test_a_validation_split_is_used_when_present(self):
    data_dir = tfds_files.prepare(self.create_tempdir().full_path,
                                  {"train": 6, "validation": 3, "test": 3})
    datasets = tfds_images.make_datasets(self._config(
        tfds_data_dir=data_dir, validation_fraction=0.5))
    self.assertEqual((datasets.num_train, datasets.num_validation,
                      datasets.num_test), (6, 3, 3))

  def test_errors_name_the_dataset(self):
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                "'no_such_set_xyz'"):
      tfds_images.make_datasets(self._config(tfds_name="no_such_set_xyz"))
    empty = self.create_tempdir().full_path
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                f"'wsram_tiny_shapes'.*{empty}"):
      tfds_images.make_datasets(self._config(tfds_data_dir=empty))
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                f"'mnist': not prepared in {empty}"):
      tfds_images.make_datasets(self._config(tfds_name="mnist",
                                             tfds_data_dir=empty))
    no_test = tfds_files.prepare(self.create_tempdir().full_path,
                                  {"train": 3})
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                "wsram_tiny_shapes: no 'test' split"):
      tfds_images.make_datasets(self._config(tfds_data_dir=no_test))

  def test_the_cache_lives_under_cache_dir(self):
    tfds_images.make_datasets(self._config())
    files = os.listdir(os.path.join(self.cache, "tfds_images"))
    self.assertLen(files, 1)
    self.assertStartsWith(files[0], "wsram_tiny_shapes-1.0.0-")


if __name__ == "__main__":
  tf.test.main()
