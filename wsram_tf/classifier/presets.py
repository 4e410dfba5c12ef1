"""The classifier's presets and the one map from a config to its arguments.

`model_arguments(config)` turns the model, objective and eval sections of an
experiment config (configs/mnist.py, configs/images.py) into
`GlimpseClassifier` keywords: the command line builds its model through it,
so a notebook and `wsram_tf.main` run the same code. `from_preset(name)`
builds a preset from the same config files the command line reads
(`PRESETS` names the file and preset string), with the trained weights this
package ships for it, if any.
"""

import inspect
import os
from typing import NamedTuple, Optional

from wsram_tf import learning_rates
from wsram_tf.classifier import model as model_lib


class Preset(NamedTuple):
  config: str  # Module of wsram_tf.configs that defines it.
  preset: str  # The preset string after the colon on the command line.
  description: str
  weights: Optional[str] = None  # File in preset_weights/ (trained), or None.


PRESETS = {
    "translated_mnist": Preset(
        "mnist", "wsram_qc_long",
        "WS-RAM+q+c on translated, scaled MNIST (100x100, 4 glimpses of 12x12 "
        "at 3 scales), trained by the wsram_qc_long recipe: 1.7% test error.",
        "translated_mnist.weights.h5"),
    "cluttered_mnist": Preset(
        "mnist", "wsram_qc,cluttered100",
        "WS-RAM+q+c for the RAM paper's cluttered MNIST (100x100, 8 pieces "
        "of clutter, 4 glimpses of 12x12 at 4 scales); untrained."),
    "ram": Preset(
        "mnist", "ram28,ram_net",
        "The RAM network of Mnih et al. 2014 (one 256-unit core, 128-unit "
        "what/where layers) on their 28x28 MNIST setting, VAR+c, M=1; "
        "untrained."),
}
_DEFAULTS = {name: p.default for name, p in inspect.signature(
    model_lib.GlimpseClassifier).parameters.items()}
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "preset_weights")


def model_arguments(config, num_classes: Optional[int] = None) -> dict:
  """GlimpseClassifier keywords of an experiment config; `num_classes`
  replaces config.model.num_classes (0 there means "from the data")."""
  m, o, e = config.model, config.objective, config.eval
  return dict(
      num_classes=int(num_classes if num_classes is not None
                      else m.num_classes),
      variant=config.variant, num_glimpses=m.num_glimpses,
      patch_size=m.patch_size, scale_factors=tuple(m.scale_factors),
      context_size=m.context_size, hidden_size=m.hidden_size,
      recurrent_layers=m.recurrent_layers, glimpse_units=m.glimpse_units,
      label_embedding_size=m.label_embedding_size,
      # Runs stored before this field existed had q as wide as hidden_size.
      inference_units=m.get("inference_units", 0),
      location_std=m.location_std, learn_location_std=m.learn_location_std,
      num_samples=o.num_samples, temperature=o.temperature,
      coverage_weight=o.coverage_weight, entropy_weight=o.entropy_weight,
      eval_num_samples=e.num_samples, eval_deterministic=e.deterministic,
      # Runs stored before these fields existed get the defaults.
      prior_train_error=config.train.get(
          "prior_train_error", _DEFAULTS["prior_train_error"]),
      train_error_examples=config.train.get(
          "train_error_examples", _DEFAULTS["train_error_examples"]),
      seed=config.seed)


def build_from_config(config, image_shape, num_classes: Optional[int] = None):
  """The command line's model: GlimpseClassifier(**model_arguments(config)),
  built for images of `image_shape` (S, S, C) and compiled for config.train
  (one Adam each for theta and eta, on its schedule)."""
  model = model_lib.GlimpseClassifier(**model_arguments(config, num_classes))
  model.build((None,) + tuple(image_shape))
  return learning_rates.compile_for_training(model, config.train)


def preset_config(name: str):
  """The locked experiment config of preset `name`."""
  if name not in PRESETS:
    raise ValueError(f"Unknown classifier preset {name!r}; valid: "
                     f"{', '.join(PRESETS)}.")
  import importlib  # pylint: disable=g-import-not-at-top
  module = importlib.import_module(f"wsram_tf.configs.{PRESETS[name].config}")
  return module.get_config(PRESETS[name].preset)


def from_preset(name: str, load_weights: bool = True):
  """A built GlimpseClassifier of preset `name`, with its shipped weights
  (load_weights=False: freshly initialised)."""
  config = preset_config(name)
  model = model_lib.GlimpseClassifier(**model_arguments(config))
  side, channels = config.data.canvas_size, config.data.get("channels", 1)
  model.build((None, side, side, channels))
  weights = PRESETS[name].weights
  if load_weights and weights:
    path = os.path.join(WEIGHTS_DIR, weights)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"Preset {name!r}: its weights file {path} is missing from this "
          "installation of wsram_tf.")
    model.load_weights(path)
  return model
