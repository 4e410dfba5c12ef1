"""Glimpse pictures: drawn as boxes of the pixels read, written for viewing.

`draw_glimpses`: box n is numbered n (1-based); its side is the window side of
its scale, placed with `glimpse.window_origins`, the sensor's own geometry.
`GlimpsePictures` draws a few fixed validation canvases during training
(written by the shared `picture_callback.PictureCallback`).
"""

from typing import List, Optional, Sequence

from matplotlib import patches
# The Agg canvas directly, not pyplot: no display, no global backend switch.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
import tensorflow as tf

from wsram_tf import picture_callback
from wsram_tf.classifier import glimpse

# Saturated, never grey: boxes stay visible on grey-scale canvases.
_STEP_COLOURS = ("#ff3030", "#30e030", "#3090ff", "#ffa500", "#ff40ff",
                 "#00d8d8", "#f0f020", "#a060ff")
_TITLE_PIXELS = 28
_TARGET_PIXELS = 384  # Rough side of the drawn canvas.
_DPI = 100


def glimpse_boxes(locations, scales, height: int, width: int, patch_size: int,
                  scale_factors: Sequence[int]) -> np.ndarray:
  """int [N, 3] (top, left, side) of the window each glimpse's sensor reads."""
  sides = glimpse.window_sides(patch_size, scale_factors)
  locations, scales = picture_callback.checked_glimpses(
      locations, scales, len(sides), "pictures.glimpse_boxes")
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


class GlimpsePictures(picture_callback.PictureCallback):
  """Every `every_epochs` epochs and at train end, draws K fixed canvases.

  Pictures use `model.predict_with_trace` (deterministic: mean location and
  likeliest scale, by default) with seed [seed, epoch]. Titles give the
  predicted class, its probability and the true class.
  """

  def __init__(self, images, labels, logdir: str, every_epochs: int,
               class_names: Optional[Sequence[str]] = None,
               deterministic: bool = True, workdir: Optional[str] = None,
               seed: int = 0):
    super().__init__("pictures.GlimpsePictures", "glimpses", logdir,
                     every_epochs, workdir)
    images = tf.convert_to_tensor(images, tf.float32)
    labels = tf.convert_to_tensor(labels, tf.int32)
    if images.shape.rank != 4 or labels.shape.rank != 1 or (
        images.shape[0] != labels.shape[0]):
      raise ValueError("pictures.GlimpsePictures: need images [K, H, W, C] and"
                       f" labels [K], got {images.shape} and {labels.shape}.")
    self.images, self.labels = images, labels
    self.class_names = None if class_names is None else list(class_names)
    self.deterministic = deterministic
    self.seed = seed

  def _name(self, label: int) -> str:
    return str(label) if self.class_names is None else self.class_names[label]

  def draw(self, epoch: int) -> List[np.ndarray]:
    m = self.model
    out = self.model.predict_with_trace(
        self.images, deterministic=self.deterministic,
        seed=tf.constant([self.seed, epoch], tf.int32))
    probabilities = out.probabilities.numpy()
    drawn = []
    for k, label in enumerate(self.labels.numpy()):
      guess = int(np.argmax(probabilities[k]))
      title = (f"epoch {epoch}: predicted {self._name(guess)} "
               f"({probabilities[k, guess]:.2f}), true {self._name(label)}")
      drawn.append(draw_glimpses(self.images[k].numpy(),
                                 out.locations[k].numpy(),
                                 out.scales[k].numpy(), m.patch_size,
                                 m.scale_factors, title))
    return drawn
