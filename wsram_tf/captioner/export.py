"""SavedModel export of a trained captioner, loadable without this package.

Written at the end of training and by `python -m wsram_tf.export` (the
shared scaffold, `wsram_tf/export.py`); it holds the frozen CNN and the
captioner. Signatures:

- `serve(images)`: float32 [None, H, W, C] in 0..255, any H, W;
- `serve_uint8(images)`: the same from uint8 (e.g. `tf.io.decode_jpeg`);
- `feature_maps(images)`: uint8 [None, H, W, C] -> the frozen CNN's maps
  `features_k` [None, h_k, w_k, c_k], exactly what the feature cache stored
  for the same pixels (one preprocessing for training and serving).

Input is checked inside the signatures, so a caller of the bare SavedModel
gets a message that says what is expected: C may be 1 (grey, repeated to
RGB), 2 (grey + alpha, alpha dropped), 3 (RGB) or 4 (RGBA, alpha dropped);
any other C, an empty image (H or W 0) or float pixels outside 0..255 (or
not finite) fail with an `InvalidArgumentError` naming the rule. A batch of
0 images returns outputs with 0 rows.

Images are squashed to the backbone's square input by the feature cache's
own `feature_pyramid.resize_images`, run through the frozen feature pyramid,
and captioned greedily with the attention at the prior's mode
(deterministic). Outputs:
`token_ids` int32 [None, T] (words after <start>, <end>, then <pad>),
`captions` string [None] (words before <end>), `locations` float32
[None, T, 2] (row, col) in [-1, 1] and `scales` int32 [None, T] (feature map
read per word, shallow first); T = the model's max_caption_length - 1.
`vocab.json`, `config.json` (the experiment config, or the model's
constructor arguments) and `export_info.json` are written beside it.
"""

import os
from typing import Optional

import tensorflow as tf

from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines.flickr8k_vocab import END
from wsram_tf.pipelines.flickr8k_vocab import PAD
from wsram_tf.pipelines.flickr8k_vocab import START
from wsram_tf import export
from wsram_tf.captioner import decoding
from wsram_tf.captioner import model as captioner
from wsram_tf.captioner import presets


def captions_from_ids(ids: tf.Tensor, words) -> tf.Tensor:
  """int [B, T] -> string [B]: `Vocabulary.decode` in graph ops."""
  ids = tf.cast(ids, tf.int32)
  before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END),
                                          tf.int32), axis=1), 0)
  keep = before_end & tf.not_equal(ids, START) & tf.not_equal(
      ids, PAD)
  tokens = tf.gather(tf.constant(list(words), tf.string), ids)
  return tf.strings.reduce_join(tf.ragged.boolean_mask(tokens, keep), axis=1,
                                separator=" ")


INPUT_RULE = ("images must be [batch, height, width, channels] with height, "
              "width >= 1 and channels 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 "
              "(RGBA), pixels in 0..255")


def checked_rgb(images: tf.Tensor) -> tf.Tensor:
  """Serving input -> float32 [B, H, W, 3] RGB 0..255, or a clear error.

  The checks run inside the SavedModel (tf.debugging), so a user who has
  only TensorFlow sees which rule the input broke, not a convolution error.
  """
  shape = tf.shape(images)
  batch, height, width, channels = tf.unstack(shape)
  has_pixels = tf.logical_or(
      tf.equal(batch, 0), tf.logical_and(height > 0, width > 0))
  checks = [
      tf.debugging.Assert(has_pixels, [
          f"serve: empty images: {INPUT_RULE}; got shape", shape]),
      tf.debugging.Assert(
          tf.logical_and(channels >= 1, channels <= 4),
          [f"serve: unsupported number of channels: {INPUT_RULE}; got shape",
           shape]),
  ]
  if images.dtype.is_floating:
    # 0..1 floats would pass this check, but NaN, negative or >255 pixels
    # can only be a mistake; a uint8 input is in range by construction.
    in_range = tf.reduce_all(tf.logical_and(images >= 0.0, images <= 255.0))
    checks.append(tf.debugging.Assert(in_range, [
        f"serve: pixel values out of range: {INPUT_RULE} (finite float32, "
        "0..255 like uint8, not 0..1 scaled or normalised); got min",
        tf.reduce_min(images), "max", tf.reduce_max(images)]))
  with tf.control_dependencies(checks):
    images = tf.identity(images)
  rgb = tf.cond(channels < 3,
                lambda: tf.repeat(images[..., :1], 3, axis=-1),
                lambda: images[..., :3])
  return tf.cast(tf.ensure_shape(rgb, [None, None, None, 3]), tf.float32)


def build_pyramid(config) -> feature_pyramid.FeaturePyramid:
  """The frozen CNN of config.backbone (as the feature cache built it)."""
  b = config.backbone
  return feature_pyramid.build_feature_pyramid(b.name, b.weights, b.image_size,
                                               b.taps or None, b.seed)


def export_saved_model(model: captioner.GlimpseCaptioner,
                     pyramid: Optional[feature_pyramid.FeaturePyramid],
                     vocab: Optional[flickr8k.Vocabulary], export_dir: str,
                     max_steps: Optional[int] = None, config=None) -> str:
  """Writes `pyramid` + `model` as a SavedModel with `serve`, `serve_uint8`.

  Args:
    model: a built captioner whose feature_shapes are the pyramid's outputs.
    pyramid: the frozen CNN the features were computed with; None: the
      model's own (`model.feature_pyramid()`, from its `backbone`).
    vocab: the vocabulary of the model's word ids; None: the model's.
    export_dir: output directory (created; existing files are overwritten).
    max_steps: words decoded; default the model's max_caption_length - 1.
    config: the experiment config, written as config.json (default: the
      model's constructor arguments, `model.get_config()`).

  Returns:
    `export_dir`.
  """
  if pyramid is None:
    pyramid = model.feature_pyramid()
  if vocab is None:
    if model.vocabulary is None:
      raise ValueError("export: the captioner has no vocabulary; pass vocab "
                       "or build it with vocabulary=[words].")
    vocab = flickr8k.Vocabulary(model.vocabulary)
  steps = int(max_steps or model.max_caption_length - 1)
  image_size = int(pyramid.model.inputs[0].shape[1])
  shapes = tuple(tuple(int(d) for d in o.shape[1:])
                 for o in pyramid.model.outputs)
  if shapes != tuple(model.feature_shapes):
    raise ValueError(f"export: the backbone's maps {shapes} differ "
                     f"from the captioner's feature_shapes "
                     f"{model.feature_shapes}; check config.backbone.")
  if len(vocab) != model.vocab_size:
    raise ValueError(f"export: vocabulary has {len(vocab)} words, the "
                     f"captioner {model.vocab_size}.")

  def maps_of(rgb):
    return pyramid(feature_pyramid.resize_images(rgb, image_size))

  def caption(rgb):
    out = decoding.greedy_decode(model, maps_of(rgb), steps)
    return {"token_ids": out.ids,
            "captions": captions_from_ids(out.ids, vocab.words),
            "locations": out.locations,
            "scales": tf.cast(out.scales, tf.int32)}

  def no_captions():
    return {"token_ids": tf.zeros([0, steps], tf.int32),
            "captions": tf.zeros([0], tf.string),
            "locations": tf.zeros([0, steps, 2]),
            "scales": tf.zeros([0, steps], tf.int32)}

  def run(images):
    rgb = checked_rgb(images)
    # The CNN and the resize fail on an empty batch: answer it without them.
    return tf.cond(tf.shape(rgb)[0] > 0, lambda: caption(rgb), no_captions)

  def feature_maps(images):
    rgb = checked_rgb(images)
    return tf.cond(
        tf.shape(rgb)[0] > 0,
        lambda: {f"features_{k}": m for k, m in enumerate(maps_of(rgb))},
        lambda: {f"features_{k}": tf.zeros((0,) + s)
                 for k, s in enumerate(shapes)})

  def images_spec(dtype):
    # Channels left open so that a wrong count reaches checked_rgb's message.
    return [tf.TensorSpec([None, None, None, None], dtype, name="images")]

  # Python loops over a static number of steps: nothing for AutoGraph to do.
  serve = tf.function(run, autograph=False,
                      input_signature=images_spec(tf.float32))
  serve_uint8 = tf.function(run, autograph=False,
                            input_signature=images_spec(tf.uint8))
  maps_uint8 = tf.function(feature_maps, autograph=False,
                           input_signature=images_spec(tf.uint8))
  export.save_functions(
      export_dir, {"serve": serve, "serve_uint8": serve_uint8,
                   "feature_maps": maps_uint8},
      config if config is not None else model.get_config(),
      export_info(model, pyramid, image_size, shapes, steps))
  vocab.save(os.path.join(export_dir, "vocab.json"))
  return export_dir


def export_info(model, pyramid, image_size: int, shapes, steps: int) -> dict:
  """What a user of the SavedModel needs to read its inputs and outputs."""
  return {
      "variant": model.variant.name,
      "input": {"name": "images", "shape": [None, None, None, None],
                "dtype": "float32 (serve) or uint8 (serve_uint8, "
                         "feature_maps)",
                "note": f"{INPUT_RULE}; 1-2 channels are grey (repeated to "
                        "RGB), a 4th channel is alpha (dropped); resized to "
                        f"{image_size}x{image_size}."},
      "backbone": {"name": pyramid.backbone, "image_size": image_size,
                   "feature_shapes": [list(s) for s in shapes]},
      "max_steps": steps,
      "decoding": "greedy, attention at the prior's mode",
      "feature_maps": "the frozen CNN's maps features_k [B, h_k, w_k, c_k] "
                      "of uint8 images, as the feature cache computed them.",
      "outputs": {
          "token_ids": "int32 [B, T]: words after <start>; <end> then <pad>.",
          "captions": "string [B]: the words before <end>.",
          "locations": "float32 [B, T, 2]: (row, col) in [-1, 1]; the cell "
                       "read is floor((l + 1) / 2 * (h_k, w_k)), clipped.",
          "scales": "int32 [B, T]: feature map k read per word (shallow "
                    "first); a cell of map k spans image_size / h_k pixels.",
      },
      "tensorflow": tf.__version__,
  }


def load_from_workdir(workdir: str, weights: Optional[str] = None):
  """(captioner, pyramid, vocab) of a captioning run in `workdir`."""
  config_path = os.path.join(workdir, "config.json")
  config = export.load_config(config_path)
  vocab_path = os.path.join(workdir, flickr8k.VOCAB_FILE)
  if not os.path.isfile(vocab_path):
    raise FileNotFoundError(f"Vocabulary file not found: {vocab_path} "
                            "(training copies it into the workdir).")
  try:
    vocab = flickr8k.Vocabulary.load(vocab_path)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"Cannot read vocabulary file {vocab_path}: {e}") from e
  weights_path = export.resolve_weights(workdir, weights)
  if "backbone" not in config:
    raise ValueError(f"Config file {config_path} has no 'backbone' section; is "
                     "it a captioning run (configs/captions.py)?")
  pyramid = build_pyramid(config)
  shapes = [tuple(int(d) for d in o.shape[1:]) for o in pyramid.model.outputs]
  model = export.build_and_load(
      lambda: presets.build_from_config(config, shapes, len(vocab), vocab),
      weights_path, config_path)
  return model, pyramid, vocab


def export_run(workdir: str, config, weights: Optional[str],
               export_dir: str, sampled: bool = False) -> str:
  """`python -m wsram_tf.export` for a captioning run: load it, export it."""
  if sampled:
    raise ValueError("export: --sampled is the classifier's; the captioner "
                     "exports greedy decoding with attention at the mode.")
  model, pyramid, vocab = load_from_workdir(workdir, weights)
  return export_saved_model(model, pyramid, vocab, export_dir, config=config)
