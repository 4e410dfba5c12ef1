"""The captioner's presets and the one map from a config to its arguments.

`model_arguments(config, feature_shapes, vocab_size, vocabulary)` turns the
model, objective, eval, data and backbone sections of a configs/captions.py
experiment config into `GlimpseCaptioner` keywords: the command line
(`task.build_model`, `export.load_from_workdir`) builds its model
through it, so a notebook and `wsram_tf.main` run the same code.
`from_preset(name, vocabulary)` builds a preset's architecture from the same
config file the command line reads (`PRESETS` names the preset string); the
feature shapes come from its backbone, built without its trained weights
(nothing is downloaded). No trained captioner weights ship: the vocabulary
is the data's, so it (or vocab_size) is an argument.
"""

from typing import NamedTuple, Optional

from wsram_tf import learning_rates
from wsram_tf.captioner import model as model_lib
from wsram_tf.pipelines import feature_pyramid


class Preset(NamedTuple):
  preset: str  # The configs/captions.py preset string after the colon.
  description: str


PRESETS = {
    "flickr8k": Preset(
        "wsram_q",
        "WS-RAM+q (the paper's Table 2) on Flickr8k: attention over VGG16's "
        "block4_conv3 (28x28) and block5_conv3 (14x14) maps of 224x224 "
        "images, a 256-unit LSTM; untrained (ImageNet backbone weights are "
        "downloaded when images are first given)."),
    "synthetic_digits": Preset(
        "wsram_q,tiny",
        "WS-RAM+q for the synthetic digits captions "
        "(pipelines/synthetic_captions.py): a small random frozen CNN on "
        "64x64 images, a 32-unit LSTM; untrained."),
}


def model_arguments(config, feature_shapes, vocab_size: int,
                    vocabulary=None) -> dict:
  """GlimpseCaptioner keywords of a configs/captions.py config, for feature
  maps of `feature_shapes` and `vocab_size` words (`vocabulary`: their
  words, a list or a `flickr8k_vocab.Vocabulary`, or None)."""
  m, o, e, b = config.model, config.objective, config.eval, config.backbone
  words = getattr(vocabulary, "words", vocabulary)
  return dict(
      feature_shapes=tuple(tuple(int(d) for d in s) for s in feature_shapes),
      vocab_size=int(vocab_size),
      vocabulary=None if words is None else list(words),
      variant=config.variant, hidden_size=m.hidden_size,
      word_embedding_size=m.word_embedding_size,
      location_std=m.location_std, learn_location_std=m.learn_location_std,
      inference_word=m.inference_word,
      max_caption_length=config.data.max_caption_length,
      backbone={"name": b.name, "weights": b.weights,
                "image_size": b.image_size, "taps": tuple(b.taps),
                "seed": b.seed},
      num_samples=o.num_samples, temperature=o.temperature,
      coverage_weight=o.coverage_weight, entropy_weight=o.entropy_weight,
      eval_num_samples=e.num_samples, eval_deterministic=e.deterministic,
      seed=config.seed)


def build_from_config(config, feature_shapes, vocab_size: int,
                      vocabulary=None):
  """The command line's model: GlimpseCaptioner(**model_arguments(...)),
  compiled for config.train (one Adam each for theta and eta, on its
  schedule)."""
  model = model_lib.GlimpseCaptioner(
      **model_arguments(config, feature_shapes, vocab_size, vocabulary))
  return learning_rates.compile_for_training(model, config.train)


def preset_config(name: str):
  """The locked experiment config of preset `name`."""
  if name not in PRESETS:
    raise ValueError(f"Unknown captioner preset {name!r}; valid: "
                     f"{', '.join(PRESETS)}.")
  from wsram_tf.configs import captions  # pylint: disable=g-import-not-at-top
  return captions.get_config(PRESETS[name].preset)


def backbone_feature_shapes(backbone) -> tuple:
  """(h_k, w_k, c_k) of the maps of config.backbone `backbone`, from the
  network built with random weights (nothing downloaded)."""
  pyramid = feature_pyramid.build_feature_pyramid(
      backbone.name, "", backbone.image_size, tuple(backbone.taps) or None,
      backbone.seed)
  return tuple(tuple(int(d) for d in o.shape[1:])
               for o in pyramid.model.outputs)


def from_preset(name: str, vocabulary=None, vocab_size: Optional[int] = None,
                **overrides):
  """An (untrained, uncompiled) GlimpseCaptioner of preset `name`.

  Args:
    name: one of PRESETS.
    vocabulary: the words of the caption ids (a list starting with <pad>
      <start> <end> <unk>, or a `flickr8k_vocab.Vocabulary`), so that
      `generate` returns strings; or None with `vocab_size`.
    vocab_size: without a vocabulary, the number of word ids.
    **overrides: constructor arguments replacing the preset's.
  """
  config = preset_config(name)
  words = getattr(vocabulary, "words", vocabulary)
  if words is None and vocab_size is None:
    raise ValueError(
        f"from_preset({name!r}): give vocabulary= (the words of your caption "
        "ids, e.g. flickr8k.Vocabulary.load('vocab.json')) or vocab_size=: "
        "the vocabulary comes from the data.")
  arguments = model_arguments(
      config, backbone_feature_shapes(config.backbone),
      len(words) if vocab_size is None else vocab_size, words)
  arguments.update(overrides)
  return model_lib.GlimpseCaptioner(**arguments)
