"""pipelines/flickr8k_reader.py: both layouts, validation, skip mode."""

import json
import os
import tempfile

import tensorflow as tf

from pipelines import flickr8k_reader
from tests import flickr8k_data


class ReadExamplesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(dir=self.get_temp_dir())

  def test_both_layouts_parse_to_the_same_examples(self):
    flickr8k_data.write_dataset(self.root, "original")
    flickr8k_data.write_dataset(self.root, "karpathy")
    original = flickr8k_reader.read_examples(self.root, layout="original")
    karpathy = flickr8k_reader.read_examples(self.root, layout="karpathy")
    self.assertEqual(original, karpathy)
    self.assertEqual([len(original[s]) for s in flickr8k_reader.SPLITS],
                     [4, 1, 1])

  def test_layout_is_detected_from_the_files(self):
    for layout in ("original", "karpathy"):
      root = flickr8k_data.write_dataset(os.path.join(self.root, layout),
                                         layout)
      self.assertEqual(flickr8k_reader.scan(root).layout, layout)

  def test_unknown_layout_is_named(self):
    flickr8k_data.write_dataset(self.root)
    with self.assertRaisesRegex(ValueError,
                                "config.data.layout.*'coco'.*karpathy"):
      flickr8k_reader.read_examples(self.root, layout="coco")

  def test_captions_are_normalised(self):
    examples = flickr8k_reader.read_examples(
        flickr8k_data.write_dataset(self.root))
    self.assertEqual(flickr8k_data.basenames(examples)["train"][:2], [
        ("a.jpg", ("a dog runs", "the dog is running")),
        ("b.jpg", ("a cat sits", "a cat sitting"))])

  def test_missing_image_is_named_with_its_list_line(self):
    flickr8k_data.write_dataset(self.root, skip_images=("c.jpg",))
    with self.assertRaisesRegex(
        ValueError, r"(?s)1 problems.*missing_image: "
        r"Flickr_8k.trainImages.txt:3: .*c\.jpg not found"):
      flickr8k_reader.read_examples(self.root)

  def test_unreadable_jpeg_is_named(self):
    flickr8k_data.write_dataset(self.root)
    with open(os.path.join(self.root, "Flicker8k_Dataset", "e.jpg"), "wb") as f:
      f.write(b"\xff\xd8 not really a jpeg")
    with self.assertRaisesRegex(ValueError, r"corrupt_image: .*e\.jpg"):
      flickr8k_reader.read_examples(self.root)

  def test_truncated_jpeg_is_named(self):
    flickr8k_data.write_dataset(self.root)
    path = os.path.join(self.root, "Flicker8k_Dataset", "a.jpg")
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(data[:len(data) // 2])
    with self.assertRaisesRegex(ValueError, r"corrupt_image: .*a\.jpg"):
      flickr8k_reader.read_examples(self.root)

  def test_captions_for_unknown_image_are_named_with_line(self):
    flickr8k_data.write_dataset(self.root,
                                token_lines=["zz.jpg#0\ta lost image"])
    with self.assertRaisesRegex(
        ValueError, r"unknown_image: Flickr8k.token.txt:13: captions for "
        r"zz\.jpg, which is in no split list and not in .*Flicker8k_Dataset"):
      flickr8k_reader.read_examples(self.root)

  def test_captions_of_unlisted_folder_images_are_dropped_and_logged(self):
    unlisted = {f"u{i}.jpg": (None, ["an unused image"]) for i in range(7)}
    flickr8k_data.write_dataset(self.root,
                                data=flickr8k_data.DATA | unlisted)
    with self.assertLogs("absl", "INFO") as logs:
      examples = flickr8k_reader.read_examples(self.root)
    self.assertIn("dropped the captions of 7 images in the image folder but "
                  "in no split list", "\n".join(logs.output))
    self.assertIn("u0.jpg, u1.jpg, u2.jpg, u3.jpg, u4.jpg, ...",
                  "\n".join(logs.output))
    self.assertEqual(flickr8k_data.basenames(examples),
                     flickr8k_data.basenames(flickr8k_reader.read_examples(
                         flickr8k_data.write_dataset(
                             os.path.join(self.root, "listed_only")))))

  def test_unlisted_captions_error_mode_names_them(self):
    flickr8k_data.write_dataset(
        self.root, data=flickr8k_data.DATA | {"u.jpg": (None, ["unused"])})
    with self.assertRaisesRegex(
        ValueError, r"(?s)1 problems \(unlisted_captions: 1\).*"
        r"unlisted_captions: Flickr8k.token.txt:13: captions for u\.jpg, "
        r"which is in .*Flicker8k_Dataset but in no split list.*"
        r"unlisted_captions=skip"):
      flickr8k_reader.read_examples(self.root, unlisted_captions="error")

  def test_unknown_unlisted_captions_value_is_named(self):
    flickr8k_data.write_dataset(self.root)
    with self.assertRaisesRegex(
        ValueError, r"config.data.unlisted_captions: unknown value 'ignore'; "
        "valid are skip, error"):
      flickr8k_reader.read_examples(self.root, unlisted_captions="ignore")

  def test_empty_caption_is_named_with_line(self):
    flickr8k_data.write_dataset(self.root, token_lines=["a.jpg#2\t . !"])
    with self.assertRaisesRegex(
        ValueError, r"empty_caption: Flickr8k.token.txt:13: .*a\.jpg"):
      flickr8k_reader.read_examples(self.root)

  def test_malformed_token_line_is_named_with_line(self):
    flickr8k_data.write_dataset(
        self.root, token_lines=["a.jpg a caption without a tab"])
    with self.assertRaisesRegex(
        ValueError, r"malformed_line: Flickr8k.token.txt:13"):
      flickr8k_reader.read_examples(self.root)

  def test_duplicate_listing_is_named_with_both_lines(self):
    flickr8k_data.write_dataset(self.root)
    with open(os.path.join(self.root, "Flickr_8k.testImages.txt"), "a") as f:
      f.write("a.jpg\n")
    with self.assertRaisesRegex(
        ValueError, r"duplicate_listing: Flickr_8k.testImages.txt:2: a\.jpg "
        r"already listed at Flickr_8k.trainImages.txt:1"):
      flickr8k_reader.read_examples(self.root)

  def test_malformed_karpathy_entry_is_named(self):
    flickr8k_data.write_dataset(self.root, "karpathy")
    path = os.path.join(self.root, "dataset_flickr8k.json")
    with open(path) as f:
      data = json.load(f)
    data["images"][1]["split"] = "holdout"
    with open(path, "w") as f:
      json.dump(data, f)
    with self.assertRaisesRegex(
        ValueError, r"malformed_line: dataset_flickr8k.json:images\[1\]"):
      flickr8k_reader.read_examples(self.root)

  def test_unset_directory_points_to_the_generator(self):
    with self.assertRaisesRegex(ValueError, "flickr8k_dir.*synthetic_captions"):
      flickr8k_reader.read_examples("")

  def test_error_gives_total_and_first_ten(self):
    data = {f"{i:02d}.jpg": ("train", ["a caption"]) for i in range(12)}
    flickr8k_data.write_dataset(self.root, data=data, skip_images=tuple(data))
    with self.assertRaises(ValueError) as raised:
      flickr8k_reader.read_examples(self.root)
    message = str(raised.exception)
    self.assertIn("12 problems (missing_image: 12)", message)
    self.assertEqual(message.count("not found"), 10)
    self.assertIn("skip_bad=True", message)

  def test_skip_mode_drops_offenders_and_logs_counts(self):
    flickr8k_data.write_dataset(
        self.root, skip_images=("c.jpg",),
        token_lines=["zz.jpg#0\tlost", "a.jpg#2\t!", "bad line"])
    with open(os.path.join(self.root, "Flicker8k_Dataset", "e.jpg"), "wb") as f:
      f.write(b"garbage")
    with self.assertLogs("absl", "WARNING") as logs:
      examples = flickr8k_reader.read_examples(self.root, skip_bad=True)
    self.assertIn("skipped 5 problems (malformed_line: 1, unknown_image: 1, "
                  "empty_caption: 1, missing_image: 1, corrupt_image: 1)",
                  "\n".join(logs.output))
    names = flickr8k_data.basenames(examples)
    self.assertEqual([n for n, _ in names["train"]],
                     ["a.jpg", "b.jpg", "d.jpg"])
    self.assertEqual(names["val"], [])
    self.assertLen(names["train"][0][1], 2)  # The empty caption is dropped.


if __name__ == "__main__":
  tf.test.main()
