"""pipelines/flickr8k.py: make_datasets end to end."""

import os
import tempfile

import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from tests import flickr8k_data


class MakeDatasetsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.config = flickr8k_data.tiny_dataset_config(root)

  def test_train_yields_feature_maps_and_padded_ids(self):
    datasets = flickr8k.make_datasets(self.config)
    features, ids = next(iter(datasets.train))
    self.assertEqual(sorted(features), ["features_0", "features_1"])
    self.assertEqual(features["features_0"].shape, (4, 8, 8, 32))
    self.assertEqual(features["features_1"].shape, (4, 4, 4, 64))
    self.assertEqual(ids.shape, (4, 6))
    self.assertAllEqual(ids[:, 0], [flickr8k.Vocabulary.START] * 4)
    self.assertAllEqual(tf.reduce_any(ids == flickr8k.Vocabulary.END, 1),
                        [True] * 4)
    self.assertEqual(datasets.num_train_pairs, 8)

  def test_train_from_continues_the_stream_like_skip(self):
    # 8 pairs in batches of 4: batch 3 sits in the second shuffled epoch.
    datasets = flickr8k.make_datasets(self.config)
    expected = [ids.numpy() for _, ids in datasets.train.skip(3).take(3)]
    got = [ids.numpy() for _, ids in datasets.train_from(3).take(3)]
    self.assertAllEqual(got, expected)
    first = [ids.numpy() for _, ids in datasets.train.take(3)]
    self.assertNotAllEqual(got, first)

  def test_vocabulary_comes_from_training_captions_only(self):
    datasets = flickr8k.make_datasets(self.config)
    self.assertIn("dog", datasets.vocab.ids)
    self.assertNotIn("zebra", datasets.vocab.ids)  # Only in val/test.
    self.assertEqual(flickr8k.Vocabulary.load(datasets.vocab_path),
                     datasets.vocab)

  def test_evaluation_is_per_image_with_all_references(self):
    datasets = flickr8k.make_datasets(self.config)
    batches = list(datasets.test_features)
    self.assertLen(batches, 1)
    self.assertEqual(batches[0]["features_0"].shape[0], 1)
    self.assertEqual(datasets.test_references, [["a zebra sits", "a dog sits"]])
    self.assertLen(list(datasets.validation), 1)

  def test_image_limits_cut_each_split(self):
    self.config.data.max_train_images = 2
    datasets = flickr8k.make_datasets(self.config)
    self.assertEqual([os.path.basename(p)
                      for p in datasets.image_paths["train"]],
                     ["a.jpg", "b.jpg"])
    self.assertEqual(datasets.num_train_pairs, 4)

  def test_unlisted_captions_setting_reaches_the_reader(self):
    flickr8k_data.write_dataset(
        self.config.data.flickr8k_dir,
        data=flickr8k_data.DATA | {"u.jpg": (None, ["an unused image"])})
    self.assertEqual(flickr8k.make_datasets(self.config).num_train_pairs, 8)
    self.config.data.unlisted_captions = "error"
    with self.assertRaisesRegex(ValueError, r"unlisted_captions: .*u\.jpg"):
      flickr8k.make_datasets(self.config)

  def test_no_training_images_is_an_error(self):
    data = {"e.jpg": flickr8k_data.DATA["e.jpg"]}
    self.config.data.flickr8k_dir = flickr8k_data.write_dataset(
        tempfile.mkdtemp(dir=self.get_temp_dir()), data=data)
    with self.assertRaisesRegex(ValueError, "no training images"):
      flickr8k.make_datasets(self.config)


if __name__ == "__main__":
  tf.test.main()
