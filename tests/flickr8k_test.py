"""pipelines/flickr8k.py: layouts, validation, vocabulary, feature cache."""

import json
import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from configs import captions as caption_configs
from pipelines import flickr8k
from wsram_tf import feature_pyramid

# name -> (split, raw captions). "zebra" is only in val/test captions.
DATA = {
    "a.jpg": ("train", ["A dog runs.", "The dog is running!"]),
    "b.jpg": ("train", ["A cat sits", "a CAT, sitting"]),
    "c.jpg": ("train", ["a dog and a cat", "two animals"]),
    "d.jpg": ("train", ["A red ball", "a ball on the grass"]),
    "e.jpg": ("val", ["a zebra runs", "a striped horse"]),
    "f.jpg": ("test", ["a zebra sits", "a dog sits"]),
}
LIST_FILES = {"train": "Flickr_8k.trainImages.txt",
              "val": "Flickr_8k.devImages.txt",
              "test": "Flickr_8k.testImages.txt"}


def _jpeg(seed: int) -> bytes:
  image = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), np.uint8)
  return tf.io.encode_jpeg(image).numpy()


def write_dataset(root: str, layout: str = "original",
                  data: dict | None = None, token_lines=(),
                  skip_images=()) -> str:
  """Writes `data` in a Flickr8k layout; `token_lines` are extra raw lines."""
  data = DATA if data is None else data
  os.makedirs(os.path.join(root, "Flicker8k_Dataset"), exist_ok=True)
  for i, name in enumerate(data):
    if name not in skip_images:
      with open(os.path.join(root, "Flicker8k_Dataset", name), "wb") as f:
        f.write(_jpeg(i))
  if layout == "original":
    for split, file_name in LIST_FILES.items():
      with open(os.path.join(root, file_name), "w") as f:
        f.writelines(f"{n}\n" for n, (s, _) in data.items() if s == split)
    with open(os.path.join(root, "Flickr8k.token.txt"), "w") as f:
      for name, (_, caps) in data.items():
        f.writelines(f"{name}#{k}\t{c}\n" for k, c in enumerate(caps))
      f.writelines(f"{line}\n" for line in token_lines)
  else:
    images = [{"filename": n, "split": "restval" if n == "d.jpg" else s,
               "sentences": [{"raw": c, "tokens": c.lower().split()}
                             for c in caps]} for n, (s, caps) in data.items()]
    with open(os.path.join(root, "dataset_flickr8k.json"), "w") as f:
      json.dump({"images": images, "dataset": "flickr8k"}, f)
  return root


def tiny_config(data_dir: str, cache_dir: str):
  config = caption_configs.get_config("wsram_q,tiny")
  config.data.flickr8k_dir = data_dir
  config.data.cache_dir = cache_dir
  config.backbone.image_size = 32
  config.data.max_caption_length = 6
  config.train.batch_size = 4
  config.eval.batch_size = 4
  return config


def _basenames(examples):
  return {s: [(os.path.basename(e.image_path), e.captions) for e in v]
          for s, v in examples.items()}


class ReadExamplesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(dir=self.get_temp_dir())

  def test_both_layouts_parse_to_the_same_examples(self):
    write_dataset(self.root, "original")
    write_dataset(self.root, "karpathy")
    original = flickr8k.read_examples(self.root, layout="original")
    karpathy = flickr8k.read_examples(self.root, layout="karpathy")
    self.assertEqual(original, karpathy)
    self.assertEqual([len(original[s]) for s in flickr8k.SPLITS], [4, 1, 1])

  def test_layout_is_detected_from_the_files(self):
    for layout in ("original", "karpathy"):
      root = write_dataset(os.path.join(self.root, layout), layout)
      self.assertEqual(flickr8k.scan(root).layout, layout)

  def test_captions_are_normalised(self):
    examples = flickr8k.read_examples(write_dataset(self.root))
    self.assertEqual(_basenames(examples)["train"][:2], [
        ("a.jpg", ("a dog runs", "the dog is running")),
        ("b.jpg", ("a cat sits", "a cat sitting"))])

  def test_missing_image_is_named_with_its_list_line(self):
    write_dataset(self.root, skip_images=("c.jpg",))
    with self.assertRaisesRegex(
        ValueError, r"(?s)1 problems.*missing_image: "
        r"Flickr_8k.trainImages.txt:3: .*c\.jpg not found"):
      flickr8k.read_examples(self.root)

  def test_unreadable_jpeg_is_named(self):
    write_dataset(self.root)
    with open(os.path.join(self.root, "Flicker8k_Dataset", "e.jpg"), "wb") as f:
      f.write(b"\xff\xd8 not really a jpeg")
    with self.assertRaisesRegex(ValueError, r"corrupt_image: .*e\.jpg"):
      flickr8k.read_examples(self.root)

  def test_truncated_jpeg_is_named(self):
    write_dataset(self.root)
    path = os.path.join(self.root, "Flicker8k_Dataset", "a.jpg")
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(ValueError, r"corrupt_image: .*a\.jpg"):
      flickr8k.read_examples(self.root)

  def test_captions_for_unlisted_image_are_named_with_line(self):
    write_dataset(self.root, token_lines=["zz.jpg#0\ta lost image"])
    with self.assertRaisesRegex(
        ValueError, r"unlisted_captions: Flickr8k.token.txt:13: .*zz\.jpg"):
      flickr8k.read_examples(self.root)

  def test_empty_caption_is_named_with_line(self):
    write_dataset(self.root, token_lines=["a.jpg#2\t . !"])
    with self.assertRaisesRegex(
        ValueError, r"empty_caption: Flickr8k.token.txt:13: .*a\.jpg"):
      flickr8k.read_examples(self.root)

  def test_malformed_token_line_is_named_with_line(self):
    write_dataset(self.root, token_lines=["a.jpg a caption without a tab"])
    with self.assertRaisesRegex(
        ValueError, r"malformed_line: Flickr8k.token.txt:13"):
      flickr8k.read_examples(self.root)

  def test_malformed_karpathy_entry_is_named(self):
    write_dataset(self.root, "karpathy")
    path = os.path.join(self.root, "dataset_flickr8k.json")
    with open(path) as f:
      data = json.load(f)
    data["images"][1]["split"] = "holdout"
    with open(path, "w") as f:
      json.dump(data, f)
    with self.assertRaisesRegex(
        ValueError, r"malformed_line: dataset_flickr8k.json:images\[1\]"):
      flickr8k.read_examples(self.root)

  def test_unset_directory_points_to_the_generator(self):
    with self.assertRaisesRegex(ValueError, "flickr8k_dir.*synthetic_captions"):
      flickr8k.read_examples("")

  def test_error_gives_total_and_first_ten(self):
    data = {f"{i:02d}.jpg": ("train", ["a caption"]) for i in range(12)}
    write_dataset(self.root, data=data, skip_images=tuple(data))
    with self.assertRaises(ValueError) as raised:
      flickr8k.read_examples(self.root)
    message = str(raised.exception)
    self.assertIn("12 problems (missing_image: 12)", message)
    self.assertEqual(message.count("not found"), 10)
    self.assertIn("skip_bad=True", message)

  def test_skip_mode_drops_offenders_and_logs_counts(self):
    write_dataset(self.root, skip_images=("c.jpg",),
                  token_lines=["zz.jpg#0\tlost", "a.jpg#2\t!", "bad line"])
    with open(os.path.join(self.root, "Flicker8k_Dataset", "e.jpg"), "wb") as f:
      f.write(b"garbage")
    with self.assertLogs("absl", "WARNING") as logs:
      examples = flickr8k.read_examples(self.root, skip_bad=True)
    self.assertIn("skipped 5 problems (malformed_line: 1, unlisted_captions: "
                  "1, empty_caption: 1, missing_image: 1, corrupt_image: 1)",
                  "\n".join(logs.output))
    names = _basenames(examples)
    self.assertEqual([n for n, _ in names["train"]],
                     ["a.jpg", "b.jpg", "d.jpg"])
    self.assertEqual(names["val"], [])
    self.assertLen(names["train"][0][1], 2)  # The empty caption is dropped.


class VocabularyTest(tf.test.TestCase):

  def test_built_from_training_captions_only(self):
    examples = flickr8k.read_examples(
        write_dataset(tempfile.mkdtemp(dir=self.get_temp_dir())))
    vocab = flickr8k.Vocabulary.build(
        (c for e in examples["train"] for c in e.captions), min_count=1)
    self.assertIn("dog", vocab.ids)
    self.assertNotIn("zebra", vocab.ids)
    self.assertEqual(vocab.words[:4], ("<pad>", "<start>", "<end>", "<unk>"))
    self.assertEqual(vocab.encode("a zebra", 5)[2], vocab.UNK)

  def test_min_count_maps_rare_words_to_unk(self):
    vocab = flickr8k.Vocabulary.build(["a dog", "a cat", "a dog"], min_count=2)
    self.assertEqual(vocab.words[4:], ("a", "dog"))

  def test_encode_pads_and_truncation_keeps_end(self):
    vocab = flickr8k.Vocabulary.build(["a b c d"], min_count=1)
    self.assertEqual(vocab.encode("a b", 6), [1, 4, 5, 2, 0, 0])
    self.assertEqual(vocab.encode("a b c d", 4), [1, 4, 5, 2])
    self.assertEqual(vocab.decode([1, 4, 5, 2, 6, 0]), "a b")

  def test_save_and_load_round_trip(self):
    vocab = flickr8k.Vocabulary.build(["a dog runs", "a cat"], min_count=1)
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "vocab.json")
    vocab.save(path)
    self.assertEqual(flickr8k.Vocabulary.load(path), vocab)


class FeatureCacheTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.config = tiny_config(write_dataset(os.path.join(root, "data")),
                              os.path.join(root, "cache"))

  def _make(self, config=None):
    with mock.patch.object(feature_pyramid, "build_feature_pyramid",
                           wraps=feature_pyramid.build_feature_pyramid) as cnn:
      datasets = flickr8k.make_datasets(config or self.config)
    return datasets, cnn.call_count

  def test_second_run_reuses_the_cache(self):
    first, built = self._make()
    feature_file = os.path.join(first.cache_dir, "train_features_0",
                                "000000.raw")
    mtime = os.stat(feature_file).st_mtime_ns
    second, rebuilt = self._make()
    self.assertEqual((built, rebuilt), (1, 0))
    self.assertEqual(second.cache_dir, first.cache_dir)
    self.assertEqual(os.stat(feature_file).st_mtime_ns, mtime)

  def test_changed_taps_rebuild_the_features(self):
    self.config.data.feature_cache_dir = os.path.join(
        self.config.data.cache_dir, "fixed")
    self._make()
    self.config.backbone.taps = ("conv1", "conv3")
    datasets, built = self._make()
    self.assertEqual(built, 1)
    self.assertEqual(datasets.feature_shapes, ((16, 16, 16), (4, 4, 64)))

  def test_changed_vocabulary_keeps_the_features(self):
    self._make()
    self.config.data.min_word_count = 2
    datasets, built = self._make()
    self.assertEqual(built, 0)
    self.assertEqual(flickr8k.Vocabulary.load(datasets.vocab_path),
                     datasets.vocab)
    self.assertNotIn("red", datasets.vocab.ids)  # Seen once.

  def test_train_yields_feature_maps_and_padded_ids(self):
    datasets, _ = self._make()
    features, ids = next(iter(datasets.train))
    self.assertEqual(sorted(features), ["features_0", "features_1"])
    self.assertEqual(features["features_0"].shape, (4, 8, 8, 32))
    self.assertEqual(features["features_1"].shape, (4, 4, 4, 64))
    self.assertEqual(ids.shape, (4, 6))
    self.assertAllEqual(ids[:, 0], [flickr8k.Vocabulary.START] * 4)
    self.assertAllEqual(tf.reduce_any(ids == flickr8k.Vocabulary.END, 1),
                        [True] * 4)
    self.assertEqual(datasets.num_train_pairs, 8)

  def test_cached_features_are_the_cnn_features(self):
    datasets, _ = self._make()
    pyramid = feature_pyramid.build_feature_pyramid("small", "", 32)
    image = tf.io.decode_jpeg(tf.io.read_file(datasets.image_paths["test"][0]))
    expected = pyramid(tf.image.resize(image, (32, 32), antialias=True)[None])
    got = next(iter(datasets.test_features))
    self.assertAllClose(got["features_1"][0], expected[1][0], atol=2e-2,
                        rtol=1e-2)

  def test_evaluation_is_per_image_with_all_references(self):
    datasets, _ = self._make()
    batches = list(datasets.test_features)
    self.assertLen(batches, 1)
    self.assertEqual(batches[0]["features_0"].shape[0], 1)
    self.assertEqual(datasets.test_references, [["a zebra sits", "a dog sits"]])
    self.assertLen(list(datasets.validation), 1)


class CaptionsConfigTest(tf.test.TestCase):

  def test_every_preset_loads_locked(self):
    for preset in caption_configs.VARIANTS:
      config = caption_configs.get_config(f"{preset},tiny")
      self.assertTrue(config.is_locked)
      self.assertEqual((config.variant, config.backbone.name),
                       (preset, "small"))

  def test_unknown_preset_lists_valid_names(self):
    with self.assertRaisesRegex(ValueError, "'wsram_x'.*var_c.*wsram_qc.*tiny"):
      caption_configs.get_config("wsram_x")


if __name__ == "__main__":
  tf.test.main()
