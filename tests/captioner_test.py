"""wsram_tf/captioner/model.py: rollout, masking, losses, gradients, XLA steps.

The losses are also recomputed here from the rollout's per-step
log-probabilities with numpy, from docs/design.md §2 alone (not from
wsram_tf/objectives.py): L_M, the ESS and every variant's surrogate.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from wsram_tf.configs import captions as caption_configs
from tests import builders
from wsram_tf import exploration
from wsram_tf.captioner import model as captioner

CAPTIONS = builders.CAPTIONS
features = builders.caption_features
build = builders.build_captioner
tiny_config = builders.captioner_config


class CellIndicesTest(tf.test.TestCase):

  def test_corners_and_centre_map_to_nearest_cells_clipped(self):
    cells = captioner.cell_indices(
        tf.constant([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-3.0, 2.5]]), 6, 4)
    self.assertAllEqual(cells, [[0, 0], [5, 3], [3, 2], [0, 3]])


class RolloutTest(tf.test.TestCase):

  def test_rollout_shapes(self):
    model = build("var_c")
    out = model.rollout(features(), CAPTIONS, num_samples=4, seed=[1, 2])
    for name in ("log_prior_steps", "log_proposal_steps", "word_log_probs",
                 "baseline_steps", "entropy_steps", "scales"):
      self.assertEqual(getattr(out, name).shape, (3, 4, 5), name)
    self.assertEqual(out.log_likelihood.shape, (3, 4))
    self.assertEqual(out.locations.shape, (3, 4, 5, 2))
    self.assertEqual(out.location_means.shape, (3, 4, 5, 2))
    self.assertEqual(out.scale_probs.shape, (3, 4, 5, 2))
    self.assertAllEqual(out.mask, (CAPTIONS[:, 1:] != 0).astype(np.float32))

  def test_read_gathers_the_vector_at_the_chosen_cell_and_scale(self):
    model = build()
    maps = captioner.feature_list(features(), 2)
    action = captioner.distributions.Action(
        location=tf.constant([[-1.0, 1.0], [0.1, -0.5]]),
        scale=tf.constant([0, 1], tf.int32))
    # Two samples of image 0: rows 0 and 1.
    glimpse = model.read(maps, action, samples=2)
    self.assertAllClose(glimpse[0], model.projections[0](maps[0][0:1, 0, 5])[0])
    self.assertAllClose(glimpse[1], model.projections[1](maps[1][0:1, 1, 0])[0])

  def test_tokens_after_end_do_not_change_any_log_probability(self):
    model = build()
    other = CAPTIONS.copy()
    other[0, 4:] = [7, 3]  # Garbage after <end>, not <pad>.
    other[1, 3:] = [9, 9, 9]
    a = model.rollout(features(), CAPTIONS, 3, "inference", seed=[3, 4])
    b = model.rollout(features(), other, 3, "inference", seed=[3, 4])
    self.assertAllClose(a.log_likelihood, b.log_likelihood)
    self.assertAllClose(a.log_prior_steps, b.log_prior_steps)
    self.assertAllClose(a.log_proposal_steps, b.log_proposal_steps)

  def test_padded_steps_contribute_zero(self):
    out = build("var_c").rollout(features(), CAPTIONS, 2, seed=[5, 6])
    padded = CAPTIONS[:, 1:] == 0
    for name in ("log_prior_steps", "log_proposal_steps", "word_log_probs"):
      self.assertAllEqual(tf.boolean_mask(
          tf.transpose(getattr(out, name), [0, 2, 1]), padded),
                          tf.zeros([padded.sum(), 2]), name)
    # The baseline equals the reward there: no squared error, no gradient.
    reward = np.repeat(out.log_likelihood.numpy()[:, :, None], 5, axis=2)
    self.assertAllClose(
        tf.boolean_mask(tf.transpose(out.baseline_steps, [0, 2, 1]), padded),
        tf.boolean_mask(tf.transpose(reward, [0, 2, 1]), padded))

  def test_inference_word_switch_picks_current_or_previous_word(self):
    # Changing the word at column 2 changes q at step 1 ("current": step 1
    # predicts it) or first at step 2 ("previous": step 2 is fed it).
    other = CAPTIONS.copy()
    other[:, 2] = 11
    for word, first_changed in (("current", 1), ("previous", 2)):
      model = build("wsram_q", inference_word=word)
      a = model.rollout(features(), CAPTIONS, 2, "inference", seed=[7, 8])
      b = model.rollout(features(), other, 2, "inference", seed=[7, 8])
      same = np.all(np.isclose(a.log_proposal_steps, b.log_proposal_steps),
                    axis=(0, 1))
      self.assertEqual(int(np.argmin(same)), first_changed, word)


class LossesTest(tf.test.TestCase):

  def test_losses_are_finite_scalars_and_stats_per_batch(self):
    for variant in ("var_c", "wsram_qc"):
      loss_theta, loss_eta, stats, _ = build(variant).compute_losses(
          features(), CAPTIONS, seed=[1, 1])
      self.assertEqual((loss_theta.shape, loss_eta.shape), ((), ()))
      self.assertTrue(np.isfinite(loss_theta.numpy()), variant)
      self.assertBetween(float(stats["ess"]), 1.0, 3.0 + 1e-4)
      self.assertLessEqual(float(stats["bound"]), 0.0)

  def test_theta_heads_learn_from_loss_theta_and_eta_only_from_loss_eta(self):
    model = build("wsram_q")
    with tf.GradientTape(persistent=True) as tape:
      loss_theta, loss_eta, _, _ = model.compute_losses(
          features(), CAPTIONS, seed=[2, 3])
    theta, eta = model.theta_variables, model.eta_variables
    self.assertNotEmpty(eta)
    by_name = dict(zip([v.path for v in theta],
                       tape.gradient(loss_theta, theta)))
    for head in ("action/location/kernel", "action/scale/kernel"):
      grads = [g for path, g in by_name.items()
               if path.endswith(head) and "inference" not in path]
      self.assertLen(grads, 1, head)
      self.assertGreater(float(tf.reduce_max(tf.abs(grads[0]))), 0.0, head)
    for grad in tape.gradient(loss_theta, eta):
      self.assertTrue(grad is None or not np.any(tf.convert_to_tensor(grad)))
    for grad in tape.gradient(loss_eta, theta):
      self.assertTrue(grad is None or not np.any(tf.convert_to_tensor(grad)))
    self.assertTrue(any(g is not None and np.any(tf.convert_to_tensor(g))
                        for g in tape.gradient(loss_eta, eta)))

  def test_var_heads_get_gradient_from_the_reinforce_term(self):
    model = build("var")
    with tf.GradientTape() as tape:
      loss_theta, _, _, _ = model.compute_losses(features(), CAPTIONS,
                                                 seed=[2, 3])
    grads = dict(zip([v.path for v in model.theta_variables],
                     tape.gradient(loss_theta, model.theta_variables)))
    location = [g for p, g in grads.items()
                if p.endswith("action/location/kernel")][0]
    self.assertGreater(float(tf.reduce_max(tf.abs(location))), 0.0)

  def test_coverage_weight_adds_the_masked_penalty_to_loss_theta(self):
    model = build("wsram_c")
    base, _, _, out = model.compute_losses(features(), CAPTIONS, seed=[4, 5])
    model.coverage_weight = 0.5
    with tf.GradientTape() as tape:
      covered, _, _, _ = model.compute_losses(features(), CAPTIONS,
                                              seed=[4, 5])
    penalty = exploration.coverage_penalty(
        tf.reshape(out.location_means, [-1, 5, 2]),
        tf.reshape(out.scale_probs, [-1, 5, 2]),
        tf.repeat(out.mask, 3, axis=0))
    self.assertGreater(float(penalty), 0.0)
    self.assertAllClose(covered, base + 0.5 * penalty, rtol=1e-5)
    location = [g for v, g in zip(model.theta_variables, tape.gradient(
        covered, model.theta_variables))
                if v.path.endswith("action/location/kernel")][0]
    self.assertGreater(float(tf.reduce_max(tf.abs(location))), 0.0)


def _softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def numpy_objectives(variant: str, rollout) -> dict:
  """docs/design.md §2.1-2.5 in float64 numpy, from per-step log-probs.

  Returns the bound and ESS (batch means), the estimator's surrogate
  ("loss"), the VAR+c baseline's squared error and, for +q, loss_eta.
  """
  word = rollout.word_log_probs.numpy().astype(np.float64)  # [B, M, S]
  prior = rollout.log_prior_steps.numpy().astype(np.float64)
  proposal = rollout.log_proposal_steps.numpy().astype(np.float64)
  m = word.shape[1]
  ll, lp, lq = word.sum(-1), prior.sum(-1), proposal.sum(-1)  # [B, M]
  log_w = lp + ll - lq  # eq. 7; for VAR q is the prior and log w = ll.
  top = log_w.max(-1, keepdims=True)
  bound = (top[:, 0] + np.log(np.exp(log_w - top).sum(-1))) - np.log(m)
  w = _softmax(log_w)
  out = {"bound": bound.mean(), "ess": (1.0 / (w ** 2).sum(-1)).mean(),
         "baseline_loss": 0.0}
  if variant.startswith("var"):
    # eq. 5 with reward log p(y|a) minus the baseline read before a_t.
    baseline = (rollout.baseline_steps.numpy().astype(np.float64)
                if variant == "var_c" else np.zeros_like(prior))
    advantage = ll[..., None] - baseline
    out["loss"] = -(ll + (advantage * prior).sum(-1)).mean()
    if variant == "var_c":
      out["baseline_loss"] = ((baseline - ll[..., None]) ** 2).mean()
    return out
  if variant.endswith("c"):  # eq. 16 and 17
    r = _softmax(lp - lq)
    out["loss"] = -(w * ll + (w - r) * lp).sum(-1).mean()
    out["loss_eta"] = -((w - 1.0 / m) * lq).sum(-1).mean()
  else:  # eq. 8 and 14
    out["loss"] = -(w * (ll + lp)).sum(-1).mean()
    out["loss_eta"] = -(w * lq).sum(-1).mean()
  return out


class BoundFromLogProbsTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*caption_configs.VARIANTS)
  def test_losses_equal_the_bound_recomputed_from_step_log_probs(self,
                                                                 variant):
    model = build(variant)
    loss_theta, loss_eta, stats, out = model.compute_losses(
        features(seed=1), CAPTIONS, seed=[6, 7])
    want = numpy_objectives(variant, out)
    self.assertAllClose(stats["bound"], want["bound"], rtol=1e-5)
    self.assertAllClose(stats["ess"], want["ess"], rtol=1e-5)
    self.assertAllClose(stats["loss"], want["loss"], rtol=1e-5)
    self.assertAllClose(stats["baseline_loss"], want["baseline_loss"],
                        rtol=1e-5, atol=1e-7)
    self.assertAllClose(loss_theta, want["loss"] + want["baseline_loss"],
                        rtol=1e-5)
    if "q" in variant.split("_")[-1]:
      self.assertAllClose(loss_eta, want["loss_eta"], rtol=1e-5)

  def test_samples_disagree_so_the_weights_matter(self):
    # With equal log w every estimator above collapses to a plain mean and
    # a wrong weighting would pass unnoticed.
    out = build("wsram_qc").rollout(features(seed=1), CAPTIONS, 3,
                                    "inference", seed=[6, 7])
    log_w = (tf.reduce_sum(out.log_prior_steps, -1) + out.log_likelihood
             - tf.reduce_sum(out.log_proposal_steps, -1))
    self.assertGreater(float(tf.reduce_min(
        tf.reduce_max(log_w, 1) - tf.reduce_min(log_w, 1))), 0.05)

  def test_log_likelihood_is_the_sum_of_word_log_probs(self):
    out = build("wsram_q").rollout(features(), CAPTIONS, 2, "inference",
                                   seed=[1, 2])
    self.assertAllClose(out.log_likelihood,
                        np.sum(out.word_log_probs.numpy(), -1), rtol=1e-6)

  def test_wsram_theta_gradient_is_the_gradient_of_minus_the_bound(self):
    # docs/design.md §2.3: with q held fixed, loss_theta's gradient is that
    # of -L_M, here differentiated straight from the step log-probs.
    model = build("wsram_q")
    with tf.GradientTape(persistent=True) as tape:
      loss_theta, _, _, out = model.compute_losses(features(), CAPTIONS,
                                                   seed=[8, 9])
      log_w = (tf.reduce_sum(out.log_prior_steps, -1)
               + tf.reduce_sum(out.word_log_probs, -1)
               - tf.stop_gradient(tf.reduce_sum(out.log_proposal_steps, -1)))
      minus_bound = -tf.reduce_mean(tf.reduce_logsumexp(log_w, -1))
    theta = model.theta_variables
    for path, a, b in zip([v.path for v in theta],
                          tape.gradient(loss_theta, theta),
                          tape.gradient(minus_bound, theta)):
      if a is None:
        self.assertIsNone(b, path)
        continue
      # The embedding's gradients are IndexedSlices: compare dense.
      self.assertAllClose(tf.convert_to_tensor(a), tf.convert_to_tensor(b),
                          rtol=1e-4, atol=1e-6, msg=path)


class TrainStepTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*caption_configs.VARIANTS)
  def test_variant_trains_a_step_under_xla(self, variant):
    # Keras' jit_compile=True wraps train_step the same way; calling it
    # directly skips fit's iterator and multi-step loop (half the compile).
    model = build(variant, jit_compile=True)
    before = [v.numpy() for v in model.theta_variables]
    logs = tf.function(model.train_step, jit_compile=True)(
        (features(), tf.constant(CAPTIONS[:, :3])))
    self.assertTrue(np.isfinite(logs["loss"].numpy()))
    self.assertEqual(int(model.optimizer.iterations.numpy()), 1)
    self.assertTrue(any(np.any(b != v.numpy()) for b, v in
                        zip(before, model.theta_variables)))
    if model.eta_variables:
      self.assertEqual(int(model.eta_optimizer.iterations.numpy()), 1)

if __name__ == "__main__":
  tf.test.main()
