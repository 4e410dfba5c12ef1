"""What a run was trained on (issue 19 item 1): the data fingerprint.

A folder read by the real pipeline (pipelines/image_folder.py, through its
decode-once cache) twice, with one change in between chosen by hypothesis:
a file added, removed, renamed or rewritten, or a class folder renamed in
every split. `data_record.differences` must name the change; an untouched
folder must give no difference. The fingerprints of MNIST and of captions
carry checksums and per-image hashes. Derandomized, few examples.
"""

import os
import shutil
import tempfile

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_folder
from wsram_tf.pipelines import mnist_source
from tests import image_files
from wsram_tf import data_record
from wsram_tf import workdir as workdir_lib

_SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                     database=None, suppress_health_check=list(HealthCheck))
CLASSES = ("cat", "dog")
CHANGES = ("none", "add", "remove", "rename", "rewrite", "rename_class")


def _png(seed: int) -> bytes:
  return image_files.png(image_files.pattern(3, 4, 1, seed=seed))


def _write(root: str) -> None:
  for s, split in enumerate(("train", "test")):
    for c, name in enumerate(CLASSES):
      for k in range(3):
        image_files.write(os.path.join(root, split, name, f"{name}{k}.png"),
                          _png(100 * s + 10 * c + k))


def _fingerprint(root: str, cache: str) -> dict:
  config = image_files.config(dir=root, cache_dir=cache, canvas_size=4)
  return image_folder.make_datasets(config).fingerprint


class FingerprintPropertyTest(tf.test.TestCase):

  @_SETTINGS
  @given(st.sampled_from(CHANGES), st.sampled_from(("train", "test")),
         st.sampled_from(CLASSES), st.integers(0, 2))
  def test_every_change_is_named_and_no_change_is_silent(
      self, change, split, class_name, k):
    root = tempfile.mkdtemp()
    try:
      data, cache = os.path.join(root, "data"), os.path.join(root, "cache")
      _write(data)
      before = _fingerprint(data, cache)
      folder = os.path.join(data, split, class_name)
      path = os.path.join(folder, f"{class_name}{k}.png")
      if change == "add":
        image_files.write(os.path.join(folder, "new.png"), _png(999))
      elif change == "remove":
        os.remove(path)
      elif change == "rename":
        os.rename(path, os.path.join(folder, "renamed.png"))
      elif change == "rewrite":
        image_files.write(path, _png(12345))
      elif change == "rename_class":
        for each in ("train", "test"):
          os.rename(os.path.join(data, each, class_name),
                    os.path.join(data, each, "zebra"))
      found = data_record.differences(before, _fingerprint(data, cache))
      text = "; ".join(found)
      if change == "none":
        self.assertEqual(found, [])
      elif change == "rename_class":
        self.assertIn(f"classes renamed: {class_name!r} -> 'zebra'", text)
      else:
        self.assertNotEmpty(found)
        word = {"add": "added", "remove": "removed", "rename": "added",
                "rewrite": "changed"}[change]
        self.assertIn(f"files {word}", text)
        shown = "new.png" if change == "add" else (
            "renamed.png" if change == "rename" else f"{class_name}{k}.png")
        self.assertIn(shown, text)
    finally:
      shutil.rmtree(root, ignore_errors=True)


class FingerprintTest(tf.test.TestCase):

  def test_check_refuses_other_data_naming_it_and_a_new_workdir(self):
    workdir = self.create_tempdir().full_path
    old = {"source": "folder:/d", "classes": ["cat", "dog"],
           "items": {"train/cat/a.png": "1", "train/dog/b.png": "2"}}
    data_record.write(workdir, old)
    data_record.check(workdir, old)  # The same data: no error.
    new = {"source": "folder:/d", "classes": ["cat", "dog", "eel"],
           "items": {**old["items"], "train/eel/c.png": "3"}}
    with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                r"classes added: 'eel'.*1 files added "
                                r"\('train/eel/c.png'\).*new --workdir"):
      data_record.check(workdir, new)

  def test_a_run_without_a_fingerprint_is_checked_by_its_classes(self):
    workdir = self.create_tempdir().full_path
    new = {"classes": ["dog", "zebra"], "items": {"x": "1"}}
    with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                "classes added: 'zebra'.*removed: 'cat'"):
      data_record.check(workdir, new, stored_classes=["cat", "dog"])
    data_record.check(workdir, new, stored_classes=["dog", "zebra"])

  def test_nfc_and_nfd_names_are_told_apart(self):
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    text = "; ".join(data_record.differences(
        {"classes": [nfc, "dog"], "items": {}},
        {"classes": [nfd, "dog"], "items": {}}))
    self.assertIn("cafe\\u0301", text)

  def test_mnist_fingerprint_is_its_checksums(self):
    arrays = mnist_source.MnistArrays(
        np.zeros([2, 28, 28], np.uint8), np.array([0, 1]),
        np.zeros([1, 28, 28], np.uint8), np.array([1]), "idx:/x")
    changed = arrays._replace(test_labels=np.array([2]))
    self.assertEqual(data_record.differences(
        mnist_source.fingerprint(arrays, "01"),
        mnist_source.fingerprint(arrays._replace(source="npz:/y"), "01")), [])
    self.assertIn("'test_labels'", "; ".join(data_record.differences(
        mnist_source.fingerprint(arrays, "01"),
        mnist_source.fingerprint(changed, "01"))))


if __name__ == "__main__":
  tf.test.main()
