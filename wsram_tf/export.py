"""SavedModel export of a finished run of either task.

  python -m wsram_tf.export --workdir=/tmp/run [--export_dir=/tmp/run/export] \
      [--weights=final|best|PATH] [--sampled]

Reads `RUN/config.json`, picks the task by its `task` (runs written
before `task` existed: `data.name == "flickr8k"` means the captioner) and
lets it rebuild its model and write the SavedModel. What both exporters
share lives here: reading a run's config and weights with errors that name
the file, and `save_functions`, which writes a plain `tf.Module` holding only
the variables its traced functions read (no Keras objects, no pickled
Python), so `tf.saved_model.load` alone serves it: no Keras, no TensorFlow
Probability, no `wsram_tf`. Training writes the same export into
`WORKDIR/export/` when it ends (`config.train.export`).
"""

import json
import os
import sys
from typing import Mapping, Optional

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import ml_collections
import tensorflow as tf

from wsram_tf import atomic
from wsram_tf import run
from wsram_tf import tasks

WEIGHT_FILES = {"final": run.FINAL_WEIGHTS, "best": run.BEST_WEIGHTS}


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


def build_and_load(build, weights_path: str, config_path: str):
  """`build()`'s model with `weights_path` loaded; errors name both files."""
  try:
    model = build()
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise ValueError(f"Cannot build the model from {config_path}: {e}") from e
  try:
    model.load_weights(weights_path)
  except Exception as e:  # h5py and Keras raise many types on bad files.
    raise ValueError(
        f"Cannot load weights file {weights_path} into the model of "
        f"{config_path}: {type(e).__name__}: {e}") from e
  return model


def unique_variables(functions) -> list:
  """The variables the concrete `functions` read, each once, in order."""
  seen, out = set(), []
  for fn in functions:
    for v in fn.variables:
      if v.ref() not in seen:
        seen.add(v.ref())
        out.append(v)
  return out


def save_functions(export_dir: str, functions: Mapping[str, object], config,
                   info: dict) -> str:
  """Writes `functions` (name -> tf.function with an input signature) as a
  SavedModel: each is a signature under its name, the first also as
  `serving_default`; `config.json` (an experiment ConfigDict, or a model's
  constructor arguments) and `export_info.json` go beside it."""
  concrete = {name: fn.get_concrete_function()
              for name, fn in functions.items()}
  root = tf.Module()
  # Only the tf.Variables the functions read: no Keras objects in the file.
  root.model_variables = unique_variables(concrete.values())
  for name, fn in functions.items():
    setattr(root, name, fn)
  os.makedirs(export_dir, exist_ok=True)
  tf.saved_model.save(root, export_dir, signatures={
      "serving_default": next(iter(concrete.values())), **concrete})
  atomic.write_text(os.path.join(export_dir, "config.json"),
                    config.to_json_best_effort(indent=2)
                    if hasattr(config, "to_json_best_effort")
                    else json.dumps(config, indent=2))
  atomic.write_json(os.path.join(export_dir, "export_info.json"), info)
  return export_dir


def export_from_workdir(workdir: str, export_dir: Optional[str] = None,
                        weights: Optional[str] = None,
                        sampled: bool = False) -> str:
  """The command line's work: rebuild the run in `workdir`, export it.

  Written to a temporary directory and renamed: a failed or killed export
  leaves the previous one in place.
  """
  config = load_config(os.path.join(workdir, "config.json"))
  task = tasks.get(tasks.task_of(config))
  return atomic.replace_dir(
      lambda tmp: task.export_run(workdir, config, weights, tmp,
                                         sampled),
      export_dir or os.path.join(workdir, "export"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  try:
    path = export_from_workdir(f.workdir, f.export_dir, f.weights, f.sampled)
  except (FileExistsError, FileNotFoundError, ValueError) as e:
    # The user's situation (a wrong path, a damaged run), not a bug to trace.
    sys.exit(f"Error: {e}")
  print(f"SavedModel written to {path}")


def _define_flags():
  # Defined only when run as a program, so importing this module next to
  # wsram_tf.main (which also has --workdir) cannot clash.
  flags.DEFINE_string("workdir", None, "Finished run with config.json.")
  flags.DEFINE_string("export_dir", None, "Output; default WORKDIR/export.")
  flags.DEFINE_string("weights", None,
                      "final (default), best, or a .weights.h5 path.")
  flags.DEFINE_bool("sampled", False,
                    "Classifier: `serve` samples M glimpse sequences instead "
                    "of taking the mode.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
