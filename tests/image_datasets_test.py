"""Tests of pipelines/image_datasets.py: held-out split, limits, pipelines."""

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import mnist
from tests import image_files

NAMES = [f"c{k % 3}/file{k}.png" for k in range(30)]
LABELS = np.arange(30) % 3


class HoldOutTest(tf.test.TestCase):

  def test_holds_out_floor_fraction_per_class_by_name_alone(self):
    held = image_datasets.hold_out(NAMES, LABELS, 0.34)  # floor(3.4) each.
    self.assertAllEqual(np.bincount(LABELS[held]), [3, 3, 3])
    perm = np.random.default_rng(0).permutation(30)
    self.assertAllEqual(image_datasets.hold_out(
        [NAMES[i] for i in perm], LABELS[perm], 0.34), held[perm])
    more = image_datasets.hold_out(NAMES, LABELS, 0.5)
    self.assertTrue(np.all(more[held]))  # A larger fraction only adds.
    self.assertFalse(image_datasets.hold_out(NAMES, LABELS, 0.0).any())

  def test_a_renamed_file_moves_only_itself(self):
    held = image_datasets.hold_out(NAMES, LABELS, 0.2)
    renamed = list(NAMES)
    kept = int(np.flatnonzero(~held & (LABELS == 1))[0])
    renamed[kept] = "c1/zzz.png"
    moved = image_datasets.hold_out(renamed, LABELS, 0.2) != held
    self.assertLessEqual(moved.sum(), 2)  # At most it swaps with one file.

  def test_fraction_outside_zero_one_is_rejected(self):
    for fraction in (-0.1, 1.0):
      with self.assertRaisesRegex(ValueError, "validation_fraction"):
        image_datasets.hold_out(NAMES, LABELS, fraction)

  def test_first_by_name_takes_a_class_mixed_subset(self):
    rows = image_datasets.first_by_name(np.arange(30), NAMES, 9)
    self.assertLen(rows, 9)
    self.assertAllEqual(rows, np.sort(rows))
    self.assertGreater(len(set(LABELS[rows])), 1)
    self.assertAllEqual(image_datasets.first_by_name(np.arange(30), NAMES, 0),
                        np.arange(30))


class MakeDatasetsTest(tf.test.TestCase):

  def _datasets(self, **data):
    config = image_files.config(validation_fraction=0.2, **data)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, [36, 4, 4, 3]).astype(np.uint8)
    images[:, 0, 0, 0] = np.arange(36)  # Row r shows r.
    splits = np.array(["train"] * 30 + ["test"] * 6)
    labels = np.concatenate([LABELS, [0, 1, 2, 0, 1, 2]]).astype(np.int32)
    rows = image_datasets.choose_splits(config.data, splits,
                                        NAMES + [f"t{i}" for i in range(6)],
                                        labels, has_validation=False)
    return images, image_datasets.make_datasets(
        config, images, labels, rows, ("a", "b", "c"), "memory")

  def test_eval_batches_are_the_rows_in_order_scaled_to_one(self):
    images, datasets = self._datasets()
    self.assertEqual(image_datasets.ImageDatasets._fields[:11],
                     mnist.Datasets._fields)
    self.assertEqual((datasets.num_train, datasets.num_validation,
                      datasets.num_test), (24, 6, 6))
    test = np.concatenate([x.numpy() for x, _ in datasets.test])
    self.assertAllClose(test, images[30:] / 255.0)
    self.assertEqual(datasets.image_shape, (4, 4, 3))
    self.assertEqual(datasets.class_names, ("a", "b", "c"))

  def test_train_epochs_visit_each_train_row_once(self):
    images, datasets = self._datasets()
    row_of = lambda dataset: np.rint(np.concatenate(
        [x.numpy()[:, 0, 0, 0] for x, _ in dataset]) * 255).astype(int)
    seen = row_of(datasets.train.take(6))  # One epoch of 24.
    self.assertAllEqual(np.sort(seen), np.sort(
        np.setdiff1d(np.arange(30), row_of(datasets.validation))))
    train, labels = next(iter(datasets.train))
    rows = np.rint(train.numpy()[:, 0, 0, 0] * 255).astype(int)
    self.assertAllClose(train, images[rows] / 255.0)
    self.assertAllEqual(labels, LABELS[rows])

  def test_no_train_rows_is_an_error(self):
    config = image_files.config()
    with self.assertRaisesRegex(image_datasets.ImageDataError, "mem: no train"):
      image_datasets.make_datasets(
          config, np.zeros([2, 4, 4, 1], np.uint8), np.zeros([2], np.int32),
          {"train": np.array([], np.int64), "validation": np.array([0]),
           "test": np.array([1])}, ("a", "b"), "mem")


if __name__ == "__main__":
  tf.test.main()
