"""Tiny models and runs of both tasks, built the same way by every test.

A test helper, not a test: tests import their builders from here, never from
another test module. The last section gives each task the same
interface (`TASKS`): a compiled model and two global batches, a run config
over tiny data written to disk, serving inputs and the outputs the model
gives them, so one test can check a guarantee over both
(tests/conformance_test.py).
"""

import os

import h5py
import keras
import numpy as np
import tensorflow as tf

from wsram_tf.configs import captions as caption_configs
from wsram_tf.configs import mnist as mnist_configs
from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import synthetic_captions
from tests import toy_data
from wsram_tf.captioner import decoding
from wsram_tf.captioner import export as captioner_export
from wsram_tf.captioner import presets as captioner_presets
from wsram_tf.classifier import export as classifier_export
from wsram_tf.classifier import presets as classifier_presets

# -- the classifier on toy_data's 32x32 corner patterns ------------------------


def toy_config(variant: str, seed: int = 0, **train_overrides):
  """A tiny classifier config for toy_data's canvases; train.* overrides."""
  config = mnist_configs.get_config(f"{variant},tiny")
  with config.unlocked():
    config.seed = seed
    config.data.canvas_size = 32
    config.model.num_classes = toy_data.NUM_CLASSES
    config.model.num_glimpses = 2
    config.model.patch_size = 8
    config.model.scale_factors = (1, 2)
    config.model.context_size = 4
    config.model.hidden_size = 64
    config.objective.num_samples = 2
    config.train.learning_rate = 3e-3
    config.train.inference_learning_rate = 3e-3
    for key, value in train_overrides.items():
      setattr(config.train, key, value)
  return config


def toy_model(variant: str, seed: int = 0, **train_overrides):
  """A built, compiled classifier of `toy_config`, seeded by `seed`."""
  config = toy_config(variant, seed, **train_overrides)
  keras.utils.set_random_seed(seed)
  return classifier_presets.build_from_config(config, (32, 32, 1))


# -- the captioner on random feature maps --------------------------------------

SHAPES = ((6, 6, 5), (3, 3, 7))  # Two feature maps, shallow first.
VOCAB = 12
# <start> words <end> <pad>..: the S = 5 steps predict columns 1..5.
CAPTIONS = np.array([[1, 5, 6, 2, 0, 0],
                     [1, 7, 2, 0, 0, 0],
                     [1, 4, 9, 4, 8, 2]], np.int32)


def captioner_config(variant: str = "wsram_qc", **model):
  """A tiny captioner config; model.* overrides (`captioner_arguments`
  gives its GlimpseCaptioner keywords)."""
  config = caption_configs.get_config(f"{variant},tiny")
  config.model.hidden_size = 8
  config.model.word_embedding_size = 4
  config.objective.num_samples = 3
  for key, value in model.items():
    config.model[key] = value
  return config


def caption_features(batch: int = 3, seed: int = 0):
  """Random {"features_k"} maps of SHAPES for `batch` images."""
  rng = np.random.default_rng(seed)
  return {f"features_{k}": tf.constant(rng.normal(size=(batch,) + s),
                                       tf.float32)
          for k, s in enumerate(SHAPES)}


# Words of the VOCAB ids: the specials, then w4..w11.
WORDS = ("<pad>", "<start>", "<end>", "<unk>") + tuple(
    f"w{i}" for i in range(4, VOCAB))


def captioner_arguments(variant: str = "wsram_qc", **model) -> dict:
  """GlimpseCaptioner keywords of `captioner_config` over SHAPES and
  VOCAB's WORDS (model.* overrides)."""
  return captioner_presets.model_arguments(
      captioner_config(variant, **model), SHAPES, VOCAB, WORDS)


def build_captioner(variant: str = "wsram_qc", jit_compile: bool = False,
                    **model):
  """A built, compiled captioner of `captioner_config` over SHAPES, VOCAB
  (with WORDS as its vocabulary), as the command line builds it."""
  config = captioner_config(variant, **model)
  config.train.jit_compile = jit_compile
  return captioner_presets.build_from_config(config, SHAPES, VOCAB, WORDS)


# -- both tasks behind one interface ------------------------------------

TASKS = ("classifier", "captioner")
# A +q+c variant, so a step updates theta, eta and the baseline.
VARIANT = "wsram_qc"


def tiny_model(task: str, seed: int = 0, jit_compile: bool = False):
  """A built, compiled model of `task` (VARIANT) for `tiny_batches`."""
  if task == "classifier":
    return toy_model(VARIANT, seed=seed, jit_compile=jit_compile)
  keras.utils.set_random_seed(seed)
  return build_captioner(VARIANT, jit_compile=jit_compile)


def tiny_batches(task: str) -> tf.data.Dataset:
  """Two global batches for `tiny_model`: 8 canvases, or 4 captions of
  different lengths (so the masking and the replicas' shares both matter)."""
  if task == "classifier":
    images, labels = toy_data.corner_patterns(16)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
  captions = np.concatenate([CAPTIONS, [[1, 3, 2, 0, 0, 0]]] * 2)
  features = caption_features(batch=len(captions), seed=5)
  return tf.data.Dataset.from_tensor_slices((features, captions)).batch(4)


def tiny_digits(num: int = 30):
  """Random blobs standing in for MNIST digits, labels 0..9 in turn."""
  rng = np.random.default_rng(0)
  digits = np.zeros((num, 28, 28), np.uint8)
  for i in range(num):
    top, left = rng.integers(4, 16, 2)
    digits[i, top:top + 8, left:left + 6] = rng.integers(128, 256)
  return digits, np.arange(num) % 10


def mnist_run_config(mnist_dir: str, **train):
  """A tiny classifier run (VARIANT) over the idx digits in `mnist_dir`;
  train.* overrides. XLA is off: compiles would dominate these few steps
  (the conformance test checks XLA apart)."""
  config = mnist_configs.get_config(f"{VARIANT},tiny")
  with config.unlocked():
    config.data.mnist_dir = mnist_dir
    config.data.canvas_size = 60
    config.data.max_digit_size = 40
    config.data.validation_size = 16
    config.model.hidden_size = 16
    config.train.batch_size = 8
    config.eval.batch_size = 16
    config.train.jit_compile = False
    config.train.update(train)
  return config


def caption_run_config(data_dir: str, cache_dir: str, variant: str = VARIANT,
                       **train):
  """A tiny captioner run of `variant` over the Flickr8k layout in
  `data_dir` (features cached in `cache_dir`); train.* overrides. XLA off."""
  config = caption_configs.get_config(f"{variant},tiny")
  config.data.flickr8k_dir = data_dir
  config.data.cache_dir = cache_dir
  config.data.verify_images = False
  config.data.max_caption_length = 8
  config.train.batch_size = 8
  config.eval.batch_size = 8
  config.train.jit_compile = False
  config.train.update(train)
  return config


def tiny_run_config(task: str, root: str, **train):
  """A config of `task` whose data this writes under `root`; train.* overrides.

  The classifier reads idx files of random digits, the captioner synthetic
  captioned images through its feature cache; no glimpse pictures.
  """
  data_dir = os.path.join(root, "data")
  train = {"glimpse_every_epochs": 0, **train}
  if task == "classifier":
    os.makedirs(data_dir, exist_ok=True)
    toy_data.write_idx_dir(data_dir, toy_data.random_mnist_arrays(80, 24))
    return mnist_run_config(data_dir, **train)
  synthetic_captions.generate(data_dir, *tiny_digits(), num_images=20,
                              image_size=64, seed=0)
  return caption_run_config(data_dir, os.path.join(root, "cache"), **train)


class KillAt(keras.callbacks.Callback):
  """Stands in for a killed process: raises once the step is reached (after
  that step's batch-end callbacks, the last one)."""

  def __init__(self, step):
    super().__init__()
    self.step = step

  def on_train_batch_end(self, batch, logs=None):
    if int(self.model.optimizer.iterations) >= self.step:
      raise KeyboardInterrupt(f"killed at step {self.step}")


def h5_weights(path: str) -> dict:
  """Every array of a .weights.h5 file by its HDF5 path."""
  arrays = {}
  with h5py.File(path, "r") as f:
    f.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                 if isinstance(item, h5py.Dataset) else None)
  return arrays


# Signature each task's export serves (float canvases, uint8 photos).
SIGNATURES = {"classifier": "serve", "captioner": "serve_uint8"}


def serving_inputs(task: str, config, count: int = 4) -> np.ndarray:
  """Random images of the kind `SIGNATURES[task]` takes."""
  rng = np.random.default_rng(3)
  if task == "classifier":
    side = config.data.canvas_size
    return rng.uniform(0, 1, (count, side, side, 1)).astype(np.float32)
  side = config.backbone.image_size
  return rng.integers(0, 256, (count, side, side, 3), np.uint8)


def served_by_model(task: str, workdir: str, images) -> dict:
  """What the export of the run in `workdir` must serve for `images`,
  computed by the model rebuilt from its final weights (numpy outputs)."""
  if task == "classifier":
    model, _ = load_run(task, workdir)
    out = model.predict_with_trace(images, deterministic=True)
    return {"probabilities": out.probabilities.numpy(),
            "locations": out.locations.numpy(), "scales": out.scales.numpy()}
  model, pyramid, vocab = load_run(task, workdir)
  maps = pyramid(feature_pyramid.resize_images(
      images, model.backbone["image_size"]))
  out = decoding.greedy_decode(model, maps, model.max_caption_length - 1)
  return {"token_ids": out.ids.numpy(), "locations": out.locations.numpy(),
          "scales": out.scales.numpy(),
          "captions": np.array(decoding.to_strings(out.ids, vocab))}


def final_weights(task: str, workdir: str) -> list:
  """The final weights of the run in `workdir`, as numpy arrays."""
  return load_run(task, workdir)[0].get_weights()


def load_run(task: str, workdir: str):
  """(model, *rest) rebuilt from the final weights of the run in `workdir`."""
  if task == "classifier":
    return classifier_export.load_from_workdir(workdir)
  return captioner_export.load_from_workdir(workdir)
