"""The classifier's settings, checked before a run writes anything.

Each error names the config field(s) and what would happen otherwise: a
glimpse window larger than the canvas reads mostly border zeros, zero
glimpses leave nothing to classify (an IndexError deep in the rollout), a
context view larger than the canvas cannot be pooled. The number of classes
is checked against the data when it is read (data.resolve_num_classes).
"""

import numbers

from wsram_tf.pipelines import image_cache
from wsram_tf.classifier import data as data_lib
from wsram_tf.classifier import glimpse

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
  _int_at_least(config, "model.num_glimpses", 1)
  _int_at_least(config, "model.num_classes", 0)
  _int_at_least(config, "model.hidden_size", 1)
  canvas = _int_at_least(config, "data.canvas_size", 1)
  m = config.model
  try:
    largest = max(glimpse.window_sides(m.patch_size, m.scale_factors))
  except ValueError as e:
    raise ValueError(f"config.model.patch_size / scale_factors: {e}") from e
  if largest > canvas:
    raise ValueError(
        f"config.model.patch_size * max(config.model.scale_factors) = "
        f"{m.patch_size} * {max(m.scale_factors)} = {largest} pixels is "
        f"larger than config.data.canvas_size={canvas}: the largest glimpse "
        "window must fit in the canvas (lower patch_size or the largest "
        "scale factor, or raise canvas_size).")
  if m.recurrent_layers not in (1, 2):
    raise ValueError("config.model.recurrent_layers must be 1 (RAM) or 2 "
                     f"(the paper's network), got {m.recurrent_layers!r}.")
  if m.recurrent_layers == 2:
    context = _int_at_least(config, "model.context_size", 1)
    if context > canvas:
      raise ValueError(
          f"config.model.context_size={context} is larger than "
          f"config.data.canvas_size={canvas}: the context view pools the "
          "canvas down to context_size x context_size.")
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
