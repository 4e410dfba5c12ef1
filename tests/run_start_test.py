"""Starts that must fail, and re-runs on other data (issue 19 items 1-6, 8).

One tiny classifier run on a folder of pictures, then what a user does to it:
a start refused for a file that is no image leaves no trace, so the
suggested `skip_bad=True` works in the same directory; a renamed or added
class folder is refused naming it, before anything is written, and the
export still works; a huge PNG is refused from its header, in training and
by `serve_image_bytes` (whose memory stays small); the captioner refuses a
missing image (leaving no trace), empty evaluation splits and an all-<unk>
vocabulary; the export refuses an --export_dir that is a file.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines import image_datasets
from tests import builders
from tests import flickr8k_data
from tests import image_files
from wsram_tf import export
from wsram_tf import run
from wsram_tf import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUGE = 20000  # Sides of the PNG: 400 megapixels, 1.6 GB as float32 if grey.


def grey_png(side: int) -> bytes:
  """A real side x side grey PNG of zeros, compressed row by row (~390 KB
  for 20000): cheap to write, 8 bits x side**2 to decode."""
  deflate = zlib.compressobj(9)
  row = b"\0" * (side + 1)  # Filter byte 0, then the row.
  data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()

  def chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body)))
  return (b"\x89PNG\r\n\x1a\n"
          + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
          + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def snapshot(directory: str) -> dict:
  """{relative path: bytes} of every file under `directory` ({} if none)."""
  files = {}
  for parent, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(parent, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


def images_config(data_dir: str, cache_dir: str, **data):
  """classifier_images_test's tiny config, two steps, no pictures."""
  config = image_files.run_config(
      data_dir, cache_dir, **{"validation_fraction": 0.34, **data})
  config.train.update(num_train_steps=2, steps_per_epoch=2,
                      checkpoint_every_steps=2, glimpse_every_epochs=0)
  return config


def max_rss_mb(script: str, *args) -> tuple[int, str]:
  """Runs `script` in a child; returns (its peak RSS in MB, its stdout).

  VmHWM of /proc, not getrusage: Linux carries ru_maxrss across fork and
  exec, so a child of a large pytest process would report the parent's.
  """
  code = (script + "\nprint('MAXRSS', [int(line.split()[1]) // 1024 for line "
          "in open('/proc/self/status') if line.startswith('VmHWM')][0])\n")
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-c", code, *args], env=env,
                       capture_output=True, text=True, timeout=600, check=True)
  rss = int(out.stdout.rsplit("MAXRSS", 1)[1].split()[0])
  return rss, out.stdout


class ClassifierStartTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
    cls.data_dir = os.path.join(cls.tmp, "images")
    cls.cache = os.path.join(cls.tmp, "cache")
    image_files.write_folder(cls.data_dir, ("cat", "dog"),
                             {"train": 3, "test": 1})
    image_files.write(os.path.join(cls.data_dir, "train", "cat", "notes.jpg"),
                      b"my notes, not a picture")
    cls.workdir = os.path.join(cls.tmp, "run")
    # The first start is refused for notes.jpg, before the work directory
    # exists; the fix it suggests then trains in the same directory.
    with tf.test.TestCase().assertRaisesRegex(
        image_datasets.ImageDataError, "notes.jpg.*skip_bad=True"):
      run.train_and_evaluate(images_config(cls.data_dir, cls.cache),
                             cls.workdir)
    cls.refused_left = os.path.exists(cls.workdir)
    cls.config = images_config(cls.data_dir, cls.cache, skip_bad=True)
    cls.results = run.train_and_evaluate(cls.config, cls.workdir)

  def test_a_refused_start_leaves_nothing_and_its_fix_works_there(self):
    self.assertFalse(self.refused_left)
    self.assertEqual(self.results["num_skipped"], 1)
    with open(os.path.join(self.workdir, "data_fingerprint.json")) as f:
      stored = json.load(f)
    self.assertEqual(stored["classes"], ["cat", "dog"])
    self.assertIn("train/cat/notes.jpg", stored["items"])
    self.assertEqual(
        os.stat(os.path.join(self.workdir, "data_info.json")).st_mode & 0o777,
        os.stat(os.path.join(self.workdir, "config.json")).st_mode & 0o777)

  def _changed_copy(self, change) -> str:
    data = tempfile.mkdtemp(dir=self.tmp)
    shutil.rmtree(data)
    shutil.copytree(self.data_dir, data)
    change(data)
    return data

  def _assert_refused(self, data: str, pattern: str):
    before = snapshot(self.workdir)
    config = images_config(data, self.cache, skip_bad=True)
    config.data.dir = self.data_dir  # The same config: the data moved here.
    os.rename(self.data_dir, self.data_dir + ".orig")
    os.rename(data, self.data_dir)
    try:
      with self.assertRaisesRegex(workdir_lib.WorkdirError, pattern):
        run.train_and_evaluate(config, self.workdir)
    finally:
      os.rename(self.data_dir, data)
      os.rename(self.data_dir + ".orig", self.data_dir)
    self.assertEqual(snapshot(self.workdir), before)

  def test_a_renamed_class_is_refused_before_anything_is_written(self):
    def rename(data):
      for split in ("train", "test"):
        os.rename(os.path.join(data, split, "cat"),
                  os.path.join(data, split, "zebra"))
    self._assert_refused(self._changed_copy(rename),
                         r"classes renamed: 'cat' -> 'zebra'.*new --workdir")

  def test_an_added_class_is_refused_and_the_export_still_works(self):
    def add(data):
      image_files.write_folder(data, ("eel",), {"train": 3, "test": 1},
                               seed=5)
    self._assert_refused(self._changed_copy(add),
                         r"classes added: 'eel'.*files added")
    out_dir = os.path.join(self.tmp, "exported")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-m", "wsram_tf.export",
                    f"--workdir={self.workdir}", f"--export_dir={out_dir}"],
                   env=env, check=True, capture_output=True, timeout=600)
    with open(os.path.join(out_dir, "export_info.json")) as f:
      self.assertEqual(json.load(f)["class_names"], ["cat", "dog"])

  def test_a_file_as_export_dir_is_refused_untouched(self):
    notes = os.path.join(self.tmp, "notes.txt")
    with open(notes, "w") as f:
      f.write("keep me")
    with self.assertRaisesRegex(FileExistsError, "notes.txt.*is a file"):
      export.export_from_workdir(self.workdir, notes)
    with open(notes) as f:
      self.assertEqual(f.read(), "keep me")
    self.assertEqual(os.listdir(self.tmp).count(".notes.txt.tmp"), 0)

  def test_a_huge_png_is_refused_from_its_header_in_training(self):
    def add_huge(data):
      os.remove(os.path.join(data, "train", "cat", "notes.jpg"))
      image_files.write(os.path.join(data, "train", "dog", "huge.png"),
                        grey_png(HUGE))
    data = self._changed_copy(add_huge)
    rss, out = max_rss_mb(
        "import sys\n"
        "from wsram_tf.pipelines import image_folder, image_datasets\n"
        "from tests import image_files\n"
        "config = image_files.config(dir=sys.argv[1], cache_dir=sys.argv[2])\n"
        "try:\n"
        "  image_folder.make_datasets(config)\n"
        "except image_datasets.ImageDataError as e:\n"
        "  print('REFUSED', e)\n"
        "config.data.skip_bad = True\n"
        "print('SKIPPED', image_folder.make_datasets(config).skipped)\n",
        data, os.path.join(self.tmp, "huge_cache"))
    self.assertLess(rss, 2000)  # Decoded, the PNG alone would be 2 GB.
    self.assertRegex(out, "REFUSED .*huge.png: refused before decoding")
    self.assertRegex(out, "SKIPPED .*huge.png")
    with self.assertRaisesRegex(image_datasets.ImageDataError,
                                r"huge.png: refused before decoding: 20000 x "
                                r"20000 .*max_image_pixels=50000000"):
      config = images_config(data, os.path.join(self.tmp, "huge_cache"))
      run.train_and_evaluate(config, os.path.join(self.tmp, "huge_run"))
    self.assertFalse(os.path.exists(os.path.join(self.tmp, "huge_run")))

  def test_serving_refuses_huge_and_wrong_inputs_naming_them(self):
    small = image_files.png(image_files.pattern(10, 12, 3, seed=0))
    huge = os.path.join(self.tmp, "huge.png")
    with open(huge, "wb") as f:
      f.write(grey_png(HUGE))
    rss, out = max_rss_mb(
        "import sys\nimport tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures["
        "'serve_image_bytes']\n"
        "small = tf.io.read_file(sys.argv[2])\n"
        "print('OK', serve(image_bytes=tf.stack([small]))['probabilities']"
        ".shape)\n"
        "for name, batch in (('huge', tf.stack([small, tf.io.read_file("
        "sys.argv[3])])), ('text', tf.constant([b'hello', b'x'])), "
        "('scalar', small)):\n"
        "  try:\n"
        "    serve(image_bytes=batch)\n"
        "  except tf.errors.InvalidArgumentError as e:\n"
        "    print(name.upper(), e.message.replace('\\n', ' '))\n",
        os.path.join(self.workdir, "export"),
        image_files.write(os.path.join(self.tmp, "small.png"), small), huge)
    self.assertIn("OK (1, 2)", out)
    # tf.debugging.Assert prints each of its pieces in brackets.
    self.assertRegex(out, r"HUGE .*image\] \[1\] \[of the batch declares\] "
                          r"\[20000\] \[x\] \[20000\].*\[50000000\]")
    self.assertRegex(out, r"TEXT .*image\] \[0\] \[of the batch is not a JPEG")
    self.assertRegex(out, r"SCALAR .*must be a string vector")
    # TF and the SavedModel take ~1.2 GB; decoding would add 2 GB.
    self.assertLess(rss, 2000)


class SeedTest(tf.test.TestCase):

  def test_a_seed_out_of_range_is_refused_naming_it_before_any_write(self):
    workdir = os.path.join(self.get_temp_dir(), "seed_run")
    config = images_config("/nonexistent", "/nonexistent")
    for seed in (-1, 2**32):
      config.seed = seed
      with self.assertRaisesRegex(ValueError, r"config.seed=.*0\.\.4294967295"):
        run.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))


class CaptionerStartTest(tf.test.TestCase):

  def _config(self, root, **write):
    data_dir = flickr8k_data.write_dataset(os.path.join(root, "data"),
                                           **write)
    return builders.caption_run_config(data_dir, os.path.join(root, "cache"),
                                       num_train_steps=2, steps_per_epoch=2)

  def test_a_missing_jpeg_leaves_no_trace_and_skip_bad_works_there(self):
    root = self.create_tempdir().full_path
    config = self._config(root, skip_images=("b.jpg",))
    workdir = os.path.join(root, "work")
    with self.assertRaisesRegex(ValueError, "(?s)missing_image.*skip_bad=True"):
      run.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))
    config.data.skip_bad = True
    config.train.export = False
    run.train_and_evaluate(config, workdir)
    self.assertTrue(os.path.exists(os.path.join(workdir, "vocab.json")))

  def test_empty_evaluation_splits_are_refused_naming_the_list(self):
    for split, list_file in (("test", "Flickr_8k.testImages.txt"),
                             ("val", "Flickr_8k.devImages.txt")):
      root = self.create_tempdir().full_path
      data = {n: (s if s != split else "train", c)
              for n, (s, c) in flickr8k_data.DATA.items()}
      config = self._config(root, data=data)
      with self.assertRaisesRegex(ValueError,
                                  f"the {split} split has no usable image "
                                  f"\\({list_file}"):
        flickr8k.make_datasets(config)

  def test_a_vocabulary_of_only_unknown_words_is_refused(self):
    config = self._config(self.create_tempdir().full_path)
    config.data.min_word_count = 100000
    with self.assertRaisesRegex(ValueError,
                                "config.data.min_word_count=100000: no word"):
      flickr8k.make_datasets(config)


if __name__ == "__main__":
  tf.test.main()
