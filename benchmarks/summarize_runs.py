"""One table over several reproduce_fig2 output directories (seeds, rates).

  python -m benchmarks.summarize_runs --table=benchmarks/results/seeds.md \
      --dirs=benchmarks/results,benchmarks/results/seed_1,benchmarks/results/seed_2

A single 2,000-update run per variant cannot order the variants: seed-to-seed
spread of one variant is as large as the gaps between them. This reads the
finished runs (runs/<run>.done, runs/<run>.csv) of each directory and writes a
markdown table: per run, the final test error in each directory, their mean
and standard deviation, and the mean training error (prior samples) over the
last curve points, which is less noisy than one final score.
"""

import math
import os
import statistics
from typing import Dict, List, Sequence

from absl import app
from absl import flags

from benchmarks import reproduce_fig2

_DIRS = flags.DEFINE_list("dirs", None, "reproduce_fig2 --out directories.")
_TABLE = flags.DEFINE_string("table", None, "Markdown file to write.")
_MEAN = flags.DEFINE_bool(
    "mean", True, "Add mean ± sd columns (off for directories that differ in "
    "a setting, e.g. learning rates, where a mean means nothing).")
_LAST_POINTS = flags.DEFINE_integer(
    "last_points", 3, "Curve points averaged for the late training error.")


def late_train_error(rows: List[dict], last_points: int) -> float:
  """Mean training error of the last `last_points` finite curve points."""
  values = [r["train_error"] for r in rows if math.isfinite(r["train_error"])]
  return statistics.fmean(values[-last_points:]) if values else math.nan


def _mean_sd(values: Sequence[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.1%}"
  return f"{statistics.fmean(values):.1%} ± {statistics.stdev(values):.1%}"


def summarize(dirs: Sequence[str], last_points: int = 3,
              mean: bool = True) -> str:
  """The markdown table; runs missing from a directory show as '-'."""
  names = list(reproduce_fig2.RUNS)
  found: Dict[str, Dict[str, dict]] = {}
  curves: Dict[str, Dict[str, List[dict]]] = {}
  for d in dirs:
    run_dir = os.path.join(d, "runs")
    if not os.path.isdir(run_dir):
      raise ValueError(f"--dirs: {d} has no runs/ folder (not a "
                       "reproduce_fig2 --out directory)")
    found[d] = reproduce_fig2.read_done(run_dir, names)
    curves[d] = reproduce_fig2.read_curves(run_dir, names)
  extra = ["mean ± sd", "late train error"] if mean else []
  header = "| Run | " + " | ".join([f"`{d}`" for d in dirs] + extra) + " |"
  lines = [header, "|---|" + "---|" * (len(dirs) + len(extra))]
  for name in names:
    finals = [found[d][name]["test_error"] if name in found[d] else None
              for d in dirs]
    done = [f for f in finals if f is not None]
    if not done:
      continue
    late = [late_train_error(curves[d][name], last_points)
            for d in dirs if name in found[d] and name in curves[d]]
    cells = ["-" if f is None else f"{f:.1%}" for f in finals]
    if mean:
      cells += [_mean_sd(done), _mean_sd(late)]
    lines.append(f"| {reproduce_fig2.LABELS[name]} | " + " | ".join(cells)
                 + " |")
  lines += ["", "Test error: full test set after the run's budget, M=5 prior "
            "samples."]
  if mean:
    lines[-1] += (f" Late train error: mean of the last {last_points} curve "
                  "points (prior samples), averaged over the directories.")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  table = summarize(_DIRS.value, _LAST_POINTS.value, _MEAN.value)
  with open(_TABLE.value, "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  flags.mark_flags_as_required(["dirs", "table"])
  app.run(main)
