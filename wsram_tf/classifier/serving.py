"""What the exported classifier does to its input before the model sees it.

Traced into the SavedModel (so TF ops only, and no import of this package
when it serves):

- `checked_images`: float32 images must be [B, S, S, C] of the trained
  canvas and channels with pixels in [0, 1]; anything else fails inside the
  graph with a message stating what is expected and what came. Silent
  alternatives are all wrong: a larger image would be read off-centre, a
  0-255 image saturates every probability, a grey model cannot read RGB.
- `canvases_from_bytes`: encoded image files (JPEG, PNG, BMP, GIF first
  frame) through exactly the training preprocessing of the decode-once cache
  (pipelines/image_cache.to_canvas): decode, `image_resize.preprocess` with
  the trained channels, canvas and resize mode, rounding to 8 bits.
"""

from typing import Sequence

import tensorflow as tf

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


def canvases_from_bytes(image_bytes: tf.Tensor, image_shape: Sequence[int],
                        resize: str) -> tf.Tensor:
  """string [B] encoded files -> float32 [B, S, S, C] as in training."""
  side, _, channels = image_shape

  def canvas(contents):
    image = tf.io.decode_image(contents, expand_animations=False,
                               dtype=tf.float32)
    image = image_resize.preprocess(image, channels, side, resize)
    # The training cache stores canvases as uint8: the same rounding.
    return tf.round(image * 255.0) / 255.0

  return tf.map_fn(canvas, image_bytes, fn_output_signature=tf.TensorSpec(
      [side, side, channels], tf.float32))
