"""SavedModel export: serves without wsram_tf, matches the Keras model, refuses
wrong input with what it expects, CLI path."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tests import builders
from tests import standalone
from tests import toy_data
from wsram_tf import export
from wsram_tf.classifier import export as classifier_export

IMAGE_SHAPE = (32, 32, 1)

# Runs in a child that cannot import this project (tests/standalone.py).
_CHILD = r"""
import numpy as np
import tensorflow as tf

export_dir, images_path, out_dir = sys.argv[1:]
loaded = tf.saved_model.load(export_dir)
out = loaded.signatures["serve"](images=tf.constant(np.load(images_path)))
for name, value in out.items():
  np.save(f"{out_dir}/{name}.npy", value.numpy())
leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
if leaked:
  raise SystemExit(f"modules leaked into the child: {leaked}")
"""


def trained_looking_model(seed: int = 0):
  """The toy model with random weights: outputs differ between images."""
  model = builders.toy_model("wsram_qc", seed=seed)
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, 0.2, v.shape).astype(np.float32))
  return model


_ALL_SIGNATURES = """
import sys
import numpy as np
import tensorflow as tf
export_dir, images_path = sys.argv[1:]
images = tf.constant(np.load(images_path))
served = tf.saved_model.load(export_dir).signatures
served["serve"](images=images)
served["serve_sampled"](images=images, seed=tf.constant([1, 2]))
png = tf.io.encode_png(tf.cast(images[0] * 255, tf.uint8))
served["serve_image_bytes"](image_bytes=tf.stack([png]))
"""


class ExportedSavedModelTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.model = trained_looking_model()
    cls.images, _ = toy_data.corner_patterns(6)
    cls.export_dir = classifier_export.export_saved_model(
        cls.model, os.path.join(cls.tmp, "export"), IMAGE_SHAPE)
    cls.loaded = tf.saved_model.load(cls.export_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_serve_in_a_process_without_our_package_matches_keras(self):
    work = tempfile.mkdtemp(dir=self.tmp)
    images_path = os.path.join(work, "images.npy")
    np.save(images_path, self.images)
    child = standalone.run(_CHILD, [self.export_dir, images_path, work], work)
    self.assertEqual(child.returncode, 0, child.stderr[-3000:])

    want = self.model.predict_with_trace(self.images, deterministic=True)
    got = {k: np.load(os.path.join(work, f"{k}.npy"))
           for k in ("probabilities", "locations", "scales")}
    self.assertAllClose(got["probabilities"], want.probabilities, atol=1e-6)
    self.assertAllClose(got["locations"], want.locations, atol=1e-6)
    self.assertEqual(got["scales"].dtype, np.int32)
    self.assertAllEqual(got["scales"], want.scales)

  def test_serving_logs_no_grappler_errors(self):
    # TensorFlow's oneDNN remapper used to fail on the recurrent cell's
    # fused pattern at each signature's first call (E-level lines).
    images_path = os.path.join(self.tmp, "quiet_images.npy")
    np.save(images_path, self.images)
    child = subprocess.run(
        [sys.executable, "-c", _ALL_SIGNATURES, self.export_dir, images_path],
        capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0",
                 TF_ENABLE_ONEDNN_OPTS="1"))
    self.assertEqual(child.returncode, 0, child.stderr[-3000:])
    for message in ("remapper failed", "empty op name",
                    "Op type not registered"):
      self.assertNotIn(message, child.stderr)

  def test_sampled_signature_repeats_for_a_seed(self):
    serve = self.loaded.signatures["serve_sampled"]
    first = serve(images=tf.constant(self.images), seed=tf.constant([3, 4]))
    second = serve(images=tf.constant(self.images), seed=tf.constant([3, 4]))
    for name in ("probabilities", "locations", "scales"):
      self.assertAllEqual(first[name], second[name])

  def test_sampled_signature_differs_across_seeds(self):
    serve = self.loaded.signatures["serve_sampled"]
    first = serve(images=tf.constant(self.images), seed=tf.constant([3, 4]))
    other = serve(images=tf.constant(self.images), seed=tf.constant([5, 6]))
    self.assertNotAllClose(first["locations"], other["locations"])
    self.assertNotAllClose(first["probabilities"], other["probabilities"])

  def test_sampled_signature_matches_keras_with_the_same_seed(self):
    seed = tf.constant([7, 8])
    got = self.loaded.signatures["serve_sampled"](
        images=tf.constant(self.images), seed=seed)
    want = self.model.predict_with_trace(
        self.images, self.model.eval_num_samples, False, seed)
    self.assertAllClose(got["probabilities"], want.probabilities, atol=1e-6)
    self.assertAllClose(got["locations"], want.locations, atol=1e-6)
    self.assertAllEqual(got["scales"], want.scales)

  def _refusal(self, images, signature="serve", **inputs):
    with self.assertRaises(tf.errors.InvalidArgumentError) as raised:
      self.loaded.signatures[signature](images=tf.constant(images, tf.float32),
                                        **inputs)
    message = str(raised.exception)
    self.assertIn("images must be float32 [batch, 32, 32, 1] (grey canvases "
                  "of the trained size) with pixels in [0, 1]", message)
    return message

  def test_pixels_in_0_255_are_refused(self):
    message = self._refusal(self.images * 255.0)
    self.assertRegex(message, r"got values from\] \[0\] \[to\] \[255\]")
    self.assertIn("pixels in 0-255? divide by 255", message)
    self._refusal(self.images * 255.0, "serve_sampled",
                  seed=tf.constant([1, 2]))
    self._refusal(np.full([1, 32, 32, 1], np.nan))

  def test_wrong_channels_size_and_rank_are_refused(self):
    rgb = np.repeat(self.images, 3, axis=-1)
    self.assertRegex(self._refusal(rgb), r"got shape\] \[6 32 32 3\]")
    self.assertRegex(self._refusal(np.zeros([2, 64, 64, 1])),
                     r"got shape\] \[2 64 64 1\]")
    self.assertRegex(self._refusal(self.images[0]), r"got shape\] \[32 32 1\]")

  def test_a_batch_of_zero_gives_empty_outputs_of_the_right_shape(self):
    empty = tf.zeros([0, 32, 32, 1])
    classes, steps = toy_data.NUM_CLASSES, self.model.num_glimpses
    for out in (self.loaded.signatures["serve"](images=empty),
                self.loaded.signatures["serve_sampled"](
                    images=empty, seed=tf.constant([1, 2])),
                self.loaded.signatures["serve_image_bytes"](
                    image_bytes=tf.constant([], tf.string))):
      self.assertEqual(out["probabilities"].shape, (0, classes))
      self.assertEqual(out["locations"].shape, (0, steps, 2))
      self.assertEqual(out["scales"].shape, (0, steps))

  def test_image_bytes_are_the_training_canvas(self):
    # A 20 x 12 grey PNG padded onto the 32 x 32 canvas, as the cache does.
    picture = np.zeros([20, 12, 1], np.uint8)
    picture[4:9, 2:7] = 200
    got = self.loaded.signatures["serve_image_bytes"](
        image_bytes=tf.constant([tf.io.encode_png(picture).numpy()]))
    canvas = np.zeros([1, 32, 32, 1], np.float32)
    canvas[0, 6:26, 10:22] = picture.astype(np.float32) / np.float32(255)
    want = self.loaded.signatures["serve"](images=tf.constant(canvas))
    self.assertAllClose(got["probabilities"], want["probabilities"], atol=0)

  def test_export_info_describes_inputs_and_glimpse_geometry(self):
    with open(os.path.join(self.export_dir, "export_info.json")) as f:
      info = json.load(f)
    self.assertEqual(info["input"]["shape"], [None, 32, 32, 1])
    self.assertEqual(info["num_classes"], toy_data.NUM_CLASSES)
    self.assertEqual(info["glimpse"]["scale_factors"], [1, 2])
    self.assertEqual(info["glimpse"]["window_sides"], [8, 16])
    self.assertEqual(info["glimpse"]["num_glimpses"], 2)
    self.assertEqual(info["signatures"]["serve_sampled"]["num_samples"],
                     self.model.eval_num_samples)


class WorkdirTest(tf.test.TestCase):

  def _workdir(self):
    """A training run's files: config.json and final.weights.h5."""
    workdir = self.create_tempdir().full_path
    model = trained_looking_model(seed=1)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(builders.toy_config("wsram_qc", seed=1).to_json_best_effort(
          indent=2))
    model.save_weights(os.path.join(workdir, "final.weights.h5"))
    return workdir, model

  def test_a_run_stored_before_newer_fields_still_exports(self):
    workdir, _ = self._workdir()
    path = os.path.join(workdir, "config.json")
    with open(path) as f:
      stored = json.load(f)
    del stored["train"]["train_error_examples"]  # Added on 2026-12-04.
    with open(path, "w") as f:
      json.dump(stored, f)
    export_dir = export.export_from_workdir(workdir)
    self.assertTrue(os.path.exists(os.path.join(export_dir,
                                                "saved_model.pb")))

  def test_export_from_workdir_writes_savedmodel_and_info(self):
    workdir, _ = self._workdir()
    export_dir = export.export_from_workdir(workdir)
    self.assertEqual(export_dir, os.path.join(workdir, "export"))
    for name in ("saved_model.pb", "export_info.json", "config.json"):
      self.assertTrue(os.path.isfile(os.path.join(export_dir, name)), name)

  def test_load_model_from_workdir_restores_weights_and_tuples(self):
    workdir, original = self._workdir()
    model, config = classifier_export.load_from_workdir(workdir)
    self.assertEqual(config.model.scale_factors, (1, 2))
    images, _ = toy_data.corner_patterns(4)
    self.assertAllClose(
        model.predict_with_trace(images, deterministic=True).probabilities,
        original.predict_with_trace(images, deterministic=True).probabilities)

  def test_missing_weights_error_names_the_file(self):
    workdir, _ = self._workdir()
    os.remove(os.path.join(workdir, "final.weights.h5"))
    with self.assertRaisesRegex(FileNotFoundError, "final.weights.h5"):
      classifier_export.load_from_workdir(workdir)

  def test_corrupt_weights_error_names_the_file(self):
    workdir, _ = self._workdir()
    with open(os.path.join(workdir, "final.weights.h5"), "wb") as f:
      f.write(b"not an hdf5 file")
    with self.assertRaisesRegex(ValueError, "final.weights.h5"):
      classifier_export.load_from_workdir(workdir)

  def test_missing_config_error_names_the_file(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FileNotFoundError, "config.json"):
      classifier_export.load_from_workdir(workdir)


if __name__ == "__main__":
  tf.test.main()
