"""The gradient estimators of paper §4 (docs/design.md §2), as surrogate losses.

Each loss is built so that its gradient is the paper's Monte-Carlo estimator:
sampled actions and importance weights enter only through `tf.stop_gradient`
(`sg`), so `tape.gradient(loss, params)` returns the estimate itself. Inputs
are per-example tensors over M action sequences a^1..a^M drawn from the
proposal; every loss is a mean over the batch, or with `example_weights`
[batch] a weighted mean sum_b w_b l_b / sum_b w_b (weight 2 counts an example
twice).

    log w^m = log p(a^m|I) + log p(y|a^m,I) - log q(a^m|y,I)      (eq. 7)
    w~^m    = softmax_m(log w^m),  r~^m = softmax_m(log p(a^m) - log q(a^m))
    L_M     = logsumexp_m(log w^m) - log M,  E[L_M] <= log p(y|I)  (eq. 9)
    ESS     = 1 / sum_m (w~^m)^2                                   (in [1, M])

`log_proposal` should carry gradients to eta only: when the proposal is the
(tempered) prior, pass it stopped, or leave `loss_eta` out of the update.
"""

import tensorflow as tf

sg = tf.stop_gradient


def _check(name: str, x: tf.Tensor, rank: int, prefix=None):
  """Raises a ValueError naming `name` if its static shape is wrong."""
  shape = x.shape
  if shape.rank is None:
    return
  if shape.rank != rank:
    raise ValueError(f"objectives: `{name}` must have rank {rank}, got shape "
                     f"{shape}.")
  prefix = tf.TensorShape(prefix)
  if prefix.rank is not None and not shape[:prefix.rank].is_compatible_with(
      prefix):
    raise ValueError(f"objectives: `{name}` has shape {shape}; expected it to "
                     f"start with the [batch, M] shape {prefix}.")


def batch_mean(x: tf.Tensor, example_weights=None) -> tf.Tensor:
  """Mean of x [batch, ...] over all its entries, each example's entries
  weighted by example_weights [batch] (None: equal weights)."""
  if example_weights is None:
    return tf.reduce_mean(x)
  w = tf.cast(tf.reshape(example_weights, [-1]), x.dtype)
  per_example = tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=-1)
  return tf.math.divide_no_nan(tf.reduce_sum(w * per_example),
                               tf.reduce_sum(w))


def importance_weights(log_weights: tf.Tensor) -> dict:
  """Normalized weights, bound L_M and ESS from log w [batch, M] (eq. 7, 9)."""
  log_weights = sg(log_weights)
  weights = tf.nn.softmax(log_weights, axis=-1)
  m = tf.cast(tf.shape(log_weights)[-1], log_weights.dtype)
  return {
      "weights": weights,
      "bound": tf.reduce_logsumexp(log_weights, axis=-1) - tf.math.log(m),
      "ess": 1.0 / tf.reduce_sum(tf.square(weights), axis=-1),
  }


def wsram_losses(log_prior: tf.Tensor, log_likelihood: tf.Tensor,
                 log_proposal: tf.Tensor, control_variates: bool,
                 example_weights=None) -> dict:
  """WS-RAM losses for theta (eq. 8 / 16) and eta (eq. 14 / 17).

  Args:
    log_prior: [batch, M] log p(a^m|I), summed over glimpses.
    log_likelihood: [batch, M] log p(y|a^m, I).
    log_proposal: [batch, M] log q(a^m|y, I) of the distribution a^m was
      drawn from (the inference network, or the possibly tempered prior).
    control_variates: use the control variates of §4.4 (eq. 15-17).
    example_weights: optional [batch] weights of the batch mean.

  Returns:
    dict: scalars `loss_theta`, `loss_eta`; per example `bound` L_M and `ess`
    [batch]; `weights` w~ [batch, M].
  """
  log_prior, log_likelihood, log_proposal = map(
      tf.convert_to_tensor, (log_prior, log_likelihood, log_proposal))
  _check("log_prior", log_prior, 2)
  _check("log_likelihood", log_likelihood, 2, log_prior.shape)
  _check("log_proposal", log_proposal, 2, log_prior.shape)
  out = importance_weights(log_prior + log_likelihood - log_proposal)
  w = out["weights"]
  if control_variates:
    # E_q[(p/q) dlog p/dtheta] = 0 and E_q[dlog q/deta] = 0 (eq. 15), estimated
    # with the same samples: subtract r~ and 1/M from the weights (eq. 16-17).
    r = tf.nn.softmax(sg(log_prior - log_proposal), axis=-1)
    m = tf.cast(tf.shape(w)[-1], w.dtype)
    theta = w * log_likelihood + (w - r) * log_prior
    eta = (w - 1.0 / m) * log_proposal
  else:
    theta = w * (log_likelihood + log_prior)  # eq. 8
    eta = w * log_proposal  # eq. 14: the wake-q step, min KL(p(a|y) || q).
  out["loss_theta"] = -batch_mean(tf.reduce_sum(theta, axis=-1),
                                  example_weights)
  out["loss_eta"] = -batch_mean(tf.reduce_sum(eta, axis=-1), example_weights)
  return out


def var_losses(log_prior_steps: tf.Tensor, log_likelihood: tf.Tensor,
               baseline_steps: tf.Tensor = None,
               example_weights=None) -> dict:
  """The variational-bound baseline (VAR, eq. 3-5) with a^m from the prior.

  Args:
    log_prior_steps: [batch, M, N] log p(a_n^m | a_<n^m, I) per glimpse.
    log_likelihood: [batch, M] log p(y|a^m, I).
    baseline_steps: [batch, M, N] reward baseline b_n^m (VAR+c), computed from
      the state a_n^m is drawn from, or None (VAR).
    example_weights: optional [batch] weights of the batch mean.

  Returns:
    dict: scalar `loss_theta`, whose gradient is eq. 5 with reward
    log p(y|a^m) - b_n^m for step n; scalar `loss_baseline`, the squared error
    of b to the reward (0 without a baseline); and, to compare curves with
    WS-RAM, `bound` = L_M with the prior as proposal, its `ess` and `weights`.
  """
  log_prior_steps = tf.convert_to_tensor(log_prior_steps)
  log_likelihood = tf.convert_to_tensor(log_likelihood)
  _check("log_prior_steps", log_prior_steps, 3)
  _check("log_likelihood", log_likelihood, 2, log_prior_steps.shape[:2])
  reward = sg(log_likelihood)[..., None]  # [batch, M, 1]
  if baseline_steps is None:
    advantage = reward
    loss_baseline = tf.constant(0.0, log_likelihood.dtype)
  else:
    baseline_steps = tf.convert_to_tensor(baseline_steps)
    _check("baseline_steps", baseline_steps, 3, log_prior_steps.shape)
    advantage = reward - sg(baseline_steps)
    loss_baseline = batch_mean(tf.square(baseline_steps - reward),
                               example_weights)
  per_sample = log_likelihood + tf.reduce_sum(advantage * log_prior_steps, -1)
  # log q = log p cancels in log w: w^m = p(y|a^m), so w~ = softmax(log p(y|a)).
  out = importance_weights(log_likelihood)
  # Mean over batch and m.
  out["loss_theta"] = -batch_mean(per_sample, example_weights)
  out["loss_baseline"] = loss_baseline
  return out
