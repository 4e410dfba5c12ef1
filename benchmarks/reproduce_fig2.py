"""Paper Figure 2, Figure 3 and Table 1 on translated, scaled MNIST (issue 5).

  python -m benchmarks.reproduce_fig2 --out=benchmarks/results \
      [--updates=N] [--eval_every=K] [--grad_var_every=K] [--grad_var_draws=8] \
      [--eval_examples=2000] [--variants=var,var_c,...] [--heuristics=True] \
      [--paper_scale] [--learning_rate=R] [--seed=S] [--plot_only]

Trains every run with the default config (configs/mnist.py: same
architecture, seed, M=5, Adam 1e-3, batch 64) for the same number of updates.
Runs: the six variants of Fig. 2 and, with --heuristics, `var_h` and
`wsram_h`: VAR and WS-RAM with the three exploration heuristics of §4.5 on
(HEURISTICS below), for the Fig. 3 comparison.

Every --eval_every updates a row goes to runs/<run>.csv: the train-step
metrics averaged over the chunk (train_error uses M prior samples for every
variant, never the label-seeing inference network; bound L_M; ESS), the test
error on the first --eval_examples digits of the fixed test set (M=5 prior
samples), and every --grad_var_every updates the gradient variance (theta,
eta) on a fixed batch of 64 training canvases. After the budget, the test
error on the full 10k test set goes to runs/<run>.done. A rerun with the same
--out skips runs that have a .done marker and restarts unfinished ones;
--plot_only redraws the outputs from whatever is on disk.

Outputs in --out: curves.csv, figure2.png, figure3.png, table1.md, run.json.
"""

import csv
import datetime
import json
import math
import os
import platform
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import keras
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from configs import mnist as mnist_configs
from pipelines import mnist as mnist_pipeline
from wsram_tf import diagnostics
from wsram_tf import model as model_lib
from wsram_tf import variants as variants_lib

# Exploration heuristics of §4.5 for the Fig. 3 runs: a 1.5x wider location
# proposal (and flatter scale logits), a mild coverage pull towards the whole
# canvas and all scales, and a small entropy bonus (with a fixed location std
# only the scale entropy can move).
HEURISTICS = {"temperature": 1.5, "coverage_weight": 0.1,
              "entropy_weight": 0.01}
# run name -> (variant, heuristics on).
RUNS = {name: (name, False) for name in mnist_configs.VARIANTS}
RUNS.update({"var_h": ("var", True), "wsram_h": ("wsram", True)})
LABELS = dict(variants_lib.LABELS, var_h="VAR+h", wsram_h="WS-RAM+h")
COLUMNS = ("variant", "update", "train_error", "bound", "ess", "test_error",
           "grad_var_theta", "grad_var_eta", "seconds")
THRESHOLDS = (0.20, 0.10)
GRAD_VAR_BATCH = 64
# Measured on the 2-core CPU shared with other jobs (~100 ms/update for VAR,
# ~200 ms for the +q variants, plus ~1-2 min of setup, compile and final
# evaluation per run): 8 runs x 2,000 updates take about an hour.
DEFAULT_UPDATES = 2000
# Table 1 of the paper: "after 10 million updates using 5 samples".
PAPER_UPDATES = 10_000_000

_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output directory.")
_UPDATES = flags.DEFINE_integer(
    "updates", DEFAULT_UPDATES, "Updates per run (a multiple of eval_every).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 200,
                                   "Updates between curve points.")
_GRAD_VAR_EVERY = flags.DEFINE_integer(
    "grad_var_every", 400, "Updates between gradient-variance measurements "
    "(a multiple of eval_every).")
_GRAD_VAR_DRAWS = flags.DEFINE_integer("grad_var_draws", 8,
                                       "Gradient estimates per measurement.")
_EVAL_EXAMPLES = flags.DEFINE_integer(
    "eval_examples", 2000, "Test digits scored at each curve point (the "
    "final score always uses the whole test set).")
# Trained in this order (the key comparison first, in case the run is cut).
_VARIANTS = flags.DEFINE_list(
    "variants", ["wsram_qc", "var_c", "wsram", "var", "wsram_c", "wsram_q"],
    "Variants of Fig. 2 to train.")
_HEURISTICS = flags.DEFINE_bool("heuristics", True,
                                "Also train var_h and wsram_h (Fig. 3).")
_PAPER_SCALE = flags.DEFINE_bool(
    "paper_scale", False, f"The paper's Table 1 budget: {PAPER_UPDATES:,} "
    "updates per run, eval every 50k, grad var every 250k (weeks on a CPU).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 0.0, "Adam rate for theta and eta in every run (0: the "
    "config's 1e-3); for learning-rate checks into a separate --out.")
_HEURISTIC_VALUES = flags.DEFINE_list(
    "heuristic_values", [f"{k}={v}" for k, v in HEURISTICS.items()],
    "field=value settings of config.objective for the +h runs.")
_SEED = flags.DEFINE_integer(
    "seed", -1, "config.seed for every run (-1: the config's 0); for "
    "seed-to-seed checks into a separate --out.")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False,
                               "Only redraw outputs from the files in --out.")


class Budget(NamedTuple):
  updates: int
  eval_every: int
  grad_var_every: int
  grad_var_draws: int
  eval_examples: int


def run_config(name: str, base: Optional[Callable[[str], object]] = None,
               heuristics: Optional[Dict[str, float]] = None):
  """The config of run `name`: `base(variant)` plus its heuristics."""
  if name not in RUNS:
    raise ValueError(f"reproduce_fig2: unknown run {name!r}; valid: "
                     f"{', '.join(RUNS)}.")
  variant = RUNS[name][0]
  config = (base or mnist_configs.get_config)(variant)
  if RUNS[name][1]:
    for field, value in (heuristics or HEURISTICS).items():
      config.objective[field] = value
  return config


def _check_budget(b: Budget) -> None:
  if min(b.updates, b.eval_every, b.grad_var_every, b.eval_examples) < 1:
    raise ValueError(f"reproduce_fig2: budget values must be >= 1: {b}.")
  if b.updates % b.eval_every or b.grad_var_every % b.eval_every:
    raise ValueError("reproduce_fig2: --updates and --grad_var_every must be "
                     f"multiples of --eval_every, got {b}.")
  if b.grad_var_draws < 2:
    raise ValueError("reproduce_fig2: --grad_var_draws must be >= 2.")


def train_run(name: str, config, budget: Budget, run_dir: str) -> dict:
  """Trains one run, appending curve rows to run_dir/<name>.csv."""
  start = time.time()
  keras.utils.set_random_seed(config.seed)
  data = mnist_pipeline.make_datasets(config)
  model = model_lib.build_model(config, data.image_shape)
  images, labels = next(iter(data.train.unbatch().batch(GRAD_VAR_BATCH)))
  jit = config.train.jit_compile
  grad_var = lambda seed: diagnostics.gradient_variance(  # Compiled once.
      model, images, labels, budget.grad_var_draws, seed, jit)
  eval_batches = math.ceil(min(budget.eval_examples, data.num_test)
                           / config.eval.batch_size)
  curve_test = data.test.take(eval_batches)
  iterator = iter(data.train)
  model.make_train_function()
  train = model.train_function
  path = os.path.join(run_dir, f"{name}.csv")
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    for update in range(0, budget.updates + 1, budget.eval_every):
      row = dict.fromkeys(COLUMNS, float("nan"))
      row.update(variant=name, update=update)
      if update:
        for tracker in model.train_trackers.values():
          tracker.reset_state()
        for _ in range(budget.eval_every):
          train(iterator)
        for key in ("train_error", "bound", "ess"):
          row[key] = float(model.train_trackers[key].result())
        if not all(math.isfinite(row[k]) for k in ("bound", "ess")):
          raise FloatingPointError(f"{name}: non-finite metrics at update "
                                   f"{update}: {row}")
      row["test_error"] = float(model.evaluate(
          curve_test, verbose=0, return_dict=True)["error"])
      if update % budget.grad_var_every == 0:
        variance = grad_var(config.seed * 1_000_003 + update)
        row["grad_var_theta"] = variance["theta"]
        row["grad_var_eta"] = variance["eta"]
      row["seconds"] = time.time() - start
      writer.writerow(row)
      f.flush()
      logging.info("%s %s", name, {k: row[k] for k in COLUMNS[1:]})
  test = model.evaluate(data.test, verbose=0, return_dict=True)
  done = {"run": name, "variant": config.variant,
          "objective": config.objective.to_dict(),
          "learning_rate": config.train.learning_rate, "seed": config.seed,
          "updates": int(model.optimizer.iterations.numpy()),
          "test_error": float(test["error"]),
          "test_log_likelihood": float(test["log_likelihood"]),
          "num_test": data.num_test, "data_source": data.source,
          "seconds": time.time() - start}
  with open(os.path.join(run_dir, f"{name}.done"), "w") as f:
    json.dump(done, f, indent=2)
  return done


# -- outputs -------------------------------------------------------------------


def read_curves(run_dir: str, names: Sequence[str]) -> Dict[str, List[dict]]:
  curves = {}
  for name in names:
    path = os.path.join(run_dir, f"{name}.csv")
    if os.path.exists(path):
      with open(path, newline="") as f:
        rows = [{k: (v if k == "variant" else float(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]
      if rows:
        curves[name] = rows
  return curves


def read_done(run_dir: str, names: Sequence[str]) -> Dict[str, dict]:
  done = {}
  for name in names:
    path = os.path.join(run_dir, f"{name}.done")
    if os.path.exists(path):
      with open(path) as f:
        done[name] = json.load(f)
  return done


def write_curves(path: str, curves: Dict[str, List[dict]]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    for rows in curves.values():
      writer.writerows(rows)


def _series(rows, key):
  points = [(r["update"] / 1000, r[key]) for r in rows
            if math.isfinite(r[key])]
  return zip(*points) if points else ((), ())


def plot_figure2(path: str, curves: Dict[str, List[dict]]) -> None:
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  panels = (("train_error", "training error (prior samples)", False),
            ("grad_var_theta", "gradient variance (theta)", True),
            ("ess", "effective sample size (max M=5)", False))
  for ax, (key, title, log) in zip(axes, panels):
    for name, rows in curves.items():
      if name in mnist_configs.VARIANTS:
        ax.plot(*_series(rows, key), label=LABELS[name], marker=".")
    ax.set_title(title)
    ax.set_xlabel("thousands of updates")
    if log:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_figure3(path: str, curves: Dict[str, List[dict]]) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
  for ax, base in zip(axes, ("var", "wsram")):
    for name in (base, f"{base}_h"):
      if name in curves:
        ax.plot(*_series(curves[name], "train_error"), label=LABELS[name],
                marker=".")
    ax.set_title(f"{LABELS[base]}: with (+h) and without heuristics")
    ax.set_xlabel("thousands of updates")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend()
  axes[0].set_ylabel("training error (prior samples)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def updates_to_reach(rows: List[dict], threshold: float) -> Optional[int]:
  for r in rows:
    if math.isfinite(r["test_error"]) and r["test_error"] <= threshold:
      return int(r["update"])
  return None


def table1(curves: Dict[str, List[dict]], done: Dict[str, dict],
           budget: Budget) -> str:
  lines = [
      "| Run | test error (full test set) | updates | "
      + " | ".join(f"updates to {t:.0%} test error" for t in THRESHOLDS)
      + " | minutes |",
      "|---|---|---|" + "---|" * len(THRESHOLDS) + "---|"]
  for name in RUNS:
    if name not in curves:
      continue
    rows = curves[name]
    if name in done:
      error = f"{done[name]['test_error']:.2%}"
      updates, minutes = done[name]["updates"], done[name]["seconds"] / 60
    else:
      error = f"unfinished (curve: {rows[-1]['test_error']:.2%})"
      updates, minutes = int(rows[-1]["update"]), rows[-1]["seconds"] / 60
    reach = []
    for t in THRESHOLDS:
      u = updates_to_reach(rows, t)
      reach.append("not reached" if u is None else f"{u:,}")
    lines.append(f"| {LABELS[name]} | {error} | {updates:,} | "
                 + " | ".join(reach) + f" | {minutes:.1f} |")
  lines.append("")
  lines.append(
      f"Updates to reach a test error: first curve point (every "
      f"{budget.eval_every} updates) at or below it, scored on the first "
      f"{budget.eval_examples} test digits with M=5 prior samples. Final "
      "test error: all test digits, M=5 prior samples.")
  return "\n".join(lines) + "\n"


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def write_outputs(out: str, names: Sequence[str], budget: Budget,
                  info: dict, heuristics: Optional[Dict[str, float]] = None
                  ) -> dict:
  """curves.csv, figure2.png, figure3.png, table1.md, run.json from disk."""
  run_dir = os.path.join(out, "runs")
  names = [n for n in RUNS if n in names]  # Plot and tabulate in paper order.
  curves, done = read_curves(run_dir, names), read_done(run_dir, names)
  write_curves(os.path.join(out, "curves.csv"), curves)
  plot_figure2(os.path.join(out, "figure2.png"), curves)
  plot_figure3(os.path.join(out, "figure3.png"), curves)
  with open(os.path.join(out, "table1.md"), "w") as f:
    f.write(table1(curves, done, budget))
  info = dict(info, budget=budget._asdict(),
              heuristics=heuristics or HEURISTICS,
              completed=sorted(done),
              unfinished=sorted(set(curves) - set(done)),
              run_seconds={n: d["seconds"] for n, d in done.items()},
              machine={"nproc": os.cpu_count(), "cpu": _cpu_model(),
                       "platform": platform.platform(),
                       "python": platform.python_version(),
                       "tensorflow": tf.__version__,
                       "keras": keras.__version__})
  with open(os.path.join(out, "run.json"), "w") as f:
    json.dump(info, f, indent=2)
  return info


def reproduce(out: str, names: Sequence[str], budget: Budget,
              base_config: Optional[Callable[[str], object]] = None,
              plot_only: bool = False, command: str = "",
              heuristics: Optional[Dict[str, float]] = None) -> dict:
  """Trains the runs in `names` not yet done in `out`, then writes outputs."""
  _check_budget(budget)
  for name in names:
    run_config(name, base_config, heuristics)  # A bad name fails before work.
  run_dir = os.path.join(out, "runs")
  os.makedirs(run_dir, exist_ok=True)
  start = time.time()
  trained = []
  if not plot_only:
    for name in names:
      if os.path.exists(os.path.join(run_dir, f"{name}.done")):
        logging.info("%s: done already, skipped.", name)
        continue
      result = train_run(name, run_config(name, base_config, heuristics),
                         budget, run_dir)
      logging.info("%s finished: %s", name, result)
      trained.append(name)
      write_outputs(out, names, budget, {"command": command}, heuristics)
  return write_outputs(out, names, budget, {
      "command": command,
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
      "trained_this_invocation": trained,
      "seconds_this_invocation": time.time() - start}, heuristics)


def main(argv):
  del argv
  if _PAPER_SCALE.value:
    budget = Budget(PAPER_UPDATES, 50_000, 250_000, _GRAD_VAR_DRAWS.value,
                    _EVAL_EXAMPLES.value)
  else:
    budget = Budget(_UPDATES.value, _EVAL_EVERY.value, _GRAD_VAR_EVERY.value,
                    _GRAD_VAR_DRAWS.value, _EVAL_EXAMPLES.value)
  names = list(_VARIANTS.value)
  for name in names:
    if name not in RUNS:
      raise ValueError(f"--variants: unknown {name!r}; valid: "
                       f"{', '.join(RUNS)}.")
  if _HEURISTICS.value:
    names += [n for n in ("var_h", "wsram_h")
              if RUNS[n][0] in names and n not in names]
  heuristics = {}
  for item in _HEURISTIC_VALUES.value:
    field, _, value = item.partition("=")
    if field not in HEURISTICS:
      raise ValueError(f"--heuristic_values: unknown field {field!r}; valid: "
                       f"{', '.join(HEURISTICS)}.")
    heuristics[field] = float(value)

  def overridden_config(variant):
    config = mnist_configs.get_config(variant)
    if _LEARNING_RATE.value:
      config.train.learning_rate = _LEARNING_RATE.value
      config.train.inference_learning_rate = _LEARNING_RATE.value
    if _SEED.value >= 0:
      config.seed = _SEED.value
    return config

  base_config = (overridden_config
                 if _LEARNING_RATE.value or _SEED.value >= 0 else None)
  reproduce(_OUT.value, names, budget, base_config, plot_only=_PLOT_ONLY.value,
            heuristics=heuristics,
            command="python -m benchmarks.reproduce_fig2 " + " ".join(
                sys.argv[1:]))


if __name__ == "__main__":
  app.run(main)
