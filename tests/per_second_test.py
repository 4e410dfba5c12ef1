"""benchmarks/per_second.py: the grid's paired comparison on a time axis."""

import os

from absl import app
from absl.testing import absltest

from benchmarks import per_second
from tests import fig2_grid_data


class PerSecondTest(absltest.TestCase):

  def _grid(self):
    out = self.create_tempdir().full_path
    # WS-RAM+q+c reaches 10% at 1,000 updates, VAR+c at 1,500, on 3 seeds.
    for seed in range(3):
      fig2_grid_data.write_run(out, "wsram_qc", 3e-4, seed,
                               [0.3, 0.1, 0.08, 0.07, 0.06, 0.05],
                               test_error=0.05, eta_factor=3.0)
      fig2_grid_data.write_run(out, "var_c", 3e-3, seed,
                               [0.5, 0.2, 0.1, 0.08, 0.07, 0.06],
                               test_error=0.06)
    return out

  def test_a_costlier_update_can_turn_the_time_to_threshold_around(self):
    out = self._grid()
    same = per_second.run(out, {"wsram_qc": 10.0, "var_c": 10.0}, out, 0.1)
    (c,) = same
    # 1,000 vs 1,500 updates at 10 ms: 10 s vs 15 s.
    self.assertEqual(c["per_second"]["seconds_to"], [(10.0, 15.0)] * 3)
    self.assertEqual(c["per_second"]["seconds_to_threshold"]
                     ["median_difference"], -5.0)
    (c,) = per_second.run(out, {"wsram_qc": 20.0, "var_c": 10.0}, out, 0.1)
    self.assertEqual(c["per_second"]["seconds_to"], [(20.0, 15.0)] * 3)
    self.assertEqual(c["per_second"]["seconds_to_threshold"]
                     ["median_difference"], 5.0)

  def test_areas_scale_with_each_side_s_cost(self):
    out = self._grid()
    (one,) = per_second.run(out, {"wsram_qc": 1.0, "var_c": 1.0}, out, 0.1)
    (two,) = per_second.run(out, {"wsram_qc": 2.0, "var_c": 1.0}, out, 0.1)
    for (a1, b1), (a2, b2) in zip(one["per_second"]["area_seconds"],
                                  two["per_second"]["area_seconds"]):
      self.assertAlmostEqual(a2, 2 * a1)
      self.assertAlmostEqual(b2, b1)

  def test_writes_the_figure_and_table(self):
    out = self._grid()
    per_second.run(out, {"wsram_qc": 12.0, "var_c": 10.0}, out, 0.1)
    self.assertGreater(os.path.getsize(
        os.path.join(out, "figure2_seconds.png")), 1000)
    with open(os.path.join(out, "per_second.md")) as f:
      self.assertIn("wsram_qc vs var_c | 12.0 / 10.0 | 3 |", f.read())

  def test_a_model_change_is_compared_with_the_same_run_of_another_grid(self):
    old = self._grid()
    new = self.create_tempdir().full_path
    # The change learns slower per update (10% at 1,500 instead of 1,000)
    # but its update costs half: ahead per second, behind per update.
    for seed in range(3):
      fig2_grid_data.write_run(new, "wsram_qc", 3e-4, seed,
                               [0.4, 0.2, 0.1, 0.08, 0.07, 0.06],
                               test_error=0.06, eta_factor=3.0)
    (c,) = per_second.run_against(new, {"wsram_qc": 5.0}, old,
                                  {"wsram_qc": 10.0, "var_c": 10.0}, new, 0.1)
    self.assertEqual(c["run"], "wsram_qc")
    self.assertEqual(c["per_update"]["updates_to"]["median_difference"], 500)
    self.assertEqual(c["per_second"]["seconds_to"], [(7.5, 10.0)] * 3)
    with open(os.path.join(new, "against.md")) as f:
      table = f.read()
    self.assertIn("| wsram_qc | 5.0 / 10.0 | 3 | 0 of 3", table)
    # Its test error: 0.06 against 0.05 on every seed.
    self.assertIn("| 0 of 3 (0.25) | +1.00 points |", table)

  def test_named_pairs_compare_different_runs_across_grids(self):
    old = self._grid()
    new = self.create_tempdir().full_path
    for seed in range(3):  # Test error 0.05 against VAR+c's 0.06.
      fig2_grid_data.write_run(new, "wsram_qc", 3e-4, seed,
                               [0.4, 0.2, 0.1, 0.08, 0.07, 0.06],
                               test_error=0.05, eta_factor=3.0)
    pairs = per_second.parse_pairs(["wsram_qc:var_c", "wsram_qc:wsram_qc"])
    to_var_c, to_itself = per_second.run_against(
        new, {"wsram_qc": 5.0}, old, {"wsram_qc": 10.0, "var_c": 10.0}, new,
        0.1, pairs)
    self.assertEqual(to_var_c["run"], "wsram_qc vs var_c")
    # Both reach 10% at 1,500 updates; the candidate's update costs half.
    self.assertEqual(to_var_c["per_second"]["seconds_to"], [(7.5, 15.0)] * 3)
    self.assertAlmostEqual(
        to_var_c["per_update"]["test_error"]["mean_difference"], -0.01)
    self.assertEqual(to_itself["per_update"]["test_error"]["differences"],
                     [0.0] * 3)
    with open(os.path.join(new, "against.md")) as f:
      table = f.read()
    self.assertIn("| wsram_qc vs var_c | 5.0 / 10.0 | 3 |", table)
    self.assertIn("| 3 of 3 (0.25) | -1.00 points |", table)

  def test_a_pair_without_a_run_or_a_cost_is_named(self):
    old, new = self._grid(), self._grid()
    with self.assertRaisesRegex(app.UsageError, "'var': no chosen run"):
      per_second.run_against(new, {"wsram_qc": 1.0}, old, {"var": 1.0}, new,
                             0.1, [("wsram_qc", "var")])
    with self.assertRaisesRegex(app.UsageError, "not NEW:OLD"):
      per_second.parse_pairs(["wsram_qc"])

  def test_bad_costs_name_the_pair(self):
    with self.assertRaisesRegex(app.UsageError, "'var_c=x' is not RUN=MS"):
      per_second.parse_step_ms(["var_c=x"])
    with self.assertRaisesRegex(app.UsageError, "must be > 0"):
      per_second.parse_step_ms(["var_c=0"])


if __name__ == "__main__":
  absltest.main()
