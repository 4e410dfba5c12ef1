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
import numpy as np
import tensorflow as tf

from wsram_tf import inference_network
from wsram_tf import learning_rates
from wsram_tf import variants

# Where a rollout's actions come from: sampled from the prior, sampled from
# the inference network q, or the prior's mode (deterministic).
PROPOSALS = ("prior", "inference", "mode")


def fold(steps, batch, samples) -> tf.Tensor:
  """Per-step tensors [B*M, ...] -> one [B, M, steps, ...] tensor."""
  x = tf.stack(steps, axis=1)
  return tf.reshape(x, tf.concat([[batch, samples], tf.shape(x)[1:]], 0))


class WakeSleepModel(keras.Model):
  """A keras.Model with separate theta / eta optimizers; subclasses set `inference`."""

  inference = None  # The inference network (eta), or None without q.
  eta_optimizer = None
  # True when `extra_stats` draws actions: the step seed is then split in two
  # so that the extra draws never reuse the training samples' noise.
  extra_stats_seeded = False

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self._evaluating = False
    # A fixed seed, not None: None would draw from Keras' global generator
    # and shift the initial weights of every layer made after it.
    self.evaluation_seed_generator = keras.random.SeedGenerator(
        0, name="evaluation_seed_generator")

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
    """Restarts the evaluation stream at (config.seed, step) and routes
    rollouts traced meanwhile (Keras traces test/predict steps at first
    use, inside this call) to it."""
    step = (0 if self.optimizer is None
            else int(self.optimizer.iterations.numpy()))
    state = np.random.SeedSequence(
        [self.config.seed, 0xE7A1, step]).generate_state(2) % 2**31
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

  def add_estimator_layers(self, hidden: int, num_targets: int,
                           embedding_size: int, num_scales: int,
                           model_config) -> None:
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
          hidden, num_targets, embedding_size, num_scales,
          model_config.location_std, model_config.learn_location_std,
          name="inference")

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

  def compile(self, optimizer=None, eta_optimizer=None, jit_compile=True,
              **kwargs):
    """Theta's optimizer is Keras' `optimizer`; eta gets its own."""
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    self.eta_optimizer = eta_optimizer
    if self.built:
      self._build_optimizers()

  def compile_for_training(self, train_config) -> "WakeSleepModel":
    """compile() from config.train: one Adam for theta, one for eta, each
    on config.train's schedule from its own rate."""
    t = train_config
    clip = {"global_clipnorm": t.clip_norm} if t.clip_norm else {}
    self.compile(
        optimizer=keras.optimizers.Adam(
            learning_rates.rate(t.learning_rate, t), **clip),
        eta_optimizer=keras.optimizers.Adam(
            learning_rates.rate(t.inference_learning_rate, t), **clip),
        jit_compile=t.jit_compile,
        steps_per_execution=t.steps_per_execution)
    return self

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
      _apply(self.eta_optimizer, grads[len(theta):], eta)

  def coverage_penalty(self, rollout) -> tf.Tensor:
    """Exploration (2), docs/design.md §2: per-model, it knows its steps."""
    raise NotImplementedError

  def rollout_stats(self, rollout) -> dict:
    """Hook: metrics of the training rollout beyond the estimator's."""
    del rollout
    return {}

  def compute_losses(self, inputs, targets, seed=None):
    """The variant's losses on one batch: (loss_theta, loss_eta, stats, out)."""
    o = self.config.objective
    proposal = "inference" if self.variant.inference_net else "prior"
    out = self.rollout(inputs, targets, o.num_samples, proposal, o.temperature,
                       seed)
    losses = variants.variant_losses(
        self.variant, out.log_prior_steps, out.log_proposal_steps,
        out.log_likelihood, out.baseline_steps, out.entropy_steps,
        o.entropy_weight)
    loss_theta = losses.loss_theta
    if o.coverage_weight:
      loss_theta += o.coverage_weight * self.coverage_penalty(out)
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
    inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
    seed, extra_seed = self.seed_generator.next(), None
    if self.extra_stats_seeded:
      seed, extra_seed = tf.unstack(tf.random.experimental.stateless_split(
          tf.cast(seed, tf.int32), 2))
    with tf.GradientTape() as tape:
      loss_theta, loss_eta, stats, out = self.compute_losses(
          inputs, targets, seed)
      total = self.replica_loss(loss_theta, loss_eta)
    # Before the update, so that every variant's train error sees the same
    # parameters (the non-+q variants reuse the rollout the loss came from).
    stats.update(self.extra_stats(inputs, targets, out, extra_seed))
    self.apply_update(tape, total)
    for name, value in stats.items():
      self.train_trackers[name].update_state(value)
    return {name: t.result() for name, t in self.train_trackers.items()}


def _apply(optimizer, grads, variables):
  # Variables a variant does not use get None; Keras 3 variables cannot take
  # unconnected_gradients=ZERO, so drop them.
  pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
  if pairs:
    optimizer.apply_gradients(pairs)
