"""benchmarks/summarize_runs.py: one table over several reproduce_fig2 outputs."""

import json
import os

import tensorflow as tf

from benchmarks import summarize_runs


def _write_run(out: str, name: str, test_error: float, train_errors) -> None:
  run_dir = os.path.join(out, "runs")
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, f"{name}.done"), "w") as f:
    json.dump({"run": name, "test_error": test_error}, f)
  with open(os.path.join(run_dir, f"{name}.csv"), "w") as f:
    f.write("variant,update,train_error,bound,ess,test_error,grad_var_theta,"
            "grad_var_eta,seconds\n")
    for i, e in enumerate(train_errors):
      f.write(f"{name},{200 * i},{e},0,1,0.5,nan,nan,{i}\n")


class SummarizeRunsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.a = self.create_tempdir().full_path
    self.b = self.create_tempdir().full_path

  def _row(self, table: str, label: str) -> list:
    line = next(l for l in table.splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]

  def test_mean_and_sd_over_directories(self):
    _write_run(self.a, "var_c", 0.2, [0.9, 0.5, 0.3])
    _write_run(self.b, "var_c", 0.4, [0.9, 0.7, 0.5])
    row = self._row(summarize_runs.summarize([self.a, self.b], 2), "VAR+c")
    self.assertEqual(row[1:3], ["20.0%", "40.0%"])
    self.assertEqual(row[3], "30.0% ± 14.1%")
    self.assertEqual(row[4], "50.0% ± 14.1%")  # Means 0.4 and 0.6.

  def test_run_missing_from_a_directory_shows_a_dash(self):
    _write_run(self.a, "wsram_qc", 0.1, [0.2])
    os.makedirs(os.path.join(self.b, "runs"))
    table = summarize_runs.summarize([self.a, self.b])
    self.assertEqual(self._row(table, "WS-RAM+q+c")[1:4],
                     ["10.0%", "-", "10.0%"])
    self.assertNotIn("| VAR |", table)

  def test_without_mean_only_the_directories_are_columns(self):
    _write_run(self.a, "var", 0.5, [0.6])
    _write_run(self.b, "var", 0.7, [0.8])
    table = summarize_runs.summarize([self.a, self.b], mean=False)
    self.assertEqual(self._row(table, "VAR")[1:], ["50.0%", "70.0%"])
    self.assertNotIn("mean ± sd", table)

  def test_directory_without_runs_is_named(self):
    with self.assertRaisesRegex(ValueError, "nowhere"):
      summarize_runs.summarize([os.path.join(self.a, "nowhere")])


if __name__ == "__main__":
  tf.test.main()
