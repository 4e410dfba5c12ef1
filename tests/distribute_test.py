"""One MirroredStrategy step over 2 logical CPUs equals the single-device step.

Logical devices must be configured before TensorFlow initialises, so each
check runs in a fresh subprocess. The steps run without XLA: TensorFlow
compiles every replica's cluster for CPU:0 and then refuses the variables of
the replica on the second logical CPU (a limitation of logical CPU devices;
on several GPUs each replica compiles for its own device).
"""

import json
import os
import subprocess
import sys
import textwrap

from absl.testing import parameterized
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from tests import builders, toy_data

    variant, jit = sys.argv[1], sys.argv[2] == "xla"
    images, labels = toy_data.corner_patterns(16)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    single = builders.toy_model(variant, jit_compile=jit)
    start = single.get_weights()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      mirrored = builders.toy_model(variant, seed=1, jit_compile=jit)
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
                      "moved": moved, "diff": diff}))
""")


class MirroredTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(("wsram_qc", "noxla"), ("var_c", "noxla"))
  def test_mirrored_step_equals_single_device_step(self, variant, jit):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, variant, jit], cwd=ROOT,
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual(out["replicas"], 2)
    # The step moves the weights by ~lr; the replicas must agree far closer
    # (they split the same global batch and draw the same actions per row).
    self.assertGreater(out["moved"], 1e-3)
    self.assertLess(out["diff"], 1e-6, out)


if __name__ == "__main__":
  tf.test.main()
