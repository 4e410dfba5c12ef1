"""What the exported classifier does to its input before the model sees it.

Traced into the SavedModel (so TF ops only, and no import of this package
when it serves):

- `checked_images`: float32 images must be [B, S, S, C] of the trained
  canvas and channels with pixels in [0, 1]; anything else fails inside the
  graph with a message stating what is expected and what came. Silent
  alternatives are all wrong: a larger image would be read off-centre, a
  0-255 image saturates every probability, a grey model cannot read RGB.
- `canvases_from_bytes`: a vector of encoded image files (JPEG, PNG, BMP,
  GIF first frame, WebP) through exactly the training preprocessing of the
  decode-once cache (pipelines/image_cache.to_canvas): decode,
  `image_resize.preprocess` with the trained channels, canvas and resize
  mode, rounding to 8 bits. Each file's header is read first
  (pipelines/image_header.py): one that declares more than the export's
  pixel limit, or is no known image format, fails the batch naming its index
  before anything is decoded, so a request's memory is bounded whatever its
  bytes.
"""

from typing import Sequence

import tensorflow as tf

from wsram_tf.pipelines import image_header
from wsram_tf.pipelines import image_resize


def _describe(image_shape: Sequence[int]) -> str:
  side, _, channels = image_shape
  kind = {1: "grey", 3: "RGB"}.get(channels, "")
  return (f"float32 [batch, {side}, {side}, {channels}] ({kind} canvases of "
          f"the trained size) with pixels in [0, 1]")


def checked_images(images: tf.Tensor, image_shape: Sequence[int]) -> tf.Tensor:
  """`images` [B, S, S, C] after in-graph checks of shape and value range."""
  expected = _describe(image_shape)
  shape = tf.shape(images)
  rank = tf.size(shape)
  # Padded to 4 so that a wrong rank compares without a shape error of its own.
  padded = tf.concat([shape, -tf.ones([tf.maximum(4 - rank, 0)], tf.int32)],
                     0)[:4]
  shape_ok = tf.logical_and(
      tf.equal(rank, 4),
      tf.reduce_all(tf.equal(padded[1:], tf.constant(image_shape, tf.int32))))
  check_shape = tf.debugging.Assert(
      shape_ok, [f"serve: images must be {expected}; got shape", shape,
                 "(add a batch axis to one image; serve_image_bytes takes "
                 "image files of any size and channels)"], summarize=8)
  with tf.control_dependencies([check_shape]):
    # Elementwise, so an empty batch passes (min/max of nothing is +-inf).
    in_range = tf.reduce_all(
        tf.logical_and(images >= 0.0, images <= 1.0))
    check_range = tf.debugging.Assert(
        in_range, [f"serve: images must be {expected}; got values from",
                   tf.reduce_min(images), "to", tf.reduce_max(images),
                   "(pixels in 0-255? divide by 255; NaN is never valid)"])
  with tf.control_dependencies([check_range]):
    images = tf.identity(images)
  return tf.ensure_shape(images, [None, *image_shape])


def checked_bytes(image_bytes: tf.Tensor) -> tf.Tensor:
  """`image_bytes` as string [B], after an in-graph check of its rank (a
  bare string would otherwise fail deep inside with a slice-index error)."""
  shape = tf.shape(image_bytes)
  check = tf.debugging.Assert(
      tf.equal(tf.size(shape), 1),
      ["serve_image_bytes: image_bytes must be a string vector [batch], one "
       "encoded file per element; got shape", shape,
       "(put a single file in a list of one)"])
  with tf.control_dependencies([check]):
    return tf.ensure_shape(tf.identity(image_bytes), [None])


def canvases_from_bytes(image_bytes: tf.Tensor, image_shape: Sequence[int],
                        resize: str,
                        max_pixels: int = image_header.DEFAULT_MAX_PIXELS
                        ) -> tf.Tensor:
  """string [B] encoded files -> float32 [B, S, S, C] as in training."""
  side, _, channels = image_shape
  image_bytes = checked_bytes(image_bytes)

  def canvas(args):
    contents, index = args
    size = image_header.declared_size(contents)
    known = tf.debugging.Assert(
        size[0] >= 0,
        ["serve_image_bytes: image", index, "of the batch is not a "
         f"{image_header.FORMATS} file (JPEG XL is refused: its size cannot "
         "be read before decoding); it starts with",
         tf.strings.substr(contents, 0, 8)])
    small = tf.debugging.Assert(
        size[0] * size[1] <= max_pixels,
        ["serve_image_bytes: image", index, "of the batch declares", size[0],
         "x", size[1], "pixels (height x width), above the export's limit of",
         max_pixels, "(export_info.json image_bytes.max_pixels); refused "
         "before decoding"])
    with tf.control_dependencies([known, small]):
      image = tf.io.decode_image(contents, expand_animations=False,
                                 dtype=tf.float32)
    image = image_resize.preprocess(image, channels, side, resize)
    # The training cache stores canvases as uint8: the same rounding.
    return tf.round(image * 255.0) / 255.0

  return tf.map_fn(canvas, (image_bytes, tf.range(tf.size(image_bytes))),
                   fn_output_signature=tf.TensorSpec(
                       [side, side, channels], tf.float32))
