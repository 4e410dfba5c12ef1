"""Flickr8k captions over cached frozen-CNN features (paper §5.2, DESIGN.md §5).

`--config.data.flickr8k_dir` holds either layout (detected, or forced by
`config.data.layout`):
- "karpathy": `dataset_flickr8k.json` (images with filename, split in
  train/val/test/restval (-> train), sentences with raw or tokens) and the
  image folder;
- "original": `Flickr8k.token.txt` (`<image>#<k>\\t<caption>`), the lists
  `Flickr_8k.{train,dev,test}Images.txt` (here or in `Flickr8k_text/`) and the
  image folder.
The image folder is the first of IMAGE_DIRS found. Both layouts parse to the
same `Example`s, split names "train", "val", "test", sorted by file name.

Every problem is collected before anything runs (PROBLEM_KINDS): by default a
ValueError lists the first ten (file and line) and the count; with
`config.data.skip_bad` they are skipped and counted in the log. The official
token file has captions for ~90 images that are in no split list, so with the
original layout real Flickr8k needs `skip_bad=True`.

The frozen CNN runs once per image (`build_feature_cache`); its maps go to
one raw file per image and tap in a cache directory whose manifest records
backbone, weights, image size, taps, shapes, image lists and the vocabulary
hash: features are recomputed only when the first five change, the cheap
caption ids (and `vocab.json`) when the vocabulary, captions or length change.
Training reads the cache through tf.data and never decodes a JPEG.

Public API: `read_examples`, `scan`, `normalize_caption`, `Vocabulary`,
`build_feature_cache`, `make_datasets` -> `CaptionDatasets`.
"""

import collections
import glob
import hashlib
import json
import os
import re
import shutil
import string
from typing import Iterable, NamedTuple, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from wsram_tf import feature_pyramid

SPLITS = ("train", "val", "test")
IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images")
TEXT_DIRS = ("", "Flickr8k_text")
KARPATHY_JSON = "dataset_flickr8k.json"
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt",
               "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
MANIFEST = "manifest.json"  # In the feature cache directory.
VOCAB_FILE = "vocab.json"  # Beside it.
PROBLEM_KINDS = ("malformed_line", "duplicate_listing", "unlisted_captions",
                 "empty_caption", "no_captions", "missing_image",
                 "corrupt_image")
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val",
                    "test": "test"}
_TOKEN_LINE = re.compile(r"^([^\t#]+)#(\d+)\t(.*)$")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


class Example(NamedTuple):
  image_path: str  # Absolute path of the JPEG.
  split: str  # One of SPLITS.
  captions: tuple[str, ...]  # Normalised: lowercase, no punctuation.


class Problem(NamedTuple):
  kind: str  # One of PROBLEM_KINDS.
  where: str  # "file:line" (or file path, or json entry) of the offender.
  detail: str


class Scan(NamedTuple):
  examples: dict[str, list[Example]]  # Without the offenders.
  problems: list[Problem]
  layout: str  # "karpathy" or "original".


def normalize_caption(text: str) -> str:
  """Lowercase, ASCII punctuation deleted (as NeuralTalk did), single spaces."""
  return " ".join(text.lower().translate(_PUNCTUATION).split())


def read_examples(data_dir: str, skip_bad: bool = False, layout: str = "auto",
                  verify_images: bool = True) -> dict[str, list[Example]]:
  """Parses and validates Flickr8k; raises on problems unless `skip_bad`."""
  result = scan(data_dir, layout, verify_images)
  if result.problems:
    counts = collections.Counter(p.kind for p in result.problems)
    summary = ", ".join(f"{k}: {counts[k]}" for k in PROBLEM_KINDS if counts[k])
    if not skip_bad:
      lines = "\n".join(f"  {p.kind}: {p.where}: {p.detail}"
                        for p in result.problems[:10])
      if counts["unlisted_captions"]:
        lines += ("\n(The official Flickr8k.token.txt captions ~90 images that "
                  "no split list names.)")
      raise ValueError(
          f"Flickr8k at {data_dir} ({result.layout} layout): "
          f"{len(result.problems)} problems ({summary}); first ones:\n{lines}\n"
          "Fix the data or set --config.data.skip_bad=True to skip them.")
    logging.warning("Flickr8k at %s: skipped %d problems (%s).", data_dir,
                    len(result.problems), summary)
  logging.info("Flickr8k at %s (%s layout): %s images.", data_dir,
               result.layout, {s: len(v) for s, v in result.examples.items()})
  return result.examples


def scan(data_dir: str, layout: str = "auto",
         verify_images: bool = True) -> Scan:
  """Parses either layout; returns the clean examples and every problem."""
  if not data_dir:
    raise ValueError("config.data.flickr8k_dir is empty: set it to the "
                     "Flickr8k folder, or write a synthetic one with `python -m "
                     "pipelines.synthetic_captions --out=DIR`.")
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  if not os.path.isdir(data_dir):
    raise ValueError(f"Flickr8k: data directory {data_dir!r} does not exist "
                     "(set --config.data.flickr8k_dir).")
  image_dir = _find(data_dir, IMAGE_DIRS, os.path.isdir, "image folder")
  layout = _detect_layout(data_dir, layout)
  if layout == "karpathy":
    listed, captions, problems = _parse_karpathy(
        _find(data_dir, [os.path.join(d, KARPATHY_JSON) for d in TEXT_DIRS],
              os.path.isfile, KARPATHY_JSON))
  else:
    listed, captions, problems = _parse_original(data_dir)
  examples = {split: [] for split in SPLITS}
  for name, (split, where) in sorted(listed.items()):
    path = os.path.join(image_dir, name)
    if not captions.get(name):
      problems.append(Problem("no_captions", where, f"{name} has no caption"))
    elif not os.path.isfile(path):
      problems.append(Problem("missing_image", where, f"{path} not found"))
    elif verify_images and not _decodes(path):
      problems.append(Problem("corrupt_image", path, "cannot decode JPEG"))
    else:
      examples[split].append(Example(path, split, tuple(captions[name])))
  return Scan(examples, problems, layout)


def _find(data_dir: str, names: Sequence[str], test, what: str) -> str:
  for name in names:
    if test(os.path.join(data_dir, name)):
      return os.path.join(data_dir, name)
  raise ValueError(f"Flickr8k: no {what} in {data_dir}; looked for "
                   f"{', '.join(names)}.")


def _detect_layout(data_dir: str, layout: str) -> str:
  has = lambda name: any(os.path.isfile(os.path.join(data_dir, d, name))
                         for d in TEXT_DIRS)
  if layout == "auto":
    if has(KARPATHY_JSON):
      return "karpathy"
    if has(TOKEN_FILE):
      return "original"
    raise ValueError(f"Flickr8k: {data_dir} has neither {KARPATHY_JSON} nor "
                     f"{TOKEN_FILE} (also looked in Flickr8k_text/).")
  if layout not in ("karpathy", "original"):
    raise ValueError(f"config.data.layout: unknown layout {layout!r}; valid "
                     "are auto, karpathy, original.")
  return layout


def _parse_original(data_dir: str):
  """Split lists, token file -> ({name: (split, where)}, captions, problems)."""
  problems, listed = [], {}
  for split, file_name in SPLIT_FILES.items():
    path = _find(data_dir, [os.path.join(d, file_name) for d in TEXT_DIRS],
                 os.path.isfile, file_name)
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        name, where = line.strip(), f"{file_name}:{number}"
        if not name:
          continue
        if name in listed:
          problems.append(Problem(
              "duplicate_listing", where,
              f"{name} already listed at {listed[name][1]}"))
        else:
          listed[name] = (split, where)
  numbered, unlisted = collections.defaultdict(list), {}
  path = _find(data_dir, [os.path.join(d, TOKEN_FILE) for d in TEXT_DIRS],
               os.path.isfile, TOKEN_FILE)
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      match = _TOKEN_LINE.match(line.rstrip("\r\n"))
      where = f"{TOKEN_FILE}:{number}"
      if not match:
        problems.append(Problem("malformed_line", where,
                                "expected '<image>#<k><TAB><caption>', got "
                                f"{line.strip()[:60]!r}"))
      elif match.group(1) not in listed:
        unlisted.setdefault(match.group(1), where)
      elif not normalize_caption(match.group(3)):
        problems.append(Problem("empty_caption", where,
                                f"empty caption for {match.group(1)}"))
      else:
        numbered[match.group(1)].append(
            (int(match.group(2)), normalize_caption(match.group(3))))
  captions = {name: [c for _, c in sorted(v)] for name, v in numbered.items()}
  problems += [Problem("unlisted_captions", where,
                       f"captions for {name}, which is in no split list")
               for name, where in unlisted.items()]
  return listed, captions, problems


def _parse_karpathy(path: str):
  """dataset_flickr8k.json -> ({name: (split, where)}, captions, problems)."""
  try:
    with open(path, encoding="utf-8") as f:
      images = json.load(f)["images"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"Flickr8k: cannot read the 'images' list of {path}: "
                     f"{e}") from e
  problems, listed, captions = [], {}, collections.defaultdict(list)
  base = os.path.basename(path)
  for i, image in enumerate(images):
    where = f"{base}:images[{i}]"
    name, split = image.get("filename"), image.get("split")
    if not name or split not in _KARPATHY_SPLITS:
      problems.append(Problem("malformed_line", where, "needs a filename and "
                              f"a split in {sorted(_KARPATHY_SPLITS)}"))
      continue
    if name in listed:
      problems.append(Problem("duplicate_listing", where,
                              f"{name} already listed at {listed[name][1]}"))
      continue
    listed[name] = (_KARPATHY_SPLITS[split], where)
    for j, sentence in enumerate(image.get("sentences", [])):
      caption = normalize_caption(
          sentence.get("raw") or " ".join(sentence.get("tokens", [])))
      if caption:
        captions[name].append(caption)
      else:
        problems.append(Problem("empty_caption", f"{where}.sentences[{j}]",
                                f"empty caption for {name}"))
  return listed, captions, problems


def _decodes(path: str) -> bool:
  """Decodes at 1/8 scale: cheap, yet catches truncated and non-JPEG files."""
  try:
    tf.io.decode_jpeg(tf.io.read_file(path), channels=3, ratio=8)
    return True
  except (tf.errors.InvalidArgumentError, tf.errors.DataLossError):
    return False


class Vocabulary:
  """Words <-> ids; ids 0..3 are <pad>, <start>, <end>, <unk>."""
  SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
  PAD, START, END, UNK = range(4)

  def __init__(self, words: Sequence[str]):
    if tuple(words[:4]) != self.SPECIALS:
      raise ValueError(f"Vocabulary must start with {self.SPECIALS}.")
    self.words = tuple(words)
    self.ids = {w: i for i, w in enumerate(self.words)}

  @classmethod
  def build(cls, captions: Iterable[str], min_count: int) -> "Vocabulary":
    """Words seen >= min_count times, most frequent first (ties by spelling)."""
    counts = collections.Counter(w for c in captions for w in c.split())
    kept = sorted((w for w, n in counts.items()
                   if n >= min_count and w not in cls.SPECIALS),
                  key=lambda w: (-counts[w], w))
    return cls(cls.SPECIALS + tuple(kept))

  def __len__(self) -> int:
    return len(self.words)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self.words == other.words

  @property
  def hash(self) -> str:
    return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16]

  def save(self, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"hash": self.hash, "words": self.words}, f, indent=0)

  @classmethod
  def load(cls, path: str) -> "Vocabulary":
    with open(path, encoding="utf-8") as f:
      return cls(json.load(f)["words"])

  def encode(self, caption: str, length: int) -> list[int]:
    """<start> words <end> <pad>..., `length` ids; long captions keep <end>."""
    ids = [self.ids.get(w, self.UNK) for w in caption.split()][:length - 2]
    ids = [self.START] + ids + [self.END]
    return ids + [self.PAD] * (length - len(ids))

  def decode(self, ids: Iterable[int]) -> str:
    """Words up to the first <end>, without <start> and <pad>."""
    words = []
    for i in ids:
      if int(i) == self.END:
        break
      if int(i) not in (self.START, self.PAD):
        words.append(self.words[int(i)])
    return " ".join(words)


class CaptionDatasets(NamedTuple):
  """Everything training and evaluation read; features come from the cache."""
  # Endless, shuffled batches of ({"features_k": [B, h_k, w_k, c_k]}, caption
  # ids int32 [B, T]), one element per (image, caption) pair.
  train: tf.data.Dataset
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


def make_datasets(config) -> CaptionDatasets:
  """Reads, validates, caches features (once), and returns the datasets."""
  data = config.data
  examples = read_examples(data.flickr8k_dir, data.skip_bad, data.layout,
                           data.verify_images)
  for split, limit in (("train", data.max_train_images),
                       ("val", data.max_eval_images),
                       ("test", data.max_eval_images)):
    examples[split] = examples[split][:limit or None]
  if not examples["train"]:
    raise ValueError(f"Flickr8k at {data.flickr8k_dir}: no training images.")
  vocab = Vocabulary.build((c for e in examples["train"] for c in e.captions),
                           data.min_word_count)
  cache_dir = build_feature_cache(config, examples, vocab)
  with open(os.path.join(cache_dir, MANIFEST), encoding="utf-8") as f:
    manifest = json.load(f)
  shapes = tuple(tuple(shape) for shape in manifest["shapes"])
  read = {s: _feature_reader(cache_dir, s, len(examples[s]), shapes,
                             manifest["features"]["dtype"]) for s in SPLITS}
  ids = {s: np.load(os.path.join(cache_dir, f"{s}_ids.npy")) for s in SPLITS}
  owner = {s: np.load(os.path.join(cache_dir, f"{s}_owner.npy"))
           for s in SPLITS}
  batch, eval_batch = config.train.batch_size, config.eval.batch_size
  return CaptionDatasets(
      train=_pair_batches(read["train"], owner["train"], ids["train"], batch,
                          config.seed),
      validation=_pair_batches(read["val"], owner["val"], ids["val"],
                               eval_batch),
      validation_features=_image_batches(read["val"], len(examples["val"]),
                                         eval_batch),
      validation_references=[list(e.captions) for e in examples["val"]],
      test_features=_image_batches(read["test"], len(examples["test"]),
                                   eval_batch),
      test_references=[list(e.captions) for e in examples["test"]],
      vocab=vocab,
      vocab_path=os.path.join(cache_dir, VOCAB_FILE),
      feature_shapes=shapes,
      image_paths={s: [e.image_path for e in examples[s]] for s in SPLITS},
      num_train_pairs=len(ids["train"]),
      cache_dir=cache_dir)


def build_feature_cache(config, examples: dict[str, list[Example]],
                        vocab: Vocabulary) -> str:
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
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    # Squashed, not cropped, so every region stays visible to the attention.
    return tf.image.resize(image, (size, size), antialias=True)

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


def _pair_batches(read, owner: np.ndarray, ids: np.ndarray, batch_size: int,
                  shuffle_seed: int | None = None) -> tf.data.Dataset:
  """(features, caption ids) batches; shuffled and endless given a seed."""
  dataset = tf.data.Dataset.from_tensor_slices((owner, ids))
  if shuffle_seed is not None:
    dataset = dataset.shuffle(max(len(owner), 1), seed=shuffle_seed,
                              reshuffle_each_iteration=True).repeat()
  dataset = dataset.map(lambda row, caption: (read(row), caption),
                        num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=shuffle_seed is not None
                       ).prefetch(tf.data.AUTOTUNE)


def _image_batches(read, count: int, batch_size: int) -> tf.data.Dataset:
  """{"features_k"} batches, one element per image, in order."""
  return tf.data.Dataset.range(count).map(
      read, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(
          tf.data.AUTOTUNE)


def _digest(value) -> str:
  text = json.dumps(value, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def _write_json(path: str, value) -> None:
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(value, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)
