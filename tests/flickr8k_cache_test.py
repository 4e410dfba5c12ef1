"""pipelines/flickr8k_cache.py: CNN once per image, manifest, reuse, rebuild."""

import os
import tempfile
from unittest import mock

import tensorflow as tf

from pipelines import flickr8k_cache
from pipelines import flickr8k_reader
from pipelines import flickr8k_vocab
from tests import flickr8k_data
from pipelines import feature_pyramid


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


if __name__ == "__main__":
  tf.test.main()
