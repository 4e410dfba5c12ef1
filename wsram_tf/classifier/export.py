"""SavedModel export of a trained GlimpseClassifier, loadable without this package.

Written at the end of training and by `python -m wsram_tf.export` (the
shared scaffold, `wsram_tf/export.py`). Signatures:

- `serve(images)`: float32 [B, S, S, C] canvases of the trained size and
  channels, pixels in [0, 1] (checked in the graph: classifier/serving.py);
  deterministic glimpses (mean location, likeliest scale), unless exported
  with `deterministic=False`.
- `serve_sampled(images, seed)`: glimpses drawn from the prior with a
  stateless int32 [2] seed; probabilities average M = config.eval.num_samples
  samples, the trace is sample 0's. A seed always gives the same output.
- `serve_image_bytes(image_bytes)`: string [B] encoded image files of any
  channels, up to the run's data.max_image_pixels (read from each header
  before decoding; a larger one fails the batch naming its index),
  preprocessed as in training, then `serve`.

Each returns `probabilities` [B, classes], `locations` [B, N, 2]
((row, column) in [-1, 1]) and `scales` int32 [B, N] (indices into the
scale factors); a batch of 0 gives empty outputs of those shapes.
`config.json` and `export_info.json` (class names, data source, input
geometry) are written into the export directory next to the SavedModel.
"""

import os
from typing import Optional, Sequence

import tensorflow as tf

from wsram_tf import export
from wsram_tf.classifier import data as data_lib
from wsram_tf.classifier import glimpse
from wsram_tf.classifier import model as model_lib
from wsram_tf.classifier import networks
from wsram_tf.classifier import presets
from wsram_tf.classifier import serving


def load_from_workdir(workdir: str, weights: Optional[str] = None,
                            with_info: bool = False):
  """Rebuilds the model of a training run: returns (model, config), and the
  run's data_lib.DataInfo third if `with_info`.

  Args:
    workdir: directory holding config.json and the weights of a run.
    weights: "final" (default: final.weights.h5), "best"
      (checkpoints/best.weights.h5) or a path to a .weights.h5 file.
  """
  config_path = os.path.join(workdir, "config.json")
  config = export.load_config(config_path)
  info = data_lib.read_info(workdir, config)
  weights_path = export.resolve_weights(workdir, weights)
  # 0 in config.json means "from the data": data_info.json has the count.
  config.model.num_classes = len(info.class_names)
  try:
    model = export.build_and_load(
        lambda: presets.build_from_config(config, info.image_shape),
        weights_path, config_path)
  except ValueError as e:
    raise ValueError(
        f"{e}\nThe model was built for the {len(info.class_names)} classes "
        f"and {info.image_shape} canvases of "
        f"{os.path.join(workdir, data_lib.INFO_FILE)}; if a re-run on "
        "changed data rewrote that file (wsram before data fingerprints), "
        "restore it from the run's export/export_info.json or train anew."
    ) from e
  return (model, config, info) if with_info else (model, config)


def _outputs(prediction: model_lib.Prediction) -> dict:
  return {"probabilities": prediction.probabilities,
          "locations": prediction.locations,
          "scales": tf.cast(prediction.scales, tf.int32)}


def export_info(model, info: data_lib.DataInfo, deterministic: bool,
                num_samples: int) -> dict:
  """What a user of the SavedModel needs to read its inputs and outputs."""
  m = model
  side, _, channels = info.image_shape
  serve_samples = 1 if deterministic else num_samples
  return {
      "variant": model.variant.name,
      "class_names": list(info.class_names),
      "num_classes": len(info.class_names),
      "data_source": info.source,
      "num_skipped": info.num_skipped,
      "input": {"name": "images", "dtype": "float32",
                "shape": [None, side, side, channels],
                "values": "[0, 1]", "channels": channels,
                "note": "canvases as the training pipeline made them; "
                        "other sizes, channels or 0-255 values are "
                        "refused. Image files: serve_image_bytes."},
      "image_bytes": {"name": "image_bytes", "dtype": "string",
                      "shape": [None], "formats": "JPEG, PNG, BMP, GIF, WebP",
                      "max_pixels": int(info.max_image_pixels),
                      "preprocessing": {"channels": channels,
                                        "canvas_size": side,
                                        "resize": info.resize}},
      "signatures": {
          "serve": {"inputs": ["images"], "deterministic": deterministic,
                    "num_samples": serve_samples},
          "serve_sampled": {"inputs": ["images", "seed: int32[2]"],
                            "deterministic": False,
                            "num_samples": num_samples},
          "serve_image_bytes": {"inputs": ["image_bytes"],
                                "deterministic": deterministic,
                                "num_samples": serve_samples},
      },
      "outputs": {
          "probabilities": "float32 [B, classes]: p(y|I), mean over samples; "
                           "class k is class_names[k].",
          "locations": "float32 [B, N, 2]: glimpse centres of sample 0.",
          "scales": "int32 [B, N]: scale index k of each glimpse, sample 0.",
      },
      "glimpse": {
          "num_glimpses": int(m.num_glimpses),
          "patch_size": int(m.patch_size),
          "scale_factors": [int(f) for f in m.scale_factors],
          "window_sides": glimpse.window_sides(m.patch_size, m.scale_factors),
          "context_size": int(m.context_size),
          "locations": "(row, column) in [-1, 1]; -1 = top/left edge, +1 = "
                       "bottom/right edge; centre in pixels = (l + 1) / 2 * "
                       "(H, W).",
          "scales": "scale k reads a window of patch_size * scale_factors[k] "
                    "pixels around the centre (rounded to the pixel grid), "
                    "averaged down to patch_size x patch_size.",
      },
      "tensorflow": tf.__version__,
  }


def export_saved_model(model, export_dir: str, image_shape: Sequence[int],
                       deterministic: bool = True,
                       num_samples: Optional[int] = None,
                       info: Optional[data_lib.DataInfo] = None,
                       config=None, class_names=None) -> str:
  """Writes `model` as a SavedModel with the three signatures above.

  Args:
    model: a built `GlimpseClassifier`.
    export_dir: output directory (created; existing files are overwritten).
    image_shape: (S, S, C) of the canvases the model reads.
    deterministic: `serve` glimpses at the mode; if False it samples
      `num_samples` sequences from a seed state stored in the artefact.
    num_samples: M of the sampled paths; default model.eval_num_samples.
    info: the run's data (classes, source, resize mode); default: classes
      `class_names` (default: named by number), "pad".
    config: the experiment config, written as config.json (default: the
      model's constructor arguments, `model.get_config()`).
    class_names: without `info`, the names of the classes.

  Returns:
    `export_dir`.
  """
  image_shape = tuple(int(d) for d in image_shape)
  if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
    raise ValueError(f"image_shape must be (S, S, C), got {image_shape}.")
  info = info or data_lib.DataInfo(
      image_shape, tuple(str(k) for k in (
          class_names or range(model.num_classes))), "", "pad", 0, ())
  if len(info.class_names) != model.num_classes:
    raise ValueError(f"export: {len(info.class_names)} class names for a "
                     f"model of {model.num_classes} classes.")
  samples = int(num_samples or model.eval_num_samples)
  if samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
  # Any shape and rank: checked_images says what is wrong, not the signature.
  images_spec = tf.TensorSpec(None, tf.float32, name="images")

  def predict(images, seed=None):
    if deterministic and seed is None:
      # The mode draws no noise: a constant seed keeps the graph stateless.
      return _outputs(model.predict_with_trace(
          images, 1, True, seed=tf.zeros([2], tf.int32)))
    return _outputs(model.predict_with_trace(images, samples, False, seed))

  @tf.function(input_signature=[images_spec])
  def serve(images):
    return predict(serving.checked_images(images, image_shape))

  @tf.function(input_signature=[images_spec,
                                tf.TensorSpec([2], tf.int32, name="seed")])
  def serve_sampled(images, seed):
    return predict(serving.checked_images(images, image_shape), seed)

  # Any shape: checked_bytes says what is wrong, not the signature.
  @tf.function(input_signature=[tf.TensorSpec(None, tf.string,
                                              name="image_bytes")])
  def serve_image_bytes(image_bytes):
    return predict(serving.canvases_from_bytes(
        image_bytes, image_shape, info.resize, info.max_image_pixels))

  with networks.serving_trace():
    return export.save_functions(
        export_dir, {"serve": serve, "serve_sampled": serve_sampled,
                     "serve_image_bytes": serve_image_bytes},
        config if config is not None else model.get_config(),
        export_info(model, info, deterministic, samples))


def export_run(workdir: str, config, weights: Optional[str],
               export_dir: str, sampled: bool = False) -> str:
  """`python -m wsram_tf.export` for a classifier run: load it, export it."""
  del config  # Read again, with the weights, by load_from_workdir.
  model, config, info = load_from_workdir(workdir, weights,
                                               with_info=True)
  return export_saved_model(model, export_dir, info.image_shape,
                            deterministic=not sampled, info=info,
                            config=config)
