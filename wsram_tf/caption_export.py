"""SavedModel export of a trained captioner, loadable without this package.

  python -m wsram_tf.caption_export --workdir=/tmp/run \
      [--export_dir=/tmp/run/export] [--weights=final|best|PATH]

The artefact is a plain `tf.Module` holding only the variables its functions
read (frozen CNN + captioner) and two traced functions: no Keras objects, no
pickled Python, so `tf.saved_model.load` alone serves it (no Keras, no
TensorFlow Probability, no `wsram_tf`). Signatures:

- `serve(images)`: float32 [None, H, W, 3] RGB in 0..255, any H, W;
- `serve_uint8(images)`: the same from uint8 (e.g. `tf.io.decode_jpeg`).

Images are squashed to the backbone's square input (as the feature cache
did), run through the frozen feature pyramid, and captioned greedily with the
attention at the prior's mode (deterministic). Outputs:
`token_ids` int32 [None, T] (words after <start>, <end>, then <pad>),
`captions` string [None] (words before <end>), `locations` float32
[None, T, 2] (row, col) in [-1, 1] and `depths` int32 [None, T] (feature map
read per word, shallow first); T = config.data.max_caption_length - 1.
`vocab.json`, `config.json` and `export_info.json` are written beside it.
"""

import json
import os
from typing import Optional

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import tensorflow as tf

from pipelines import flickr8k
from wsram_tf import caption_decoding
from wsram_tf import captioner
from wsram_tf import export
from wsram_tf import feature_pyramid


def prepare_images(images: tf.Tensor, image_size: int) -> tf.Tensor:
  """Any-size 0..255 RGB -> float32 [B, S, S, 3], squashed like the cache."""
  images = tf.cast(images, tf.float32)
  return tf.image.resize(images, (image_size, image_size), antialias=True)


def captions_from_ids(ids: tf.Tensor, words) -> tf.Tensor:
  """int [B, T] -> string [B]: `Vocabulary.decode` in graph ops."""
  ids = tf.cast(ids, tf.int32)
  before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, captioner.END),
                                          tf.int32), axis=1), 0)
  keep = before_end & tf.not_equal(ids, captioner.START) & tf.not_equal(
      ids, captioner.PAD)
  tokens = tf.gather(tf.constant(list(words), tf.string), ids)
  return tf.strings.reduce_join(tf.ragged.boolean_mask(tokens, keep), axis=1,
                                separator=" ")


def build_pyramid(config) -> feature_pyramid.FeaturePyramid:
  """The frozen CNN of config.backbone (as the feature cache built it)."""
  b = config.backbone
  return feature_pyramid.build_feature_pyramid(b.name, b.weights, b.image_size,
                                               b.taps or None, b.seed)


def export_captioner(model: captioner.AttentionCaptioner,
                     pyramid: feature_pyramid.FeaturePyramid,
                     vocab: flickr8k.Vocabulary, export_dir: str,
                     max_steps: Optional[int] = None) -> str:
  """Writes `pyramid` + `model` as a SavedModel with `serve`, `serve_uint8`.

  Args:
    model: a built captioner whose feature_shapes are the pyramid's outputs.
    pyramid: the frozen CNN the features were computed with.
    vocab: the vocabulary of the model's word ids.
    export_dir: output directory (created; existing files are overwritten).
    max_steps: words decoded; default config.data.max_caption_length - 1.

  Returns:
    `export_dir`.
  """
  config = model.config
  steps = int(max_steps or config.data.max_caption_length - 1)
  image_size = int(pyramid.model.inputs[0].shape[1])
  shapes = tuple(tuple(int(d) for d in o.shape[1:])
                 for o in pyramid.model.outputs)
  if shapes != tuple(model.feature_shapes):
    raise ValueError(f"caption_export: the backbone's maps {shapes} differ "
                     f"from the captioner's feature_shapes "
                     f"{model.feature_shapes}; check config.backbone.")
  if len(vocab) != model.vocab_size:
    raise ValueError(f"caption_export: vocabulary has {len(vocab)} words, the "
                     f"captioner {model.vocab_size}.")

  def run(images):
    maps = pyramid(prepare_images(images, image_size))
    out = caption_decoding.greedy_decode(model, maps, steps)
    return {"token_ids": out.ids,
            "captions": captions_from_ids(out.ids, vocab.words),
            "locations": out.locations,
            "depths": tf.cast(out.depths, tf.int32)}

  # Python loops over a static number of steps: nothing for AutoGraph to do.
  serve = tf.function(run, autograph=False, input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
  serve_uint8 = tf.function(run, autograph=False, input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
  concrete = [serve.get_concrete_function(),
              serve_uint8.get_concrete_function()]
  root = tf.Module()
  # Only the tf.Variables the functions read: no Keras objects in the file.
  root.model_variables = export.unique_variables(concrete)
  root.serve = serve
  root.serve_uint8 = serve_uint8
  os.makedirs(export_dir, exist_ok=True)
  tf.saved_model.save(root, export_dir, signatures={
      "serving_default": concrete[0], "serve": concrete[0],
      "serve_uint8": concrete[1]})
  vocab.save(os.path.join(export_dir, "vocab.json"))
  with open(os.path.join(export_dir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  with open(os.path.join(export_dir, "export_info.json"), "w") as f:
    json.dump(export_info(config, image_size, shapes, steps), f, indent=2)
  return export_dir


def export_info(config, image_size: int, shapes, steps: int) -> dict:
  """What a user of the SavedModel needs to read its inputs and outputs."""
  return {
      "variant": config.get("variant"),
      "input": {"name": "images", "shape": [None, None, None, 3],
                "dtype": "float32 (serve) or uint8 (serve_uint8)",
                "note": f"RGB 0..255; resized to {image_size}x{image_size}."},
      "backbone": {"name": config.backbone.name, "image_size": image_size,
                   "feature_shapes": [list(s) for s in shapes]},
      "max_steps": steps,
      "decoding": "greedy, attention at the prior's mode",
      "outputs": {
          "token_ids": "int32 [B, T]: words after <start>; <end> then <pad>.",
          "captions": "string [B]: the words before <end>.",
          "locations": "float32 [B, T, 2]: (row, col) in [-1, 1]; the cell "
                       "read is floor((l + 1) / 2 * (h_k, w_k)), clipped.",
          "depths": "int32 [B, T]: feature map k read per word (shallow "
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
                            "(train_captions copies it into the workdir).")
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
  try:
    model = captioner.build_captioner(config, shapes, len(vocab))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise ValueError(f"Cannot build the captioner from {config_path}: {e}"
                     ) from e
  try:
    model.load_weights(weights_path)
  except Exception as e:  # h5py and Keras raise many types on bad files.
    raise ValueError(
        f"Cannot load weights file {weights_path} into the captioner of "
        f"{config_path}: {type(e).__name__}: {e}") from e
  return model, pyramid, vocab


def export_from_workdir(workdir: str, export_dir: Optional[str] = None,
                        weights: Optional[str] = None) -> str:
  """The command line's work: load the run in `workdir`, export it."""
  model, pyramid, vocab = load_from_workdir(workdir, weights)
  return export_captioner(model, pyramid, vocab,
                          export_dir or os.path.join(workdir, "export"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  path = export_from_workdir(f.workdir, f.export_dir, f.weights)
  print(f"SavedModel written to {path}")


def _define_flags():
  # Defined only when run as a program, so importing this module next to
  # wsram_tf.main (which also has --workdir) cannot clash.
  flags.DEFINE_string("workdir", None,
                      "Captioning run with config.json, vocab.json, weights.")
  flags.DEFINE_string("export_dir", None, "Output; default WORKDIR/export.")
  flags.DEFINE_string("weights", None,
                      "final (default), best, or a .weights.h5 path.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
