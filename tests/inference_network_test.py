"""wsram_tf/inference_network.py: eta's loss never reaches the prediction
network's state (so never theta), and every weight of q gets a gradient."""

import tensorflow as tf

from wsram_tf import inference_network


def _network(units=8):
  net = inference_network.InferenceNetwork(
      units, num_classes=5, embedding_size=3, num_scales=2,
      location_std=0.1, name="q")
  net.build(((None, 6), (None,)))
  return net


class InferenceNetworkTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.random.set_seed(0)
    self.state = tf.random.normal([4, 6])
    self.labels = tf.constant([0, 3, 4, 3])

  def test_no_gradient_reaches_the_state_and_every_weight_gets_one(self):
    net = _network()
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(self.state)
      params = net((self.state, self.labels))
      loss = (tf.reduce_sum(tf.square(params.location_mean))
              + tf.reduce_sum(tf.square(params.scale_logits)))
    self.assertIsNone(tape.gradient(loss, self.state))
    kernel_grad = tape.gradient(loss, net.hidden.kernel)
    self.assertGreater(float(tf.reduce_sum(tf.abs(kernel_grad[:6]))), 0.0)
    self.assertGreater(float(tf.reduce_sum(tf.abs(kernel_grad[6:]))), 0.0)
    (embedding_grad,) = tape.gradient(loss,
                                      net.embedding.trainable_variables)
    self.assertGreater(
        float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(embedding_grad)))),
        0.0)


if __name__ == "__main__":
  tf.test.main()
