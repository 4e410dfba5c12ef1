"""The classifier on user images, end to end through wsram_tf/run.py.

A tiny folder of generated pictures (PNG, JPEG, BMP, GIF; several sizes;
grey and colour) trains `configs/images.py:wsram_qc,tiny`; its export then
classifies a new image file in a process that cannot import this project,
as the model does on the same canvas. A prepared tfds dataset and cluttered
MNIST train tiny runs too; bad folders stop the run naming what is wrong.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_configs
from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets
from tests import image_files
from tests import standalone
from tests import tfds_files
from tests import toy_data
from wsram_tf import export
from wsram_tf import run
from wsram_tf.classifier import export as classifier_export

CLASSES = ("ants", "bees", "cats")
SPLITS = {"train": 6, "validation": 2, "test": 2}

# Runs in a child that cannot import this project (tests/standalone.py).
_CHILD = r"""
import json
import numpy as np
import tensorflow as tf

export_dir, image_path, out_dir = sys.argv[1:]
loaded = tf.saved_model.load(export_dir)
with open(image_path, "rb") as f:
  contents = f.read()
serve = loaded.signatures["serve_image_bytes"]
out = serve(image_bytes=tf.constant([contents]))
np.save(f"{out_dir}/probabilities.npy", out["probabilities"].numpy())
with open(f"{export_dir}/export_info.json") as f:
  names = json.load(f)["class_names"]
print("class:", names[int(np.argmax(out["probabilities"][0]))])
"""


images_config = image_files.run_config


class ImageFolderRunTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.data_dir = os.path.join(cls.tmp, "images")
    image_files.write_folder(cls.data_dir, CLASSES, SPLITS)
    image_files.write(os.path.join(cls.data_dir, "train", "bees", "torn.png"),
                      b"\x89PNG\r\n\x1a\n not really")
    cls.workdir = os.path.join(cls.tmp, "run")
    cls.config = images_config(cls.data_dir, os.path.join(cls.tmp, "cache"),
                               skip_bad=True)
    cls.results = run.train_and_evaluate(cls.config, cls.workdir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_results_record_classes_source_and_skipped_files(self):
    with open(os.path.join(self.workdir, "results.json")) as f:
      results = json.load(f)
    self.assertEqual(results["class_names"], list(CLASSES))
    self.assertEqual(results["num_skipped"], 1)
    self.assertEqual(results["data_source"], f"folder:{self.data_dir}")
    self.assertEqual(results["train_steps"], 4)
    with open(os.path.join(self.workdir, "data_info.json")) as f:
      info = json.load(f)
    self.assertEqual(info["image_shape"], [48, 48, 3])
    self.assertEqual(info["skipped"],
                     [os.path.join(self.data_dir, "train", "bees", "torn.png")])

  def test_export_records_classes_and_its_config_the_resolved_count(self):
    export_dir = os.path.join(self.workdir, "export")
    with open(os.path.join(export_dir, "export_info.json")) as f:
      info = json.load(f)
    self.assertEqual(info["class_names"], list(CLASSES))
    self.assertEqual(info["input"]["shape"], [None, 48, 48, 3])
    self.assertEqual(info["image_bytes"]["preprocessing"]["resize"], "pad")
    with open(os.path.join(export_dir, "config.json")) as f:
      self.assertEqual(json.load(f)["model"]["num_classes"], 3)

  def test_export_command_rebuilds_the_run_from_its_data_info(self):
    export_dir = export.export_from_workdir(
        self.workdir, os.path.join(self.tmp, "again"), weights="best")
    with open(os.path.join(export_dir, "export_info.json")) as f:
      info = json.load(f)
    self.assertEqual((info["class_names"], info["input"]["shape"]),
                     (list(CLASSES), [None, 48, 48, 3]))

  def test_export_classifies_a_new_image_file_without_our_package(self):
    # A size and format mix no training file had: colour JPEG, 33 x 57.
    picture = image_files.pattern(33, 57, 3, seed=99)
    image_path = image_files.write(os.path.join(self.tmp, "new", "x.jpg"),
                                   image_files.jpeg(picture))
    work = tempfile.mkdtemp(dir=self.tmp)
    child = standalone.run(_CHILD, [os.path.join(self.workdir, "export"),
                                    image_path, work], work)
    self.assertEqual(child.returncode, 0, child.stderr[-3000:])
    served = np.load(os.path.join(work, "probabilities.npy"))

    with open(image_path, "rb") as f:
      canvas = image_cache.to_canvas(
          f.read(), image_cache.settings_from_config(self.config.data))
    model, _ = classifier_export.load_from_workdir(self.workdir)
    want = model.predict_with_trace(
        tf.constant(canvas[None], tf.float32) / 255.0, deterministic=True)
    self.assertAllClose(served, want.probabilities, atol=1e-6)
    self.assertIn(child.stdout.split("class: ")[-1].strip(), CLASSES)


class OtherSourcesRunTest(tf.test.TestCase):

  def test_tfds_dataset_trains_with_its_class_names(self):
    tmp = self.create_tempdir().full_path
    data_dir = tfds_files.prepare(os.path.join(tmp, "tfds"),
                                  {"train": 12, "test": 6})
    config = images_config("", os.path.join(tmp, "cache"), name="tfds_images",
                           tfds_name=tfds_files.NAME, tfds_data_dir=data_dir,
                           validation_fraction=0.25)
    config.train.export = False
    config.train.glimpse_every_epochs = 0
    results = run.train_and_evaluate(config, os.path.join(tmp, "run"))
    self.assertEqual(results["class_names"], list(tfds_files.CLASSES))
    self.assertTrue(results["data_source"].startswith("tfds:"))
    self.assertEqual((results["train_steps"], results["num_test"]), (4, 6))

  def test_cluttered_mnist_trains_with_digit_names(self):
    tmp = self.create_tempdir().full_path
    toy_data.write_idx_dir(tmp, toy_data.random_mnist_arrays(40, 12))
    config = mnist_configs.get_config("var_c,cluttered60,tiny")
    config.data.mnist_dir = tmp
    config.data.validation_size = 8
    config.train.jit_compile = False
    config.train.export = False
    config.train.glimpse_every_epochs = 0
    results = run.train_and_evaluate(config, os.path.join(tmp, "run"))
    self.assertEqual(results["class_names"], [str(d) for d in range(10)])
    self.assertEqual((results["train_steps"], results["num_skipped"]), (4, 0))
    self.assertFalse(np.isnan(results["test_log_likelihood"]))


class BadFolderRunTest(tf.test.TestCase):
  """Issue 11's bad input: the run stops at the data, naming file/folder."""

  def setUp(self):
    super().setUp()
    self.tmp = self.create_tempdir().full_path
    self.data_dir = os.path.join(self.tmp, "images")
    image_files.write_folder(self.data_dir, CLASSES, SPLITS)

  def _run(self, **data):
    config = images_config(self.data_dir, os.path.join(self.tmp, "cache"),
                           **data)
    return run.train_and_evaluate(config, os.path.join(self.tmp, "run"))

  def _error(self, pattern: str, error=image_datasets.ImageDataError):
    with self.assertRaisesRegex(error, pattern) as raised:
      self._run()
    return str(raised.exception)

  def test_undecodable_file_is_named(self):
    path = image_files.write(
        os.path.join(self.data_dir, "test", "ants", "bad.jpg"), b"no jpeg")
    self.assertIn("skip_bad", self._error(path))

  def test_empty_class_folder_is_named(self):
    folder = os.path.join(self.data_dir, "validation", "bees")
    shutil.rmtree(folder)
    os.makedirs(folder)
    self._error(f"{folder}: empty class folder")

  def test_class_in_test_missing_from_train_is_named(self):
    image_files.write(os.path.join(self.data_dir, "test", "dogs", "d.png"),
                      image_files.png(image_files.pattern(8, 8, 3, 0)))
    self._error("test/dogs: class 'dogs' has no folder in .*train")

  def test_one_class_folder_is_refused(self):
    for name in CLASSES[1:]:
      for split in SPLITS:
        shutil.rmtree(os.path.join(self.data_dir, split, name))
    self._error("train: one class folder \\('ants'\\)")

  def test_no_validation_image_names_the_fields(self):
    shutil.rmtree(os.path.join(self.data_dir, "validation"))
    # 10% of 6 train images per class holds out none.
    with self.assertRaisesRegex(ValueError, "no validation examples.*"
                                "config.data.validation_fraction"):
      self._run(validation_fraction=0.1)

  def test_num_classes_smaller_than_the_labels_names_the_field(self):
    with self.assertRaisesRegex(ValueError, "config.model.num_classes=2 is "
                                "smaller than the 3 classes.*ants, bees"):
      config = images_config(self.data_dir, os.path.join(self.tmp, "cache"))
      config.model.num_classes = 2
      run.train_and_evaluate(config, os.path.join(self.tmp, "run"))


if __name__ == "__main__":
  tf.test.main()
