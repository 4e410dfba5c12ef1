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

  def test_all_ones_mask_equals_no_mask(self):
    rng = np.random.default_rng(1)
    locations = tf.constant(rng.uniform(-1, 1, [16, 3, 2]), tf.float32)
    scales = tf.nn.softmax(tf.constant(rng.normal(size=[16, 3, 3]), tf.float32))
    self.assertAllClose(
        exploration.coverage_penalty(locations, scales),
        exploration.coverage_penalty(locations, scales, tf.ones([16, 3])))

  def test_masked_steps_do_not_count(self):
    rng = np.random.default_rng(2)
    locations = rng.uniform(-1, 1, [16, 2, 2])
    scales = np.full([16, 2, 3], 1 / 3)
    # Padding: a collapsed third step and two collapsed rows, all masked out.
    padded_locations = np.concatenate(
        [np.concatenate([locations, np.full([16, 1, 2], 0.9)], axis=1),
         np.full([2, 3, 2], 0.9)])
    padded_scales = np.concatenate(
        [np.concatenate([scales, np.tile([[[1.0, 0.0, 0.0]]], [16, 1, 1])],
                        axis=1),
         np.tile([[[1.0, 0.0, 0.0]]], [2, 3, 1])])
    mask = np.zeros([18, 3], np.float32)
    mask[:16, :2] = 1.0
    self.assertAllClose(
        policy(locations, scales),
        exploration.coverage_penalty(
            tf.constant(padded_locations, tf.float32),
            tf.constant(padded_scales, tf.float32), tf.constant(mask)))


if __name__ == "__main__":
  tf.test.main()
