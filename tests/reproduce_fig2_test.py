"""benchmarks/reproduce_fig2.py: grid plan, run commands, skip/resume, outputs.

All but one test use a fake runner in place of the subprocess; the last one
trains one tiny run through the real `python -m wsram_tf.main` subprocess.
"""

import csv
import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout

from absl.testing import absltest

from benchmarks import fig2_grid
from benchmarks import reproduce_fig2 as fig2
from tests import fig2_grid_data
from tests import toy_data

BUDGET = fig2.Budget(updates=10000, eval_every=500, grad_var_every=500,
                     grad_var_draws=10)
SMALL = fig2.Budget(updates=3000, eval_every=500, grad_var_every=500,
                    grad_var_draws=10)


class FakeRunner:
  """Stands in for the subprocess: records calls, writes a run's files."""

  def __init__(self, fail=(), val_error=0.1):
    self.calls = []
    self.fail = set(fail)
    self.val_error = val_error

  def __call__(self, cmd, directory, env):
    self.calls.append((cmd, directory))
    flags = dict(a[2:].split("=", 1) for a in cmd if a.startswith("--"))
    run_name = os.path.basename(os.path.dirname(os.path.dirname(directory)))
    out = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(directory))))
    rate = float(flags["config.train.learning_rate"])
    factor = float(flags["config.train.inference_learning_rate"]) / rate
    seed = int(flags["config.seed"])
    failed = directory in self.fail
    errors = [0.5, 0.3, 0.2, 0.15, self.val_error + 0.01, self.val_error]
    path = fig2_grid_data.write_run(
        out, run_name, rate, seed, errors[:2] if failed else errors,
        test_error=None if failed else self.val_error, eta_factor=factor,
        failed=failed)
    assert path == directory, (path, directory)
    return 1 if failed else 0


def _age(directory, seconds=3600):
  """Makes the files of a run folder look `seconds` old."""
  past = time.time() - seconds
  for name in os.listdir(directory):
    os.utime(os.path.join(directory, name), (past, past))


class CommandTest(absltest.TestCase):

  def test_command_is_the_background_grid_command(self):
    # /work/runs_out/run_grid.sh, run var_c_h, lr 3e-4, seed 1.
    spec = fig2.RunSpec("var_c_h", 3e-4, 1)
    cmd = fig2.command(spec, BUDGET, "/grid")
    self.assertEqual(cmd, [
        "python3", "-m", "wsram_tf.main", "--config=configs/mnist.py:var_c",
        "--workdir=/grid/runs/var_c_h/lr_3e-4/seed_1", "--config.seed=1",
        "--config.train.learning_rate=3e-4",
        "--config.train.inference_learning_rate=3e-4",
        "--config.train.num_train_steps=10000",
        "--config.train.steps_per_epoch=500",
        "--config.train.checkpoint_every_steps=500",
        "--config.train.grad_var_every_steps=500",
        "--config.train.glimpse_every_epochs=0",
        "--config.objective.temperature=1.5",
        "--config.objective.coverage_weight=0.1",
        "--config.objective.entropy_weight=0.01"])

  def test_plain_variant_has_no_objective_flags(self):
    cmd = fig2.command(fig2.RunSpec("wsram_qc", 1e-3, 0), BUDGET, "/g")
    self.assertEqual(cmd[3:5], ["--config=configs/mnist.py:wsram_qc",
                                "--workdir=/g/runs/wsram_qc/lr_1e-3/seed_0"])
    self.assertEqual(len(cmd), 13)
    self.assertFalse([a for a in cmd if "objective" in a])

  def test_eta_factor_sets_eta_rate_and_directory(self):
    cmd = fig2.command(fig2.RunSpec("wsram_qc", 1e-3, 2, 3.0), BUDGET, "/g")
    self.assertIn("--workdir=/g/runs/wsram_qc/lr_1e-3_eta3/seed_2", cmd)
    self.assertIn("--config.train.learning_rate=1e-3", cmd)
    self.assertIn("--config.train.inference_learning_rate=3e-3", cmd)
    third = fig2_grid.parse_number("1/3")
    cmd = fig2.command(fig2.RunSpec("wsram_q", 3e-3, 0, third), BUDGET, "/g")
    self.assertIn("--workdir=/g/runs/wsram_q/lr_3e-3_eta0.3333/seed_0", cmd)
    self.assertIn("--config.train.inference_learning_rate=1e-3", cmd)

  def test_budget_heuristics_modifiers_and_overrides(self):
    budget = fig2.Budget(4, 2, 4, 3)
    cmd = fig2.command(fig2.RunSpec("wsram_h", 1e-3, 0), budget, "/g",
                       heuristics={"temperature": 2.0}, modifiers=["tiny"],
                       overrides=["data.source=idx"], python="py")
    self.assertEqual(cmd[:4], ["py", "-m", "wsram_tf.main",
                               "--config=configs/mnist.py:wsram,tiny"])
    self.assertEqual(cmd[-3:], ["--config.train.grad_var_draws=3",
                                "--config.objective.temperature=2.0",
                                "--config.data.source=idx"])
    self.assertIn("--config.train.num_train_steps=4", cmd)
    self.assertIn("--config.train.steps_per_epoch=2", cmd)
    self.assertIn("--config.train.checkpoint_every_steps=2", cmd)
    self.assertIn("--config.train.grad_var_every_steps=4", cmd)

  def test_rate_names(self):
    self.assertEqual([fig2_grid.rate_name(r) for r in
                      (1e-3, 3e-4, 0.003, 1e-2, 2.5e-4)],
                     ["1e-3", "3e-4", "3e-3", "1e-2", "2.5e-4"])
    self.assertEqual(fig2_grid.setting_name(1e-3, 1.0), "lr_1e-3")
    self.assertEqual(fig2_grid.parse_setting("lr_3e-4_eta0.3333"),
                     (3e-4, 0.3333))
    self.assertIsNone(fig2_grid.parse_setting("lr_x"))


class PlanTest(absltest.TestCase):

  def test_grid_order_and_eta_factors_only_for_q(self):
    specs = fig2.plan_grid(["wsram_qc", "var_c"], [1e-3, 3e-3], [0, 1],
                           [1.0, 3.0])
    self.assertEqual([(s.run, s.rate, s.seed, s.eta_factor) for s in specs],
                     [("wsram_qc", 1e-3, 0, 1.0), ("wsram_qc", 1e-3, 0, 3.0),
                      ("var_c", 1e-3, 0, 1.0),
                      ("wsram_qc", 1e-3, 1, 1.0), ("wsram_qc", 1e-3, 1, 3.0),
                      ("var_c", 1e-3, 1, 1.0),
                      ("wsram_qc", 3e-3, 0, 1.0), ("wsram_qc", 3e-3, 0, 3.0),
                      ("var_c", 3e-3, 0, 1.0),
                      ("wsram_qc", 3e-3, 1, 1.0), ("wsram_qc", 3e-3, 1, 3.0),
                      ("var_c", 3e-3, 1, 1.0)])
    self.assertLen(fig2.plan_grid(["var"], [1e-3, 1e-3], [0]), 1)

  def test_heuristic_runs_follow_their_variants(self):
    self.assertEqual(fig2.with_heuristic_runs(["wsram_qc", "var_c", "wsram"]),
                     ["wsram_qc", "var_c", "wsram", "var_c_h", "wsram_h"])
    self.assertEqual(fig2.RunSpec("var_c_h", 1e-3, 0).variant, "var_c")

  def test_chosen_plan(self):
    chosen = {"var_c": {"learning_rate": 1e-3, "eta_factor": 1.0},
              "wsram_qc": {"learning_rate": 3e-3, "eta_factor": 3.0}}
    specs, unchosen = fig2.plan_chosen(["wsram_qc", "var_c", "var_c_h"],
                                       chosen, [2, 3])
    self.assertEqual(unchosen, ["var_c_h"])
    self.assertEqual([(s.run, s.setting, s.seed) for s in specs],
                     [("wsram_qc", "lr_3e-3_eta3", 2), ("var_c", "lr_1e-3", 2),
                      ("wsram_qc", "lr_3e-3_eta3", 3), ("var_c", "lr_1e-3", 3)])

  def test_rejects_unknown_run_and_bad_budget(self):
    with self.assertRaisesRegex(ValueError, "unknown run 'vra'"):
      fig2.plan_grid(["vra"], [1e-3], [0])
    with self.assertRaisesRegex(ValueError, "multiples of --eval_every"):
      fig2.check_budget(BUDGET._replace(updates=1001))
    with self.assertRaisesRegex(ValueError, "grad_var_draws"):
      fig2.check_budget(BUDGET._replace(grad_var_draws=1))


class GridTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.out = self.create_tempdir().full_path
    self.specs = fig2.plan_grid(["wsram_qc", "var_c"], [1e-3], [0, 1])

  def _run(self, runner, **kwargs):
    return fig2.run_grid(self.specs, SMALL, self.out, runner, env={},
                         python="python3", **kwargs)

  def test_runs_each_once_then_skips_finished(self):
    runner = FakeRunner()
    report = self._run(runner)
    self.assertLen(runner.calls, 4)
    self.assertLen(report["trained"], 4)
    self.assertEqual(runner.calls[0][0],
                     fig2.command(self.specs[0], SMALL, self.out))
    again = FakeRunner()
    report = self._run(again)
    self.assertEqual(again.calls, [])
    self.assertLen(report["skipped_done"], 4)

  def test_unfinished_run_is_resumed_with_the_same_command(self):
    spec = self.specs[1]  # var_c seed 0
    fig2_grid_data.write_run(self.out, "var_c", 1e-3, 0, [0.5, 0.4])
    _age(spec.directory(self.out))
    runner = FakeRunner()
    report = self._run(runner, busy_seconds=600)
    self.assertEqual(report["resumed"], ["runs/var_c/lr_1e-3/seed_0"])
    self.assertLen(report["trained"], 3)
    resumed = [c for c in runner.calls if c[1] == spec.directory(self.out)]
    self.assertEqual(resumed, [(fig2.command(spec, SMALL, self.out),
                                spec.directory(self.out))])

  def test_run_being_trained_elsewhere_is_left_alone(self):
    fig2_grid_data.write_run(self.out, "var_c", 1e-3, 0, [0.5])  # Fresh.
    path = fig2_grid_data.write_run(self.out, "var_c", 1e-3, 1, [0.5])
    _age(path)
    with open(os.path.join(path, "harness.lock"), "w") as f:
      f.write(str(os.getppid()))  # A live process that is not this one.
    runner = FakeRunner()
    report = self._run(runner, busy_seconds=600)
    self.assertEqual(sorted(report["busy"]), ["runs/var_c/lr_1e-3/seed_0",
                                              "runs/var_c/lr_1e-3/seed_1"])
    self.assertLen(runner.calls, 2)  # The two wsram_qc runs.

  def test_stale_lock_is_taken_over_and_removed(self):
    path = fig2_grid_data.write_run(self.out, "var_c", 1e-3, 0, [0.5])
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(path, "harness.lock"), "w") as f:
      f.write(str(dead.pid))
    _age(path)
    report = self._run(FakeRunner(), busy_seconds=600)
    self.assertIn("runs/var_c/lr_1e-3/seed_0", report["resumed"])
    self.assertFalse(os.path.exists(os.path.join(path, "harness.lock")))

  def test_run_with_another_config_is_not_touched(self):
    path = fig2_grid_data.write_run(self.out, "var_c", 1e-3, 0, [0.5])
    with open(os.path.join(path, "config.json")) as f:
      config = json.load(f)
    config["train"]["num_train_steps"] = 3000
    config["train"]["learning_rate"] = 3e-3
    with open(os.path.join(path, "config.json"), "w") as f:
      json.dump(config, f)
    runner = FakeRunner()
    report = self._run(runner)
    self.assertEqual(report["conflict"], [{
        "run": "runs/var_c/lr_1e-3/seed_0",
        "problems": ["train.learning_rate: found 0.003, want 0.001"]}])
    self.assertNotIn(path, [d for _, d in runner.calls])

  def test_failed_run_is_logged_and_the_grid_goes_on(self):
    first = self.specs[0].directory(self.out)
    report = self._run(FakeRunner(fail=[first]))
    self.assertEqual(report["failed"], [{"run": "runs/wsram_qc/lr_1e-3/seed_0",
                                         "rc": 1}])
    self.assertLen(report["trained"], 3)
    with open(os.path.join(self.out, "progress.txt")) as f:
      lines = f.read().splitlines()
    self.assertLen(lines, 4)
    self.assertTrue(lines[0].endswith("wsram_qc lr=1e-3 seed=0 rc=1"))
    self.assertTrue(lines[1].endswith("var_c lr=1e-3 seed=0 rc=0"))

  def test_dry_run_prints_and_runs_nothing(self):
    fig2_grid_data.write_run(self.out, "var_c", 1e-3, 1, [0.5],
                             test_error=0.1)
    runner = FakeRunner()
    printed = io.StringIO()
    with redirect_stdout(printed):
      self._run(runner, dry_run=True)
    self.assertEqual(runner.calls, [])
    text = printed.getvalue()
    self.assertIn("# runs/var_c/lr_1e-3/seed_1: done", text)
    self.assertIn("# runs/wsram_qc/lr_1e-3/seed_0: new\npython3 -m "
                  "wsram_tf.main --config=configs/mnist.py:wsram_qc", text)
    self.assertEqual(text.count("python3 -m wsram_tf.main"), 3)
    self.assertFalse(os.path.exists(os.path.join(self.out, "progress.txt")))

  def test_outputs_average_over_seeds(self):
    info = fig2.reproduce(self.out, self.specs, SMALL, FakeRunner(),
                          command_line="test", env={})
    for name in ("curves.csv", "figure2.png", "figure3.png", "table1.md",
                 "run.json", "summary.md", "summary.json"):
      self.assertGreater(os.path.getsize(os.path.join(self.out, name)), 0)
    self.assertLen(info["this_invocation"]["trained"], 4)
    self.assertEqual(info["chosen"]["var_c"]["setting"], "lr_1e-3")
    with open(os.path.join(self.out, "curves.csv"), newline="") as f:
      rows = list(csv.DictReader(f))
    var_c = [r for r in rows if r["run"] == "var_c"]
    self.assertEqual([r["seed"] for r in var_c if r["update"] == "3000"],
                     ["0", "1", "mean of 2"])
    mean = next(r for r in var_c if r["seed"] == "mean of 2"
                and r["update"] == "500")
    self.assertAlmostEqual(float(mean["val_error"]), 0.5)
    self.assertAlmostEqual(float(mean["train_error"]), 0.51)
    self.assertAlmostEqual(float(mean["grad_var_theta"]), 1e-3)
    with open(os.path.join(self.out, "table1.md")) as f:
      table = f.read()
    self.assertIn("| VAR+c | lr_1e-3 | 2 (0, 1) | 1,500 (1,500–1,500) |",
                  table)
    with open(os.path.join(self.out, "run.json")) as f:
      self.assertEqual(json.load(f)["command"], "test")


class CommandLineTest(absltest.TestCase):

  def test_dry_run_of_a_rate_grid(self):
    out = self.create_tempdir().full_path
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.reproduce_fig2", f"--out={out}",
         "--variants=wsram_qc,var_c", "--learning_rates=1e-3,3e-3",
         "--eta_rate_factors=1,1/3", "--seeds=0,1", "--dry_run"],
        cwd=fig2.REPO, capture_output=True, text=True, check=True)
    commands = [l for l in result.stdout.splitlines()
                if "wsram_tf.main" in l]
    # Per rate and seed: wsram_qc x 2 factors, var_c, var_c_h.
    self.assertLen(commands, 2 * 2 * 4)
    self.assertLen([c for c in commands if "lr_3e-3_eta0.3333/seed_1" in c],
                   1)
    self.assertEqual(os.listdir(out), [])

  def test_dry_run_at_the_chosen_rates(self):
    out = self.create_tempdir().full_path
    summary = os.path.join(out, "summary.json")
    with open(summary, "w") as f:
      json.dump({"chosen": {
          "var_c": {"learning_rate": 1e-3, "eta_factor": 1.0,
                    "provisional": False},
          "wsram_qc": {"learning_rate": 3e-3, "eta_factor": 3.0,
                       "provisional": True}}}, f)
    args = [sys.executable, "-m", "benchmarks.reproduce_fig2", f"--out={out}",
            "--variants=wsram_qc,var_c", "--noheuristics", "--seeds=2,3,4",
            f"--rates_from={summary}", "--dry_run"]
    refused = subprocess.run(args, cwd=fig2.REPO, capture_output=True,
                             text=True, check=False)
    self.assertNotEqual(refused.returncode, 0)
    self.assertIn("choice for wsram_qc is provisional", refused.stderr)
    result = subprocess.run(args + ["--allow_provisional"], cwd=fig2.REPO,
                            capture_output=True, text=True, check=True)
    commands = [l for l in result.stdout.splitlines()
                if "wsram_tf.main" in l]
    self.assertLen(commands, 6)
    self.assertIn("runs/wsram_qc/lr_3e-3_eta3/seed_4", commands[4])
    self.assertIn("--config.train.inference_learning_rate=9e-3", commands[4])
    self.assertIn("runs/var_c/lr_1e-3/seed_4", commands[5])


class RealRunTest(absltest.TestCase):
  """One tiny run through the real subprocess (about 30 s of CPU)."""

  def test_tiny_run_lands_in_the_grid_layout_and_is_then_skipped(self):
    tmp = self.create_tempdir().full_path
    mnist_dir = os.path.join(tmp, "mnist")
    os.makedirs(mnist_dir)
    toy_data.write_idx_dir(
        mnist_dir, toy_data.random_mnist_arrays(num_train=200, num_test=40))
    out = os.path.join(tmp, "out")
    budget = fig2.Budget(updates=4, eval_every=2, grad_var_every=2,
                         grad_var_draws=2)
    specs = fig2.plan_grid(["var_c"], [1e-3], [3])
    kwargs = dict(modifiers=["tiny"], env=fig2.run_environment(threads=1),
                  overrides=["data.source=idx", f"data.mnist_dir={mnist_dir}",
                             "train.jit_compile=False"])
    info = fig2.reproduce(out, specs, budget, **kwargs)
    path = specs[0].directory(out)
    self.assertEqual(info["this_invocation"]["trained"],
                     ["runs/var_c/lr_1e-3/seed_3"], open(
                         os.path.join(path, "log.txt")).read()[-3000:])
    run = fig2_grid.read_run(path, "var_c", "lr_1e-3", 3)
    self.assertEqual(run.status, "done")
    self.assertEqual(run.series("val_error")[0], [2, 4])
    self.assertEqual(run.series("train_error")[0], [2, 4])
    self.assertEqual(run.series("grad_var_theta")[0], [2, 4])
    self.assertEqual(run.config["seed"], 3)
    self.assertEqual(run.config["train"]["grad_var_draws"], 2)
    self.assertEqual(run.results["train_steps"], 4)
    self.assertEqual(info["chosen"]["var_c"]["setting"], "lr_1e-3")
    again = fig2.reproduce(out, specs, budget, **kwargs)
    self.assertEqual(again["this_invocation"]["skipped_done"],
                     ["runs/var_c/lr_1e-3/seed_3"])


if __name__ == "__main__":
  absltest.main()
