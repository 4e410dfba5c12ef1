"""Tiny Flickr8k datasets for tests, written in either layout, and a config.

Six 24x24 random JPEGs with two captions each; "zebra" is only in val/test
captions, so it must not reach a vocabulary built from training captions.
"""

import json
import os

import numpy as np
import tensorflow as tf

from wsram_tf.configs import captions as caption_configs

# name -> (split, raw captions).
DATA = {
    "a.jpg": ("train", ["A dog runs.", "The dog is running!"]),
    "b.jpg": ("train", ["A cat sits", "a CAT, sitting"]),
    "c.jpg": ("train", ["a dog and a cat", "two animals"]),
    "d.jpg": ("train", ["A red ball", "a ball on the grass"]),
    "e.jpg": ("val", ["a zebra runs", "a striped horse"]),
    "f.jpg": ("test", ["a zebra sits", "a dog sits"]),
}
LIST_FILES = {"train": "Flickr_8k.trainImages.txt",
              "val": "Flickr_8k.devImages.txt",
              "test": "Flickr_8k.testImages.txt"}
IMAGE_DIR = "Flicker8k_Dataset"


def _jpeg(seed: int) -> bytes:
  image = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), np.uint8)
  return tf.io.encode_jpeg(image).numpy()


def write_dataset(root: str, layout: str = "original",
                  data: dict | None = None, token_lines=(),
                  skip_images=()) -> str:
  """Writes `data` in a Flickr8k layout; `token_lines` are extra raw lines.

  An image whose split is None is written and captioned but in no split list
  (original layout only), as ~90 images of the real token file are.
  """
  data = DATA if data is None else data
  os.makedirs(os.path.join(root, IMAGE_DIR), exist_ok=True)
  for i, name in enumerate(data):
    if name not in skip_images:
      with open(os.path.join(root, IMAGE_DIR, name), "wb") as f:
        f.write(_jpeg(i))
  if layout == "original":
    for split, file_name in LIST_FILES.items():
      with open(os.path.join(root, file_name), "w") as f:
        f.writelines(f"{n}\n" for n, (s, _) in data.items() if s == split)
    with open(os.path.join(root, "Flickr8k.token.txt"), "w") as f:
      for name, (_, caps) in data.items():
        f.writelines(f"{name}#{k}\t{c}\n" for k, c in enumerate(caps))
      f.writelines(f"{line}\n" for line in token_lines)
  else:
    images = [{"filename": n, "split": "restval" if n == "d.jpg" else s,
               "sentences": [{"raw": c, "tokens": c.lower().split()}
                             for c in caps]} for n, (s, caps) in data.items()]
    with open(os.path.join(root, "dataset_flickr8k.json"), "w") as f:
      json.dump({"images": images, "dataset": "flickr8k"}, f)
  return root


def tiny_config(data_dir: str, cache_dir: str):
  """The `tiny` captions config at 32x32 images, T=6, batches of 4."""
  config = caption_configs.get_config("wsram_q,tiny")
  config.data.flickr8k_dir = data_dir
  config.data.cache_dir = cache_dir
  config.backbone.image_size = 32
  config.data.max_caption_length = 6
  config.train.batch_size = 4
  config.eval.batch_size = 4
  return config


def tiny_dataset_config(root: str):
  """tiny_config over a default dataset written under `root` (cache beside)."""
  return tiny_config(write_dataset(os.path.join(root, "data")),
                     os.path.join(root, "cache"))


def basenames(examples) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
  """Per split, (file name, captions) of each example: easy to compare."""
  return {s: [(os.path.basename(e.image_path), e.captions) for e in v]
          for s, v in examples.items()}
