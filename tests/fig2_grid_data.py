"""Synthetic run folders of a Figure 2 grid, in the files' real formats.

The formats are those `python -m wsram_tf.main` writes (checked against a
real tiny run): metrics.csv from Keras' CSVLogger (epoch, then the sorted log
names, validation last), grad_variance.csv from callbacks.GradientVariance,
results.json and config.json from wsram_tf/train.py and main.py.
"""

import json
import os
from typing import Optional, Sequence

from benchmarks import fig2_grid

METRICS_HEADER = ("epoch,baseline_loss,bound,ess,loss,train_error,val_error,"
                  "val_log_likelihood")


def write_run(out: str, run: str, rate: float, seed: int,
              val_errors: Sequence[float],
              train_errors: Optional[Sequence[float]] = None,
              ess: Optional[Sequence[float]] = None,
              grad_var: Optional[Sequence[float]] = None,
              test_error: Optional[float] = None,
              test_log_likelihood: float = -0.3, eta_factor: float = 1.0,
              steps_per_epoch: int = 500, num_train_steps: int = 3000,
              failed: bool = False) -> str:
  """One seed folder; finished (results.json) iff test_error is given."""
  path = fig2_grid.run_dir(out, run, rate, seed, eta_factor)
  os.makedirs(os.path.join(path, "checkpoints"), exist_ok=True)
  variant, heuristics = fig2_grid.RUNS[run]
  n = len(val_errors)
  train_errors = train_errors or [e + 0.01 for e in val_errors]
  ess = ess or [4.0] * n
  grad_var = grad_var or [1e-3] * n
  objective = {"num_samples": 5, "temperature": 1.0, "coverage_weight": 0.0,
               "entropy_weight": 0.0}
  if heuristics:
    objective.update(fig2_grid.HEURISTICS)
  config = {"variant": variant, "seed": seed, "objective": objective,
            "train": {"learning_rate": rate,
                      "inference_learning_rate": rate * eta_factor,
                      "num_train_steps": num_train_steps,
                      "steps_per_epoch": steps_per_epoch,
                      "grad_var_every_steps": steps_per_epoch,
                      "grad_var_draws": 10}}
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
  with open(os.path.join(path, "metrics.csv"), "w") as f:
    f.write(METRICS_HEADER + "\n")
    for epoch, (v, t, e) in enumerate(zip(val_errors, train_errors, ess)):
      f.write(f"{epoch},0.0,-0.5,{e},0.5,{t},{v},-0.4\n")
  with open(os.path.join(path, "grad_variance.csv"), "w") as f:
    f.write("step,theta,eta\n")
    for epoch, g in enumerate(grad_var):
      eta = "2e-05" if fig2_grid.is_q_run(run) else "nan"
      f.write(f"{(epoch + 1) * steps_per_epoch},{g!r},{eta}\n")
  with open(os.path.join(path, "log.txt"), "w") as f:
    f.write("Epoch 1/20\n")
    if failed:
      f.write("Traceback (most recent call last):\n  File ...\n"
              "NonFiniteLossError: StopOnNonFinite: non-finite metric\n")
  if test_error is not None:
    with open(os.path.join(path, "results.json"), "w") as f:
      json.dump({"variant": variant, "test_error": test_error,
                 "test_log_likelihood": test_log_likelihood,
                 "train_steps": n * steps_per_epoch, "num_test": 10000}, f)
  return path
