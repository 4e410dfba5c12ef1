"""Tables, bands and paired tests from a Figure 2 grid directory (issue 13).

  python -m benchmarks.summarize_runs --grid=OUT [--summary_dir=DIR] \
      [--include_unfinished] [--bootstrap_draws=2000] [--bootstrap_seed=0] \
      [--comparison_seeds=2,3,4,...]

OUT is a `benchmarks/reproduce_fig2.py --out` directory (layout in
benchmarks/fig2_grid.py: OUT/runs/<run>/lr_<rate>[_eta<f>]/seed_<s>/). Writes
into --summary_dir (default OUT):

- summary.md / summary.json:
  (a) the learning-rate table: per run and setting, the final validation
      error of every finished seed, their mean and sd, and the chosen setting
      per run by RATE_RULE (written into the output);
  (b) per run at its chosen setting: updates to reach 20%, 10%, 5%
      validation error (median and range over seeds, "not reached" counted),
      final test error (mean ± sd), final test log-likelihood (mean ± sd);
  (c) the paired comparisons of COMPARISONS (WS-RAM+q+c against VAR+c and
      VAR+c+h, each at its chosen setting): per seed the area under the
      validation-error curve and the updates to 10%, with the exact
      two-sided sign test and Wilcoxon signed-rank test over seeds
      (benchmarks/paired_stats.py), n, and the smallest p that n allows;
  and what is missing: unfinished, failed and absent runs and seeds.
- figure2.png: per variant at its chosen setting, the mean over seeds and a
  95% bootstrap band over seeds of the training error (prior samples), the
  gradient variance of theta and the ESS.
- figure3.png: the same band of the training error for each heuristics pair
  (VAR+c vs VAR+c+h, VAR vs VAR+h, WS-RAM vs WS-RAM+h) present.

Only finished runs (results.json) enter tables, tests and bands, unless
--include_unfinished (bands only). The older form,

  python -m benchmarks.summarize_runs --table=seeds.md --dirs=D1,D2,...

still reads directories of the former in-process harness (runs/<run>.done
and runs/<run>.csv) into one table, as it used to.
"""

import csv
import json
import math
import os
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from benchmarks import fig2_grid
from benchmarks import paired_stats

THRESHOLDS = (0.20, 0.10, 0.05)
# (candidate, reference): differences are candidate - reference.
COMPARISONS = (("wsram_qc", "var_c"), ("wsram_qc", "var_c_h"))
COMPARE_THRESHOLD = 0.10
RATE_RULE = (
    "Chosen setting per run: the learning rate (and, for +q runs, eta rate "
    "factor) with the lowest mean validation error at the end of training "
    "(the last metrics.csv row, after the full budget), the mean taken over "
    "the seeds finished in every setting of that run (so all settings are "
    "compared on the same seeds); only finished runs (results.json) count; "
    "a tie goes to the smaller rate. A choice is provisional while some "
    "seed that every setting has started is unfinished or failed in one of "
    "them, or when no seed has finished in every setting (then the means "
    "are over different seeds).")
PANELS = (("train_error", "training error (prior samples)", False),
          ("grad_var_theta", "gradient variance of theta", True),
          ("ess", "effective sample size (max M)", False))

_GRID = flags.DEFINE_string("grid", None, "reproduce_fig2 --out directory.")
_SUMMARY_DIR = flags.DEFINE_string(
    "summary_dir", None, "Where summary.md, summary.json, figure2.png, "
    "figure3.png go (default: --grid).")
_INCLUDE_UNFINISHED = flags.DEFINE_bool(
    "include_unfinished", False, "Also draw unfinished runs in the bands.")
_DRAWS = flags.DEFINE_integer("bootstrap_draws", 2000,
                              "Bootstrap resamples of the seeds.")
_BOOT_SEED = flags.DEFINE_integer("bootstrap_seed", 0, "Bootstrap RNG seed.")
_COMPARISON_SEEDS = flags.DEFINE_list(
    "comparison_seeds", None, "Paired comparisons on these seeds only (e.g. "
    "2,3,4,5,6: not the seeds the rates were chosen on).")
# The older form (former harness layout).
_DIRS = flags.DEFINE_list("dirs", None, "Former reproduce_fig2 --out "
                          "directories (runs/<run>.done, runs/<run>.csv).")
_TABLE = flags.DEFINE_string("table", None, "Markdown file (with --dirs).")
_MEAN = flags.DEFINE_bool(
    "mean", True, "With --dirs: add mean ± sd columns (off for directories "
    "that differ in a setting, e.g. learning rates, where a mean means "
    "nothing).")
_LAST_POINTS = flags.DEFINE_integer(
    "last_points", 3, "With --dirs: curve points averaged for the late "
    "training error.")


# -- numbers -------------------------------------------------------------------


def _mean_sd(values: Sequence[float]) -> Dict[str, float]:
  values = [v for v in values if v is not None and math.isfinite(v)]
  return {"n": len(values),
          "mean": statistics.fmean(values) if values else math.nan,
          "sd": statistics.stdev(values) if len(values) > 1 else math.nan}


def final_val_error(run: fig2_grid.Run) -> float:
  """Validation error at the end of training: the last metrics.csv row."""
  return run.curve[-1].get("val_error", math.nan) if run.curve else math.nan


def choose_settings(table) -> Tuple[Dict[str, dict], Dict[str, dict]]:
  """(per run and setting: the seeds' final validation errors; chosen)."""
  settings: Dict[str, dict] = {}
  chosen: Dict[str, dict] = {}
  for name, by_setting in table.items():
    settings[name] = {}
    for setting, seeds in by_setting.items():
      any_run = next(iter(seeds.values()))
      finals = {s: final_val_error(r) for s, r in seeds.items()
                if r.status == "done"}
      stats = _mean_sd(list(finals.values()))
      settings[name][setting] = {
          "learning_rate": any_run.rate, "eta_factor": any_run.eta_factor,
          "final_val_error": finals, **stats,
          "unfinished": {s: r.last_update for s, r in seeds.items()
                         if r.status in ("unfinished", "empty")},
          "failed": sorted(s for s, r in seeds.items()
                           if r.status == "failed")}
    finished = [set(v["final_val_error"]) for v in settings[name].values()]
    present = [set(seeds) for seeds in by_setting.values()]
    common = sorted(set.intersection(*finished))
    potential = sorted(set.intersection(*present))
    why = []
    if common:
      for v in settings[name].values():
        v["choice_mean"] = statistics.fmean(
            v["final_val_error"][k] for k in common)
    else:
      why.append("no seed finished in every setting, so the means are over "
                 "different seeds")
      for v in settings[name].values():
        v["choice_mean"] = v["mean"]
    candidates = [(v["choice_mean"], v["learning_rate"], v["eta_factor"], k)
                  for k, v in settings[name].items()
                  if v["n"] and math.isfinite(v["choice_mean"])]
    if not candidates:
      continue
    mean, rate, factor, setting = min(candidates)
    waiting = sorted(set(potential) - set(common))
    if waiting:
      why.append(f"seeds {waiting} not yet finished in every setting")
    provisional = bool(why)
    if len(settings[name]) == 1:
      why.append("only one setting tried, so nothing was chosen between")
    chosen[name] = {"setting": setting, "learning_rate": rate,
                    "eta_factor": factor, "choice_seeds": common,
                    "choice_mean_final_val_error": mean,
                    "n": settings[name][setting]["n"],
                    "provisional": provisional, "notes": why}
  return settings, chosen


def _done(seeds: Dict[int, fig2_grid.Run]) -> Dict[int, fig2_grid.Run]:
  return {s: r for s, r in sorted(seeds.items()) if r.status == "done"}


def _reach_summary(per_seed: Dict[int, Optional[int]]) -> dict:
  values = [math.inf if u is None else u for u in per_seed.values()]
  finite = [v for v in values if math.isfinite(v)]
  return {"per_seed": per_seed,
          "median": paired_stats.median(values) if values else math.nan,
          "min": min(values) if values else math.nan,
          "max": max(values) if values else math.nan,
          "not_reached": sum(1 for v in values if math.isinf(v)),
          "reached": len(finite)}


def chosen_table(table, chosen) -> Dict[str, dict]:
  """Per run at its chosen setting: updates to thresholds, test numbers."""
  rows = {}
  for name, pick in chosen.items():
    done = _done(table[name][pick["setting"]])
    reach = {}
    for t in THRESHOLDS:
      reach[f"{t:g}"] = _reach_summary({
          s: paired_stats.updates_to_reach(*r.series("val_error"), t)
          for s, r in done.items()})
    rows[name] = {
        "setting": pick["setting"], "seeds": sorted(done),
        "updates_to_val_error": reach,
        "test_error": dict(_mean_sd([r.results.get("test_error", math.nan)
                                     for r in done.values()]),
                           per_seed={s: r.results.get("test_error")
                                     for s, r in done.items()}),
        "test_log_likelihood": dict(
            _mean_sd([r.results.get("test_log_likelihood", math.nan)
                      for r in done.values()]),
            per_seed={s: r.results.get("test_log_likelihood")
                      for s, r in done.items()}),
        "train_steps": sorted({r.results.get("train_steps")
                               for r in done.values()}, key=str)}
  return rows


def _paired_tests(differences: List[float]) -> dict:
  n = sum(1 for d in differences if d != 0)
  return {"sign_test": paired_stats.sign_test(differences),
          "wilcoxon": paired_stats.wilcoxon_signed_rank(differences),
          "min_attainable_p": paired_stats.min_two_sided_p(n)}


def paired(differences: List[float], center: str = "mean") -> dict:
  """The paired tests of candidate-minus-reference `differences`, the
  differences, and their `center` ("mean" or "median") as
  `<center>_difference` (nan without pairs)."""
  summary = {"mean": statistics.fmean, "median": statistics.median}[center]
  return dict(_paired_tests(differences), differences=differences,
              **{f"{center}_difference": (summary(differences)
                                          if differences else math.nan)})


def compare(a: Dict[int, fig2_grid.Run], b: Dict[int, fig2_grid.Run],
            threshold: float = COMPARE_THRESHOLD,
            only_seeds: Optional[Sequence[int]] = None) -> dict:
  """Per-seed area under the validation-error curve and updates to
  `threshold`, candidate `a` minus reference `b`, over their common finished
  seeds, with paired tests. A run that never reaches the threshold counts as
  reaching it one curve interval after its last point (censored: exact for
  the sign test, a lower bound of the true difference for Wilcoxon).
  `only_seeds`: compare on these seeds only (e.g. leave out the seeds the
  rates were chosen on)."""
  a, b = _done(a), _done(b)
  if only_seeds is not None:
    a = {s: r for s, r in a.items() if s in set(only_seeds)}
    b = {s: r for s, r in b.items() if s in set(only_seeds)}
  seeds = sorted(set(a) & set(b))
  rows, skipped = [], {}
  for s in seeds:
    ua, ea = a[s].series("val_error")
    ub, eb = b[s].series("val_error")
    if ua != ub or len(ua) < 2:
      skipped[s] = "validation curves on different updates"
      continue
    interval = ua[-1] - ua[-2]
    reach_a = paired_stats.updates_to_reach(ua, ea, threshold)
    reach_b = paired_stats.updates_to_reach(ub, eb, threshold)
    censor = ua[-1] + interval
    rows.append({
        "seed": s,
        "area": [paired_stats.area_under_curve(ua, ea) / 1000,
                 paired_stats.area_under_curve(ub, eb) / 1000],
        "mean_val_error": [paired_stats.area_under_curve(ua, ea)
                           / (ua[-1] - ua[0]),
                           paired_stats.area_under_curve(ub, eb)
                           / (ub[-1] - ub[0])],
        "updates_to": [reach_a, reach_b],
        "updates_to_censored": [censor if reach_a is None else reach_a,
                                censor if reach_b is None else reach_b],
        "test_error": [a[s].results.get("test_error", math.nan),
                       b[s].results.get("test_error", math.nan)],
        "span": [ua[0], ua[-1]]})
  area_diff = [r["area"][0] - r["area"][1] for r in rows]
  test_diff = [r["test_error"][0] - r["test_error"][1] for r in rows
               if all(math.isfinite(e) for e in r["test_error"])]
  reach_diff = [r["updates_to_censored"][0] - r["updates_to_censored"][1]
                for r in rows]
  return {"seeds": [r["seed"] for r in rows], "n_pairs": len(rows),
          "not_paired": {s: "not finished in both" for s in
                         sorted((set(a) | set(b)) - set(seeds))} | skipped,
          "threshold": threshold, "per_seed": rows,
          "area": paired(area_diff),
          "updates_to": paired(reach_diff, "median"),
          "test_error": paired(test_diff)}


def missing_report(table, chosen) -> List[str]:
  """Plain lines: runs absent, seeds unfinished/failed, seeds not paired."""
  lines = []
  absent = [n for n in fig2_grid.RUNS if n not in table]
  if absent:
    lines.append("Not in the grid: " + ", ".join(absent) + ".")
  for name, by_setting in table.items():
    for setting, seeds in by_setting.items():
      for s, r in seeds.items():
        if r.status == "failed":
          lines.append(f"{name} {setting} seed {s}: FAILED at update "
                       f"{r.last_update:,} (see {r.path}/log.txt).")
        elif r.status in ("unfinished", "empty"):
          lines.append(f"{name} {setting} seed {s}: unfinished, last curve "
                       f"point at update {r.last_update:,} (running or "
                       "interrupted; rerun the grid to resume).")
    if name not in chosen:
      lines.append(f"{name}: no finished run, no setting chosen.")
  pairing = set()
  for name, pick in chosen.items():
    pairing |= set(_done(table[name][pick["setting"]]))
  for name, pick in chosen.items():
    lacking = sorted(pairing - set(_done(table[name][pick["setting"]])))
    if lacking:
      lines.append(f"{name} at {pick['setting']}: no finished run for seeds "
                   f"{lacking} (finished for other runs at their chosen "
                   "settings).")
  return lines


def summarize_grid(grid: str,
                   comparison_seeds: Optional[Sequence[int]] = None) -> dict:
  """Every number of summary.json from the run folders under `grid`
  (`comparison_seeds`: the paired comparisons use only these seeds)."""
  runs = fig2_grid.scan(grid)
  table = fig2_grid.by_setting(runs)
  settings, chosen = choose_settings(table)
  comparisons = []
  for a, b in COMPARISONS:
    if a in chosen and b in chosen:
      comparisons.append(dict(
          candidate=a, reference=b, candidate_setting=chosen[a]["setting"],
          reference_setting=chosen[b]["setting"],
          selection_seeds=sorted(set(chosen[a]["choice_seeds"])
                                 | set(chosen[b]["choice_seeds"])),
          **compare(table[a][chosen[a]["setting"]],
                    table[b][chosen[b]["setting"]],
                    only_seeds=comparison_seeds)))
  counts = {}
  for r in runs:
    counts[r.status] = counts.get(r.status, 0) + 1
  return {"grid": os.path.abspath(grid), "rule": RATE_RULE,
          "thresholds": list(THRESHOLDS), "run_counts": counts,
          "settings": settings, "chosen": chosen,
          "table": chosen_table(table, chosen), "comparisons": comparisons,
          "missing": missing_report(table, chosen)}


# -- markdown ------------------------------------------------------------------


def _pct(x, digits: int = 2) -> str:
  return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}%}"


def _updates(u) -> str:
  return "not reached" if u is None or math.isinf(u) else f"{int(u):,}"


def _p(x: float) -> str:
  return f"{x:.4f}" if x >= 1e-4 else f"{x:.2e}"


def _label(name: str) -> str:
  return fig2_grid.LABELS[name]


def to_markdown(s: dict) -> str:
  out = [f"# Figure 2 grid: `{s['grid']}`", ""]
  counts = ", ".join(f"{v} {k}" for k, v in sorted(s["run_counts"].items()))
  out += [f"Run folders found: {counts or 'none'}.", ""]

  out += ["## Learning rate per run", "", s["rule"], "",
          "| Run | setting | final validation error per seed | mean ± sd | "
          "n | mean on the choice seeds | pending | |",
          "|---|---|---|---|---|---|---|---|"]
  for name, by_setting in s["settings"].items():
    for setting, v in by_setting.items():
      per_seed = ", ".join(f"s{k}: {_pct(e)}"
                           for k, e in sorted(v["final_val_error"].items()))
      pending = [f"s{k} at {u:,}" for k, u in sorted(v["unfinished"].items())]
      pending += [f"s{k} failed" for k in v["failed"]]
      mark = ""
      if s["chosen"].get(name, {}).get("setting") == setting:
        mark = ("**chosen (provisional)**" if s["chosen"][name]["provisional"]
                else "**chosen**")
      sd = f" ± {_pct(v['sd'])}" if math.isfinite(v["sd"]) else ""
      pick = s["chosen"].get(name)
      choice = "-"
      if pick and v["n"] and math.isfinite(v.get("choice_mean", math.nan)):
        seeds = pick["choice_seeds"]
        choice = _pct(v["choice_mean"]) + (
            f" (s{', s'.join(map(str, seeds))})" if seeds else " (all)")
      out.append(f"| {_label(name)} | {setting} | {per_seed or '-'} | "
                 f"{_pct(v['mean'])}{sd} | {v['n']} | {choice} | "
                 f"{', '.join(pending) or '-'} | {mark} |")
  out.append("")
  notes = [f"- {_label(n)}: {'; '.join(c['notes'])}."
           for n, c in s["chosen"].items() if c["notes"]]
  if notes:
    out += ["Notes on the choices:", *notes, ""]

  out += ["## Each run at its chosen setting", "",
          "| Run | setting | seeds | "
          + " | ".join(f"updates to {t:.0%} val. error" for t in THRESHOLDS)
          + " | test error | test log-likelihood |",
          "|---|---|---|" + "---|" * len(THRESHOLDS) + "---|---|"]
  for name, row in s["table"].items():
    cells = []
    for t in THRESHOLDS:
      r = row["updates_to_val_error"][f"{t:g}"]
      if not r["per_seed"]:
        cells.append("-")
        continue
      if r["reached"] == 0:
        cells.append(f"not reached in {len(r['per_seed'])} of "
                     f"{len(r['per_seed'])}")
        continue
      text = f"{_updates(r['median'])} ({_updates(r['min'])}–" \
             f"{_updates(r['max'])})"
      if r["not_reached"]:
        text += f"; not reached in {r['not_reached']} of " \
                f"{len(r['per_seed'])}"
      cells.append(text)
    te, ll = row["test_error"], row["test_log_likelihood"]
    te_text = _pct(te["mean"]) + (f" ± {_pct(te['sd'])}"
                                  if math.isfinite(te["sd"]) else "")
    ll_text = ("-" if not math.isfinite(ll["mean"]) else f"{ll['mean']:.4f}"
               + (f" ± {ll['sd']:.4f}" if math.isfinite(ll["sd"]) else ""))
    out.append(f"| {_label(name)} | {row['setting']} | "
               f"{len(row['seeds'])} ({', '.join(map(str, row['seeds']))}) | "
               + " | ".join(cells) + f" | {te_text} | {ll_text} |")
  out += ["", "Updates to a validation error: first curve point at or below "
          "it (median over seeds, range in brackets; a seed that never gets "
          "there is 'not reached' and sorts last). Test error and "
          "log-likelihood: results.json of each run (whole test set, M prior "
          "samples), mean ± sd over seeds.", ""]

  out += ["## Paired comparison over seeds", ""]
  if not s["comparisons"]:
    out += ["No comparison yet: a run of the pair has no chosen setting.", ""]
  for c in s["comparisons"]:
    a, b = _label(c["candidate"]), _label(c["reference"])
    t = c["threshold"]
    out += [f"### {a} ({c['candidate_setting']}) vs {b} "
            f"({c['reference_setting']})", "",
            f"| seed | area {a} | area {b} | updates to {t:.0%} {a} | "
            f"updates to {t:.0%} {b} | test error {a} | test error {b} |",
            "|---|---|---|---|---|---|---|"]
    for r in c["per_seed"]:
      out.append(f"| {r['seed']} | {r['area'][0]:.3f} | {r['area'][1]:.3f} | "
                 f"{_updates(r['updates_to'][0])} | "
                 f"{_updates(r['updates_to'][1])} | "
                 f"{_pct(r['test_error'][0])} | {_pct(r['test_error'][1])} |")
    out.append("")
    for key, what in (("area", "area under the validation-error curve"),
                      ("updates_to", f"updates to {t:.0%} validation error"),
                      ("test_error", "test error")):
      v = c[key]
      sign, wil = v["sign_test"], v["wilcoxon"]
      if key == "area":
        lead = f"mean difference {v['mean_difference']:+.3f}" if c[
            "n_pairs"] else "no pairs"
      elif key == "test_error":
        lead = (f"mean difference {100 * v['mean_difference']:+.2f} points"
                if v["differences"] else "no pairs")
      else:
        lead = (f"median difference {v['median_difference']:+,.0f} updates"
                if c["n_pairs"] else "no pairs")
      out.append(
          f"- {what} ({a} − {b}; negative: {a} better): {lead}; "
          f"{a} lower in {sign['negative']} of {c['n_pairs']} seeds, higher "
          f"in {sign['positive']}, equal in {sign['zeros']}. Exact sign test "
          f"p = {_p(sign['p_value'])} (n = {sign['n']}); exact Wilcoxon "
          f"signed-rank p = {_p(wil['p_value'])} (n = {wil['n']}, W = "
          f"{wil['statistic']:g}). Smallest p possible with n = {sign['n']}: "
          f"{_p(v['min_attainable_p'])}.")
    out += ["", f"Area: trapezoid of the validation error over updates, from "
            "the first to the last curve point, in error × 1,000 updates. "
            "A run that does not reach the threshold counts as reaching it "
            "one curve interval after the budget (the sign test is exact "
            "under this censoring). Two-sided tests; seeds are paired (same "
            "seed: same data order and same initial shared weights)."]
    reused = sorted(set(c["seeds"]) & set(c["selection_seeds"]))
    if reused:
      out.append(
          f"Seeds {reused} also chose the learning rates, which favours the "
          "run that tried more settings; `summarize_runs "
          "--comparison_seeds=...` leaves them out.")
    if c["not_paired"]:
      out.append("Not paired: " + "; ".join(
          f"seed {k}: {v}" for k, v in c["not_paired"].items()) + ".")
    out.append("")

  out += ["## Missing or incomplete", ""]
  out += [f"- {line}" for line in s["missing"]] or ["Nothing: every run "
                                                     "found has finished."]
  return "\n".join(out) + "\n"


def _jsonable(x):
  if isinstance(x, float):
    return x if math.isfinite(x) else None
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x


# -- figures -------------------------------------------------------------------


def band(seeds: Dict[int, fig2_grid.Run], key: str, draws: int = 2000,
         seed: int = 0):
  """(updates, mean, low, high, n) of `key` over the seeds' curves."""
  series = {s: dict(zip(*r.series(key))) for s, r in seeds.items()}
  updates = sorted({u for points in series.values() for u in points})
  matrix = np.array([[points.get(u, np.nan) for u in updates]
                     for points in series.values()], dtype=float)
  if not updates:
    return [], np.array([]), np.array([]), np.array([]), np.array([])
  mean, low, high, n = paired_stats.bootstrap_band(matrix, 0.95, draws, seed)
  return updates, mean, low, high, n


def _curves_for(table, chosen, name, include_unfinished):
  seeds = table[name][chosen[name]["setting"]]
  return {s: r for s, r in seeds.items()
          if r.status == "done" or (include_unfinished and r.curve)}


def _draw(ax, updates, mean, low, high, label):
  x = np.asarray(updates) / 1000
  line, = ax.plot(x, mean, marker=".", label=label)
  ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2,
                  linewidth=0)


def _legend_label(name, chosen, n):
  return f"{_label(name)} ({chosen[name]['setting']}, {n} seeds)"


def plot_figure2(path, table, chosen, include_unfinished=False, draws=2000,
                 seed=0) -> None:
  fig, axes = plt.subplots(1, len(PANELS), figsize=(16, 4.4))
  for ax, (key, title, log) in zip(axes, PANELS):
    for name in fig2_grid.VARIANTS:
      if name not in chosen:
        continue
      runs = _curves_for(table, chosen, name, include_unfinished)
      updates, mean, low, high, _ = band(runs, key, draws, seed)
      if updates:
        _draw(ax, updates, mean, low, high,
              _legend_label(name, chosen, len(runs)))
    ax.set_title(title)
    ax.set_xlabel("thousands of updates")
    if log and ax.lines:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  if axes[0].lines:
    axes[0].legend(fontsize=8)
  else:
    axes[0].text(0.5, 0.5, "no finished runs yet", ha="center",
                 transform=axes[0].transAxes)
  fig.suptitle("Mean over seeds at each run's chosen learning rate; band: "
               "95% bootstrap over seeds", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_figure3(path, table, chosen, include_unfinished=False, draws=2000,
                 seed=0) -> None:
  pairs = [p for p in fig2_grid.HEURISTIC_PAIRS
           if any(n in chosen for n in p)] or list(
               fig2_grid.HEURISTIC_PAIRS[:1])
  fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.4),
                           sharey=True, squeeze=False)
  for ax, (base, with_h) in zip(axes[0], pairs):
    for name in (base, with_h):
      if name not in chosen:
        continue
      runs = _curves_for(table, chosen, name, include_unfinished)
      updates, mean, low, high, _ = band(runs, "train_error", draws, seed)
      if updates:
        _draw(ax, updates, mean, low, high,
              _legend_label(name, chosen, len(runs)))
    ax.set_title(f"{_label(base)} without and with heuristics (+h)")
    ax.set_xlabel("thousands of updates")
    ax.grid(alpha=0.3)
    if ax.lines:
      ax.legend(fontsize=8)
    else:
      ax.text(0.5, 0.5, "no finished runs yet", ha="center",
              transform=ax.transAxes)
  axes[0][0].set_ylabel("training error (prior samples)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_summary(grid: str, out: Optional[str] = None,
                  include_unfinished: bool = False, draws: int = 2000,
                  seed: int = 0,
                  comparison_seeds: Optional[Sequence[int]] = None) -> dict:
  """summary.md, summary.json, figure2.png, figure3.png into `out`."""
  out = out or grid
  os.makedirs(out, exist_ok=True)
  summary = summarize_grid(grid, comparison_seeds)
  with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(to_markdown(summary))
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(_jsonable(summary), f, indent=2)
  table = fig2_grid.by_setting(fig2_grid.scan(grid))
  plot_figure2(os.path.join(out, "figure2.png"), table, summary["chosen"],
               include_unfinished, draws, seed)
  plot_figure3(os.path.join(out, "figure3.png"), table, summary["chosen"],
               include_unfinished, draws, seed)
  return summary


# -- the older form: directories of the former in-process harness --------------


def read_legacy_curves(run_dir: str, names: Sequence[str]
                       ) -> Dict[str, List[dict]]:
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


def read_legacy_done(run_dir: str, names: Sequence[str]) -> Dict[str, dict]:
  done = {}
  for name in names:
    path = os.path.join(run_dir, f"{name}.done")
    if os.path.exists(path):
      with open(path) as f:
        done[name] = json.load(f)
  return done


def late_train_error(rows: List[dict], last_points: int) -> float:
  """Mean training error of the last `last_points` finite curve points."""
  values = [r["train_error"] for r in rows if math.isfinite(r["train_error"])]
  return statistics.fmean(values[-last_points:]) if values else math.nan


def _legacy_mean_sd(values: Sequence[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.1%}"
  return f"{statistics.fmean(values):.1%} ± {statistics.stdev(values):.1%}"


def summarize(dirs: Sequence[str], last_points: int = 3,
              mean: bool = True) -> str:
  """Former layout: the markdown table; runs missing from a directory: '-'."""
  names = list(fig2_grid.RUNS)
  found: Dict[str, Dict[str, dict]] = {}
  curves: Dict[str, Dict[str, List[dict]]] = {}
  for d in dirs:
    run_dir = os.path.join(d, "runs")
    if not os.path.isdir(run_dir):
      raise ValueError(f"--dirs: {d} has no runs/ folder (not a "
                       "reproduce_fig2 --out directory)")
    found[d] = read_legacy_done(run_dir, names)
    curves[d] = read_legacy_curves(run_dir, names)
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
      cells += [_legacy_mean_sd(done), _legacy_mean_sd(late)]
    lines.append(f"| {_label(name)} | " + " | ".join(cells) + " |")
  lines += ["", "Test error: full test set after the run's budget, M=5 prior "
            "samples."]
  if mean:
    lines[-1] += (f" Late train error: mean of the last {last_points} curve "
                  "points (prior samples), averaged over the directories.")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if bool(_GRID.value) == bool(_DIRS.value):
    raise app.UsageError("Give --grid=OUT (a reproduce_fig2 grid), or the "
                         "older --dirs=... --table=FILE.")
  if _DIRS.value:
    if not _TABLE.value:
      raise app.UsageError("--dirs needs --table.")
    table = summarize(_DIRS.value, _LAST_POINTS.value, _MEAN.value)
    with open(_TABLE.value, "w") as f:
      f.write(table)
    print(table)
    return
  if not os.path.isdir(os.path.join(_GRID.value, "runs")):
    raise app.UsageError(f"--grid: {_GRID.value} has no runs/ folder.")
  out = _SUMMARY_DIR.value or _GRID.value
  seeds = ([int(x) for x in _COMPARISON_SEEDS.value]
           if _COMPARISON_SEEDS.value else None)
  write_summary(_GRID.value, out, _INCLUDE_UNFINISHED.value, _DRAWS.value,
                _BOOT_SEED.value, seeds)
  with open(os.path.join(out, "summary.md")) as f:
    print(f.read())


if __name__ == "__main__":
  app.run(main)
