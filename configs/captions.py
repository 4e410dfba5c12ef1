"""Experiment configs for Flickr8k captioning (paper §5.2, docs/design.md §5).

Select a preset on the command line and override any field:

  python -m wsram_tf.main --config=configs/captions.py:wsram_q,tiny \
      --workdir=/tmp/run --config.data.flickr8k_dir=/data/flickr8k

The argument after the colon is a comma-separated list: at most one variant
(`var`, `var_c`, `wsram`, `wsram_c`, `wsram_q` (default: the paper's WS-RAM+q
of Table 2), `wsram_qc`) followed by modifiers (`tiny`). The returned
ConfigDict is locked, so a misspelt field fails at once and lists the valid
names. Without internet (ImageNet weights cannot be downloaded) use
`--config.backbone.weights=/path/to/notop.h5` or the `tiny` modifier, whose
small random CNN suits the synthetic digits dataset
(`python -m wsram_tf.pipelines.synthetic_captions --out=DIR`).
"""

import ml_collections

from wsram_tf.configs import common
from wsram_tf.configs import presets

# Variant presets: the paper's six training methods (docs/design.md §2).
VARIANTS = common.VARIANTS
# Modifiers applied after the preset.
MODIFIERS = ("tiny",)
DEFAULT_PRESET = "wsram_q"


def get_config(preset: str = DEFAULT_PRESET) -> ml_collections.ConfigDict:
  """Returns the locked config for `preset` (e.g. "wsram_q" or "var,tiny")."""
  chosen = presets.parse(preset, "configs/captions.py", VARIANTS, MODIFIERS,
                         DEFAULT_PRESET)
  config = _defaults()
  config.variant = chosen.base
  if "tiny" in chosen.modifiers:
    _tiny(config)
  config.preset = chosen.name
  config.lock()
  return config


def _defaults() -> ml_collections.ConfigDict:
  c = common.defaults("captioner", DEFAULT_PRESET)

  c.data = ml_collections.ConfigDict()
  c.data.name = "flickr8k"  # Dataset builder in pipelines/.
  # Flickr8k root: Karpathy's dataset_flickr8k.json or the original text files,
  # plus the image folder (pipelines/flickr8k.py). Required.
  c.data.flickr8k_dir = ""
  c.data.layout = "auto"  # "auto", "karpathy" or "original".
  c.data.skip_bad = False  # Skip and count bad images/lines instead of failing.
  # Original layout: captions of images in the image folder but in no split
  # list (~90 in the official token file) are not bad data, just unused by the
  # official splits: "skip" drops them with an INFO log, "error" reports them
  # as problems. Captions of images in neither are always problems.
  c.data.unlisted_captions = "skip"
  c.data.verify_images = True  # Decode every JPEG (at 1/8 scale) up front.
  c.data.cache_dir = "~/.cache/wsram"  # Feature caches go under here.
  c.data.feature_cache_dir = ""  # Use exactly this feature cache dir instead.
  c.data.feature_dtype = "float16"  # Storage of cached maps (read as float32).
  c.data.feature_batch_size = 32  # Images per CNN call while caching.
  c.data.min_word_count = 5  # Training-caption words rarer than this -> <unk>.
  # T: caption ids per example incl. <start> and <end>; longer are truncated.
  c.data.max_caption_length = 24
  c.data.max_train_images = 0  # Use only the first n train images (0: all).
  c.data.max_eval_images = 0  # Only the first n val and test images (0: all).

  c.backbone = ml_collections.ConfigDict()
  # Frozen CNN (pipelines/feature_pyramid.py): vgg16, resnet50, mobilenet_v2,
  # or small (tiny random CNN for CPU demos).
  c.backbone.name = "vgg16"
  # "imagenet" (Keras downloads it), a local notop weights file, or "" for a
  # random frozen network.
  c.backbone.weights = "imagenet"
  c.backbone.image_size = 224  # Images are resized to this square.
  # Layers whose maps are the attention's scales (); () = the backbone's
  # defaults, e.g. vgg16 block4_conv3 (28x28) and block5_conv3 (14x14).
  c.backbone.taps = ()
  c.backbone.seed = 0  # Initialisation of a random backbone (weights "").

  c.model = ml_collections.ConfigDict()
  c.model.hidden_size = 256  # Units of every hidden and recurrent layer.
  c.model.word_embedding_size = 256  # Embedding of the words fed to the LSTM.
  c.model.location_std = 0.1  # Std of the Gaussian over glimpse centres.
  c.model.learn_location_std = False  # Learn the std (starts at location_std).
  # Word given to the inference net at step t: "current" (the word being
  # predicted, docs/design.md §5) or "previous" (the paper's "the immediate
  # preceding word").
  c.model.inference_word = "current"

  c.eval.batch_size = 100  # Images (or pairs) per evaluation batch.
  # Test captions (wsram_tf/captioner/decoding.py): beam width (1: greedy), and
  # glimpses at the prior's mode (False) or sampled from it (seeded by seed).
  c.eval.beam_width = 3
  c.eval.sample_attention = False
  # Beam search length penalty alpha (GNMT, Wu et al. 2016, §7): beams are
  # ranked by log p(caption) / ((5 + len) / 6) ** alpha, len = words incl.
  # <end>. 0: off, the raw sum, which favours short captions; larger alpha
  # favours longer ones. A finite number >= 0; greedy (width 1) ignores it.
  c.eval.length_penalty = 0.0
  c.eval.num_examples = 5  # Example captions written to results.json.
  return c


def _tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds-long smoke runs: small random CNN, few images, a few steps."""
  c.data.max_train_images = 64
  c.data.max_eval_images = 16
  c.data.min_word_count = 1
  c.data.feature_batch_size = 16
  c.backbone.name = "small"
  c.backbone.weights = ""
  c.backbone.image_size = 64
  c.model.hidden_size = 32
  c.model.word_embedding_size = 16
  c.objective.num_samples = min(c.objective.num_samples, 2)
  c.eval.num_samples = 2
  c.eval.batch_size = 16
  c.eval.beam_width = 2
  c.data.max_caption_length = 12
  c.train.batch_size = 16
  c.train.num_train_steps = 4
  c.train.steps_per_epoch = 2
  c.train.checkpoint_every_steps = 2
  c.train.glimpse_every_epochs = 1
