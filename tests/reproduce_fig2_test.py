"""Smoke test of benchmarks/reproduce_fig2.py on tiny synthetic MNIST files."""

import csv
import functools
import math
import os
import tempfile

import tensorflow as tf

from benchmarks import reproduce_fig2
from configs import mnist as mnist_configs
from tests import toy_data

_BUDGET = reproduce_fig2.Budget(updates=4, eval_every=2, grad_var_every=2,
                                grad_var_draws=2, eval_examples=32)
_RUNS = ("wsram_qc", "var_h")


def _tiny_config(mnist_dir, variant):
  config = mnist_configs.get_config(f"{variant},tiny")
  config.data.source = "idx"
  config.data.mnist_dir = mnist_dir
  config.train.jit_compile = False  # Compiling costs more than these steps.
  return config


class ReproduceFig2Test(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    mnist_dir = os.path.join(cls.tmp.name, "mnist")
    os.makedirs(mnist_dir)
    toy_data.write_idx_dir(
        mnist_dir, toy_data.random_mnist_arrays(num_train=100, num_test=40))
    cls.out = os.path.join(cls.tmp.name, "out")
    cls.base = functools.partial(_tiny_config, mnist_dir)
    cls.info = reproduce_fig2.reproduce(cls.out, _RUNS, _BUDGET, cls.base,
                                        command="test")

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def _rows(self):
    with open(os.path.join(self.out, "curves.csv"), newline="") as f:
      reader = csv.DictReader(f)
      return reader.fieldnames, list(reader)

  def test_curves_have_the_columns_and_a_row_per_eval_point(self):
    columns, rows = self._rows()
    self.assertEqual(tuple(columns), reproduce_fig2.COLUMNS)
    for run in _RUNS:
      updates = [int(float(r["update"])) for r in rows if r["variant"] == run]
      self.assertEqual(updates, [0, 2, 4])

  def test_trained_rows_are_finite(self):
    _, rows = self._rows()
    for r in rows:
      keys = ["test_error", "grad_var_theta", "seconds"]
      if float(r["update"]):
        keys += ["train_error", "bound", "ess"]
      for key in keys:
        self.assertTrue(math.isfinite(float(r[key])), (r["variant"], key))

  def test_eta_variance_only_for_the_inference_network(self):
    _, rows = self._rows()
    for r in rows:
      finite = math.isfinite(float(r["grad_var_eta"]))
      self.assertEqual(finite, r["variant"] == "wsram_qc", r)

  def test_writes_figures_table_and_run_info(self):
    for name in ("figure2.png", "figure3.png", "table1.md", "run.json"):
      self.assertGreater(os.path.getsize(os.path.join(self.out, name)), 0)
    with open(os.path.join(self.out, "table1.md")) as f:
      table = f.read()
    for run in _RUNS:
      self.assertIn(f"| {reproduce_fig2.LABELS[run]} |", table)
    self.assertEqual(sorted(self.info["completed"]), sorted(_RUNS))
    self.assertIn("cpu", self.info["machine"])

  def test_heuristic_run_turns_the_heuristics_on(self):
    config = reproduce_fig2.run_config("wsram_h", self.base)
    self.assertEqual(config.variant, "wsram")
    for field, value in reproduce_fig2.HEURISTICS.items():
      self.assertEqual(config.objective[field], value)

  def test_rerun_skips_completed_runs(self):
    info = reproduce_fig2.reproduce(self.out, _RUNS, _BUDGET, self.base)
    self.assertEqual(info["trained_this_invocation"], [])

  def test_updates_to_reach_takes_the_first_point_at_or_below(self):
    rows = [{"update": u, "test_error": e}
            for u, e in ((0, 0.9), (2, 0.2), (4, 0.05))]
    self.assertEqual(reproduce_fig2.updates_to_reach(rows, 0.2), 2)
    self.assertIsNone(reproduce_fig2.updates_to_reach(rows, 0.01))

  def test_rejects_budget_not_a_multiple_of_eval_every(self):
    with self.assertRaisesRegex(ValueError, "multiples of --eval_every"):
      reproduce_fig2.reproduce(self.out, _RUNS, _BUDGET._replace(updates=3),
                               self.base)

  def test_rejects_unknown_run(self):
    with self.assertRaisesRegex(ValueError, "unknown run 'vra'"):
      reproduce_fig2.reproduce(self.out, ["vra"], _BUDGET, self.base)


if __name__ == "__main__":
  tf.test.main()
