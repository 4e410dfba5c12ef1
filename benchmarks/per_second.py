"""The Figure 2 grid against time instead of updates (issue 20 item 2).

  python -m benchmarks.per_second --grid=OUT \
      --step_ms=var_c=21.9,wsram_qc=27.1,... [--per_second_out=DIR] [--threshold=0.1]

`--step_ms` is each run's cost of one update in milliseconds, measured in one
quiet `benchmarks.throughput` run (its `ms_per_step` or `cpu_ms_per_step`;
RESULTS.md names which), so that the costs' ratios come from one machine at
one time. Every curve of the grid (`benchmarks.summarize_runs`: each run at
its chosen rate) is put on a time axis, updates x cost, and the paired
comparisons of summarize_runs are redone per second: the area under the
validation-error curve over seconds, and the seconds to `--threshold`.
Writes DIR/figure2_seconds.png and DIR/per_second.md (DIR defaults to OUT).

A model change under the same protocol (a second grid, e.g. a narrower
inference network), paired by seed with the first, per update and per second:

  python -m benchmarks.per_second --grid=NEW --step_ms=wsram_qc=26.0 \
      --against=OLD --against_step_ms=wsram_qc=33.2 --per_second_out=DIR

compares each run of NEW at its chosen setting with the same run of OLD at
its own (or the pairs `--against_pairs=wsram_qc:var_c,...` names), on the
validation curve, per update and per second, and on the test error, and
writes DIR/against.md.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from benchmarks import fig2_grid
from benchmarks import summarize_runs

_GRID = summarize_runs._GRID  # pylint: disable=protected-access
_STEP_MS = flags.DEFINE_list("step_ms", None, "RUN=MS pairs.")
_OUT = flags.DEFINE_string("per_second_out", None,
                           "Output folder (default: --grid).")
_AGAINST = flags.DEFINE_string(
    "against", None, "Another grid of the same protocol: compare each run of "
    "--grid with the same run there (writes against.md).")
_AGAINST_STEP_MS = flags.DEFINE_list("against_step_ms", None,
                                     "RUN=MS pairs of --against's runs.")
_AGAINST_PAIRS = flags.DEFINE_list(
    "against_pairs", None, "NEW:OLD run names to compare (default: each run "
    "with its namesake), e.g. wsram_qc:var_c.")
_THRESHOLD = flags.DEFINE_float("threshold", summarize_runs.COMPARE_THRESHOLD,
                                "Validation error of the time-to comparison.")


def parse_step_ms(specs: Sequence[str]) -> Dict[str, float]:
  costs = {}
  for spec in specs:
    name, _, value = spec.partition("=")
    try:
      costs[name] = float(value)
    except ValueError:
      raise app.UsageError(f"--step_ms: {spec!r} is not RUN=MS.") from None
    if not costs[name] > 0:
      raise app.UsageError(f"--step_ms: {spec!r}: the cost must be > 0.")
  return costs


def parse_pairs(specs: Optional[Sequence[str]]
                ) -> Optional[List[Tuple[str, str]]]:
  """["wsram_qc:var_c", ...] -> [("wsram_qc", "var_c"), ...]."""
  if not specs:
    return None
  pairs = []
  for spec in specs:
    new, sep, old = spec.partition(":")
    if not sep or not new or not old:
      raise app.UsageError(f"--against_pairs: {spec!r} is not NEW:OLD.")
    pairs.append((new, old))
  return pairs


def per_second(comparison: dict, ms_a: float, ms_b: float) -> dict:
  """summarize_runs.compare's per-seed numbers on a time axis: areas in
  error x seconds, times to the threshold in seconds (censored as there),
  candidate minus reference, with the same paired tests."""
  rows = comparison["per_seed"]
  # Areas are in error x thousands of updates: x ms gives error x seconds.
  area = [(r["area"][0] * ms_a, r["area"][1] * ms_b) for r in rows]
  reach = [(r["updates_to_censored"][0] * ms_a / 1e3,
            r["updates_to_censored"][1] * ms_b / 1e3) for r in rows]
  area_diff = [a - b for a, b in area]
  reach_diff = [a - b for a, b in reach]
  return {
      "seeds": [r["seed"] for r in rows], "step_ms": [ms_a, ms_b],
      "area_seconds": area, "seconds_to": reach,
      "area": summarize_runs.paired(area_diff),
      "seconds_to_threshold": summarize_runs.paired(reach_diff, "median")}


def plot(path: str, table, chosen, costs: Dict[str, float],
         draws: int = 2000) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.6))
  for name in fig2_grid.VARIANTS + ("var_c_h",):
    if name not in chosen or name not in costs:
      continue
    runs = summarize_runs._curves_for(table, chosen, name, False)  # pylint: disable=protected-access
    updates, mean, low, high, _ = summarize_runs.band(runs, "val_error",
                                                      draws)
    if not updates:
      continue
    seconds = np.asarray(updates) * costs[name] / 1e3
    line, = ax.plot(seconds / 60, mean, marker=".", label=(
        f"{fig2_grid.LABELS.get(name, name)} ({costs[name]:.1f} ms/update, "
        f"{len(runs)} seeds)"))
    ax.fill_between(seconds / 60, low, high, color=line.get_color(),
                    alpha=0.2, linewidth=0)
  ax.set_xlabel("minutes (updates x measured cost per update)")
  ax.set_ylabel("validation error")
  ax.set_yscale("log")
  ax.grid(alpha=0.3, which="both")
  if ax.lines:
    ax.legend(fontsize=8)
  ax.set_title("Figure 2 grid against time: mean and 95% bootstrap band over "
               "seeds", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def to_markdown(comparisons: Sequence[dict], threshold: float) -> str:
  out = ["| candidate vs reference | ms/update | seeds | area per second: "
         "candidate lower on | sign p | Wilcoxon p | seconds to "
         f"{100 * threshold:g}%: median difference | lower on | sign p | "
         "Wilcoxon p |", "|" + "---|" * 10]
  for c in comparisons:
    p = c["per_second"]
    area, reach = p["area"], p["seconds_to_threshold"]
    n = len(p["seeds"])
    out.append(
        f"| {c['candidate']} vs {c['reference']} | "
        f"{p['step_ms'][0]:.1f} / {p['step_ms'][1]:.1f} | {n} | "
        f"{area['sign_test']['negative']} of {n} | "
        f"{area['sign_test']['p_value']:.3g} | "
        f"{area['wilcoxon']['p_value']:.3g} | "
        f"{reach['median_difference']:+.0f} s | "
        f"{reach['sign_test']['negative']} of {n} | "
        f"{reach['sign_test']['p_value']:.3g} | "
        f"{reach['wilcoxon']['p_value']:.3g} |")
  return "\n".join(out) + "\n"


def run(grid: str, costs: Dict[str, float], out: str,
        threshold: float) -> list:
  summary = summarize_runs.summarize_grid(grid)
  table = fig2_grid.by_setting(fig2_grid.scan(grid))
  comparisons = []
  for a, b in summarize_runs.COMPARISONS:
    if a not in summary["chosen"] or b not in summary["chosen"]:
      continue
    if a not in costs or b not in costs:
      continue
    c = summarize_runs.compare(
        table[a][summary["chosen"][a]["setting"]],
        table[b][summary["chosen"][b]["setting"]], threshold)
    comparisons.append({"candidate": a, "reference": b,
                        "per_second": per_second(c, costs[a], costs[b])})
  os.makedirs(out, exist_ok=True)
  plot(os.path.join(out, "figure2_seconds.png"), table, summary["chosen"],
       costs)
  with open(os.path.join(out, "per_second.md"), "w") as f:
    f.write(to_markdown(comparisons, threshold))
  return comparisons


def _chosen_runs(grid: str) -> dict:
  """run -> {seed: Run} of each run at its chosen setting in `grid`."""
  chosen = summarize_runs.summarize_grid(grid)["chosen"]
  table = fig2_grid.by_setting(fig2_grid.scan(grid))
  return {name: table[name][c["setting"]] for name, c in chosen.items()}


def run_against(grid: str, costs: Dict[str, float], against: str,
                against_costs: Dict[str, float], out: str,
                threshold: float,
                pairs: Optional[Sequence[Tuple[str, str]]] = None) -> list:
  """Each run of `grid` (candidate) against the same run of `against`
  (reference), or the (candidate, reference) `pairs` of run names, paired
  by seed: summarize_runs.compare per update, and per_second with each
  side's own cost. Writes out/against.md."""
  new, old = _chosen_runs(grid), _chosen_runs(against)
  if pairs is None:
    pairs = [(n, n) for n in sorted(set(new) & set(old) & set(costs)
                                    & set(against_costs))]
  for a, b in pairs:
    if a not in new or a not in costs:
      raise app.UsageError(f"{a!r}: no chosen run in {grid} or no cost in "
                           "--step_ms.")
    if b not in old or b not in against_costs:
      raise app.UsageError(f"{b!r}: no chosen run in {against} or no cost "
                           "in --against_step_ms.")
  comparisons = []
  for a, b in pairs:
    c = summarize_runs.compare(new[a], old[b], threshold)
    comparisons.append({"run": a if a == b else f"{a} vs {b}",
                        "per_update": c,
                        "per_second": per_second(c, costs[a],
                                                 against_costs[b])})
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "against.md"), "w") as f:
    f.write(against_markdown(comparisons, threshold))
  return comparisons


def against_markdown(comparisons: Sequence[dict], threshold: float) -> str:
  pct = f"{100 * threshold:g}%"
  out = ["| run: new vs old | ms/update | seeds | area per update: new lower "
         f"on (sign p) | updates to {pct}: median difference | area per "
         f"second: new lower on (sign p) | seconds to {pct}: median "
         "difference | test error: new lower on (sign p) | test error: mean "
         "difference |", "|" + "---|" * 9]
  for c in comparisons:
    u, p = c["per_update"], c["per_second"]
    n, te = len(p["seeds"]), u["test_error"]
    out.append(
        f"| {c['run']} | {p['step_ms'][0]:.1f} / {p['step_ms'][1]:.1f} | "
        f"{n} | {u['area']['sign_test']['negative']} of {n} "
        f"({u['area']['sign_test']['p_value']:.3g}) | "
        f"{u['updates_to']['median_difference']:+,.0f} | "
        f"{p['area']['sign_test']['negative']} of {n} "
        f"({p['area']['sign_test']['p_value']:.3g}) | "
        f"{p['seconds_to_threshold']['median_difference']:+.0f} s | "
        f"{te['sign_test']['negative']} of {len(te['differences'])} "
        f"({te['sign_test']['p_value']:.3g}) | "
        f"{100 * te['mean_difference']:+.2f} points |")
  return "\n".join(out) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  out = _OUT.value or _GRID.value
  if _AGAINST.value:
    if not _AGAINST_STEP_MS.value:
      raise app.UsageError("--against needs --against_step_ms.")
    run_against(_GRID.value, parse_step_ms(_STEP_MS.value), _AGAINST.value,
                parse_step_ms(_AGAINST_STEP_MS.value), out, _THRESHOLD.value,
                parse_pairs(_AGAINST_PAIRS.value))
    with open(os.path.join(out, "against.md")) as f:
      print(f.read())
    return
  run(_GRID.value, parse_step_ms(_STEP_MS.value), out, _THRESHOLD.value)
  with open(os.path.join(out, "per_second.md")) as f:
    print(f.read())


if __name__ == "__main__":
  flags.mark_flags_as_required(["grid", "step_ms"])
  app.run(main)
