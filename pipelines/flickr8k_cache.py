"""Frozen-CNN features of Flickr8k, computed once per image (docs/design.md §5).

The frozen CNN runs once per image (`build_feature_cache`); its maps go to
one raw file per image and tap in a cache directory whose manifest records
backbone, weights, image size, taps, shapes, image lists and the vocabulary
hash: features are recomputed only when the first five change, the cheap
caption ids (and `vocab.json`) when the vocabulary, captions or length change.
`open_cache` reads it back for tf.data, which never decodes a JPEG.
"""

import glob
import hashlib
import json
import os
import shutil
from typing import Callable, NamedTuple

from absl import logging
import numpy as np
import tensorflow as tf

from pipelines import feature_pyramid
from pipelines import flickr8k_reader
from pipelines import flickr8k_vocab

SPLITS = flickr8k_reader.SPLITS
MANIFEST = "manifest.json"  # In the feature cache directory.
VOCAB_FILE = "vocab.json"  # Beside it.


class CachedSplit(NamedTuple):
  # Image row (int64 tensor) -> {"features_k": float32 [h_k, w_k, c_k]}.
  read: Callable[[tf.Tensor], dict[str, tf.Tensor]]
  ids: np.ndarray  # int32 [pairs, T]: one row per (image, caption) pair.
  owner: np.ndarray  # int32 [pairs]: image row of each pair.


class FeatureCache(NamedTuple):
  cache_dir: str
  shapes: tuple[tuple[int, int, int], ...]  # (h_k, w_k, c_k) per tap.
  splits: dict[str, CachedSplit]  # Keyed by SPLITS.


def build_feature_cache(
    config, examples: dict[str, list[flickr8k_reader.Example]],
    vocab: flickr8k_vocab.Vocabulary) -> str:
  """Writes (or reuses) features, caption ids and vocab.json; returns the dir.

  Per split: `<split>_features_<k>/<row>.raw` (one [h, w, c] map per image
  and tap, `data.feature_dtype`), `<split>_ids.npy` int32 [pairs, T] and
  `<split>_owner.npy` int32 [pairs] (image row of each pair). The CNN runs
  only if the feature settings in the manifest differ.
  """
  settings = _feature_settings(config, examples)
  cache_dir = config.data.feature_cache_dir or os.path.join(
      config.data.cache_dir, "flickr8k_features",
      f"{settings['backbone']}_{settings['image_size']}_{_digest(settings)}")
  cache_dir = os.path.expanduser(cache_dir)
  os.makedirs(cache_dir, exist_ok=True)
  manifest_path = os.path.join(cache_dir, MANIFEST)
  manifest = {}
  if os.path.isfile(manifest_path):
    with open(manifest_path, encoding="utf-8") as f:
      manifest = json.load(f)
  num_taps = len(settings["taps"])
  if manifest.get("features") != settings or not all(
      os.path.isdir(_feature_folder(cache_dir, s, k))
      for s in SPLITS for k in range(num_taps)):
    if os.path.isfile(manifest_path):
      os.remove(manifest_path)  # Invalid until the new features are complete.
    for stale in glob.glob(os.path.join(cache_dir, "*_features_*")):
      if os.path.isdir(stale):
        shutil.rmtree(stale)
    manifest = {"features": settings,
                "shapes": _write_features(config, examples, cache_dir)}
    _write_json(manifest_path, manifest)
  length = config.data.max_caption_length
  captions = {"vocab_hash": vocab.hash, "max_caption_length": length,
              "text_hash": _digest([[e.captions for e in examples[s]]
                                    for s in SPLITS])}
  if manifest.get("captions") != captions or not os.path.isfile(
      os.path.join(cache_dir, VOCAB_FILE)):
    for split in SPLITS:
      pairs = [(row, c) for row, e in enumerate(examples[split])
               for c in e.captions]
      np.save(os.path.join(cache_dir, f"{split}_ids.npy"), np.array(
          [vocab.encode(c, length) for _, c in pairs], np.int32).reshape(
              len(pairs), length))
      np.save(os.path.join(cache_dir, f"{split}_owner.npy"),
              np.array([row for row, _ in pairs], np.int32))
    vocab.save(os.path.join(cache_dir, VOCAB_FILE))
    manifest["captions"] = captions
    _write_json(manifest_path, manifest)
  return cache_dir


def open_cache(cache_dir: str,
               examples: dict[str, list[flickr8k_reader.Example]]
               ) -> FeatureCache:
  """Reads back what `build_feature_cache` wrote for these `examples`."""
  with open(os.path.join(cache_dir, MANIFEST), encoding="utf-8") as f:
    manifest = json.load(f)
  shapes = tuple(tuple(shape) for shape in manifest["shapes"])
  splits = {s: CachedSplit(
      read=_feature_reader(cache_dir, s, len(examples[s]), shapes,
                           manifest["features"]["dtype"]),
      ids=np.load(os.path.join(cache_dir, f"{s}_ids.npy")),
      owner=np.load(os.path.join(cache_dir, f"{s}_owner.npy")))
            for s in SPLITS}
  return FeatureCache(cache_dir, shapes, splits)


def _feature_settings(config, examples) -> dict:
  """What the cached features depend on (a change forces a rebuild)."""
  backbone = config.backbone
  if backbone.name not in feature_pyramid.DEFAULT_TAPS:
    raise ValueError(f"config.backbone.name: unknown backbone "
                     f"{backbone.name!r}; valid are "
                     f"{', '.join(feature_pyramid.BACKBONES)}.")
  weights = backbone.weights or ""
  settings = {
      "version": 1, "backbone": backbone.name, "weights": weights,
      "image_size": backbone.image_size,
      "taps": list(backbone.taps or
                   feature_pyramid.DEFAULT_TAPS[backbone.name]),
      "dtype": config.data.feature_dtype,
      "images": {s: [os.path.basename(e.image_path) for e in examples[s]]
                 for s in SPLITS}}
  if weights in feature_pyramid.NO_WEIGHTS:
    settings["seed"] = backbone.seed
  elif weights != "imagenet" and os.path.isfile(os.path.expanduser(weights)):
    stat = os.stat(os.path.expanduser(weights))
    settings["weights_file"] = [stat.st_size, int(stat.st_mtime)]
  return settings


def _write_features(config, examples, cache_dir: str) -> list[list[int]]:
  """Runs the frozen CNN over every image once; returns the map shapes."""
  backbone, size = config.backbone, config.backbone.image_size
  pyramid = feature_pyramid.build_feature_pyramid(
      backbone.name, backbone.weights, size, backbone.taps or None,
      backbone.seed)
  extract = tf.function(pyramid.__call__, reduce_retracing=True)
  shapes = [list(o.shape[1:]) for o in pyramid.model.outputs]

  def load(path):
    return feature_pyramid.resize_images(
        tf.io.decode_jpeg(tf.io.read_file(path), channels=3), size)

  for split in SPLITS:
    paths = [e.image_path for e in examples[split]]
    logging.info("Flickr8k: %s features of %d %s images -> %s", backbone.name,
                 len(paths), split, cache_dir)
    folders = [_feature_folder(cache_dir, split, k) for k in range(len(shapes))]
    for folder in folders:
      os.makedirs(folder + ".tmp")
    row = 0
    for batch in tf.data.Dataset.from_tensor_slices(
        tf.constant(paths, tf.string)).map(
            load, num_parallel_calls=tf.data.AUTOTUNE).batch(
                config.data.feature_batch_size).prefetch(2):
      maps = [m.numpy().astype(config.data.feature_dtype)
              for m in extract(batch)]
      for i in range(len(batch)):
        for folder, values in zip(folders, maps):
          with open(_feature_file(folder + ".tmp", row + i), "wb") as f:
            f.write(values[i].tobytes())
      row += len(batch)
    for folder in folders:
      os.replace(folder + ".tmp", folder)
  return shapes


def _feature_folder(cache_dir: str, split: str, tap: int) -> str:
  return os.path.join(cache_dir, f"{split}_features_{tap}")


def _feature_file(folder: str, row: int) -> str:
  return os.path.join(folder, f"{row:06d}.raw")


def _feature_reader(cache_dir: str, split: str, count: int, shapes,
                    dtype: str):
  """Image row -> {"features_k": float32 [h_k, w_k, c_k]}, read from disk.

  One raw file per image and tap, read inside the tf.data graph: random access
  for a global shuffle, little memory, and no Python callback in the pipeline
  (a live iterator over tf.numpy_function hangs the interpreter at exit).
  """
  files = [tf.constant([_feature_file(_feature_folder(cache_dir, split, k), r)
                        for r in range(count)], tf.string)
           for k in range(len(shapes))]

  def read(row):
    return {f"features_{k}": tf.cast(tf.reshape(tf.io.decode_raw(
        tf.io.read_file(tf.gather(files[k], row)), dtype), shape), tf.float32)
            for k, shape in enumerate(shapes)}
  return read


def _digest(value) -> str:
  text = json.dumps(value, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def _write_json(path: str, value) -> None:
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(value, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)
