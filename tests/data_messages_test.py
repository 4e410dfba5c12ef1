"""The smaller defects of issue 19 item 8: what a folder of images holds
(symlinked sub-folders, broken symlinks) and what the messages say (NFC vs
NFD class names, the validation hint's field, the cosine refusal, EXIF)."""

import json
import os

import ml_collections
import tensorflow as tf

from wsram_tf.configs import images as image_configs
from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import image_folder
from tests import image_files
from wsram_tf import workdir as workdir_lib
from wsram_tf.classifier import task as task_lib


class FolderTest(tf.test.TestCase):

  def _folder(self):
    root = self.create_tempdir().full_path
    data = os.path.join(root, "data")
    image_files.write_folder(data, ("ants", "bees"), {"train": 2, "test": 1})
    return root, data

  def _config(self, root, data, **fields):
    return image_files.config(dir=data, cache_dir=os.path.join(root, "c"),
                              **fields)

  def test_a_symlinked_sub_folder_is_read(self):
    root, data = self._folder()
    elsewhere = os.path.join(root, "more_ants")
    image_files.write(os.path.join(elsewhere, "extra.png"), image_files.png(
        image_files.pattern(8, 8, 3, seed=9)))
    os.symlink(elsewhere, os.path.join(data, "train", "ants", "linked"))
    os.symlink(os.path.join(data, "train", "ants"),
               os.path.join(data, "train", "ants", "loop"))  # Read once.
    datasets = image_folder.make_datasets(self._config(root, data))
    self.assertEqual(datasets.num_train, 5)
    self.assertIn("train/ants/linked/extra.png", datasets.fingerprint["items"])

  def test_a_broken_symlink_is_named_or_skipped(self):
    root, data = self._folder()
    link = os.path.join(data, "train", "bees", "gone.png")
    os.symlink(os.path.join(root, "nowhere.png"), link)
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                "gone.png: a broken symlink.*skip_bad=True"):
      image_folder.make_datasets(self._config(root, data))
    datasets = image_folder.make_datasets(self._config(root, data,
                                                       skip_bad=True))
    self.assertEqual(datasets.skipped, (link,))

  def test_nfc_and_nfd_class_names_are_told_apart(self):
    root = self.create_tempdir().full_path
    data = os.path.join(root, "data")
    image_files.write_folder(data, ("caf\u00e9", "dog"), {"train": 1})
    image_files.write_folder(data, ("cafe\u0301",), {"test": 1})
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                r"decomposed: 'cafe\\u0301'"):
      image_folder.scan(data)

  def test_the_validation_hint_names_fields_the_config_has(self):
    root, data = self._folder()
    config = image_configs.get_config("wsram_qc,tiny")
    config.data.dir, config.data.cache_dir = data, os.path.join(root, "c")
    config.data.canvas_size = 48
    with self.assertRaisesRegex(ValueError, "no validation examples") as e:
      task_lib.make_data(config)
    self.assertIn("config.data.validation_fraction", str(e.exception))
    self.assertNotIn("validation_size", str(e.exception))

  def test_exif_orientation_is_documented(self):
    self.assertIn("EXIF orientation is not applied", image_folder.__doc__)


class CosineRefusalTest(tf.test.TestCase):

  def test_more_steps_are_not_listed_as_safe_under_a_schedule(self):
    workdir = self.create_tempdir().full_path
    old = ml_collections.ConfigDict({"train": {
        "lr_schedule": "cosine", "num_train_steps": 10, "batch_size": 2}})
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(old.to_dict(), f)
    new = ml_collections.ConfigDict(old.to_dict())
    new.train.num_train_steps = 20
    with self.assertRaises(workdir_lib.WorkdirError) as e:
      workdir_lib.check_stored_config(new, workdir)
    self.assertIn("train.num_train_steps: 10 -> 20", str(e.exception))
    self.assertNotIn("more train.num_train_steps", str(e.exception))


if __name__ == "__main__":
  tf.test.main()
