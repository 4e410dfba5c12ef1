"""pipelines/flickr8k_cache.py: CNN once per image, manifest, reuse, rebuild."""

import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k_cache
from wsram_tf.pipelines import flickr8k_reader
from wsram_tf.pipelines import flickr8k_vocab
from tests import flickr8k_data
from wsram_tf.pipelines import feature_pyramid


class FeatureCacheTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.config = flickr8k_data.tiny_dataset_config(root)
    self.examples = flickr8k_reader.read_examples(
        self.config.data.flickr8k_dir)
    self.vocab = self._vocab(min_count=1)

  def _vocab(self, min_count):
    return flickr8k_vocab.Vocabulary.build(
        (c for e in self.examples["train"] for c in e.captions), min_count)

  def _build(self, vocab=None):
    """Builds the cache; returns its dir and how often the CNN was built."""
    with mock.patch.object(feature_pyramid, "build_feature_pyramid",
                           wraps=feature_pyramid.build_feature_pyramid) as cnn:
      cache_dir = flickr8k_cache.build_feature_cache(
          self.config, self.examples, vocab or self.vocab)
    return cache_dir, cnn.call_count

  def _features(self, cache_dir):
    """Every cached map as numpy: {split: [{"features_k": array}, ...]}."""
    cache = flickr8k_cache.open_cache(cache_dir, self.examples)
    return {s: [{k: v.numpy() for k, v in cache.splits[s].read(
        tf.constant(row, tf.int64)).items()}
                for row in range(len(self.examples[s]))]
            for s in flickr8k_reader.SPLITS}

  def _fresh_features(self):
    """The features computed from scratch into a new cache directory."""
    self.config.data.feature_cache_dir = ""
    self.config.data.cache_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    return self._features(self._build()[0])

  def _repaint(self, names=None, seed=1):
    """Gives images (all, or `names`) new pixels under the same names."""
    for i, example in enumerate(e for s in flickr8k_reader.SPLITS
                                for e in self.examples[s]):
      if names is None or os.path.basename(example.image_path) in names:
        pixels = np.random.default_rng([seed, i]).integers(
            0, 256, (24, 24, 3), np.uint8)
        with open(example.image_path, "wb") as f:
          f.write(tf.io.encode_jpeg(pixels).numpy())

  def _fix_cache_dir(self):
    self.config.data.feature_cache_dir = os.path.join(
        self.config.data.cache_dir, "fixed")

  def test_second_run_reuses_the_cache(self):
    first, built = self._build()
    feature_file = os.path.join(first, "train_features_0", "000000.raw")
    mtime = os.stat(feature_file).st_mtime_ns
    second, rebuilt = self._build()
    self.assertEqual((built, rebuilt), (1, 0))
    self.assertEqual(second, first)
    self.assertEqual(os.stat(feature_file).st_mtime_ns, mtime)

  def test_open_cache_reads_the_map_shapes(self):
    cache_dir, _ = self._build()
    self.assertEqual(flickr8k_cache.open_cache(cache_dir, self.examples).shapes,
                     ((8, 8, 32), (4, 4, 64)))

  def test_changed_taps_rebuild_the_features(self):
    self.config.data.feature_cache_dir = os.path.join(
        self.config.data.cache_dir, "fixed")
    self._build()
    self.config.backbone.taps = ("conv1", "conv3")
    cache_dir, built = self._build()
    self.assertEqual(built, 1)
    self.assertEqual(flickr8k_cache.open_cache(cache_dir, self.examples).shapes,
                     ((16, 16, 16), (4, 4, 64)))

  def test_changed_vocabulary_keeps_the_features(self):
    self._build()
    vocab = self._vocab(min_count=2)
    cache_dir, built = self._build(vocab)
    self.assertEqual(built, 0)
    self.assertEqual(flickr8k_vocab.Vocabulary.load(
        os.path.join(cache_dir, flickr8k_cache.VOCAB_FILE)), vocab)
    ids = flickr8k_cache.open_cache(cache_dir, self.examples).splits["train"]
    red = self.examples["train"][3].captions.index("a red ball")
    self.assertEqual(ids.ids[6 + red, 2], vocab.UNK)  # "red" is seen once.

  def test_pairs_point_at_their_image_rows(self):
    cache_dir, _ = self._build()
    train = flickr8k_cache.open_cache(cache_dir, self.examples).splits["train"]
    self.assertAllEqual(train.owner, [0, 0, 1, 1, 2, 2, 3, 3])
    self.assertEqual(train.ids.shape, (8, 6))
    self.assertEqual(self.vocab.decode(train.ids[0]), "a dog runs")

  def test_cached_features_are_the_cnn_features(self):
    cache_dir, _ = self._build()
    test = flickr8k_cache.open_cache(cache_dir, self.examples).splits["test"]
    pyramid = feature_pyramid.build_feature_pyramid("small", "", 32)
    image = tf.io.decode_jpeg(tf.io.read_file(
        self.examples["test"][0].image_path))
    expected = pyramid(tf.image.resize(image, (32, 32), antialias=True)[None])
    got = test.read(tf.constant(0, tf.int64))
    self.assertAllClose(got["features_1"], expected[1][0], atol=2e-2,
                        rtol=1e-2)


  def test_regenerated_images_with_the_same_names_are_recomputed(self):
    first = self._features(self._build()[0])
    self._repaint()
    second_dir, built = self._build()
    self.assertEqual(built, 1)
    second = self._features(second_dir)
    self.assertAllClose(second, self._fresh_features())
    for old, new in zip(first["train"], second["train"]):
      self.assertNotAllClose(old["features_0"], new["features_0"])

  def test_only_changed_images_are_recomputed_in_a_fixed_cache_dir(self):
    self._fix_cache_dir()
    cache_dir, _ = self._build()
    files = [os.path.join(cache_dir, "train_features_0", f"{row:06d}.raw")
             for row in range(4)]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    self._repaint(names=("b.jpg",))  # Row 1 of train.
    _, built = self._build()
    self.assertEqual(built, 1)
    self.assertEqual([os.stat(f).st_mtime_ns == m
                      for f, m in zip(files, mtimes)],
                     [True, False, True, True])
    self.assertAllClose(self._features(cache_dir), self._fresh_features())

  def test_changed_weights_file_contents_rebuild_the_features(self):
    # Same size and mtime, other weights: only the contents tell them apart.
    weights = os.path.join(self.get_temp_dir(), "small.weights.h5")
    feature_pyramid._small_cnn((32, 32, 3), seed=1).save_weights(weights)
    self.config.backbone.weights = weights
    first = self._features(self._build()[0])
    stat = os.stat(weights)
    feature_pyramid._small_cnn((32, 32, 3), seed=2).save_weights(weights)
    self.assertEqual(os.path.getsize(weights), stat.st_size)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cache_dir, built = self._build()
    self.assertEqual(built, 1)
    second = self._features(cache_dir)
    self.assertNotAllClose(first["test"][0]["features_1"],
                           second["test"][0]["features_1"])
    self.assertAllClose(second, self._fresh_features())

  def _damage_and_rebuild(self, relative_path, damage):
    """Damages one cache file, rebuilds; returns the dir and WARNING lines."""
    self._fix_cache_dir()
    cache_dir, _ = self._build()
    expected = self._features(cache_dir)
    path = os.path.join(cache_dir, relative_path)
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(damage(data))
    with self.assertLogs("absl", "WARNING") as logs:
      self._build()
    warnings = "\n".join(logs.output)
    self.assertIn(path, warnings)
    self.assertAllClose(self._features(cache_dir), expected)
    return cache_dir

  def test_truncated_feature_file_is_recomputed_with_a_warning(self):
    self._damage_and_rebuild(os.path.join("train_features_1", "000002.raw"),
                             lambda data: data[:len(data) // 2])

  def test_unreadable_feature_file_is_recomputed_with_a_warning(self):
    self._damage_and_rebuild(os.path.join("val_features_0", "000000.raw"),
                             lambda data: b"not a feature map")

  def test_deleted_feature_folder_is_recomputed_in_few_log_lines(self):
    self._fix_cache_dir()
    cache_dir, _ = self._build()
    expected = self._features(cache_dir)
    shutil.rmtree(os.path.join(cache_dir, "train_features_0"))
    with mock.patch.object(flickr8k_cache, "_NAMED", 2), self.assertLogs(
        "absl", "WARNING") as logs:
      _, built = self._build()
    self.assertEqual(built, 1)
    self.assertLen(logs.output, 3)
    self.assertIn("000001.raw is missing", logs.output[1])
    self.assertIn("2 more train map files missing", logs.output[2])
    self.assertAllClose(self._features(cache_dir), expected)

  def test_corrupt_manifest_is_rebuilt_with_a_warning(self):
    self._damage_and_rebuild(flickr8k_cache.MANIFEST,
                             lambda data: data[:len(data) // 3])

  def test_corrupt_caption_ids_are_rewritten_with_a_warning(self):
    cache_dir = self._damage_and_rebuild(
        "train_ids.npy", lambda data: data[:40] + b"\xff" * (len(data) - 40))
    train = flickr8k_cache.open_cache(cache_dir, self.examples).splits["train"]
    self.assertEqual(self.vocab.decode(train.ids[0]), "a dog runs")

  def test_corrupt_vocabulary_is_rewritten_with_a_warning(self):
    cache_dir = self._damage_and_rebuild(flickr8k_cache.VOCAB_FILE,
                                         lambda data: data[:10])
    self.assertEqual(flickr8k_vocab.Vocabulary.load(
        os.path.join(cache_dir, flickr8k_cache.VOCAB_FILE)), self.vocab)

  def test_feature_file_damaged_in_place_is_named_when_read(self):
    # Same size, other bytes: too costly to find by reading every file at
    # start-up, so each read checks the file's fingerprint instead.
    cache_dir, _ = self._build()
    path = os.path.join(cache_dir, "test_features_0", "000000.raw")
    with open(path, "r+b") as f:
      f.write(b"\x7f" * 16)
    test = flickr8k_cache.open_cache(cache_dir, self.examples).splits["test"]
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                f"(?s){path}.*delete"):
      test.read(tf.constant(0, tf.int64))

  def test_cache_files_are_written_under_temporary_names(self):
    replaced = []
    original = os.replace

    def record(source, target):
      replaced.append(os.path.basename(target))
      original(source, target)

    with mock.patch.object(os, "replace", side_effect=record):
      cache_dir, _ = self._build()
    for name in os.listdir(cache_dir):
      if os.path.isfile(os.path.join(cache_dir, name)):
        self.assertIn(name, replaced)
    self.assertIn("000000.raw", replaced)
    self.assertEqual([n for n in os.listdir(cache_dir) if "tmp" in n], [])


if __name__ == "__main__":
  tf.test.main()
