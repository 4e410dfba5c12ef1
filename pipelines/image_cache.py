"""Decode every image once onto the canvas, and keep the result in an .npz.

`decode_all` turns encoded pictures (JPEG, PNG, BMP, GIF first frame, and
WebP, which tf.io.decode_image of TF 2.21 also reads; bytes from files or a
tfds split), once their header declares at most data.max_image_pixels
(pipelines/image_header.py), into uint8 canvases [S, S, C] with
pipelines/image_resize.preprocess; `save` / `load` keep them, with labels,
names, content hashes and the skipped files, in one .npz per data source and
preprocessing `Settings`. A cache is valid while its `key` (a hash of the
settings and of every example's name, label, split and content) matches, so
training never decodes an image; `decode_all` reuses the rows of a stale cache
whose content hash is unchanged, so a changed file costs one decode.

Canvases are stored as uint8 (rounded x * 255): a quarter of float32's
memory, and the rounding (<= 0.5 / 255) is below 8-bit input precision.
"""

import hashlib
import json
import os
import re
import zipfile
from typing import Any, Iterable, NamedTuple

from absl import logging
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import image_datasets
from wsram_tf.pipelines import image_header
from wsram_tf.pipelines import image_resize
from wsram_tf.pipelines import npz_file

FORMAT_VERSION = 1  # Bump when the stored arrays or the preprocessing change.
_FIELDS = ("images", "labels", "splits", "names", "digests", "bad_names",
           "bad_digests", "bad_reasons")


class Settings(NamedTuple):
  channels: int  # 1 or 3.
  canvas_size: int  # S.
  resize: str  # One of image_resize.RESIZE_MODES.


class Item(NamedTuple):
  name: str  # For messages and the held-out split: a relative path or id.
  label: int
  split: str  # "train", "validation" or "test".
  contents: bytes  # The encoded picture.


class DecodedImages(NamedTuple):
  images: np.ndarray  # uint8 [n, S, S, C].
  labels: np.ndarray  # int32 [n].
  splits: np.ndarray  # str [n]: the Item.split of each row.
  names: np.ndarray  # str [n].
  digests: np.ndarray  # str [n]: sha256 of the encoded bytes.
  bad_names: np.ndarray  # str [m]: items that did not decode (skip_bad).
  bad_digests: np.ndarray  # str [m].
  bad_reasons: np.ndarray  # str [m].
  key: str  # cache_key of the settings and items this was built from.


def max_pixels_from_config(data: Any) -> int:
  """config.data.max_image_pixels, checked (configs without it: default)."""
  limit = data.get("max_image_pixels", image_header.DEFAULT_MAX_PIXELS)
  if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
    raise ValueError(f"config.data.max_image_pixels={limit!r}: must be an int "
                     ">= 1 (pixels, height x width)")
  return limit


def settings_from_config(data: Any) -> Settings:
  """config.data.{channels, canvas_size, resize}, checked."""
  settings = Settings(data.channels, data.canvas_size, data.resize)
  try:
    image_resize.preprocess(np.zeros([1, 1, 1], np.float32), *settings)
  except ValueError as e:
    raise ValueError(f"config.data: {e}") from e
  return settings


def digest(contents: bytes) -> str:
  return hashlib.sha256(contents).hexdigest()


def cache_key(settings: Settings, entries: Iterable[Any]) -> str:
  """sha256 of the format, settings and JSON-able `entries` (in order)."""
  text = json.dumps([FORMAT_VERSION, list(settings), list(entries)])
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reason(error: Exception) -> str:
  """The decoder's message without TF's "{{function_node ..}}" and "[Op:..]"."""
  text = str(getattr(error, "message", error)).strip()
  text = re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:\w+\]$", "", text)
  return text.splitlines()[0] if text else type(error).__name__


def decode_image(contents: bytes) -> tf.Tensor:
  """float32 [H, W, c] in [0, 1], c in 1..4; GIFs give their first frame."""
  return tf.io.decode_image(contents, expand_animations=False,
                            dtype=tf.float32)


def to_canvas(contents: bytes, settings: Settings) -> np.ndarray:
  """uint8 [S, S, C]: decoded, preprocessed and rounded to bytes."""
  canvas = image_resize.preprocess(decode_image(contents), *settings)
  return np.rint(canvas.numpy() * 255.0).astype(np.uint8)


def problem(reason: str) -> str:
  """A stored bad_reasons entry as a message says it."""
  if reason.startswith(image_header.REFUSED):
    return reason
  return f"does not decode as an image ({reason})"


def decode_all(items: Iterable[Item], settings: Settings, key: str,
               skip_bad: bool, reuse: DecodedImages | None = None,
               location: str = "",
               max_pixels: int = image_header.DEFAULT_MAX_PIXELS
               ) -> DecodedImages:
  """Decodes `items` (rows of `reuse` with the same content hash are copied).

  An item that does not decode, or whose header declares more than
  `max_pixels` pixels (checked before decoding, on reused rows too: the limit
  may have been lowered), raises ImageDataError naming it (as
  `location`/name), or with `skip_bad` is logged and listed in bad_*.
  """
  known = {}
  if reuse is not None:
    known = {d: reuse.images[i] for i, d in enumerate(reuse.digests)}
    known.update({d: r for d, r in zip(reuse.bad_digests, reuse.bad_reasons)
                  if not r.startswith(image_header.REFUSED)})
  rows, bad = [], []
  num_decoded = 0
  for item in items:
    content_hash = digest(item.contents)
    canvas = image_header.refusal(item.contents, max_pixels)
    if canvas is None:
      canvas = known.get(content_hash)  # A canvas, or why it did not decode.
    if canvas is None:
      num_decoded += 1
      try:
        canvas = to_canvas(item.contents, settings)
      except (tf.errors.InvalidArgumentError, tf.errors.UnknownError,
              ValueError) as e:
        canvas = _reason(e)
    if isinstance(canvas, str):
      where = os.path.join(location, item.name)
      if not skip_bad:
        raise image_datasets.ImageDataError(
            f"{where}: {problem(canvas)}; fix or remove it, or set "
            "config.data.skip_bad=True to skip such files")
      logging.warning("Skipping %s: %s", where, problem(canvas))
      bad.append((item.name, content_hash, canvas))
    else:
      rows.append((canvas, item.label, item.split, item.name, content_hash))
  logging.info("Images: decoded %d, reused %d, skipped %d", num_decoded,
               len(rows) + len(bad) - num_decoded, len(bad))
  side, channels = settings.canvas_size, settings.channels
  images = (np.stack([r[0] for r in rows]) if rows
            else np.zeros([0, side, side, channels], np.uint8))
  strings = lambda values: np.array(list(values), dtype=np.str_)
  return DecodedImages(
      images, np.array([r[1] for r in rows], np.int32),
      *[strings(r[k] for r in rows) for k in (2, 3, 4)],
      *[strings(b[k] for b in bad) for k in range(3)], key=key)


def save(path: str, decoded: DecodedImages) -> None:
  """Writes `decoded` to `path` atomically (temp file in its dir + rename)."""
  npz_file.save_atomically(path, {
      "key": np.array(decoded.key),
      **{name: getattr(decoded, name) for name in _FIELDS}})


def load(path: str) -> DecodedImages | None:
  """The cache at `path`, or None if absent or unreadable (then rebuilt)."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as npz:
      return DecodedImages(**{name: npz[name] for name in _FIELDS},
                           key=str(npz["key"]))
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    logging.warning("%s: unreadable image cache, rebuilding it (%s)", path, e)
    return None


def cache_file(cache_dir: str, kind: str, label: str, settings: Settings,
               source_id: str) -> str:
  """<cache_dir>/<kind>/<label>-<hash of settings and source_id>.npz."""
  if not cache_dir:
    raise ValueError("config.data.cache_dir is empty: the decoded images "
                     "need a cache directory")
  name = hashlib.sha256(
      json.dumps([list(settings), source_id]).encode("utf-8")).hexdigest()[:16]
  safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
  return os.path.join(os.path.expanduser(cache_dir), kind,
                      f"{safe or 'data'}-{name}.npz")
