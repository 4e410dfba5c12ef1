"""wsram_tf/learning_rates.py: the schedules both optimizers follow."""

import math

import ml_collections
import numpy as np
import tensorflow as tf

from tests import builders
from tests import toy_data
from wsram_tf import learning_rates


def expected_rate(peak: float, train, step: int) -> float:
  """The rate at update `step` (0-based), worked out in Python: the curve
  the module's docstring describes, against which Keras' schedule is held."""
  if train.lr_schedule == "constant":
    return peak
  warmup = train.warmup_steps
  if step < warmup:
    return peak * step / warmup
  span = train.num_train_steps - warmup
  cosine = 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))
  fraction = train.final_lr_fraction
  return peak * ((1 - fraction) * cosine + fraction)


def train_section(schedule="cosine", steps=100, warmup=10, fraction=0.1):
  return ml_collections.ConfigDict({
      "lr_schedule": schedule, "num_train_steps": steps,
      "warmup_steps": warmup, "final_lr_fraction": fraction})


class ScheduleTest(tf.test.TestCase):

  def test_constant_is_the_peak_rate(self):
    train = train_section("constant", warmup=0, fraction=0.0)
    self.assertEqual(learning_rates.rate(3e-3, train), 3e-3)
    self.assertEqual(expected_rate(3e-3, train, 57), 3e-3)

  def test_cosine_warms_up_from_zero_peaks_and_ends_at_the_fraction(self):
    train = train_section()
    value = lambda step: expected_rate(2e-3, train, step)
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
                            expected_rate(1e-3, train, step),
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
    schedule = dict(lr_schedule="cosine", num_train_steps=8, warmup_steps=2,
                    final_lr_fraction=0.25, learning_rate=1e-3,
                    inference_learning_rate=3e-3)
    model = builders.toy_model("wsram_qc", **schedule)
    train = builders.toy_config("wsram_qc", **schedule).train
    images, labels = toy_data.corner_patterns(4)
    for step in range(5):
      for optimizer, peak in ((model.optimizer, 1e-3),
                              (model.eta_optimizer, 3e-3)):
        self.assertAllClose(float(optimizer.learning_rate),
                            expected_rate(peak, train, step),
                            rtol=1e-5, atol=1e-10)
      model.train_on_batch(images, labels)


if __name__ == "__main__":
  tf.test.main()
