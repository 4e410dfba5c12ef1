"""Tests of pipelines/image_cache.py: decode once, keys, atomic npz files."""

import os
from unittest import mock

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets
from tests import image_files

SETTINGS = image_cache.Settings(channels=1, canvas_size=16, resize="fit")


def _items(num=3, bad=()):
  items = []
  for i in range(num):
    contents = (b"junk" if i in bad else
                image_files.png(image_files.pattern(8, 4 + i, 3, seed=i)))
    items.append(image_cache.Item(f"c{i % 2}/f{i}.png", i % 2,
                                  "test" if i == num - 1 else "train",
                                  contents))
  return items


class ImageCacheTest(tf.test.TestCase):

  def test_decode_all_puts_each_item_on_the_canvas(self):
    decoded = image_cache.decode_all(_items(), SETTINGS, "k", skip_bad=False)
    self.assertEqual(decoded.images.shape, (3, 16, 16, 1))
    self.assertEqual(decoded.images.dtype, np.uint8)
    self.assertAllEqual(decoded.labels, [0, 1, 0])
    self.assertAllEqual(decoded.splits, ["train", "train", "test"])
    item = _items()[1]
    self.assertEqual(decoded.digests[1], image_cache.digest(item.contents))
    # fit: 8 x 5 -> 16 x 10 (5 * 2), columns 3..12.
    self.assertEqual(decoded.images[1, :, :3].max(), 0)
    self.assertEqual(decoded.images[1, :, 13:].max(), 0)
    self.assertGreater(decoded.images[1, :, 3:13].min(), 0)

  def test_bad_items_raise_or_are_listed(self):
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                "where/c1/f1.png: does not decode"):
      image_cache.decode_all(_items(bad=(1,)), SETTINGS, "k", False,
                             location="where")
    decoded = image_cache.decode_all(_items(bad=(1,)), SETTINGS, "k", True)
    self.assertAllEqual(decoded.names, ["c0/f0.png", "c0/f2.png"])
    self.assertAllEqual(decoded.bad_names, ["c1/f1.png"])
    self.assertIn("Unknown image file format", decoded.bad_reasons[0])

  def test_rows_of_a_previous_cache_are_reused_by_content(self):
    old = image_cache.decode_all(_items(bad=(1,)), SETTINGS, "old", True)
    items = _items(4, bad=(1,))  # Items 0-2 unchanged, 3 new.
    with mock.patch.object(image_cache, "decode_image",
                           wraps=image_cache.decode_image) as decode:
      new = image_cache.decode_all(items, SETTINGS, "new", True, reuse=old)
    self.assertEqual(decode.call_count, 1)  # The bad item is not retried.
    self.assertAllEqual(new.images[:2], old.images)
    self.assertEqual(new.key, "new")

  def test_save_and_load_round_trip_atomically(self):
    path = os.path.join(self.create_tempdir().full_path, "a", "c.npz")
    decoded = image_cache.decode_all(_items(bad=(0,)), SETTINGS, "k", True)
    image_cache.save(path, decoded)
    loaded = image_cache.load(path)
    for field in image_cache.DecodedImages._fields:
      self.assertAllEqual(getattr(loaded, field), getattr(decoded, field))
    with mock.patch.object(np, "savez", side_effect=OSError("disk full")):
      with self.assertRaisesRegex(OSError, "disk full"):
        image_cache.save(path, decoded._replace(key="other"))
    self.assertEqual(os.listdir(os.path.dirname(path)), ["c.npz"])
    self.assertEqual(image_cache.load(path).key, "k")  # Old file intact.

  def test_a_broken_or_missing_cache_loads_as_none(self):
    folder = self.create_tempdir().full_path
    self.assertIsNone(image_cache.load(os.path.join(folder, "none.npz")))
    broken = image_files.write(os.path.join(folder, "b.npz"), b"PK broken")
    self.assertIsNone(image_cache.load(broken))

  def test_keys_and_file_names_depend_on_settings_and_content(self):
    entries = [["train", "a.png", "00"]]
    key = image_cache.cache_key(SETTINGS, entries)
    self.assertNotEqual(key, image_cache.cache_key(
        SETTINGS._replace(resize="pad"), entries))
    self.assertNotEqual(key, image_cache.cache_key(
        SETTINGS, [["train", "a.png", "01"]]))
    name = image_cache.cache_file("/c", "image_folder", "my pics", SETTINGS,
                                  "/data/my pics")
    self.assertStartsWith(name, "/c/image_folder/my_pics-")
    self.assertNotEqual(name, image_cache.cache_file(
        "/c", "image_folder", "my pics", SETTINGS._replace(channels=3),
        "/data/my pics"))
    with self.assertRaisesRegex(ValueError, "cache_dir is empty"):
      image_cache.cache_file("", "image_folder", "x", SETTINGS, "/x")


if __name__ == "__main__":
  tf.test.main()
