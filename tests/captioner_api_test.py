"""GlimpseCaptioner as a Keras library (issue 18): one contract per test.

Constructor arguments and get_config, `.keras` files, compile() defaults,
evaluate's names, sample_weight, generate, predict, images through a
backbone, presets. Tiny sizes (tests/builders.py), XLA off.
"""

import json
import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import builders
from wsram_tf.captioner import decoding
from wsram_tf.captioner import model as captioner
from wsram_tf.captioner import presets
from wsram_tf.configs import captions as caption_configs
from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import flickr8k_vocab

CAPTIONS = builders.CAPTIONS
SMALL_BACKBONE = {"name": "small", "weights": "", "image_size": 32,
                  "taps": (), "seed": 0}
SMALL_SHAPES = ((8, 8, 32), (4, 4, 64))  # Its maps of 32x32 images.


def tiny(seed: int = 0, **overrides) -> captioner.GlimpseCaptioner:
  """builders' tiny captioner (wsram_qc, so theta, eta and the baseline all
  train), built from keywords after seeding Keras' initialisers."""
  keras.utils.set_random_seed(seed)
  return captioner.GlimpseCaptioner(
      **{**builders.captioner_arguments("wsram_qc"), **overrides})


def compiled(seed: int = 0, **overrides) -> captioner.GlimpseCaptioner:
  model = tiny(seed, **overrides)
  model.compile(jit_compile=False)
  return model


def batch(size: int = 3, seed: int = 0):
  return builders.caption_features(batch=size, seed=seed), CAPTIONS[:size]


def numpy_weights(model) -> list:
  return [v.numpy() for v in model.weights]


class ConstructorTest(parameterized.TestCase, tf.test.TestCase):

  def test_defaults_are_the_captions_config_defaults(self):
    config = caption_configs.get_config()
    model = captioner.GlimpseCaptioner(feature_shapes=builders.SHAPES,
                                       vocab_size=builders.VOCAB)
    got = model.get_config()
    for name in ("hidden_size", "word_embedding_size", "location_std",
                 "learn_location_std", "inference_word"):
      self.assertEqual(got[name], config.model[name], name)
    self.assertEqual(got["variant"], config.variant)
    self.assertEqual(got["max_caption_length"],
                     config.data.max_caption_length)
    self.assertEqual(got["num_samples"], config.objective.num_samples)
    self.assertEqual(got["eval_num_samples"], config.eval.num_samples)
    self.assertEqual(got["seed"], config.seed)

  def test_model_arguments_reach_the_model(self):
    arguments = builders.captioner_arguments("wsram_q",
                                             inference_word="previous")
    got = captioner.GlimpseCaptioner(**arguments).get_config()
    for name, value in arguments.items():
      if name == "feature_shapes":
        value = [list(s) for s in value]
      elif name == "backbone":
        value = {**value, "taps": list(value["taps"])}
      self.assertEqual(got[name], value, name)

  def test_get_config_round_trip(self):
    model = tiny()
    clone = captioner.GlimpseCaptioner.from_config(model.get_config())
    self.assertEqual(clone.get_config(), model.get_config())
    self.assertTrue(clone.built)
    self.assertEqual([v.shape for v in clone.weights],
                     [v.shape for v in model.weights])

  def test_built_at_construction(self):
    model = tiny()
    self.assertTrue(model.built)
    self.assertNotEmpty(model.trainable_variables)

  @parameterized.parameters(
      ("feature_shapes", ((6, 6),)), ("feature_shapes", ()),
      ("vocab_size", 3), ("hidden_size", 0), ("word_embedding_size", -1),
      ("location_std", 0.0), ("inference_word", "next"),
      ("max_caption_length", 2), ("num_samples", 0), ("variant", "wsram_x"),
      ("backbone", {"name": "small"}))
  def test_bad_argument_is_named(self, name, value):
    with self.assertRaisesRegex(ValueError, name):
      tiny(**{name: value})

  def test_vocabulary_and_vocab_size_must_agree(self):
    with self.assertRaisesRegex(ValueError, "vocabulary"):
      tiny(vocab_size=builders.VOCAB + 1)
    with self.assertRaisesRegex(ValueError, "vocabulary must start"):
      tiny(vocabulary=("a",) * builders.VOCAB)

  def test_vocab_size_defaults_to_the_vocabulary(self):
    arguments = builders.captioner_arguments()
    del arguments["vocab_size"]
    self.assertEqual(captioner.GlimpseCaptioner(**arguments).vocab_size,
                     builders.VOCAB)


class KerasFileTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.features, cls.captions = batch(3)
    cls.model = compiled()
    cls.model.fit(cls.features, cls.captions, epochs=1, verbose=0)
    cls.path = os.path.join(tf.compat.v1.test.get_temp_dir(), "cap.keras")
    cls.model.save(cls.path)
    # No custom_objects: the class is registered as "wsram_tf>...".
    cls.loaded = keras.models.load_model(cls.path)

  def test_loaded_model_is_a_glimpse_captioner_with_the_same_config(self):
    self.assertIsInstance(self.loaded, captioner.GlimpseCaptioner)
    self.assertEqual(self.loaded.get_config(), self.model.get_config())

  def test_loaded_model_gives_identical_outputs(self):
    self.assertAllEqual(self.loaded.predict(self.features, verbose=0),
                        self.model.predict(self.features, verbose=0))
    for a, b in zip(self.model.caption_log_likelihood(
        self.features, self.captions, 2, seed=[1, 2]),
                    self.loaded.caption_log_likelihood(
                        self.features, self.captions, 2, seed=[1, 2])):
      self.assertAllEqual(a, b)
    self.assertEqual(self.loaded.generate(self.features, beam_size=2),
                     self.model.generate(self.features, beam_size=2))

  def test_loaded_model_trains_on_exactly_as_the_original(self):
    model = compiled()
    model.fit(self.features, self.captions, epochs=1, verbose=0)
    path = os.path.join(self.get_temp_dir(), "train_on.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for m in (model, loaded):
      m.fit(self.features, self.captions, epochs=1, verbose=0)
    self.assertEqual(int(loaded.optimizer.iterations), 2)
    self.assertEqual(int(loaded.eta_optimizer.iterations), 2)
    for a, b in zip(numpy_weights(model), numpy_weights(loaded)):
      self.assertAllEqual(a, b)
    for a, b in zip(model.eta_optimizer.variables,
                    loaded.eta_optimizer.variables):
      self.assertAllEqual(a, b)


class CompileTest(tf.test.TestCase):

  def test_compile_without_arguments_uses_adam_at_1e_3_for_both(self):
    model = tiny()
    model.compile(jit_compile=False)
    self.assertIsInstance(model.optimizer, keras.optimizers.Adam)
    model.fit(*batch(3), epochs=1, verbose=0)
    self.assertAllClose(float(model.optimizer.learning_rate), 1e-3)
    self.assertAllClose(float(model.eta_optimizer.learning_rate), 1e-3)
    self.assertEqual(int(model.eta_optimizer.iterations), 1)

  def test_compile_takes_optimizer_names(self):
    model = tiny()
    model.compile(optimizer="sgd", inference_optimizer="adam",
                  jit_compile=False)
    logs = model.fit(*batch(3), epochs=1, verbose=0).history
    self.assertTrue(np.isfinite(logs["loss"][0]))


class EvaluateTest(tf.test.TestCase):

  def test_loss_is_the_per_word_nll(self):
    model = compiled(eval_deterministic=True)
    features, captions = batch(3)
    logs = model.evaluate(features, captions, return_dict=True, verbose=0)
    self.assertEqual(sorted(logs), ["loss", "prior_word_nll"])
    log_likelihood, words = model.caption_log_likelihood(
        features, captions, 1, deterministic=True)
    want = -float(tf.reduce_sum(log_likelihood) / tf.reduce_sum(words))
    self.assertAllClose(logs["loss"], want, rtol=1e-5)
    self.assertAllClose(logs["prior_word_nll"], want, rtol=1e-5)

  def test_metrics_names_label_evaluates_list(self):
    model = compiled()
    features, captions = batch(3)
    as_dict = model.evaluate(features, captions, return_dict=True, verbose=0)
    as_list = model.evaluate(features, captions, verbose=0)
    self.assertEqual(dict(zip(model.metrics_names, as_list)), as_dict)

  def test_backups_keep_the_train_trackers_then_the_nll(self):
    model = compiled()
    self.assertEqual([m.name for m in model.resumable_metrics()],
                     ["loss", "bound", "ess", "word_nll", "baseline_loss",
                      "prior_word_nll"])

  def test_evaluate_sample_weight_weights_the_captions(self):
    model = compiled(eval_deterministic=True)
    features, captions = batch(3)
    weighted = model.evaluate(features, captions, sample_weight=np.array(
        [1.0, 0.0, 1.0]), return_dict=True, verbose=0)
    kept = {k: tf.gather(v, [0, 2]) for k, v in features.items()}
    want = model.evaluate(kept, captions[[0, 2]], return_dict=True, verbose=0)
    self.assertAllClose(weighted["loss"], want["loss"], rtol=1e-5)


class SampleWeightTest(tf.test.TestCase):

  def _losses(self, model, features, captions, weights):
    loss_theta, loss_eta, stats, _ = model.compute_losses(
        features, captions, seed=[4, 2], sample_weight=weights)
    return [float(loss_theta), float(loss_eta), float(stats["loss"])]

  def test_weights_all_two_equal_no_weights(self):
    model = tiny()
    features, captions = batch(3)
    self.assertAllClose(
        self._losses(model, features, captions, tf.fill([3], 2.0)),
        self._losses(model, features, captions, None), rtol=1e-6)

  def test_a_zero_weight_removes_an_examples_influence(self):
    model = tiny()
    features, captions = batch(3)
    other_features = dict(features)
    other_features["features_0"] = tf.tensor_scatter_nd_update(
        features["features_0"], [[1]], 5.0 + features["features_0"][1:2])
    other_captions = captions.copy()
    other_captions[1] = [1, 9, 9, 9, 2, 0]
    zero = tf.constant([1.0, 0.0, 1.0])
    self.assertAllClose(
        self._losses(model, features, captions, zero),
        self._losses(model, other_features, other_captions, zero),
        rtol=1e-6)
    # Not vacuous: with weight 1 the change does move the losses.
    self.assertNotAllClose(
        self._losses(model, features, captions, None),
        self._losses(model, other_features, other_captions, None))

  def test_fit_passes_sample_weight(self):
    features, captions = batch(3)
    a, b, c = compiled(), compiled(), compiled()
    a.fit(features, captions, verbose=0)
    b.fit(features, captions, sample_weight=np.full(3, 2.0), verbose=0)
    c.fit(features, captions, sample_weight=np.array([1.0, 0.0, 1.0]),
          verbose=0)
    for x, y in zip(numpy_weights(a), numpy_weights(b)):
      self.assertAllClose(x, y, rtol=1e-5, atol=1e-7)
    self.assertFalse(all(np.allclose(x, y) for x, y in zip(
        numpy_weights(a), numpy_weights(c))))


class GenerateAndPredictTest(tf.test.TestCase):

  def test_generate_returns_one_caption_string_per_image(self):
    model = tiny()
    features, _ = batch(3)
    captions = model.generate(features, beam_size=2, batch_size=2)
    self.assertLen(captions, 3)
    words = set(builders.WORDS) - {"<pad>", "<start>", "<end>"}
    for caption in captions:
      self.assertIsInstance(caption, str)
      self.assertContainsSubset(caption.split(), words)

  def test_greedy_generate_is_greedy_decoding_in_words(self):
    model = tiny()
    features, _ = batch(3)
    ids = decoding.greedy_decode(model, features, 5).ids
    self.assertEqual(
        model.generate(features, beam_size=1, max_length=5),
        decoding.to_strings(ids, flickr8k_vocab.Vocabulary(builders.WORDS)))

  def test_generate_without_vocabulary_is_refused(self):
    model = tiny(vocabulary=None)
    with self.assertRaisesRegex(ValueError, "vocabulary"):
      model.generate(batch(2)[0])

  def test_bad_generate_arguments_are_named(self):
    model = tiny()
    for name, value in (("beam_size", 0), ("max_length", 0),
                        ("length_penalty", -1.0)):
      with self.assertRaisesRegex(ValueError, name):
        model.generate(batch(2)[0], **{name: value})

  def test_images_without_a_backbone_are_refused(self):
    model = tiny()
    with self.assertRaisesRegex(ValueError, "backbone"):
      model.generate(np.zeros((2, 32, 32, 3), np.uint8))

  def test_predict_gives_greedy_caption_ids(self):
    model = tiny()
    features, _ = batch(3)
    ids = model.predict(features, batch_size=2, verbose=0)
    self.assertEqual(ids.shape, (3, model.max_caption_length - 1))
    self.assertAllEqual(ids, decoding.greedy_decode(
        model, features, model.max_caption_length - 1).ids)


class BackboneTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.images = np.random.default_rng(0).integers(
        0, 256, (3, 32, 32, 3), np.uint8)

  def _model(self):
    return compiled(feature_shapes=SMALL_SHAPES, backbone=SMALL_BACKBONE)

  def test_generate_on_images_equals_generate_on_their_maps(self):
    model = self._model()
    pyramid = feature_pyramid.build_feature_pyramid("small", "", 32)
    maps = pyramid(feature_pyramid.resize_images(self.images, 32))
    features = {f"features_{k}": m for k, m in enumerate(maps)}
    self.assertEqual(model.generate(self.images, beam_size=2),
                     model.generate(features, beam_size=2))

  def test_fit_on_images_and_caption_ids(self):
    model = self._model()
    history = model.fit(self.images.astype(np.float32), CAPTIONS, verbose=0)
    self.assertTrue(np.isfinite(history.history["loss"][0]))

  def test_export_serves_greedy_generate(self):
    model = self._model()
    export_dir = model.export(os.path.join(self.get_temp_dir(), "export"))
    served = tf.saved_model.load(export_dir).signatures["serve_uint8"](
        images=tf.constant(self.images))
    self.assertEqual([c.decode() for c in served["captions"].numpy()],
                     model.generate(self.images, beam_size=1))
    with open(os.path.join(export_dir, "config.json")) as f:
      self.assertEqual(json.load(f)["backbone"]["name"], "small")

  def test_backbone_of_other_shapes_is_refused(self):
    model = compiled(backbone=SMALL_BACKBONE)  # builders.SHAPES.
    with self.assertRaisesRegex(ValueError, "feature_shapes"):
      model.generate(self.images)


class PresetTest(tf.test.TestCase):

  def test_preset_takes_its_feature_shapes_from_its_backbone(self):
    model = captioner.GlimpseCaptioner.from_preset(
        "synthetic_digits", vocabulary=builders.WORDS)
    config = presets.preset_config("synthetic_digits")
    self.assertEqual(model.feature_shapes, ((16, 16, 32), (8, 8, 64)))
    self.assertEqual(model.hidden_size, config.model.hidden_size)
    self.assertEqual(model.variant.name, config.variant)
    self.assertEqual(model.backbone["image_size"], config.backbone.image_size)
    self.assertEqual(model.vocabulary, builders.WORDS)

  def test_preset_needs_a_vocabulary_or_its_size(self):
    with self.assertRaisesRegex(ValueError, "vocabulary"):
      presets.from_preset("synthetic_digits")
    with self.assertRaisesRegex(ValueError, "flickr8k"):
      presets.from_preset("mscoco", vocab_size=10)


if __name__ == "__main__":
  tf.test.main()
