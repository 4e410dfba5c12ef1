"""Table and curves of long runs side by side (issue 21's cluttered MNIST).

  python -m benchmarks.long_runs --runs=NAME=WORKDIR,NAME=WORKDIR,... \
      [--thresholds=0.5,0.3,0.2,0.15] [--plot=curves.png]

Each WORKDIR is a `wsram_tf.main` run. Its CPU seconds come from
`WORKDIR.time` (GNU time -v output, appended once per start of a resumed
run: the starts' user + system times are summed) when present. Prints a
Markdown table: test error and log-likelihood (results.json; "running" if the
run has not finished), the updates to each validation-error threshold and
the CPU-minutes to it (updates x the run's CPU seconds per update so far: a
run's step cost is constant, its evaluations included). With --wall, also
the wall-clock minutes to each threshold, from the TensorBoard events' times
since the run's first event (for a run that ran in one go, on a machine
doing nothing else: a resumed run's pauses count).
"""

import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags

from benchmarks import fig2_grid
from benchmarks import paired_stats

_RUNS = flags.DEFINE_list("runs", None, "NAME=WORKDIR pairs.")
_THRESHOLDS = flags.DEFINE_list("thresholds", ["0.5", "0.3", "0.2", "0.15"],
                                "Validation errors to report reaching.")
_PLOT = flags.DEFINE_string("plot", None, "Write the validation curves here.")
_WALL = flags.DEFINE_bool("wall", False, "Add wall-clock minutes to each "
                          "threshold (from the TensorBoard events).")


def cpu_seconds(time_file: str) -> Optional[float]:
  """User + system seconds over every GNU `time -v` report in the file."""
  if not os.path.exists(time_file):
    return None
  with open(time_file) as f:
    text = f.read()
  times = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)
  return sum(float(t) for t in times) if times else None


def wall_minutes(workdir: str) -> Dict[int, float]:
  """{update: minutes from the run's first TensorBoard event to the
  validation logged at that update}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.util import event_pb2  # pylint: disable=g-import-not-at-top
  pattern = os.path.join(workdir, "tensorboard", "events.out.tfevents.*")
  first, times = None, {}
  for path in sorted(tf.io.gfile.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      first = event.wall_time if first is None else min(first,
                                                        event.wall_time)
      if any(v.tag == "epoch/val_error" for v in event.summary.value):
        times[int(event.step)] = event.wall_time
  return {u: (t - first) / 60 for u, t in sorted(times.items())}


def summarize(name: str, workdir: str, thresholds: Sequence[float],
              wall: bool = False) -> dict:
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  curve = fig2_grid.read_metrics(os.path.join(workdir, "metrics.csv"),
                                 config["train"]["steps_per_epoch"])
  updates = [r["update"] for r in curve]
  errors = [r["val_error"] for r in curve]
  results_path = os.path.join(workdir, "results.json")
  results = None
  if os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
  cpu = cpu_seconds(workdir.rstrip("/") + ".time")
  per_update = cpu / updates[-1] if cpu and updates and results else None
  reach = {t: paired_stats.updates_to_reach(updates, errors, t)
           for t in thresholds}
  minutes = wall_minutes(workdir) if wall else {}
  return {"name": name, "workdir": workdir, "updates": updates,
          "wall_minutes_to": {t: minutes.get(u) for t, u in reach.items()},
          "val_error": errors, "results": results, "cpu_seconds": cpu,
          "best_val_error": min(errors) if errors else math.nan,
          "updates_to": reach,
          "cpu_minutes_to": {t: (None if u is None or per_update is None
                                 else u * per_update / 60)
                             for t, u in reach.items()}}


def to_markdown(rows: List[dict], thresholds: Sequence[float]) -> str:
  head = ["run", "test error", "test log-lik.", "best val. error",
          "CPU min"] + [f"updates (CPU min) to {100 * t:g}%"
                        for t in thresholds]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    res = r["results"]
    cells = [r["name"],
             f"**{100 * res['test_error']:.2f}%**" if res else "running",
             f"{res['test_log_likelihood']:.3f}" if res else "",
             f"{100 * r['best_val_error']:.2f}%",
             f"{r['cpu_seconds'] / 60:.0f}" if r["cpu_seconds"] else ""]
    for t in thresholds:
      u, m = r["updates_to"][t], r["cpu_minutes_to"][t]
      w = r["wall_minutes_to"].get(t)
      cells.append("not reached" if u is None else
                   f"{u:,}" + (f" ({m:.0f})" if m is not None else "")
                   + (f", {w:.1f} min wall" if w is not None else ""))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(path: str, rows: List[dict]) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 4))
  for r in rows:
    ax.plot(r["updates"], [100 * e for e in r["val_error"]], label=r["name"])
  ax.set_xlabel("updates")
  ax.set_ylabel("validation error (%)")
  ax.set_yscale("log")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def parse_runs(specs: Sequence[str]) -> Dict[str, str]:
  runs = {}
  for spec in specs:
    name, sep, workdir = spec.partition("=")
    if not sep or not name or not workdir:
      raise app.UsageError(f"--runs: {spec!r} is not NAME=WORKDIR.")
    runs[name] = workdir
  return runs


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  thresholds = [float(t) for t in _THRESHOLDS.value]
  rows = [summarize(n, w, thresholds, _WALL.value)
          for n, w in parse_runs(_RUNS.value).items()]
  print(to_markdown(rows, thresholds))
  if _PLOT.value:
    plot(_PLOT.value, rows)


if __name__ == "__main__":
  flags.mark_flags_as_required(["runs"])
  app.run(main)
