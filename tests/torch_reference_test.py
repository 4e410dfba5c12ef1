"""benchmarks/torch_reference.py: its RAMs train, and `ours` is our network.

Skipped without PyTorch (CI does not install it; see the benchmark's
docstring). No timing assertions.
"""

import unittest

import numpy as np
import tensorflow as tf

from wsram_tf.configs import mnist as mnist_config
from wsram_tf.classifier import glimpse
from wsram_tf.classifier import presets

try:
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:
  torch = None

if torch is not None:
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

# Matmul FLOPs of the library's ram28 step per image, counted from its
# optimised XLA HLO (benchmarks/RESULTS.md: 1.76 GFLOP per batch of 128).
LIBRARY_MFLOP_PER_IMAGE = 1760.0 / 128


def ram28(batch_size: int = 4):
  config = mnist_config.get_config("ram28")
  with config.unlocked():
    config.train.batch_size = batch_size
  return config


def step_changes(arch: str) -> dict:
  """Whether one step on a tiny batch changed each named parameter."""
  config = ram28()
  model, optimizer = torch_reference.build(arch, config)
  before = {n: p.detach().clone() for n, p in model.named_parameters()}
  images, labels = torch_reference.synthetic_batches(config, 1)[0]
  stats = torch_reference.train_step(model, optimizer, images, labels)
  assert np.isfinite(stats.loss.item()), stats
  return {n: not torch.equal(before[n], p)
          for n, p in model.named_parameters()}


@unittest.skipIf(torch is None, "PyTorch is not installed (not in CI).")
class TorchReferenceTest(tf.test.TestCase):

  def test_ours_has_the_keras_ram28_parameter_shapes(self):
    config = ram28()
    keras_model = presets.build_from_config(config, (28, 28, 1))
    self.assertIsNone(keras_model.inference)  # VAR+c: no eta to leave out.
    keras_shapes = sorted(tuple(v.shape) for v in keras_model.theta_variables)
    model, _ = torch_reference.build("ours", config)
    # nn.Linear keeps [out, in], Keras' Dense [in, out].
    torch_shapes = sorted(tuple(reversed(p.shape)) for p in model.parameters())
    self.assertEqual(torch_shapes, keras_shapes)

  def test_ours_step_does_the_library_matmul_flops(self):
    self.assertAllClose(
        torch_reference.mflop_per_image("ours", ram28(128)),
        LIBRARY_MFLOP_PER_IMAGE, rtol=0.01)

  def test_ours_step_changes_every_parameter_but_the_one_scale(self):
    changed = step_changes("ours")
    # With one scale log p(s) = log_softmax of one logit = 0: zero gradient.
    self.assertEqual(sorted(n for n, c in changed.items() if not c),
                     ["scale.bias", "scale.weight"])

  def test_ram_step_changes_every_parameter(self):
    changed = step_changes("ram")
    self.assertEqual([n for n, c in changed.items() if not c], [])

  def test_ours_reads_the_library_glimpses(self):
    rng = np.random.default_rng(0)
    images = rng.random((5, 28, 28), np.float32)
    locations = rng.uniform(-1.3, 1.3, (5, 2)).astype(np.float32)
    size = torch.tensor([28.0, 28.0])
    top_left = torch_reference.library_top_left(
        torch.from_numpy(locations), size, 8)
    ours = torch_reference.read_patches(torch_reference.patch_windows(
        torch.from_numpy(images), 8), top_left, 8)
    library = glimpse.extract_glimpses(
        images[..., None], locations[:, None], np.zeros((5, 1), np.int32), 8,
        (1,))
    self.assertAllEqual(ours.numpy(), tf.reshape(library, [5, -1]))

  def test_context_view_matches_the_library(self):
    images = np.random.default_rng(1).random((3, 28, 28), np.float32)
    ours = torch_reference.context_view(torch.from_numpy(images), 7)
    library = glimpse.context_view(images[..., None], 7)
    self.assertAllClose(ours.numpy(), tf.reshape(library, [3, -1]))

  def test_rejects_a_config_it_does_not_implement(self):
    with self.assertRaisesRegex(ValueError, "model.scale_factors"):
      torch_reference.build("ours", mnist_config.get_config("var_c"))


if __name__ == "__main__":
  tf.test.main()
