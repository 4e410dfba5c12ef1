"""Any prepared tfds image-classification dataset, offline, decoded once.

`data.tfds_name` (e.g. "cifar10", "tf_flowers", "name/config:1.0.0") is
read with tfds.builder(name, data_dir=data.tfds_data_dir) from data that
was prepared before (tfds build, or builder.download_and_prepare() while
online): this module never downloads. The dataset needs features "image"
(tfds.features.Image) and "label" (ClassLabel, whose names become
class_names) and splits "train" and "test"; "validation" is used if present,
else data.validation_fraction of each train class is held out by tfds id.

The encoded images are read with tfds' decoding skipped and go through the
same decode and preprocessing as a folder of files (pipelines/image_cache.py),
cached in <data.cache_dir>/tfds_images/. A prepared tfds version does not
change, so the cache key is the builder's metadata and the names and sizes of
its files: a valid cache costs no pass over the data.
"""

import os
from typing import Any, Iterator

from absl import logging

from wsram_tf.pipelines import image_cache
from wsram_tf.pipelines import image_datasets

ImageDataError = image_datasets.ImageDataError
IMAGE_KEY, LABEL_KEY = "image", "label"


def load_builder(name: str, data_dir: str) -> Any:
  """The prepared tfds builder `name` in `data_dir` ("" : tfds' default)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  where = data_dir or "the default tfds data dir"
  if not name:
    raise ValueError("config.data.tfds_name is empty: name a tfds dataset")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # tfds raises several types for unknown names.
    # Its first line: the rest lists every dataset tfds knows.
    reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ImageDataError(f"data.tfds_name={name!r}: no such tfds dataset in "
                         f"{where} ({type(e).__name__}: {reason})") from e
  if not builder.is_prepared():
    raise ImageDataError(
        f"data.tfds_name={name!r}: not prepared in {where}; prepare it "
        f"once online (`tfds build {name} --data_dir=...`) and set "
        "data.tfds_data_dir")
  features = builder.info.features
  image, label = (features[k] if k in features else None
                  for k in (IMAGE_KEY, LABEL_KEY))
  if not isinstance(image, tfds.features.Image):
    raise ImageDataError(f"tfds {name}: feature {IMAGE_KEY!r} must be a "
                         f"tfds.features.Image, got {type(image).__name__}")
  if not isinstance(label, tfds.features.ClassLabel):
    raise ImageDataError(
        f"tfds {name}: feature {LABEL_KEY!r} must be a "
        f"tfds.features.ClassLabel, got {type(label).__name__}")
  for split in ("train", "test"):
    if split not in builder.info.splits:
      raise ImageDataError(f"tfds {name}: no {split!r} split (has "
                           f"{', '.join(builder.info.splits)})")
  return builder


def _splits(builder: Any) -> tuple[str, ...]:
  return tuple(s for s in ("train", "validation", "test")
               if s in builder.info.splits)


def _source_entries(builder: Any) -> list[Any]:
  """What identifies the prepared data: metadata, then file names and sizes."""
  files = sorted(os.listdir(builder.data_dir))
  return [builder.info.full_name, str(builder.info.as_json),
          [[f, os.path.getsize(os.path.join(builder.data_dir, f))]
           for f in files]]


def _items(builder: Any) -> Iterator[image_cache.Item]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  for split in _splits(builder):
    dataset = builder.as_dataset(
        split=split, shuffle_files=False,
        decoders={IMAGE_KEY: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(add_tfds_id=True))
    for example in tfds.as_numpy(dataset):
      yield image_cache.Item(example["tfds_id"].decode("utf-8"),
                             int(example[LABEL_KEY]), split,
                             bytes(example[IMAGE_KEY]))


def make_datasets(config: Any) -> image_datasets.ImageDatasets:
  """The pipelines over tfds data.tfds_name (prepared in tfds_data_dir)."""
  data = config.data
  settings = image_cache.settings_from_config(data)
  builder = load_builder(data.tfds_name, data.tfds_data_dir)
  path = image_cache.cache_file(
      data.cache_dir, "tfds_images", builder.info.full_name.replace("/", "-"),
      settings, os.path.abspath(builder.data_dir))
  max_pixels = image_cache.max_pixels_from_config(data)
  key = image_cache.cache_key(settings,
                              _source_entries(builder) + [max_pixels])
  decoded = image_cache.load(path)
  if decoded is not None and decoded.key == key:
    logging.info("tfds %s: from the cache %s", builder.info.full_name, path)
  else:
    decoded = image_cache.decode_all(
        _items(builder), settings, key, data.skip_bad, reuse=decoded,
        location=f"tfds:{builder.info.full_name}", max_pixels=max_pixels)
    image_cache.save(path, decoded)
  if len(decoded.bad_names) and not data.skip_bad:
    raise ImageDataError(
        f"tfds:{builder.info.full_name}/{decoded.bad_names[0]}: "
        f"{image_cache.problem(decoded.bad_reasons[0])}; set "
        "config.data.skip_bad=True to skip such examples")
  class_names = tuple(builder.info.features[LABEL_KEY].names)
  rows = image_datasets.choose_splits(
      data, decoded.splits, list(decoded.names), decoded.labels,
      "validation" in builder.info.splits)
  skipped = [f"tfds:{builder.info.full_name}/{n}" for n in decoded.bad_names]
  if skipped:
    logging.warning("Skipped %d tfds examples that do not decode: %s",
                    len(skipped), ", ".join(skipped[:10]))
  return image_datasets.make_datasets(
      config, decoded.images, decoded.labels, rows, class_names,
      f"tfds:{builder.data_dir}", skipped,
      image_datasets.digests_of(decoded))
