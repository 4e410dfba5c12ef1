"""Hard-attention captioner of paper §5.2 (docs/design.md §5): VAR or WS-RAM.

At word step t the attention draws a scale s_t (Categorical over the K feature
maps, shallow first) and a location l_t (Gaussian, (row, col) in [-1, 1]) from
the decoder state h_{t-1} with the same `distributions.ActionHead` as the MNIST
model, reads the single feature vector at the nearest cell of map s_t (a
gather: the cost does not grow with the map size), projects it with a per-scale
Dense, and an LSTM takes [embed(y_{t-1}), glimpse] and emits y_t.

    log p(y|a)  = sum_t mask_t log p(y_t | y_<t, a_<=t, I)
    log p(a)    = sum_t mask_t log p(a_t | h_{t-1})

with mask_t = 0 after <end> (`caption_mask`). The estimators of
docs/design.md §2 apply unchanged with y = the caption
(`objectives.wsram_losses`, `var_losses`). The inference network
q(a_t | word, sg(h_{t-1})) is `inference_network.InferenceNetwork` with the
vocabulary as its "classes"; its word is the one being predicted
(`model.inference_word = "current"`) or the preceding one ("previous").

Inputs are dicts {"features_k": [B, h_k, w_k, c_k]} (shallow maps first) and
caption ids [B, T] = <start> w_1 .. <end> <pad>..; the S = T - 1 word steps
predict ids[:, 1:] from ids[:, :-1] (teacher forcing).
"""

from typing import NamedTuple, Optional, Sequence

import keras
import tensorflow as tf

from wsram_tf.pipelines.flickr8k_vocab import END
from wsram_tf.pipelines.flickr8k_vocab import PAD
from wsram_tf import distributions
from wsram_tf import exploration
from wsram_tf import variants
from wsram_tf import wake_sleep_model

INFERENCE_WORDS = ("current", "previous")


def check_inference_word(word: str) -> str:
  """`word` if it is one of INFERENCE_WORDS; else an error naming them."""
  if word not in INFERENCE_WORDS:
    raise ValueError(f"config.model.inference_word: unknown {word!r}; valid: "
                     f"{INFERENCE_WORDS}.")
  return word


class CaptionRollout(NamedTuple):
  """One teacher-forced pass over S word steps for M action sequences."""
  log_prior_steps: tf.Tensor  # [B, M, S] mask * log p(a_t | h_{t-1}).
  log_proposal_steps: tf.Tensor  # [B, M, S] mask * log of the proposal.
  log_likelihood: tf.Tensor  # [B, M] log p(y | a^m, I), padding masked.
  word_log_probs: tf.Tensor  # [B, M, S] mask * log p(y_t | ...).
  baseline_steps: Optional[tf.Tensor]  # [B, M, S] VAR+c baseline, else None.
  entropy_steps: tf.Tensor  # [B, M, S] mask * entropy of p(a_t).
  locations: tf.Tensor  # [B, M, S, 2] glimpse centres.
  scales: tf.Tensor  # [B, M, S] int32 index of the feature map read.
  location_means: tf.Tensor  # [B, M, S, 2] means of p(l_t).
  scale_probs: tf.Tensor  # [B, M, S, K] probabilities of p(s_t).
  mask: tf.Tensor  # [B, S] float, 1 for words up to and incl. <end>.


class DecoderState(NamedTuple):
  h: tf.Tensor  # [rows, hidden]
  c: tf.Tensor  # [rows, hidden]


def feature_list(features, num_maps: int) -> list:
  """{"features_k"} dict (or a list) -> [features_0, .., features_{K-1}]."""
  if isinstance(features, dict):
    missing = [f"features_{k}" for k in range(num_maps)
               if f"features_{k}" not in features]
    if missing:
      raise ValueError(f"captioner: inputs lack {missing}; got keys "
                       f"{sorted(features)}.")
    return [features[f"features_{k}"] for k in range(num_maps)]
  return list(features)


def cell_indices(locations: tf.Tensor, height: int, width: int) -> tf.Tensor:
  """(row, col) in [-1, 1] -> int32 [rows, 2] nearest cell, clipped."""
  size = tf.constant([height, width], locations.dtype)
  cells = tf.floor((locations + 1.0) / 2.0 * size)
  return tf.cast(tf.clip_by_value(cells, 0.0, size - 1.0), tf.int32)


def caption_mask(captions: tf.Tensor) -> tf.Tensor:
  """[B, T] ids -> float [B, T-1]: 1 for targets up to the first <end>.

  Whatever follows <end> (normally <pad>) is masked, as is <pad> anywhere.
  """
  targets = captions[:, 1:]
  ended_before = tf.cumsum(tf.cast(tf.equal(targets, END), tf.int32), axis=1,
                           exclusive=True) > 0
  return tf.cast(tf.logical_and(tf.logical_not(ended_before),
                                tf.not_equal(targets, PAD)), tf.float32)


class AttentionCaptioner(wake_sleep_model.WakeSleepModel):
  """Stochastic hard attention over CNN feature maps + LSTM caption decoder."""

  def __init__(self, config, feature_shapes: Sequence[Sequence[int]],
               vocab_size: int, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.variant = variants.parse_variant(config.variant)
    m = config.model
    check_inference_word(m.inference_word)
    self.feature_shapes = tuple(tuple(int(d) for d in s)
                                for s in feature_shapes)
    if not self.feature_shapes or any(len(s) != 3 for s in self.feature_shapes):
      raise ValueError("captioner: feature_shapes must be (h, w, c) per map, "
                       f"got {feature_shapes}.")
    self.num_scales = len(self.feature_shapes)
    self.vocab_size = int(vocab_size)
    self.seed_generator = keras.random.SeedGenerator(config.seed)
    hidden = m.hidden_size
    self.projections = [keras.layers.Dense(hidden, activation="relu",
                                           name=f"project_{k}")
                        for k in range(self.num_scales)]
    self.init_h = keras.layers.Dense(hidden, activation="tanh", name="init_h")
    self.init_c = keras.layers.Dense(hidden, activation="tanh", name="init_c")
    self.embedding = keras.layers.Embedding(
        self.vocab_size, m.word_embedding_size, name="word_embedding")
    self.lstm = keras.layers.LSTMCell(hidden, name="lstm")
    self.action_head = distributions.ActionHead(
        self.num_scales, m.location_std, m.learn_location_std, name="action")
    self.word_head = keras.layers.Dense(self.vocab_size, name="words")
    self.add_estimator_layers(hidden, self.vocab_size, m.word_embedding_size,
                              self.num_scales, m)
    names = ("loss", "bound", "ess", "word_nll", "baseline_loss")
    self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
    self.nll_tracker = keras.metrics.Mean(name="prior_word_nll")

  # -- building -------------------------------------------------------------

  def build(self, input_shape=None):
    hidden = self.config.model.hidden_size
    state = (None, hidden)
    for layer, (_, _, channels) in zip(self.projections, self.feature_shapes):
      layer.build((None, channels))
    self.init_h.build((None, self.feature_shapes[-1][-1]))
    self.init_c.build((None, self.feature_shapes[-1][-1]))
    self.embedding.build((None,))
    self.lstm.build((None, self.config.model.word_embedding_size + hidden))
    self.action_head.build(state)
    self.word_head.build(state)
    self.finish_build(state)

  # -- one word step, shared by training and decoding -----------------------

  def initial_state(self, maps: list, samples: int = 1) -> DecoderState:
    """(h_0, c_0) from the mean-pooled coarsest map, repeated per sample."""
    pooled = tf.reduce_mean(maps[-1], axis=[1, 2])
    return DecoderState(tf.repeat(self.init_h(pooled), samples, axis=0),
                        tf.repeat(self.init_c(pooled), samples, axis=0))

  def read(self, maps: list, action: distributions.Action,
           samples: int) -> tf.Tensor:
    """Projected feature vector at the action's cell: [rows, hidden].

    Row r belongs to image r // samples, so maps are never tiled M times.
    Every scale's map is gathered (one vector each) and the chosen one kept.
    """
    rows = tf.shape(action.scale)[0]
    image = tf.range(rows) // samples
    glimpse = 0.0
    for k, (feature_map, (h, w, _)) in enumerate(
        zip(maps, self.feature_shapes)):
      cell = cell_indices(action.location, h, w)
      vector = tf.gather_nd(feature_map,
                            tf.concat([image[:, None], cell], axis=-1))
      chosen = tf.cast(tf.equal(action.scale, k), vector.dtype)[:, None]
      glimpse += chosen * self.projections[k](vector)
    return glimpse

  def advance(self, maps: list, state: DecoderState, words: tf.Tensor,
              action: distributions.Action, samples: int):
    """LSTM step on [embed(y_{t-1}), glimpse] -> (word logits, new state)."""
    inputs = tf.concat([self.embedding(words),
                        self.read(maps, action, samples)], axis=-1)
    h, (h, c) = self.lstm(inputs, [state.h, state.c])
    return self.word_head(h), DecoderState(h, c)

  # -- the teacher-forced rollout ------------------------------------------

  def rollout(self, features, captions, num_samples: int = 1,
              proposal: str = "prior", temperature: float = 1.0,
              seed=None) -> CaptionRollout:
    """S = T-1 word steps for `num_samples` action sequences per caption."""
    self.check_proposal(proposal, captions)
    maps = feature_list(features, self.num_scales)
    captions = tf.cast(captions, tf.int32)
    steps = captions.shape[1] - 1
    if steps < 1:
      raise ValueError(f"captioner: captions need a static length T >= 2, got "
                       f"shape {captions.shape}.")
    batch, samples = tf.shape(captions)[0], num_samples
    if seed is None:
      seed = self.seed_generator.next()
    step_seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int32), steps)
    rows = batch * samples

    repeated = tf.repeat(captions, samples, axis=0)  # row b*M+m: caption b.
    mask = caption_mask(captions)
    repeated_mask = tf.repeat(mask, samples, axis=0)
    state = self.initial_state(maps, samples)
    out = {k: [] for k in ("prior", "proposal", "word", "baseline", "entropy",
                           "location", "scale", "mean", "probs")}
    for t in range(steps):
      previous, target = repeated[:, t], repeated[:, t + 1]
      step_mask = repeated_mask[:, t]
      prior = distributions.ActionDistribution(self.action_head(state.h))
      params = None
      if proposal == "inference":
        word = (target if self.config.model.inference_word == "current"
                else previous)
        params = self.inference((state.h, word))
      action, sampler = distributions.propose(
          prior, proposal, params, temperature, step_seeds[t], rows)
      out["prior"].append(step_mask * prior.log_prob(action))
      out["proposal"].append(step_mask * sampler.log_prob(action))
      out["entropy"].append(step_mask * prior.entropy())
      out["location"].append(action.location)
      out["scale"].append(action.scale)
      out["mean"].append(prior.params.location_mean)
      out["probs"].append(tf.nn.softmax(prior.params.scale_logits))
      if self.baseline_head is not None:
        # b_t from h_{t-1}, the state a_t is drawn from: unbiased.
        out["baseline"].append(
            self.baseline_head(tf.stop_gradient(state.h))[:, 0])
      logits, state = self.advance(maps, state, previous, action, samples)
      out["word"].append(
          -step_mask * tf.nn.sparse_softmax_cross_entropy_with_logits(
              labels=target, logits=logits))

    def fold(x):  # S tensors [B*M, ...] -> [B, M, S, ...]
      return wake_sleep_model.fold(x, batch, samples)

    word_log_probs = fold(out["word"])
    log_likelihood = tf.reduce_sum(word_log_probs, axis=-1)
    baseline = None
    if out["baseline"]:
      # On padding the baseline equals the (constant) reward: no loss there.
      baseline = tf.where(mask[:, None, :] > 0, fold(out["baseline"]),
                          tf.stop_gradient(log_likelihood)[..., None])
    return CaptionRollout(
        log_prior_steps=fold(out["prior"]),
        log_proposal_steps=fold(out["proposal"]),
        log_likelihood=log_likelihood,
        word_log_probs=word_log_probs,
        baseline_steps=baseline,
        entropy_steps=fold(out["entropy"]),
        locations=fold(out["location"]),
        scales=fold(out["scale"]),
        location_means=fold(out["mean"]),
        scale_probs=fold(out["probs"]),
        mask=mask)

  # -- training and evaluation ----------------------------------------------

  def coverage_penalty(self, rollout: CaptionRollout) -> tf.Tensor:
    # Only word steps up to <end> count: padding's actions are never used.
    steps = rollout.mask.shape[1]
    return exploration.coverage_penalty(
        tf.reshape(rollout.location_means, [-1, steps, 2]),
        tf.reshape(rollout.scale_probs, [-1, steps, self.num_scales]),
        tf.repeat(rollout.mask, self.config.objective.num_samples, axis=0))

  def rollout_stats(self, rollout: CaptionRollout) -> dict:
    """Per-word NLL of the training proposal's samples."""
    words = tf.maximum(tf.reduce_sum(rollout.mask), 1.0)
    return {"word_nll": -tf.reduce_sum(tf.reduce_mean(
        tf.stop_gradient(rollout.log_likelihood), 1)) / words}

  def caption_log_likelihood(self, features, captions, num_samples: int,
                             deterministic: bool = False, seed=None):
    """(log p(y|I) [B] ~ log (1/M) sum_m p(y|a^m), a^m ~ prior; words [B])."""
    samples = 1 if deterministic else num_samples
    out = self.rollout(features, captions, samples,
                       "mode" if deterministic else "prior", seed=seed)
    log_likelihood = tf.reduce_logsumexp(out.log_likelihood, axis=1) - (
        tf.math.log(tf.cast(samples, tf.float32)))
    return log_likelihood, tf.reduce_sum(out.mask, axis=1)

  def test_step(self, data):
    features, captions, _ = keras.utils.unpack_x_y_sample_weight(data)
    e = self.config.eval
    log_likelihood, words = self.caption_log_likelihood(
        features, captions, e.num_samples, e.deterministic)
    # Weighted by words: the mean is the corpus per-word NLL.
    self.nll_tracker.update_state(-log_likelihood / tf.maximum(words, 1.0),
                                  sample_weight=words)
    return {"prior_word_nll": self.nll_tracker.result()}

  def call(self, features, training=False):
    """Initial decoder state: a cheap forward pass that touches the inputs."""
    return self.initial_state(feature_list(features, self.num_scales)).h

  @property
  def metrics(self):
    return list(self.train_trackers.values()) + [self.nll_tracker]


def build_captioner(config, feature_shapes, vocab_size: int
                    ) -> AttentionCaptioner:
  """A built captioner compiled for config.train (one Adam each, theta, eta)."""
  model = AttentionCaptioner(config, feature_shapes, vocab_size,
                             name="captioner")
  model.build()
  return model.compile_for_training(config.train)
