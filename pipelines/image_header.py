"""The size an encoded image declares, read from its header before decoding.

A decoder allocates height x width x channels before it reads a pixel: a
389 KB PNG of 20000 x 20000 grey pixels takes 8.7 GB as float32. Every place
an image enters (the decode-once cache of training folders and tfds, the
export's `serve_image_bytes`) first reads the declared size here and refuses
an image above a pixel limit, so memory stays bounded for any byte string.

TF ops only (tf.strings and tf.io.decode_raw on the first HEAD bytes, and
tf.image.extract_jpeg_shape for JPEG, whose size marker may follow a long
EXIF block): the same function runs eagerly in training and inside the
SavedModel, where no Python runs. Formats:

  PNG   width, height: big-endian uint32 of the IHDR chunk (bytes 16, 20)
  GIF   logical screen: little-endian uint16 (bytes 6, 8); TF's decoder
        sizes its output, first frame only, by it
  BMP   little-endian int32 at 18, 22 as TF's decoder reads them (a negative
        height is a top-down bitmap)
  WebP  VP8X canvas, VP8L (14-bit fields) or VP8 (lossy) frame size
  JPEG  tf.image.extract_jpeg_shape

Anything else declares no size ([-1, -1]): tf.io.decode_image refuses it,
except JPEG XL, whose size header is bit-packed and may sit inside an ISO
BMFF container; it is refused here rather than decoded unbounded.
"""

from typing import Optional

import tensorflow as tf

HEAD = 32  # Bytes every header above needs (VP8L: 25; WebP VP8X: 30).
# A size no camera picture reaches by accident (a 50-megapixel sensor is
# 8660 x 5773), far below what takes a machine down.
DEFAULT_MAX_PIXELS = 50_000_000
FORMATS = "JPEG, PNG, BMP, GIF or WebP"
# The start of every refusal reason (the image cache tells them from decode
# errors by it: a refusal depends on the limit, so it is never reused).
REFUSED = "refused before decoding"


def _head(contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(first HEAD bytes as a string padded with zeros, the same as int64)."""
  head = tf.strings.substr(contents, 0, HEAD)
  padded = tf.strings.substr(
      tf.strings.join([head, tf.constant(b"\0" * HEAD)]), 0, HEAD)
  return padded, tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def declared_size(contents: tf.Tensor) -> tf.Tensor:
  """int64 [2] (height, width) that string scalar `contents` declares;
  [-1, -1] if it is not a JPEG, PNG, BMP, GIF or WebP file."""
  padded, b = _head(contents)

  def starts(signature: bytes, at: int = 0) -> tf.Tensor:
    return tf.equal(tf.strings.substr(padded, at, len(signature)), signature)

  def little(at: int, size: int) -> tf.Tensor:
    return sum(b[at + i] * (1 << (8 * i)) for i in range(size))

  def big(at: int, size: int) -> tf.Tensor:
    return sum(b[at + i] * (1 << (8 * (size - 1 - i))) for i in range(size))

  def signed32(value):
    return tf.abs(tf.where(value >= 1 << 31, value - (1 << 32), value))

  webp = tf.logical_and(starts(b"RIFF"), starts(b"WEBP", 8))
  # 14-bit fields from bit 8 of byte 20 (tensors have no << or >>).
  vp8l_width = 1 + b[21] + (b[22] % 64) * 256
  vp8l_height = 1 + b[22] // 64 + b[23] * 4 + (b[24] % 16) * 1024
  # (condition, height, width), the first that holds wins.
  cases = [
      (starts(b"\x89PNG\r\n\x1a\n"), big(20, 4), big(16, 4)),
      (starts(b"GIF8"), little(8, 2), little(6, 2)),
      (starts(b"BM"), signed32(little(22, 4)), signed32(little(18, 4))),
      (tf.logical_and(webp, starts(b"VP8X", 12)), 1 + little(27, 3),
       1 + little(24, 3)),
      (tf.logical_and(webp, starts(b"VP8L", 12)), vp8l_height, vp8l_width),
      (tf.logical_and(webp, starts(b"VP8 ", 12)), little(28, 2) % 16384,
       little(26, 2) % 16384),
  ]
  size = tf.constant([-1, -1], tf.int64)
  for condition, height, width in reversed(cases):
    size = tf.where(condition, tf.stack([height, width]), size)
  return tf.cond(
      starts(b"\xff\xd8\xff"),
      lambda: tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64),
      lambda: size)


_declared_size = tf.function(declared_size, autograph=False,
                             input_signature=[tf.TensorSpec([], tf.string)])


def refusal(contents: bytes, max_pixels: int,
            field: str = "config.data.max_image_pixels") -> Optional[str]:
  """Why `contents` is not decoded (its declared size is above
  `max_pixels`, or it is JPEG XL), or None: then it may be decoded."""
  height, width = (int(v) for v in _declared_size(tf.constant(contents)))
  if height < 0:
    if contents[:2] == b"\xff\x0a" or contents[4:12] == b"JXL \r\n\x87\n":
      return (f"{REFUSED}: JPEG XL, whose size cannot be read before "
              f"decoding; convert it to {FORMATS}")
    return None  # No image format: the decoder says so.
  if height * width > max_pixels:
    return (f"{REFUSED}: {height} x {width} = {height * width} pixels "
            f"(height x width) is above {field}={max_pixels}; shrink the "
            "image or raise the limit")
  return None
