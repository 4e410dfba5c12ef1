"""What every model trained by the paper's estimators shares: theta, eta, one update.

Theta (the prediction network and any baseline) is trained by Keras'
`optimizer`, eta (the inference network, `self.inference`) by its own
`eta_optimizer`. loss_theta has no path to eta and loss_eta none to theta
(stop gradients in the weights and in q's input), so one backward pass over
their sum gives each parameter set its own estimator (docs/design.md §2).

A subclass supplies `rollout(inputs, targets, samples, proposal, temperature,
seed)` (a NamedTuple with the fields `variants.variant_losses` reads), its
coverage penalty and trackers; `compute_losses` and the one `train_step` here
turn them into an update. Rollouts fold the M samples of each example into
the batch (row b*M+m is sample m of example b); `fold` unfolds the per-step
outputs again.

Random streams: training draws its action noise from
`training_seed_generator` (backed up for resume). `evaluate` and `predict`
draw from their own stream, restarted at each call from (config.seed, the
optimizer step): validation never shifts the training draws, so a resumed
run equals one never stopped, and the same step always validates alike.
Rollouts read `seed_generator`, which is the stream of the phase.
"""

import contextlib

import keras
from keras.src.trainers import compile_utils
import numpy as np
import tensorflow as tf

from wsram_tf import distributions
from wsram_tf import inference_network
from wsram_tf import variants

# Where a rollout's actions come from: sampled from the prior, sampled from
# the inference network q, or the prior's mode (deterministic).
PROPOSALS = ("prior", "inference", "mode")


def fold(steps, batch, samples) -> tf.Tensor:
  """Per-step tensors [B*M, ...] -> one [B, M, steps, ...] tensor."""
  x = tf.stack(steps, axis=1)
  return tf.reshape(x, tf.concat([[batch, samples], tf.shape(x)[1:]], 0))


class WakeSleepModel(keras.Model):
  """A keras.Model trained by one of the paper's estimators, theta and eta apart.

  The contract a subclass fills in: `__init__` here owns the variant, the
  seed and its generators, and the objective's settings (M, the exploration
  heuristics, evaluation's M); the subclass makes its layers, then calls
  `add_estimator_layers`, and ends its `build` with `finish_build`. It
  implements `rollout` (below) and `coverage_penalty`, and draws each step's
  action with `sample_step`.
  """

  inference = None  # The inference network (eta), or None without q.
  eta_optimizer = None
  # True when `extra_stats` draws actions: the step seed is then split in two
  # so that the extra draws never reuse the training samples' noise.
  extra_stats_seeded = False
  # Attributes a traced train/test/predict step reads: setting one drops the
  # traced functions, so the next fit/evaluate/predict uses the new value.
  STEP_SETTINGS = ("num_samples", "temperature", "coverage_weight",
                   "entropy_weight", "eval_num_samples", "eval_deterministic")

  def __init__(self, variant: str = "wsram_qc", num_samples: int = 5,
               temperature: float = 1.0, coverage_weight: float = 0.0,
               entropy_weight: float = 0.0, eval_num_samples: int = 5,
               eval_deterministic: bool = False, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.variant = variants.parse_variant(variant)
    check_settings(num_samples=num_samples, temperature=temperature,
                   coverage_weight=coverage_weight,
                   entropy_weight=entropy_weight,
                   eval_num_samples=eval_num_samples, seed=seed)
    self.seed = int(seed)
    self.num_samples = int(num_samples)
    self.temperature = float(temperature)
    self.coverage_weight = float(coverage_weight)
    self.entropy_weight = float(entropy_weight)
    self.eval_num_samples = int(eval_num_samples)
    self.eval_deterministic = bool(eval_deterministic)
    self._evaluating = False
    # A fixed seed, not None: None would draw from Keras' global generator
    # and shift the initial weights of every layer made after it.
    self.evaluation_seed_generator = keras.random.SeedGenerator(
        0, name="evaluation_seed_generator")
    self._inference_rate_ratio = None

  def __setattr__(self, name, value):
    super().__setattr__(name, value)
    if name in self.STEP_SETTINGS and getattr(self, "_evaluating", None) is not None:
      # Keras caches the traced steps: without this a changed M between two
      # fit calls would be silently ignored.
      for function in ("train_function", "test_function", "predict_function"):
        if getattr(self, function, None) is not None:
          super().__setattr__(function, None)

  def shared_config(self) -> dict:
    """The constructor arguments this class owns (for `get_config`)."""
    return {"variant": self.variant.name, "num_samples": self.num_samples,
            "temperature": self.temperature,
            "coverage_weight": self.coverage_weight,
            "entropy_weight": self.entropy_weight,
            "eval_num_samples": self.eval_num_samples,
            "eval_deterministic": self.eval_deterministic, "seed": self.seed}

  # Keras saves layers' variables, not a SeedGenerator's state: without it a
  # model loaded from a .keras file would train on with other action noise.
  SEED_STATE_KEY = "training_seed_state"

  def save_own_variables(self, store):
    super().save_own_variables(store)
    store[self.SEED_STATE_KEY] = self.training_seed_generator.state.numpy()

  def load_own_variables(self, store):
    keys = list(store.keys())
    if self.SEED_STATE_KEY in keys:  # Absent in files of older versions.
      self.training_seed_generator.state.assign(store[self.SEED_STATE_KEY])
    super().load_own_variables(_Without(store, self.SEED_STATE_KEY))

  def rollout(self, inputs, targets=None, num_samples: int = 1,
              proposal: str = "prior", temperature: float = 1.0, seed=None):
    """The subclass's pass over its steps for `num_samples` action sequences
    per example, folded into the batch (row b*M+m is sample m of example b);
    returns a NamedTuple with the fields `variants.variant_losses` reads
    ([B, M, steps] log_prior_steps, log_proposal_steps, entropy_steps,
    baseline_steps or None; [B, M] log_likelihood)."""
    raise NotImplementedError(f"{type(self).__name__} must implement rollout.")

  @property
  def seed_generator(self):
    """The stream rollouts draw from: evaluation's inside evaluate/predict."""
    if self._evaluating:
      return self.evaluation_seed_generator
    return self.training_seed_generator

  @seed_generator.setter
  def seed_generator(self, generator):
    self.training_seed_generator = generator

  @contextlib.contextmanager
  def _evaluation_stream(self):
    """Restarts the evaluation stream at (seed, step) and routes rollouts
    traced meanwhile (Keras traces test/predict steps at first use, inside
    this call) to it."""
    step = (0 if getattr(self, "optimizer", None) is None
            else int(self.optimizer.iterations.numpy()))
    state = np.random.SeedSequence(
        [self.seed, 0xE7A1, step]).generate_state(2) % 2**31
    self.evaluation_seed_generator.state.assign(
        np.array([state[0], state[1] // 2], np.int64).astype(
            self.evaluation_seed_generator.state.dtype))
    self._evaluating = True
    try:
      yield
    finally:
      self._evaluating = False

  def evaluate(self, *args, **kwargs):
    with self._evaluation_stream():
      return super().evaluate(*args, **kwargs)

  def predict(self, *args, **kwargs):
    with self._evaluation_stream():
      return super().predict(*args, **kwargs)

  def sample_step(self, state, target, proposal: str, temperature: float,
                  seed, rows, outputs: dict, mask=None):
    """One step's action: drawn from the prior, from q (seeing `target`) or
    the prior's mode; its log-probabilities, entropy and trace (times
    `mask`, 0 on the captioner's padding) appended to `outputs`."""
    prior = distributions.ActionDistribution(self.action_head(state))
    params = (self.inference((state, target))
              if proposal == "inference" else None)
    action, sampler = distributions.propose(
        prior, proposal, params, temperature, seed, rows)
    masked = (lambda x: x) if mask is None else (lambda x: mask * x)
    outputs["log_prior"].append(masked(prior.log_prob(action)))
    outputs["log_proposal"].append(masked(sampler.log_prob(action)))
    outputs["entropy"].append(masked(prior.entropy()))
    outputs["location"].append(action.location)
    outputs["scale"].append(action.scale)
    outputs["mean"].append(prior.params.location_mean)
    outputs["probs"].append(tf.nn.softmax(prior.params.scale_logits))
    if self.baseline_head is not None:
      # b_n comes from the state a_n is drawn from: unbiased.
      outputs["baseline"].append(
          self.baseline_head(tf.stop_gradient(state))[:, 0])
    return action

  def add_estimator_layers(self, hidden: int, num_targets: int,
                           embedding_size: int, num_scales: int,
                           location_std: float,
                           learn_location_std: bool) -> None:
    """The layers the variant adds: VAR+c's baseline, +q's inference network.

    Call after the model's own layers: Keras draws each layer's initializer
    seed when the layer is made, so the order fixes the initial weights.
    """
    self.baseline_head = None
    if self.variant.estimator == "var" and self.variant.control_variates:
      self.baseline_head = keras.layers.Dense(1, name="baseline")
    self.inference = None
    if self.variant.inference_net:
      self.inference = inference_network.InferenceNetwork(
          hidden, num_targets, embedding_size, num_scales, location_std,
          learn_location_std, name="inference")

  def finish_build(self, state_shape) -> None:
    """Ends a subclass's build(): builds the `add_estimator_layers` layers on
    the recurrent state (shape `state_shape`), marks the model built and
    builds the optimizers."""
    if self.baseline_head is not None:
      self.baseline_head.build(state_shape)
    if self.inference is not None:
      self.inference.build((state_shape, (None,)))
    self.built = True
    self._build_optimizers()

  # -- compile: two optimizers ----------------------------------------------

  def compile(self, optimizer=None, inference_optimizer=None,
              inference_rate_ratio=None, jit_compile=True, **kwargs):
    """Theta's optimizer is Keras' `optimizer`; eta gets its own.

    Args:
      optimizer: theta's (prediction network and baseline): a Keras
        optimizer, its name ("adam", "sgd", ...) or None for Adam at
        `default_rates()` (the variant's tuned rate).
      inference_optimizer: eta's (the inference network of +q variants): an
        optimizer or a name, used as given; None for the same kind as
        theta's whose rate follows theta's (below).
      inference_rate_ratio: with inference_optimizer=None, eta's rate is
        this times theta's current rate at every update, so Keras'
        learning-rate callbacks (ReduceLROnPlateau, LearningRateScheduler)
        and theta's schedule move both. Default: the variant's tuned ratio
        (3 for wsram_qc). With an explicit inference_optimizer, change its
        rate yourself: `model.eta_optimizer.learning_rate = ...`.
      jit_compile: compile the train/test steps with XLA (default True).
      **kwargs: the rest of `keras.Model.compile` (steps_per_execution, ...);
        `loss` and `metrics` are refused: the variant's estimator is the loss
        and the model reports its own metrics.
    """
    for unused in ("loss", "metrics", "loss_weights", "weighted_metrics"):
      if kwargs.get(unused) is not None:
        raise ValueError(
            f"compile({unused}=...): a {type(self).__name__} trains with its "
            f"variant's estimator ({self.variant.name}) and reports its own "
            "metrics; leave it out.")
      kwargs.pop(unused, None)
    theta_rate, eta_rate = self.default_rates()
    tied = inference_optimizer is None
    if optimizer is None:
      optimizer = keras.optimizers.Adam(theta_rate)
    optimizer = keras.optimizers.get(optimizer)
    if tied:
      ratio = (eta_rate / theta_rate if inference_rate_ratio is None
               else float(inference_rate_ratio))
      if not ratio > 0:
        raise ValueError(
            f"inference_rate_ratio must be > 0, got {inference_rate_ratio!r}.")
      inference_optimizer = _tied_copy(optimizer, ratio)
      self._inference_rate_ratio = ratio
    else:
      if inference_rate_ratio is not None:
        raise ValueError("inference_rate_ratio applies only without an "
                         "explicit inference_optimizer.")
      inference_optimizer = keras.optimizers.get(inference_optimizer)
      self._inference_rate_ratio = None
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    self.eta_optimizer = inference_optimizer
    self._compile_kwargs = dict(kwargs, jit_compile=jit_compile)
    if self.built:
      self._build_optimizers()

  def default_rates(self) -> tuple:
    """(theta's, eta's) Adam rate of compile() without optimizers: those the
    Fig. 2 grid tuned for the variant (translated MNIST), else 1e-3."""
    return variants.default_rates(self.variant.name)

  def get_compile_config(self):
    if getattr(self, "optimizer", None) is None:
      return None
    config = {"optimizer": keras.saving.serialize_keras_object(self.optimizer),
              **{k: v for k, v in self._compile_kwargs.items()
                 if k in ("jit_compile", "steps_per_execution")}}
    if self._inference_rate_ratio is None:
      config["inference_optimizer"] = keras.saving.serialize_keras_object(
          self.eta_optimizer)
    else:
      config["inference_rate_ratio"] = self._inference_rate_ratio
    return config

  def compile_from_config(self, config):
    config = dict(config)
    for key in ("optimizer", "inference_optimizer"):
      if key in config:
        config[key] = keras.saving.deserialize_keras_object(config[key])
    self.compile(**config)

  def _build_optimizers(self):
    # Built here, not lazily by fit, so each optimizer owns only its variables.
    if getattr(self, "optimizer", None) is not None and not self.optimizer.built:
      self.optimizer.build(self.theta_variables)
    if self.eta_optimizer is not None and not self.eta_optimizer.built:
      self.eta_optimizer.build(self.eta_variables)

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Keras' TF trainer calls this at the start of fit/evaluate to build an
    # unbuilt model from the first batch, which it first averages with
    # strategy.reduce; under MultiWorkerMirroredStrategy that reduce fails on
    # the (inputs, targets) nest (keras-team/keras#20585). Our models and
    # optimizers are built in build(), so there is nothing to do.
    if self.built and (getattr(self, "optimizer", None) is None
                       or self.optimizer.built):
      return
    super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

  def _make_function(self, step_function):
    # Keras' TF trainer averages the logs of train_step and test_step across
    # MultiWorkerMirroredStrategy workers with strategy.reduce("MEAN", v,
    # axis=0), which fails on our scalar logs (tensorflow/tensorflow#72388).
    # A length-1 axis makes that reduce the mean over replicas of a scalar.
    if not isinstance(self.distribute_strategy,
                      tf.distribute.MultiWorkerMirroredStrategy):
      return super()._make_function(step_function)

    def step_with_batch_axis(data):
      return {name: tf.reshape(value, [1])
              for name, value in step_function(data).items()}
    return super()._make_function(step_with_batch_axis)

  @property
  def eta_variables(self):
    return [] if self.inference is None else self.inference.trainable_variables

  @property
  def theta_variables(self):
    eta = {id(v) for v in self.eta_variables}
    return [v for v in self.trainable_variables if id(v) not in eta]

  def check_proposal(self, proposal: str, targets=None) -> None:
    """Fails on a proposal this model cannot draw from."""
    if proposal not in PROPOSALS:
      raise ValueError(f"proposal must be one of {PROPOSALS}, got {proposal!r}")
    if proposal == "inference" and (self.inference is None or targets is None):
      raise ValueError(f"variant {self.variant.name!r}: the inference proposal "
                       "needs an inference network (a +q variant) and targets.")

  @staticmethod
  def replica_loss(loss_theta, loss_eta):
    """The loss one replica differentiates (call inside the tape).

    Replicas' gradients are summed: each is scaled to its share of the global
    batch so the update equals one device's.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return (loss_theta + loss_eta) / replicas

  def apply_update(self, tape, total) -> None:
    """One backward pass; theta and eta stepped by their own optimizers."""
    theta, eta = self.theta_variables, self.eta_variables
    grads = tape.gradient(total, theta + eta)
    _apply(self.optimizer, grads[:len(theta)], theta)
    if eta:
      if self._inference_rate_ratio is not None:
        # Eta's rate follows theta's current one (schedule or callback).
        self.eta_optimizer.learning_rate = (
            self._inference_rate_ratio * self.optimizer.learning_rate)
      _apply(self.eta_optimizer, grads[len(theta):], eta)

  def coverage_penalty(self, rollout) -> tf.Tensor:
    """Exploration (2), docs/design.md §2: per-model, it knows its steps."""
    raise NotImplementedError

  def rollout_stats(self, rollout) -> dict:
    """Hook: metrics of the training rollout beyond the estimator's."""
    del rollout
    return {}

  def targets_of(self, targets):
    """Hook: the targets as the rollout takes them (checked, converted)."""
    return targets

  def compute_losses(self, inputs, targets, seed=None, sample_weight=None):
    """The variant's losses on one batch: (loss_theta, loss_eta, stats, out).

    `sample_weight` [B] weights each example's share of both losses (a
    weighted mean: weight 2 counts as the example twice)."""
    proposal = "inference" if self.variant.inference_net else "prior"
    out = self.rollout(inputs, targets, self.num_samples, proposal,
                       self.temperature, seed)
    with tf.name_scope("objective"):
      losses = variants.variant_losses(
          self.variant, out.log_prior_steps, out.log_proposal_steps,
          out.log_likelihood, out.baseline_steps, out.entropy_steps,
          self.entropy_weight, sample_weight)
    loss_theta = losses.loss_theta
    if self.coverage_weight:
      loss_theta += self.coverage_weight * self.coverage_penalty(out)
    stats = {"loss": losses.objective, "bound": tf.reduce_mean(losses.bound),
             "ess": tf.reduce_mean(losses.ess),
             "baseline_loss": losses.baseline_loss,
             **self.rollout_stats(out)}
    return loss_theta, losses.loss_eta, stats, out

  def extra_stats(self, inputs, targets, rollout, seed) -> dict:
    """Hook: metrics of the parameters before the update (the classifier's
    train error); `seed` is the step's second seed when `extra_stats_seeded`."""
    del inputs, targets, rollout, seed
    return {}

  def train_step(self, data):
    inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    targets = self.targets_of(targets)
    seed, extra_seed = self.seed_generator.next(), None
    if self.extra_stats_seeded:
      seed, extra_seed = tf.unstack(tf.random.experimental.stateless_split(
          tf.cast(seed, tf.int32), 2))
    with tf.GradientTape() as tape:
      loss_theta, loss_eta, stats, out = self.compute_losses(
          inputs, targets, seed, sample_weight)
      total = self.replica_loss(loss_theta, loss_eta)
    # Before the update, so that every variant's train error sees the same
    # parameters (the non-+q variants reuse the rollout the loss came from).
    stats.update(self.extra_stats(inputs, targets, out, extra_seed))
    self.apply_update(tape, total)
    for name, value in stats.items():
      self.train_trackers[name].update_state(value)
    return {name: t.result() for name, t in self.train_trackers.items()}


def check_settings(**settings) -> None:
  """Raises ValueError naming the first shared setting out of its range."""
  for name in ("num_samples", "eval_num_samples"):
    _check_number(name, settings[name], int, lambda v: v >= 1, "an int >= 1")
  _check_number("temperature", settings["temperature"], float,
                lambda v: v > 0, "> 0")
  for name in ("coverage_weight", "entropy_weight"):
    _check_number(name, settings[name], float, lambda v: v >= 0, ">= 0")
  _check_number("seed", settings["seed"], int, lambda v: 0 <= v < 2**32,
                "an int in [0, 2**32)")


def _check_number(name, value, kind, ok, what) -> None:
  kinds = (int, np.integer) if kind is int else (int, float, np.number)
  if (isinstance(value, bool) or not isinstance(value, kinds)
      or not ok(value)):  # NaN fails `ok`.
    raise ValueError(f"{name} must be {what}, got {value!r}.")


def directed_metrics(directions: dict):
  """The metrics {metric: "up" | "down"} as one list Keras' callbacks read.

  EarlyStopping, ModelCheckpoint and ReduceLROnPlateau pick min or max for
  a monitored metric other than a loss only from `_direction` of metrics
  inside a compiled metrics list, so ours go into one: monitor=
  "val_accuracy" then needs no mode. (Keras 3 internals, pinned by
  tests/api_test.py.)
  """
  for metric, direction in directions.items():
    metric._direction = direction  # pylint: disable=protected-access
  return _MetricsList(list(directions), name="evaluation")


class _MetricsList(compile_utils.MetricsList):

  def result(self):  # Keras' own leaves it out: its results are a dict.
    return self.get_result()


class _Without:
  """A weights store seen without one key (Keras' own loader counts keys)."""

  def __init__(self, store, key: str):
    self._store, self._key = store, key

  def keys(self):
    return [k for k in self._store.keys() if k != self._key]

  def __getitem__(self, key):
    return self._store[key]


def _tied_copy(optimizer, ratio: float):
  """A fresh optimizer like `optimizer` whose rate `apply_update` sets to
  `ratio` x theta's at every step."""
  config = optimizer.get_config()
  config["learning_rate"] = ratio * float(
      keras.ops.convert_to_numpy(optimizer.learning_rate))
  config["name"] = "inference_" + config.get("name", "optimizer")
  return type(optimizer).from_config(config)


def _apply(optimizer, grads, variables):
  # Variables a variant does not use get None; Keras 3 variables cannot take
  # unconnected_gradients=ZERO, so drop them.
  pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
  if pairs:
    optimizer.apply_gradients(pairs)
