"""Glimpse pictures: drawn as boxes of the pixels read, written for viewing.

`draw_glimpses`: box n is numbered n (1-based); its side is the window side of
its scale, placed with `glimpse.window_origins`, the sensor's own geometry.
`write_pictures`: what both picture callbacks (`callbacks.GlimpsePictures`,
`caption_pictures.CaptionGlimpsePictures`) write per drawing, a TensorBoard
image summary and one PNG per picture.
"""

import os
from typing import Optional, Sequence

from matplotlib import patches
# The Agg canvas directly, not pyplot: no display, no global backend switch.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
import tensorflow as tf

from wsram_tf import glimpse

# Saturated, never grey: boxes stay visible on grey-scale canvases.
_STEP_COLOURS = ("#ff3030", "#30e030", "#3090ff", "#ffa500", "#ff40ff",
                 "#00d8d8", "#f0f020", "#a060ff")
_TITLE_PIXELS = 28
_TARGET_PIXELS = 384  # Rough side of the drawn canvas.
_DPI = 100


def glimpse_boxes(locations, scales, height: int, width: int, patch_size: int,
                  scale_factors: Sequence[int]) -> np.ndarray:
  """int [N, 3] (top, left, side) of the window each glimpse's sensor reads."""
  locations = np.asarray(locations, np.float32).reshape(-1, 2)
  scales = np.asarray(scales).reshape(-1).astype(np.int64)
  sides = glimpse.window_sides(patch_size, scale_factors)
  if len(scales) != len(locations):
    raise ValueError(f"pictures.glimpse_boxes: {len(locations)} locations but "
                     f"{len(scales)} scales.")
  if len(scales) and (scales.min() < 0 or scales.max() >= len(sides)):
    raise ValueError(f"pictures.glimpse_boxes: scales {scales.tolist()} "
                     f"outside [0, {len(sides)}).")
  origins = glimpse.window_origins(locations, height, width, patch_size,
                                   scale_factors).numpy()  # [N, K, 2]
  rows = np.arange(len(scales))
  top_left = origins[rows, scales]
  side = np.asarray(sides)[scales]
  return np.stack([top_left[:, 0], top_left[:, 1], side], axis=1)


def draw_glimpses(image, locations, scales, patch_size: int,
                  scale_factors: Sequence[int], title: str = "") -> np.ndarray:
  """The canvas with one numbered box per glimpse: uint8 RGB [H', W', 3].

  Box n (labelled n, 1-based, inside its top-left corner) covers exactly the
  pixels the sensor reads for glimpse n (`glimpse.window_origins`), so its
  side is P * f_k for scale k. Parts off the canvas are clipped. The output
  size depends only on the image size, so pictures of one run stack.

  Args:
    image: [H, W], [H, W, 1] or [H, W, 3] floats.
    locations: [N, 2] (row, column) centres in [-1, 1].
    scales: [N] scale indices.
    patch_size, scale_factors: the sensor's P and f_1..f_K.
    title: one line above the canvas.
  """
  image = np.asarray(image, np.float32)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
    raise ValueError("pictures.draw_glimpses: image must be [H, W], [H, W, 1]"
                     f" or [H, W, 3], got shape {image.shape}.")
  height, width = image.shape[:2]
  boxes = glimpse_boxes(locations, scales, height, width, patch_size,
                        scale_factors)
  zoom = max(1, round(_TARGET_PIXELS / max(height, width)))
  fig = Figure(figsize=(width * zoom / _DPI,
                        (height * zoom + _TITLE_PIXELS) / _DPI), dpi=_DPI)
  canvas = FigureCanvasAgg(fig)
  ax = fig.add_axes([0, 0, 1, height * zoom / (height * zoom + _TITLE_PIXELS)])
  low, high = float(image.min()), float(image.max())
  if high <= low:
    low, high = 0.0, 1.0
  # extent puts pixel (i, j) on [j, j+1) x [i, i+1): glimpse.py's geometry.
  ax.imshow(np.clip((image - low) / (high - low), 0, 1), cmap="gray", vmin=0,
            vmax=1, interpolation="nearest", extent=(0, width, height, 0))
  ax.set_xlim(0, width)
  ax.set_ylim(height, 0)
  ax.axis("off")
  for n, (top, left, side) in enumerate(boxes):
    colour = _STEP_COLOURS[n % len(_STEP_COLOURS)]
    ax.add_patch(patches.Rectangle((left, top), side, side, fill=False,
                                   edgecolor=colour, linewidth=2))
    ax.text(left + 0.5 + 4 / zoom, top + 0.5 + 2 / zoom, str(n + 1),
            color=colour, fontsize=9, fontweight="bold", ha="left", va="top",
            clip_on=True)
  fig.text(0.5, 1 - 0.5 * _TITLE_PIXELS / (height * zoom + _TITLE_PIXELS),
           title, ha="center", va="center", fontsize=10)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def stack_pictures(pictures: Sequence[np.ndarray]) -> np.ndarray:
  """uint8 [K, H, W, 3]: pictures padded with white to the largest H and W.

  A TensorBoard image summary takes one array; captions of different lengths
  draw grids of different sizes.
  """
  if not len(pictures):
    raise ValueError("pictures.stack_pictures: no pictures.")
  height = max(p.shape[0] for p in pictures)
  width = max(p.shape[1] for p in pictures)
  out = np.full((len(pictures), height, width, 3), 255, np.uint8)
  for n, p in enumerate(pictures):
    out[n, :p.shape[0], :p.shape[1]] = p
  return out


def write_pictures(writer, tag: str, pictures: Sequence[np.ndarray],
                   epoch: int, png_dir: Optional[str] = None) -> None:
  """Writes one drawing: a TensorBoard image summary and, optionally, PNGs.

  Args:
    writer: the `tf.summary` file writer (flushed here).
    tag: the summary's tag; its step is `epoch`.
    pictures: uint8 RGB [H_k, W_k, 3] each; the summary holds them all,
      padded with white to one size (`stack_pictures`).
    epoch: epochs done: the summary step and the PNG names.
    png_dir: if given, `png_dir/epoch_XXXX_img_YY.png` for picture YY, each
      at its own size; the folder is created.
  """
  with writer.as_default():
    tf.summary.image(tag, stack_pictures(pictures), step=epoch,
                     max_outputs=len(pictures))
  writer.flush()
  if png_dir is not None:
    tf.io.gfile.makedirs(png_dir)
    for k, picture in enumerate(pictures):
      tf.io.write_file(
          os.path.join(png_dir, f"epoch_{epoch:04d}_img_{k:02d}.png"),
          tf.io.encode_png(picture))
