"""The Python API keeps Keras' contracts (issue 18): plain constructor
arguments, .keras files, compile() defaults, evaluate's names, weights,
label forms, predict, export and presets. One behaviour per test."""

import inspect
import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import wsram_tf
from tests import toy_data
from wsram_tf import variants
from wsram_tf.classifier import model as model_lib
from wsram_tf.classifier import presets
from wsram_tf.configs import classifier as classifier_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(num_classes=4, num_glimpses=2, patch_size=8,
             scale_factors=(1, 2), context_size=4, hidden_size=16,
             label_embedding_size=4, num_samples=2, eval_num_samples=2)


def small(variant="wsram_qc", compile_kwargs=None, **overrides):
  """A small compiled classifier for toy_data's 32x32 canvases; the same
  initial weights at every call (Keras' global seed fixes them)."""
  keras.utils.set_random_seed(0)
  model = wsram_tf.GlimpseClassifier(**{**SMALL, "variant": variant,
                                        **overrides})
  model.compile(**{"jit_compile": False, **(compile_kwargs or {})})
  return model


def data(num=32, seed=0):
  return toy_data.corner_patterns(num, seed=seed)


def weights_equal(a, b) -> bool:
  return all(np.array_equal(x, y)
             for x, y in zip(a.get_weights(), b.get_weights()))


class ConstructionTest(parameterized.TestCase, tf.test.TestCase):

  def test_builds_from_plain_arguments(self):
    model = wsram_tf.GlimpseClassifier(num_classes=10, variant="var_c",
                                       num_glimpses=6)
    self.assertEqual((model.variant.name, model.num_glimpses,
                      model.num_classes), ("var_c", 6, 10))

  def test_every_config_field_is_a_keyword_with_the_configs_default(self):
    config = classifier_configs.defaults()
    arguments = presets.model_arguments(config, num_classes=3)
    parameters = inspect.signature(model_lib.GlimpseClassifier).parameters
    self.assertContainsSubset(set(arguments), set(parameters))
    for name, value in arguments.items():
      if name != "num_classes":
        self.assertEqual(parameters[name].default, value, name)

  def test_get_config_round_trips(self):
    model = wsram_tf.GlimpseClassifier(**SMALL, variant="wsram_c",
                                       temperature=2.0, seed=7)
    clone = wsram_tf.GlimpseClassifier.from_config(model.get_config())
    self.assertEqual(clone.get_config(), model.get_config())

  @parameterized.parameters((0, 16), (8, 8))
  def test_inference_units_size_the_inference_networks_hidden_layer(
      self, inference_units, width):
    model = wsram_tf.GlimpseClassifier(**SMALL,
                                       inference_units=inference_units)
    model.build((None, 32, 32, 1))
    self.assertEqual(model.inference.hidden.kernel.shape[-1], width)
    clone = wsram_tf.GlimpseClassifier.from_config(model.get_config())
    self.assertEqual(clone.inference_units, inference_units)

  def test_a_config_saved_before_inference_units_means_hidden_size(self):
    # Guards old .keras files should the default ever change.
    model = wsram_tf.GlimpseClassifier(**SMALL, inference_units=0)
    config = model.get_config()
    del config["inference_units"]  # As .keras files of older versions.
    clone = wsram_tf.GlimpseClassifier.from_config(config)
    clone.build((None, 32, 32, 1))
    self.assertEqual(clone.inference.hidden.kernel.shape[-1], 16)

  @parameterized.parameters(
      ({"num_glimpses": 0}, "num_glimpses=0"),
      ({"recurrent_layers": 3}, "recurrent_layers"),
      ({"num_samples": 0}, "num_samples"),
      ({"seed": -1}, "seed"),
      ({"variant": "wsramqc"}, "unknown variant 'wsramqc'"),
      ({"location_std": 0.0}, "location_std"),
      ({"inference_units": -1}, "inference_units=-1"))
  def test_bad_arguments_name_the_argument(self, overrides, pattern):
    with self.assertRaisesRegex(ValueError, pattern):
      wsram_tf.GlimpseClassifier(**{**SMALL, **overrides})

  def test_window_larger_than_the_images_is_refused_at_build(self):
    model = wsram_tf.GlimpseClassifier(num_classes=10)  # 48 px window.
    with self.assertRaisesRegex(ValueError, "patch_size .* 48 pixels is "
                                "larger than the 40x40 images"):
      model.build((None, 40, 40, 1))

  def test_fit_builds_and_checks_the_image_size(self):
    images, labels = data(8)
    model = small(patch_size=12, scale_factors=(1, 4))
    with self.assertRaisesRegex(ValueError, "48 pixels .* 32x32"):
      model.fit(images, labels, verbose=0)


class CompileTest(tf.test.TestCase):

  def test_compile_without_arguments_uses_the_tuned_rates(self):
    for variant in variants.VARIANTS:
      model = small(variant)
      theta, eta = variants.default_rates(variant)
      self.assertAllClose(float(model.optimizer.learning_rate), theta)
      self.assertAllClose(float(model.eta_optimizer.learning_rate), eta)

  def test_optimizers_by_name_train(self):
    images, labels = data(16)
    model = small(compile_kwargs=dict(optimizer="sgd",
                                      inference_optimizer="rmsprop"))
    model.fit(images, labels, batch_size=8, verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 2)
    self.assertEqual(int(model.eta_optimizer.iterations), 2)
    self.assertIsInstance(model.eta_optimizer, keras.optimizers.RMSprop)

  def test_learning_rate_callbacks_move_both_optimizers(self):
    images, labels = data(16)
    model = small()  # eta follows theta at the tuned ratio, 3.
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0,
              callbacks=[keras.callbacks.LearningRateScheduler(
                  lambda epoch, rate: 1e-4 / (epoch + 1))])
    self.assertAllClose(float(model.optimizer.learning_rate), 5e-5)
    self.assertAllClose(float(model.eta_optimizer.learning_rate), 1.5e-4)

  def test_loss_and_metrics_are_refused(self):
    model = wsram_tf.GlimpseClassifier(**SMALL)
    with self.assertRaisesRegex(ValueError, "compile\\(loss=...\\)"):
      model.compile(loss="mse")


class EvaluateTest(tf.test.TestCase):

  def test_evaluate_reports_loss_and_accuracy(self):
    images, labels = data()
    model = small()
    logs = model.evaluate(images, labels, return_dict=True, verbose=0)
    self.assertEqual(set(logs), {"loss", "accuracy", "error",
                                 "log_likelihood"})
    self.assertAllClose(logs["loss"], -logs["log_likelihood"])
    self.assertAllClose(logs["accuracy"], 1 - logs["error"])

  def test_metrics_names_label_the_list_of_evaluate(self):
    images, labels = data()
    model = small()
    listed = model.evaluate(images, labels, verbose=0)
    named = model.evaluate(images, labels, return_dict=True, verbose=0)
    self.assertEqual(dict(zip(model.metrics_names, listed)), named)

  def test_callbacks_work_with_their_default_monitors(self):
    images, labels = data()
    model = small()
    path = os.path.join(self.get_temp_dir(), "best.keras")
    history = model.fit(
        images, labels, batch_size=16, epochs=3, verbose=0,
        validation_data=(images, labels),
        callbacks=[keras.callbacks.EarlyStopping(patience=5),
                   keras.callbacks.EarlyStopping(monitor="val_accuracy",
                                                 patience=5),
                   keras.callbacks.ReduceLROnPlateau(patience=5),
                   keras.callbacks.ModelCheckpoint(path,
                                                   save_best_only=True)])
    self.assertContainsSubset({"val_loss", "val_accuracy"}, history.history)
    self.assertTrue(os.path.exists(path))


class LabelsAndWeightsTest(tf.test.TestCase):

  def test_one_hot_labels_train_as_class_indices(self):
    images, labels = data(16)
    logs = [small(seed=3).train_on_batch(images, y, return_dict=True)
            for y in (labels, tf.one_hot(labels, 4).numpy())]
    self.assertAllClose(logs[0], logs[1])

  def test_a_dataset_of_images_and_labels_trains(self):
    images, labels = data(16)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    model = small()
    model.fit(dataset, epochs=1, verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 2)

  def test_labels_outside_the_classes_are_refused(self):
    images, labels = data(16)
    labels[3] = 4
    with self.assertRaisesRegex(ValueError, r"y: class indices must be "
                                r"integers in \[0, 4\).*from 0 to 4"):
      small().fit(images, labels, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "class indices must be integers"):
      small().fit(dataset, verbose=0)

  def test_uniform_sample_weights_change_nothing(self):
    images, labels = data(16)
    plain = small(seed=2).train_on_batch(images, labels, return_dict=True)
    weighted = small(seed=2).train_on_batch(
        images, labels, sample_weight=np.full(16, 2.5, np.float32),
        return_dict=True)
    self.assertAllClose(plain, weighted)

  def test_class_weight_changes_the_update(self):
    images, labels = data(16)
    plain, weighted = small(seed=2), small(seed=2)
    plain.fit(images, labels, batch_size=16, verbose=0, shuffle=False)
    weighted.fit(images, labels, batch_size=16, verbose=0, shuffle=False,
                 class_weight={0: 5.0, 1: 1.0, 2: 1.0, 3: 0.0})
    self.assertFalse(weights_equal(plain, weighted))

  def test_weighted_losses_equal_the_duplicated_batch(self):
    # Weight 2 on an example is that example twice: the per-example terms
    # of a rollout, duplicated, give the same losses and gradients.
    rng = np.random.default_rng(0)
    batch, samples, steps = 3, 4, 2
    terms = [tf.constant(rng.normal(size=(batch, samples, steps)),
                         tf.float32) for _ in range(3)]
    log_likelihood = tf.constant(-rng.random((batch, samples)), tf.float32)
    weights = tf.constant([2.0, 1.0, 0.0])
    duplicated = [0, 0, 1]
    for variant in variants.VARIANTS.values():
      baseline = terms[2] if variant.name == "var_c" else None
      weighted = variants.variant_losses(
          variant, terms[0], terms[1], log_likelihood, baseline, terms[1],
          0.1, weights)
      copied = variants.variant_losses(
          variant, *(tf.gather(t, duplicated) for t in terms[:2]),
          tf.gather(log_likelihood, duplicated),
          None if baseline is None else tf.gather(baseline, duplicated),
          tf.gather(terms[1], duplicated), 0.1)
      for field in ("loss_theta", "loss_eta", "baseline_loss"):
        self.assertAllClose(getattr(weighted, field), getattr(copied, field),
                            msg=f"{variant.name} {field}")

  def test_changing_num_samples_between_fits_takes_effect(self):
    images, labels = data(16)
    model = small("wsram_c", num_samples=4)
    first = model.fit(images, labels, batch_size=16, verbose=0)
    model.num_samples = 1
    second = model.fit(images, labels, batch_size=16, verbose=0)
    self.assertGreater(first.history["ess"][0], 1.0)
    self.assertAllClose(second.history["ess"][0], 1.0)


class PredictTest(tf.test.TestCase):

  def test_predict_is_repeatable_and_samples_on_request(self):
    images, _ = data(16)
    model = small()
    mode = model.predict(images, verbose=0)
    self.assertAllEqual(mode, model.predict(images, verbose=0))
    sampled = model.predict(images, deterministic=False, verbose=0)
    self.assertAllEqual(sampled, model.predict(images, deterministic=False,
                                               verbose=0))
    self.assertNotAllClose(mode, sampled)
    self.assertAllClose(mode.sum(-1), np.ones(16))

  def test_predict_glimpses_batches_arrays_and_datasets_alike(self):
    images, labels = data(10)
    model = small()
    from_arrays = model.predict_glimpses(images, batch_size=4)
    from_dataset = model.predict_glimpses(
        tf.data.Dataset.from_tensor_slices((images, labels)).batch(3))
    self.assertEqual({k: v.shape for k, v in from_arrays.items()},
                     {"probabilities": (10, 4), "locations": (10, 2, 2),
                      "scales": (10, 2)})
    for key in from_arrays:
      self.assertAllClose(from_arrays[key], from_dataset[key])
    self.assertAllClose(from_arrays["probabilities"],
                        model.predict(images, verbose=0))


class SavingTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*variants.VARIANTS)
  def test_keras_file_round_trip_predicts_alike_and_trains_on(self, variant):
    images, labels = data(16)
    model = small(variant)
    model.fit(images, labels, batch_size=8, verbose=0)
    path = os.path.join(self.get_temp_dir(), f"{variant}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertIsInstance(loaded, wsram_tf.GlimpseClassifier)
    self.assertAllEqual(model.predict(images, verbose=0),
                        loaded.predict(images, verbose=0))
    self.assertEqual(int(loaded.optimizer.iterations), 2)
    for m in (model, loaded):
      m.fit(images, labels, batch_size=8, verbose=0, shuffle=False)
    self.assertTrue(weights_equal(model, loaded))

  def test_export_writes_the_three_signatures(self):
    images, _ = data(4)
    model = small()
    model.build((None, 32, 32, 1))
    export_dir = model.export(os.path.join(self.get_temp_dir(), "serving"))
    served = tf.saved_model.load(export_dir)
    self.assertContainsSubset({"serve", "serve_sampled", "serve_image_bytes"},
                              set(served.signatures))
    self.assertAllClose(served.signatures["serve"](
        images=tf.constant(images))["probabilities"],
                        model.predict(images, verbose=0), atol=1e-6)
    self.assertTrue(os.path.exists(os.path.join(export_dir,
                                                "export_info.json")))


class PresetTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters("cluttered_mnist", "ram")
  def test_architecture_presets_are_the_command_lines(self, name):
    model = wsram_tf.GlimpseClassifier.from_preset(name)
    config = presets.preset_config(name)
    self.assertEqual(
        {k: model.get_config()[k] for k in presets.model_arguments(config)},
        {k: list(v) if isinstance(v, tuple) else v
         for k, v in presets.model_arguments(config).items()})
    self.assertTrue(model.built)

  def test_an_unknown_preset_names_the_valid_ones(self):
    with self.assertRaisesRegex(ValueError, "translated_mnist, "
                                "cluttered_mnist, ram"):
      wsram_tf.GlimpseClassifier.from_preset("mnist")

  def test_translated_mnist_ships_weights_of_at_most_2_percent_error(self):
    from wsram_tf.pipelines import mnist  # pylint: disable=g-import-not-at-top
    model = wsram_tf.GlimpseClassifier.from_preset("translated_mnist")
    model.compile()
    test = mnist.make_datasets(presets.preset_config("translated_mnist")).test
    logs = model.evaluate(test, return_dict=True, verbose=0)
    self.assertLessEqual(logs["error"], 0.02)


class PackagingTest(tf.test.TestCase):

  def test_a_users_own_configs_and_pipelines_modules_keep_working(self):
    with tempfile.TemporaryDirectory() as folder:
      with open(os.path.join(folder, "configs.py"), "w") as f:
        f.write("NAME = 'mine'\n")
      os.makedirs(os.path.join(folder, "pipelines"))
      with open(os.path.join(folder, "pipelines", "__init__.py"), "w") as f:
        f.write("NAME = 'mine too'\n")
      env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
      env["TF_CPP_MIN_LOG_LEVEL"] = "3"
      out = subprocess.run(
          [sys.executable, "-c", "import configs, pipelines, wsram_tf; "
           "print(configs.NAME, '|', pipelines.NAME, '|', "
           "wsram_tf.GlimpseClassifier.__name__)"],
          cwd=folder, env=env, capture_output=True, text=True, check=True)
    self.assertEqual(out.stdout.strip().splitlines()[-1],
                     "mine | mine too | GlimpseClassifier")


if __name__ == "__main__":
  tf.test.main()
