"""The layers of the classifier's prediction network (docs/design.md §1, paper Fig. 1).

Prediction network (theta): glimpse encoder -> ReLU recurrent layer 1 ->
ReLU recurrent layer 2; the low-resolution context initialises layer 2; the
action head reads layer 2, the class head reads layer 1. The inference
network (eta) is shared with the captioner: `wsram_tf/inference_network.py`.
"""

import contextlib

import keras
import tensorflow as tf

# True while an export traces its serving functions (`serving_trace`).
_SERVING_TRACE = [False]


@contextlib.contextmanager
def serving_trace():
  """Traces the recurrence as max(x, 0) instead of relu(x): the same values,
  but not the MatMul + BiasAdd + Add + Relu pattern that TensorFlow 2.21's
  oneDNN remapper fuses into a node it cannot name (E-level grappler lines at
  every signature's first call; the remapper then gives up). Training keeps
  relu: its gradient at 0 differs and XLA never sees the pattern."""
  _SERVING_TRACE[0] = True
  try:
    yield
  finally:
    _SERVING_TRACE[0] = False


class ReLURNNCell(keras.layers.Layer):
  """r_n = relu(W x_n + U r_{n-1} + b), the paper's ReLU recurrence."""

  def __init__(self, units: int, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.input_layer = keras.layers.Dense(units, name="input")
    # Identity recurrence (IRNN, Le et al. 2015) keeps ReLU recurrences stable
    # over the few glimpses without saturating.
    self.recurrent_layer = keras.layers.Dense(
        units, use_bias=False, kernel_initializer="identity", name="recurrent")

  def build(self, input_shape):
    self.input_layer.build(input_shape)
    self.recurrent_layer.build((None, self.units))

  def call(self, inputs: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
    pre_activation = self.input_layer(inputs) + self.recurrent_layer(state)
    if _SERVING_TRACE[0]:
      return tf.maximum(pre_activation, 0.0)
    return tf.nn.relu(pre_activation)

  def get_config(self):
    return {**super().get_config(), "units": self.units}


class GlimpseEncoder(keras.layers.Layer):
  """e_n from the patch ("what") and the location and scale ("where").

  `what_units` sizes the what/where layers (default `units`; the RAM of Mnih
  et al. 2014 uses 128 under a 256-unit output).
  """

  def __init__(self, units: int, num_scales: int, what_units: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.num_scales = num_scales
    self.what_units = what_units or units
    self.what = keras.layers.Dense(self.what_units, activation="relu",
                                   name="what")
    self.where = keras.layers.Dense(self.what_units, activation="relu",
                                    name="where")
    self.combine = keras.layers.Dense(units, activation="relu", name="combine")

  def build(self, input_shape):
    patch_shape, _, _ = input_shape
    self.what.build((None, patch_shape[-1]))
    self.where.build((None, 2 + self.num_scales))
    self.combine.build((None, 2 * self.what_units))

  def call(self, inputs) -> tf.Tensor:
    patches, locations, scales = inputs  # [B, P*P*C], [B, 2], [B] int
    where = tf.concat(
        [locations, tf.one_hot(scales, self.num_scales, dtype=locations.dtype)],
        axis=-1)
    return self.combine(
        tf.concat([self.what(patches), self.where(where)], axis=-1))

  def get_config(self):
    return {**super().get_config(), "units": self.units,
            "num_scales": self.num_scales, "what_units": self.what_units}
