"""Action distributions: a Gaussian over the glimpse centre, a Categorical over scale.

p(a_n | a_<n, I) = N(l_n; mu_n, sigma^2 I) x Cat(s_n; logits_n)   (docs/design.md §1)

Words: `scale` is always the sampled index s_n (into the classifier's scale
factors, or the captioner's feature maps); `scale_dist` / `scale_logits` /
`scale_probs` are its Categorical; `location_std` is the Gaussian's sigma.

Both factors are `tfp.distributions` objects. `ActionHead` is the Keras layer
that maps a recurrent state to their parameters; the prediction network's
action head and the inference network share it, so prior and proposal are one
family. A temperature tau tempers both parts (std * tau, logits / tau), the
first exploration heuristic of the paper (§4.5).
"""

import math
from typing import NamedTuple, Optional, Tuple

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class Action(NamedTuple):
  location: tf.Tensor  # float [..., 2]: (row, column) in [-1, 1] coordinates.
  scale: tf.Tensor  # int32 [...]: the sampled scale index.


class ActionNoise(NamedTuple):
  """Standard noise that one sample of each action factor is a function of."""
  normal: tf.Tensor  # [rows, 2] N(0, 1) for the location.
  gumbel: tf.Tensor  # [rows, K] Gumbel(0, 1) for the scale (Gumbel-max).


def draw_noise(seed: tf.Tensor, rows, num_scales: int) -> ActionNoise:
  """Noise for `rows` actions from a stateless [2] seed.

  Drawing noise per row, rather than sampling a batched distribution, makes a
  sample a function of (seed, row) alone: a batch split across replicas draws
  the global noise and takes its rows, so it gets the same actions as one
  device would.
  """
  normal_seed, gumbel_seed = tf.unstack(
      tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 2))
  # Philox named so that a seed means the same draws on every non-XLA device.
  # (XLA's Philox stream differs from TF's kernels: the same seed gives other,
  # equally distributed, draws with jit_compile on.)
  uniform = tf.random.stateless_uniform(
      [rows, num_scales], gumbel_seed, minval=1e-7, maxval=1.0, alg="philox")
  return ActionNoise(
      normal=tf.random.stateless_normal([rows, 2], normal_seed, alg="philox"),
      gumbel=-tf.math.log(-tf.math.log(uniform)))


class ActionParams(NamedTuple):
  location_mean: tf.Tensor  # [..., 2], tanh-squashed into (-1, 1).
  location_std: tf.Tensor  # [..., 2] (broadcast from a scalar).
  scale_logits: tf.Tensor  # [..., K]


class ActionDistribution:
  """The factorised distribution over one action, built from `ActionParams`."""

  def __init__(self, params: ActionParams, temperature: float = 1.0):
    self.params = params
    self.location_std = params.location_std * temperature
    self.location_dist = tfd.Independent(
        tfd.Normal(params.location_mean, self.location_std),
        reinterpreted_batch_ndims=1)
    self.scale_dist = tfd.Categorical(logits=params.scale_logits / temperature)

  def sample(self, seed: tf.Tensor) -> Action:
    """Draws one action per batch row ([rows, ...] parameters)."""
    rows = tf.shape(self.params.scale_logits)[0]
    return self.sample_from_noise(
        draw_noise(seed, rows, self.params.scale_logits.shape[-1]))

  def sample_from_noise(self, noise: ActionNoise) -> Action:
    """The sample that `noise` maps to: mu + sigma*tau*eps, Gumbel-max scale."""
    scale = tf.argmax(self.scale_dist.logits + noise.gumbel, axis=-1,
                      output_type=tf.int32)
    # Actions are data for the gradient estimators, never differentiated.
    return Action(
        location=tf.stop_gradient(self.params.location_mean
                                  + self.location_std * noise.normal),
        scale=tf.stop_gradient(scale))

  def log_prob(self, action: Action) -> tf.Tensor:
    return self.location_dist.log_prob(action.location) + (
        self.scale_dist.log_prob(action.scale))

  def entropy(self) -> tf.Tensor:
    return self.location_dist.entropy() + self.scale_dist.entropy()

  def mode(self) -> Action:
    """The deterministic glimpse: mean location, most likely scale."""
    return Action(
        location=self.params.location_mean,
        scale=tf.argmax(self.params.scale_logits, axis=-1, output_type=tf.int32))


def sample_replica_rows(sampler: ActionDistribution, seed: tf.Tensor,
                        rows) -> Action:
  """One action per row of this replica's [rows, ...] parameters.

  The noise is drawn for the rows of every replica and this replica keeps its
  own slice, so each example gets the action one device would draw for it.
  """
  replicas = tf.distribute.get_strategy().num_replicas_in_sync
  context = tf.distribute.get_replica_context()
  replica_id = 0 if context is None else context.replica_id_in_sync_group
  first = tf.cast(replica_id, tf.int32) * rows
  noise = draw_noise(seed, rows * replicas,
                     sampler.params.scale_logits.shape[-1])
  return sampler.sample_from_noise(
      ActionNoise(*(x[first:first + rows] for x in noise)))


def propose(prior: ActionDistribution, proposal: str,
            params: Optional[ActionParams], temperature: float,
            seed: tf.Tensor, rows) -> Tuple[Action, ActionDistribution]:
  """One rollout step's (action, distribution it was drawn from).

  `proposal` "mode" takes the prior's mode; otherwise the action is sampled
  from the proposal with `params` (the prior's when None) at `temperature`.
  """
  if proposal == "mode":
    return prior.mode(), prior
  sampler = ActionDistribution(
      prior.params if params is None else params, temperature)
  return sample_replica_rows(sampler, seed, rows), sampler


class ActionHead(keras.layers.Layer):
  """Maps a state to the parameters of p(a_n | .): tanh mean, std, scale logits."""

  def __init__(self, num_scales: int, location_std: float,
               learn_location_std: bool = False, **kwargs):
    super().__init__(**kwargs)
    if location_std <= 0:
      raise ValueError(f"model.location_std must be > 0, got {location_std}.")
    self.num_scales = num_scales
    self.initial_location_std = float(location_std)
    self.learn_location_std = learn_location_std
    # Small initial weights: the first glimpses start near the centre and the
    # scale choice starts near uniform, so early samples explore evenly.
    small = keras.initializers.RandomNormal(stddev=1e-3)
    self.location_layer = keras.layers.Dense(
        2, kernel_initializer=small, name="location")
    self.scale_layer = keras.layers.Dense(
        num_scales, kernel_initializer=small, name="scale")  # Logits.

  def build(self, input_shape):
    self.location_layer.build(input_shape)
    self.scale_layer.build(input_shape)
    self.log_std = self.add_weight(
        shape=(), name="log_location_std",
        initializer=keras.initializers.Constant(
            math.log(self.initial_location_std)),
        trainable=self.learn_location_std)

  def call(self, state: tf.Tensor) -> ActionParams:
    mean = tf.tanh(self.location_layer(state))
    std = tf.exp(self.log_std) * tf.ones_like(mean)
    return ActionParams(mean, std, self.scale_layer(state))

  def get_config(self):
    return {**super().get_config(), "num_scales": self.num_scales,
            "location_std": self.initial_location_std,
            "learn_location_std": self.learn_location_std}
