"""The WS-RAM classifier: rollout of N glimpses for M samples, test step.

One `rollout` serves training, evaluation and export: the M action sequences
per example are folded into the batch ([B*M, ...]) and drawn in one pass, the
glimpse sensor reads each image without tiling it M times, and the sampled
actions are constants for the gradient (docs/design.md §2). The shared
`wake_sleep_model.WakeSleepModel` turns the rollout into the variant's losses
and the update; this model adds the train error of prior samples
(`extra_stats`) and the test step.
"""

from typing import NamedTuple, Optional

import keras
import tensorflow as tf

from wsram_tf import distributions
from wsram_tf import exploration
from wsram_tf import variants
from wsram_tf import wake_sleep_model
from wsram_tf.classifier import glimpse
from wsram_tf.classifier import networks


class Rollout(NamedTuple):
  """Everything one batched pass of N glimpses x M samples produces."""
  log_prior_steps: tf.Tensor  # [B, M, N] log p(a_n | a_<n, I).
  log_proposal_steps: tf.Tensor  # [B, M, N] log of the (tempered) proposal.
  log_likelihood: tf.Tensor  # [B, M] log p(y | a^m, I) (zeros without labels).
  class_logits: tf.Tensor  # [B, M, classes].
  baseline_steps: Optional[tf.Tensor]  # [B, M, N] VAR+c baseline, else None.
  entropy_steps: tf.Tensor  # [B, M, N] entropy of p(a_n).
  locations: tf.Tensor  # [B, M, N, 2] sampled glimpse centres.
  scales: tf.Tensor  # [B, M, N] sampled scale indices.
  location_means: tf.Tensor  # [B, M, N, 2] means of p(l_n).
  scale_probs: tf.Tensor  # [B, M, N, K] probabilities of p(s_n).


class Prediction(NamedTuple):
  probabilities: tf.Tensor  # [B, classes], averaged over the M samples.
  locations: tf.Tensor  # [B, N, 2] glimpse trace of the first sample.
  scales: tf.Tensor  # [B, N]


class WSRAM(wake_sleep_model.WakeSleepModel):
  """Stochastic hard-attention classifier trained by VAR or WS-RAM."""

  extra_stats_seeded = True  # The train error draws its own prior samples.

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.variant = variants.parse_variant(config.variant)
    m = config.model
    self.num_scales = len(m.scale_factors)
    if m.num_classes < 1:
      raise ValueError(
          f"config.model.num_classes={m.num_classes}: the model needs the "
          "number of classes (0 is resolved from the data by the run).")
    self.num_classes = int(m.num_classes)
    self.seed_generator = keras.random.SeedGenerator(config.seed)
    if m.recurrent_layers not in (1, 2):
      raise ValueError("config.model.recurrent_layers must be 1 (RAM) or 2 "
                       f"(the paper's network), got {m.recurrent_layers}.")
    # Two layers (paper Fig. 1): the context view starts layer 2, which
    # drives the actions; layer 1 feeds the class head. One layer (the RAM
    # of Mnih et al. 2014): one core state, from zero, drives everything.
    self.two_layers = m.recurrent_layers == 2
    self.context_encoder = None
    self.rnn2 = None
    if self.two_layers:
      self.context_encoder = keras.layers.Dense(
          m.hidden_size, activation="relu", name="context")
      self.rnn2 = networks.ReLURNNCell(m.hidden_size, name="rnn2")
    self.encoder = networks.GlimpseEncoder(
        m.hidden_size, self.num_scales, m.glimpse_units,
        name="glimpse_encoder")
    self.rnn1 = networks.ReLURNNCell(m.hidden_size, name="rnn1")
    self.action_head = distributions.ActionHead(
        self.num_scales, m.location_std, m.learn_location_std, name="action")
    self.class_head = keras.layers.Dense(m.num_classes, name="classifier")
    self.add_estimator_layers(m.hidden_size, m.num_classes,
                              m.label_embedding_size, self.num_scales, m)
    # The train error of prior samples is free when training samples the
    # prior; otherwise it costs a second rollout (~20% of a +q step), which
    # config.train.prior_train_error=False skips (no train_error logged).
    self.extra_error_rollout = (self.variant.inference_net
                                or config.objective.temperature != 1.0)
    self.report_train_error = (config.train.prior_train_error
                               or not self.extra_error_rollout)
    names = [n for n in ("loss", "bound", "ess", "train_error", "baseline_loss")
             if n != "train_error" or self.report_train_error]
    self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
    self.error_tracker = keras.metrics.Mean(name="error")
    self.log_likelihood_tracker = keras.metrics.Mean(name="log_likelihood")

  # -- building -------------------------------------------------------------

  def build(self, input_shape):
    m = self.config.model
    channels = input_shape[-1]
    hidden = (None, m.hidden_size)
    if self.two_layers:
      self.context_encoder.build((None, m.context_size ** 2 * channels))
      self.rnn2.build(hidden)
    self.encoder.build(((None, m.patch_size ** 2 * channels), (None, 2),
                        (None,)))
    self.rnn1.build(hidden)
    self.action_head.build(hidden)
    self.class_head.build(hidden)
    self.finish_build(hidden)

  # -- the glimpse rollout --------------------------------------------------

  def rollout(self, images, labels=None, num_samples: int = 1,
              proposal: str = "prior", temperature: float = 1.0,
              seed=None) -> Rollout:
    """Runs N glimpses for `num_samples` action sequences per image."""
    self.check_proposal(proposal, labels)
    m = self.config.model
    batch = tf.shape(images)[0]
    samples = num_samples
    if seed is None:
      seed = self.seed_generator.next()
    step_seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int32), m.num_glimpses)

    rows = batch * samples

    if self.two_layers:
      context = glimpse.context_view(images, m.context_size)
      r2 = self.context_encoder(tf.reshape(context, [batch, -1]))
      r2 = tf.repeat(r2, samples, axis=0)  # sample m of image b sits at b*M+m.
      r1 = tf.zeros_like(r2)
    else:
      r1 = r2 = tf.zeros([rows, m.hidden_size], images.dtype)
    repeated_labels = None if labels is None else tf.repeat(labels, samples)

    outputs = {k: [] for k in ("log_prior", "log_proposal", "baseline",
                               "entropy", "location", "scale", "mean", "probs")}
    for n in range(m.num_glimpses):
      prior = distributions.ActionDistribution(self.action_head(r2))
      params = (self.inference((r2, repeated_labels))
                if proposal == "inference" else None)
      action, sampler = distributions.propose(
          prior, proposal, params, temperature, step_seeds[n], rows)
      outputs["log_prior"].append(prior.log_prob(action))
      outputs["log_proposal"].append(sampler.log_prob(action))
      outputs["entropy"].append(prior.entropy())
      outputs["location"].append(action.location)
      outputs["scale"].append(action.scale)
      outputs["mean"].append(prior.params.location_mean)
      outputs["probs"].append(tf.nn.softmax(prior.params.scale_logits))
      if self.baseline_head is not None:
        # b_n comes from r2_{n-1}, the state a_n is drawn from: unbiased.
        outputs["baseline"].append(
            self.baseline_head(tf.stop_gradient(r2))[:, 0])
      patches = glimpse.extract_glimpses(
          images, tf.reshape(action.location, [batch, samples, 2]),
          tf.reshape(action.scale, [batch, samples]), m.patch_size,
          m.scale_factors)
      features = self.encoder((tf.reshape(patches, [batch * samples, -1]),
                               action.location, action.scale))
      r1 = self.rnn1(features, r1)
      # r2 is the state the next action is drawn from.
      r2 = self.rnn2(r1, r2) if self.two_layers else r1

    logits = self.class_head(r1)
    if labels is None:
      log_likelihood = tf.zeros([batch * samples], logits.dtype)
    else:
      log_likelihood = -tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.cast(repeated_labels, tf.int32), logits=logits)

    def fold(x):  # N tensors [B*M, ...] -> [B, M, N, ...]
      return wake_sleep_model.fold(x, batch, samples)

    return Rollout(
        log_prior_steps=fold(outputs["log_prior"]),
        log_proposal_steps=fold(outputs["log_proposal"]),
        log_likelihood=tf.reshape(log_likelihood, [batch, samples]),
        # Not -1: with batch 0 the class axis could not be inferred.
        class_logits=tf.reshape(logits, [batch, samples, self.num_classes]),
        baseline_steps=(fold(outputs["baseline"])
                        if outputs["baseline"] else None),
        entropy_steps=fold(outputs["entropy"]),
        locations=fold(outputs["location"]),
        scales=fold(outputs["scale"]),
        location_means=fold(outputs["mean"]),
        scale_probs=fold(outputs["probs"]))

  # -- prediction -----------------------------------------------------------

  def predict_with_trace(self, images, num_samples: Optional[int] = None,
                         deterministic: Optional[bool] = None,
                         seed=None) -> Prediction:
    """p(y|I) ~ (1/M) sum_m p(y|a^m), a^m from the prior, or the mode."""
    if deterministic is None:
      deterministic = self.config.eval.deterministic
    if num_samples is None:
      num_samples = 1 if deterministic else self.config.eval.num_samples
    out = self.rollout(images, None, num_samples,
                       "mode" if deterministic else "prior", seed=seed)
    probabilities = tf.reduce_mean(tf.nn.softmax(out.class_logits), axis=1)
    return Prediction(probabilities, out.locations[:, 0], out.scales[:, 0])

  def call(self, images, training=False):
    return self.predict_with_trace(images).probabilities

  # -- training and evaluation ----------------------------------------------

  def coverage_penalty(self, rollout: Rollout) -> tf.Tensor:
    n, k = self.config.model.num_glimpses, self.num_scales
    return exploration.coverage_penalty(
        tf.reshape(rollout.location_means, [-1, n, 2]),
        tf.reshape(rollout.scale_probs, [-1, n, k]))

  def extra_stats(self, images, labels, rollout: Rollout, seed) -> dict:
    """Error of the M-sample prior average: comparable across variants."""
    if not self.report_train_error:
      return {}
    if self.extra_error_rollout:
      rollout = self.rollout(images, None, self.config.objective.num_samples,
                             "prior", seed=seed)
    probabilities = tf.reduce_mean(
        tf.nn.softmax(tf.stop_gradient(rollout.class_logits)), axis=1)
    return {"train_error": _error(probabilities, labels)}

  def test_step(self, data):
    images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
    e = self.config.eval
    samples = 1 if e.deterministic else e.num_samples
    out = self.rollout(images, labels, samples,
                       "mode" if e.deterministic else "prior")
    probabilities = tf.reduce_mean(tf.nn.softmax(out.class_logits), axis=1)
    batch = tf.cast(tf.shape(images)[0], tf.float32)
    self.error_tracker.update_state(_error(probabilities, labels),
                                    sample_weight=batch)
    # MC estimate of log p(y|I): log (1/M) sum_m p(y|a^m), a^m ~ prior.
    log_likelihood = tf.reduce_logsumexp(out.log_likelihood, axis=1) - tf.math.log(
        tf.cast(samples, tf.float32))
    self.log_likelihood_tracker.update_state(log_likelihood)
    return {"error": self.error_tracker.result(),
            "log_likelihood": self.log_likelihood_tracker.result()}

  @property
  def metrics(self):
    return list(self.train_trackers.values()) + [self.error_tracker,
                                                 self.log_likelihood_tracker]


def build_model(config, image_shape) -> "WSRAM":
  """A built WSRAM compiled for config.train (one Adam each for theta, eta)."""
  model = WSRAM(config, name="wsram")
  model.build((None,) + tuple(image_shape))
  return model.compile_for_training(config.train)


def _error(probabilities, labels):
  predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
  return tf.reduce_mean(
      tf.cast(tf.not_equal(predicted, tf.cast(labels, tf.int32)), tf.float32))
