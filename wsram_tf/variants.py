"""The six training methods of the paper (Fig. 2) and the losses each one trains."""

from typing import NamedTuple, Optional

import tensorflow as tf

from wsram_tf import objectives


class Variant(NamedTuple):
  name: str
  estimator: str  # "var" (variational bound, eq. 3-5) or "wsram" (eq. 8, 14).
  inference_net: bool  # +q: proposal from the inference network, not the prior.
  control_variates: bool  # +c: learned baseline (VAR) or eq. 16-17 (WS-RAM).


VARIANTS = {
    "var": Variant("var", "var", False, False),
    "var_c": Variant("var_c", "var", False, True),
    "wsram": Variant("wsram", "wsram", False, False),
    "wsram_c": Variant("wsram_c", "wsram", False, True),
    "wsram_q": Variant("wsram_q", "wsram", True, False),
    "wsram_qc": Variant("wsram_qc", "wsram", True, True),
}

LABELS = {
    "var": "VAR", "var_c": "VAR+c", "wsram": "WS-RAM", "wsram_c": "WS-RAM+c",
    "wsram_q": "WS-RAM+q", "wsram_qc": "WS-RAM+q+c",
}


# Adam rates (theta, eta) chosen for each variant by the Fig. 2 grid on
# translated MNIST: the lowest mean validation error after 10,000 updates,
# theta's rate 1e-4..1e-2, eta's 1/3, 1 or 3 times it (benchmarks/RESULTS.md,
# "Figure 2 protocol"). Variants the grid did not tune use DEFAULT_RATE.
TUNED_RATES = {"wsram_qc": (3e-4, 9e-4), "var_c": (3e-3, 3e-3)}
DEFAULT_RATE = 1e-3


def default_rates(name: str) -> tuple:
  """(theta's, eta's) Adam rate for variant `name`: tuned or the default."""
  parse_variant(name)
  return TUNED_RATES.get(name, (DEFAULT_RATE, DEFAULT_RATE))


def parse_variant(name: str) -> Variant:
  """Returns the Variant called `name`; a typo lists the valid names."""
  if name not in VARIANTS:
    raise ValueError(f"config.variant: unknown variant {name!r}; valid: "
                     f"{', '.join(VARIANTS)}.")
  return VARIANTS[name]


class Losses(NamedTuple):
  loss_theta: tf.Tensor  # Scalar: the estimator's surrogate plus baseline MSE.
  loss_eta: tf.Tensor  # Scalar: the inference network's surrogate (0 without q).
  objective: tf.Tensor  # Scalar: the estimator's surrogate alone (logged).
  baseline_loss: tf.Tensor  # Scalar: VAR+c baseline MSE (0 otherwise).
  bound: tf.Tensor  # [batch] L_M.
  ess: tf.Tensor  # [batch] effective sample size.


def variant_losses(variant: Variant, log_prior_steps, log_proposal_steps,
                   log_likelihood, baseline_steps: Optional[tf.Tensor],
                   entropy_steps, entropy_weight: float = 0.0,
                   example_weights=None) -> Losses:
  """Routes a rollout ([batch, M, steps] terms) to the variant's estimator;
  `example_weights` [batch] (or None) weight each example's share."""
  if variant.estimator == "var":
    terms = objectives.var_losses(log_prior_steps, log_likelihood,
                                  baseline_steps, example_weights)
    loss_eta = tf.constant(0.0)
    baseline_loss = terms["loss_baseline"]
  else:
    # Without q the proposal is the (tempered) prior: a constant in the
    # weights, and there is no eta to train.
    log_proposal = tf.reduce_sum(log_proposal_steps, -1)
    if not variant.inference_net:
      log_proposal = tf.stop_gradient(log_proposal)
    terms = objectives.wsram_losses(
        tf.reduce_sum(log_prior_steps, -1), log_likelihood, log_proposal,
        variant.control_variates, example_weights)
    loss_eta = terms["loss_eta"] if variant.inference_net else tf.constant(0.0)
    baseline_loss = tf.constant(0.0)
  loss_theta = terms["loss_theta"] + baseline_loss
  if entropy_weight:  # Exploration (3): entropy bonus on p(a_n).
    loss_theta -= entropy_weight * objectives.batch_mean(
        tf.reduce_sum(entropy_steps, -1), example_weights)
  return Losses(loss_theta, loss_eta, terms["loss_theta"], baseline_loss,
                terms["bound"], terms["ess"])
