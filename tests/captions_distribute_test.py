"""The captioner under MirroredStrategy on 2 logical CPUs equals one device.

As in distribute_test.py (the MNIST model): logical devices must be set up
before TensorFlow initialises, so each check runs in a fresh subprocess, and
the steps run without XLA (TensorFlow compiles every replica's cluster for
CPU:0 and then refuses the second logical CPU's variables).
"""

import json
import math
import os
import subprocess
import sys
import textwrap

from absl.testing import parameterized
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Three updates on global batches of 4 captions (2 per replica) of different
# lengths, so masking and the per-replica loss scaling both matter.
SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from tests import builders

    variant = sys.argv[1]
    captions = np.tile(np.concatenate(
        [builders.CAPTIONS, [[1, 3, 2, 0, 0, 0]]]), [3, 1])
    features = builders.caption_features(batch=len(captions), seed=5)
    data = tf.data.Dataset.from_tensor_slices((features, captions)).batch(4)
    single = builders.build_captioner(variant)
    start = single.get_weights()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      mirrored = builders.build_captioner(variant)
    mirrored.set_weights(start)
    # get_weights leaves out the sampler state: same seed, same actions.
    mirrored.seed_generator.state.assign(single.seed_generator.state)
    losses = {}
    for name, model in (("single", single), ("mirrored", mirrored)):
      history = model.fit(data, epochs=1, verbose=0)
      losses[name] = [float(v) for v in history.history["loss"]]
    moved = max(float(np.max(np.abs(a - b)))
                for a, b in zip(single.get_weights(), start))
    diff = max(float(np.max(np.abs(a - b)))
               for a, b in zip(single.get_weights(), mirrored.get_weights()))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "steps": int(mirrored.optimizer.iterations.numpy()),
                      "losses": losses, "moved": moved, "diff": diff}))
""")


class CaptionsMirroredTest(parameterized.TestCase, tf.test.TestCase):

  # wsram_q: the default, with an inference network (eta); var_c: a baseline.
  @parameterized.parameters("wsram_q", "var_c")
  def test_mirrored_steps_equal_single_device_steps(self, variant):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, variant], cwd=ROOT,
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual((out["replicas"], out["steps"]), (2, 3))
    for name, loss in out["losses"].items():
      self.assertTrue(all(math.isfinite(v) for v in loss), f"{name}: {loss}")
    self.assertAllClose(out["losses"]["mirrored"], out["losses"]["single"],
                        rtol=1e-5, atol=1e-5)
    # Three steps move the weights by ~3 lr; the replicas must agree far
    # closer (they split the same global batch and draw the same actions).
    self.assertGreater(out["moved"], 1e-3)
    self.assertLess(out["diff"], 1e-6, out)


if __name__ == "__main__":
  tf.test.main()
