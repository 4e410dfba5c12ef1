"""Puts any picture on the model's canvas: channels, then pad / fit / stretch.

The one preprocessing of user images, shared by the decode-once cache
(pipelines/image_cache.py, run eagerly) and the export (inside a SavedModel,
where shapes are dynamic): every function is TF ops only, takes a numpy array
or a tensor, [H, W, C] or a batch [B, H, W, C] of one size, and returns a
float32 tensor (call .numpy() for numpy). Channel counts and sizes may be
unknown until run time, so none of them branches in Python on the input.

  to_channels:      1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels
                    to the model's 1 or 3; alpha is composited onto black,
                    the colour of the canvas border.
  resize_to_canvas: "pad"     keep the aspect ratio, shrink only images larger
                              than the canvas, centre on black;
                    "fit"     keep the aspect ratio, scale (up or down) until
                              the longer side is the canvas, centre on black;
                    "stretch" scale each side to the canvas.
  preprocess:       both, on values in [0, 1].

Scaling is bilinear with antialiasing, as pipelines/mnist.place_digits does:
non-negative normalised weights keep values in [0, 1], and shrinking averages
over the whole footprint instead of skipping pixels. A scaled side is
floor(side * scale + 0.5), at least 1; an image is centred with its extra
border pixel, if the margin is odd, at the bottom / right.
"""

from typing import Any

import tensorflow as tf

RESIZE_MODES = ("pad", "fit", "stretch")
CHANNELS = (1, 3)


def _check(channels: int | None = None, canvas_size: int | None = None,
           mode: str | None = None) -> None:
  if channels is not None and channels not in CHANNELS:
    raise ValueError(f"channels={channels!r}: expected one of {CHANNELS}")
  if canvas_size is not None and (
      isinstance(canvas_size, bool) or not hasattr(canvas_size, "__index__")
      or canvas_size < 1):
    raise ValueError(f"canvas_size={canvas_size!r}: expected an int >= 1")
  if mode is not None and mode not in RESIZE_MODES:
    raise ValueError(f"resize={mode!r}: expected one of {RESIZE_MODES}")


def to_channels(image: Any, channels: int) -> tf.Tensor:
  """float [..., H, W, c] with c in 1..4 -> float32 [..., H, W, channels].

  Grey to RGB repeats the grey value; RGB to grey is the luminance of
  tf.image.rgb_to_grayscale (weights 0.2989, 0.5870, 0.1140). An alpha
  channel (c = 2 or 4) multiplies the colour: transparent pixels turn black
  whatever colour they store.
  """
  _check(channels=channels)
  image = tf.convert_to_tensor(image, tf.float32)
  c = tf.shape(image)[-1]
  tf.debugging.assert_less_equal(c, 4, "images have 1 to 4 channels")
  alpha = tf.cond(tf.equal(c % 2, 0), lambda: image[..., -1:],
                  lambda: tf.ones_like(image[..., :1]))
  if channels == 1:
    colour = tf.cond(c >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]),
                     lambda: image[..., :1])
  else:
    colour = tf.cond(c >= 3, lambda: image[..., :3],
                     lambda: tf.repeat(image[..., :1], 3, axis=-1))
  out = colour * alpha
  return tf.ensure_shape(out, out.shape[:-1].concatenate([channels]))


def scaled_size(height: Any, width: Any, canvas_size: int,
                mode: str) -> tuple[tf.Tensor, tf.Tensor]:
  """int32 (new height, new width) of an H x W image under `mode`."""
  _check(canvas_size=canvas_size, mode=mode)
  height = tf.cast(height, tf.float32)
  width = tf.cast(width, tf.float32)
  if mode == "stretch":
    return tf.constant(canvas_size), tf.constant(canvas_size)
  scale = canvas_size / tf.maximum(height, width)
  if mode == "pad":
    scale = tf.minimum(scale, 1.0)
  new = [tf.clip_by_value(tf.floor(side * scale + 0.5), 1.0, canvas_size)
         for side in (height, width)]
  return tuple(tf.cast(side, tf.int32) for side in new)


def resize_to_canvas(image: Any, canvas_size: int,
                     mode: str = "pad") -> tf.Tensor:
  """float [..., H, W, C] -> float32 [..., S, S, C] (S = canvas_size).

  See the module docstring for the modes. An image that keeps its size is
  copied exactly (no resampling); the rest of the canvas is 0.
  """
  _check(canvas_size=canvas_size, mode=mode)
  image = tf.convert_to_tensor(image, tf.float32)
  shape = tf.shape(image)
  height, width = shape[-3], shape[-2]
  new_height, new_width = scaled_size(height, width, canvas_size, mode)
  resized = tf.cond(
      tf.logical_and(tf.equal(new_height, height), tf.equal(new_width, width)),
      lambda: image,
      lambda: tf.image.resize(image, tf.stack([new_height, new_width]),
                              method="bilinear", antialias=True))
  resized = tf.clip_by_value(resized, 0.0, 1.0)
  out = tf.image.pad_to_bounding_box(
      resized, (canvas_size - new_height) // 2, (canvas_size - new_width) // 2,
      canvas_size, canvas_size)
  return tf.ensure_shape(out, image.shape[:-3].concatenate(
      [canvas_size, canvas_size]).concatenate(image.shape[-1:]))


def preprocess(image: Any, channels: int, canvas_size: int,
               mode: str = "pad") -> tf.Tensor:
  """A decoded float picture in [0, 1] -> float32 [..., S, S, channels].

  Channels first: converting to grey before resizing does a third of the
  resampling work, and a colour-then-grey order gives the same values up to
  float rounding (both steps are linear per pixel).
  """
  return resize_to_canvas(to_channels(image, channels), canvas_size, mode)
