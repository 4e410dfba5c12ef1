"""Flickr8k on disk -> validated `Example`s (paper §5.2, docs/design.md §5).

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
`Flickr8kError` (a ValueError) lists the first ten (file and line, or json
entry and field) and the count; with `config.data.skip_bad` they are skipped
and counted in the log. The official token file has captions for ~90 images
that are in the image folder but in no split list: not bad data, only unused
by the official splits, so by default (`config.data.unlisted_captions="skip"`)
they are dropped with an INFO log; "error" makes them "unlisted_captions"
problems. Captions of an image in no list and not in the folder are
"unknown_image" problems.

Text files are read as UTF-8; a byte-order mark at the start is dropped. A
line that is not UTF-8 is a "malformed_line" problem naming its line and
byte, so `skip_bad` skips just that line (as it skips a line without a tab)
rather than rejecting the whole file. A Karpathy json that is not UTF-8, not
JSON, or not an object with an `images` list is a Flickr8kError naming the
file (and line); a malformed entry (not an object, a filename that is not a
string, a split outside train/val/test/restval, sentences that are not a list
of objects with a string "raw" and a list of string "tokens") is a
"malformed_line" problem naming the entry, the field and what was wrong.
"""

import codecs
import collections
import json
import os
import re
import string
from typing import Iterator, NamedTuple, Sequence

from absl import logging
import tensorflow as tf

SPLITS = ("train", "val", "test")
IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images")
TEXT_DIRS = ("", "Flickr8k_text")
KARPATHY_JSON = "dataset_flickr8k.json"
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt",
               "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
PROBLEM_KINDS = ("malformed_line", "duplicate_listing", "unknown_image",
                 "unlisted_captions", "empty_caption", "no_captions",
                 "missing_image", "corrupt_image")
UNLISTED_MODES = ("skip", "error")  # Values of config.data.unlisted_captions.
_NAMES_LOGGED = 5  # Unlisted images named in the INFO log.
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val",
                    "test": "test"}
# ASCII digits, at most 9: int() of thousands of digits raises ValueError.
_TOKEN_LINE = re.compile(r"^([^\t#]+)#([0-9]{1,9})\t(.*)$")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ABSENT = object()  # A json field that is not there at all.


class Flickr8kError(ValueError):
  """Flickr8k files missing, unreadable or malformed; names file and line."""


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
  # Sorted names of images in the folder but in no split list whose captions
  # were dropped (unlisted_captions="skip"; always empty for "karpathy").
  unlisted: list[str]


class _Parsed(NamedTuple):
  listed: dict[str, tuple[str, str]]  # Image name -> (split, where listed).
  captions: dict[str, list[str]]  # Image name -> normalised captions.
  problems: list[Problem]
  unlisted: list[str]  # As Scan.unlisted.
  caption_file: str  # Where captions come from, for "no caption" messages.


def normalize_caption(text: str) -> str:
  """Lowercase, ASCII punctuation deleted (as NeuralTalk did), single spaces."""
  return " ".join(text.lower().translate(_PUNCTUATION).split())


def read_examples(data_dir: str, skip_bad: bool = False, layout: str = "auto",
                  verify_images: bool = True,
                  unlisted_captions: str = "skip") -> dict[str, list[Example]]:
  """Parses and validates Flickr8k; raises on problems unless `skip_bad`."""
  result = scan(data_dir, layout, verify_images, unlisted_captions)
  if result.unlisted:
    more = ", ..." if len(result.unlisted) > _NAMES_LOGGED else ""
    logging.info(
        "Flickr8k at %s: dropped the captions of %d images in the image folder "
        "but in no split list (unused by the official splits; "
        "config.data.unlisted_captions=error reports them): %s%s.", data_dir,
        len(result.unlisted), ", ".join(result.unlisted[:_NAMES_LOGGED]), more)
  if result.problems:
    counts = collections.Counter(p.kind for p in result.problems)
    summary = ", ".join(f"{k}: {counts[k]}" for k in PROBLEM_KINDS if counts[k])
    if not skip_bad:
      lines = "\n".join(f"  {p.kind}: {p.where}: {p.detail}"
                        for p in result.problems[:10])
      if counts["unlisted_captions"]:
        lines += ("\n(unlisted_captions: images in the folder but in no split "
                  "list, ~90 in the official Flickr8k.token.txt, are unused by "
                  "the official splits; --config.data.unlisted_captions=skip "
                  "drops them.)")
      raise Flickr8kError(
          f"Flickr8k at {data_dir} ({result.layout} layout): "
          f"{len(result.problems)} problems ({summary}); first ones:\n{lines}\n"
          "Fix the data or set --config.data.skip_bad=True to skip them.")
    logging.warning("Flickr8k at %s: skipped %d problems (%s).", data_dir,
                    len(result.problems), summary)
  logging.info("Flickr8k at %s (%s layout): %s images.", data_dir,
               result.layout, {s: len(v) for s, v in result.examples.items()})
  return result.examples


def scan(data_dir: str, layout: str = "auto", verify_images: bool = True,
         unlisted_captions: str = "skip") -> Scan:
  """Parses either layout; returns the clean examples and every problem."""
  if unlisted_captions not in UNLISTED_MODES:
    raise ValueError(f"config.data.unlisted_captions: unknown value "
                     f"{unlisted_captions!r}; valid are "
                     f"{', '.join(UNLISTED_MODES)}.")
  if not data_dir:
    raise ValueError("config.data.flickr8k_dir is empty: set it to the "
                     "Flickr8k folder, or write a synthetic one with `python -m "
                     "wsram_tf.pipelines.synthetic_captions --out=DIR`.")
  data_dir = os.path.abspath(os.path.expanduser(data_dir))
  if not os.path.isdir(data_dir):
    raise Flickr8kError(f"Flickr8k: data directory {data_dir!r} does not "
                        "exist (set --config.data.flickr8k_dir).")
  image_dir = _find(data_dir, IMAGE_DIRS, os.path.isdir, "image folder")
  layout = _detect_layout(data_dir, layout)
  if layout == "karpathy":
    parsed = _parse_karpathy(
        _find(data_dir, [os.path.join(d, KARPATHY_JSON) for d in TEXT_DIRS],
              os.path.isfile, KARPATHY_JSON), data_dir)
  else:
    parsed = _parse_original(data_dir, image_dir, unlisted_captions)
  captions, problems = parsed.captions, parsed.problems
  examples = {split: [] for split in SPLITS}
  for name, (split, where) in sorted(parsed.listed.items()):
    path = os.path.join(image_dir, name)
    if not captions.get(name):
      problems.append(Problem("no_captions", where, f"{name} has no caption "
                              f"in {parsed.caption_file}"))
    elif not os.path.isfile(path):
      problems.append(Problem("missing_image", where, f"{path} not found"))
    elif verify_images and not _decodes(path):
      problems.append(Problem("corrupt_image", path, "cannot decode JPEG"))
    else:
      examples[split].append(Example(path, split, tuple(captions[name])))
  return Scan(examples, problems, layout, parsed.unlisted)


def _find(data_dir: str, names: Sequence[str], test, what: str) -> str:
  for name in names:
    if test(os.path.join(data_dir, name)):
      return os.path.join(data_dir, name)
  raise Flickr8kError(f"Flickr8k: no {what} in {data_dir}; looked for "
                      f"{', '.join(names)}.")


def _detect_layout(data_dir: str, layout: str) -> str:
  has = lambda name: any(os.path.isfile(os.path.join(data_dir, d, name))
                         for d in TEXT_DIRS)
  if layout == "auto":
    if has(KARPATHY_JSON):
      return "karpathy"
    if has(TOKEN_FILE):
      return "original"
    raise Flickr8kError(f"Flickr8k: {data_dir} has neither {KARPATHY_JSON} "
                        f"nor {TOKEN_FILE} (also looked in Flickr8k_text/).")
  if layout not in ("karpathy", "original"):
    raise ValueError(f"config.data.layout: unknown layout {layout!r}; valid "
                     "are auto, karpathy, original.")
  return layout


def _parse_original(data_dir: str, image_dir: str,
                    unlisted_captions: str) -> _Parsed:
  """Split lists, token file (and which unlisted images exist) -> _Parsed."""
  problems, listed = [], {}
  for split, file_name in SPLIT_FILES.items():
    path = _find(data_dir, [os.path.join(d, file_name) for d in TEXT_DIRS],
                 os.path.isfile, file_name)
    for where, line in _lines(path, data_dir, problems):
      name = line.strip()
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
  for where, line in _lines(path, data_dir, problems):
    if not line.strip():
      continue
    match = _TOKEN_LINE.match(line)
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
  dropped = []
  for name, where in unlisted.items():
    if not os.path.isfile(os.path.join(image_dir, name)):
      problems.append(Problem(
          "unknown_image", where, f"captions for {name}, which is in no split "
          f"list and not in {image_dir}"))
    elif unlisted_captions == "error":
      problems.append(Problem(
          "unlisted_captions", where, f"captions for {name}, which is in "
          f"{image_dir} but in no split list"))
    else:
      dropped.append(name)
  return _Parsed(listed, captions, problems, sorted(dropped),
                 os.path.relpath(path, data_dir))


def _parse_karpathy(path: str, data_dir: str) -> _Parsed:
  """dataset_flickr8k.json -> _Parsed (every image has a split here)."""
  images = _karpathy_images(path)
  problems, listed, captions = [], {}, collections.defaultdict(list)
  base = os.path.relpath(path, data_dir)
  for i, image in enumerate(images):
    where = f"{base}:images[{i}]"
    field, defect = _entry_defect(image)
    if defect:
      problems.append(Problem("malformed_line", where + field, defect))
      continue
    name = image["filename"]
    if name in listed:
      problems.append(Problem("duplicate_listing", where,
                              f"{name} already listed at {listed[name][1]}"))
      continue
    listed[name] = (_KARPATHY_SPLITS[image["split"]], where)
    for j, sentence in enumerate(image.get("sentences", [])):
      at = f"{where}.sentences[{j}]"
      field, defect = _sentence_defect(sentence)
      if defect:
        problems.append(Problem("malformed_line", at + field, defect))
        continue
      caption = normalize_caption(
          sentence.get("raw") or " ".join(sentence.get("tokens", [])))
      if caption:
        captions[name].append(caption)
      else:
        problems.append(Problem("empty_caption", at,
                                f"empty caption for {name}"))
  return _Parsed(listed, captions, problems, [], base)


def _karpathy_images(path: str) -> list:
  """The `images` list of a Karpathy json; Flickr8kError naming the defect."""
  data = _read_bytes(path)
  if data.startswith(codecs.BOM_UTF8):
    data = data[len(codecs.BOM_UTF8):]
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise Flickr8kError(f"{path}:{line}: not UTF-8: byte 0x{data[e.start]:02x} "
                        f"at offset {e.start}") from e
  try:
    top = json.loads(text)
  except json.JSONDecodeError as e:
    raise Flickr8kError(f"{path}:{e.lineno}: not valid JSON: {e.msg} at "
                        f"column {e.colno}") from e
  except (ValueError, RecursionError) as e:  # A 5000-digit number, [[[[...
    raise Flickr8kError(f"{path}: not valid JSON: {e}") from e
  if not isinstance(top, dict) or not isinstance(top.get("images"), list):
    got = (f"an object whose 'images' is {_json_type(top.get('images'))}"
           if isinstance(top, dict) else _json_type(top))
    raise Flickr8kError(f"{path}: expected an object with an 'images' list "
                        f"(Karpathy's dataset_flickr8k.json), got {got}")
  return top["images"]


def _entry_defect(image) -> tuple[str, str]:
  """("." field, what is wrong) with one images[] entry, or ("", "")."""
  if not isinstance(image, dict):
    return "", f"expected an object, got {_json_type(image)}"
  name = image.get("filename", _ABSENT)
  if not isinstance(name, str) or not name.strip():
    return ".filename", f"expected a file name, got {_json_type(name)}"
  split = image.get("split", _ABSENT)
  if not isinstance(split, str) or split not in _KARPATHY_SPLITS:
    return ".split", (f"expected one of {sorted(_KARPATHY_SPLITS)}, got "
                      f"{_json_type(split)}")
  if "sentences" in image and not isinstance(image["sentences"], list):
    return ".sentences", (f"expected a list, got "
                          f"{_json_type(image['sentences'])}")
  return "", ""


def _sentence_defect(sentence) -> tuple[str, str]:
  """("." field, what is wrong) with one sentences[] entry, or ("", "")."""
  if not isinstance(sentence, dict):
    return "", f"expected an object, got {_json_type(sentence)}"
  if "raw" in sentence and not isinstance(sentence["raw"], str):
    return ".raw", f"expected a string, got {_json_type(sentence['raw'])}"
  tokens = sentence.get("tokens", [])
  if not isinstance(tokens, list) or not all(isinstance(t, str)
                                             for t in tokens):
    got = (_json_type(tokens) if not isinstance(tokens, list) else
           "a list with " + _json_type(next(
               t for t in tokens if not isinstance(t, str))))
    return ".tokens", f"expected a list of strings, got {got}"
  return "", ""


def _json_type(value) -> str:
  """What `value` is, for messages: a short string itself, else its type."""
  if value is _ABSENT:
    return "nothing"
  if value is None:
    return "null"
  if isinstance(value, str):
    return repr(value[:40])
  return type(value).__name__


def _read_bytes(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise Flickr8kError(f"Flickr8k: cannot read {path}: {e}") from e


def _lines(path: str, data_dir: str,
           problems: list[Problem]) -> Iterator[tuple[str, str]]:
  """("file:line", text) per UTF-8 line of `path`; other lines -> problems.

  Lines end at \\n, \\r\\n or \\r, as text mode reads them. A leading UTF-8
  byte-order mark (Windows editors write one) is dropped, not left as an
  invisible first character of the first image name.
  """
  data = _read_bytes(path)
  if data.startswith(codecs.BOM_UTF8):
    data = data[len(codecs.BOM_UTF8):]
  name = os.path.relpath(path, data_dir)
  for number, raw in enumerate(data.splitlines(), 1):
    where = f"{name}:{number}"
    try:
      yield where, raw.decode("utf-8")
    except UnicodeDecodeError as e:
      problems.append(Problem(
          "malformed_line", where, f"not UTF-8: byte 0x{raw[e.start]:02x} at "
          f"column {e.start + 1}"))


def _decodes(path: str) -> bool:
  """Decodes at 1/8 scale: cheap, yet catches truncated and non-JPEG files."""
  try:
    tf.io.decode_jpeg(tf.io.read_file(path), channels=3, ratio=8)
    return True
  except (tf.errors.InvalidArgumentError, tf.errors.DataLossError):
    return False
