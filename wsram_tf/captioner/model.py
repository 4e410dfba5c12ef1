"""Hard-attention captioner of paper §5.2 (docs/design.md §5): VAR or WS-RAM.

`GlimpseCaptioner` is built from plain keyword arguments (presets.py maps an
experiment config to them), saves to and loads from `.keras` files, and
captions with `generate`.

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
(`inference_word="current"`) or the preceding one ("previous").

Inputs are dicts {"features_k": [B, h_k, w_k, c_k]} (shallow maps first) and
caption ids [B, T] = <start> w_1 .. <end> <pad>..; the S = T - 1 word steps
predict ids[:, 1:] from ids[:, :-1] (teacher forcing).
"""

import numbers
from typing import NamedTuple, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import flickr8k_vocab
from wsram_tf.pipelines.flickr8k_vocab import END
from wsram_tf.pipelines.flickr8k_vocab import PAD
from wsram_tf import distributions
from wsram_tf import exploration
from wsram_tf import variants
from wsram_tf import wake_sleep_model

INFERENCE_WORDS = ("current", "previous")
# The keys of the `backbone` argument (config.backbone's fields).
BACKBONE_KEYS = ("name", "weights", "image_size", "taps", "seed")


def check_inference_word(word: str) -> str:
  """`word` if it is one of INFERENCE_WORDS; else an error naming them."""
  if word not in INFERENCE_WORDS:
    raise ValueError(f"inference_word: unknown {word!r}; valid: "
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


@keras.saving.register_keras_serializable(package="wsram_tf")
class GlimpseCaptioner(wake_sleep_model.WakeSleepModel):
  """Stochastic hard attention over CNN feature maps + LSTM caption decoder.

      model = wsram_tf.GlimpseCaptioner(
          feature_shapes=[(28, 28, 512), (14, 14, 512)], vocabulary=words)
      model.compile()  # Adam at 1e-3 for theta and eta.
      model.fit(features, caption_ids, validation_data=..., epochs=...)
      model.evaluate(features, caption_ids, return_dict=True)
      # {"loss": mean per-word -log p(y|I), "prior_word_nll": the same}
      model.generate(features, beam_size=3)  # ["a dog runs on grass", ...]
      model.predict(features)  # int32 [B, max_caption_length - 1] greedy ids

  Inputs are the frozen CNN's maps {"features_k": [B, h_k, w_k, c_k]}
  (shallow first, as `pipelines.feature_pyramid` computes and the feature
  cache stores them), or, with a `backbone`, 0..255 RGB images [B, H, W, 3]
  that the model runs through that CNN itself (resized to its input).
  Captions are ids [B, T] = <start> w_1 .. <end> <pad>.. of `vocabulary`
  (`pipelines.flickr8k_vocab`: ids 0..3 are <pad> <start> <end> <unk>).

  Arguments (today's configs/captions.py defaults):
    feature_shapes: (h_k, w_k, c_k) of each feature map, shallow first.
    vocab_size: words, incl. the 4 specials (default: len(vocabulary)).
    vocabulary: the words of the ids (a list, or a
      `flickr8k_vocab.Vocabulary`): `generate` needs it to return strings.
    variant: the training method (var, var_c, wsram, wsram_c, wsram_q (the
      paper's Table 2), wsram_qc; docs/design.md §2).
    hidden_size: units of the LSTM and every hidden layer.
    word_embedding_size: embedding of the words fed to the LSTM (and to q).
    location_std: std of the Gaussian over glimpse centres ([-1, 1] units).
    learn_location_std: learn that std (it starts at location_std).
    inference_word: the word q sees at step t: "current" (the one predicted)
      or "previous" (the paper's "immediate preceding word").
    max_caption_length: T, caption ids incl. <start> and <end>; `predict`,
      `generate` and `export` decode up to T - 1 words by default.
    backbone: the frozen CNN the features come from, config.backbone's
      fields {"name", "weights", "image_size", "taps", "seed"} (None: the
      model takes feature maps only). Built when images first come; its
      weights are not part of the model's ("imagenet" downloads them).
    num_samples: M, action sequences per caption in training.
    temperature, coverage_weight, entropy_weight: the exploration
      heuristics of §4.5 (off by default).
    eval_num_samples: M of evaluate() (log p(y|I) ~ mean over M prior
      samples); eval_deterministic: evaluate() at the prior's mode instead.
    seed: the action-sampling streams (training and evaluation).
  """

  def __init__(self, feature_shapes: Sequence[Sequence[int]],
               vocab_size: Optional[int] = None, vocabulary=None,
               variant: str = "wsram_q", hidden_size: int = 256,
               word_embedding_size: int = 256, location_std: float = 0.1,
               learn_location_std: bool = False,
               inference_word: str = "current", max_caption_length: int = 24,
               backbone: Optional[dict] = None, num_samples: int = 5,
               temperature: float = 1.0, coverage_weight: float = 0.0,
               entropy_weight: float = 0.0, eval_num_samples: int = 5,
               eval_deterministic: bool = False, seed: int = 0, **kwargs):
    kwargs.setdefault("name", "captioner")
    super().__init__(variant=variant, num_samples=num_samples,
                     temperature=temperature, coverage_weight=coverage_weight,
                     entropy_weight=entropy_weight,
                     eval_num_samples=eval_num_samples,
                     eval_deterministic=eval_deterministic, seed=seed,
                     **kwargs)
    words = _vocabulary_words(vocabulary)
    if vocab_size is None:
      if words is None:
        raise ValueError("vocab_size: give vocab_size or vocabulary (the "
                         "words of the caption ids).")
      vocab_size = len(words)
    check_arguments(feature_shapes=feature_shapes, vocab_size=vocab_size,
                    vocabulary=words, hidden_size=hidden_size,
                    word_embedding_size=word_embedding_size,
                    location_std=location_std, inference_word=inference_word,
                    max_caption_length=max_caption_length)
    self.feature_shapes = tuple(tuple(int(d) for d in s)
                                for s in feature_shapes)
    self.num_scales = len(self.feature_shapes)
    self.vocab_size = int(vocab_size)
    self.vocabulary = words
    self.hidden_size = int(hidden_size)
    self.word_embedding_size = int(word_embedding_size)
    self.location_std = float(location_std)
    self.learn_location_std = bool(learn_location_std)
    self.inference_word = inference_word
    self.max_caption_length = int(max_caption_length)
    # Items, not a dict: a tuple stays out of Keras' and TF's tracking.
    self._backbone = (None if backbone is None
                      else tuple(sorted(check_backbone(backbone).items())))
    self.seed_generator = keras.random.SeedGenerator(self.seed)
    hidden = self.hidden_size
    self.projections = [keras.layers.Dense(hidden, activation="relu",
                                           name=f"project_{k}")
                        for k in range(self.num_scales)]
    self.init_h = keras.layers.Dense(hidden, activation="tanh", name="init_h")
    self.init_c = keras.layers.Dense(hidden, activation="tanh", name="init_c")
    self.embedding = keras.layers.Embedding(
        self.vocab_size, self.word_embedding_size, name="word_embedding")
    self.lstm = keras.layers.LSTMCell(hidden, name="lstm")
    self.action_head = distributions.ActionHead(
        self.num_scales, self.location_std, self.learn_location_std,
        name="action")
    self.word_head = keras.layers.Dense(self.vocab_size, name="words")
    self.add_estimator_layers(hidden, self.vocab_size,
                              self.word_embedding_size, self.num_scales,
                              self.location_std, self.learn_location_std)
    # The trackers of train_step (the first, "loss", also holds evaluate's
    # mean per-word -log p(y|I)), then evaluate's.
    names = ("loss", "bound", "ess", "word_nll", "baseline_loss")
    self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
    self.nll_tracker = keras.metrics.Mean(name="prior_word_nll")
    # Every shape is known: built now, so weights exist before any data.
    self.build()

  @property
  def backbone(self) -> Optional[dict]:
    """The frozen CNN's settings (config.backbone's fields), or None."""
    return None if self._backbone is None else dict(self._backbone)

  def get_config(self):
    backbone = self.backbone
    if backbone is not None:
      backbone["taps"] = list(backbone["taps"])
    return {**super().get_config(), **self.shared_config(),
            "feature_shapes": [list(s) for s in self.feature_shapes],
            "vocab_size": self.vocab_size,
            "vocabulary": (None if self.vocabulary is None
                           else list(self.vocabulary)),
            "hidden_size": self.hidden_size,
            "word_embedding_size": self.word_embedding_size,
            "location_std": self.location_std,
            "learn_location_std": self.learn_location_std,
            "inference_word": self.inference_word,
            "max_caption_length": self.max_caption_length,
            "backbone": backbone}

  # -- building -------------------------------------------------------------

  def build(self, input_shape=None):
    """Builds every layer from the constructor's shapes (`input_shape`, if
    given, is not needed: feature_shapes fix them all)."""
    del input_shape
    if self.built:
      return
    hidden = self.hidden_size
    state = (None, hidden)
    for layer, (_, _, channels) in zip(self.projections, self.feature_shapes):
      layer.build((None, channels))
    self.init_h.build((None, self.feature_shapes[-1][-1]))
    self.init_c.build((None, self.feature_shapes[-1][-1]))
    self.embedding.build((None,))
    self.lstm.build((None, self.word_embedding_size + hidden))
    self.action_head.build(state)
    self.word_head.build(state)
    self.finish_build(state)

  def get_build_config(self):
    return {"feature_shapes": [list(s) for s in self.feature_shapes]}

  def build_from_config(self, config):
    del config  # The constructor's feature_shapes fix every shape.
    self.build()

  # -- inputs: feature maps, or images through the backbone -----------------

  def feature_pyramid(self) -> feature_pyramid.FeaturePyramid:
    """The frozen CNN of `backbone`, built at first use (then cached)."""
    pyramid = self.__dict__.get("_pyramid")
    if pyramid is not None:
      return pyramid
    b = self.backbone
    if b is None:
      raise ValueError(
          f"{type(self).__name__}: no backbone, so images cannot be read: "
          "pass the feature maps {'features_k': [B, h_k, w_k, c_k]}, or build "
          "the model with backbone={'name', 'weights', 'image_size', 'taps', "
          "'seed'} (config.backbone's fields).")
    pyramid = feature_pyramid.build_feature_pyramid(
        b["name"], b["weights"], b["image_size"], b["taps"] or None, b["seed"])
    shapes = tuple(tuple(int(d) for d in o.shape[1:])
                   for o in pyramid.model.outputs)
    if shapes != self.feature_shapes:
      raise ValueError(f"backbone: its maps {shapes} differ from "
                       f"feature_shapes {self.feature_shapes}.")
    # Outside Keras' tracking: the frozen CNN is not part of the weights.
    object.__setattr__(self, "_pyramid", pyramid)
    return pyramid

  def features_of(self, inputs) -> list:
    """[features_0, .., features_{K-1}] of `inputs`: a {"features_k"} dict
    or list of maps, or 0..255 RGB images [B, H, W, C] (C 1 to 4, as the
    export takes them) run through the backbone."""
    if isinstance(inputs, (dict, list, tuple)):
      return feature_list(inputs, self.num_scales)
    images = tf.convert_to_tensor(inputs)
    if images.shape.rank != 4:
      raise ValueError(
          f"{type(self).__name__}: inputs must be the feature maps "
          "{'features_k': [B, h_k, w_k, c_k]} or images [B, H, W, C], got "
          f"shape {images.shape}.")
    pyramid = self.feature_pyramid()
    from wsram_tf.captioner import export  # pylint: disable=g-import-not-at-top
    size = int(pyramid.model.inputs[0].shape[1])
    return pyramid(feature_pyramid.resize_images(export.checked_rgb(images),
                                                 size))

  def _prepare(self, x):
    """Builds the backbone eagerly (before Keras traces a step) when `x`
    holds images; checks caption ids of numpy `y` elsewhere."""
    if isinstance(x, tf.data.Dataset):
      spec = x.element_spec
      spec = spec[0] if isinstance(spec, tuple) else spec
      images = isinstance(spec, tf.TensorSpec)
    else:
      images = not isinstance(x, (dict, list, tuple)) and x is not None
    if images:
      self.feature_pyramid()

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
    maps = self.features_of(features)
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
    out = {k: [] for k in ("log_prior", "log_proposal", "word", "baseline",
                           "entropy", "location", "scale", "mean", "probs")}
    current = self.inference_word == "current"
    for t in range(steps):
      previous, target = repeated[:, t], repeated[:, t + 1]
      # b_t (VAR+c) comes from h_{t-1}, the state a_t is drawn from.
      action = self.sample_step(
          state.h, target if current else previous, proposal, temperature,
          step_seeds[t], rows, out, mask=repeated_mask[:, t])
      logits, state = self.advance(maps, state, previous, action, samples)
      out["word"].append(
          -repeated_mask[:, t] * tf.nn.sparse_softmax_cross_entropy_with_logits(
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
        log_prior_steps=fold(out["log_prior"]),
        log_proposal_steps=fold(out["log_proposal"]),
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

  def default_rates(self) -> tuple:
    """No rates were tuned on captions: Adam at 1e-3 for theta and eta."""
    return (variants.DEFAULT_RATE, variants.DEFAULT_RATE)

  def targets_of(self, captions):
    """Caption ids [B, T] (T >= 2), as int32."""
    if captions is None:
      raise ValueError("GlimpseCaptioner: fit and evaluate need caption ids "
                       "[B, T] (<start> words <end> <pad>..).")
    if captions.shape.rank != 2:
      raise ValueError("captions must be ids [B, T] (<start> words <end> "
                       f"<pad>..), got shape {captions.shape}.")
    return tf.cast(captions, tf.int32)

  def fit(self, x=None, y=None, *args, **kwargs):
    checked_captions(y, self.vocab_size, "y")
    self._prepare(x)
    validation = kwargs.get("validation_data")
    if isinstance(validation, (tuple, list)) and len(validation) >= 2:
      checked_captions(validation[1], self.vocab_size, "validation_data")
      self._prepare(validation[0])
    elif validation is not None:
      self._prepare(validation)
    return super().fit(x, y, *args, **kwargs)

  def evaluate(self, x=None, y=None, *args, **kwargs):
    checked_captions(y, self.vocab_size, "y")
    self._prepare(x)
    return super().evaluate(x, y, *args, **kwargs)

  def predict(self, x, *args, **kwargs):
    """Keras' predict: int32 [B, max_caption_length - 1] greedy caption ids
    (attention at the prior's mode; <end>, then <pad>), the same at every
    call. `generate` gives strings and beam search."""
    self._prepare(x)
    return super().predict(x, *args, **kwargs)

  def coverage_penalty(self, rollout: CaptionRollout) -> tf.Tensor:
    # Only word steps up to <end> count: padding's actions are never used.
    steps = rollout.mask.shape[1]
    samples = rollout.log_likelihood.shape[1]
    return exploration.coverage_penalty(
        tf.reshape(rollout.location_means, [-1, steps, 2]),
        tf.reshape(rollout.scale_probs, [-1, steps, self.num_scales]),
        tf.repeat(rollout.mask, samples, axis=0))

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
    features, captions, sample_weight = keras.utils.unpack_x_y_sample_weight(
        data)
    captions = self.targets_of(captions)
    log_likelihood, words = self.caption_log_likelihood(
        features, captions, self.eval_num_samples, self.eval_deterministic)
    # Weighted by words: the mean is the corpus per-word NLL.
    weight = words
    if sample_weight is not None:
      weight = words * tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
    nll = -log_likelihood / tf.maximum(words, 1.0)
    self.nll_tracker.update_state(nll, sample_weight=weight)
    self.train_trackers["loss"].update_state(nll, sample_weight=weight)
    return {t.name: t.result() for t in self.evaluation_metrics}

  @property
  def evaluation_metrics(self) -> list:
    return [self.train_trackers["loss"], self.nll_tracker]

  @property
  def metrics(self):
    # evaluate()'s first, in the order of its list: metrics_names labels it.
    return self.evaluation_metrics + [
        t for n, t in self.train_trackers.items() if n != "loss"]

  def resumable_metrics(self) -> list:
    """The metrics a backup holds, in the order backups have always had."""
    return list(self.train_trackers.values()) + [self.nll_tracker]

  # -- captions -------------------------------------------------------------

  def call(self, inputs, training=False):
    """Greedy caption ids int32 [B, max_caption_length - 1] of the feature
    maps (or images, with a backbone), attention at the prior's mode."""
    del training
    from wsram_tf.captioner import decoding  # pylint: disable=g-import-not-at-top
    return decoding.greedy_decode(self, self.features_of(inputs),
                                  self.max_caption_length - 1).ids

  def generate(self, inputs, beam_size: int = 3,
               max_length: Optional[int] = None, length_penalty: float = 0.0,
               batch_size: int = 32) -> list:
    """Captions (strings, words before <end>) of `inputs`: feature maps
    {"features_k": [B, h_k, w_k, c_k]}, images [B, H, W, C] in 0..255 (with
    a backbone), or a tf.data.Dataset of batches of either.

    Args:
      inputs: as above.
      beam_size: beams kept (1: greedy), attention at the prior's mode.
      max_length: words decoded at most, <end> included (default
        max_caption_length - 1).
      length_penalty: GNMT alpha >= 0 of beam search (0: off).
      batch_size: images per decoding call (numpy or tensor inputs).
    """
    from wsram_tf.captioner import decoding  # pylint: disable=g-import-not-at-top
    if self.vocabulary is None:
      raise ValueError(
          "generate: this GlimpseCaptioner has no vocabulary; build it with "
          "vocabulary=[words of the ids] (or decode ids with "
          "captioner.decoding and your own vocabulary).")
    _check_int("beam_size", beam_size, 1)
    steps = self.max_caption_length - 1 if max_length is None else max_length
    _check_int("max_length", steps, 1)
    _check_int("batch_size", batch_size, 1)
    try:
      alpha = decoding.check_length_penalty(length_penalty)
    except ValueError as e:
      raise ValueError(f"length_penalty: {e}") from e
    self._prepare(inputs)

    # Python loops over a static number of steps: nothing for AutoGraph.
    @tf.function(reduce_retracing=True, autograph=False)
    def run(batch):
      return decoding.decode(self, self.features_of(batch), steps, beam_size,
                             length_penalty_alpha=alpha).ids

    if isinstance(inputs, tf.data.Dataset):
      batches = inputs.map(lambda *e: e[0]) if isinstance(
          inputs.element_spec, tuple) else inputs
    else:
      if isinstance(inputs, (list, tuple)):
        inputs = {f"features_{k}": m for k, m in enumerate(inputs)}
      batches = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
    vocabulary = flickr8k_vocab.Vocabulary(self.vocabulary)
    captions = []
    for batch in batches:
      captions += [vocabulary.decode(row) for row in run(batch).numpy()]
    return captions

  # -- saving, serving, presets ---------------------------------------------

  def export(self, filepath: str, max_length: Optional[int] = None,
             **kwargs) -> str:
    """Writes the SavedModel of `captioner.export` (signatures `serve`,
    `serve_uint8`, `feature_maps`, export_info.json, vocab.json): the
    backbone and greedy decoding, servable with TensorFlow alone. Needs a
    backbone and a vocabulary."""
    if kwargs:
      raise ValueError(f"export: unknown arguments {sorted(kwargs)}; "
                       "GlimpseCaptioner.export writes its own SavedModel.")
    from wsram_tf.captioner import export as export_lib  # pylint: disable=g-import-not-at-top
    return export_lib.export_saved_model(self, None, None, filepath, max_length)

  @classmethod
  def from_preset(cls, name: str, vocabulary=None,
                  vocab_size: Optional[int] = None, **kwargs
                  ) -> "GlimpseCaptioner":
    """A captioner of preset `name` (wsram_tf.captioner.presets: flickr8k,
    synthetic_digits); the vocabulary comes from the data, so give it (or
    vocab_size). `kwargs` override constructor arguments."""
    from wsram_tf.captioner import presets  # pylint: disable=g-import-not-at-top
    return presets.from_preset(name, vocabulary, vocab_size, **kwargs)


def _vocabulary_words(vocabulary) -> Optional[tuple]:
  if vocabulary is None:
    return None
  words = getattr(vocabulary, "words", vocabulary)
  if isinstance(words, str) or not all(isinstance(w, str) for w in words):
    raise ValueError("vocabulary must be a list of words (strings), got "
                     f"{type(vocabulary).__name__}.")
  words = tuple(words)
  if words[:len(flickr8k_vocab.SPECIALS)] != flickr8k_vocab.SPECIALS:
    raise ValueError(f"vocabulary must start with {flickr8k_vocab.SPECIALS} "
                     f"(ids 0..3), got {words[:4]}.")
  return words


def _check_int(name, value, low) -> None:
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or value < low):
    raise ValueError(f"{name}={value!r}: must be an int >= {low}.")


def check_arguments(feature_shapes, vocab_size, vocabulary, hidden_size,
                    word_embedding_size, location_std, inference_word,
                    max_caption_length) -> None:
  """Raises ValueError naming the first captioner argument that cannot run."""
  try:
    shapes = [tuple(s) for s in feature_shapes]
  except TypeError:
    shapes = None
  if (not shapes or any(len(s) != 3 for s in shapes) or any(
      isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
      for s in shapes for d in s)):
    raise ValueError("feature_shapes must be (h, w, c) per map (ints >= 1), "
                     f"got {feature_shapes!r}.")
  _check_int("vocab_size", vocab_size, len(flickr8k_vocab.SPECIALS) + 1)
  if vocabulary is not None and len(vocabulary) != vocab_size:
    raise ValueError(f"vocabulary has {len(vocabulary)} words but "
                     f"vocab_size={vocab_size}.")
  _check_int("hidden_size", hidden_size, 1)
  _check_int("word_embedding_size", word_embedding_size, 1)
  if (isinstance(location_std, bool)
      or not isinstance(location_std, numbers.Real) or not location_std > 0):
    raise ValueError(f"location_std must be > 0, got {location_std!r}.")
  check_inference_word(inference_word)
  _check_int("max_caption_length", max_caption_length, 3)


def check_backbone(backbone) -> dict:
  """`backbone` as a dict of BACKBONE_KEYS, or a ValueError naming it."""
  if hasattr(backbone, "to_dict"):  # A ConfigDict (config.backbone).
    backbone = backbone.to_dict()
  if not isinstance(backbone, dict) or set(backbone) != set(BACKBONE_KEYS):
    raise ValueError(f"backbone must be a dict with the keys {BACKBONE_KEYS} "
                     f"(config.backbone's fields), got {backbone!r}.")
  if backbone["name"] not in feature_pyramid.BACKBONES:
    raise ValueError(f"backbone: unknown name {backbone['name']!r}; valid: "
                     f"{', '.join(feature_pyramid.BACKBONES)}.")
  _check_int("backbone image_size", backbone["image_size"], 1)
  return {"name": str(backbone["name"]), "weights": str(backbone["weights"]),
          "image_size": int(backbone["image_size"]),
          "taps": tuple(str(t) for t in backbone["taps"]),
          "seed": int(backbone["seed"])}


def checked_captions(captions, vocab_size: int, argument: str) -> None:
  """Fails on numpy caption ids outside [0, vocab_size), naming `argument`
  (XLA would clamp them into a wrong embedding)."""
  if captions is None or isinstance(captions, (dict, tf.data.Dataset)):
    return
  values = np.asarray(captions)
  if values.size and np.issubdtype(values.dtype, np.number):
    low, high = values.min(), values.max()
    if low < 0 or high >= vocab_size or not np.all(values == np.round(values)):
      raise ValueError(f"{argument}: caption ids must be integers in "
                       f"[0, {vocab_size}) (vocab_size={vocab_size}); got "
                       f"values from {low} to {high}.")
