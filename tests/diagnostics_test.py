"""Gradient-variance diagnostic: per parameter set, finite, and honest about eta."""

import numpy as np
import tensorflow as tf

from tests import toy_data
from tests.builders import toy_model
from wsram_tf import diagnostics


class GradientVarianceTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.images, self.labels = toy_data.corner_patterns(16)

  def test_theta_and_eta_variances_are_positive_for_q_variants(self):
    out = diagnostics.gradient_variance(toy_model("wsram_qc"), self.images,
                                        self.labels, draws=4, jit_compile=False)
    self.assertGreater(out["theta"], 0.0)
    self.assertGreater(out["eta"], 0.0)

  def test_eta_is_nan_without_an_inference_network(self):
    out = diagnostics.gradient_variance(toy_model("var_c"), self.images,
                                        self.labels, draws=3, jit_compile=False)
    self.assertTrue(np.isfinite(out["theta"]))
    self.assertTrue(np.isnan(out["eta"]))

  def test_parameters_are_left_unchanged(self):
    model = toy_model("wsram")
    before = [v.numpy().copy() for v in model.trainable_variables]
    diagnostics.gradient_variance(model, self.images, self.labels, draws=2,
                                  jit_compile=False)
    for a, b in zip(before, model.trainable_variables):
      self.assertAllEqual(a, b)

  def test_same_seed_same_measurement(self):
    model = toy_model("wsram_c")
    a = diagnostics.gradient_variance(model, self.images, self.labels,
                                      draws=3, seed=5, jit_compile=False)
    b = diagnostics.gradient_variance(model, self.images, self.labels,
                                      draws=3, seed=5, jit_compile=False)
    self.assertAllClose(a["theta"], b["theta"])

  def test_fewer_than_two_draws_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "draws"):
      diagnostics.gradient_variance(toy_model("var"), self.images,
                                    self.labels, draws=1)


if __name__ == "__main__":
  tf.test.main()
