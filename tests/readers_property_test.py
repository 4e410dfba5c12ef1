"""Damaged data files fail naming themselves, or parse to what their bytes say.

Hypothesis damages valid tiny files: truncations, byte flips, inserted and
deleted bytes, and structural changes (idx header fields and data bytes;
lines of caption token files and split lists; fields, entries and the top
level of dataset_flickr8k.json), the idx files raw and gzip, under or over
the gzip layer. Read back by the project's readers, each must either
- fail with the project's own error (`MnistSourceError`, `Flickr8kError`)
  naming the damaged file, and a line or entry that an independent tiny
  reference parser (below) also finds bad, or
- give exactly what the reference parser makes of the same bytes: a damage
  that leaves a valid file (a flipped pixel, a changed letter of a caption)
  is accepted, but nothing is silently dropped or added.
Never another exception, and never a hang (SIGALRM after _TIMEOUT seconds).
Derandomized, with few examples, so CI is reproducible and quick.
"""

import contextlib
import gzip
import json
import math
import os
import re
import signal
import string
import tempfile

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k_reader
from wsram_tf.pipelines import mnist_source
from tests import flickr8k_data
from tests import toy_data

_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                     database=None, suppress_health_check=list(HealthCheck))
_TIMEOUT = 20  # Seconds one read may take before it counts as a hang.
_BOM = b"\xef\xbb\xbf"
# Bytes that mean something to one of the formats, besides random ones.
_SPECIAL = [b"\n", b"\r", b"\r\n", b"\t", b"#", b" ", b"\x00", b"\xff",
            b"\xe9", _BOM, b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\",
            b"0", b"9", b".jpg"]


@contextlib.contextmanager
def _no_hang():
  """Turns a read that never returns into a test failure."""
  def interrupt(signum, frame):
    del signum, frame
    raise TimeoutError(f"a reader hung for more than {_TIMEOUT} s")
  previous = signal.signal(signal.SIGALRM, interrupt)
  signal.alarm(_TIMEOUT)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _damage_bytes(draw, data: bytes) -> bytes:
  """One byte-level damage of `data`: cut, flip, insert, delete, overwrite."""
  kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete",
                               "overwrite"]))
  at = draw(st.integers(0, max(len(data) - 1, 0)))
  if kind == "truncate":
    return data[:at]
  if kind == "flip" and data:
    mask = draw(st.integers(1, 255))
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]
  if kind == "delete":
    return data[:at] + data[at + draw(st.integers(1, 8)):]
  extra = draw(st.sampled_from(_SPECIAL) | st.binary(min_size=1, max_size=4))
  if kind == "overwrite":
    return data[:at] + extra + data[at + len(extra):]
  return data[:at] + extra + data[at:]


# --- (a) MNIST idx files -----------------------------------------------------


def _reference_idx(data: bytes, gz: bool, magic: int):
  """The array an idx file holds, or None if it is not a valid one."""
  if gz:
    try:
      data = gzip.decompress(data)
    except Exception:  # pylint: disable=broad-except
      return None
  if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
    return None
  ndim = data[3]
  dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
          for i in range(ndim)]
  body = data[4 + 4 * ndim:]
  if len(data) < 4 + 4 * ndim or len(body) != math.prod(dims):
    return None
  return np.frombuffer(body, np.uint8).reshape(dims)


def _reference_mnist(files: dict[str, bytes], gz: bool):
  """{field: array} of four idx files, or None if they are no MNIST set."""
  out = {}
  for field, data in files.items():
    magic = (mnist_source.IMAGES_MAGIC if field.endswith("images")
             else mnist_source.LABELS_MAGIC)
    out[field] = _reference_idx(data, gz, magic)
    if out[field] is None:
      return None
  for split in ("train", "test"):
    images, labels = out[f"{split}_images"], out[f"{split}_labels"]
    if (images.shape[1:] != (28, 28) or len(images) != len(labels)
        or (labels > 9).any()):
      return None
  return out


def _damage_idx_body(draw, data: bytes) -> bytes:
  """One byte after the header set to any value: a pixel, or a label."""
  header = 4 + 4 * data[3]
  at = draw(st.integers(header, len(data) - 1))
  value = draw(st.sampled_from([9, 10, 255]) | st.integers(0, 255))
  return data[:at] + bytes([value]) + data[at + 1:]


def _damage_idx_header(draw, data: bytes) -> bytes:
  """A structural damage: one header word set to another count."""
  words = (len(data) >= 4) and 1 + data[3]
  word = draw(st.integers(0, max(words - 1, 0)))
  old = int.from_bytes(data[4 * word:4 * word + 4], "big")
  new = draw(st.sampled_from([old + 1, max(old - 1, 0), 0, 28, 2**32 - 1]) |
             st.integers(0, 2**32 - 1))
  return data[:4 * word] + new.to_bytes(4, "big") + data[4 * word + 4:]


# --- (b) Flickr8k token files and split lists -------------------------------

_TOKEN = re.compile(r"([^\t#]+)#([0-9]{1,9})\t(.*)", re.DOTALL)
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val",
                    "test": "test"}


def _normalize(text: str) -> str:
  return " ".join(text.lower().translate(_PUNCTUATION).split())


def _text_lines(name: str, data: bytes, bad: list[str]):
  """(where, text) per line; undecodable lines go to `bad`."""
  if data.startswith(_BOM):
    data = data[len(_BOM):]
  for number, raw in enumerate(re.split(rb"\r\n|\r|\n", data), 1):
    try:
      yield f"{name}:{number}", raw.decode("utf-8")
    except UnicodeDecodeError:
      bad.append(f"{name}:{number}")


def _reference_original(files: dict[str, bytes], image_dir: str):
  """("ok", {split: [(name, captions)]}) or ("bad", locations found bad)."""
  bad, listed = [], {}
  for split, name in flickr8k_data.LIST_FILES.items():
    for where, line in _text_lines(name, files[name], bad):
      image = line.strip()
      if image and image in listed:
        bad.append(where)
      elif image:
        listed[image] = (split, where)
  captions, unknown = {}, {}
  for where, line in _text_lines(flickr8k_reader.TOKEN_FILE,
                                 files[flickr8k_reader.TOKEN_FILE], bad):
    match = _TOKEN.fullmatch(line)
    if not line.strip():
      continue
    if not match:
      bad.append(where)
    elif match[1] not in listed:
      if not os.path.isfile(os.path.join(image_dir, match[1])):
        unknown.setdefault(match[1], where)
    elif not _normalize(match[3]):
      bad.append(where)
    else:
      captions.setdefault(match[1], []).append((int(match[2]),
                                                _normalize(match[3])))
  bad += unknown.values()
  return _examples(listed, captions, image_dir, bad)


def _examples(listed, captions, image_dir, bad):
  examples = {s: [] for s in flickr8k_reader.SPLITS}
  for image, (split, where) in sorted(listed.items()):
    if not captions.get(image) or not os.path.isfile(
        os.path.join(image_dir, image)):
      bad.append(where)
    else:
      examples[split].append(
          (image, tuple(c for _, c in sorted(captions[image]))))
  return ("bad", bad) if bad else ("ok", examples)


def _damage_lines(draw, data: bytes) -> bytes:
  """A structural damage of a line-based file."""
  lines = data.split(b"\n")
  i, j = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
  kind = draw(st.sampled_from(["drop", "duplicate", "swap", "tab", "bom",
                               "crlf", "rename", "junk", "empty_caption"]))
  if kind == "drop":
    del lines[i]
  elif kind == "duplicate":
    lines.insert(j, lines[i])
  elif kind == "swap":
    lines[i], lines[j] = lines[j], lines[i]
  elif kind == "tab":
    lines[i] = lines[i].replace(b"\t", b" ")
  elif kind == "bom":
    return _BOM + data
  elif kind == "crlf":
    return data.replace(b"\n", b"\r\n")
  elif kind == "rename":
    lines[i] = lines[i].replace(b".jpg", draw(st.sampled_from(
        [b".jpeg", b"x.jpg", b".jpg ", b"\xc3\xa9.jpg"])), 1)
  elif kind == "junk":
    lines.insert(i, draw(st.sampled_from(
        [b"zz.jpg#0\ta lost image", b"a.jpg#1234567890\tlong number",
         b"a.jpg#\xd9\xa3\tarabic three", b"#0\tno name", b"c.jpg",
         b"\t\t", b"b.jpg#9\t" + b"a" * 5000])))
  else:
    lines[i] = re.sub(rb"\t.*", b"\t . !", lines[i])
  return b"\n".join(lines)


# --- (c) Karpathy json -------------------------------------------------------


def _reference_karpathy(data: bytes, image_dir: str):
  """As _reference_original for dataset_flickr8k.json; ("bad", []) if the
  file as a whole is not a Karpathy json."""
  try:  # Decoded first: json.loads(bytes) would also take UTF-16 and -32.
    top = json.loads((data[len(_BOM):] if data.startswith(_BOM) else data
                      ).decode("utf-8"))
  except Exception:  # pylint: disable=broad-except
    return "bad", []
  if not isinstance(top, dict) or not isinstance(top.get("images"), list):
    return "bad", []
  bad, listed, captions = [], {}, {}
  for i, entry in enumerate(top["images"]):
    where = f"{flickr8k_reader.KARPATHY_JSON}:images[{i}]"
    name = entry.get("filename") if isinstance(entry, dict) else None
    split = entry.get("split") if isinstance(entry, dict) else None
    sentences = entry.get("sentences", []) if isinstance(entry, dict) else None
    if (not isinstance(name, str) or not name.strip()
        or not isinstance(split, str) or split not in _KARPATHY_SPLITS
        or not isinstance(sentences, list) or name in listed):
      bad.append(where)
      continue
    listed[name] = (_KARPATHY_SPLITS[split], where)
    for k, sentence in enumerate(sentences):
      raw = sentence.get("raw", "") if isinstance(sentence, dict) else None
      tokens = sentence.get("tokens", []) if isinstance(sentence, dict) else 0
      if (not isinstance(raw, str) or not isinstance(tokens, list)
          or not all(isinstance(t, str) for t in tokens)
          or not _normalize(raw or " ".join(tokens))):
        bad.append(where)
      else:
        captions.setdefault(name, []).append(
            (k, _normalize(raw or " ".join(tokens))))
  return _examples(listed, captions, image_dir, bad)


def _json_paths(value, path=()):
  """Every (path, node) of a json tree, the root first."""
  yield path, value
  children = (value.items() if isinstance(value, dict) else
              enumerate(value) if isinstance(value, list) else ())
  for key, child in children:
    yield from _json_paths(child, path + (key,))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats(-1e3, 1e3)
    | st.text(max_size=6) | st.sampled_from(
        ["a.jpg", "b.jpg", "zz.jpg", "", " ", "train", "restval", "val",
         "test", "holdout", "A dog.", "!"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["filename", "split", "sentences", "raw", "tokens",
                         "images", "x"]), inner, max_size=3),
    max_leaves=6)


def _damage_json(draw, data: bytes) -> bytes:
  """A structural damage: one node replaced, deleted, renamed or wrapped."""
  top = json.loads(data)
  paths = list(_json_paths(top))
  path, node = paths[draw(st.integers(0, len(paths) - 1))]
  kind = draw(st.sampled_from(["replace", "delete", "rename", "wrap"]))
  if kind == "replace" or not path:
    new = draw(_JSON_VALUES)
  elif kind == "wrap":
    new = [node]
  else:
    new = None
  if not path:
    return json.dumps(new if kind == "replace" else [top]).encode()
  parent = top
  for key in path[:-1]:
    parent = parent[key]
  if kind == "delete":
    del parent[path[-1]]
  elif kind == "rename" and isinstance(parent, dict):
    parent[path[-1] + "_"] = parent.pop(path[-1])
  else:
    parent[path[-1]] = new if kind != "rename" else [node]
  return json.dumps(top).encode()


# --- the properties ----------------------------------------------------------


class ReadersPropertyTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    cls.original = flickr8k_data.write_dataset(
        os.path.join(cls.tmp.name, "original"))
    cls.karpathy = flickr8k_data.write_dataset(
        os.path.join(cls.tmp.name, "karpathy"), "karpathy")
    cls.text = {}
    for name in (flickr8k_reader.TOKEN_FILE,
                 *flickr8k_data.LIST_FILES.values()):
      with open(os.path.join(cls.original, name), "rb") as f:
        cls.text[name] = f.read()
    with open(os.path.join(cls.karpathy, flickr8k_reader.KARPATHY_JSON),
              "rb") as f:
      cls.json = f.read()

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  @_SETTINGS
  @given(st.data())
  def test_damaged_idx_files_fail_by_name_or_parse_right(self, data):
    arrays = toy_data.random_mnist_arrays(num_train=3, num_test=2)
    files = {f: toy_data.idx_bytes(getattr(arrays, f), magic) for f, magic in (
        ("train_images", mnist_source.IMAGES_MAGIC),
        ("train_labels", mnist_source.LABELS_MAGIC),
        ("test_images", mnist_source.IMAGES_MAGIC),
        ("test_labels", mnist_source.LABELS_MAGIC))}
    gz = data.draw(st.booleans(), "gzip")
    if gz:
      files = {f: gzip.compress(v, mtime=0) for f, v in files.items()}
    field = data.draw(st.sampled_from(mnist_source.FIELDS), "file")
    damage = data.draw(st.sampled_from(
        [_damage_bytes, _damage_idx_header, _damage_idx_body]), "damage")
    if gz and damage is _damage_bytes and data.draw(st.booleans(), "layer"):
      files[field] = _damage_bytes(data.draw, files[field])  # Compressed.
    else:  # Under the gzip layer if there is one.
      plain = gzip.decompress(files[field]) if gz else files[field]
      plain = damage(data.draw, plain)
      files[field] = gzip.compress(plain, mtime=0) if gz else plain
    expected = _reference_mnist(files, gz)
    with tempfile.TemporaryDirectory() as mnist_dir:
      for f, value in files.items():
        name = mnist_source.IDX_FILES[f] + (".gz" if gz else "")
        with open(os.path.join(mnist_dir, name), "wb") as out:
          out.write(value)
      damaged = os.path.join(
          mnist_dir, mnist_source.IDX_FILES[field] + (".gz" if gz else ""))
      try:
        with _no_hang():
          got = mnist_source.load_idx_dir(mnist_dir)
      except mnist_source.MnistSourceError as e:
        self.assertIsNone(expected, f"rejected a valid set: {e}")
        self.assertIn(damaged, str(e))
        return
    self.assertIsNotNone(expected, "accepted a damaged set")
    for f in mnist_source.FIELDS:
      self.assertAllEqual(getattr(got, f), expected[f])

  @_SETTINGS
  @given(st.data())
  def test_damaged_caption_and_split_files_fail_by_name_or_parse_right(
      self, data):
    name = data.draw(st.sampled_from(sorted(self.text)), "file")
    damage = data.draw(st.sampled_from([_damage_bytes, _damage_lines]))
    files = dict(self.text)
    files[name] = damage(data.draw, files[name])
    for file_name, value in files.items():
      with open(os.path.join(self.original, file_name), "wb") as f:
        f.write(value)
    image_dir = os.path.join(self.original, flickr8k_data.IMAGE_DIR)
    self._check_flickr8k(self.original, name, data.draw(st.booleans()),
                         _reference_original(files, image_dir))

  @_SETTINGS
  @given(st.data())
  def test_damaged_karpathy_json_fails_by_name_or_parses_right(self, data):
    damage = data.draw(st.sampled_from([_damage_bytes, _damage_json]))
    damaged = damage(data.draw, self.json)
    with open(os.path.join(self.karpathy, flickr8k_reader.KARPATHY_JSON),
              "wb") as f:
      f.write(damaged)
    image_dir = os.path.join(self.karpathy, flickr8k_data.IMAGE_DIR)
    self._check_flickr8k(self.karpathy, flickr8k_reader.KARPATHY_JSON,
                         data.draw(st.booleans()),
                         _reference_karpathy(damaged, image_dir))

  def _check_flickr8k(self, root, damaged, skip_bad, reference):
    """The reader agrees with `reference` or fails naming `damaged`."""
    verdict, value = reference
    try:
      with _no_hang(), self.assertLogs("absl", "INFO") as logs:
        got = flickr8k_reader.read_examples(root, skip_bad=skip_bad,
                                            verify_images=False)
    except flickr8k_reader.Flickr8kError as e:
      self.assertEqual(verdict, "bad", f"rejected a valid file: {e}")
      self.assertIn(damaged, str(e))
      if value and not skip_bad:
        self.assertTrue(any(where in str(e) for where in value),
                        f"none of {value} in: {e}")
      return
    if verdict == "ok":
      self.assertEqual(flickr8k_data.basenames(got), value)
      self.assertEqual([r for r in logs.records if r.levelname == "WARNING"],
                       [])
    else:  # Only skip_bad may read past a bad line, and never silently.
      self.assertTrue(skip_bad and value, f"accepted a damaged file: {value}")
      self.assertTrue(any("skipped" in r.getMessage() and
                          r.levelname == "WARNING" for r in logs.records),
                      f"skipped {value} silently")


if __name__ == "__main__":
  tf.test.main()
