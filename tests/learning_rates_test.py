"""wsram_tf/learning_rates.py: the schedules both optimizers follow."""

import ml_collections
import numpy as np
import tensorflow as tf

from tests import builders
from tests import toy_data
from wsram_tf import learning_rates


def train_section(schedule="cosine", steps=100, warmup=10, fraction=0.1):
  return ml_collections.ConfigDict({
      "lr_schedule": schedule, "num_train_steps": steps,
      "warmup_steps": warmup, "final_lr_fraction": fraction})


class ScheduleTest(tf.test.TestCase):

  def test_constant_is_the_peak_rate(self):
    train = train_section("constant", warmup=0, fraction=0.0)
    self.assertEqual(learning_rates.rate(3e-3, train), 3e-3)
    self.assertEqual(learning_rates.value(3e-3, train, 57), 3e-3)

  def test_cosine_warms_up_from_zero_peaks_and_ends_at_the_fraction(self):
    train = train_section()
    value = lambda step: learning_rates.value(2e-3, train, step)
    self.assertEqual(value(0), 0.0)
    self.assertAllClose(value(5), 1e-3)  # Half-way through the warm-up.
    self.assertAllClose(value(10), 2e-3)
    self.assertAllClose(value(55), 2e-3 * (0.1 + 0.9 * 0.5))  # Half decayed.
    self.assertAllClose(value(100), 2e-4)
    self.assertAllClose(value(10**6), 2e-4)  # Stays at the floor.
    rates = [value(s) for s in range(10, 101)]
    self.assertTrue(np.all(np.diff(rates) <= 0))

  def test_keras_schedule_equals_the_python_curve(self):
    for warmup in (0, 10):
      train = train_section(warmup=warmup)
      schedule = learning_rates.rate(1e-3, train)
      for step in (0, 3, 10, 11, 40, 99, 100, 150):
        self.assertAllClose(float(schedule(step)),
                            learning_rates.value(1e-3, train, step),
                            rtol=1e-5, atol=1e-9, msg=f"{warmup=} {step=}")

  def test_bad_settings_name_the_field(self):
    for fields, name in (({"schedule": "linear"}, "lr_schedule.*'linear'"),
                         ({"warmup": -1}, "warmup_steps"),
                         ({"warmup": 1.5}, "warmup_steps"),
                         ({"warmup": 100}, "warmup_steps=100"),
                         ({"fraction": 1.5}, "final_lr_fraction"),
                         ({"fraction": float("nan")}, "final_lr_fraction"),
                         ({"schedule": "constant"}, "only apply to")):
      with self.assertRaisesRegex(ValueError, name, msg=str(fields)):
        learning_rates.check(train_section(**fields))
    learning_rates.check(train_section())  # The valid one passes.


class OptimizerTest(tf.test.TestCase):

  def test_both_optimizers_follow_the_schedule_from_their_own_rates(self):
    model = builders.toy_model("wsram_qc", lr_schedule="cosine",
                               num_train_steps=8, warmup_steps=2,
                               final_lr_fraction=0.25, learning_rate=1e-3,
                               inference_learning_rate=3e-3)
    train = model.config.train
    images, labels = toy_data.corner_patterns(4)
    for step in range(5):
      for optimizer, peak in ((model.optimizer, 1e-3),
                              (model.eta_optimizer, 3e-3)):
        self.assertAllClose(float(optimizer.learning_rate),
                            learning_rates.value(peak, train, step),
                            rtol=1e-5, atol=1e-10)
      model.train_on_batch(images, labels)


if __name__ == "__main__":
  tf.test.main()
