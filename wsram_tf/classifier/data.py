"""The classifier's data: which pipeline `config.data.name` picks, and what
a run records about it (`data_info.json`) for results and the export.

Every pipeline returns the fields of `pipelines.image_datasets.ImageDatasets`
(translated MNIST's `mnist.Datasets` gains the digit names). The classes,
the image shape and the source are written to `WORKDIR/data_info.json` when
the data is read: an export rebuilt from the work directory later reads the
model's shape and class names from there instead of reading the data again.
"""

import importlib
import json
import os
from typing import Any, NamedTuple, Sequence

from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import image_header
from wsram_tf import atomic

# config.data.name -> the pipelines module whose make_datasets(config) reads it.
PIPELINES = {
    "translated_mnist": "wsram_tf.pipelines.mnist",
    "cluttered_mnist": "wsram_tf.pipelines.cluttered_mnist",
    "image_folder": "wsram_tf.pipelines.image_folder",
    "tfds_images": "wsram_tf.pipelines.tfds_images",
}
INFO_FILE = "data_info.json"
DIGITS = tuple(str(d) for d in range(10))


class DataInfo(NamedTuple):
  """What the model and its export need to know about the data."""
  image_shape: tuple  # (S, S, C) of the canvases the model reads.
  class_names: tuple  # Label i is class_names[i].
  source: str  # Where the examples came from, e.g. "folder:/data/pets".
  resize: str  # How a picture reaches the canvas (image_resize modes).
  num_skipped: int  # Files skipped as undecodable (data.skip_bad).
  skipped: tuple  # Their names.
  # Larger images are refused before decoding, in training
  # (config.data.max_image_pixels) and by the export's serve_image_bytes.
  max_image_pixels: int = image_header.DEFAULT_MAX_PIXELS


def make_datasets(config) -> image_datasets.ImageDatasets:
  """The pipelines of config.data.name, as ImageDatasets."""
  module = importlib.import_module(PIPELINES[config.data.name])
  data = module.make_datasets(config)
  if not isinstance(data, image_datasets.ImageDatasets):
    # Translated MNIST: mnist.Datasets is ImageDatasets' first fields.
    data = image_datasets.ImageDatasets(
        *data, class_names=DIGITS[:data.num_classes], num_skipped=0,
        skipped=())
  return data


def resolve_num_classes(configured: int, class_names: Sequence[str]) -> int:
  """config.model.num_classes checked against the data (0: from the data)."""
  found = len(class_names)
  if configured == 0 or configured == found:
    return found
  names = ", ".join(class_names[:12]) + (", ..." if found > 12 else "")
  problem = ("smaller than" if configured < found
             else "larger than")  # Outputs no label could train.
  raise ValueError(
      f"config.model.num_classes={configured} is {problem} the {found} "
      f"classes of the data ({names}); set it to {found} or to 0 (take it "
      "from the data).")


def info_of(config, data: image_datasets.ImageDatasets) -> DataInfo:
  return DataInfo(tuple(int(d) for d in data.image_shape),
                  tuple(data.class_names), data.source,
                  config.data.get("resize", "pad"), int(data.num_skipped),
                  tuple(data.skipped),
                  int(config.data.get("max_image_pixels",
                                      image_header.DEFAULT_MAX_PIXELS)))


def write_info(workdir: str, info: DataInfo) -> str:
  """WORKDIR/data_info.json, written whole (atomic) and readable by all, as
  every other file of the run."""
  path = os.path.join(workdir, INFO_FILE)
  atomic.write_json(path, info._asdict())
  return path


def read_info(workdir: str, config) -> DataInfo:
  """The DataInfo a run recorded; for runs older than data_info.json, what
  their config implies (a grey square canvas, classes named by number)."""
  path = os.path.join(workdir, INFO_FILE)
  if not os.path.exists(path):
    side, classes = int(config.data.canvas_size), int(config.model.num_classes)
    return DataInfo((side, side, int(config.data.get("channels", 1))),
                    tuple(str(k) for k in range(classes)),
                    "", config.data.get("resize", "pad"), 0, ())
  try:
    with open(path) as f:
      raw: dict[str, Any] = json.load(f)
    return DataInfo(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in raw.items()})
  except (OSError, ValueError, TypeError) as e:
    raise ValueError(f"Cannot read {path}: {e}; it records the classes and "
                     "image shape of the run.") from e
