"""benchmarks/summarize_runs.py over synthetic grid folders in the real format."""

import json
import math
import os

from absl.testing import absltest
import numpy as np

from benchmarks import fig2_grid
from benchmarks import summarize_runs
from tests import fig2_grid_data

write_run = fig2_grid_data.write_run

# Validation-error curves, one point per 500 updates (500 .. 3,000).
VAR_C_1E3 = {0: [0.6, 0.4, 0.2, 0.1, 0.1, 0.10],
             1: [0.6, 0.4, 0.2, 0.1, 0.11, 0.12],
             2: [0.6, 0.4, 0.2, 0.1, 0.1, 0.09],
             3: [0.6, 0.4, 0.2, 0.1, 0.1, 0.095],
             4: [0.6, 0.4, 0.2, 0.15, 0.12, 0.11]}  # Never at 10%.
VAR_C_3E3 = {0: [0.7, 0.5, 0.3, 0.2, 0.1, 0.09],
             1: [0.7, 0.5, 0.3, 0.2, 0.16, 0.15]}
QC_1E3 = {0: [0.5, 0.3, 0.15, 0.1, 0.09, 0.08],
          1: [0.5, 0.3, 0.15, 0.12, 0.11, 0.10]}
QC_3E3 = {s: [0.5, 0.1, 0.08, 0.08, 0.07, final]
          for s, final in enumerate([0.07, 0.09, 0.06, 0.06, 0.06])}
QC_3E3_ETA3 = {0: [0.5, 0.2, 0.1, 0.09, 0.085, 0.085],
               1: [0.5, 0.2, 0.1, 0.09, 0.085, 0.085]}
VAR_C_H = {0: [0.6, 0.5, 0.3, 0.2, 0.15, 0.13],
           1: [0.6, 0.5, 0.3, 0.2, 0.15, 0.14]}


def write_grid(out: str) -> None:
  """Two rate-grid seeds for every setting, five seeds at the chosen ones,
  and VAR+c+h with seed 2 still running and seed 3 failed."""
  for s, v in VAR_C_1E3.items():
    write_run(out, "var_c", 1e-3, s, v, test_error=v[-1] + 0.01)
  for s, v in VAR_C_3E3.items():
    write_run(out, "var_c", 3e-3, s, v, test_error=v[-1] + 0.01)
  for s, v in QC_1E3.items():
    write_run(out, "wsram_qc", 1e-3, s, v, test_error=v[-1] + 0.005)
  for s, v in QC_3E3.items():
    write_run(out, "wsram_qc", 3e-3, s, v, test_error=v[-1] + 0.005,
              test_log_likelihood=-0.2 - 0.01 * s)
  for s, v in QC_3E3_ETA3.items():
    write_run(out, "wsram_qc", 3e-3, s, v, test_error=0.09, eta_factor=3)
  for s, v in VAR_C_H.items():
    write_run(out, "var_c_h", 1e-3, s, v, test_error=v[-1])
  write_run(out, "var_c_h", 1e-3, 2, [0.6, 0.5, 0.3])
  write_run(out, "var_c_h", 1e-3, 3, [0.6, 0.5], failed=True)


class GridSummaryTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.out = self.create_tempdir().full_path
    write_grid(self.out)
    self.s = summarize_runs.summarize_grid(self.out)

  def test_reads_the_real_metrics_format(self):
    runs = {(r.run, r.setting, r.seed): r for r in fig2_grid.scan(self.out)}
    r = runs[("var_c", "lr_1e-3", 4)]
    self.assertEqual(r.status, "done")
    updates, errors = r.series("val_error")
    self.assertEqual(updates, [500, 1000, 1500, 2000, 2500, 3000])
    self.assertEqual(errors, VAR_C_1E3[4])
    self.assertEqual(r.series("grad_var_theta")[0][-1], 3000)
    self.assertEqual(runs[("var_c_h", "lr_1e-3", 2)].status, "unfinished")
    self.assertEqual(runs[("var_c_h", "lr_1e-3", 3)].status, "failed")
    self.assertEqual(runs[("wsram_qc", "lr_3e-3_eta3", 0)].eta_factor, 3.0)

  def test_rate_choice_is_the_lowest_mean_final_validation_error(self):
    chosen = self.s["chosen"]
    self.assertEqual(chosen["var_c"]["setting"], "lr_1e-3")  # 11% vs 12%.
    self.assertEqual(chosen["wsram_qc"]["setting"], "lr_3e-3")  # 8% < 8.5%.
    self.assertAlmostEqual(
        chosen["wsram_qc"]["choice_mean_final_val_error"], 0.08)
    self.assertEqual(chosen["wsram_qc"]["choice_seeds"], [0, 1])
    self.assertFalse(chosen["var_c"]["provisional"])
    self.assertTrue(chosen["var_c_h"]["provisional"])  # Seeds 2, 3 pending.
    v = self.s["settings"]["var_c"]["lr_3e-3"]
    self.assertEqual(v["final_val_error"], {0: 0.09, 1: 0.15})
    self.assertAlmostEqual(v["mean"], 0.12)
    self.assertAlmostEqual(v["sd"], math.sqrt(0.0018))

  def test_settings_are_compared_on_common_seeds(self):
    out = self.create_tempdir().full_path
    write_run(out, "var", 1e-3, 0, [0.5, 0.1], test_error=0.1)
    write_run(out, "var", 1e-3, 1, [0.5, 0.3], test_error=0.3)
    write_run(out, "var", 3e-3, 0, [0.5, 0.15], test_error=0.1)
    write_run(out, "var", 3e-3, 1, [0.5, 0.3], test_error=0.3)
    write_run(out, "var", 3e-3, 2, [0.5, 0.01], test_error=0.01)
    # Over all seeds 3e-3 looks better (15.3% < 20%); on seeds 0-1 it is not.
    chosen = summarize_runs.summarize_grid(out)["chosen"]["var"]
    self.assertEqual(chosen["setting"], "lr_1e-3")
    self.assertEqual(chosen["choice_seeds"], [0, 1])

  def test_tie_goes_to_the_smaller_rate(self):
    out = self.create_tempdir().full_path
    for rate in (3e-3, 1e-3, 3e-4):
      write_run(out, "wsram", rate, 0, [0.5, 0.2], test_error=0.2)
    chosen = summarize_runs.summarize_grid(out)["chosen"]["wsram"]
    self.assertEqual(chosen["setting"], "lr_3e-4")

  def test_updates_to_thresholds_at_the_chosen_setting(self):
    var_c = self.s["table"]["var_c"]["updates_to_val_error"]
    self.assertEqual(var_c["0.2"]["per_seed"], {s: 1500 for s in range(5)})
    ten = var_c["0.1"]
    self.assertEqual(ten["per_seed"], {0: 2000, 1: 2000, 2: 2000, 3: 2000,
                                       4: None})
    self.assertEqual((ten["median"], ten["min"], ten["not_reached"]),
                     (2000, 2000, 1))
    self.assertTrue(math.isinf(ten["max"]))
    qc = self.s["table"]["wsram_qc"]
    self.assertEqual(qc["seeds"], [0, 1, 2, 3, 4])
    self.assertEqual(qc["updates_to_val_error"]["0.1"]["median"], 1000)
    self.assertEqual(qc["updates_to_val_error"]["0.05"]["not_reached"], 5)
    self.assertAlmostEqual(qc["test_error"]["mean"], 0.073)
    self.assertAlmostEqual(qc["test_error"]["sd"],
                           float(np.std([0.075, 0.095, 0.065, 0.065, 0.065],
                                        ddof=1)))
    self.assertAlmostEqual(qc["test_log_likelihood"]["mean"], -0.22)

  def test_paired_comparison_against_var_c(self):
    c = next(c for c in self.s["comparisons"] if c["reference"] == "var_c")
    self.assertEqual((c["candidate_setting"], c["reference_setting"]),
                     ("lr_3e-3", "lr_1e-3"))
    self.assertEqual(c["seeds"], [0, 1, 2, 3, 4])
    seed0 = c["per_seed"][0]
    # Trapezoids over 500..3,000 in error x 1k updates (see the curves).
    self.assertAlmostEqual(seed0["area"][0], 0.3075)
    self.assertAlmostEqual(seed0["area"][1], 0.575)
    self.assertEqual(seed0["updates_to"], [1000, 2000])
    self.assertEqual(c["per_seed"][4]["updates_to"], [1000, None])
    # Not reached counts as one interval past the budget: 3,500.
    self.assertEqual(c["updates_to"]["differences"],
                     [-1000, -1000, -1000, -1000, -2500])
    # Test error, each side's results.json: final + 0.005 against + 0.01.
    self.assertAlmostEqual(seed0["test_error"][0], 0.075)
    self.assertAlmostEqual(seed0["test_error"][1], 0.11)
    self.assertAlmostEqual(c["test_error"]["mean_difference"], -0.04)
    for key in ("area", "updates_to", "test_error"):
      self.assertEqual(c[key]["sign_test"]["negative"], 5)
      self.assertEqual(c[key]["sign_test"]["p_value"], 0.0625)
      self.assertEqual(c[key]["wilcoxon"]["p_value"], 0.0625)
      self.assertEqual(c[key]["min_attainable_p"], 0.0625)

  def test_paired_comparison_uses_only_seeds_finished_in_both(self):
    c = next(c for c in self.s["comparisons"] if c["reference"] == "var_c_h")
    self.assertEqual(c["seeds"], [0, 1])
    self.assertEqual(sorted(c["not_paired"]), [2, 3, 4])
    self.assertEqual(c["area"]["sign_test"]["p_value"], 0.5)

  def test_comparison_on_seeds_not_used_to_choose_rates(self):
    c = summarize_runs.summarize_grid(self.out, comparison_seeds=[2, 3, 4])
    c = next(c for c in c["comparisons"] if c["reference"] == "var_c")
    self.assertEqual(c["seeds"], [2, 3, 4])
    self.assertEqual(c["selection_seeds"], [0, 1])
    self.assertEqual(c["updates_to"]["differences"], [-1000, -1000, -2500])
    self.assertEqual(c["area"]["sign_test"]["p_value"], 0.25)
    text = summarize_runs.to_markdown(self.s)
    self.assertIn("Seeds [0, 1] also chose the learning rates", text)

  def test_missing_and_partial_runs_are_named(self):
    missing = "\n".join(self.s["missing"])
    self.assertIn("var_c_h lr_1e-3 seed 2: unfinished, last curve point at "
                  "update 1,500", missing)
    self.assertIn("var_c_h lr_1e-3 seed 3: FAILED at update 1,000", missing)
    self.assertIn("var_c_h at lr_1e-3: no finished run for seeds [2, 3, 4]",
                  missing)
    self.assertIn("Not in the grid: var, wsram, wsram_c, wsram_q, var_h, "
                  "wsram_h.", missing)

  def test_markdown_json_and_figures(self):
    out = self.create_tempdir().full_path
    summary = summarize_runs.write_summary(self.out, out, draws=200)
    for name in ("summary.md", "summary.json", "figure2.png", "figure3.png"):
      self.assertGreater(os.path.getsize(os.path.join(out, name)), 1000)
    with open(os.path.join(out, "summary.md")) as f:
      text = f.read()
    self.assertIn(summarize_runs.RATE_RULE, text)
    self.assertIn("| VAR+c | lr_1e-3 | s0: 10.00%, s1: 12.00%, s2: 9.00%, "
                  "s3: 9.50%, s4: 11.00% |", text)
    self.assertIn("| VAR+c | lr_1e-3 | 5 (0, 1, 2, 3, 4) | 1,500 (1,500–1,500)"
                  " | 2,000 (2,000–not reached); not reached in 1 of 5 |",
                  text)
    self.assertIn("Exact sign test p = 0.0625 (n = 5)", text)
    with open(os.path.join(out, "summary.json")) as f:
      loaded = json.load(f)
    self.assertEqual(loaded["chosen"]["wsram_qc"]["setting"], "lr_3e-3")
    self.assertIsNone(loaded["table"]["var_c"]["updates_to_val_error"]["0.1"]
                      ["per_seed"]["4"])
    self.assertEqual(summary["chosen"], self.s["chosen"])

  def test_band_is_over_finished_seeds(self):
    table = fig2_grid.by_setting(fig2_grid.scan(self.out))
    seeds = {s: r for s, r in table["var_c_h"]["lr_1e-3"].items()
             if r.status == "done"}
    updates, mean, low, high, n = summarize_runs.band(seeds, "train_error")
    self.assertEqual(updates[0], 500)
    np.testing.assert_allclose(mean, np.mean([VAR_C_H[0], VAR_C_H[1]], 0)
                               + 0.01)
    np.testing.assert_array_equal(n, [2] * 6)
    self.assertTrue(np.all(low <= mean) and np.all(mean <= high))
    self.assertTrue(np.any(high > low))

  def test_empty_grid(self):
    out = self.create_tempdir().full_path
    os.makedirs(os.path.join(out, "runs"))
    summary = summarize_runs.write_summary(out, out, draws=10)
    self.assertEqual(summary["chosen"], {})
    with open(os.path.join(out, "summary.md")) as f:
      self.assertIn("No comparison yet", f.read())

  def test_labels_match_the_library(self):
    from wsram_tf import variants  # pylint: disable=g-import-not-at-top
    for name, label in variants.LABELS.items():
      self.assertEqual(fig2_grid.LABELS[name], label)


class RepeatedRowsTest(absltest.TestCase):

  def test_a_resumed_run_keeps_the_last_row_of_an_epoch(self):
    path = self.create_tempdir().full_path
    with open(os.path.join(path, "metrics.csv"), "w") as f:
      f.write(fig2_grid_data.METRICS_HEADER + "\n")
      f.write("0,0,-1,4,1,0.5,0.5,-1\n1,0,-1,4,1,0.4,0.4,-1\n"
              "1,0,-1,4,1,0.3,0.35,-1\n3,0,-1,4,1,NA,0.2,-1\n")
    rows = fig2_grid.read_metrics(os.path.join(path, "metrics.csv"), 250)
    self.assertEqual([r["update"] for r in rows], [250, 500, 1000])
    self.assertEqual([r["val_error"] for r in rows], [0.5, 0.35, 0.2])
    self.assertTrue(math.isnan(rows[2]["train_error"]))
    with open(os.path.join(path, "grad_variance.csv"), "w") as f:
      f.write("step,theta,eta\n500,0.1,nan\n500,0.2,nan\n1000,0.3,nan\n")
    rows = fig2_grid.read_grad_variance(os.path.join(path,
                                                     "grad_variance.csv"))
    self.assertEqual([(r["update"], r["theta"]) for r in rows],
                     [(500, 0.2), (1000, 0.3)])


# -- the older form (directories of the former in-process harness) ------------


def _write_legacy(out: str, name: str, test_error: float, train_errors):
  run_dir = os.path.join(out, "runs")
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, f"{name}.done"), "w") as f:
    json.dump({"run": name, "test_error": test_error}, f)
  with open(os.path.join(run_dir, f"{name}.csv"), "w") as f:
    f.write("variant,update,train_error,bound,ess,test_error,grad_var_theta,"
            "grad_var_eta,seconds\n")
    for i, e in enumerate(train_errors):
      f.write(f"{name},{200 * i},{e},0,1,0.5,nan,nan,{i}\n")


class LegacySummaryTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.a = self.create_tempdir().full_path
    self.b = self.create_tempdir().full_path

  def _row(self, table: str, label: str) -> list:
    line = next(l for l in table.splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]

  def test_mean_and_sd_over_directories(self):
    _write_legacy(self.a, "var_c", 0.2, [0.9, 0.5, 0.3])
    _write_legacy(self.b, "var_c", 0.4, [0.9, 0.7, 0.5])
    row = self._row(summarize_runs.summarize([self.a, self.b], 2), "VAR+c")
    self.assertEqual(row[1:3], ["20.0%", "40.0%"])
    self.assertEqual(row[3], "30.0% ± 14.1%")
    self.assertEqual(row[4], "50.0% ± 14.1%")  # Means 0.4 and 0.6.

  def test_run_missing_from_a_directory_shows_a_dash(self):
    _write_legacy(self.a, "wsram_qc", 0.1, [0.2])
    os.makedirs(os.path.join(self.b, "runs"))
    table = summarize_runs.summarize([self.a, self.b])
    self.assertEqual(self._row(table, "WS-RAM+q+c")[1:4],
                     ["10.0%", "-", "10.0%"])
    self.assertNotIn("| VAR |", table)

  def test_without_mean_only_the_directories_are_columns(self):
    _write_legacy(self.a, "var", 0.5, [0.6])
    _write_legacy(self.b, "var", 0.7, [0.8])
    table = summarize_runs.summarize([self.a, self.b], mean=False)
    self.assertEqual(self._row(table, "VAR")[1:], ["50.0%", "70.0%"])
    self.assertNotIn("mean ± sd", table)

  def test_directory_without_runs_is_named(self):
    with self.assertRaisesRegex(ValueError, "nowhere"):
      summarize_runs.summarize([os.path.join(self.a, "nowhere")])


if __name__ == "__main__":
  absltest.main()
