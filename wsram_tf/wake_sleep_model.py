"""What every model trained by the paper's estimators shares: theta, eta, one update.

Theta (the prediction network and any baseline) is trained by Keras'
`optimizer`, eta (the inference network, `self.inference`) by its own
`eta_optimizer`. loss_theta has no path to eta and loss_eta none to theta
(stop gradients in the weights and in q's input), so one backward pass over
their sum gives each parameter set its own estimator.
"""

import keras
import tensorflow as tf


class WakeSleepModel(keras.Model):
  """A keras.Model with separate theta / eta optimizers; subclasses set `inference`."""

  inference = None  # The inference network (eta), or None without q.
  eta_optimizer = None

  def compile(self, optimizer=None, eta_optimizer=None, jit_compile=True,
              **kwargs):
    """Theta's optimizer is Keras' `optimizer`; eta gets its own."""
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    self.eta_optimizer = eta_optimizer
    if self.built:
      self._build_optimizers()

  def _build_optimizers(self):
    # Built here, not lazily by fit, so each optimizer owns only its variables.
    if getattr(self, "optimizer", None) is not None and not self.optimizer.built:
      self.optimizer.build(self.theta_variables)
    if self.eta_optimizer is not None and not self.eta_optimizer.built:
      self.eta_optimizer.build(self.eta_variables)

  @property
  def eta_variables(self):
    return [] if self.inference is None else self.inference.trainable_variables

  @property
  def theta_variables(self):
    eta = {id(v) for v in self.eta_variables}
    return [v for v in self.trainable_variables if id(v) not in eta]

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


def _apply(optimizer, grads, variables):
  # Variables a variant does not use get None; Keras 3 variables cannot take
  # unconnected_gradients=ZERO, so drop them.
  pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
  if pairs:
    optimizer.apply_gradients(pairs)
