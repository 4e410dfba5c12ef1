"""Train / validation / test pipelines over decoded, canvas-sized images.

The shared back end of pipelines/image_folder.py and pipelines/tfds_images.py:
given the uint8 canvases of the cache (pipelines/image_cache.py), builds the
same interface as pipelines/mnist.py (`ImageDatasets` starts with the fields
of mnist.Datasets, in order) plus the class names and the skipped files.

  train:       infinite, float32 [B, S, S, C] in [0, 1] and int32 [B]; whole
               epochs in a stateless permutation from config.seed and the
               epoch (pipelines/epoch_stream.py), so `train_from(k)` equals
               train.skip(k) without computing the k batches;
  validation,
  test:        finite eval batches, in a fixed order, the same in every run.

A held-out validation set (no validation folder or split) is a pure function
of the example names: per class, the floor(fraction * n_c) names with the
smallest sha256 hash. Neither the listing order nor any seed moves it, and
it keeps the class balance of train.
"""

import hashlib
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import epoch_stream

_TRAIN_STREAM = 0  # As in pipelines/mnist.py: the seed is [config.seed, 0].
_AUTO = tf.data.AUTOTUNE


class ImageDataError(ValueError):
  """A user's image data is unusable; the message names the file or folder."""


class ImageDatasets(NamedTuple):
  # The fields of pipelines/mnist.Datasets, in its order.
  train: tf.data.Dataset  # Infinite: (float32 [B, S, S, C], int32 [B]).
  validation: tf.data.Dataset  # Finite eval batches, fixed order.
  test: tf.data.Dataset  # Finite eval batches, fixed order.
  num_train: int
  num_validation: int
  num_test: int
  image_shape: tuple[int, int, int]  # (S, S, C).
  num_classes: int
  source: str  # Where the images came from, e.g. "folder:/data/pets".
  # train_from(k): the train stream from batch k on, equal to train.skip(k).
  train_from: Callable[[int], tf.data.Dataset]
  # What the run was trained on: source, classes and {file name: sha256}
  # (the format of wsram_tf/data_record.py); None if not known.
  fingerprint: Optional[dict]
  # Added for user data.
  class_names: tuple[str, ...]  # Label i is class_names[i].
  num_skipped: int  # Files skipped as undecodable (data.skip_bad).
  skipped: tuple[str, ...]  # Their names, sorted.


def name_order(names: Sequence[str]) -> np.ndarray:
  """Indices of `names` sorted by sha256(name): a fixed, class-mixed order."""
  keys = [hashlib.sha256(n.encode("utf-8")).hexdigest() for n in names]
  return np.array(sorted(range(len(names)), key=lambda i: (keys[i], names[i])),
                  np.int64)


def hold_out(names: Sequence[str], labels: np.ndarray,
             fraction: float) -> np.ndarray:
  """bool [n]: the held-out examples, floor(fraction * n_c) of each class c."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"config.data.validation_fraction={fraction!r}: must be "
                     "in [0, 1)")
  labels = np.asarray(labels)
  held = np.zeros(len(names), bool)
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    ranked = members[name_order([names[i] for i in members])]
    held[ranked[:int(fraction * len(members))]] = True
  return held


def first_by_name(indices: np.ndarray, names: Sequence[str],
                  limit: int) -> np.ndarray:
  """`indices` cut to the first `limit` in name_order (0: all), kept sorted.

  For data.max_train_examples / max_test_examples: a hash order mixes the
  classes, where the first n files would all be of the first class.
  """
  if limit <= 0 or limit >= len(indices):
    return indices
  ranked = indices[name_order([names[i] for i in indices])]
  return np.sort(ranked[:limit])


def choose_splits(data: Any, row_splits: np.ndarray, names: Sequence[str],
                  labels: np.ndarray,
                  has_validation: bool) -> dict[str, np.ndarray]:
  """Row indices of "train", "validation" and "test".

  `row_splits` [n] holds each row's source split. Without a validation source
  (`has_validation` False) data.validation_fraction of train is held out;
  data.max_train_examples / max_test_examples (0: all) then cut train / test.
  """
  rows = {s: np.flatnonzero(row_splits == s)
          for s in ("train", "validation", "test")}
  if not has_validation:
    train = rows["train"]
    held = hold_out([names[i] for i in train], labels[train],
                    data.validation_fraction)
    rows["train"], rows["validation"] = train[~held], train[held]
  rows["train"] = first_by_name(rows["train"], names, data.max_train_examples)
  rows["test"] = first_by_name(rows["test"], names, data.max_test_examples)
  return rows


def make_datasets(config: Any, images: np.ndarray, labels: np.ndarray,
                  splits: dict[str, np.ndarray], class_names: Sequence[str],
                  source: str, skipped: Sequence[str] = (),
                  digests: Optional[Mapping[str, str]] = None
                  ) -> ImageDatasets:
  """Pipelines over uint8 `images` [n, S, S, C]; `splits` maps "train",
  "validation" and "test" to row indices; `digests` {name: sha256} of every
  source file (skipped ones too) become the fingerprint."""
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(f"{source}: expected uint8 [n, S, S, C] images, got "
                     f"{images.dtype} {images.shape}")
  if not len(splits["train"]):
    raise ImageDataError(f"{source}: no train images")
  pixels = tf.constant(images)
  classes = tf.constant(labels.astype(np.int32))

  def batch_of(rows):
    return (tf.cast(tf.gather(pixels, rows), tf.float32) / 255.0,
            tf.gather(classes, rows))

  train_rows = tf.constant(splits["train"], tf.int64)
  train_from = epoch_stream.train_stream(
      len(splits["train"]), config.train.batch_size,
      [config.seed, _TRAIN_STREAM], config.data.shuffle,
      lambda order: batch_of(tf.gather(train_rows, order)))

  def eval_set(rows):
    return (tf.data.Dataset.from_tensor_slices(np.asarray(rows, np.int64))
            .batch(config.eval.batch_size)
            .map(batch_of, num_parallel_calls=_AUTO).prefetch(_AUTO))

  return ImageDatasets(
      train=train_from(0),
      validation=eval_set(splits["validation"]),
      test=eval_set(splits["test"]),
      num_train=len(splits["train"]),
      num_validation=len(splits["validation"]),
      num_test=len(splits["test"]),
      image_shape=tuple(int(d) for d in images.shape[1:]),
      num_classes=len(class_names),
      source=source,
      train_from=train_from,
      class_names=tuple(class_names),
      num_skipped=len(skipped),
      skipped=tuple(sorted(skipped)),
      fingerprint=None if digests is None else {
          "source": source, "classes": list(class_names),
          "items": dict(sorted(digests.items()))})


def digests_of(decoded: Any) -> dict[str, str]:
  """{name: sha256} of the decoded and the skipped items of an image cache
  (image_cache.DecodedImages): hashed when the cache was keyed, not again."""
  return {**dict(zip(decoded.names.tolist(), decoded.digests.tolist())),
          **dict(zip(decoded.bad_names.tolist(),
                     decoded.bad_digests.tolist()))}
