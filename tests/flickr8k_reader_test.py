"""pipelines/flickr8k_reader.py: both layouts, validation, skip mode."""

import json
import os
import tempfile

import tensorflow as tf

from wsram_tf.pipelines import flickr8k_reader
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


  def _append(self, file_name, data: bytes):
    with open(os.path.join(self.root, file_name), "ab") as f:
      f.write(data)

  def test_non_utf8_caption_line_is_named_with_line(self):
    flickr8k_data.write_dataset(self.root)
    self._append("Flickr8k.token.txt", b"a.jpg#2\tcaf\xe9 au lait\n")
    with self.assertRaisesRegex(
        flickr8k_reader.Flickr8kError,
        r"malformed_line: Flickr8k.token.txt:13: not UTF-8: byte 0xe9 at "
        "column 12"):
      flickr8k_reader.read_examples(self.root)

  def test_skip_mode_skips_and_counts_a_non_utf8_line(self):
    flickr8k_data.write_dataset(self.root)
    self._append("Flickr8k.token.txt", b"a.jpg#2\tcaf\xe9 au lait\n")
    with self.assertLogs("absl", "WARNING") as logs:
      examples = flickr8k_reader.read_examples(self.root, skip_bad=True)
    self.assertIn("skipped 1 problems (malformed_line: 1)",
                  "\n".join(logs.output))
    self.assertEqual(
        flickr8k_data.basenames(examples),
        flickr8k_data.basenames(flickr8k_reader.read_examples(
            flickr8k_data.write_dataset(os.path.join(self.root, "clean")))))

  def test_non_utf8_split_list_line_is_named_with_line(self):
    flickr8k_data.write_dataset(self.root)
    self._append("Flickr_8k.devImages.txt", b"\xff\xfeg.jpg\n")
    with self.assertRaisesRegex(
        flickr8k_reader.Flickr8kError,
        r"malformed_line: Flickr_8k.devImages.txt:2: not UTF-8"):
      flickr8k_reader.read_examples(self.root)

  def test_byte_order_marks_are_accepted(self):
    clean = flickr8k_data.basenames(flickr8k_reader.read_examples(
        flickr8k_data.write_dataset(os.path.join(self.root, "clean"))))
    for layout, names in (
        ("original", ["Flickr8k.token.txt"] + list(
            flickr8k_data.LIST_FILES.values())),
        ("karpathy", ["dataset_flickr8k.json"])):
      root = flickr8k_data.write_dataset(os.path.join(self.root, layout),
                                         layout)
      for name in names:
        path = os.path.join(root, name)
        with open(path, "rb") as f:
          data = f.read()
        with open(path, "wb") as f:
          f.write(b"\xef\xbb\xbf" + data)
      self.assertEqual(
          flickr8k_data.basenames(flickr8k_reader.read_examples(root)), clean,
          layout)

  def _write_karpathy(self, mutate):
    """The tiny set in the karpathy layout, its json changed by `mutate`."""
    flickr8k_data.write_dataset(self.root, "karpathy")
    path = os.path.join(self.root, "dataset_flickr8k.json")
    with open(path) as f:
      data = json.load(f)
    mutate(data)
    with open(path, "w") as f:
      json.dump(data, f)
    return path

  def test_malformed_karpathy_fields_are_named_with_entry_and_field(self):
    def set_field(field, value, sentence=None):
      def mutate(data):
        entry = data["images"][1]
        if sentence is not None:
          entry = entry["sentences"][sentence]
        entry[field] = value
      return mutate

    def delete(field):
      return lambda data: data["images"][1].pop(field)

    cases = [
        (lambda d: d["images"].__setitem__(1, "b.jpg"), r"images\[1\]",
         "expected an object, got 'b.jpg'"),
        (delete("filename"), r"images\[1\]\.filename",
         "expected a file name, got nothing"),
        (set_field("filename", 7), r"images\[1\]\.filename",
         "expected a file name, got int"),
        (set_field("filename", ["b.jpg"]), r"images\[1\]\.filename",
         "expected a file name, got list"),
        (delete("split"), r"images\[1\]\.split", "expected one of"),
        (set_field("split", ["train"]), r"images\[1\]\.split",
         "expected one of .*got list"),
        (set_field("sentences", "a cat sits"), r"images\[1\]\.sentences",
         "expected a list, got 'a cat sits'"),
        (set_field("sentences", {"raw": "a cat"}), r"images\[1\]\.sentences",
         "expected a list, got dict"),
        (set_field("sentences", None), r"images\[1\]\.sentences",
         "expected a list, got null"),
        (lambda d: d["images"][1]["sentences"].__setitem__(0, "a cat sits"),
         r"images\[1\]\.sentences\[0\]",
         "expected an object, got 'a cat sits'"),
        (set_field("tokens", ["a", 3], sentence=0),
         r"images\[1\]\.sentences\[0\]\.tokens",
         "expected a list of strings, got a list with int"),
        (set_field("tokens", "a cat", sentence=0),
         r"images\[1\]\.sentences\[0\]\.tokens",
         "expected a list of strings, got 'a cat'"),
        (set_field("raw", 12, sentence=1),
         r"images\[1\]\.sentences\[1\]\.raw", "expected a string, got int"),
    ]
    for mutate, where, detail in cases:
      with self.subTest(where=where, detail=detail):
        self._write_karpathy(mutate)
        with self.assertRaisesRegex(
            flickr8k_reader.Flickr8kError,
            f"malformed_line: dataset_flickr8k.json:{where}: {detail}"):
          flickr8k_reader.read_examples(self.root)

  def test_skip_mode_drops_a_malformed_karpathy_sentence_only(self):
    self._write_karpathy(
        lambda d: d["images"][1]["sentences"][0].__setitem__("tokens", [1]))
    self.assertEqual(
        flickr8k_data.basenames(flickr8k_reader.read_examples(
            self.root, skip_bad=True))["train"][1],
        ("b.jpg", ("a cat sitting",)))

  def test_karpathy_json_without_an_images_list_is_named(self):
    for top in ([{"filename": "a.jpg"}], {"image": []}, {"images": {}},
                {"images": "a.jpg"}, 3, None):
      with self.subTest(top=top):
        path = self._write_karpathy(lambda d: None)
        with open(path, "w") as f:
          json.dump(top, f)
        with self.assertRaisesRegex(
            flickr8k_reader.Flickr8kError,
            f"{path}: expected an object with an 'images' list"):
          flickr8k_reader.read_examples(self.root)

  def test_unreadable_karpathy_json_is_named_with_line(self):
    path = self._write_karpathy(lambda d: None)
    for data, message in (
        (b'{"images": [\n  {"filename": "a\xe9.jpg"}]}',
         "2: not UTF-8: byte 0xe9"),
        (b'{"images": [\n\n  {"filename": }]}',
         "3: not valid JSON: Expecting value at column 16"),
        (b'{"images": [\n  {"filename": ' + b"9" * 5000 + b"}]}",
         " not valid JSON: Exceeds the limit"),
        (b"[" * 100000, " not valid JSON")):
      with self.subTest(message=message):
        with open(path, "wb") as f:
          f.write(data)
        with self.assertRaisesRegex(flickr8k_reader.Flickr8kError,
                                    f"{path}:{message}"):
          flickr8k_reader.read_examples(self.root)

  def test_image_without_captions_names_the_caption_file(self):
    flickr8k_data.write_dataset(
        self.root, data=flickr8k_data.DATA | {"g.jpg": ("test", [])})
    with self.assertRaisesRegex(
        flickr8k_reader.Flickr8kError,
        r"no_captions: Flickr_8k.testImages.txt:2: g\.jpg has no caption in "
        r"Flickr8k.token.txt"):
      flickr8k_reader.read_examples(self.root)


if __name__ == "__main__":
  tf.test.main()
