"""SavedModel export of a trained WSRAM classifier, loadable without this package.

Written at the end of training and by `python -m wsram_tf.export` (the
shared scaffold, `wsram_tf/export.py`). Signatures, all taking `images`
float32 [None, H, W, C]:

- `serve(images)`: deterministic glimpses (mean location, likeliest scale),
  unless exported with `deterministic=False`.
- `serve_sampled(images, seed)`: glimpses drawn from the prior with a
  stateless int32 [2] seed; probabilities average M = config.eval.num_samples
  samples, the trace is sample 0's. A seed always gives the same output.

Each returns `probabilities` [None, classes], `locations` [None, N, 2]
((row, column) in [-1, 1]) and `scales` int32 [None, N] (indices into the
scale factors). `config.json` and `export_info.json` (geometry needed to read
the locations) are written into the export directory next to the SavedModel.
"""

import os
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from wsram_tf import export
from wsram_tf.classifier import glimpse
from wsram_tf.classifier import model as model_lib


def image_shape_from_config(config) -> Tuple[int, int, int]:
  """The (H, W, C) the model reads: a square single-channel canvas."""
  side = int(config.data.canvas_size)
  return (side, side, 1)


def load_model_from_workdir(workdir: str, weights: Optional[str] = None):
  """Rebuilds the model of a training run: returns (model, config).

  Args:
    workdir: directory holding config.json and the weights of a run.
    weights: "final" (default: final.weights.h5), "best"
      (checkpoints/best.weights.h5) or a path to a .weights.h5 file.
  """
  config_path = os.path.join(workdir, "config.json")
  config = export.load_config(config_path)
  weights_path = export.resolve_weights(workdir, weights)
  model = export.build_and_load(
      lambda: model_lib.build_model(config, image_shape_from_config(config)),
      weights_path, config_path)
  return model, config


def _outputs(prediction: model_lib.Prediction) -> dict:
  return {"probabilities": prediction.probabilities,
          "locations": prediction.locations,
          "scales": tf.cast(prediction.scales, tf.int32)}


def export_info(config, image_shape: Sequence[int], deterministic: bool,
                num_samples: int) -> dict:
  """What a user of the SavedModel needs to read its inputs and outputs."""
  m = config.model
  return {
      "variant": config.get("variant"),
      "input": {"name": "images", "dtype": "float32",
                "shape": [None] + [int(d) for d in image_shape],
                "note": "pixels as the training pipeline made them "
                        "([0, 1] for translated MNIST)."},
      "num_classes": int(m.num_classes),
      "signatures": {
          "serve": {"inputs": ["images"], "deterministic": deterministic,
                    "num_samples": 1 if deterministic else num_samples},
          "serve_sampled": {"inputs": ["images", "seed: int32[2]"],
                            "deterministic": False,
                            "num_samples": num_samples},
      },
      "outputs": {
          "probabilities": "float32 [B, classes]: p(y|I), mean over samples.",
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
                       num_samples: Optional[int] = None) -> str:
  """Writes `model` as a SavedModel with `serve` and `serve_sampled`.

  Args:
    model: a built `WSRAM`.
    export_dir: output directory (created; existing files are overwritten).
    image_shape: (H, W, C) of the images the model reads.
    deterministic: `serve` glimpses at the mode; if False it samples
      `num_samples` sequences from a seed state stored in the artefact.
    num_samples: M of the sampled paths; default config.eval.num_samples.

  Returns:
    `export_dir`.
  """
  if len(image_shape) != 3:
    raise ValueError(f"image_shape must be (H, W, C), got {image_shape}.")
  config = model.config
  samples = int(num_samples or config.eval.num_samples)
  if samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
  images_spec = tf.TensorSpec([None] + [int(d) for d in image_shape],
                              tf.float32, name="images")

  @tf.function(input_signature=[images_spec])
  def serve(images):
    if deterministic:
      # The mode draws no noise: a constant seed keeps the graph stateless.
      return _outputs(model.predict_with_trace(
          images, 1, True, seed=tf.zeros([2], tf.int32)))
    return _outputs(model.predict_with_trace(images, samples, False))

  @tf.function(input_signature=[images_spec,
                                tf.TensorSpec([2], tf.int32, name="seed")])
  def serve_sampled(images, seed):
    return _outputs(model.predict_with_trace(images, samples, False, seed))

  return export.save_functions(
      export_dir, {"serve": serve, "serve_sampled": serve_sampled}, config,
      export_info(config, image_shape, deterministic, samples))


def export_run(workdir: str, config, weights: Optional[str],
               export_dir: str, sampled: bool = False) -> str:
  """`python -m wsram_tf.export` for a classifier run: load it, export it."""
  del config  # Read again, with the weights, by load_model_from_workdir.
  model, config = load_model_from_workdir(workdir, weights)
  return export_saved_model(model, export_dir, image_shape_from_config(config),
                            deterministic=not sampled)
