"""The captioner as a `run.Task` (paper §5.2, docs/design.md §5).

Reads cached frozen-CNN features (`pipelines.flickr8k.make_datasets`), trains
a `GlimpseCaptioner` (built by `presets.build_from_config`) with the
config's variant, decodes every test image (greedy or beam search,
`config.eval.beam_width`) and scores BLEU-1..4
against all its references (`bleu`). Besides the run skeleton's files, the
work directory holds `vocab.json`, the vocabulary the word ids refer to.
"""

import os

from absl import logging
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines.flickr8k_vocab import PAD
from wsram_tf import atomic
from wsram_tf import run
from wsram_tf.captioner import bleu
from wsram_tf.captioner import decoding
from wsram_tf.captioner import export
from wsram_tf.captioner import model as captioner
from wsram_tf.captioner import pictures
from wsram_tf.captioner import presets


def check_config(config) -> None:
  """Fails before any work on settings that cannot run, naming the field."""
  if config.eval.beam_width < 1:
    raise ValueError(f"config.eval.beam_width must be >= 1, got "
                     f"{config.eval.beam_width}.")
  decoding.check_length_penalty(config.eval.length_penalty)
  if config.data.max_caption_length < 3:
    raise ValueError("config.data.max_caption_length must be >= 3 (<start>, a "
                     f"word, <end>), got {config.data.max_caption_length}.")
  try:
    captioner.check_inference_word(config.model.inference_word)
  except ValueError as e:
    raise ValueError(f"config.model.{e}") from e


def make_data(config):
  """Reads and checks the data (features cached); writes nothing into the
  work directory (record_data does)."""
  data = flickr8k.make_datasets(config)
  logging.info("Captions: %d train pairs, feature maps %s, %d words.",
               data.num_train_pairs, data.feature_shapes, len(data.vocab))
  return data


def record_data(config, workdir: str, data) -> None:
  """WORKDIR/vocab.json: the words the model's ids refer to."""
  del config
  atomic.copy_file(data.vocab_path, os.path.join(workdir, "vocab.json"))


def build_model(config, data):
  """The GlimpseCaptioner of `config` for `data`'s maps and vocabulary,
  compiled for config.train."""
  return presets.build_from_config(config, data.feature_shapes,
                                   len(data.vocab), data.vocab)


def extra_callbacks(config, workdir: str, data) -> list:
  """Per-word glimpse pictures of a few fixed validation images."""
  every = config.train.glimpse_every_epochs
  if not every or not data.image_paths["val"]:
    return []
  count = min(4, len(data.image_paths["val"]))
  return [pictures.CaptionGlimpsePictures(
      pictures.load_images(data.image_paths["val"][:count],
                           config.backbone.image_size),
      pictures.first_features(data.validation_features, count),
      os.path.join(workdir, "tensorboard"), every, data.vocab,
      workdir=workdir)]


def fixed_batch(config, data):
  """The first validation pairs: (features, captions), train batch size."""
  features, captions = next(iter(data.validation.unbatch().batch(
      config.train.batch_size).take(1)))
  return features, captions


def decode_split(model, features: tf.data.Dataset, config):
  """Decodes every image of `features`: (ids [N, S] numpy, scales [N, S])."""
  e = config.eval
  steps = config.data.max_caption_length - 1
  seed = tf.constant([config.seed, 1], tf.int32)

  # Python loops over a static number of steps: nothing for AutoGraph to do.
  @tf.function(reduce_retracing=True, autograph=False)
  def run_batch(batch, seed):
    out = decoding.decode(model, batch, steps, e.beam_width,
                          e.sample_attention, seed, e.length_penalty)
    return out.ids, out.scales

  ids, scales = [], []
  for i, batch in enumerate(features):
    batch_ids, batch_scales = run_batch(batch, seed + [0, i])
    ids.append(batch_ids.numpy())
    scales.append(batch_scales.numpy())
  if not ids:
    return [], []
  return np.concatenate(ids), np.concatenate(scales)


def evaluate(model, config, data) -> dict:
  """BLEU-1..4 of the decoded test captions, and examples."""
  ids, scales = decode_split(model, data.test_features, config)
  hypotheses = decoding.to_strings(ids, data.vocab)
  scores = (bleu.corpus_bleu(hypotheses, data.test_references) if hypotheses
            else {f"bleu_{n}": 0.0 for n in range(1, bleu.MAX_ORDER + 1)})
  mask = ids != PAD if len(ids) else None
  scale_share = ([float((scales[mask] == k).mean())
                  for k in range(len(data.feature_shapes))]
                 if mask is not None and mask.any() else [])
  return {
      **scores,
      "beam_width": config.eval.beam_width,
      "length_penalty": config.eval.length_penalty,
      "sample_attention": config.eval.sample_attention,
      "num_test_images": len(hypotheses),
      # Fraction of decoded words read from each feature map (shallow first).
      "scale_share": scale_share,
      "examples": [{"image": os.path.basename(path), "caption": hypothesis,
                    "references": references}
                   for path, hypothesis, references in zip(
                       data.image_paths["test"], hypotheses,
                       data.test_references)][:config.eval.num_examples],
  }


def export_trained(model, config, data, export_dir: str) -> str:
  return export.export_saved_model(model, export.build_pyramid(config),
                                 data.vocab, export_dir, config=config)


TASK = run.Task(
    check_config=check_config, make_data=make_data, record_data=record_data,
    build_model=build_model,
    extra_callbacks=extra_callbacks, fixed_batch=fixed_batch,
    evaluate=evaluate, best_metric="val_prior_word_nll",
    export_trained=export_trained, export_run=export.export_run)
