"""Classifier export variants: `serve_sampled` served by a process that cannot
import this project, and the `--weights=best` and `--sampled` exports.

Expectations come from models rebuilt from the run's weight files and from
their own rollouts, not from the functions the export traces: the sampled
probabilities must be the mean over the M samples of each sample's softmax,
recomputed here in numpy from the rollout's class logits for the same seed.
"""

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tests import builders
from tests import standalone
from tests import toy_data
from wsram_tf import export
from wsram_tf.classifier import export as classifier_export

SEEDS = ((7, 8), (9, 10))

# Runs in a child that cannot import this project (tests/standalone.py).
_CHILD = r"""
import numpy as np
import tensorflow as tf

before = set(sys.modules)
BLOCKED += ["keras", "tf_keras"]
export_dir, images_path, out_dir = sys.argv[1:]
serve = tf.saved_model.load(export_dir).signatures["serve_sampled"]
images = tf.constant(np.load(images_path))
for a, b in ((7, 8), (9, 10)):
  out = serve(images=images, seed=tf.constant([a, b], tf.int32))
  for name, value in out.items():
    np.save(f"{out_dir}/{name}_{a}_{b}.npy", value.numpy())
leaked = [m for m in set(sys.modules) - before
          if m.split(".")[0] in BLOCKED]
if leaked:
  raise SystemExit(f"modules leaked into the child: {leaked}")
"""


def random_model(seed: int):
  """The toy classifier with random weights: images give varied outputs."""
  model = builders.toy_model("wsram_qc", seed=seed)
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32))
  return model


class ExportVariantsTest(tf.test.TestCase):
  """One run directory with different final and best weights, exported as
  `python -m wsram_tf.export --weights=best` and `--sampled` would (through
  `export.export_from_workdir`, the function the command calls); exports and
  the child process dominate the time, so each is made once."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.workdir = tempfile.mkdtemp()
    final, best = random_model(1), random_model(2)
    with open(os.path.join(cls.workdir, "config.json"), "w") as f:
      f.write(builders.toy_config("wsram_qc", seed=1).to_json_best_effort(
          indent=2))
    final.save_weights(os.path.join(cls.workdir, "final.weights.h5"))
    os.makedirs(os.path.join(cls.workdir, "checkpoints"))
    best.save_weights(os.path.join(cls.workdir, "checkpoints",
                                   "best.weights.h5"))
    # Rebuilt from the files, as a user would: the expectations' models.
    cls.final, _ = classifier_export.load_from_workdir(cls.workdir)
    cls.best, _ = classifier_export.load_from_workdir(cls.workdir,
                                                            "best")
    # What the exporter's own freshly loaded model starts from; read now,
    # as any seedless rollout of cls.final advances it.
    cls.seed_state = cls.final.seed_generator.state.numpy().astype(np.int32)
    cls.samples = cls.final.eval_num_samples
    cls.images = toy_data.corner_patterns(5, seed=3)[0]
    cls.best_export = tf.saved_model.load(export.export_from_workdir(
        cls.workdir, os.path.join(cls.workdir, "best_export"), "best"))
    cls.sampled_dir = export.export_from_workdir(
        cls.workdir, os.path.join(cls.workdir, "sampled"), sampled=True)
    cls.out_dir = tempfile.mkdtemp(dir=cls.workdir)
    np.save(os.path.join(cls.out_dir, "images.npy"), cls.images)
    cls.child = standalone.run(_CHILD, [
        cls.sampled_dir, os.path.join(cls.out_dir, "images.npy"),
        cls.out_dir], cls.out_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.workdir, ignore_errors=True)
    super().tearDownClass()

  def _per_sample(self, seed):
    """numpy softmax of each prior sample's class logits [B, M, classes]
    for `seed`, and the rollout they come from (the final weights)."""
    rollout = self.final.rollout(tf.constant(self.images), None,
                                 self.samples, "prior",
                                 seed=tf.constant(seed, tf.int32))
    logits = rollout.class_logits.numpy().astype(np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True), rollout

  def _served(self, name, seed):
    self.assertEqual(self.child.returncode, 0, self.child.stderr[-3000:])
    return np.load(os.path.join(self.out_dir,
                                f"{name}_{seed[0]}_{seed[1]}.npy"))

  # -- serve_sampled in a process without this package ----------------------

  def test_child_probabilities_are_the_mean_of_per_sample_softmaxes(self):
    for seed in SEEDS:
      per_sample, _ = self._per_sample(seed)
      self.assertAllClose(self._served("probabilities", seed),
                          per_sample.mean(1), atol=1e-6, msg=f"seed {seed}")

  def test_child_trace_is_sample_zeros(self):
    for seed in SEEDS:
      _, rollout = self._per_sample(seed)
      self.assertAllClose(self._served("locations", seed),
                          rollout.locations[:, 0], atol=1e-6)
      self.assertAllEqual(self._served("scales", seed), rollout.scales[:, 0])

  def test_samples_disagree_so_the_mean_is_not_one_sample(self):
    # Otherwise averaging (or not) and the sample count could not be told.
    self.assertGreater(self.samples, 1)
    per_sample, _ = self._per_sample(SEEDS[0])
    spread = per_sample.max(1) - per_sample.min(1)
    self.assertGreater(float(spread.max()), 1e-2)

  def test_child_seeds_give_different_probabilities(self):
    self.assertNotAllClose(self._served("probabilities", SEEDS[0]),
                           self._served("probabilities", SEEDS[1]))

  # -- --weights=best ---------------------------------------------------------

  def test_best_export_equals_a_model_loaded_from_best_weights(self):
    served = self.best_export.signatures["serve"](
        images=tf.constant(self.images))
    want = self.best.predict_with_trace(self.images, deterministic=True)
    self.assertAllClose(served["probabilities"], want.probabilities,
                        atol=1e-6)
    self.assertAllClose(served["locations"], want.locations, atol=1e-6)
    self.assertAllEqual(served["scales"], want.scales)

  def test_best_and_final_weights_predict_differently(self):
    # So the comparison above can tell which weights were exported.
    self.assertNotAllClose(
        self.final.predict_with_trace(self.images,
                                      deterministic=True).probabilities,
        self.best.predict_with_trace(self.images,
                                     deterministic=True).probabilities)

  # -- --sampled --------------------------------------------------------------

  def test_sampled_serve_equals_serve_sampled_for_the_same_seed(self):
    # `serve` of a --sampled export draws its seed from the stored seed
    # generator (state s, then s + [0, 1], ...); `serve_sampled` with that
    # seed must give the same glimpses and probabilities. Loaded here: each
    # call of `serve` advances the loaded generator.
    state = tf.constant(self.seed_state)
    signatures = tf.saved_model.load(self.sampled_dir).signatures
    images = tf.constant(self.images)
    for call in range(2):
      served = signatures["serve"](images=images)
      sampled = signatures["serve_sampled"](
          images=images, seed=state + tf.constant([0, call], tf.int32))
      for name in ("probabilities", "locations", "scales"):
        self.assertAllClose(served[name], sampled[name], atol=1e-6,
                            msg=f"call {call}: {name}")

  def test_sampled_serve_does_not_glimpse_at_the_mode(self):
    served = tf.saved_model.load(self.sampled_dir).signatures["serve"](
        images=tf.constant(self.images))
    mode = self.final.predict_with_trace(self.images, deterministic=True)
    self.assertNotAllClose(served["locations"], mode.locations)


if __name__ == "__main__":
  tf.test.main()
