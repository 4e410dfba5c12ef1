"""A tiny tfds image-classification dataset, prepared offline, for tests.

tfds.testing.mock_data works offline in tfds 4.9 but replaces as_dataset and
has no prepared files or split metadata: `prepare` has a small
GeneratorBasedBuilder write real tfrecords into a data_dir, unregistered
(skip_registration), so tfds.builder(NAME, data_dir) reads it as a user's
prepared copy: by files alone, without builder code.
"""

import tensorflow_datasets as tfds

from tests import image_files

NAME = "wsram_tiny_shapes"  # tfds' name of the builder class below.
CLASSES = ("circle", "square", "star")
SIZES = [(10, 12), (20, 7), (16, 16)]


def example(split: str, i: int):
  image = image_files.pattern(*SIZES[i % 3], 3, seed=[len(split), i])
  return {"image": image, "label": i % 3}


def builder_class(splits: dict):
  class WsramTinyShapes(tfds.core.GeneratorBasedBuilder,
                        skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features
                                   .FeaturesDict({
                                       "image": tfds.features.Image(
                                           shape=(None, None, 3)),
                                       "label": tfds.features.ClassLabel(
                                           names=CLASSES)}))

    def _split_generators(self, dl_manager):
      del dl_manager  # Nothing to download.
      return {s: self._generate_examples(s, n) for s, n in splits.items()}

    def _generate_examples(self, split, num):
      for i in range(num):
        yield i, example(split, i)

  return WsramTinyShapes


def prepare(data_dir: str, splits: dict) -> str:
  builder = builder_class(splits)(data_dir=data_dir)
  builder.download_and_prepare()
  return data_dir
