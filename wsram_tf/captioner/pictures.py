"""Per-word glimpse pictures of the captioner (paper §5.2, Fig. 5 style).

One panel per decoded word: the image with a box on the feature-map cell the
attention read for that word, titled "t. word (map k)". The box is exactly the
cell `model.cell_indices` gathers: a cell of map k covers H / h_k x W / w_k
image pixels, so deeper (coarser) maps draw bigger boxes. Panels are laid out
in rows of `columns`, words up to and including <end>.

`CaptionGlimpsePictures` draws a few fixed validation images during training
(greedy words, attention at the prior's mode; tag "caption_glimpses", written
by the shared `picture_callback.PictureCallback`). `load_images` reads the
JPEGs the way the feature cache did (`feature_pyramid.resize_images`).
"""

from typing import List, Optional, Sequence

# The Agg canvas directly, not pyplot: no display, no global backend switch.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines.flickr8k_vocab import END
from wsram_tf import picture_callback
from wsram_tf.captioner import decoding

# One colour per scale (shallow map first): saturated, visible on photographs.
SCALE_COLOURS = ((255, 48, 48), (48, 224, 48), (48, 144, 255), (255, 165, 0))
_TITLE_PIXELS = 22
_PANEL_PIXELS = 160  # Rough side of one panel's image.
_GAP = 4
_LINE = 2  # Box outline thickness in panel pixels.
_NAME = "pictures.CaptionGlimpsePictures"


def cell_boxes(locations, scales, feature_shapes: Sequence[Sequence[int]],
               height: int, width: int) -> np.ndarray:
  """float [N, 4] (top, left, box height, box width) in image pixels.

  The cell of map `scales[n]` nearest to `locations[n]` (as the captioner
  reads it), scaled from the map's h_k x w_k grid to the H x W image.
  """
  locations, scales = picture_callback.checked_glimpses(
      locations, scales, len(feature_shapes), "pictures.cell_boxes",
      "feature maps")
  grid = np.array([[s[0], s[1]] for s in feature_shapes], np.float32)[scales]
  # Same arithmetic as model.cell_indices.
  cells = np.clip(np.floor((locations + 1.0) / 2.0 * grid), 0.0, grid - 1.0)
  size = np.array([height, width], np.float32) / grid
  return np.concatenate([cells * size, size], axis=1)


def _title_strip(text: str, width: int) -> np.ndarray:
  """uint8 RGB [_TITLE_PIXELS, width, 3]: `text` centred, black on white."""
  fig = Figure(figsize=(width / 100, _TITLE_PIXELS / 100), dpi=100)
  canvas = FigureCanvasAgg(fig)
  # Words are plain text: a "$" must not start mathtext.
  fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=9,
           parse_math=False)
  canvas.draw()
  strip = np.asarray(canvas.buffer_rgba())[..., :3]
  out = np.full((_TITLE_PIXELS, width, 3), 255, np.uint8)
  rows, cols = min(_TITLE_PIXELS, strip.shape[0]), min(width, strip.shape[1])
  out[:rows, :cols] = strip[:rows, :cols]
  return out


def _to_uint8_rgb(image) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError("pictures: image must be [H, W], [H, W, 1] or "
                     f"[H, W, 3], got shape {image.shape}.")
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  if image.dtype != np.uint8:
    image = np.clip(np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
  return image


def draw_panel(image, box, colour) -> np.ndarray:
  """The image zoomed by an integer factor with one box outline drawn on it."""
  image = _to_uint8_rgb(image)
  height, width = image.shape[:2]
  zoom = max(1, round(_PANEL_PIXELS / max(height, width)))
  panel = np.repeat(np.repeat(image, zoom, 0), zoom, 1).copy()
  top, left, box_h, box_w = (int(round(v * zoom)) for v in box)
  bottom = min(top + max(box_h, 1), panel.shape[0])
  right = min(left + max(box_w, 1), panel.shape[1])
  top, left = max(top, 0), max(left, 0)
  line = min(_LINE, max(1, bottom - top), max(1, right - left))
  panel[top:top + line, left:right] = colour
  panel[bottom - line:bottom, left:right] = colour
  panel[top:bottom, left:left + line] = colour
  panel[top:bottom, right - line:right] = colour
  return panel


def draw_caption_glimpses(image, words: Sequence[str], locations, scales,
                          feature_shapes: Sequence[Sequence[int]],
                          title: str = "", columns: int = 6) -> np.ndarray:
  """A grid of panels, one per word: uint8 RGB [H', W', 3].

  Args:
    image: [H, W, 3] (or [H, W] / [H, W, 1]) pixels in 0..255, as the CNN saw
      them (`load_images`).
    words: the word emitted at each step (N of them).
    locations: [>= N, 2] glimpse centres (row, col) in [-1, 1].
    scales: [>= N] index of the feature map read for each word.
    feature_shapes: (h_k, w_k[, c_k]) per map, shallow first.
    title: one line above the grid (e.g. the whole caption).
    columns: panels per row.
  """
  image = _to_uint8_rgb(image)
  height, width = image.shape[:2]
  words = list(words)
  count = len(words)
  locations = np.asarray(locations, np.float32).reshape(-1, 2)[:count]
  scales = np.asarray(scales).reshape(-1)[:count]
  if len(scales) < count or len(locations) < count:
    raise ValueError(f"pictures: {count} words but only "
                     f"{len(locations)} locations and {len(scales)} scales.")
  boxes = cell_boxes(locations, scales, feature_shapes, height, width)
  panels = []
  for t, (word, box, scale) in enumerate(zip(words, boxes, scales)):
    body = draw_panel(image, box, SCALE_COLOURS[int(scale) % len(
        SCALE_COLOURS)])
    panels.append(np.concatenate(
        [_title_strip(f"{t + 1}. {word} (map {int(scale)})", body.shape[1]),
         body]))
  if not panels:  # Nothing decoded: the bare image, so the grid is not empty.
    body = draw_panel(image, (0, 0, 0, 0), (255, 255, 255))
    panels.append(np.concatenate([_title_strip("(no words)", body.shape[1]),
                                  body]))
  columns = max(1, min(columns, len(panels)))
  panel_h, panel_w = panels[0].shape[:2]
  rows = -(-len(panels) // columns)
  grid = np.full((rows * (panel_h + _GAP) - _GAP,
                  columns * (panel_w + _GAP) - _GAP, 3), 255, np.uint8)
  for n, panel in enumerate(panels):
    r, c = divmod(n, columns)
    grid[r * (panel_h + _GAP):r * (panel_h + _GAP) + panel_h,
         c * (panel_w + _GAP):c * (panel_w + _GAP) + panel_w] = panel
  if title:
    grid = np.concatenate([_title_strip(title, grid.shape[1]), grid])
  return grid


def step_words(ids, vocab) -> List[str]:
  """Decoded ids [S] -> the word of every step up to and including <end>."""
  words = []
  for i in np.asarray(ids).reshape(-1):
    words.append(vocab.words[int(i)])
    if int(i) == END:
      break
  return words


def load_images(paths: Sequence[str], image_size: int) -> np.ndarray:
  """uint8 [K, S, S, 3]: JPEGs squashed to S x S as the feature cache did."""
  images = []
  for path in paths:
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f"pictures: image not found: {path}")
    image = feature_pyramid.resize_images(
        tf.io.decode_jpeg(tf.io.read_file(path), channels=3), image_size)
    images.append(tf.cast(tf.clip_by_value(tf.round(image), 0, 255),
                          tf.uint8).numpy())
  return np.stack(images) if images else np.zeros(
      (0, image_size, image_size, 3), np.uint8)


def first_features(dataset: tf.data.Dataset, count: int) -> dict:
  """The first `count` images' {"features_k"} of an ordered batched dataset."""
  parts = []
  for batch in dataset:
    parts.append(batch)
    if sum(int(b["features_0"].shape[0]) for b in parts) >= count:
      break
  if not parts:
    raise ValueError("pictures.first_features: the dataset is empty.")
  return {k: tf.concat([b[k] for b in parts], 0)[:count] for k in parts[0]}


class CaptionGlimpsePictures(picture_callback.PictureCallback):
  """Every `every_epochs` epochs and at train end, draws K fixed images.

  Args:
    images: [K, H, W, 3] 0..255 pixels the features were computed from.
    features: {"features_k": [K, h_k, w_k, c_k]} of those images.
    logdir: TensorBoard root (pictures go to `logdir/glimpses`).
    every_epochs: drawing period in epochs (>= 1).
    vocab: `pipelines.flickr8k_vocab.Vocabulary` of the word ids.
    workdir: if given, PNGs go to `<workdir>/glimpses/`.
    max_steps: words decoded; default the model's max_caption_length - 1.
  """

  def __init__(self, images, features, logdir: str, every_epochs: int, vocab,
               workdir: Optional[str] = None, max_steps: Optional[int] = None):
    super().__init__(_NAME, "caption_glimpses", logdir, every_epochs, workdir)
    self.images = np.asarray(images)
    if self.images.ndim != 4 or self.images.shape[-1] != 3:
      raise ValueError(f"{_NAME}: images must be [K, H, W, 3], got shape "
                       f"{self.images.shape}.")
    if not isinstance(features, dict) or any(
        int(v.shape[0]) != len(self.images) for v in features.values()):
      raise ValueError(f"{_NAME}: features must be a {{'features_k': "
                       f"[{len(self.images)}, h, w, c]}} dict.")
    self.features = {k: tf.convert_to_tensor(v, tf.float32)
                     for k, v in features.items()}
    self.vocab = vocab
    self.max_steps = max_steps

  def draw(self, epoch: int) -> List[np.ndarray]:
    model = self.model
    steps = self.max_steps or model.max_caption_length - 1
    out = decoding.greedy_decode(model, self.features, steps)
    ids = out.ids.numpy()
    drawn = []
    for k, image in enumerate(self.images):
      caption = self.vocab.decode(ids[k])
      drawn.append(draw_caption_glimpses(
          image, step_words(ids[k], self.vocab), out.locations[k].numpy(),
          out.scales[k].numpy(), model.feature_shapes,
          title=f"epoch {epoch}: {caption}"))
    return drawn
