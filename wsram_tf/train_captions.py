"""train_and_evaluate(config, workdir) for captions (paper §5.2, DESIGN §5).

Reads cached frozen-CNN features (`pipelines.flickr8k.make_datasets`), trains
`captioner.AttentionCaptioner` with the config's variant, decodes every test
image (greedy or beam search, `config.eval.beam_width`) and scores BLEU-1..4
against all its references (`wsram_tf.bleu`).

Work directory layout:
  config.json        the full config (written by main.py)
  metrics.csv        one row per epoch (train and validation per-word NLL)
  checkpoints/       ckpt-<step> backups for resume
  final.weights.h5   weights after the last step
  vocab.json         the vocabulary the word ids refer to
  results.json       BLEU-1..4, example captions, steps, variant, time
"""

import json
import os
import shutil
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from pipelines import flickr8k
from wsram_tf import bleu
from wsram_tf import callbacks as callbacks_lib
from wsram_tf import caption_pictures
from wsram_tf import caption_decoding
from wsram_tf import captioner
from wsram_tf import checkpoints
from wsram_tf import train as train_lib


def check_config(config) -> None:
  """Fails before any work on settings that cannot run, naming the field."""
  train_lib.check_config(config)
  if config.eval.beam_width < 1:
    raise ValueError(f"config.eval.beam_width must be >= 1, got "
                     f"{config.eval.beam_width}.")
  caption_decoding.check_length_penalty(config.eval.length_penalty)
  if config.data.max_caption_length < 3:
    raise ValueError("config.data.max_caption_length must be >= 3 (<start>, a "
                     f"word, <end>), got {config.data.max_caption_length}.")
  if config.model.inference_word not in captioner.INFERENCE_WORDS:
    raise ValueError(f"config.model.inference_word: unknown "
                     f"{config.model.inference_word!r}; valid: "
                     f"{captioner.INFERENCE_WORDS}.")


def decode_split(model, features: tf.data.Dataset, config):
  """Decodes every image of `features`: (ids [N, S] numpy, depths [N, S])."""
  e = config.eval
  steps = config.data.max_caption_length - 1
  seed = tf.constant([config.seed, 1], tf.int32)

  # Python loops over a static number of steps: nothing for AutoGraph to do.
  @tf.function(reduce_retracing=True, autograph=False)
  def run(batch, seed):
    out = caption_decoding.decode(model, batch, steps, e.beam_width,
                                  e.sample_attention, seed, e.length_penalty)
    return out.ids, out.depths

  ids, depths = [], []
  for i, batch in enumerate(features):
    batch_ids, batch_depths = run(batch, seed + [0, i])
    ids.append(batch_ids.numpy())
    depths.append(batch_depths.numpy())
  if not ids:
    return [], []
  return np.concatenate(ids), np.concatenate(depths)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains `config` into `workdir`; returns (and writes) results.json."""
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  keras.utils.set_random_seed(config.seed)
  strategy = train_lib.make_strategy(config.train.strategy)
  data = flickr8k.make_datasets(config)
  shutil.copyfile(data.vocab_path, os.path.join(workdir, "vocab.json"))
  logging.info("Captions: %d train pairs, feature maps %s, %d words.",
               data.num_train_pairs, data.feature_shapes, len(data.vocab))
  with strategy.scope():
    model = captioner.build_captioner(config, data.feature_shapes,
                                      len(data.vocab))
  logdir = os.path.join(workdir, "tensorboard")
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  callbacks = [
      # First: it raises before a poisoned step reaches the checkpoints.
      callbacks_lib.StopOnNonFinite(),
      keras.callbacks.CSVLogger(os.path.join(workdir, "metrics.csv"),
                                append=True),
      callbacks_lib.EpochScalars(logdir, config),
  ]
  every = config.train.glimpse_every_epochs
  if every and data.image_paths["val"]:
    count = min(4, len(data.image_paths["val"]))
    callbacks.append(caption_pictures.CaptionGlimpsePictures(
        caption_pictures.load_images(data.image_paths["val"][:count],
                                     config.backbone.image_size),
        caption_pictures.first_features(data.validation_features, count),
        logdir, every, data.vocab, workdir=workdir))
  if train_lib.profile_steps(config):
    callbacks.append(callbacks_lib.ProfileSteps(
        logdir, *train_lib.profile_steps(config)))
  callbacks += [
      checkpoints.BestCheckpoint(
          os.path.join(checkpoint_dir, "best.weights.h5"),
          monitor="val_prior_word_nll"),
      checkpoints.ResumableCheckpoint(checkpoint_dir,
                                      config.train.checkpoint_every_steps),
  ]
  steps = train_lib.fit(model, config, data.train_from, data.validation,
                        callbacks)
  model.save_weights(os.path.join(workdir, "final.weights.h5"))

  ids, depths = decode_split(model, data.test_features, config)
  hypotheses = caption_decoding.to_strings(ids, data.vocab)
  scores = (bleu.corpus_bleu(hypotheses, data.test_references) if hypotheses
            else {f"bleu_{n}": 0.0 for n in range(1, bleu.MAX_ORDER + 1)})
  mask = ids != flickr8k.Vocabulary.PAD if len(ids) else None
  depth_share = ([float((depths[mask] == k).mean())
                  for k in range(len(data.feature_shapes))]
                 if mask is not None and mask.any() else [])
  results = {
      "variant": config.variant,
      "preset": config.preset,
      **scores,
      "strategy": config.train.strategy,
      "replicas": strategy.num_replicas_in_sync,
      "beam_width": config.eval.beam_width,
      "length_penalty": config.eval.length_penalty,
      "sample_attention": config.eval.sample_attention,
      "num_test_images": len(hypotheses),
      # Fraction of decoded words read from each feature map (shallow first).
      "depth_share": depth_share,
      "examples": [{"image": os.path.basename(path), "caption": hypothesis,
                    "references": references}
                   for path, hypothesis, references in zip(
                       data.image_paths["test"], hypotheses,
                       data.test_references)][:config.eval.num_examples],
      "train_steps": steps,
      "wall_seconds": time.time() - start,
      "tensorflow": tf.__version__,
  }
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  logging.info("Results: %s", {k: v for k, v in results.items()
                               if k != "examples"})
  return results
