"""The Figure 2 grid on disk: run names, directory names, reading run folders.

Layout (written by `benchmarks/reproduce_fig2.py`, read by
`benchmarks/summarize_runs.py`):

  OUT/runs/<run>/lr_<rate>[_eta<factor>]/seed_<s>/
      config.json, metrics.csv, grad_variance.csv, results.json,
      checkpoints/, tensorboard/, log.txt

Each seed folder is the work directory of one `python -m wsram_tf.main` run
(see wsram_tf/train.py): metrics.csv has one row per Keras epoch
(config.train.steps_per_epoch updates) with the epoch means of the train
metrics (loss, bound, ess, train_error from M prior samples, baseline_loss)
and the validation metrics val_error / val_log_likelihood at the epoch end;
grad_variance.csv has `step,theta,eta`; results.json appears when the run
has finished (final test error and log-likelihood on the test set).

`<run>` is a variant of configs/mnist.py, or `<variant>_h` for a variant with
the exploration heuristics of §4.5 (HEURISTICS). `<rate>` is theta's Adam rate
written as mantissa e exponent (1e-3, 3e-4, 2.5e-3); `_eta<factor>` marks a
+q run whose inference network's rate is factor x theta's (no suffix: the
same rate).
"""

import csv
import json
import math
import os
import re
from fractions import Fraction
from typing import Dict, List, NamedTuple, Optional, Tuple

from wsram_tf.configs import mnist as mnist_configs

# Exploration heuristics of §4.5 for the +h runs: a 1.5x wider location
# proposal (and flatter scale logits), a mild coverage pull towards the whole
# canvas and all scales, and a small entropy bonus. Flag order of the runs.
HEURISTICS = {"temperature": 1.5, "coverage_weight": 0.1,
              "entropy_weight": 0.01}
VARIANTS = tuple(mnist_configs.VARIANTS)
# run name -> (variant, heuristics on).
RUNS = {name: (name, False) for name in VARIANTS}
RUNS.update({"var_c_h": ("var_c", True), "var_h": ("var", True),
             "wsram_h": ("wsram", True)})
# The same as wsram_tf.variants.LABELS (a test keeps them equal); not
# imported from there so that the grid tools do not need TensorFlow.
LABELS = {"var": "VAR", "var_c": "VAR+c", "wsram": "WS-RAM",
          "wsram_c": "WS-RAM+c", "wsram_q": "WS-RAM+q",
          "wsram_qc": "WS-RAM+q+c", "var_c_h": "VAR+c+h", "var_h": "VAR+h",
          "wsram_h": "WS-RAM+h"}
# Variants with an inference network (eta): only they get eta rate factors.
Q_VARIANTS = ("wsram_q", "wsram_qc")
# Figure 3: (without, with) the heuristics.
HEURISTIC_PAIRS = (("var_c", "var_c_h"), ("var", "var_h"),
                   ("wsram", "wsram_h"))

_SETTING = re.compile(r"^lr_([0-9.eE+-]+?)(?:_eta([0-9.eE+-]+))?$")
_SEED = re.compile(r"^seed_(\d+)$")


def is_q_run(run: str) -> bool:
  return RUNS[run][0] in Q_VARIANTS


def parse_number(text: str) -> float:
  """'1e-3', '0.001', '3', '1/3' -> float (fractions for eta factors)."""
  text = str(text).strip()
  try:
    value = float(Fraction(text)) if "/" in text else float(text)
  except (ValueError, ZeroDivisionError):
    raise ValueError(f"not a number: {text!r}") from None
  if not math.isfinite(value) or value <= 0:
    raise ValueError(f"must be a positive finite number, got {text!r}")
  return value


def rate_name(rate: float) -> str:
  """A learning rate as mantissa e exponent: 0.001 -> '1e-3', 3e-4 -> '3e-4'.

  Used in directory names and on the command line, so that the harness and
  a shell grid that typed `1e-3` name the same folder.
  """
  rate = float(rate)
  if not math.isfinite(rate) or rate <= 0:
    raise ValueError(f"learning rate must be > 0, got {rate!r}")
  exponent = math.floor(math.log10(rate))
  mantissa = round(rate / 10 ** exponent, 10)
  if mantissa >= 10:  # log10 rounding just below a power of ten.
    exponent, mantissa = exponent + 1, round(mantissa / 10, 10)
  text = f"{mantissa:.6g}e{exponent}"
  # 3e-3 * 3 is 0.009000000000000001 in floating point: still "9e-3". A
  # rate that 6 digits do not give (1e-3 / 3) is written out in full.
  if not math.isclose(float(text), rate, rel_tol=1e-12):
    text = repr(rate)
  return text


def factor_name(factor: float) -> str:
  """An eta rate factor in a directory name: 3 -> '3', 1/3 -> '0.3333'."""
  return f"{float(factor):.4g}"


def setting_name(rate: float, eta_factor: float = 1.0) -> str:
  """'lr_1e-3' or, for an eta factor other than 1, 'lr_1e-3_eta3'."""
  name = f"lr_{rate_name(rate)}"
  if float(eta_factor) != 1.0:
    name += f"_eta{factor_name(eta_factor)}"
  return name


def parse_setting(name: str) -> Optional[Tuple[float, float]]:
  """'lr_1e-3_eta3' -> (0.001, 3.0); None for a name that is not a setting."""
  match = _SETTING.match(name)
  if not match:
    return None
  try:
    rate = float(match.group(1))
    factor = float(match.group(2)) if match.group(2) else 1.0
  except ValueError:
    return None
  return rate, factor


def run_dir(out: str, run: str, rate: float, seed: int,
            eta_factor: float = 1.0) -> str:
  return os.path.join(out, "runs", run, setting_name(rate, eta_factor),
                      f"seed_{seed}")


# -- reading -------------------------------------------------------------------


def _float(value) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):  # Keras' CSVLogger writes "NA" if missing.
    return math.nan


class Run(NamedTuple):
  """One seed folder of the grid, as found on disk."""
  run: str
  setting: str
  rate: float
  eta_factor: float
  seed: int
  path: str
  status: str  # "done" (results.json), "failed" (log ends in a traceback),
               # "unfinished" (maybe still running), "empty" (no curve yet).
  curve: List[dict]  # metrics.csv rows + "update", by update, deduplicated.
  grad_var: List[dict]  # {"update", "theta", "eta"}, by update, deduplicated.
  results: Optional[dict]
  config: dict

  @property
  def last_update(self) -> int:
    return int(self.curve[-1]["update"]) if self.curve else 0

  def series(self, key: str) -> Tuple[List[int], List[float]]:
    """(updates, values) of a metrics.csv column or grad_var_theta/_eta."""
    if key in ("grad_var_theta", "grad_var_eta"):
      rows, column = self.grad_var, key[len("grad_var_"):]
    else:
      rows, column = self.curve, key
    points = [(int(r["update"]), r.get(column, math.nan)) for r in rows]
    points = [(u, v) for u, v in points if math.isfinite(v)]
    return [u for u, _ in points], [v for _, v in points]


def read_metrics(path: str, steps_per_epoch: int) -> List[dict]:
  """metrics.csv rows with "update" = (epoch + 1) * steps_per_epoch.

  A resumed run can repeat an epoch (killed after the row, before the next
  backup) or skip one (killed after the backup, before the row): the last
  row of an epoch wins, and a skipped epoch is simply absent.
  """
  if not os.path.exists(path):
    return []
  rows = {}
  with open(path, newline="") as f:
    for raw in csv.DictReader(f):
      if raw.get("epoch") in (None, "", "epoch"):
        continue
      row = {k: _float(v) for k, v in raw.items() if k is not None}
      if not math.isfinite(row["epoch"]):
        continue
      epoch = int(row["epoch"])
      row["update"] = (epoch + 1) * steps_per_epoch
      rows[epoch] = row
  return [rows[e] for e in sorted(rows)]


def read_grad_variance(path: str) -> List[dict]:
  """grad_variance.csv (step,theta,eta): the last row of a step wins."""
  if not os.path.exists(path):
    return []
  rows = {}
  with open(path, newline="") as f:
    for raw in csv.DictReader(f):
      step = _float(raw.get("step"))
      if math.isfinite(step):
        rows[int(step)] = {"update": int(step), "theta": _float(raw["theta"]),
                           "eta": _float(raw.get("eta"))}
  return [rows[s] for s in sorted(rows)]


def _json(path: str) -> Optional[dict]:
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _log_failed(path: str) -> bool:
  """True if log.txt ends in a Python traceback (the run raised)."""
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 20000))
      tail = f.read().decode("utf-8", "replace")
  except OSError:
    return False
  return "Traceback (most recent call last)" in tail


def read_run(path: str, run: str, setting: str, seed: int) -> Run:
  config = _json(os.path.join(path, "config.json")) or {}
  steps_per_epoch = int(config.get("train", {}).get(
      "steps_per_epoch", mnist_configs.get_config().train.steps_per_epoch))
  curve = read_metrics(os.path.join(path, "metrics.csv"), steps_per_epoch)
  grad_var = read_grad_variance(os.path.join(path, "grad_variance.csv"))
  results = _json(os.path.join(path, "results.json"))
  if results is not None:
    status = "done"
  elif _log_failed(os.path.join(path, "log.txt")):
    status = "failed"
  else:
    status = "unfinished" if curve else "empty"
  rate, factor = parse_setting(setting)
  return Run(run, setting, rate, factor, seed, path, status, curve, grad_var,
             results, config)


def scan(out: str) -> List[Run]:
  """Every seed folder under OUT/runs/<run>/<setting>/ (unknown names skipped)."""
  found = []
  root = os.path.join(out, "runs")
  if not os.path.isdir(root):
    return found
  for run in sorted(os.listdir(root)):
    if run not in RUNS or not os.path.isdir(os.path.join(root, run)):
      continue
    for setting in sorted(os.listdir(os.path.join(root, run))):
      if parse_setting(setting) is None:
        continue
      for seed_dir in sorted(os.listdir(os.path.join(root, run, setting))):
        match = _SEED.match(seed_dir)
        path = os.path.join(root, run, setting, seed_dir)
        if match and os.path.isdir(path):
          found.append(read_run(path, run, setting, int(match.group(1))))
  return found


def by_setting(runs: List[Run]) -> Dict[str, Dict[str, Dict[int, Run]]]:
  """{run: {setting: {seed: Run}}}, runs in RUNS order, settings by rate."""
  table: Dict[str, Dict[str, Dict[int, Run]]] = {}
  for name in RUNS:
    mine = [r for r in runs if r.run == name]
    for r in sorted(mine, key=lambda r: (r.rate, r.eta_factor, r.seed)):
      table.setdefault(name, {}).setdefault(r.setting, {})[r.seed] = r
  return table
