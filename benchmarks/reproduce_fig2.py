"""Paper Figure 2, Figure 3 and Table 1 over a grid of seeds and rates (issue 13).

  python -m benchmarks.reproduce_fig2 --out=DIR \
      [--variants=wsram_qc,var_c,...] [--heuristics] \
      [--learning_rates=3e-4,1e-3,3e-3] [--eta_rate_factors=1,3,1/3] \
      [--seeds=0,1] [--rates_from=DIR/summary.json] \
      [--updates=10000] [--eval_every=500] [--grad_var_every=500] \
      [--grad_var_draws=10] [--plot_only] [--dry_run]

Every run of the grid (runs x learning rates x seeds, x eta rate factors for
the +q runs) is one `python -m wsram_tf.main` subprocess: the command users
run, so the curves measure what users get (model.fit with the library's
callbacks, resume from its own checkpoints). A run trains into

  DIR/runs/<run>/lr_<rate>/seed_<s>/      (eta factor f != 1: lr_<rate>_eta<f>)

with --config=configs/mnist.py:<variant>, config.seed = s, theta's Adam rate
and eta's (rate x f), config.train.num_train_steps = --updates, one Keras
epoch = --eval_every updates (a metrics.csv row: epoch means of the train
metrics, train_error from M prior samples for every variant, and the
validation error and log-likelihood on the config's validation split), a
backup every --eval_every updates, the gradient variance of theta and eta
every --grad_var_every updates (grad_variance.csv), no glimpse pictures, and
the test set scored once at the end (results.json). stdout and stderr are
appended to log.txt; DIR/progress.txt gets a line per run ended.

Runs: the variants of configs/mnist.py and, with --heuristics, `<v>_h` for
each of var_c, var, wsram in --variants: that variant with the exploration
heuristics of §4.5 (--heuristic_values). A run with results.json is skipped;
an unfinished one is started again with the same command and resumes from
its last backup; a run whose config.json disagrees with the command is not
touched (a conflict); a run whose log.txt changed in the last --busy_seconds
(another process is training it) or that another harness holds (lock file)
is left alone; a failed run is logged in progress.txt and run.json and the
grid goes on. --rates_from trains each run only at the setting a previous
summary chose for it (summarize_runs' summary.json), for the second phase
of the protocol: more seeds at the chosen rates (a provisional choice is
refused unless --allow_provisional).

Outputs in DIR, rewritten after every run and by --plot_only (see
benchmarks/summarize_runs.py): summary.md and summary.json (rate table and
choice, per-run table, paired tests), figure2.png and figure3.png (mean
over seeds with a 95% bootstrap band, each run at its chosen setting),
table1.md (the per-run table), curves.csv (every curve point of every seed,
plus the mean over the finished seeds), run.json (this invocation: command,
grid, what ran, skipped, failed; machine).

The former --eval_examples is gone: curve points now use the validation
split of the config (5,000 held-out training digits, placed once), and the
test set is scored only once, at the end of a run.
"""

import csv
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

from absl import app
from absl import flags
from absl import logging

from benchmarks import fig2_grid
from benchmarks import summarize_runs
from wsram_tf.configs import mnist as mnist_configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEURISTICS = fig2_grid.HEURISTICS
RUNS = fig2_grid.RUNS
LABELS = fig2_grid.LABELS
# Table 1 of the paper: "after 10 million updates using 5 samples".
PAPER_UPDATES = 10_000_000
CURVE_KEYS = ("train_error", "bound", "ess", "val_error",
              "val_log_likelihood", "grad_var_theta", "grad_var_eta")
CURVE_COLUMNS = ("run", "setting", "learning_rate", "eta_factor", "seed",
                 "update") + CURVE_KEYS
_DEFAULTS = mnist_configs.get_config()

_OUT = flags.DEFINE_string("out", "benchmarks/results/fig2_grid",
                           "Output directory (the grid lives in OUT/runs).")
_UPDATES = flags.DEFINE_integer(
    "updates", 10_000, "Updates per run (config.train.num_train_steps; a "
    "multiple of --eval_every).")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", 500, "Updates per curve point: config.train.steps_per_epoch "
    "(validation at each epoch end) and checkpoint_every_steps.")
_GRAD_VAR_EVERY = flags.DEFINE_integer(
    "grad_var_every", 500, "Updates between gradient-variance measurements "
    "(config.train.grad_var_every_steps; a multiple of --eval_every).")
_GRAD_VAR_DRAWS = flags.DEFINE_integer(
    "grad_var_draws", _DEFAULTS.train.grad_var_draws,
    "Gradient estimates per measurement (config.train.grad_var_draws; "
    "passed only when it differs from the config's).")
_VARIANTS = flags.DEFINE_list(
    "variants", ["wsram_qc", "var_c", "wsram", "var", "wsram_c", "wsram_q"],
    f"Runs to train, in this order within a rate and seed: {', '.join(RUNS)}.")
_HEURISTICS = flags.DEFINE_bool(
    "heuristics", True, "Also train <v>_h for v in var_c, var, wsram listed "
    "in --variants (Fig. 3).")
_HEURISTIC_VALUES = flags.DEFINE_list(
    "heuristic_values", [f"{k}={v}" for k, v in HEURISTICS.items()],
    "field=value settings of config.objective for the +h runs.")
_PAPER_SCALE = flags.DEFINE_bool(
    "paper_scale", False, f"The paper's Table 1 budget: {PAPER_UPDATES:,} "
    "updates per run, a curve point every 50k, grad var every 250k.")
_LEARNING_RATES = flags.DEFINE_list(
    "learning_rates", None, "Adam rates of theta to try, e.g. 3e-4,1e-3,3e-3 "
    "(default: --learning_rate, else the config's).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 0.0, "One rate (the former flag; 0: the config's).")
_ETA_RATE_FACTORS = flags.DEFINE_list(
    "eta_rate_factors", ["1"], "+q runs only: eta's rate = factor x theta's, "
    "e.g. 1,3,1/3. Other runs always use factor 1.")
_SEEDS = flags.DEFINE_list(
    "seeds", None, "config.seed of the runs (default: --seed, else the "
    "config's).")
_SEED = flags.DEFINE_integer("seed", -1, "One seed (the former flag; -1: the "
                             "config's).")
_RATES_FROM = flags.DEFINE_string(
    "rates_from", None, "summary.json of a rate grid: train each run only at "
    "its chosen setting (instead of --learning_rates/--eta_rate_factors).")
_ALLOW_PROVISIONAL = flags.DEFINE_bool(
    "allow_provisional", False, "With --rates_from: also use choices the "
    "summary marks provisional (rate grid not finished on the same seeds).")
_CONFIG_MODIFIERS = flags.DEFINE_list(
    "config_modifiers", [], "Preset modifiers after the variant, e.g. tiny "
    "(configs/mnist.py:<variant>,tiny).")
_OVERRIDES = flags.DEFINE_list(
    "overrides", [], "Extra field=value config overrides for every run, "
    "e.g. data.source=idx (added as --config.<field>=<value>).")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS of each run "
    "(0: inherit).")
_CPU_LIST = flags.DEFINE_string(
    "cpu_list", "", "Pin each run to these CPUs with taskset -c (e.g. 0).")
_BUSY_SECONDS = flags.DEFINE_integer(
    "busy_seconds", 600, "Leave alone an unfinished run whose log.txt or "
    "metrics.csv changed this recently (another process is training it); "
    "0: off.")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False,
                               "Only redraw the outputs from DIR.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False,
                             "Print each run's command and state; run none.")


class Budget(NamedTuple):
  updates: int
  eval_every: int
  grad_var_every: int
  grad_var_draws: int


class RunSpec(NamedTuple):
  run: str
  rate: float
  seed: int
  eta_factor: float = 1.0

  @property
  def variant(self) -> str:
    return RUNS[self.run][0]

  @property
  def heuristics(self) -> bool:
    return RUNS[self.run][1]

  @property
  def setting(self) -> str:
    return fig2_grid.setting_name(self.rate, self.eta_factor)

  @property
  def eta_rate(self) -> float:
    return self.rate * self.eta_factor

  def directory(self, out: str) -> str:
    return fig2_grid.run_dir(os.path.abspath(out), self.run, self.rate,
                             self.seed, self.eta_factor)


def check_budget(b: Budget) -> None:
  if min(b.updates, b.eval_every, b.grad_var_every) < 1:
    raise ValueError(f"reproduce_fig2: budget values must be >= 1: {b}.")
  if b.updates % b.eval_every or b.grad_var_every % b.eval_every:
    raise ValueError("reproduce_fig2: --updates and --grad_var_every must be "
                     f"multiples of --eval_every, got {b}.")
  if b.grad_var_draws < 2:
    raise ValueError("reproduce_fig2: --grad_var_draws must be >= 2.")


def check_runs(names: Sequence[str]) -> None:
  for name in names:
    if name not in RUNS:
      raise ValueError(f"reproduce_fig2: unknown run {name!r}; valid: "
                       f"{', '.join(RUNS)}.")


def with_heuristic_runs(names: Sequence[str]) -> List[str]:
  """`names` plus <v>_h for each v in var_c, var, wsram among them."""
  names = list(names)
  for base, with_h in fig2_grid.HEURISTIC_PAIRS:
    if base in names and with_h not in names:
      names.append(with_h)
  return names


def plan_grid(names: Sequence[str], rates: Sequence[float],
              seeds: Sequence[int], eta_factors: Sequence[float] = (1.0,)
              ) -> List[RunSpec]:
  """Rates outermost, then seeds, then runs (each seed's pair finishes
  together), then eta factors for the +q runs (only factor 1 for others)."""
  check_runs(names)
  specs = []
  for rate in rates:
    for seed in seeds:
      for name in names:
        factors = eta_factors if fig2_grid.is_q_run(name) else (1.0,)
        for factor in factors:
          specs.append(RunSpec(name, float(rate), int(seed), float(factor)))
  return list(dict.fromkeys(specs))  # Duplicates (e.g. a rate twice) once.


def plan_chosen(names: Sequence[str], chosen: Dict[str, dict],
                seeds: Sequence[int]) -> Tuple[List[RunSpec], List[str]]:
  """Each run at its chosen setting (summary.json "chosen"); seeds outer.
  Returns (specs, runs without a chosen setting)."""
  check_runs(names)
  specs, unchosen = [], [n for n in names if n not in chosen]
  for seed in seeds:
    for name in names:
      if name in chosen:
        c = chosen[name]
        specs.append(RunSpec(name, float(c["learning_rate"]), int(seed),
                             float(c.get("eta_factor", 1.0))))
  return specs, unchosen


def _flag_value(value) -> str:
  if isinstance(value, float):
    return repr(value)
  return str(value)


def command(spec: RunSpec, budget: Budget, out: str,
            heuristics: Optional[Dict[str, float]] = None,
            modifiers: Sequence[str] = (), overrides: Sequence[str] = (),
            python: str = "python3") -> List[str]:
  """The `python -m wsram_tf.main` command line of one run."""
  preset = ",".join([spec.variant, *modifiers])
  cmd = [python, "-m", "wsram_tf.main", f"--config=configs/mnist.py:{preset}",
         f"--workdir={spec.directory(out)}",
         f"--config.seed={spec.seed}",
         f"--config.train.learning_rate={fig2_grid.rate_name(spec.rate)}",
         "--config.train.inference_learning_rate="
         f"{fig2_grid.rate_name(spec.eta_rate)}",
         f"--config.train.num_train_steps={budget.updates}",
         f"--config.train.steps_per_epoch={budget.eval_every}",
         f"--config.train.checkpoint_every_steps={budget.eval_every}",
         f"--config.train.grad_var_every_steps={budget.grad_var_every}",
         "--config.train.glimpse_every_epochs=0"]
  if budget.grad_var_draws != _DEFAULTS.train.grad_var_draws:
    cmd.append(f"--config.train.grad_var_draws={budget.grad_var_draws}")
  if spec.heuristics:
    for field, value in (heuristics or HEURISTICS).items():
      cmd.append(f"--config.objective.{field}={_flag_value(value)}")
  cmd += [f"--config.{item}" for item in overrides]
  return cmd


def expected_config(spec: RunSpec, budget: Budget,
                    heuristics: Optional[Dict[str, float]] = None,
                    overrides: Sequence[str] = ()) -> dict:
  """Fields of config.json that must match for a run to be resumed (fields
  set by `overrides` are left to them)."""
  expected = {("variant",): spec.variant, ("seed",): spec.seed,
              ("train", "learning_rate"): spec.rate,
              ("train", "inference_learning_rate"): spec.eta_rate,
              ("train", "num_train_steps"): budget.updates,
              ("train", "steps_per_epoch"): budget.eval_every,
              ("train", "grad_var_every_steps"): budget.grad_var_every,
              ("train", "grad_var_draws"): budget.grad_var_draws}
  objective = {field: _DEFAULTS.objective[field] for field in HEURISTICS}
  if spec.heuristics:
    objective.update(heuristics or HEURISTICS)
  for field, value in objective.items():
    expected[("objective", field)] = value
  overridden = {tuple(item.partition("=")[0].split(".")) for item in overrides}
  return {k: v for k, v in expected.items() if k not in overridden}


def config_conflicts(config: dict, expected: dict) -> List[str]:
  """'field: found X, want Y' for each expected field config.json differs in."""
  problems = []
  for path, want in expected.items():
    found = config
    for key in path:
      found = found.get(key) if isinstance(found, dict) else None
    if isinstance(want, float) or isinstance(found, float):
      same = (found is not None and want is not None
              and math.isclose(float(found), float(want), rel_tol=1e-9))
    else:
      same = found == want
    if not same:
      problems.append(f"{'.'.join(path)}: found {found!r}, want {want!r}")
  return problems


def _lock_holder(path: str) -> Optional[int]:
  """The live pid in the lock file `path`, else None (stale locks count as
  free)."""
  try:
    with open(path) as f:
      pid = int(f.read().strip() or 0)
  except (OSError, ValueError):
    return None
  if pid <= 0 or pid == os.getpid():
    return None
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return None
  except PermissionError:
    return pid
  return pid


def run_state(directory: str, busy_seconds: float = 0,
              now: Optional[float] = None) -> str:
  """'done' | 'new' | 'unfinished' | 'busy' (another process trains it)."""
  if os.path.exists(os.path.join(directory, "results.json")):
    return "done"
  if not os.path.isdir(directory):
    return "new"
  if _lock_holder(os.path.join(directory, "harness.lock")) is not None:
    return "busy"
  if busy_seconds > 0:
    now = time.time() if now is None else now
    for name in ("log.txt", "metrics.csv", "grad_variance.csv"):
      path = os.path.join(directory, name)
      if os.path.exists(path) and now - os.path.getmtime(path) < busy_seconds:
        return "busy"
  has_work = any(os.path.exists(os.path.join(directory, n))
                 for n in ("config.json", "metrics.csv", "checkpoints"))
  return "unfinished" if has_work else "new"


Runner = Callable[[List[str], str, Dict[str, str]], int]


def subprocess_runner(cmd: List[str], directory: str,
                      env: Dict[str, str]) -> int:
  """Runs `cmd` from the repository root; output appended to log.txt."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "log.txt"), "ab") as log:
    log.write(f"\n### {datetime.datetime.now().isoformat()} "
              f"{shlex.join(cmd)}\n".encode())
    log.flush()
    return subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                          env=env, check=False).returncode


def run_environment(threads: int = 0) -> Dict[str, str]:
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env["PYTHONPATH"] = os.pathsep.join(
      [REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  if threads:
    env["TF_NUM_INTRAOP_THREADS"] = str(threads)
    env["TF_NUM_INTEROP_THREADS"] = str(threads)
  return env


def _progress(out: str, spec: RunSpec, what: str) -> None:
  eta = "" if spec.eta_factor == 1 else f" eta_factor={spec.eta_factor:g}"
  with open(os.path.join(out, "progress.txt"), "a") as f:
    f.write(f"{time.strftime('%a %b %d %H:%M:%S %Z %Y')} {spec.run} "
            f"lr={fig2_grid.rate_name(spec.rate)}{eta} seed={spec.seed} "
            f"{what}\n")


def run_grid(specs: Sequence[RunSpec], budget: Budget, out: str,
             runner: Runner = subprocess_runner,
             heuristics: Optional[Dict[str, float]] = None,
             modifiers: Sequence[str] = (), overrides: Sequence[str] = (),
             env: Optional[Dict[str, str]] = None,
             prefix: Sequence[str] = (), python: str = sys.executable,
             busy_seconds: float = 0, dry_run: bool = False,
             after_each: Optional[Callable[[], None]] = None) -> dict:
  """Runs the specs not done yet; returns what happened to each."""
  check_budget(budget)
  env = run_environment() if env is None else env
  report = {k: [] for k in ("trained", "resumed", "skipped_done", "busy",
                            "conflict", "failed")}
  if dry_run:
    print(f"# Commands run from {REPO}; output appended to <workdir>/log.txt.")
  for spec in specs:
    directory = spec.directory(out)
    cmd = list(prefix) + command(spec, budget, out, heuristics, modifiers,
                                 overrides, python)
    name = os.path.relpath(directory, os.path.abspath(out))
    state = run_state(directory, busy_seconds)
    problems = []
    if state == "unfinished":
      config_path = os.path.join(directory, "config.json")
      if os.path.exists(config_path):
        with open(config_path) as f:
          problems = config_conflicts(
              json.load(f),
              expected_config(spec, budget, heuristics, overrides))
    if dry_run:
      print(f"# {name}: {state}"
            + (f" CONFLICT ({'; '.join(problems)})" if problems else ""))
      if state in ("new", "unfinished") and not problems:
        print(shlex.join(cmd))
      continue
    if state == "done":
      report["skipped_done"].append(name)
      continue
    if state == "busy":
      logging.info("%s: another process is training it; left alone.", name)
      report["busy"].append(name)
      continue
    if problems:
      logging.error("%s: config.json disagrees with this grid (%s); not run.",
                    name, "; ".join(problems))
      report["conflict"].append({"run": name, "problems": problems})
      _progress(out, spec, "conflict")
      continue
    os.makedirs(directory, exist_ok=True)
    lock = os.path.join(directory, "harness.lock")
    try:
      fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # Stale (run_state saw no live holder): retake.
      os.remove(lock)
      fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    with os.fdopen(fd, "w") as f:
      f.write(str(os.getpid()))
    logging.info("%s: %s", name, "resuming" if state == "unfinished"
                 else "starting")
    try:
      rc = runner(cmd, directory, env)
    finally:
      os.remove(lock)
    finished = os.path.exists(os.path.join(directory, "results.json"))
    _progress(out, spec, f"rc={rc}")
    if rc != 0 or not finished:
      logging.error("%s: failed (rc=%s%s); see %s/log.txt. Going on.", name,
                    rc, "" if finished else ", no results.json", directory)
      report["failed"].append({"run": name, "rc": rc})
    else:
      report["resumed" if state == "unfinished" else "trained"].append(name)
    if after_each is not None:
      try:
        after_each()
      except Exception:  # pylint: disable=broad-except
        # A broken summary must not stop a grid of CPU-hours.
        logging.exception("Writing the outputs failed; the grid goes on.")
  return report


# -- outputs -------------------------------------------------------------------


def write_curves(path: str, runs: Sequence[fig2_grid.Run]) -> None:
  """Every curve point of every seed, then the mean over finished seeds."""
  def points(r):
    rows = {}
    for key in CURVE_KEYS:
      for u, v in zip(*r.series(key)):
        rows.setdefault(u, {})[key] = v
    return rows

  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, CURVE_COLUMNS, restval="")
    writer.writeheader()
    groups: Dict[tuple, List[fig2_grid.Run]] = {}
    for r in runs:
      groups.setdefault((r.run, r.setting), []).append(r)
    for (name, setting), members in groups.items():
      base = {"run": name, "setting": setting,
              "learning_rate": fig2_grid.rate_name(members[0].rate),
              "eta_factor": f"{members[0].eta_factor:g}"}
      done = []
      for r in sorted(members, key=lambda r: r.seed):
        rows = points(r)
        if r.status == "done":
          done.append(rows)
        for u in sorted(rows):
          writer.writerow(dict(base, seed=r.seed, update=u, **rows[u]))
      if done:
        for u in sorted({u for rows in done for u in rows}):
          mean = {}
          for key in CURVE_KEYS:
            values = [rows[u][key] for rows in done
                      if u in rows and key in rows[u]]
            if values:
              mean[key] = sum(values) / len(values)
          writer.writerow(dict(base, seed=f"mean of {len(done)}", update=u,
                               **mean))


def table1(summary: dict) -> str:
  """The per-run section of summary.md (each run at its chosen setting)."""
  text = summarize_runs.to_markdown(summary)
  start = text.index("## Each run at its chosen setting")
  end = text.index("## Paired comparison")
  return text[start:end].rstrip() + "\n"


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def write_outputs(out: str, info: dict) -> dict:
  """summary.md/.json, figure2.png, figure3.png, table1.md, curves.csv,
  run.json from the run folders in `out`."""
  os.makedirs(out, exist_ok=True)
  summary = summarize_runs.write_summary(out, out)
  with open(os.path.join(out, "table1.md"), "w") as f:
    f.write(table1(summary))
  write_curves(os.path.join(out, "curves.csv"), fig2_grid.scan(out))
  info = dict(info, chosen=summary["chosen"], run_counts=summary["run_counts"],
              missing=summary["missing"],
              machine={"nproc": os.cpu_count(), "cpu": _cpu_model(),
                       "platform": platform.platform(),
                       "python": platform.python_version(),
                       "tensorflow": _version("tensorflow"),
                       "keras": _version("keras")})
  with open(os.path.join(out, "run.json"), "w") as f:
    json.dump(summarize_runs._jsonable(info), f, indent=2)  # pylint: disable=protected-access
  return info


def reproduce(out: str, specs: Sequence[RunSpec], budget: Budget,
              runner: Runner = subprocess_runner, plot_only: bool = False,
              command_line: str = "", **run_kwargs) -> dict:
  """Trains the specs not yet done in `out`, then writes the outputs."""
  check_budget(budget)
  os.makedirs(os.path.join(out, "runs"), exist_ok=True)
  start = time.time()
  base = {"command": command_line, "budget": budget._asdict(),
          "grid": [dict(s._asdict(), setting=s.setting) for s in specs]}
  report = {}
  if not plot_only:
    report = run_grid(specs, budget, out, runner,
                      after_each=lambda: write_outputs(out, base),
                      **run_kwargs)
  return write_outputs(out, dict(
      base, date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
      this_invocation=report, seconds_this_invocation=time.time() - start))


# -- command line --------------------------------------------------------------


def _numbers(values: Sequence[str], flag: str) -> List[float]:
  try:
    return [fig2_grid.parse_number(v) for v in values]
  except ValueError as e:
    raise app.UsageError(f"{flag}: {e}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _PAPER_SCALE.value:
    budget = Budget(PAPER_UPDATES, 50_000, 250_000, _GRAD_VAR_DRAWS.value)
  else:
    budget = Budget(_UPDATES.value, _EVAL_EVERY.value, _GRAD_VAR_EVERY.value,
                    _GRAD_VAR_DRAWS.value)
  check_budget(budget)
  names = list(_VARIANTS.value)
  check_runs(names)
  if _HEURISTICS.value:
    names = with_heuristic_runs(names)
  heuristics = {}
  for item in _HEURISTIC_VALUES.value:
    field, _, value = item.partition("=")
    if field not in HEURISTICS:
      raise app.UsageError(f"--heuristic_values: unknown field {field!r}; "
                           f"valid: {', '.join(HEURISTICS)}.")
    heuristics[field] = float(value)
  if _SEEDS.value and _SEED.value >= 0:
    raise app.UsageError("Give --seeds or --seed, not both.")
  seeds = ([int(s) for s in _SEEDS.value] if _SEEDS.value else
           [_SEED.value if _SEED.value >= 0 else _DEFAULTS.seed])
  out = _OUT.value
  unchosen = []
  if _RATES_FROM.value:
    if _LEARNING_RATES.value or _LEARNING_RATE.value or (
        _ETA_RATE_FACTORS.value != ["1"]):
      raise app.UsageError("--rates_from replaces --learning_rates, "
                           "--learning_rate and --eta_rate_factors.")
    with open(_RATES_FROM.value) as f:
      chosen = json.load(f)["chosen"]
    provisional = sorted(n for n in names
                         if chosen.get(n, {}).get("provisional"))
    if provisional and not _ALLOW_PROVISIONAL.value:
      raise app.UsageError(
          f"--rates_from: the choice for {', '.join(provisional)} is "
          "provisional (see summary.md: the rate grid has not finished on "
          "the same seeds); finish it, or pass --allow_provisional.")
    specs, unchosen = plan_chosen(names, chosen, seeds)
    for name in unchosen:
      logging.warning("%s: no chosen setting in %s; not trained.", name,
                      _RATES_FROM.value)
  else:
    if _LEARNING_RATES.value and _LEARNING_RATE.value:
      raise app.UsageError("Give --learning_rates or --learning_rate, not "
                           "both.")
    rates = (_numbers(_LEARNING_RATES.value, "--learning_rates")
             if _LEARNING_RATES.value else
             [_LEARNING_RATE.value or _DEFAULTS.train.learning_rate])
    factors = _numbers(_ETA_RATE_FACTORS.value, "--eta_rate_factors")
    specs = plan_grid(names, rates, seeds, factors)
  prefix = ["taskset", "-c", _CPU_LIST.value] if _CPU_LIST.value else []
  kwargs = dict(heuristics=heuristics, modifiers=_CONFIG_MODIFIERS.value,
                overrides=_OVERRIDES.value,
                env=run_environment(_THREADS.value), prefix=prefix,
                busy_seconds=_BUSY_SECONDS.value)
  if _DRY_RUN.value:
    run_grid(specs, budget, out, dry_run=True, **kwargs)
    return
  info = reproduce(out, specs, budget, plot_only=_PLOT_ONLY.value,
                   command_line="python -m benchmarks.reproduce_fig2 "
                   + " ".join(sys.argv[1:]), **kwargs)
  report = info.get("this_invocation", {})
  print(json.dumps({k: v for k, v in report.items() if v}, indent=2))
  if unchosen:
    print(f"Not trained (no chosen setting): {', '.join(unchosen)}")
  with open(os.path.join(out, "summary.md")) as f:
    print(f.read())


if __name__ == "__main__":
  app.run(main)
