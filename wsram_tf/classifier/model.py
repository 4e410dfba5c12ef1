"""The WS-RAM classifier: rollout of N glimpses for M samples, test step.

One `rollout` serves training, evaluation and export: the M action sequences
per example are folded into the batch ([B*M, ...]) and drawn in one pass, the
glimpse sensor reads each image without tiling it M times, and the sampled
actions are constants for the gradient (docs/design.md §2). The shared
`wake_sleep_model.WakeSleepModel` turns the rollout into the variant's losses
and the update; this model adds the train error of prior samples
(`extra_stats`) and the test step.
"""

import numbers
from typing import NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf

from wsram_tf import distributions
from wsram_tf import exploration
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


@keras.saving.register_keras_serializable(package="wsram_tf")
class GlimpseClassifier(wake_sleep_model.WakeSleepModel):
  """Stochastic hard-attention classifier trained by VAR or WS-RAM.

      model = wsram_tf.GlimpseClassifier(num_classes=10, variant="wsram_qc")
      model.compile()  # Adam at the variant's tuned rates.
      model.fit(images, labels, validation_data=..., epochs=...)
      model.evaluate(images, labels, return_dict=True)
      # {"loss": mean -log p(y|I), "accuracy", "error", "log_likelihood"}
      model.predict(images)  # [B, classes] p(y|I): mean location and
      # likeliest scale at every glimpse (repeatable); predict(images,
      # deterministic=False) averages eval_num_samples sampled sequences.
      model.predict_glimpses(images)  # {"probabilities", "locations", "scales"}

  Images are float [B, H, W, C] with pixels in [0, 1]; labels are class
  indices [B] (or one-hot [B, classes]). Arguments (the paper's network by
  default; docs/design.md §1):
    num_classes: output classes of p(y | a, I).
    variant: the training method, one of var, var_c, wsram, wsram_c,
      wsram_q, wsram_qc (docs/design.md §2, paper Fig. 2).
    num_glimpses: N, glimpses before the class prediction.
    patch_size: P, every glimpse is averaged down to P x P.
    scale_factors: scale k reads a window of P * scale_factors[k] pixels; the
      largest must fit in the image (checked at build).
    context_size: side of the low-resolution view that starts layer 2.
    hidden_size: units of every hidden and recurrent layer.
    recurrent_layers: 2, the paper's network (context -> layer 2 ->
      actions, layer 1 -> class); 1, the RAM of Mnih et al. 2014.
    glimpse_units: units of the what/where layers (0: hidden_size).
    label_embedding_size: embedding of y fed to the inference network.
    inference_units: units of the inference network's hidden layer
      (0: hidden_size). It runs at every glimpse for all B x M rows, so its
      width is most of what +q adds to a train step.
    location_std: std of the Gaussian over glimpse centres ([-1, 1] units).
    learn_location_std: learn that std (it starts at location_std).
    num_samples: M, action sequences per example in training.
    temperature, coverage_weight, entropy_weight: the exploration
      heuristics of §4.5 (off by default).
    eval_num_samples: M of evaluate() (p(y|I) ~ mean over M prior samples).
    eval_deterministic: evaluate() at the mode instead.
    prior_train_error: log train_error from M prior samples (for +q
      variants a second rollout; False skips it).
    train_error_examples: that second rollout reads this many examples of
      each batch (a slice that moves through the batch from step to step,
      so the epoch's mean estimates the same error as the whole batch
      would, at a fraction of the cost); 0: the whole batch.
    seed: the action-sampling streams (training and evaluation).
  Setting num_samples, temperature, the weights or eval_* on a model takes
  effect at the next fit/evaluate/predict.
  """

  extra_stats_seeded = True  # The train error draws its own prior samples.
  STEP_SETTINGS = wake_sleep_model.WakeSleepModel.STEP_SETTINGS + (
      "prior_train_error", "train_error_examples")

  def __init__(self, num_classes: int, variant: str = "wsram_qc",
               num_glimpses: int = 4, patch_size: int = 12,
               scale_factors=(1, 2, 4), context_size: int = 12,
               hidden_size: int = 256, recurrent_layers: int = 2,
               glimpse_units: int = 0, label_embedding_size: int = 64,
               inference_units: int = 0,
               location_std: float = 0.1, learn_location_std: bool = False,
               num_samples: int = 5, temperature: float = 1.0,
               coverage_weight: float = 0.0, entropy_weight: float = 0.0,
               eval_num_samples: int = 5, eval_deterministic: bool = False,
               prior_train_error: bool = True, train_error_examples: int = 8,
               seed: int = 0, **kwargs):
    super().__init__(variant=variant, num_samples=num_samples,
                     temperature=temperature, coverage_weight=coverage_weight,
                     entropy_weight=entropy_weight,
                     eval_num_samples=eval_num_samples,
                     eval_deterministic=eval_deterministic, seed=seed,
                     **kwargs)
    check_arguments(num_classes=num_classes, num_glimpses=num_glimpses,
                    patch_size=patch_size, scale_factors=scale_factors,
                    context_size=context_size, hidden_size=hidden_size,
                    recurrent_layers=recurrent_layers,
                    glimpse_units=glimpse_units,
                    label_embedding_size=label_embedding_size,
                    inference_units=inference_units,
                    location_std=location_std)
    self.num_classes = int(num_classes)
    self.num_glimpses = int(num_glimpses)
    self.patch_size = int(patch_size)
    self.scale_factors = tuple(int(f) for f in scale_factors)
    self.context_size = int(context_size)
    self.hidden_size = int(hidden_size)
    self.recurrent_layers = int(recurrent_layers)
    self.glimpse_units = int(glimpse_units)
    self.label_embedding_size = int(label_embedding_size)
    self.inference_units = int(inference_units)
    self.location_std = float(location_std)
    self.learn_location_std = bool(learn_location_std)
    self.num_scales = len(self.scale_factors)
    self.seed_generator = keras.random.SeedGenerator(self.seed)
    # Two layers (paper Fig. 1): the context view starts layer 2, which
    # drives the actions; layer 1 feeds the class head. One layer (the RAM
    # of Mnih et al. 2014): one core state, from zero, drives everything.
    self.two_layers = self.recurrent_layers == 2
    self.context_encoder = None
    self.rnn2 = None
    if self.two_layers:
      self.context_encoder = keras.layers.Dense(
          hidden_size, activation="relu", name="context")
      self.rnn2 = networks.ReLURNNCell(hidden_size, name="rnn2")
    self.encoder = networks.GlimpseEncoder(
        hidden_size, self.num_scales, glimpse_units, name="glimpse_encoder")
    self.rnn1 = networks.ReLURNNCell(hidden_size, name="rnn1")
    self.action_head = distributions.ActionHead(
        self.num_scales, location_std, learn_location_std, name="action")
    self.class_head = keras.layers.Dense(num_classes, name="classifier")
    self.add_estimator_layers(self.inference_units or hidden_size,
                              num_classes, label_embedding_size,
                              self.num_scales, location_std,
                              learn_location_std)
    self.prior_train_error = bool(prior_train_error)
    if (isinstance(train_error_examples, bool)
        or not isinstance(train_error_examples, numbers.Integral)
        or train_error_examples < 0):
      raise ValueError("train_error_examples must be an int >= 0, got "
                       f"{train_error_examples!r}.")
    self.train_error_examples = int(train_error_examples)
    # The trackers of train_step (the first, "loss", also holds evaluate's
    # mean -log p(y|I)), then evaluate's.
    names = [n for n in ("loss", "bound", "ess", "train_error",
                         "baseline_loss")
             if n != "train_error" or self.report_train_error]
    self.train_trackers = {n: keras.metrics.Mean(name=n) for n in names}
    self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
    self.error_tracker = keras.metrics.Mean(name="error")
    self.log_likelihood_tracker = keras.metrics.Mean(name="log_likelihood")
    self.evaluation_list = wake_sleep_model.directed_metrics(
        {self.accuracy_tracker: "up", self.error_tracker: "down",
         self.log_likelihood_tracker: "up"})

  @property
  def extra_error_rollout(self) -> bool:
    # The train error of prior samples is free when training samples the
    # prior; otherwise it costs a second rollout.
    return self.variant.inference_net or self.temperature != 1.0

  @property
  def report_train_error(self) -> bool:
    return self.prior_train_error or not self.extra_error_rollout

  def get_config(self):
    return {**super().get_config(), **self.shared_config(),
            "num_classes": self.num_classes,
            "num_glimpses": self.num_glimpses, "patch_size": self.patch_size,
            "scale_factors": list(self.scale_factors),
            "context_size": self.context_size, "hidden_size": self.hidden_size,
            "recurrent_layers": self.recurrent_layers,
            "glimpse_units": self.glimpse_units,
            "label_embedding_size": self.label_embedding_size,
            "inference_units": self.inference_units,
            "location_std": self.location_std,
            "learn_location_std": self.learn_location_std,
            "prior_train_error": self.prior_train_error,
            "train_error_examples": self.train_error_examples}

  # -- building -------------------------------------------------------------

  def build(self, input_shape):
    check_image_shape(input_shape, self.patch_size, self.scale_factors,
                      self.context_size if self.two_layers else 0)
    self.image_shape = tuple(None if d is None else int(d)
                             for d in tuple(input_shape)[1:])
    channels = input_shape[-1]
    hidden = (None, self.hidden_size)
    if self.two_layers:
      self.context_encoder.build((None, self.context_size ** 2 * channels))
      self.rnn2.build(hidden)
    self.encoder.build(((None, self.patch_size ** 2 * channels), (None, 2),
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
    batch = tf.shape(images)[0]
    samples = num_samples
    if seed is None:
      seed = self.seed_generator.next()
    step_seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int32), self.num_glimpses)

    rows = batch * samples

    if self.two_layers:
      context = glimpse.context_view(images, self.context_size)
      r2 = self.context_encoder(tf.reshape(context, [batch, -1]))
      r2 = tf.repeat(r2, samples, axis=0)  # sample m of image b sits at b*M+m.
      r1 = tf.zeros_like(r2)
    else:
      r1 = r2 = tf.zeros([rows, self.hidden_size], images.dtype)
    repeated_labels = None if labels is None else tf.repeat(labels, samples)

    outputs = {k: [] for k in ("log_prior", "log_proposal", "baseline",
                               "entropy", "location", "scale", "mean", "probs")}
    for n in range(self.num_glimpses):
      # Scopes name the parts in profiles (benchmarks/profile_step.py).
      with tf.name_scope("actions"):
        action = self.sample_step(r2, repeated_labels, proposal, temperature,
                                  step_seeds[n], rows, outputs)
      with tf.name_scope("glimpse_sensor"):
        patches = glimpse.extract_glimpses(
            images, tf.reshape(action.location, [batch, samples, 2]),
            tf.reshape(action.scale, [batch, samples]), self.patch_size,
            self.scale_factors)
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
    """p(y|I) ~ (1/M) sum_m p(y|a^m), a^m from the prior, or the mode
    (default: eval_deterministic and eval_num_samples)."""
    if deterministic is None:
      deterministic = self.eval_deterministic
    if num_samples is None:
      num_samples = 1 if deterministic else self.eval_num_samples
    out = self.rollout(images, None, num_samples,
                       "mode" if deterministic else "prior", seed=seed)
    probabilities = tf.reduce_mean(tf.nn.softmax(out.class_logits), axis=1)
    return Prediction(probabilities, out.locations[:, 0], out.scales[:, 0])

  def call(self, images, training=False):
    return self.predict_with_trace(
        images, deterministic=self._predict_deterministic).probabilities

  _predict_deterministic = True

  def predict(self, x, *args, deterministic: bool = True, **kwargs):
    """Keras' predict: [B, classes] p(y|I), the same at every call.

    deterministic=True (default): the mean location and likeliest scale at
    every glimpse, as the exported `serve`. False: the mean over
    eval_num_samples glimpse sequences sampled from the prior, drawn from the
    evaluation stream (restarted from (seed, optimizer step) at each call, so
    also repeatable).
    """
    if deterministic != self._predict_deterministic:
      self._predict_deterministic = bool(deterministic)
      self.predict_function = None
    self._build_for(x)
    return super().predict(x, *args, **kwargs)

  def _build_for(self, x) -> None:
    """Builds an unbuilt model for the images of `x` (arrays or a dataset):
    Keras' own symbolic build would trace the rollout without building."""
    if self.built or x is None:
      return
    if isinstance(x, tf.data.Dataset):
      spec = x.element_spec
      spec = spec[0] if isinstance(spec, tuple) else spec
      shape = spec.shape
    else:
      shape = np.shape(x)
    self.build((None,) + tuple(shape)[1:])

  def predict_glimpses(self, x, batch_size: int = 32,
                       deterministic: bool = True, num_samples=None) -> dict:
    """The glimpse trace, batched like predict (numpy arrays or a dataset of
    images or (images, labels)): {"probabilities" [B, classes], "locations"
    [B, N, 2] ((row, col) in [-1, 1]), "scales" int32 [B, N] (index into
    scale_factors)}, of sample 0 when sampling."""
    self._build_for(x)
    if isinstance(x, tf.data.Dataset):
      dataset = x.map(lambda *e: e[0])
    else:
      dataset = tf.data.Dataset.from_tensor_slices(
          np.asarray(x, np.float32)).batch(batch_size)
    outputs = {"probabilities": [], "locations": [], "scales": []}
    with self._evaluation_stream():
      for images in dataset:
        p = self.predict_with_trace(tf.cast(images, tf.float32), num_samples,
                                    deterministic)
        outputs["probabilities"].append(p.probabilities.numpy())
        outputs["locations"].append(p.locations.numpy())
        outputs["scales"].append(p.scales.numpy().astype(np.int32))
    shapes = {"probabilities": (0, self.num_classes),
              "locations": (0, self.num_glimpses, 2),
              "scales": (0, self.num_glimpses)}
    return {k: (np.concatenate(v) if v else np.zeros(shapes[k], np.float32))
            for k, v in outputs.items()}

  # -- training and evaluation ----------------------------------------------

  def targets_of(self, labels):
    """Class indices [B]; one-hot [B, classes] and [B, 1] are converted."""
    if labels is None:
      raise ValueError("GlimpseClassifier: fit and evaluate need labels "
                       "(class indices [B] or one-hot [B, num_classes]).")
    shape = labels.shape
    if shape.rank == 2 and shape[-1] == 1:
      return tf.reshape(labels, [-1])
    if shape.rank == 2:
      if shape[-1] != self.num_classes:
        raise ValueError(
            f"labels of shape {shape}: one-hot labels need num_classes="
            f"{self.num_classes} columns; class indices are [B].")
      return tf.argmax(labels, axis=-1, output_type=tf.int32)
    if shape.rank != 1:
      raise ValueError(f"labels must be class indices [B] or one-hot "
                       f"[B, {self.num_classes}], got shape {shape}.")
    if labels.dtype.is_floating:
      labels = tf.cast(labels, tf.int32)
    return labels

  def fit(self, x=None, y=None, *args, **kwargs):
    self._build_for(x)
    x = checked_labels(x, y, self.num_classes, "y")
    validation = kwargs.get("validation_data")
    if isinstance(validation, (tuple, list)) and len(validation) >= 2:
      checked_labels(validation[0], validation[1], self.num_classes,
                     "validation_data")
    elif isinstance(validation, tf.data.Dataset):
      kwargs["validation_data"] = checked_labels(
          validation, None, self.num_classes, "validation_data")
    return super().fit(x, y, *args, **kwargs)

  def evaluate(self, x=None, y=None, *args, **kwargs):
    self._build_for(x)
    x = checked_labels(x, y, self.num_classes, "y")
    return super().evaluate(x, y, *args, **kwargs)

  def coverage_penalty(self, rollout: Rollout) -> tf.Tensor:
    n, k = self.num_glimpses, self.num_scales
    return exploration.coverage_penalty(
        tf.reshape(rollout.location_means, [-1, n, 2]),
        tf.reshape(rollout.scale_probs, [-1, n, k]))

  def extra_stats(self, images, labels, rollout: Rollout, seed) -> dict:
    """Error of the M-sample prior average: comparable across variants."""
    if not self.report_train_error:
      return {}
    if self.extra_error_rollout:
      images, labels = self._train_error_slice(images, labels)
      rollout = self.rollout(images, None, self.num_samples, "prior",
                             seed=seed)
    probabilities = tf.reduce_mean(
        tf.nn.softmax(tf.stop_gradient(rollout.class_logits)), axis=1)
    return {"train_error": _error(probabilities, labels)}

  def _train_error_slice(self, images, labels):
    """`train_error_examples` rows of the batch, starting where the previous
    step's slice ended (wrapping): over an epoch every position of the batch
    is read equally often, so the mean error is the whole batch's."""
    n = self.train_error_examples
    batch = tf.shape(images)[0]
    if not n:
      return images, labels
    count = tf.minimum(n, batch)
    start = tf.cast(self.optimizer.iterations, tf.int32) * n
    rows = tf.math.floormod(start + tf.range(count), tf.maximum(batch, 1))
    return tf.gather(images, rows), tf.gather(labels, rows)

  def test_step(self, data):
    images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    labels = self.targets_of(labels)
    samples = 1 if self.eval_deterministic else self.eval_num_samples
    out = self.rollout(images, labels, samples,
                       "mode" if self.eval_deterministic else "prior")
    probabilities = tf.reduce_mean(tf.nn.softmax(out.class_logits), axis=1)
    # MC estimate of log p(y|I): log (1/M) sum_m p(y|a^m), a^m ~ prior.
    log_likelihood = tf.reduce_logsumexp(out.log_likelihood, axis=1) - tf.math.log(
        tf.cast(samples, tf.float32))
    wrong = _wrong(probabilities, labels)
    if sample_weight is None:
      batch = tf.cast(tf.shape(images)[0], tf.float32)
      self.error_tracker.update_state(tf.reduce_mean(wrong),
                                      sample_weight=batch)
      self.accuracy_tracker.update_state(1.0 - tf.reduce_mean(wrong),
                                         sample_weight=batch)
      self.log_likelihood_tracker.update_state(log_likelihood)
      self.train_trackers["loss"].update_state(-log_likelihood)
    else:
      weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
      self.error_tracker.update_state(wrong, sample_weight=weight)
      self.accuracy_tracker.update_state(1.0 - wrong, sample_weight=weight)
      self.log_likelihood_tracker.update_state(log_likelihood,
                                               sample_weight=weight)
      self.train_trackers["loss"].update_state(-log_likelihood,
                                               sample_weight=weight)
    return {t.name: t.result() for t in self.evaluation_metrics}

  @property
  def evaluation_metrics(self) -> list:
    return [self.train_trackers["loss"]] + self.evaluation_list.metrics

  @property
  def metrics(self):
    # evaluate()'s first, in the order of its list: metrics_names labels it.
    return [self.train_trackers["loss"], self.evaluation_list] + [
        t for n, t in self.train_trackers.items() if n != "loss"]

  @property
  def metrics_names(self):
    return [m.name for m in self.evaluation_metrics] + [
        n for n in self.train_trackers if n != "loss"]

  def resumable_metrics(self) -> list:
    """The metrics a backup holds, in the order backups have always had."""
    return list(self.train_trackers.values()) + [self.error_tracker,
                                                 self.log_likelihood_tracker]

  # -- saving, serving, presets ---------------------------------------------

  def export(self, filepath: str, image_shape=None, deterministic: bool = True,
             class_names=None, **kwargs) -> str:
    """Writes the SavedModel of `classifier.export` (signatures `serve`,
    `serve_sampled`, `serve_image_bytes`, and export_info.json); servable
    with TensorFlow alone. `image_shape` defaults to the built one."""
    if kwargs:
      raise ValueError(f"export: unknown arguments {sorted(kwargs)}; "
                       "GlimpseClassifier.export writes its own SavedModel.")
    from wsram_tf.classifier import export as export_lib  # pylint: disable=g-import-not-at-top
    if image_shape is None:
      if not self.built or not getattr(self, "image_shape", None):
        raise ValueError("export: build or fit the model first, or pass "
                         "image_shape=(S, S, C).")
      image_shape = self.image_shape
    return export_lib.export_saved_model(
        self, filepath, image_shape, deterministic=deterministic,
        class_names=class_names)

  @classmethod
  def from_preset(cls, name: str, load_weights: bool = True
                  ) -> "GlimpseClassifier":
    """A built classifier of preset `name` (wsram_tf.classifier.presets:
    translated_mnist with its trained weights, cluttered_mnist, ram)."""
    from wsram_tf.classifier import presets  # pylint: disable=g-import-not-at-top
    return presets.from_preset(name, load_weights)


def check_arguments(num_classes, num_glimpses, patch_size, scale_factors,
                    context_size, hidden_size, recurrent_layers, glimpse_units,
                    label_embedding_size, inference_units,
                    location_std) -> None:
  """Raises ValueError naming the first classifier argument that cannot run."""
  ints = {"num_classes": (num_classes, 1), "num_glimpses": (num_glimpses, 1),
          "patch_size": (patch_size, 1), "context_size": (context_size, 1),
          "hidden_size": (hidden_size, 1), "glimpse_units": (glimpse_units, 0),
          "label_embedding_size": (label_embedding_size, 1),
          "inference_units": (inference_units, 0)}
  for name, (value, low) in ints.items():
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
        or value < low):
      raise ValueError(f"{name}={value!r}: must be an int >= {low}.")
  try:
    glimpse.window_sides(patch_size, scale_factors)
  except ValueError as e:
    raise ValueError(f"patch_size / scale_factors: {e}") from e
  if recurrent_layers not in (1, 2) or isinstance(recurrent_layers, bool):
    raise ValueError("recurrent_layers must be 1 (RAM) or 2 (the paper's "
                     f"network), got {recurrent_layers!r}.")
  if (isinstance(location_std, bool)
      or not isinstance(location_std, numbers.Real) or not location_std > 0):
    raise ValueError(f"location_std must be > 0, got {location_std!r}.")


def check_image_shape(image_shape, patch_size: int, scale_factors,
                      context_size: int) -> None:
  """Raises ValueError if the largest window or the context view (0: none)
  does not fit in images of `image_shape` ([B,] H, W, C)."""
  height, width = tuple(image_shape)[-3:-1]
  if height is None or width is None:
    return  # Checked when the images come.
  side = min(int(height), int(width))
  largest = max(glimpse.window_sides(patch_size, scale_factors))
  if largest > side:
    raise ValueError(
        f"patch_size * max(scale_factors) = {patch_size} * "
        f"{max(scale_factors)} = {largest} pixels is larger than the "
        f"{height}x{width} images: the largest glimpse window must fit in "
        "the image (lower patch_size or the largest scale factor, or use "
        "larger images).")
  if context_size > side:
    raise ValueError(
        f"context_size={context_size} is larger than the {height}x{width} "
        "images: the context view pools the image down to context_size x "
        "context_size.")


def checked_labels(x, labels, num_classes: int, argument: str):
  """`x`, after checking the class indices of `labels` (numpy) or of a
  dataset `x`'s (images, labels, ...) elements: an index outside
  [0, num_classes) is a ValueError naming `argument` (a dataset's, an
  InvalidArgumentError at its batch). XLA would instead turn it into a NaN
  loss or a clamped label embedding."""
  message = (f"{argument}: class indices must be integers in "
             f"[0, {num_classes}) (num_classes={num_classes})")
  if isinstance(x, tf.data.Dataset):
    def check(*element):
      if len(element) >= 2 and element[1].shape.rank == 1:
        labels = tf.cast(element[1], tf.int64)
        tf.debugging.assert_non_negative(labels, message=message)
        tf.debugging.assert_less(labels, tf.cast(num_classes, tf.int64),
                                 message=message)
      return element if len(element) > 1 else element[0]
    return x.map(check)
  if labels is None or isinstance(labels, (dict, tf.data.Dataset)):
    return x
  values = np.asarray(labels)
  if values.ndim == 2 and values.shape[-1] == num_classes and num_classes > 1:
    return x  # One-hot.
  if values.size and np.issubdtype(values.dtype, np.number):
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes or not np.all(values == np.round(values)):
      raise ValueError(f"{message}; got values from {low} to {high}.")
  return x


def _wrong(probabilities, labels):
  predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
  return tf.cast(tf.not_equal(predicted, tf.cast(labels, tf.int32)),
                 tf.float32)


def _error(probabilities, labels):
  return tf.reduce_mean(_wrong(probabilities, labels))
