"""The guarantees both tasks keep, checked over the classifier and the
captioner alike (their tiny models and runs come from tests/builders.py):

- a MirroredStrategy step over 2 logical CPUs equals the one-device step;
- a .keras file round trip predicts alike and trains on identically;
- the train step compiles as one XLA computation;
- a run killed mid-epoch and resumed ends with the uninterrupted run's weights;
- the export written at the end of training serves in a process that cannot
  import this project, and serves what the trained model computes.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import builders
from tests import standalone
from wsram_tf import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Logical devices must be configured before TensorFlow initialises: a fresh
# interpreter per check. No XLA: TensorFlow compiles every replica's cluster
# for CPU:0 and then refuses the second logical CPU's variables (on GPUs each
# replica compiles for its own device; README, "More than one device").
_MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from tests import builders

    task = sys.argv[1]
    data = builders.tiny_batches(task)
    single = builders.tiny_model(task)
    start = single.get_weights()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      mirrored = builders.tiny_model(task, seed=1)
    mirrored.set_weights(start)
    # get_weights leaves out the sampler state: same seed, same actions.
    mirrored.seed_generator.state.assign(single.seed_generator.state)
    single.fit(data, epochs=1, verbose=0)
    mirrored.fit(data, epochs=1, verbose=0)
    moved = max(float(np.max(np.abs(a - b)))
                for a, b in zip(single.get_weights(), start))
    diff = max(float(np.max(np.abs(a - b)))
               for a, b in zip(single.get_weights(), mirrored.get_weights()))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "steps": int(mirrored.optimizer.iterations.numpy()),
                      "moved": moved, "diff": diff}))
""")

# Serves an export in a child that cannot import this project, nor Keras once
# TensorFlow is in (tests/standalone.py); writes every output to out_dir.
_SERVE = r"""
import json
import numpy as np
import tensorflow as tf

before = set(sys.modules)
BLOCKED += ["keras", "tf_keras"]
export_dir, signature, images_path, out_dir = sys.argv[1:]
serve = tf.saved_model.load(export_dir).signatures[signature]
for name, value in serve(images=tf.constant(np.load(images_path))).items():
  value = value.numpy()
  if value.dtype == object:  # Strings.
    with open(f"{out_dir}/{name}.json", "w") as f:
      json.dump([v.decode() for v in value], f)
  else:
    np.save(f"{out_dir}/{name}.npy", value)
leaked = [m for m in set(sys.modules) - before if m.split(".")[0] in BLOCKED]
if leaked:
  raise SystemExit(f"modules leaked into the child: {leaked}")
"""


class MirroredStepTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*builders.TASKS)
  def test_mirrored_steps_equal_one_device_steps(self, task):
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED, task], cwd=ROOT, capture_output=True,
        text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual((out["replicas"], out["steps"]), (2, 2))
    # Two steps move the weights by ~2 lr; the replicas must agree far
    # closer (they split the same global batch and draw the same actions).
    self.assertGreater(out["moved"], 1e-3)
    self.assertLess(out["diff"], 1e-6, out)


def compiler_ir(model, batch) -> str:
  """The HLO of one train step, compiled as Keras compiles it (jit_compile):
  one module, or an error naming the op XLA cannot compile."""
  step = tf.function(model.train_step, jit_compile=True)
  return step.experimental_get_compiler_ir(batch)(stage="hlo")


class XlaStepTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*builders.TASKS)
  def test_train_step_compiles_as_one_xla_computation(self, task):
    model = builders.tiny_model(task, jit_compile=True)
    # Keras compiles its step function with the model's flag.
    self.assertIs(model.jit_compile, True)
    hlo = compiler_ir(model, next(iter(builders.tiny_batches(task))))
    self.assertEqual(hlo.count("HloModule "), 1)

  @parameterized.parameters(*builders.TASKS)
  def test_an_op_xla_cannot_compile_fails_the_check(self, task):
    # The check above can fail: a host callback in the losses breaks it.
    model = builders.tiny_model(task, jit_compile=True)
    compute_losses = model.compute_losses

    def with_host_op(inputs, targets, seed=None, sample_weight=None):
      loss_theta, loss_eta, stats, out = compute_losses(inputs, targets, seed,
                                                        sample_weight)
      one = tf.numpy_function(lambda: np.float32(1), [], tf.float32)
      return loss_theta * one, loss_eta, stats, out

    model.compute_losses = with_host_op
    with self.assertRaisesRegex(ValueError, "unsupported operations.*PyFunc"):
      compiler_ir(model, next(iter(builders.tiny_batches(task))))


class KerasFileTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*builders.TASKS)
  def test_keras_file_round_trip_predicts_alike_and_trains_on(self, task):
    data = builders.tiny_batches(task)
    model = builders.tiny_model(task)
    model.fit(data, epochs=1, verbose=0)
    path = os.path.join(self.get_temp_dir(), f"{task}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # No custom_objects.
    inputs = next(iter(data))[0]
    self.assertAllEqual(model.predict(inputs, verbose=0),
                        loaded.predict(inputs, verbose=0))
    for m in (model, loaded):
      m.fit(data, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
      self.assertAllEqual(a, b)
    self.assertEqual(int(loaded.eta_optimizer.iterations), 4)


class _RunConformance:
  """Two runs of TASK through run.train_and_evaluate: one uninterrupted, one
  killed at step 5 of 6 (mid-epoch, a step after its last backup) and
  started again; the resumed one exports at the end of training."""

  TASK = None

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.config = builders.tiny_run_config(
        cls.TASK, cls.root, num_train_steps=6, steps_per_epoch=3,
        checkpoint_every_steps=2, export=False)
    cls.straight = os.path.join(cls.root, "straight")
    run.train_and_evaluate(cls.config, cls.straight)

    cls.resumed = os.path.join(cls.root, "resumed")
    config = cls.config.copy_and_resolve_references()
    config.train.export = True
    callbacks_for = run.callbacks_for
    with mock.patch.object(run, "callbacks_for",
                           lambda *a: callbacks_for(*a) + [builders.KillAt(5)]):
      try:
        run.train_and_evaluate(config, cls.resumed)
      except KeyboardInterrupt:
        pass
    cls.killed_run_finished = os.path.exists(
        os.path.join(cls.resumed, "results.json"))
    run.train_and_evaluate(config, cls.resumed)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_resumed_run_ends_with_the_uninterrupted_weights(self):
    self.assertFalse(self.killed_run_finished, "the kill came too late")
    # Same parameters, optimizer states, sampler state and data stream:
    # identical arithmetic, so identical weights.
    straight = builders.final_weights(self.TASK, self.straight)
    resumed = builders.final_weights(self.TASK, self.resumed)
    self.assertLen(resumed, len(straight))
    for want, got in zip(straight, resumed):
      self.assertAllEqual(got, want)

  def test_export_serves_without_the_package_as_the_model(self):
    work = tempfile.mkdtemp(dir=self.root)
    images = builders.serving_inputs(self.TASK, self.config)
    np.save(os.path.join(work, "images.npy"), images)
    child = standalone.run(
        _SERVE, [os.path.join(self.resumed, "export"),
                 builders.SIGNATURES[self.TASK],
                 os.path.join(work, "images.npy"), work], work)
    self.assertEqual(child.returncode, 0, child.stderr[-3000:])

    want = builders.served_by_model(self.TASK, self.resumed, images)
    served = sorted(os.path.splitext(n)[0] for n in os.listdir(work)
                    if n != "images.npy")
    self.assertEqual(served, sorted(want))
    for name, value in want.items():
      if value.dtype.kind == "U":
        with open(os.path.join(work, f"{name}.json")) as f:
          self.assertEqual(json.load(f), value.tolist(), name)
        continue
      got = np.load(os.path.join(work, f"{name}.npy"))
      if value.dtype.kind == "f":
        self.assertAllClose(got, value, atol=1e-5, msg=name)
      else:
        self.assertAllEqual(got, value, msg=name)
    # Not a vacuous match: the glimpses depend on the image.
    self.assertNotAllClose(want["locations"][0], want["locations"][1])


class ClassifierRunTest(_RunConformance, tf.test.TestCase):
  TASK = "classifier"


class CaptionerRunTest(_RunConformance, tf.test.TestCase):
  TASK = "captioner"


if __name__ == "__main__":
  tf.test.main()
