"""benchmarks/long_runs.py: thresholds, CPU-minutes and the table from a
run folder as wsram_tf.main leaves it."""

import json
import os

from absl.testing import absltest

from benchmarks import long_runs


def _workdir(root, name, val_errors, results=None, times=()):
  path = os.path.join(root, name)
  os.makedirs(path)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump({"train": {"steps_per_epoch": 100}}, f)
  with open(os.path.join(path, "metrics.csv"), "w") as f:
    f.write("epoch,loss,val_error\n")
    for epoch, e in enumerate(val_errors):
      f.write(f"{epoch},1.0,{e}\n")
  if results:
    with open(os.path.join(path, "results.json"), "w") as f:
      json.dump(results, f)
  if times:
    with open(path + ".time", "w") as f:
      for user, system in times:  # One GNU time report per start.
        f.write(f"\tUser time (seconds): {user}\n"
                f"\tSystem time (seconds): {system}\n")
  return path


class LongRunsTest(absltest.TestCase):

  def test_cpu_seconds_sum_every_start_of_a_resumed_run(self):
    root = self.create_tempdir().full_path
    path = _workdir(root, "a", [0.9], times=[(100.0, 2.0), (50.5, 0.5)])
    self.assertAlmostEqual(long_runs.cpu_seconds(path + ".time"), 153.0)
    self.assertIsNone(long_runs.cpu_seconds(path + ".missing"))

  def test_updates_and_cpu_minutes_to_each_threshold(self):
    root = self.create_tempdir().full_path
    path = _workdir(root, "a", [0.8, 0.4, 0.25, 0.1],
                    {"test_error": 0.12, "test_log_likelihood": -0.4},
                    times=[(240.0, 0.0)])
    row = long_runs.summarize("a", path, [0.5, 0.3, 0.05])
    self.assertEqual(row["updates_to"], {0.5: 200, 0.3: 300, 0.05: None})
    # 240 CPU s over 400 updates: 0.6 s per update.
    self.assertAlmostEqual(row["cpu_minutes_to"][0.5], 2.0)
    self.assertAlmostEqual(row["best_val_error"], 0.1)
    table = long_runs.to_markdown([row], [0.5, 0.3, 0.05])
    self.assertIn("**12.00%**", table)
    self.assertIn("200 (2)", table)
    self.assertIn("not reached", table)

  def test_unfinished_run_is_reported_running_without_cpu_minutes(self):
    root = self.create_tempdir().full_path
    path = _workdir(root, "b", [0.9, 0.45], times=[(10.0, 0.0)])
    row = long_runs.summarize("b", path, [0.5])
    self.assertIsNone(row["cpu_minutes_to"][0.5])
    self.assertIn("running", long_runs.to_markdown([row], [0.5]))

  def test_plot_writes_a_png(self):
    root = self.create_tempdir().full_path
    row = long_runs.summarize("a", _workdir(root, "a", [0.5, 0.2]), [0.3])
    out = os.path.join(root, "c.png")
    long_runs.plot(out, [row])
    self.assertGreater(os.path.getsize(out), 1000)

  def test_wall_minutes_of_each_validation_from_the_events(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    path = _workdir(root, "a", [0.5, 0.2])
    writer = tf.summary.create_file_writer(os.path.join(path, "tensorboard"))
    with writer.as_default():
      tf.summary.text("config", "{}", step=0)
      for update, error in ((100, 0.5), (200, 0.2)):
        tf.summary.scalar("epoch/val_error", error, step=update)
        tf.summary.scalar("epoch/loss", 1.0, step=update)
    writer.close()
    minutes = long_runs.wall_minutes(path)
    self.assertEqual(sorted(minutes), [100, 200])
    self.assertGreaterEqual(minutes[200], minutes[100])
    self.assertGreaterEqual(minutes[100], 0.0)
    row = long_runs.summarize("a", path, [0.3], wall=True)
    self.assertEqual(row["wall_minutes_to"][0.3], minutes[200])
    self.assertIn("min wall", long_runs.to_markdown([row], [0.3]))

  def test_bad_run_spec_names_it(self):
    with self.assertRaisesRegex(Exception, "'x' is not NAME=WORKDIR"):
      long_runs.parse_runs(["x"])


if __name__ == "__main__":
  absltest.main()
