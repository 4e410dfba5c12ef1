"""Glimpse sensor x = g(a, I) and low-resolution context view (docs/design.md §1).

Pixel geometry, the single definition shared by the sensor and by anything that
draws glimpse boxes:

- An H x W image spans [0, H] x [0, W] in continuous coordinates; pixel (i, j)
  covers [i, i+1) x [j, j+1).
- A location l = (row, column) in [-1, 1]^2 (-1 = top / left edge, +1 = bottom /
  right edge) has its centre at c = (l + 1) / 2 * (H, W) pixels, computed in
  float32 in exactly that order.
- With patch side P and scale factors f_1..f_K, scale k reads a window of side
  s_k = P * f_k pixels. The largest window, of side Wmax = max_k s_k, has the
  integer top-left corner t = floor(c - Wmax / 2 + 0.5) (its centre rounded to
  the pixel grid; float32, `c - (Wmax / 2 - 0.5)` is one rounding); the window
  of side s_k sits nested in it at t + (Wmax - s_k) // 2.
- The window of scale k is averaged over f_k x f_k blocks down to P x P;
  pixels outside the image read as 0 and count as zeros in the mean.

Cost grows with the window area, not the image area: one gather of the largest
window per (image, sample) from the flattened image serves every scale, and
each scale is a static slice of it.
"""

import numbers
from typing import List, Sequence

import tensorflow as tf


def window_sides(patch_size: int, scale_factors: Sequence[int]) -> List[int]:
  """Side in pixels of the window each scale reads: P * f_k."""
  _check_args(patch_size, scale_factors)
  return [int(patch_size) * int(f) for f in scale_factors]


def locations_to_pixels(locations, height, width) -> tf.Tensor:
  """Continuous pixel centre (row, column) of [-1, 1] locations [..., 2].

  `height` and `width` may be Python ints or scalar tensors. Returns float32.
  """
  locations = tf.cast(locations, tf.float32)
  size = tf.stack([tf.cast(height, tf.float32), tf.cast(width, tf.float32)])
  return (locations + 1.0) / 2.0 * size


def window_origins(locations, height, width, patch_size: int,
                   scale_factors: Sequence[int]) -> tf.Tensor:
  """Integer top-left (row, column) of every scale's window: int32 [..., K, 2].

  The box of scale k covers rows [o, o + s_k) and columns likewise, with
  s_k = window_sides(...)[k]: exactly the pixels `extract_glimpses` reads.
  Origins of windows far outside the image are clamped to [-Wmax, size] (such
  windows still lie wholly outside, so they read the same zeros).
  """
  sides = window_sides(patch_size, scale_factors)
  top_left = _largest_origin(locations, height, width, max(sides))
  offsets = tf.constant([(max(sides) - s) // 2 for s in sides], tf.int32)
  return top_left[..., tf.newaxis, :] + offsets[:, tf.newaxis]


def extract_glimpses(images, locations, scale_index, patch_size: int,
                     scale_factors: Sequence[int]) -> tf.Tensor:
  """Reads S glimpses per image: [B, S, P, P, C] in the dtype of `images`.

  Args:
    images: float [B, H, W, C]; H, W need not be equal nor static.
    locations: float [B, S, 2] glimpse centres (row, column) in [-1, 1];
      values outside [-1, 1] are allowed (the window hangs off the image).
    scale_index: int [B, S] in [0, K); an index outside that range yields an
      all-zero glimpse.
    patch_size: P, the side of the returned patch.
    scale_factors: K positive ints; scale k reads P * f_k pixels per side.
  """
  scale_factors = list(scale_factors)
  _check_args(patch_size, scale_factors)
  images = tf.convert_to_tensor(images)
  locations = tf.convert_to_tensor(locations)
  scale_index = tf.convert_to_tensor(scale_index)
  _check_rank("images", images, 4)
  _check_rank("locations", locations, 3)
  _check_rank("scale_index", scale_index, 2)
  if not images.dtype.is_floating:
    raise ValueError("glimpse.extract_glimpses: images must be floating "
                     f"point, got {images.dtype.name}.")
  if locations.shape[-1] is not None and locations.shape[-1] != 2:
    raise ValueError("glimpse.extract_glimpses: locations must be [B, S, 2] "
                     f"(row, column), got shape {locations.shape}.")
  if not locations.shape[:2].is_compatible_with(scale_index.shape):
    raise ValueError("glimpse.extract_glimpses: scale_index must be [B, S] "
                     f"like locations[..., 0], got {scale_index.shape} vs "
                     f"{locations.shape}.")

  patch_size, scale_factors = int(patch_size), [int(f) for f in scale_factors]
  sides = window_sides(patch_size, scale_factors)
  wmax = max(sides)
  batch, height, width, channels = _dims(images)
  samples = _dims(locations)[1]

  # [B, S, 2] integer top-left of the largest window.
  origin = _largest_origin(locations, height, width, wmax)
  steps = tf.range(wmax, dtype=tf.int32)
  rows = origin[..., 0:1] + steps  # [B, S, Wmax]
  cols = origin[..., 1:2] + steps
  row_ok = (rows >= 0) & (rows < height)
  col_ok = (cols >= 0) & (cols < width)
  rows = tf.clip_by_value(rows, 0, height - 1)
  cols = tf.clip_by_value(cols, 0, width - 1)
  # Flat index into [B*H*W, C]: one gather of Wmax^2 pixels per glimpse.
  # int32 unless the image batch is known to hold 2^31 pixels or more.
  static = [batch, height, width]
  if all(isinstance(d, int) for d in static) and (
      batch * height * width >= 2**31):
    rows, cols = tf.cast(rows, tf.int64), tf.cast(cols, tf.int64)
  base = tf.range(batch, dtype=rows.dtype)[:, None, None] * (height * width)
  flat = ((base + rows * width)[..., :, None] + cols[..., None, :])
  window = tf.gather(tf.reshape(images, [-1, channels]), tf.reshape(flat, [-1]))
  count = batch * samples
  valid = tf.reshape(row_ok[..., :, None] & col_ok[..., None, :],
                     [count, wmax, wmax])
  glimpse = _pool_scales(window, valid, tf.reshape(scale_index, [count]),
                         count, channels, patch_size, scale_factors)
  return tf.reshape(glimpse,
                    [batch, samples, patch_size, patch_size, channels])


def _pool_scales(window, valid, scale_index, count, channels,
                 patch_size: int, scale_factors: List[int]) -> tf.Tensor:
  """[count, P, P, C] glimpses from the gathered largest windows.

  `window` holds the count * Wmax^2 gathered pixels [.., C] of the largest
  windows (row-major), `valid` [count, Wmax, Wmax] marks those inside the
  image, `scale_index` [count] picks each glimpse's scale.
  """
  wmax = patch_size * max(scale_factors)
  zero = tf.zeros([], window.dtype)
  # tf.where, not a product: a clipped read must be 0 even if it is inf/nan.
  one_channel = isinstance(channels, int) and channels == 1
  if one_channel:
    # avg_pool is an XLA reduce-window, which XLA does not fuse with the
    # gather: the window is gathered once, instead of once per scale and
    # output pixel as with a fused reduce_mean (sensor 2.4x, default train
    # step 1.13x faster; benchmarks/RESULTS.md).
    window = tf.where(valid[..., None],
                      tf.reshape(window, [count, wmax, wmax, 1]), zero)
    crop = lambda lo, side: window[:, lo:lo + side, lo:lo + side, :]
    pool = lambda x, f: tf.nn.avg_pool2d(x, f, f, "VALID")
    glimpse = tf.zeros([count, patch_size, patch_size, 1], window.dtype)
  else:
    # Pool channels-first: with C > 1 as the minor dimension XLA's CPU
    # layouts make the pooling 2-6x slower (measured).
    window = tf.transpose(tf.reshape(window, [count, wmax * wmax, channels]),
                          [0, 2, 1])
    window = tf.where(valid[:, None],
                      tf.reshape(window, [count, channels, wmax, wmax]), zero)
    crop = lambda lo, side: window[..., lo:lo + side, lo:lo + side]
    pool = lambda x, f: tf.reduce_mean(tf.reshape(
        x, [count, channels, patch_size, f, patch_size, f]), axis=[3, 5])
    glimpse = tf.zeros([count, channels, patch_size, patch_size],
                       window.dtype)

  flat_scale = tf.reshape(tf.cast(scale_index, tf.int32), [count, 1, 1, 1])
  for k, factor in enumerate(scale_factors):
    side = patch_size * factor
    pooled = crop((wmax - side) // 2, side)
    if factor > 1:
      pooled = pool(pooled, factor)
    glimpse = tf.where(flat_scale == k, pooled, glimpse)
  return glimpse if one_channel else tf.transpose(glimpse, [0, 2, 3, 1])


def context_view(images, size: int) -> tf.Tensor:
  """Low-resolution view of the whole image: [B, size, size, C].

  Per axis, takes the largest centred crop whose side is a multiple of `size`
  (floor(H / size) * size rows from (H - crop) // 2) and averages it over
  (H // size) x (W // size) blocks. For 100x100 and size 12: the centre 96x96
  pooled by 8 (docs/design.md §6). An image smaller than `size` raises ValueError
  (InvalidArgumentError if its shape is only known at run time; XLA drops
  that run-time check).
  """
  if not _is_positive_int(size):
    raise ValueError(f"glimpse.context_view: size must be an int >= 1, got "
                     f"{size!r}.")
  images = tf.convert_to_tensor(images)
  _check_rank("images", images, 4)
  batch, height, width, channels = _dims(images)
  for name, extent in (("height", height), ("width", width)):
    if isinstance(extent, int) and extent < size:
      raise ValueError(f"glimpse.context_view: image {name} {extent} is "
                       f"smaller than the context size {size}.")
  if not isinstance(height, int) or not isinstance(width, int):
    tf.debugging.assert_greater_equal(
        tf.minimum(height, width), size,
        message=f"glimpse.context_view: image smaller than context size {size}")
  size = int(size)
  fh, fw = height // size, width // size
  top, left = (height - fh * size) // 2, (width - fw * size) // 2
  crop = images[:, top:top + fh * size, left:left + fw * size, :]
  return tf.reduce_mean(
      tf.reshape(crop, [batch, size, fh, size, fw, channels]), axis=[2, 4])


def _largest_origin(locations, height, width, wmax: int) -> tf.Tensor:
  """int32 [..., 2] top-left of the largest window, clamped to a safe range."""
  centre = locations_to_pixels(locations, height, width)
  top_left = tf.floor(centre - (wmax / 2.0 - 0.5))
  # Clamp before the int cast: huge locations must not overflow, and any
  # origin beyond [-Wmax, size] reads only zeros either way.
  size = tf.stack([tf.cast(height, tf.float32), tf.cast(width, tf.float32)])
  top_left = tf.clip_by_value(top_left, -float(wmax), size)
  return tf.cast(top_left, tf.int32)


def _dims(x: tf.Tensor) -> list:
  """Static dims where known, scalar tensors otherwise."""
  dynamic = tf.shape(x)
  return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def _check_rank(name: str, x: tf.Tensor, rank: int) -> None:
  if x.shape.rank is not None and x.shape.rank != rank:
    raise ValueError(f"glimpse: {name} must have rank {rank}, got shape "
                     f"{x.shape}.")


def _is_positive_int(x) -> bool:
  return (isinstance(x, numbers.Integral) and not isinstance(x, bool)
          and x >= 1)


def _check_args(patch_size: int, scale_factors: Sequence[int]) -> None:
  if not _is_positive_int(patch_size):
    raise ValueError(f"glimpse: patch_size must be an int >= 1, got "
                     f"{patch_size!r}.")
  factors = list(scale_factors)
  if not factors:
    raise ValueError("glimpse: scale_factors must be non-empty.")
  if not all(_is_positive_int(f) for f in factors):
    raise ValueError(f"glimpse: scale_factors must be positive ints, got "
                     f"{tuple(factors)!r}.")
