"""Coverage penalty: small for policies that cover the image, large for collapse."""

import numpy as np
import tensorflow as tf

from wsram_tf import exploration


def policy(locations, scale_probs):
  return exploration.coverage_penalty(
      tf.constant(locations, tf.float32), tf.constant(scale_probs, tf.float32))


class CoveragePenaltyTest(tf.test.TestCase):

  def test_uniform_centres_and_scales_cost_almost_nothing(self):
    rng = np.random.default_rng(0)
    locations = rng.uniform(-1, 1, [4000, 3, 2])
    scales = np.full([4000, 3, 3], 1 / 3)
    self.assertLess(float(policy(locations, scales)), 1e-2)

  def test_collapse_to_one_place_and_scale_costs_more(self):
    rng = np.random.default_rng(0)
    spread = policy(rng.uniform(-1, 1, [500, 3, 2]), np.full([500, 3, 3], 1 / 3))
    collapsed = policy(np.full([500, 3, 2], 0.5),
                       np.tile([[[0.98, 0.01, 0.01]]], [500, 3, 1]))
    self.assertGreater(float(collapsed), float(spread) + 0.5)

  def test_penalty_has_gradient_to_the_policy(self):
    locations = tf.Variable(tf.fill([8, 2, 2], 0.3))
    scales = tf.Variable(tf.fill([8, 2, 3], 1 / 3))
    with tf.GradientTape() as tape:
      loss = exploration.coverage_penalty(locations, scales)
    self.assertGreater(float(tf.reduce_max(tf.abs(
        tape.gradient(loss, locations)))), 0.0)


if __name__ == "__main__":
  tf.test.main()
