"""What every classifier config shares: model section, presets, modifiers.

`configs/mnist.py` (translated and cluttered MNIST) and `configs/images.py`
(a user's class folders or a tfds dataset) differ only in their `data`
section and their data-specific presets; both build through `get_config`
here, so a variant, `ram_net` or `tiny` means the same in each.
"""

from typing import Callable, Mapping, Tuple

import ml_collections

from wsram_tf.configs import common
from wsram_tf.configs import presets

VARIANTS = common.VARIANTS  # The paper's six training methods.
MODIFIERS = ("ram_net", "tiny")  # Modifiers every classifier config takes.
DEFAULT_PRESET = "wsram_qc"

Edit = Callable[[ml_collections.ConfigDict], None]


def get_config(preset: str, config_file: str, data: Edit,
               settings: Mapping[str, Edit] = None,
               modifiers: Mapping[str, Edit] = None,
               tiny_data: Edit = None,
               rates: Mapping[str, Tuple[float, float]] = None
               ) -> ml_collections.ConfigDict:
  """The locked config of `preset` ("wsram_qc", "var_c,tiny", ...).

  Args:
    preset: the string after the colon on the command line.
    config_file: named in the errors of an unknown preset.
    data: adds the `data` section (and changes model defaults if needed).
    settings: presets that also pick a variant (e.g. mnist's ram28).
    modifiers: data-specific modifiers, applied before ram_net and tiny.
    tiny_data: what `tiny` does to the data section (fewer examples).
    rates: per variant preset, the Adam rates (theta, eta) tuned on this
      data; a variant not listed keeps the shared default.
  """
  settings, modifiers = dict(settings or {}), dict(modifiers or {})
  chosen = presets.parse(preset, config_file, VARIANTS + tuple(settings),
                         tuple(modifiers) + MODIFIERS, DEFAULT_PRESET)
  config = defaults()
  data(config)
  if chosen.base in VARIANTS:
    config.variant = chosen.base
    if chosen.base in (rates or {}):
      (config.train.learning_rate,
       config.train.inference_learning_rate) = rates[chosen.base]
  else:
    settings[chosen.base](config)
  # A fixed order, whatever the order on the command line: data settings,
  # then the network, then tiny, which shrinks what the others set.
  for name, edit in modifiers.items():
    if name in chosen.modifiers:
      edit(config)
  if "ram_net" in chosen.modifiers:
    ram_net(config)
  if "tiny" in chosen.modifiers:
    tiny(config)
    if tiny_data:
      tiny_data(config)
  config.preset = chosen.name
  config.lock()
  return config


def defaults() -> ml_collections.ConfigDict:
  """Shared sections plus the classifier's model section."""
  c = common.defaults("classifier", DEFAULT_PRESET)
  c.model = ml_collections.ConfigDict()
  # Output classes of p(y | a, I). 0: the number of classes in the data;
  # another value must equal it (checked when the data is read).
  c.model.num_classes = 0
  c.model.num_glimpses = 4  # N, glimpses before the class prediction.
  c.model.patch_size = 12  # P, every glimpse is averaged down to P x P.
  # Window side of scale k is patch_size * scale_factors[k] (12, 24, 48 px);
  # the largest must fit in data.canvas_size.
  c.model.scale_factors = (1, 2, 4)
  c.model.context_size = 12  # Side of the low-resolution context view.
  c.model.hidden_size = 256  # Units of every hidden and recurrent layer.
  # 2: the paper's network (context view -> recurrent layer 2 -> actions,
  # layer 1 -> class); 1: the RAM of Mnih et al. 2014 (one core state, from
  # zero, for actions and class; no context view).
  c.model.recurrent_layers = 2
  c.model.glimpse_units = 0  # Units of the what/where layers (0: hidden_size).
  c.model.label_embedding_size = 64  # Embedding of y fed to the inference net.
  # Hidden units of the inference net (0: hidden_size); it runs at every
  # glimpse for all B x M rows, so it sets what +q adds to a step's cost.
  c.model.inference_units = 0
  c.model.location_std = 0.1  # Std of the Gaussian over glimpse centres.
  c.model.learn_location_std = False  # Learn the std (starts at location_std).

  # Log train_error from M prior samples for every variant (comparable across
  # variants); for +q variants and temperature != 1 that is a second rollout
  # (~20% of the step), which False skips: no train_error is logged then.
  c.train.prior_train_error = True
  # That second rollout reads this many examples of each batch, a slice that
  # moves through the batch from update to update (the epoch's mean estimates
  # the same error at 1/8 of the cost with batch 64); 0: the whole batch.
  c.train.train_error_examples = 8
  return c


def ram_net(c: ml_collections.ConfigDict) -> None:
  """The network of Mnih et al. 2014 and the widely used PyTorch RAM: what and
  where layers of 128, a 256-unit glimpse code, one 256-unit ReLU core."""
  c.model.recurrent_layers = 1
  c.model.glimpse_units = 128
  c.model.hidden_size = 256


def tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds-long smoke runs: small nets, a handful of steps (the data
  config's `tiny_data` cuts the examples)."""
  c.model.hidden_size = 32
  c.model.glimpse_units = min(c.model.glimpse_units, 16)
  c.model.label_embedding_size = 8
  c.objective.num_samples = min(c.objective.num_samples, 2)
  c.eval.num_samples = 2
  c.eval.batch_size = 32
  c.train.batch_size = 16
  c.train.num_train_steps = 4
  c.train.warmup_steps = min(c.train.warmup_steps, 1)  # Below the 4 updates.
  c.train.steps_per_epoch = 2
  c.train.checkpoint_every_steps = 2
  c.train.steps_per_execution = 1
  c.train.glimpse_every_epochs = 1
