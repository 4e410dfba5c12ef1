"""The classifier's settings, checked before a run writes anything.

Each error names the config field(s) and what would happen otherwise. The
model's arguments and its fit to the canvas are checked by the model's own
functions (`model.check_arguments`, `model.check_image_shape`: a notebook
user meets the same errors), here against the config before any work; the
data settings are this module's. The number of classes is checked against
the data when it is read (data.resolve_num_classes).
"""

import inspect
import numbers

from wsram_tf.pipelines import image_cache
from wsram_tf.classifier import data as data_lib
from wsram_tf.classifier import model as model_lib
from wsram_tf.classifier import presets

IMAGE_SOURCES = ("image_folder", "tfds_images")


def _int_at_least(config, field: str, low: int) -> int:
  section, name = field.split(".")
  value = config[section][name]
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or value < low):
    raise ValueError(f"config.{field}={value!r}: must be an int >= {low}.")
  return int(value)


def check_config(config) -> None:
  """Raises ValueError naming the field of a classifier setting that cannot
  run."""
  name = config.data.name
  if name not in data_lib.PIPELINES:
    raise ValueError(f"config.data.name={name!r}: unknown; valid: "
                     f"{', '.join(data_lib.PIPELINES)}.")
  _int_at_least(config, "model.num_classes", 0)  # 0: from the data.
  canvas = _int_at_least(config, "data.canvas_size", 1)
  # The model's own checks, as a notebook user meets them; 0 classes is
  # resolved from the data later.
  arguments = presets.model_arguments(
      config, max(1, config.model.num_classes))
  try:
    model_lib.check_arguments(**{
        k: arguments[k] for k in inspect.signature(
            model_lib.check_arguments).parameters})
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from e
  m = config.model
  try:
    model_lib.check_image_shape(
        (canvas, canvas, 1), m.patch_size, m.scale_factors,
        m.context_size if m.recurrent_layers == 2 else 0)
  except ValueError as e:
    raise ValueError(f"config.data.canvas_size={canvas}: {e}") from e
  if name in IMAGE_SOURCES:
    image_cache.settings_from_config(config.data)  # channels, resize.
  if name == "image_folder" and not config.data.dir:
    raise ValueError(
        "config.data.dir is empty: set it to a folder holding "
        "train/<class>/* and test/<class>/* (or use data.name=tfds_images "
        "with data.tfds_name).")
  if name == "tfds_images" and not config.data.tfds_name:
    raise ValueError("config.data.tfds_name is empty: name a prepared tfds "
                     "image-classification dataset, e.g. cifar10.")
