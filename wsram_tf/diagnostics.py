"""Gradient-variance diagnostic of paper Fig. 2 (middle), docs/design.md §3.

On a fixed batch and fixed parameters, K independent gradient estimates with
fresh action samples; the reported number is the trace of their covariance
divided by the number of parameters (the mean per-coordinate variance),
separately for theta (prediction network and baseline) and eta (inference
network).
"""

from typing import Dict
import weakref

import numpy as np
import tensorflow as tf


def _flat_gradients(model, images, labels, seed):
  with tf.GradientTape() as tape:
    loss_theta, loss_eta, _, _ = model.compute_losses(images, labels, seed)
    total = loss_theta + loss_eta  # Disjoint parameter sets (see train_step).
  theta, eta = model.theta_variables, model.eta_variables
  grads = tape.gradient(total, theta + eta)

  def flat(gs, vs):
    return tf.concat([tf.reshape(tf.zeros_like(v) if g is None else g, [-1])
                      for g, v in zip(gs, vs)] or [tf.zeros([0])], axis=0)

  return flat(grads[:len(theta)], theta), flat(grads[len(theta):], eta)


# One traced (and, with XLA, compiled) gradient function per model and mode:
# a measurement every few hundred steps must not recompile each time.
_COMPILED = weakref.WeakKeyDictionary()


def _compiled(model, jit_compile: bool):
  per_model = _COMPILED.setdefault(model, {})
  if jit_compile not in per_model:
    model_ref = weakref.ref(model)  # A strong one would keep the model alive.
    per_model[jit_compile] = tf.function(
        lambda images, labels, seed: _flat_gradients(model_ref(), images,
                                                     labels, seed),
        jit_compile=jit_compile)
  return per_model[jit_compile]


def gradient_variance(model, images, labels, draws: int = 10,
                      seed: int = 0, jit_compile: bool = True
                      ) -> Dict[str, float]:
  """Mean per-coordinate variance of `draws` gradient estimates on one batch.

  Returns {"theta": ..., "eta": ...}; eta is NaN for variants without an
  inference network. Parameters are not changed.
  """
  if draws < 2:
    raise ValueError(f"gradient_variance needs draws >= 2, got {draws}.")
  step = _compiled(model, jit_compile)
  seeds = tf.random.experimental.stateless_split(
      tf.constant([seed, 7919], tf.int32), draws)
  theta, eta = zip(*(step(images, labels, seeds[k])
                     for k in range(draws)))
  result = {}
  for name, samples in (("theta", theta), ("eta", eta)):
    stacked = np.stack([s.numpy() for s in samples]).astype(np.float64)
    result[name] = (float(np.mean(np.var(stacked, axis=0, ddof=1)))
                    if stacked.shape[1] else float("nan"))
  return result
