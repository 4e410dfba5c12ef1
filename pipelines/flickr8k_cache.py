"""Frozen-CNN features of Flickr8k, computed once per image (docs/design.md §5).

The frozen CNN runs once per image (`build_feature_cache`); its maps go to
one raw file per image and tap in a cache directory whose manifest records
what the features depend on: the backbone, its weights (a weights file by the
sha256 of its bytes), the image size, the resize (PREPROCESSING), the taps and
the storage dtype, and per image row the sha256 of the image's bytes and a
fingerprint of each map file. A row is recomputed when its image's bytes
differ from the ones its maps came from (a regenerated data set that reuses
the names), and every row when a setting changes. A map file that is missing
or has the wrong size is recomputed with a WARNING naming it; one damaged in
place (right size, other bytes) fails its fingerprint when read, with an
error naming it. The cheap caption ids and `vocab.json` are compared with a
fresh encoding on every build and rewritten when they differ (a WARNING if
they should not have). Every file is written under a temporary name and
renamed, so a killed run never leaves a partial file under a final name.
`open_cache` reads it back for tf.data, which never decodes a JPEG.
"""

import glob
import hashlib
import json
import math
import os
import shutil
import tempfile
import tokenize
from typing import Callable, NamedTuple

from absl import logging
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import flickr8k_reader
from wsram_tf.pipelines import flickr8k_vocab

SPLITS = flickr8k_reader.SPLITS
MANIFEST = "manifest.json"  # In the feature cache directory.
VOCAB_FILE = "vocab.json"  # Beside it.
# Bumped when the cache layout or what the features depend on changes: a
# manifest of another version is rebuilt (version 1 keyed images by name).
FORMAT_VERSION = 2
# How an image becomes CNN input (`_load_image`); change it with the code.
PREPROCESSING = "decode_jpeg(rgb) -> resize(bilinear, antialias, squashed)"
_TMP_SUFFIX = ".tmp"
_NAMED = 5  # Damaged map files named one by one in the log, per split.
# What reading a damaged json or npy file raises (np.load parses a garbled
# header with ast.literal_eval and tokenize).
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError,
               AttributeError, SyntaxError, tokenize.TokenError)


class CachedSplit(NamedTuple):
  # Image row (int64 tensor) -> {"features_k": float32 [h_k, w_k, c_k]}.
  read: Callable[[tf.Tensor], dict[str, tf.Tensor]]
  ids: np.ndarray  # int32 [pairs, T]: one row per (image, caption) pair.
  owner: np.ndarray  # int32 [pairs]: image row of each pair.


class FeatureCache(NamedTuple):
  cache_dir: str
  shapes: tuple[tuple[int, int, int], ...]  # (h_k, w_k, c_k) per tap.
  splits: dict[str, CachedSplit]  # Keyed by SPLITS.
  # Per split, the sha256 of each image's bytes (from the manifest: hashed
  # when the cache was checked, not again).
  image_hashes: dict[str, list[str]]


def build_feature_cache(
    config, examples: dict[str, list[flickr8k_reader.Example]],
    vocab: flickr8k_vocab.Vocabulary) -> str:
  """Writes (or reuses, or repairs) features, caption ids and vocab.json.

  Per split: `<split>_features_<k>/<row>.raw` (one [h, w, c] map per image
  and tap, `data.feature_dtype`), `<split>_ids.npy` int32 [pairs, T] and
  `<split>_owner.npy` int32 [pairs] (image row of each pair). The CNN runs
  only for rows whose image bytes or settings differ from the manifest's, or
  whose map files are missing or short. Returns the cache directory.
  """
  settings = _feature_settings(config)
  images = {s: [_file_sha256(e.image_path) for e in examples[s]]
            for s in SPLITS}
  cache_dir = config.data.feature_cache_dir or os.path.join(
      config.data.cache_dir, "flickr8k_features",
      f"{settings['backbone']}_{settings['image_size']}_"
      f"{_digest([settings, images])}")
  cache_dir = os.path.expanduser(cache_dir)
  os.makedirs(cache_dir, exist_ok=True)
  _remove_leftovers(cache_dir)
  manifest = _update_features(config, examples, cache_dir, settings, images,
                              _read_manifest(cache_dir))
  _update_captions(config, examples, vocab, cache_dir, manifest)
  return cache_dir


def open_cache(cache_dir: str,
               examples: dict[str, list[flickr8k_reader.Example]]
               ) -> FeatureCache:
  """Reads back what `build_feature_cache` wrote for these `examples`."""
  path = os.path.join(cache_dir, MANIFEST)
  try:
    with open(path, encoding="utf-8") as f:
      manifest = _checked_manifest(json.load(f))
    shapes = tuple(tuple(shape) for shape in manifest["shapes"])
    splits = {s: CachedSplit(
        read=_feature_reader(cache_dir, s, shapes,
                             manifest["features"]["dtype"],
                             _fingerprints(manifest, s, len(examples[s]))),
        ids=_load_npy(os.path.join(cache_dir, f"{s}_ids.npy")),
        owner=_load_npy(os.path.join(cache_dir, f"{s}_owner.npy")))
              for s in SPLITS}
    image_hashes = {s: [row["image"] for row in
                        manifest["rows"][s][:len(examples[s])]]
                    for s in SPLITS}
  except _UNREADABLE as e:
    raise ValueError(
        f"Flickr8k feature cache {cache_dir} is incomplete or damaged ({e}); "
        "build_feature_cache (any training run) repairs it.") from e
  return FeatureCache(cache_dir, shapes, splits, image_hashes)


# --- what the features depend on ---------------------------------------------


def _feature_settings(config) -> dict:
  """Everything but the images that the maps depend on (change -> rebuild)."""
  backbone = config.backbone
  if backbone.name not in feature_pyramid.DEFAULT_TAPS:
    raise ValueError(f"config.backbone.name: unknown backbone "
                     f"{backbone.name!r}; valid are "
                     f"{', '.join(feature_pyramid.BACKBONES)}.")
  settings = {
      "version": FORMAT_VERSION, "backbone": backbone.name,
      "weights": _weights_key(backbone.weights),
      "image_size": backbone.image_size, "preprocessing": PREPROCESSING,
      "taps": list(backbone.taps or
                   feature_pyramid.DEFAULT_TAPS[backbone.name]),
      "dtype": config.data.feature_dtype}
  if settings["weights"] == "none":
    settings["seed"] = backbone.seed  # A random backbone is drawn from it.
  return settings


def _weights_key(weights) -> str:
  """"none", "imagenet", or "sha256:<hex>" of a weights file's bytes.

  By content, not path or mtime: a file rewritten in place with other
  weights (same size, same second) must not reuse the old features.
  """
  if weights is None or weights in feature_pyramid.NO_WEIGHTS:
    return "none"
  if weights == "imagenet":
    return weights
  path = os.path.expanduser(weights)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config.backbone.weights: weights file "
                            f"{weights!r} not found (use 'imagenet', a local "
                            "file, or '' for random).")
  return "sha256:" + _file_sha256(path)


def _file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


# --- the manifest ------------------------------------------------------------
# {"features": settings (with "version"), "shapes": [[h, w, c]] per tap,
#  "rows": {split: [{"image": sha256, "fingerprints": [hex per tap]} or None]},
#  "captions": what the ids were encoded from}. A None row has no valid maps.


def _read_manifest(cache_dir: str) -> dict:
  """The manifest, or {} (rebuild everything) if absent or unreadable."""
  path = os.path.join(cache_dir, MANIFEST)
  if not os.path.exists(path):
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      manifest = json.load(f)
    if isinstance(manifest, dict) and (
        manifest.get("features", {}).get("version") != FORMAT_VERSION):
      logging.info("Flickr8k feature cache %s: written by an older version; "
                   "recomputing it.", cache_dir)
      return {}
    return _checked_manifest(manifest)
  except _UNREADABLE as e:
    logging.warning("Flickr8k feature cache: %s is unreadable (%s); "
                    "recomputing the whole cache.", path, e)
    return {}


def _checked_manifest(manifest) -> dict:
  """`manifest` if its structure is what this module writes; else ValueError."""
  ok = (isinstance(manifest, dict) and isinstance(manifest.get("features"),
                                                  dict)
        and isinstance(manifest.get("rows"), dict))
  shapes = manifest.get("shapes") if ok else None
  ok = ok and isinstance(shapes, list) and all(
      isinstance(s, list) and len(s) == 3 and
      all(isinstance(n, int) and n > 0 for n in s) for s in shapes)
  for split in SPLITS if ok else ():
    rows = manifest["rows"].get(split)
    ok = ok and isinstance(rows, list) and all(
        row is None or (isinstance(row, dict)
                        and isinstance(row.get("image"), str)
                        and isinstance(row.get("fingerprints"), list)
                        and len(row["fingerprints"]) == len(shapes)
                        and all(_is_fingerprint(p)
                                for p in row["fingerprints"]))
        for row in rows)
  if not ok:
    raise ValueError("not the structure this version writes")
  return manifest


def _is_fingerprint(value) -> bool:
  return (isinstance(value, str) and len(value) == 16 and
          all(c in "0123456789abcdef" for c in value))


# --- feature maps ------------------------------------------------------------


def _update_features(config, examples, cache_dir: str, settings: dict,
                     images: dict[str, list[str]], manifest: dict) -> dict:
  """Recomputes the stale rows of each split; returns the new manifest."""
  if manifest.get("features") != settings:
    if manifest:
      logging.info("Flickr8k feature cache %s: feature settings changed; "
                   "recomputing every image.", cache_dir)
    for stale in glob.glob(os.path.join(cache_dir, "*_features_*")):
      if os.path.isdir(stale):
        shutil.rmtree(stale)
    manifest = {"features": settings, "shapes": [],
                "rows": {s: [] for s in SPLITS}}
  stale = {s: _stale_rows(cache_dir, s, images[s], manifest) for s in SPLITS}
  before = json.dumps(manifest, sort_keys=True)
  for split in SPLITS:
    rows = (manifest["rows"][split] + [None] * len(images[split])
            )[:len(images[split])]
    for row in stale[split]:
      rows[row] = None  # Invalid until rewritten: a kill now redoes only it.
    manifest["rows"][split] = rows
  if json.dumps(manifest, sort_keys=True) != before:
    _write_json(os.path.join(cache_dir, MANIFEST), manifest)
  if not any(stale.values()):
    return manifest
  manifest["shapes"], fingerprints = _write_features(config, examples,
                                                     cache_dir, stale)
  for split, rows in fingerprints.items():
    for row, prints in rows.items():
      manifest["rows"][split][row] = {"image": images[split][row],
                                      "fingerprints": prints}
  _write_json(os.path.join(cache_dir, MANIFEST), manifest)
  return manifest


def _stale_rows(cache_dir: str, split: str, images: list[str],
                manifest: dict) -> list[int]:
  """Rows whose maps are absent, of another image's bytes, or short."""
  rows, shapes = manifest["rows"][split], manifest["shapes"]
  itemsize = np.dtype(manifest["features"]["dtype"]).itemsize
  stale, changed, damaged = [], 0, []
  for row, image in enumerate(images):
    entry = rows[row] if row < len(rows) else None
    if entry is None or entry["image"] != image or not shapes:
      changed += entry is not None
      stale.append(row)
      continue
    for tap, shape in enumerate(shapes):
      path = _feature_file(_feature_folder(cache_dir, split, tap), row)
      expected = math.prod(shape) * itemsize
      size = os.path.getsize(path) if os.path.isfile(path) else None
      if size != expected:
        damaged.append(f"{path} is "
                       f"{'missing' if size is None else f'{size} bytes'}, "
                       f"expected {expected} bytes")
        stale.append(row)
        break
  # Each file by name, but a deleted folder is one line, not thousands.
  for message in damaged[:_NAMED]:
    logging.warning("Flickr8k feature cache: %s; recomputing it.", message)
  if len(damaged) > _NAMED:
    logging.warning("Flickr8k feature cache: %d more %s map files missing or "
                    "short; recomputing them.", len(damaged) - _NAMED, split)
  if changed:
    logging.info("Flickr8k feature cache %s: %d %s images changed since their "
                 "maps were computed; recomputing them.", cache_dir, changed,
                 split)
  return stale


def _load_image(path: tf.Tensor, size: int) -> tf.Tensor:
  """JPEG -> float [size, size, 3] 0..255 RGB, as PREPROCESSING says."""
  # The one resize shared with the captioner's pictures and export.
  return feature_pyramid.resize_images(
      tf.io.decode_jpeg(tf.io.read_file(path), channels=3), size)


def _write_features(config, examples, cache_dir: str,
                    stale: dict[str, list[int]]):
  """Runs the frozen CNN over the `stale` rows of each split.

  Returns the map shapes and, per split and row, the hex fingerprints of its
  map files (one per tap), which `_feature_reader` checks on every read.
  """
  backbone, size = config.backbone, config.backbone.image_size
  pyramid = feature_pyramid.build_feature_pyramid(
      backbone.name, backbone.weights, size, backbone.taps or None,
      backbone.seed)
  extract = tf.function(pyramid.__call__, reduce_retracing=True)
  shapes = [list(o.shape[1:]) for o in pyramid.model.outputs]
  fingerprints = {}
  for split in SPLITS:
    rows = stale[split]
    if not rows:
      continue
    logging.info("Flickr8k: %s features of %d %s images -> %s", backbone.name,
                 len(rows), split, cache_dir)
    folders = [_feature_folder(cache_dir, split, k) for k in range(len(shapes))]
    for folder in folders:
      os.makedirs(folder, exist_ok=True)
    paths = tf.constant([examples[split][r].image_path for r in rows],
                        tf.string)
    done, fingerprints[split] = 0, {}
    for batch in tf.data.Dataset.from_tensor_slices(paths).map(
        lambda path: _load_image(path, size),
        num_parallel_calls=tf.data.AUTOTUNE).batch(
            config.data.feature_batch_size).prefetch(2):
      maps = [[m.tobytes() for m in t.numpy().astype(config.data.feature_dtype)]
              for t in extract(batch)]
      prints = [tf.fingerprint(tf.constant(blobs)).numpy() for blobs in maps]
      for i, row in enumerate(rows[done:done + len(batch)]):
        for folder, blobs in zip(folders, maps):
          _write_atomically(_feature_file(folder, row),
                            lambda tmp, data=blobs[i]: _write_bytes(tmp, data))
        fingerprints[split][row] = [p[i].tobytes().hex() for p in prints]
      done += len(batch)
  return shapes, fingerprints


def _feature_folder(cache_dir: str, split: str, tap: int) -> str:
  return os.path.join(cache_dir, f"{split}_features_{tap}")


def _feature_file(folder: str, row: int) -> str:
  return os.path.join(folder, f"{row:06d}.raw")


def _fingerprints(manifest: dict, split: str, count: int) -> list[np.ndarray]:
  """Per tap, uint8 [count, 8]: the recorded fingerprint of each row's map."""
  rows = manifest["rows"][split]
  if len(rows) < count or any(r is None for r in rows[:count]):
    raise ValueError(f"{split} maps are missing from {MANIFEST}")
  return [np.array([list(bytes.fromhex(r["fingerprints"][k]))
                    for r in rows[:count]], np.uint8).reshape(count, 8)
          for k in range(len(manifest["shapes"]))]


def _feature_reader(cache_dir: str, split: str, shapes, dtype: str,
                    fingerprints: list[np.ndarray]):
  """Image row -> {"features_k": float32 [h_k, w_k, c_k]}, read from disk.

  One raw file per image and tap, read inside the tf.data graph: random access
  for a global shuffle, little memory, and no Python callback in the pipeline
  (a live iterator over tf.numpy_function hangs the interpreter at exit).
  Each file's fingerprint is checked before its bytes are used: a damaged
  file fails naming itself, never as a reshape error or as silent noise.
  """
  count = len(fingerprints[0]) if fingerprints else 0
  files = [tf.constant([_feature_file(_feature_folder(cache_dir, split, k), r)
                        for r in range(count)], tf.string)
           for k in range(len(shapes))]
  expected = [tf.constant(p) for p in fingerprints]

  def read_map(tap, row):
    path = tf.gather(files[tap], row)
    data = tf.io.read_file(path)
    intact = tf.reduce_all(tf.equal(tf.fingerprint(data[tf.newaxis])[0],
                                    tf.gather(expected[tap], row)))
    check = tf.debugging.Assert(intact, [
        "Flickr8k feature cache file", path, "is damaged (its fingerprint "
        "differs from the manifest's): delete it and rerun, the next run "
        "recomputes it."])
    with tf.control_dependencies([check]):
      values = tf.io.decode_raw(data, dtype)
    return tf.cast(tf.reshape(values, shapes[tap]), tf.float32)

  def read(row):
    return {f"features_{k}": read_map(k, row) for k in range(len(shapes))}
  return read


# --- caption ids and the vocabulary ------------------------------------------


def _update_captions(config, examples, vocab: flickr8k_vocab.Vocabulary,
                     cache_dir: str, manifest: dict) -> None:
  """Rewrites ids, owners and vocab.json unless they equal a fresh encoding.

  Encoding is cheap, so the files are compared with it on every build: a
  damaged file is rewritten, with a WARNING when the manifest says it should
  have been current (a vocabulary or caption change is only INFO).
  """
  length = config.data.max_caption_length
  captions = {"vocab_hash": vocab.hash, "max_caption_length": length,
              "text_hash": _digest([[e.captions for e in examples[s]]
                                    for s in SPLITS])}
  expected = manifest.get("captions") == captions
  for split in SPLITS:
    pairs = [(row, c) for row, e in enumerate(examples[split])
             for c in e.captions]
    ids = np.array([vocab.encode(c, length) for _, c in pairs],
                   np.int32).reshape(len(pairs), length)
    owner = np.array([row for row, _ in pairs], np.int32)
    _refresh(os.path.join(cache_dir, f"{split}_ids.npy"),
             lambda tmp, a=ids: _write_npy(tmp, a), expected)
    _refresh(os.path.join(cache_dir, f"{split}_owner.npy"),
             lambda tmp, a=owner: _write_npy(tmp, a), expected)
  _refresh(os.path.join(cache_dir, VOCAB_FILE), vocab.save, expected)
  if not expected:
    manifest["captions"] = captions
    _write_json(os.path.join(cache_dir, MANIFEST), manifest)


def _refresh(path: str, write: Callable[[str], None],
             expected_current: bool) -> None:
  """Rewrites `path` unless it holds exactly the bytes `write` produces.

  Compared as bytes, not parsed: a damaged file needs no parser to be told
  apart (np.load fails on a garbled header in several ways).
  """
  existed = os.path.exists(path)
  if _write_atomically(path, write, keep_same=True) and expected_current:
    logging.warning("Flickr8k feature cache: %s was %s; rewrote it.", path,
                    "damaged (other bytes than a fresh encoding)" if existed
                    else "missing")


def _load_npy(path: str) -> np.ndarray:
  return np.load(path, allow_pickle=False)


# --- writing -----------------------------------------------------------------


def _write_atomically(path: str, write: Callable[[str], None],
                      keep_same: bool = False) -> bool:
  """`write(tmp)` to a temporary file beside `path`, then renames it over it.

  A killed run leaves the old file or the new one, never a part of one; the
  temporary name is hidden and removed by the next build (_remove_leftovers).
  With `keep_same`, a `path` that already holds the same bytes is left as it
  is. Returns whether `path` was replaced.
  """
  folder = os.path.dirname(path)
  fd, tmp = tempfile.mkstemp(dir=folder, suffix=_TMP_SUFFIX,
                             prefix=f".{os.path.basename(path)}.")
  os.close(fd)
  try:
    write(tmp)
    if keep_same and os.path.isfile(path) and _same_bytes(tmp, path):
      os.remove(tmp)
      return False
    os.chmod(tmp, 0o644)  # mkstemp made it 0600; a cache may be shared.
    os.replace(tmp, path)
    return True
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _same_bytes(a: str, b: str) -> bool:
  if os.path.getsize(a) != os.path.getsize(b):
    return False
  with open(a, "rb") as fa, open(b, "rb") as fb:
    return fa.read() == fb.read()


def _remove_leftovers(cache_dir: str) -> None:
  """Deletes temporary files a killed build left (never under final names)."""
  for pattern in (f".*{_TMP_SUFFIX}", f"*_features_*/.*{_TMP_SUFFIX}"):
    for path in glob.glob(os.path.join(cache_dir, pattern)):
      os.remove(path)


def _write_bytes(path: str, data: bytes) -> None:
  with open(path, "wb") as f:
    f.write(data)


def _write_npy(path: str, array: np.ndarray) -> None:
  with open(path, "wb") as f:  # A file object: np.save would add ".npy".
    np.save(f, array)


def _digest(value) -> str:
  text = json.dumps(value, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def _write_json(path: str, value) -> None:
  _write_atomically(path, lambda tmp: _write_text(
      tmp, json.dumps(value, indent=1, sort_keys=True)))


def _write_text(path: str, text: str) -> None:
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
