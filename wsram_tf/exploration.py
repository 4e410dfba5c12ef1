"""Exploration heuristics of §4.5 (Mnih et al. 2014): each off unless weighted.

(1) the proposal temperature lives in `distributions.ActionDistribution`;
(2) `coverage_penalty` pushes the batch distribution of glimpse centres towards
    the whole image and of scales towards uniform, the cure for the collapse to
    a single scale that the paper reports for VAR (Fig. 3);
(3) the entropy bonus is the mean entropy of p(a_n), subtracted from the loss.
"""

import tensorflow as tf

# Variance of a uniform distribution on [-1, 1]: what full coverage looks like.
_UNIFORM_VARIANCE = 1.0 / 3.0


def coverage_penalty(location_means: tf.Tensor, scale_probs: tf.Tensor,
                     mask=None) -> tf.Tensor:
  """Penalty for glimpse policies that look at the same place or scale.

  Args:
    location_means: [batch, N, 2] means of p(l_n) over a batch of images.
    scale_probs: [batch, N, K] probabilities of p(s_n).
    mask: optional [batch, N] weights of the steps (captions: 0 on padding,
      whose actions are never used and must not count as coverage).

  Returns:
    Scalar: per glimpse step, the squared distance of the batch mean and
    variance of the centres from those of a uniform on [-1, 1]^2, plus
    KL(uniform || batch-average scale distribution); averaged over the steps
    that have any weight.
  """
  if mask is None:
    mask = tf.ones(tf.shape(scale_probs)[:2], scale_probs.dtype)
  mask = tf.cast(mask, scale_probs.dtype)
  weight = tf.reduce_sum(mask, axis=0)  # [N]
  safe = tf.maximum(weight, 1e-8)[:, None]
  mean = tf.reduce_sum(mask[..., None] * location_means, axis=0) / safe
  variance = tf.reduce_sum(
      mask[..., None] * tf.square(location_means - mean), axis=0) / safe
  location_term = tf.reduce_sum(
      tf.square(mean) + tf.square(variance - _UNIFORM_VARIANCE), axis=-1)
  num_scales = tf.cast(tf.shape(scale_probs)[-1], scale_probs.dtype)
  average_probs = tf.reduce_sum(mask[..., None] * scale_probs, axis=0) / safe
  scale_term = -tf.reduce_mean(
      tf.math.log(average_probs + 1e-8), axis=-1) - tf.math.log(num_scales)
  used = tf.cast(weight > 0, scale_probs.dtype)
  return tf.reduce_sum(used * (location_term + scale_term)) / tf.maximum(
      tf.reduce_sum(used), 1.0)
