"""SavedModel export of a trained WSRAM, loadable without this package.

  python -m wsram_tf.export --workdir=/tmp/run [--export_dir=/tmp/run/export] \
      [--weights=final|best|PATH] [--sampled]

The artefact is a plain `tf.Module`: the model's variables and two traced
functions, no Keras objects, Lambda layers or pickled Python, so
`tf.saved_model.load` alone serves it (no Keras, no TensorFlow Probability,
no `wsram_tf`). Signatures, all taking `images` float32 [None, H, W, C]:

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

import json
import os
from typing import Optional, Sequence, Tuple

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import ml_collections
import tensorflow as tf

from wsram_tf import glimpse
from wsram_tf import model as model_lib

WEIGHT_FILES = {"final": "final.weights.h5",
                "best": os.path.join("checkpoints", "best.weights.h5")}


def image_shape_from_config(config) -> Tuple[int, int, int]:
  """The (H, W, C) the model reads: a square single-channel canvas."""
  side = int(config.data.canvas_size)
  return (side, side, 1)


def _tuples(value):
  # to_json_best_effort writes tuples (e.g. model.scale_factors) as lists.
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(path: str) -> ml_collections.ConfigDict:
  """Reads a config.json written by `ConfigDict.to_json_best_effort`."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Config file not found: {path}")
  try:
    with open(path) as f:
      raw = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"Cannot read config file {path}: {e}") from e
  if not isinstance(raw, dict) or "model" not in raw or "data" not in raw:
    raise ValueError(f"Config file {path} has no 'model' and 'data' sections; "
                     "is it a wsram config.json?")
  return ml_collections.ConfigDict(_tuples(raw))


def resolve_weights(workdir: str, weights: Optional[str] = None) -> str:
  """The weights file: "final" (default), "best" or an explicit path."""
  name = weights or "final"
  path = os.path.join(workdir, WEIGHT_FILES[name]) if name in WEIGHT_FILES \
      else name
  if not os.path.isfile(path):
    present = [k for k, f in WEIGHT_FILES.items()
               if os.path.isfile(os.path.join(workdir, f))]
    hint = (f" Weights present in {workdir}: "
            f"{', '.join(present)} (pass weights=/--weights= one of them)."
            if present else "")
    raise FileNotFoundError(f"Weights file not found: {path}.{hint}")
  return path


def load_model_from_workdir(workdir: str, weights: Optional[str] = None):
  """Rebuilds the model of a training run: returns (model, config).

  Args:
    workdir: directory holding config.json and the weights of a run.
    weights: "final" (default: final.weights.h5), "best"
      (checkpoints/best.weights.h5) or a path to a .weights.h5 file.
  """
  config_path = os.path.join(workdir, "config.json")
  config = load_config(config_path)
  weights_path = resolve_weights(workdir, weights)
  try:
    model = model_lib.build_model(config, image_shape_from_config(config))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise ValueError(f"Cannot build the model from {config_path}: {e}") from e
  try:
    model.load_weights(weights_path)
  except Exception as e:  # h5py and Keras raise many types on bad files.
    raise ValueError(
        f"Cannot load weights file {weights_path} into the model of "
        f"{config_path}: {type(e).__name__}: {e}") from e
  return model, config


def unique_variables(functions) -> list:
  seen, out = set(), []
  for fn in functions:
    for v in fn.variables:
      if v.ref() not in seen:
        seen.add(v.ref())
        out.append(v)
  return out


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

  concrete = [serve.get_concrete_function(),
              serve_sampled.get_concrete_function()]
  root = tf.Module()
  # Only the variables the functions read (tf.Variables under the Keras
  # wrappers): the artefact holds no Keras objects.
  root.model_variables = unique_variables(concrete)
  root.serve = serve
  root.serve_sampled = serve_sampled
  os.makedirs(export_dir, exist_ok=True)
  tf.saved_model.save(root, export_dir, signatures={
      "serving_default": concrete[0], "serve": concrete[0],
      "serve_sampled": concrete[1]})
  with open(os.path.join(export_dir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  with open(os.path.join(export_dir, "export_info.json"), "w") as f:
    json.dump(export_info(config, image_shape, deterministic, samples), f,
              indent=2)
  return export_dir


def export_from_workdir(workdir: str, export_dir: Optional[str] = None,
                        weights: Optional[str] = None,
                        sampled: bool = False) -> str:
  """The command line's work: load the run in `workdir`, export it."""
  model, config = load_model_from_workdir(workdir, weights)
  return export_saved_model(
      model, export_dir or os.path.join(workdir, "export"),
      image_shape_from_config(config), deterministic=not sampled)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  path = export_from_workdir(f.workdir, f.export_dir, f.weights, f.sampled)
  print(f"SavedModel written to {path}")


def _define_flags():
  # Defined only when run as a program, so importing this module next to
  # wsram_tf.main (which also has --workdir) cannot clash.
  flags.DEFINE_string("workdir", None, "Training run with config.json.")
  flags.DEFINE_string("export_dir", None, "Output; default WORKDIR/export.")
  flags.DEFINE_string("weights", None,
                      "final (default), best, or a .weights.h5 path.")
  flags.DEFINE_bool("sampled", False,
                    "`serve` samples M glimpse sequences instead of the mode.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
