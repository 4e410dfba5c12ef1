"""Flickr8k captions over cached frozen-CNN features (paper §5.2, docs/design.md §5).

`make_datasets(config)` is the one entry point training uses: it reads and
validates the data (`pipelines/flickr8k_reader.py`), builds the vocabulary
from training captions (`pipelines/flickr8k_vocab.py`), runs the frozen CNN
once per image into the feature cache (`pipelines/flickr8k_cache.py`), and
returns tf.data pipelines that read the cache and never decode a JPEG.

Public API: `read_examples`, `scan`, `normalize_caption`, `Vocabulary`,
`build_feature_cache`, `make_datasets` -> `CaptionDatasets`; the names below
that come from the three modules are aliases, so callers need import only
this one.
"""

import collections
import hashlib
import json
import os
from typing import Callable, NamedTuple

import tensorflow as tf

from wsram_tf.pipelines import flickr8k_cache
from wsram_tf.pipelines import flickr8k_reader
from wsram_tf.pipelines import flickr8k_vocab

SPLITS = flickr8k_reader.SPLITS
PROBLEM_KINDS = flickr8k_reader.PROBLEM_KINDS
UNLISTED_MODES = flickr8k_reader.UNLISTED_MODES
Example = flickr8k_reader.Example
Problem = flickr8k_reader.Problem
Scan = flickr8k_reader.Scan
normalize_caption = flickr8k_reader.normalize_caption
read_examples = flickr8k_reader.read_examples
scan = flickr8k_reader.scan
Vocabulary = flickr8k_vocab.Vocabulary
MANIFEST = flickr8k_cache.MANIFEST
VOCAB_FILE = flickr8k_cache.VOCAB_FILE
build_feature_cache = flickr8k_cache.build_feature_cache


class CaptionDatasets(NamedTuple):
  """Everything training and evaluation read; features come from the cache."""
  # Endless, shuffled batches of ({"features_k": [B, h_k, w_k, c_k]}, caption
  # ids int32 [B, T]), one element per (image, caption) pair.
  train: tf.data.Dataset
  # train_from(k): the same stream from its batch k on (train_from(0) is
  # train), for a run resumed after k updates; skipped pairs are never read.
  train_from: Callable[[int], tf.data.Dataset]
  validation: tf.data.Dataset  # One ordered pass over the validation pairs.
  validation_features: tf.data.Dataset  # {"features_k"} batches, one per image.
  validation_references: list[list[str]]  # All captions of each val image.
  test_features: tf.data.Dataset
  test_references: list[list[str]]
  vocab: Vocabulary
  vocab_path: str  # vocab.json in the cache: copy it beside exported models.
  feature_shapes: tuple[tuple[int, int, int], ...]  # (h_k, w_k, c_k) per tap.
  image_paths: dict[str, list[str]]  # Per split, in dataset order.
  num_train_pairs: int
  cache_dir: str
  # What the run was trained on (the format of wsram_tf/data_record.py): per
  # image "<split>/<file>" a hash of its bytes and captions, and the
  # vocabulary's hash.
  fingerprint: dict


def make_datasets(config) -> CaptionDatasets:
  """Reads, validates, caches features (once), and returns the datasets."""
  data = config.data
  examples = read_examples(data.flickr8k_dir, data.skip_bad, data.layout,
                           data.verify_images, data.unlisted_captions)
  for split, limit in (("train", data.max_train_images),
                       ("val", data.max_eval_images),
                       ("test", data.max_eval_images)):
    examples[split] = examples[split][:limit or None]
  if not examples["train"]:
    raise ValueError(f"Flickr8k at {data.flickr8k_dir}: no training images.")
  for split, role in (("val", "validation picks the best checkpoint"),
                      ("test", "BLEU of no image would read as a score")):
    if not examples[split]:
      raise ValueError(
          f"Flickr8k at {data.flickr8k_dir}: the {split} split has no usable "
          f"image ({flickr8k_reader.SPLIT_FILES[split]} in the original "
          f"layout, split \"{split}\" in {flickr8k_reader.KARPATHY_JSON}); "
          f"{role}. List images there.")
  vocab = Vocabulary.build((c for e in examples["train"] for c in e.captions),
                           data.min_word_count)
  if len(vocab) == len(flickr8k_vocab.SPECIALS):
    counts = collections.Counter(w for e in examples["train"]
                                 for c in e.captions for w in c.split())
    word, count = counts.most_common(1)[0] if counts else ("", 0)
    raise ValueError(
        f"config.data.min_word_count={data.min_word_count}: no word of the "
        f"training captions occurs that often (the most frequent, {word!r}, "
        f"occurs {count} times), so every word would be <unk>; lower it.")
  cache = flickr8k_cache.open_cache(
      build_feature_cache(config, examples, vocab), examples)
  train, val, test = (cache.splits[s] for s in SPLITS)
  batch, eval_batch = config.train.batch_size, config.eval.batch_size
  train_from = lambda k: _pair_batches(train, batch, config.seed, k)
  return CaptionDatasets(
      train=train_from(0),
      train_from=train_from,
      validation=_pair_batches(val, eval_batch),
      validation_features=_image_batches(val.read, len(examples["val"]),
                                         eval_batch),
      validation_references=[list(e.captions) for e in examples["val"]],
      test_features=_image_batches(test.read, len(examples["test"]),
                                   eval_batch),
      test_references=[list(e.captions) for e in examples["test"]],
      vocab=vocab,
      vocab_path=os.path.join(cache.cache_dir, VOCAB_FILE),
      feature_shapes=cache.shapes,
      image_paths={s: [e.image_path for e in examples[s]] for s in SPLITS},
      num_train_pairs=len(train.ids),
      cache_dir=cache.cache_dir,
      fingerprint={
          "source": f"flickr8k:{os.path.abspath(data.flickr8k_dir)}",
          "classes": None,
          "items": {"<vocabulary>": vocab.hash, **{
              f"{s}/{os.path.basename(e.image_path)}": hashlib.sha256(
                  json.dumps([image, e.captions]).encode()).hexdigest()
              for s in SPLITS
              for e, image in zip(examples[s], cache.image_hashes[s])}}})


def _pair_batches(split: flickr8k_cache.CachedSplit, batch_size: int,
                  shuffle_seed: int | None = None,
                  start_batch: int = 0) -> tf.data.Dataset:
  """(features, caption ids) batches; shuffled and endless given a seed."""
  dataset = tf.data.Dataset.from_tensor_slices((split.owner, split.ids))
  if shuffle_seed is not None:
    dataset = dataset.shuffle(max(len(split.owner), 1), seed=shuffle_seed,
                              reshuffle_each_iteration=True).repeat()
    # Skip pairs before the map reads their feature maps from the cache.
    dataset = dataset.skip(int(start_batch) * batch_size)
  dataset = dataset.map(lambda row, caption: (split.read(row), caption),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=shuffle_seed is not None
                       ).prefetch(tf.data.AUTOTUNE)


def _image_batches(read, count: int, batch_size: int) -> tf.data.Dataset:
  """{"features_k"} batches, one element per image, in order."""
  return tf.data.Dataset.range(count).map(
      read, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(
          tf.data.AUTOTUNE)
