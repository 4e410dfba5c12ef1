"""The §4 estimators against exact answers on a toy model one can enumerate.

Toy model: N = 2 steps, K = 3 actions each, so 9 action sequences a = (a1, a2).
  prior       p(a1) = softmax(theta1),  p(a2|a1) = softmax(theta2[a1])
  likelihood  p(y|a) = sigmoid(phi[a1, a2])          (phi is part of theta)
  proposal    q(a1|y) = softmax(eta1), q(a2|a1,y) = softmax(eta2[a1])
log p(y), the posterior p(a|y), F (eq. 3), KL(p(a|y)||q) and their exact
gradients come from enumerating the 9 sequences (float64, GradientTape).

Per-replica gradient estimates: the surrogate losses are linear in the inputs
(log p(a^m), log p(y|a^m), log q(a^m)) with stopped coefficients, so d loss /
d params = sum_m (d loss / d input^m) (d input^m / d params). The first factor
is read off the API with one tape over a batch of R independent replicas (the
loss is a batch mean, so R x the gradient of row r is replica r's own); the
second is the exact per-sequence Jacobian. `test_harness_matches_direct_tape`
checks this against a plain tape through the parameters.

Tolerances. Unbiased estimators (VAR, the control variates with an exactly
zero mean) must match within 5 standard errors of the mean over R replicas.
Self-normalized importance sampling is biased by O(1/M); its leading term,
-(1/M) E_q[w^2 (f - mu)] with w the normalized weight (delta method), is
computed exactly by enumeration, and the allowance is twice its largest
coordinate at M = 100, where higher orders are O(1/M^2). Each test also checks
the tolerance is small against the quantity tested, so it can fail. All
randomness is stateless with fixed seeds: the tests are deterministic.
"""

import functools

import numpy as np
import tensorflow as tf

from wsram_tf import objectives

K = 3  # actions per step
SEQS = np.array([(a1, a2) for a1 in range(K) for a2 in range(K)])  # [9, 2]
NUM_THETA = K + K * K + K * K  # theta1, theta2, phi
Z = 5.0  # standard errors allowed


def _split_theta(theta):
  return theta[:K], tf.reshape(theta[K:K + K * K], [K, K]), tf.reshape(
      theta[K + K * K:], [K, K])


def _steps(logits1, logits2):
  """Per-step log-probs [9, 2] of a two-step sequential categorical."""
  step1 = tf.gather(tf.nn.log_softmax(logits1), SEQS[:, 0])
  step2 = tf.gather_nd(tf.nn.log_softmax(logits2), SEQS)
  return tf.stack([step1, step2], axis=1)


def log_prior_steps(theta):
  theta1, theta2, _ = _split_theta(theta)
  return _steps(theta1, theta2)


def log_likelihood(theta):
  return tf.math.log_sigmoid(tf.gather_nd(_split_theta(theta)[2], SEQS))


def log_proposal(eta):
  return tf.reduce_sum(
      _steps(eta[:K], tf.reshape(eta[K:], [K, K])), axis=1)


def _jacobian(fn, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return tape.jacobian(y, x).numpy()


def _grad(fn, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return tape.gradient(y, x).numpy()


class Toy:
  """Parameters, exact quantities and per-sequence Jacobians (float64)."""

  def __init__(self):
    rng = np.random.RandomState(0)
    self.theta = tf.constant(np.concatenate([
        [0.6, -0.4, 0.0], rng.normal(0, 0.8, K * K),
        rng.normal(-0.5, 1.5, K * K)]))
    lp = log_prior_steps(self.theta).numpy().sum(1)
    ll = log_likelihood(self.theta).numpy()
    self.lp, self.ll = lp, ll
    self.log_py = np.logaddexp.reduce(lp + ll)
    self.posterior = np.exp(lp + ll - self.log_py)
    # q: the posterior's own factors, perturbed, so q is near but not equal
    # to p(a|y) (weights vary; ESS < M).
    post = self.posterior.reshape(K, K)
    eta1 = np.log(post.sum(1)) + rng.normal(0, 0.4, K)
    eta2 = np.log(post / post.sum(1, keepdims=True))
    eta2 += rng.normal(0, 0.4, (K, K))
    self.eta = tf.constant(np.concatenate([eta1, eta2.ravel()]))
    self.lq = log_proposal(self.eta).numpy()
    # The prior tempered per step (logits / 2, §4.5), a proposal without eta.
    theta1, theta2, _ = _split_theta(self.theta)
    self.lt = tf.reduce_sum(_steps(theta1 / 2, theta2 / 2), 1).numpy()
    # Per-sequence Jacobians: [9, 2, P] per step, [9, P] totals.
    self.g_steps = _jacobian(log_prior_steps, self.theta)
    self.g_prior = self.g_steps.sum(1)
    self.g_lik = _jacobian(log_likelihood, self.theta)
    self.g_q = _jacobian(log_proposal, self.eta)
    # Exact targets.
    self.grad_log_py = _grad(
        lambda t: tf.reduce_logsumexp(
            tf.reduce_sum(log_prior_steps(t), 1) + log_likelihood(t)),
        self.theta)
    post64 = tf.constant(self.posterior)
    self.grad_kl = _grad(  # d/deta KL(p(a|y) || q) = -sum_a p(a|y) dlog q(a).
        lambda e: -tf.reduce_sum(post64 * log_proposal(e)), self.eta)
    self.grad_f = _grad(  # eq. 3-4: F = sum_a p(a) log p(y|a).
        lambda t: tf.reduce_sum(
            tf.exp(tf.reduce_sum(log_prior_steps(t), 1)) * log_likelihood(t)),
        self.theta)

  def proposal(self, name):
    return {"prior": self.lp, "tempered": self.lt, "q": self.lq}[name]

  def leading_bias(self, target, log_proposal_probs, f, m):
    """-(1/M) E_q[w^2 (f - mu)] of a self-normalized IS average of f (delta
    method); `target` the normalized target probabilities over the 9 seqs."""
    w = target / np.exp(log_proposal_probs)
    mu = target @ f
    return -(target * w) @ (f - mu) / m

  def sample(self, proposal, replicas, m, seed):
    """Sequence indices [R, M] drawn from `proposal` (log-probs over seqs)."""
    seqs = tf.random.stateless_categorical(
        tf.constant(proposal[None], tf.float32), replicas * m, seed)
    return tf.reshape(seqs, [replicas, m])

  def inputs(self, seqs, proposal):
    f = lambda table: tf.gather(tf.constant(table, tf.float32), seqs)
    return f(self.lp), f(self.ll), f(proposal)


@functools.lru_cache(maxsize=None)
def toy() -> Toy:
  return Toy()


def _per_replica(coef, seqs, jac):
  """sum_m coef[r, m] * jac[seqs[r, m]] -> [R, P] (float64)."""
  r = tf.shape(seqs)[0]
  ids = tf.range(r)[:, None] * len(SEQS) + tf.cast(seqs, tf.int32)
  totals = tf.math.unsorted_segment_sum(coef, ids, r * len(SEQS))
  return tf.reshape(tf.cast(totals, tf.float64), [r, len(SEQS)]).numpy() @ jac


def wsram_estimates(seqs, proposal_name, control_variates):
  """Per-replica theta and eta gradient estimates [R, P] of the API's losses."""
  t = toy()
  proposal = t.proposal(proposal_name)
  lp, ll, lq = t.inputs(seqs, proposal)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([lp, ll, lq])
    out = objectives.wsram_losses(lp, ll, lq, control_variates)
  scale = tf.cast(tf.shape(seqs)[0], tf.float32)  # undo the batch mean
  c_lp, c_ll = (scale * g for g in tape.gradient(out["loss_theta"], [lp, ll]))
  theta = (_per_replica(c_lp, seqs, t.g_prior) +
           _per_replica(c_ll, seqs, t.g_lik))
  c_lq = scale * tape.gradient(out["loss_eta"], lq)
  eta = _per_replica(c_lq, seqs, t.g_q)
  return theta, eta, out


def var_estimates(seqs, baseline_steps=None):
  t = toy()
  lp_steps = tf.gather(tf.cast(log_prior_steps(t.theta), tf.float32), seqs)
  ll = tf.gather(tf.constant(t.ll, tf.float32), seqs)
  with tf.GradientTape() as tape:
    tape.watch([lp_steps, ll])
    out = objectives.var_losses(lp_steps, ll, baseline_steps)
  scale = tf.cast(tf.shape(seqs)[0], tf.float32)
  c_steps, c_ll = (scale * g for g in tape.gradient(out["loss_theta"],
                                                     [lp_steps, ll]))
  theta = _per_replica(c_ll, seqs, t.g_lik)
  for n in range(2):
    theta += _per_replica(c_steps[..., n], seqs, t.g_steps[:, n])
  return theta, out


def mean_and_se(x):
  return x.mean(0), x.std(0, ddof=1) / np.sqrt(len(x))


def enumerate_pairs():
  """All 81 M = 2 tuples of sequences, as replicas [81, 2]."""
  n = len(SEQS)
  return tf.constant([(i, j) for i in range(n) for j in range(n)])


class EstimatorTestCase(tf.test.TestCase):

  def assertMatches(self, estimates, exact, bias=0.0, scale=None):
    """|mean - exact| <= Z se + bias per coordinate, and the tolerance is
    under a fifth of the largest |coordinate| of `scale` (default `exact`)."""
    mean, se = mean_and_se(estimates)
    tolerance = Z * se + bias
    scale = np.max(np.abs(exact if scale is None else scale))
    self.assertLess(np.max(tolerance), 0.2 * scale,
                    "tolerance too loose to detect an error")
    bad = np.abs(mean - exact) > tolerance
    self.assertFalse(np.any(bad), f"mean {mean[bad]} vs exact {exact[bad]} "
                     f"(tolerance {tolerance[bad]})")


class WsramWeightsTest(tf.test.TestCase):

  def _random(self, shape, seed):
    return tf.random.stateless_normal(shape, seed, stddev=3.0)

  def test_weights_bound_and_ess(self):
    for m in (1, 2, 7):
      lp, ll, lq = (self._random([16, m], (m, i)) for i in range(3))
      out = objectives.wsram_losses(lp, ll, lq, control_variates=False)
      log_w = (lp + ll - lq).numpy()
      w = out["weights"].numpy()
      self.assertAllClose(w.sum(-1), np.ones(16), atol=1e-6)
      self.assertAllClose(w, np.exp(log_w - np.logaddexp.reduce(
          log_w, -1, keepdims=True)), atol=1e-6)
      self.assertAllClose(out["ess"], 1.0 / np.square(w).sum(-1), rtol=1e-5)
      self.assertAllInRange(out["ess"], 1.0 - 1e-5, m + 1e-5)
      self.assertAllClose(out["bound"],
                          np.logaddexp.reduce(log_w, -1) - np.log(m), atol=1e-5)

  def test_weights_carry_no_gradient(self):
    lp, ll, lq = (self._random([4, 3], (9, i)) for i in range(3))
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([lp, ll, lq])
      out = objectives.wsram_losses(lp, ll, lq, control_variates=True)
    for key in ("weights", "bound", "ess"):
      self.assertAllEqual([None] * 3, tape.gradient(out[key], [lp, ll, lq]))

  def test_ess_is_m_for_equal_weights_and_one_for_a_single_weight(self):
    flat = objectives.wsram_losses(tf.zeros([2, 5]), tf.zeros([2, 5]),
                                   tf.zeros([2, 5]), False)
    self.assertAllClose(flat["ess"], [5.0, 5.0])
    peaked = objectives.wsram_losses(
        tf.constant([[0.0, -1e4, -1e4]]), tf.zeros([1, 3]), tf.zeros([1, 3]),
        False)
    self.assertAllClose(peaked["ess"], [1.0])

  def test_bad_shapes_name_the_argument(self):
    with self.assertRaisesRegex(ValueError, "log_likelihood"):
      objectives.wsram_losses(tf.zeros([2, 5]), tf.zeros([2, 4]),
                              tf.zeros([2, 5]), False)
    with self.assertRaisesRegex(ValueError, "log_prior"):
      objectives.wsram_losses(tf.zeros([2, 5, 3]), tf.zeros([2, 5]),
                              tf.zeros([2, 5]), False)
    with self.assertRaisesRegex(ValueError, "log_prior_steps"):
      objectives.var_losses(tf.zeros([2, 5]), tf.zeros([2, 5]))
    with self.assertRaisesRegex(ValueError, "baseline_steps"):
      objectives.var_losses(tf.zeros([2, 5, 3]), tf.zeros([2, 5]),
                            tf.zeros([2, 5, 2]))


class WsramGradientTest(EstimatorTestCase):
  """WS-RAM (eq. 8, 14) and WS-RAM+c (eq. 16-17) against the exact toy model."""

  def _direct(self, proposal, control_variates, seqs):
    """Gradients by a plain tape through theta and eta, and L_M written out."""
    t = toy()
    theta, eta = tf.Variable(t.theta), tf.Variable(t.eta)
    with tf.GradientTape(persistent=True) as tape:
      lp = tf.gather(tf.reduce_sum(log_prior_steps(theta), 1), seqs)
      ll = tf.gather(log_likelihood(theta), seqs)
      lq = lp if proposal == "prior" else tf.gather(log_proposal(eta), seqs)
      out = objectives.wsram_losses(*(tf.cast(x, tf.float32)
                                      for x in (lp, ll, lq)), control_variates)
      # L_M (eq. 9) with the proposal held fixed, and its y-free twin
      # R_M = log (1/M) sum_m p(a^m)/q(a^m) whose gradient is the theta
      # control variate: the +c estimate is d(L_M - R_M)/dtheta.
      m = tf.cast(tf.shape(seqs)[1], tf.float64)
      bound = tf.reduce_logsumexp(lp + ll - tf.stop_gradient(lq), 1)
      ratio = tf.reduce_logsumexp(lp - tf.stop_gradient(lq), 1)
      target = bound - ratio if control_variates else bound - tf.math.log(m)
      target = tf.reduce_mean(target)
    return (tape.gradient(out["loss_theta"], theta).numpy(),
            tape.gradient(out["loss_eta"], eta),
            tape.gradient(target, theta).numpy())

  def test_harness_matches_direct_tape(self):
    seqs = toy().sample(toy().lq, 64, 5, (1, 1))
    for control_variates in (False, True):
      theta, eta, _ = wsram_estimates(seqs, "q", control_variates)
      direct_theta, direct_eta, _ = self._direct("q", control_variates, seqs)
      self.assertAllClose(theta.mean(0), direct_theta, atol=1e-6)
      self.assertAllClose(eta.mean(0), direct_eta, atol=1e-6)

  def test_theta_loss_is_minus_gradient_of_bound(self):
    """Per sample, eq. 8 is dL_M/dtheta and eq. 16 is d(L_M - R_M)/dtheta,
    with q held fixed even when it is the prior itself (same tensor)."""
    for proposal in ("prior", "q"):
      seqs = toy().sample(toy().proposal(proposal), 64, 5, (1, 2))
      for control_variates in (False, True):
        loss_grad, _, target_grad = self._direct(proposal, control_variates,
                                                 seqs)
        self.assertAllClose(loss_grad, -target_grad, atol=1e-6)

  def test_exact_expectation_for_two_samples(self):
    """All 81 pairs enumerated: E[eq. 8] = dE_q[L_2]/dtheta, E[eq. 16] =
    dE_q[L_2 - R_2]/dtheta, and the eta control variate has mean exactly 0."""
    t, pairs = toy(), enumerate_pairs()
    for proposal in ("prior", "q"):
      lq = t.proposal(proposal)
      prob = np.exp(lq[pairs.numpy()].sum(1))
      self.assertAllClose(prob.sum(), 1.0)
      expect = {}
      for cv in (False, True):
        theta, eta, _ = wsram_estimates(pairs, proposal, cv)
        expect[cv] = prob @ theta, prob @ eta
        self.assertAllClose(expect[cv][0], -self._expected_target(
            proposal, cv, pairs, prob), atol=1e-6)
      if proposal == "q":  # E_q[dlog q/deta] = 0 (eq. 15), needs a^m ~ q.
        self.assertAllClose(expect[True][1], expect[False][1], atol=1e-6)
      else:  # r~ = 1/M: the theta control variate is zero-mean too.
        self.assertAllClose(expect[True][0], expect[False][0], atol=1e-6)

  def _expected_target(self, proposal, control_variates, pairs, prob):
    t = toy()
    theta = tf.Variable(t.theta)
    lq = tf.constant(t.proposal(proposal))
    with tf.GradientTape() as tape:
      lp = tf.gather(tf.reduce_sum(log_prior_steps(theta), 1), pairs)
      ll = tf.gather(log_likelihood(theta), pairs)
      q = tf.gather(lq, pairs)
      value = tf.reduce_logsumexp(lp + ll - q, 1)
      if control_variates:
        value -= tf.reduce_logsumexp(lp - q, 1)
      value = tf.reduce_sum(prob * value)
    return tape.gradient(value, theta).numpy()

  def test_monte_carlo_mean_matches_enumeration_for_two_samples(self):
    t, pairs = toy(), enumerate_pairs()
    for i, (proposal, cv) in enumerate([("prior", False), ("prior", True),
                                        ("q", False), ("q", True)]):
      lq = t.proposal(proposal)
      prob = np.exp(lq[pairs.numpy()].sum(1))
      exact_theta, exact_eta, _ = wsram_estimates(pairs, proposal, cv)
      seqs = t.sample(lq, 40000, 2, (2, i))
      theta, eta, _ = wsram_estimates(seqs, proposal, cv)
      self.assertMatches(theta, prob @ exact_theta)
      if proposal == "q":
        self.assertMatches(eta, prob @ exact_eta)

  def test_theta_gradient_approaches_gradient_of_log_marginal(self):
    """M = 100: mean of -dloss_theta/dtheta = dlog p(y)/dtheta up to the
    leading self-normalization bias (and that of the r~ control variate)."""
    t, m = toy(), 100
    for i, proposal in enumerate(("prior", "tempered", "q")):
      lq = t.proposal(proposal)
      seqs = t.sample(lq, 4000, m, (3, i))
      bias = t.leading_bias(t.posterior, lq, t.g_prior + t.g_lik, m)
      cv_bias = t.leading_bias(np.exp(t.lp), lq, t.g_prior, m)
      for cv in (False, True):
        theta, _, _ = wsram_estimates(seqs, proposal, cv)
        allowance = 2 * np.max(np.abs(bias - cv_bias if cv else bias))
        self.assertMatches(-theta, t.grad_log_py, allowance)

  def test_eta_gradient_approaches_gradient_of_kl(self):
    """M = 100: mean of dloss_eta/deta = dKL(p(a|y) || q)/deta (eq. 12-14)."""
    t, m = toy(), 100
    seqs = t.sample(t.lq, 4000, m, (4, 0))
    bias = t.leading_bias(t.posterior, t.lq, t.g_q, m)
    for cv in (False, True):
      _, eta, _ = wsram_estimates(seqs, "q", cv)
      self.assertMatches(eta, t.grad_kl, 2 * np.max(np.abs(bias)))

  def test_control_variates_have_zero_mean(self):
    """+c minus plain on the same samples: (1/M) sum dlog q for eta and, with
    the prior as proposal, (1/M) sum dlog p for theta; exactly zero-mean."""
    t, m = toy(), 5
    for i, (proposal, part) in enumerate([("q", 1), ("prior", 0)]):
      seqs = t.sample(t.proposal(proposal), 20000, m, (5, i))
      with_cv = wsram_estimates(seqs, proposal, True)[part]
      plain = wsram_estimates(seqs, proposal, False)[part]
      scale = t.grad_kl if part else t.grad_log_py
      self.assertMatches(with_cv - plain, np.zeros_like(scale), scale=scale)

  def test_theta_control_variate_with_q_vanishes_for_large_m(self):
    """With q the r~ control variate is self-normalized: zero-mean up to the
    O(1/M) bias, checked at M = 100."""
    t, m = toy(), 100
    seqs = t.sample(t.lq, 4000, m, (6, 0))
    diff = (wsram_estimates(seqs, "q", True)[0] -
            wsram_estimates(seqs, "q", False)[0])
    bias = t.leading_bias(np.exp(t.lp), t.lq, t.g_prior, m)
    self.assertMatches(diff, np.zeros(NUM_THETA), 2 * np.max(np.abs(bias)),
                       scale=t.grad_log_py)

  def test_control_variates_reduce_variance(self):
    """On this toy model +c cuts the total variance (trace of the covariance)
    of every estimate by well over half; fixed seeds."""
    t, m = toy(), 5
    for i, (proposal, part) in enumerate([("prior", 0), ("q", 0), ("q", 1)]):
      seqs = t.sample(t.proposal(proposal), 4000, m, (7, i))
      with_cv = wsram_estimates(seqs, proposal, True)[part]
      plain = wsram_estimates(seqs, proposal, False)[part]
      self.assertLess(with_cv.var(0).sum(), 0.5 * plain.var(0).sum())


class BoundTest(tf.test.TestCase):
  """L_M (eq. 9-10): below log p(y) in expectation, growing with M."""

  def test_exact_expectation_for_one_and_two_samples(self):
    t, pairs = toy(), enumerate_pairs()
    singles = tf.range(len(SEQS))[:, None]
    for proposal in ("prior", "q"):
      lq = t.proposal(proposal)
      p1 = np.exp(lq)
      p2 = np.exp(lq[pairs.numpy()].sum(1))
      b1 = wsram_estimates(singles, proposal, False)[2]["bound"].numpy()
      b2 = wsram_estimates(pairs, proposal, False)[2]["bound"].numpy()
      # E[L_1] = E_q[log w] (eq. 10), which is F of eq. 3 for the prior.
      self.assertAllClose(p1 @ b1, p1 @ (t.lp + t.ll - lq), atol=1e-5)
      if proposal == "prior":
        self.assertAllClose(p1 @ b1, np.exp(t.lp) @ t.ll, atol=1e-5)
      self.assertLess(p1 @ b1, p2 @ b2)
      self.assertLess(p2 @ b2, t.log_py)

  def test_monte_carlo_bound_is_below_log_marginal_and_grows_with_m(self):
    t = toy()
    means, ses = [], []
    for m in (1, 5, 50):
      seqs = t.sample(t.lp, 40000, m, (8, m))
      bound = wsram_estimates(seqs, "prior", False)[2]["bound"].numpy()
      mean, se = mean_and_se(bound.astype(np.float64))
      means.append(mean)
      ses.append(se)
      self.assertLess(mean, t.log_py + Z * se)
    for i in range(2):
      self.assertGreater(means[i + 1] - means[i],
                         Z * np.hypot(ses[i], ses[i + 1]))


class VarTest(EstimatorTestCase):
  """VAR (eq. 3-5), samples from the prior: unbiased for dF/dtheta."""

  def _baselines(self, seqs):
    """b_n computed before a_n is drawn: constant, or b_2 a function of a_1."""
    a1 = tf.gather(tf.constant(SEQS[:, 0]), seqs)
    per_step = tf.stack([tf.fill(tf.shape(seqs), -0.8),
                         tf.gather(tf.constant([-0.3, -1.0, -0.6]), a1)], -1)
    return {"none": None, "constant": tf.fill(tf.concat(
        [tf.shape(seqs), [2]], 0), -0.7), "per_step": per_step}

  def test_gradient_is_unbiased_for_variational_bound(self):
    t = toy()
    seqs = t.sample(t.lp, 4000, 5, (10, 0))
    for name, baseline in self._baselines(seqs).items():
      with self.subTest(baseline=name):
        theta, _ = var_estimates(seqs, baseline)
        self.assertMatches(-theta, t.grad_f)

  def test_baseline_that_has_seen_the_action_is_detected_as_biased(self):
    """Power check of the test above: b_n = log p(y|a) sees a_n, which cancels
    the score-function term, and the same check rejects the estimate."""
    t = toy()
    seqs = t.sample(t.lp, 4000, 5, (10, 0))
    reward = tf.gather(tf.constant(t.ll, tf.float32), seqs)
    theta, _ = var_estimates(seqs, tf.stack([reward, reward], -1))
    with self.assertRaisesRegex(AssertionError, "vs exact"):
      self.assertMatches(-theta, t.grad_f)

  def test_good_baseline_reduces_variance(self):
    t = toy()
    seqs = t.sample(t.lp, 4000, 5, (11, 0))
    expected_reward = float(np.exp(t.lp) @ t.ll)
    plain, _ = var_estimates(seqs)
    centred, _ = var_estimates(seqs, tf.fill([4000, 5, 2], expected_reward))
    self.assertLess(centred.var(0).sum(), 0.5 * plain.var(0).sum())

  def test_baseline_is_trained_only_by_baseline_loss(self):
    lp_steps = tf.random.stateless_normal([3, 4, 2], (12, 0))
    ll = tf.random.stateless_normal([3, 4], (12, 1))
    baseline = tf.random.stateless_normal([3, 4, 2], (12, 2))
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([ll, baseline])
      out = objectives.var_losses(lp_steps, ll, baseline)
    self.assertIsNone(tape.gradient(out["loss_theta"], baseline))
    self.assertAllClose(tape.gradient(out["loss_baseline"], baseline),
                        2 * (baseline - ll[..., None]) / 24)
    self.assertIsNone(tape.gradient(out["loss_baseline"], ll))
    self.assertAllClose(out["loss_baseline"],
                        np.mean(np.square(baseline - ll[..., None])))

  def test_no_baseline_means_zero_baseline_loss(self):
    out = objectives.var_losses(tf.ones([3, 4, 2]), -tf.ones([3, 4]), None)
    self.assertEqual(0.0, float(out["loss_baseline"]))

  def test_bound_is_wsram_bound_with_prior_proposal(self):
    lp_steps = tf.random.stateless_normal([6, 5, 2], (13, 0))
    ll = tf.random.stateless_normal([6, 5], (13, 1), stddev=3.0)
    lp = tf.reduce_sum(lp_steps, -1)
    var = objectives.var_losses(lp_steps, ll)
    wsram = objectives.wsram_losses(lp, ll, lp, control_variates=False)
    for key in ("bound", "ess", "weights"):
      self.assertAllClose(var[key], wsram[key], atol=1e-6)


class XlaTest(tf.test.TestCase):

  def _run(self, fn, *args):
    """Values and input gradients of every loss of `fn`."""
    def values_and_grads(*xs):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(xs)
        out = fn(*xs)
      grads = {k: [g if g is not None else tf.zeros_like(x)
                   for g, x in zip(tape.gradient(v, xs), xs)]
               for k, v in out.items() if k.startswith("loss")}
      return out, grads
    eager = values_and_grads(*args)
    compiled = tf.function(values_and_grads, jit_compile=True)(*args)
    self.assertAllClose(eager, compiled, rtol=1e-5, atol=1e-6)

  def test_compiled_matches_eager(self):
    x = [tf.random.stateless_normal([8, 5], (14, i), stddev=2.0)
         for i in range(3)]
    for cv in (False, True):
      self._run(lambda a, b, c: objectives.wsram_losses(a, b, c, cv), *x)
    steps = tf.random.stateless_normal([8, 5, 3], (14, 3))
    self._run(lambda a, b: objectives.var_losses(a, b, None), steps, x[0])
    self._run(objectives.var_losses, steps, x[0], steps + 1.0)


if __name__ == "__main__":
  tf.test.main()
