"""Action distributions: seeded sampling, log-probabilities, temperature, mode."""

import numpy as np
import tensorflow as tf

from wsram_tf import distributions


def params(batch=4, scales=3):
  return distributions.ActionParams(
      location_mean=tf.fill([batch, 2], 0.25),
      location_std=tf.fill([batch, 2], 0.1),
      scale_logits=tf.tile([[0.0, 1.0, 2.0]], [batch, 1])[:, :scales])


class ActionDistributionTest(tf.test.TestCase):

  def test_same_seed_same_sample(self):
    dist = distributions.ActionDistribution(params())
    a, b = dist.sample(tf.constant([1, 2])), dist.sample(tf.constant([1, 2]))
    self.assertAllEqual(a.location, b.location)
    self.assertAllEqual(a.scale, b.scale)

  def test_different_seed_different_sample(self):
    dist = distributions.ActionDistribution(params())
    a, b = dist.sample(tf.constant([1, 2])), dist.sample(tf.constant([1, 3]))
    self.assertNotAllClose(a.location, b.location)

  def test_a_row_of_global_noise_gives_that_rows_sample(self):
    noise = distributions.draw_noise(tf.constant([3, 4]), 8, 3)
    dist = distributions.ActionDistribution(params(batch=4))
    tail = dist.sample_from_noise(distributions.ActionNoise(
        *(x[4:] for x in noise)))
    whole = distributions.ActionDistribution(params(batch=8)).sample_from_noise(
        noise)
    self.assertAllClose(tail.location, whole.location[4:])
    self.assertAllEqual(tail.scale, whole.scale[4:])

  def test_log_prob_is_gaussian_plus_categorical(self):
    p = params(batch=1)
    action = distributions.Action(tf.constant([[0.3, 0.1]]), tf.constant([2]))
    expected = (np.sum(-0.5 * ((np.array([0.3, 0.1]) - 0.25) / 0.1) ** 2
                       - np.log(0.1 * np.sqrt(2 * np.pi)))
                + 2.0 - np.log(np.exp([0.0, 1.0, 2.0]).sum()))
    got = distributions.ActionDistribution(p).log_prob(action)
    self.assertAllClose(got, [expected], atol=1e-5)

  def test_temperature_widens_location_and_flattens_scale(self):
    cold = distributions.ActionDistribution(params(), 1.0)
    hot = distributions.ActionDistribution(params(), 2.0)
    self.assertAllClose(hot.location_std, 0.2 * tf.ones([4, 2]))
    self.assertGreater(float(hot.scale_dist.entropy()[0]),
                       float(cold.scale_dist.entropy()[0]))

  def test_sample_statistics_follow_the_parameters(self):
    p = params(batch=20000)
    action = distributions.ActionDistribution(p).sample(tf.constant([5, 6]))
    self.assertAllClose(tf.reduce_mean(action.location, 0), [0.25, 0.25],
                        atol=5e-3)
    counts = np.bincount(action.scale.numpy(), minlength=3) / 20000
    probs = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    self.assertAllClose(counts, probs, atol=0.02)

  def test_mode_is_mean_and_likeliest_scale(self):
    mode = distributions.ActionDistribution(params()).mode()
    self.assertAllClose(mode.location, tf.fill([4, 2], 0.25))
    self.assertAllEqual(mode.scale, [2, 2, 2, 2])

  def test_samples_carry_no_gradient(self):
    p = params()
    with tf.GradientTape() as tape:
      tape.watch(p.location_mean)
      action = distributions.ActionDistribution(p).sample(tf.constant([1, 1]))
    self.assertIsNone(tape.gradient(action.location, p.location_mean))


class ProposeTest(tf.test.TestCase):

  def test_mode_proposal_is_the_priors_mode(self):
    prior = distributions.ActionDistribution(params())
    action, sampler = distributions.propose(prior, "mode", None, 2.0,
                                            tf.constant([1, 2]), 4)
    self.assertIs(sampler, prior)
    self.assertAllClose(action.location, prior.mode().location)

  def test_without_params_samples_the_tempered_prior(self):
    prior = distributions.ActionDistribution(params())
    seed = tf.constant([5, 6])
    action, sampler = distributions.propose(prior, "prior", None, 2.0, seed, 4)
    expected = distributions.ActionDistribution(params(), 2.0).sample(seed)
    self.assertAllClose(action.location, expected.location)
    self.assertAllEqual(action.scale, expected.scale)
    self.assertAllClose(
        sampler.log_prob(action),
        distributions.ActionDistribution(params(), 2.0).log_prob(action))

  def test_given_params_are_the_proposal(self):
    prior = distributions.ActionDistribution(params())
    other = params()._replace(location_mean=tf.fill([4, 2], -0.5))
    action, _ = distributions.propose(prior, "inference", other, 1.0,
                                      tf.constant([5, 6]), 4)
    expected = distributions.ActionDistribution(other).sample(
        tf.constant([5, 6]))
    self.assertAllClose(action.location, expected.location)


class ActionHeadTest(tf.test.TestCase):

  def test_output_shapes_and_bounded_mean(self):
    head = distributions.ActionHead(num_scales=3, location_std=0.1)
    out = head(tf.random.normal([5, 7]) * 100)
    self.assertEqual(out.location_mean.shape, (5, 2))
    self.assertEqual(out.scale_logits.shape, (5, 3))
    self.assertAllInRange(out.location_mean, -1.0, 1.0)
    self.assertAllClose(out.location_std, tf.fill([5, 2], 0.1))

  def test_std_is_trainable_only_when_asked(self):
    fixed = distributions.ActionHead(3, 0.1)
    learned = distributions.ActionHead(3, 0.1, learn_location_std=True)
    fixed.build((None, 4))
    learned.build((None, 4))
    self.assertNotIn("log_location_std",
                     [v.name for v in fixed.trainable_variables])
    self.assertIn("log_location_std",
                  [v.name for v in learned.trainable_variables])

  def test_non_positive_std_is_rejected(self):
    with self.assertRaisesRegex(ValueError, "location_std"):
      distributions.ActionHead(3, 0.0)


if __name__ == "__main__":
  tf.test.main()
