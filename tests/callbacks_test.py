"""Callbacks: the classifier's glimpse pictures, gradient variance, epoch
scalars, NaN stop.

Drawing and writing the pictures themselves: tests/pictures_test.py.
"""

import csv
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tests import toy_data
from tests.builders import toy_config
from tests.builders import toy_model
from wsram_tf import callbacks
from wsram_tf.classifier import pictures


def read_events(logdir: str) -> dict:
  """{tag: [(step, plugin name, value ndarray)]} from logdir's event files."""
  events = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(logdir, "events.out.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        events.setdefault(value.tag, []).append(
            (event.step, value.metadata.plugin_data.plugin_name,
             tf.make_ndarray(value.tensor)))
  return events


def toy_batches(num: int, batch: int = 8, seed: int = 0) -> tf.data.Dataset:
  images, labels = toy_data.corner_patterns(num * batch, seed=seed)
  return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


class GlimpsePicturesTest(tf.test.TestCase):
  """One 3-epoch fit with two callbacks: every epoch, and every 2 epochs."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    images, labels = toy_data.corner_patterns(3, seed=5)
    cls.workdirs = {every: tempfile.mkdtemp() for every in (1, 2)}
    drawers = [pictures.GlimpsePictures(
        images, labels, os.path.join(workdir, "tensorboard"), every,
        class_names=["square", "ring", "cross", "checker"], workdir=workdir)
                for every, workdir in cls.workdirs.items()]
    toy_model("wsram_qc", jit_compile=False).fit(
        toy_batches(1).repeat(), epochs=3, steps_per_epoch=1,
        callbacks=drawers, verbose=0)

  @classmethod
  def tearDownClass(cls):
    for workdir in cls.workdirs.values():
      shutil.rmtree(workdir)
    super().tearDownClass()

  def test_writes_png_files_every_epoch(self):
    names = sorted(os.listdir(os.path.join(self.workdirs[1], "glimpses")))
    self.assertEqual(names, [f"epoch_{e:04d}_img_{k:02d}.png"
                             for e in (1, 2, 3) for k in range(3)])
    png = tf.io.decode_png(tf.io.read_file(
        os.path.join(self.workdirs[1], "glimpses", names[0])))
    self.assertEqual(png.shape[-1], 3)

  def test_writes_tensorboard_images_every_epoch(self):
    images = read_events(os.path.join(self.workdirs[1], "tensorboard",
                                      "glimpses"))
    self.assertEqual([(step, plugin) for step, plugin, _ in images["glimpses"]],
                     [(1, "images"), (2, "images"), (3, "images")])
    # An image summary holds width, height, then one encoded PNG per picture.
    self.assertLen(images["glimpses"][0][2], 2 + 3)

  def test_draws_at_train_end_when_the_last_epoch_was_not_due(self):
    names = os.listdir(os.path.join(self.workdirs[2], "glimpses"))
    self.assertEqual(sorted({n[:10] for n in names}),
                     ["epoch_0002", "epoch_0003"])


class GradientVarianceTest(tf.test.TestCase):

  def test_logs_positive_finite_values_every_n_steps(self):
    workdir = self.create_tempdir().full_path
    logdir = os.path.join(workdir, "tensorboard")
    images, labels = toy_data.corner_patterns(8, seed=3)
    callback = callbacks.GradientVariance(images, labels, every_steps=2,
                                          draws=3, logdir=logdir,
                                          workdir=workdir)
    toy_model("wsram_qc", jit_compile=False).fit(
        toy_batches(1).repeat(), epochs=1, steps_per_epoch=5,
        callbacks=[callback], verbose=0)
    self.assertEqual([m.step for m in callback.measurements], [2, 4])
    values = np.array([[m.theta, m.eta] for m in callback.measurements])
    self.assertTrue(np.all(np.isfinite(values)) and np.all(values > 0), values)
    with open(os.path.join(workdir, "grad_variance.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertAllClose([[float(r["theta"]), float(r["eta"])] for r in rows],
                        values)
    events = read_events(os.path.join(logdir, "diagnostics"))
    for name in ("grad_var_theta", "grad_var_eta"):
      self.assertEqual([step for step, _, _ in events[name]], [2, 4])

  def test_a_baseline_reduces_the_variance_of_var(self):
    """VAR+c's theta gradients vary less than VAR's at the same parameters.

    Same seed: the two models share every theta variable but VAR+c's baseline
    head. An untrained baseline (about 0, while log p(y|a) is about -log 4)
    centres nothing, and at init both measure the same (ratio 0.98-1.02 over
    4 seeds); so the baseline is first set to what training drives it to, the
    mean log-likelihood on this batch. Then the REINFORCE term's reward is
    centred and the variance drops ~100x (90-220x measured, 4 seeds x 2).
    """
    images, labels = toy_data.corner_patterns(16)
    var, var_c = toy_model("var"), toy_model("var_c")
    for a, b in zip(var.theta_variables, var_c.theta_variables):
      self.assertAllEqual(a, b)  # Baseline head variables come last.
    rollout = var_c.rollout(images, labels, 2, seed=[1, 2])
    head = var_c.baseline_head
    head.kernel.assign(tf.zeros_like(head.kernel))
    head.bias.assign([tf.reduce_mean(rollout.log_likelihood)])
    measured = {}
    for name, model in (("var", var), ("var_c", var_c)):
      callback = callbacks.GradientVariance(
          images, labels, every_steps=1, draws=8,
          logdir=self.create_tempdir().full_path, jit_compile=False)
      callback.set_model(model)
      measured[name] = callback.measure(step=0).theta
    self.assertGreater(measured["var"], 5 * measured["var_c"], measured)


class EpochScalarsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.logdir = tempfile.mkdtemp()
    model = toy_model("var_c", jit_compile=False)
    model.fit(toy_batches(2).repeat(), epochs=2, steps_per_epoch=2,
              validation_data=toy_batches(1, seed=9),
              callbacks=[callbacks.EpochScalars(
                  cls.logdir, toy_config("var_c", jit_compile=False))],
              verbose=0)
    cls.events = read_events(cls.logdir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.logdir)
    super().tearDownClass()

  def test_every_epoch_log_value_is_a_scalar_at_the_update_count(self):
    for name in ("loss", "bound", "ess", "train_error", "baseline_loss",
                 "val_error", "val_log_likelihood"):
      summaries = self.events[f"epoch/{name}"]
      self.assertEqual([(s, p) for s, p, _ in summaries],
                       [(2, "scalars"), (4, "scalars")], name)
      self.assertTrue(np.isfinite(summaries[-1][2]), name)

  def test_config_is_written_as_text_and_hparams(self):
    (_, plugin, text), = self.events["config"]
    self.assertEqual(plugin, "text")
    self.assertIn(b'"model.hidden_size": 64', text.item())
    self.assertIn("hparams", {p for values in self.events.values()
                              for _, p, _ in values})


class StopOnNonFiniteTest(tf.test.TestCase):
  """Batch index 2 holds NaN images: update 3 turns loss and weights NaN."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.checkpoint = os.path.join(tempfile.mkdtemp(), "last.weights.h5")
    images, labels = toy_data.corner_patterns(32)
    images[16:24] = np.nan
    cls.model = toy_model("wsram_qc", jit_compile=False)
    try:
      cls.model.fit(
          images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0,
          callbacks=[callbacks.StopOnNonFinite(),
                     keras.callbacks.ModelCheckpoint(
                         cls.checkpoint, save_weights_only=True,
                         save_freq=1)])
      cls.error = None
    except callbacks.NonFiniteLossError as e:
      cls.error = e

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(os.path.dirname(cls.checkpoint))
    super().tearDownClass()

  def test_error_names_the_metric_and_the_step(self):
    self.assertIsNotNone(self.error)
    self.assertIn("loss=nan", str(self.error))
    self.assertIn("training step 3", str(self.error))
    self.assertTrue(self.model.stop_training)

  def test_last_checkpoint_predates_the_nan(self):
    poisoned = self.model.get_weights()
    self.assertFalse(all(np.all(np.isfinite(w)) for w in poisoned))
    restored = toy_model("wsram_qc", jit_compile=False)
    restored.load_weights(self.checkpoint)
    for weight in restored.get_weights():
      self.assertTrue(np.all(np.isfinite(weight)))


if __name__ == "__main__":
  tf.test.main()
