"""Tiny image files for tests: PNG, JPEG, BMP and GIF bytes, and class folders.

PNG and JPEG come from tf.io; BMP (24-bit) and GIF (8-bit palette, LZW with
a clear code every 100 pixels, so codes stay 9 bits wide) are written here
by hand: no imaging library is a dependency. `pattern` makes pictures whose
class shows in their colour and whose size and channels vary.
"""

import os

import ml_collections
import numpy as np
import tensorflow as tf

from wsram_tf.configs import images as image_configs

FORMATS = ("png", "jpg", "bmp", "gif")


def pattern(height: int, width: int, channels: int, seed: int) -> np.ndarray:
  """uint8 [height, width, channels]: a smooth gradient plus noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
  base = [yy, xx, 1 - yy][:channels] if channels == 3 else [(yy + xx) / 2]
  image = np.stack(base, -1) * 200 + rng.integers(0, 50, (height, width,
                                                          channels))
  return image.astype(np.uint8)


def png(image: np.ndarray) -> bytes:
  return tf.io.encode_png(image).numpy()


def jpeg(image: np.ndarray) -> bytes:
  return tf.io.encode_jpeg(image, quality=95).numpy()


def bmp(image: np.ndarray) -> bytes:
  """24-bit uncompressed BMP (grey is stored as equal R, G, B)."""
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, -1)
  height, width = image.shape[:2]
  stride = (3 * width + 3) // 4 * 4
  rows = np.zeros([height, stride], np.uint8)
  rows[:, :3 * width] = image[::-1, :, ::-1].reshape(height, -1)  # BGR, up.
  pixels = rows.tobytes()
  header = (b"BM" + (54 + len(pixels)).to_bytes(4, "little") + bytes(4)
            + (54).to_bytes(4, "little"))
  info = b"".join(v.to_bytes(n, "little") for v, n in (
      (40, 4), (width, 4), (height, 4), (1, 2), (24, 2), (0, 4),
      (len(pixels), 4), (2835, 4), (2835, 4), (0, 4), (0, 4)))
  return header + info + pixels


def _lzw(indices: np.ndarray) -> bytes:
  """GIF LZW data of 8-bit `indices` without compression: literal codes."""
  clear, end = 256, 257
  codes = []
  for start in range(0, len(indices), 100):
    codes += [clear] + [int(v) for v in indices[start:start + 100]]
  codes.append(end)
  bits = "".join(format(c, "09b")[::-1] for c in codes)  # LSB first.
  bits += "0" * (-len(bits) % 8)
  data = bytes(int(bits[i:i + 8][::-1], 2) for i in range(0, len(bits), 8))
  blocks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                    for i in range(0, len(data), 255))
  return bytes([8]) + blocks + b"\x00"


def gif(frames: list[np.ndarray]) -> bytes:
  """GIF of grey uint8 [H, W] or [H, W, 1] frames (a 256-grey palette)."""
  height, width = frames[0].shape[:2]
  size = lambda v: int(v).to_bytes(2, "little")
  out = (b"GIF89a" + size(width) + size(height) + bytes([0xF7, 0, 0])
         + bytes(np.repeat(np.arange(256, dtype=np.uint8), 3)))
  for frame in frames:
    out += (b"\x2c" + size(0) + size(0) + size(width) + size(height)
            + b"\x00" + _lzw(np.asarray(frame).reshape(-1)))
  return out + b"\x3b"


def encode(image: np.ndarray, fmt: str) -> bytes:
  """`image` uint8 [H, W, C] as `fmt` (GIF: grey only)."""
  return {"png": png, "jpg": jpeg, "bmp": bmp,
          "gif": lambda x: gif([x])}[fmt](image)


def write(path: str, contents: bytes) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(contents)
  return path


def write_folder(root: str, classes=("ants", "bees", "cats"),
                 per_class: dict | None = None, seed: int = 0) -> dict:
  """DIR/<split>/<class>/ files of mixed formats, sizes and channels.

  `per_class` maps a split to its images per class (default train 6, test 2).
  The k-th file of a class cycles through FORMATS (GIFs grey) and sizes (all
  <= 40 pixels). Returns {"<split>/<class>/<file>": the uint8 image}.
  """
  per_class = per_class or {"train": 6, "test": 2}
  sizes = [(20, 30), (12, 12), (40, 17), (9, 25)]
  written = {}
  for split, count in per_class.items():
    for c, name in enumerate(classes):
      for k in range(count):
        fmt = FORMATS[k % len(FORMATS)]
        channels = 1 if fmt == "gif" or k % 3 == 1 else 3
        image = pattern(*sizes[(k + c) % len(sizes)], channels,
                        seed=[seed, len(split), c, k])
        relative = os.path.join(split, name, f"{name}{k:02d}.{fmt}")
        write(os.path.join(root, relative), encode(image, fmt))
        written[relative] = image
  return written


def run_config(data_dir: str, cache_dir: str, preset="wsram_qc,tiny",
               **data) -> ml_collections.ConfigDict:
  """configs/images.py on a tiny folder; small canvas, no XLA compiles."""
  config = image_configs.get_config(preset)
  config.data.dir = data_dir
  config.data.cache_dir = cache_dir
  config.data.canvas_size = 48  # Windows 12, 24, 48: the largest fits.
  config.data.update(data)
  config.train.jit_compile = False
  return config


def config(**data) -> ml_collections.ConfigDict:
  """The fields the image pipelines read, small; `data` overrides data.*."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = ml_collections.ConfigDict(dict(
      name="image_folder", dir="", channels=3, canvas_size=48, resize="pad",
      validation_fraction=0.0, skip_bad=False, cache_dir="",
      tfds_name="", tfds_data_dir="", max_train_examples=0,
      max_test_examples=0, shuffle=True))
  c.data.update(data)
  c.train = ml_collections.ConfigDict(dict(batch_size=4))
  c.eval = ml_collections.ConfigDict(dict(batch_size=5))
  return c
