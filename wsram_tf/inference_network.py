"""The inference network q(a_n | y, a_<n, I) (docs/design.md §1), eta.

It reads the prediction network's state (gradient stopped, so eta's loss never
trains theta) and an embedding of the target (the class for the classifier,
a word for the captioner) and maps them to the parameters of an action
distribution of the same family as the prior (`distributions.ActionHead`).
"""

import keras
import tensorflow as tf

from wsram_tf import distributions


class InferenceNetwork(keras.layers.Layer):
  """q(a_n | y, a_<n, I, eta): sees the label, proposes where to look."""

  def __init__(self, units: int, num_classes: int, embedding_size: int,
               num_scales: int, location_std: float,
               learn_location_std: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.config_args = dict(
        units=units, num_classes=num_classes, embedding_size=embedding_size,
        num_scales=num_scales, location_std=location_std,
        learn_location_std=learn_location_std)
    self.embedding = keras.layers.Embedding(
        num_classes, embedding_size, name="label_embedding")
    self.hidden = keras.layers.Dense(units, activation="relu", name="hidden")
    self.head = distributions.ActionHead(
        num_scales, location_std, learn_location_std, name="action")

  def build(self, input_shape):
    state_shape, _ = input_shape
    units = self.config_args["units"]
    self.embedding.build((None,))
    self.hidden.build(
        (None, state_shape[-1] + self.config_args["embedding_size"]))
    self.head.build((None, units))

  def call(self, inputs) -> distributions.ActionParams:
    state, labels = inputs
    # The stop_gradient keeps eta's loss from training theta (docs/design.md §1).
    features = tf.concat(
        [tf.stop_gradient(state), self.embedding(labels)], axis=-1)
    return self.head(self.hidden(features))

  def get_config(self):
    return {**super().get_config(), **self.config_args}
