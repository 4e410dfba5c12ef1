"""benchmarks/profile_step.py: op names map to model parts; a tiny profile
charges the +q step's time to the inference network."""

import json
import os
import subprocess
import sys

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PartOfTest(absltest.TestCase):
  """The op-name parsing, without importing the module (it sets XLA_FLAGS)."""

  def part_of(self, name, depth=1):
    code = ("from benchmarks import profile_step; import sys; print("
            "'|'.join(profile_step.part_of(sys.argv[1], int(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, name, str(depth)],
                         cwd=_ROOT, capture_output=True, text=True,
                         check=True).stdout
    return tuple(out.strip().splitlines()[-1].split("|"))

  def test_forward_and_backward_of_a_layer(self):
    self.assertEqual(self.part_of("rnn1_7/recurrent/MatMul"),
                     ("rnn1", "forward"))
    self.assertEqual(
        self.part_of("gradient_tape/actions/inference_7/hidden_1/BiasAdd", 2),
        ("actions/inference", "backward"))


class ProfileRunTest(absltest.TestCase):

  def test_tiny_wsram_qc_profile_names_the_inference_network(self):
    logdir = self.create_tempdir().full_path
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_step",
         "--config=configs/mnist.py:wsram_qc,tiny", "--steps=2",
         f"--logdir={logdir}"],
        cwd=_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    self.assertEqual(out.returncode, 0, out.stderr[-2000:])
    record = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertGreater(record["traced_ms_per_step"], 0)
    self.assertIn("actions", record["ms_per_step_by_part"])
    self.assertTrue(any(k.startswith("actions/inference")
                        for k in record["ms_per_step_by_subpart_and_pass"]))
    self.assertTrue(os.listdir(logdir))  # The TensorBoard trace.


if __name__ == "__main__":
  absltest.main()
