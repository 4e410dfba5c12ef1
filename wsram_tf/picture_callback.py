"""Pictures drawn during training: when to draw, and how a drawing is written.

`PictureCallback` holds the epoch logic both tasks' picture callbacks
share (every `every_epochs` epochs and once more at train end, never twice
for one epoch); a subclass only draws (`draw(epoch)` -> uint8 RGB pictures).
Each drawing becomes one TensorBoard image summary under `logdir/glimpses`
(step = epochs done) and, given `workdir`, one PNG per picture:
`<workdir>/glimpses/epoch_XXXX_img_YY.png`.
"""

import os
from typing import List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from wsram_tf import atomic


class PictureCallback(keras.callbacks.Callback):
  """Every `every_epochs` epochs and at train end, writes `draw(epoch)`."""

  def __init__(self, name: str, tag: str, logdir: str, every_epochs: int,
               workdir: Optional[str] = None):
    super().__init__()
    if (isinstance(every_epochs, bool) or not isinstance(every_epochs, int)
        or every_epochs < 1):
      raise ValueError(f"{name}: every_epochs must be an int >= 1, got "
                       f"{every_epochs!r} (leave the callback out to turn it "
                       "off).")
    self.every_epochs = every_epochs
    self.tag = tag
    self.logdir = os.path.join(logdir, "glimpses")
    self.png_dir = None if workdir is None else os.path.join(workdir,
                                                             "glimpses")
    self._writer = None
    self._epochs_done = 0
    self._last_written = None

  def draw(self, epoch: int) -> List[np.ndarray]:
    """The pictures of `epoch` (uint8 RGB [H_k, W_k, 3] each)."""
    raise NotImplementedError

  def on_epoch_end(self, epoch, logs=None):
    self._epochs_done = epoch + 1
    if self._epochs_done % self.every_epochs == 0:
      self.write(self._epochs_done)

  def on_train_end(self, logs=None):
    if self._epochs_done and self._last_written != self._epochs_done:
      self.write(self._epochs_done)
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def write(self, epoch: int) -> List[np.ndarray]:
    """Draws the pictures of `epoch` now and writes them; returns them."""
    drawn = self.draw(epoch)
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self.logdir)
    write_pictures(self._writer, self.tag, drawn, epoch, self.png_dir)
    self._last_written = epoch
    return drawn


def checked_glimpses(locations, scales, num_scales: int, where: str,
                     scale_noun: str = ""):
  """(float32 [N, 2], int64 [N]): `locations` and `scales`, one per glimpse.

  Raises ValueError, naming `where`, unless there are as many scales as
  locations and every scale is in [0, num_scales); `scale_noun` (e.g.
  "feature maps") follows the range in the message.
  """
  locations = np.asarray(locations, np.float32).reshape(-1, 2)
  scales = np.asarray(scales).reshape(-1).astype(np.int64)
  if len(scales) != len(locations):
    raise ValueError(f"{where}: {len(locations)} locations but "
                     f"{len(scales)} scales.")
  if len(scales) and (scales.min() < 0 or scales.max() >= num_scales):
    noun = f" {scale_noun}" if scale_noun else ""
    raise ValueError(f"{where}: scales {scales.tolist()} "
                     f"outside [0, {num_scales}){noun}.")
  return locations, scales


def stack_pictures(pictures: Sequence[np.ndarray]) -> np.ndarray:
  """uint8 [K, H, W, 3]: pictures padded with white to the largest H and W.

  A TensorBoard image summary takes one array; captions of different lengths
  draw grids of different sizes.
  """
  if not len(pictures):
    raise ValueError("picture_callback.stack_pictures: no pictures.")
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
    for k, picture in enumerate(pictures):
      # Whole or absent after a kill: a viewer never opens a torn PNG.
      atomic.write_bytes(
          os.path.join(png_dir, f"epoch_{epoch:04d}_img_{k:02d}.png"),
          tf.io.encode_png(picture).numpy())
