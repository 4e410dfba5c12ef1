"""Tiny models of both applications, built the same way by every test.

A test helper, not a test: tests import their builders from here, never from
another test module.
"""

import keras
import numpy as np
import tensorflow as tf

from configs import captions as caption_configs
from configs import mnist as mnist_configs
from tests import toy_data
from wsram_tf.captioner import model as captioner_lib
from wsram_tf.classifier import model as classifier_lib

# -- the classifier on toy_data's 32x32 corner patterns ------------------------


def toy_config(variant: str, **train_overrides):
  """A tiny classifier config for toy_data's canvases; train.* overrides."""
  config = mnist_configs.get_config(f"{variant},tiny")
  with config.unlocked():
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
  config = toy_config(variant, **train_overrides)
  with config.unlocked():
    config.seed = seed
  keras.utils.set_random_seed(seed)
  return classifier_lib.build_model(config, (32, 32, 1))


# -- the captioner on random feature maps --------------------------------------

SHAPES = ((6, 6, 5), (3, 3, 7))  # Two feature maps, shallow first.
VOCAB = 12
# <start> words <end> <pad>..: the S = 5 steps predict columns 1..5.
CAPTIONS = np.array([[1, 5, 6, 2, 0, 0],
                     [1, 7, 2, 0, 0, 0],
                     [1, 4, 9, 4, 8, 2]], np.int32)


def captioner_config(variant: str = "wsram_qc", **model):
  """A tiny captioner config; model.* overrides."""
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


def build_captioner(variant: str = "wsram_qc", jit_compile: bool = False,
                    **model):
  """A built, compiled captioner of `captioner_config` over SHAPES, VOCAB."""
  config = captioner_config(variant, **model)
  config.train.jit_compile = jit_compile
  return captioner_lib.build_captioner(config, SHAPES, VOCAB)
