"""Experiment configs for the classifier on your own images.

  python -m wsram_tf.main --config=configs/images.py:wsram_qc \
      --workdir=/tmp/run --config.data.dir=IMAGES

where IMAGES holds train/<class>/*, test/<class>/* and optionally
validation/<class>/* (pipelines/image_folder.py); or a prepared tfds dataset:
--config.data.name=tfds_images --config.data.tfds_name=NAME
[--config.data.tfds_data_dir=DIR] (pipelines/tfds_images.py).

The presets are those of configs/mnist.py: at most one variant (`var`,
`var_c`, `wsram`, `wsram_c`, `wsram_q`, `wsram_qc` (default)) and the
modifiers `ram_net` (the RAM's one-layer network) and `tiny` (a smoke run).
The model section is configs/classifier.py's; the returned ConfigDict is
locked, so a misspelt field fails at once and lists the valid names.
"""

import ml_collections

from wsram_tf.configs import classifier

VARIANTS = classifier.VARIANTS
SETTINGS = ()  # No data-specific settings presets.
MODIFIERS = classifier.MODIFIERS
DEFAULT_PRESET = classifier.DEFAULT_PRESET


def get_config(preset: str = DEFAULT_PRESET) -> ml_collections.ConfigDict:
  """The locked config for `preset` (e.g. "wsram_qc" or "var_c,tiny")."""
  return classifier.get_config(preset, "configs/images.py", _data,
                               tiny_data=_tiny_data)


def _data(c: ml_collections.ConfigDict) -> None:
  c.data = ml_collections.ConfigDict()
  # Dataset builder in pipelines/: image_folder (class folders in data.dir)
  # or tfds_images (a prepared tfds dataset, data.tfds_name).
  c.data.name = "image_folder"
  c.data.dir = ""  # image_folder: holds train/<class>/*, test/<class>/*.
  c.data.tfds_name = ""  # tfds_images: e.g. "cifar10" or "tf_flowers".
  c.data.tfds_data_dir = ""  # tfds_images: where it is prepared ("": default).
  c.data.channels = 3  # 1 (grey) or 3 (RGB): every image is converted to it.
  c.data.canvas_size = 100  # Side of the square canvas the model reads.
  # How an image reaches the canvas: "pad" (shrink only if larger, centre on
  # black), "fit" (scale until the longer side fits), "stretch" (both sides).
  c.data.resize = "pad"
  # Without a validation split: this fraction of each train class is held
  # out, chosen by file name (the same in every run).
  c.data.validation_fraction = 0.1
  # True: skip (and count in results.json) files that do not decode;
  # False: the first such file stops the run, named.
  c.data.skip_bad = False
  # Images whose header declares more pixels (height x width) are refused
  # before decoding (skipped with skip_bad): one 20000 x 20000 PNG of 389 KB
  # would take 8.7 GB. The export's serve_image_bytes keeps the same limit.
  c.data.max_image_pixels = 50_000_000
  c.data.cache_dir = "~/.cache/wsram"  # Decoded canvases, one .npz per source.
  c.data.max_train_examples = 0  # Use only n train images (0: all).
  c.data.max_test_examples = 0  # Use only n test images (0: all).
  # A new stateless random order of the train images every epoch (from
  # config.seed and the epoch); False: in order.
  c.data.shuffle = True


def _tiny_data(c: ml_collections.ConfigDict) -> None:
  c.data.max_train_examples = 512
  c.data.max_test_examples = 64
