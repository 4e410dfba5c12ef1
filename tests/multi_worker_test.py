"""train.strategy=multi_worker, run: two workers on this machine, as two hosts.

Two `python -m wsram_tf.main` processes with TF_CONFIG naming two localhost
ports train a tiny classifier into one shared work directory, next to a
one-process run (default strategy) of the same config and global batch. Both
workers must finish, end with equal weights, and with the one process's.
XLA is off: TensorFlow does not compile collectives for CPU devices (the
last test checks that run.py says so before any work).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests import builders
from tests import toy_data
from wsram_tf import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300  # Seconds for every process of a run; tiny runs take far less.


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def tf_config(ports, index: int) -> str:
  return json.dumps({
      "cluster": {"worker": [f"localhost:{p}" for p in ports]},
      "task": {"type": "worker", "index": index}})


def start(workdir: str, flags, tf_config_value=None) -> subprocess.Popen:
  """`python -m wsram_tf.main` in its own process group (to kill it whole)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  if tf_config_value:
    env["TF_CONFIG"] = tf_config_value
  return subprocess.Popen(
      [sys.executable, "-m", "wsram_tf.main", f"--workdir={workdir}", *flags],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, start_new_session=True)


def finish(processes) -> list:
  """Waits for all; kills them all if one fails or any outlives TIMEOUT (a
  worker left alone blocks in its collectives). Returns (returncode, stderr)."""
  results = []
  try:
    for p in processes:
      _, stderr = p.communicate(timeout=TIMEOUT)
      results.append((p.returncode, stderr))
      if p.returncode:
        break
  except subprocess.TimeoutExpired:
    pass
  for p in processes:
    if p.poll() is None:
      os.killpg(p.pid, signal.SIGKILL)
      _, stderr = p.communicate()
      results.append((f"killed after {TIMEOUT}s", stderr))
  return results


class MultiWorkerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    mnist_dir = os.path.join(cls.root, "mnist")
    os.makedirs(mnist_dir)
    toy_data.write_idx_dir(mnist_dir, toy_data.random_mnist_arrays(80, 24))
    # Global batch 16 (tiny): 8 per worker; 4 steps, backups at 2 and 4.
    cls.flags = [
        "--config=configs/mnist.py:var_c,tiny",
        f"--config.data.mnist_dir={mnist_dir}",
        "--config.data.validation_size=16", "--config.model.hidden_size=16",
        "--config.train.jit_compile=False", "--config.train.export=False",
        "--config.train.glimpse_every_epochs=0"]
    cls.shared = os.path.join(cls.root, "shared")
    cls.single = os.path.join(cls.root, "single")
    ports = [free_port(), free_port()]
    worker_flags = cls.flags + ["--config.train.strategy=multi_worker"]
    cls.outcomes = finish(
        [start(cls.shared, worker_flags, tf_config(ports, i)) for i in (0, 1)]
        + [start(cls.single, cls.flags)])

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def final_weights(self, workdir):
    self.assertEqual([code for code, _ in self.outcomes], [0, 0, 0],
                     "\n\n".join(err[-3000:] for _, err in self.outcomes))
    return builders.final_weights("classifier", workdir)

  def test_both_workers_finish_the_run(self):
    for workdir in (self.shared, os.path.join(self.shared, "workers",
                                              "worker-1")):
      self.final_weights(workdir)  # Every process exited 0.
      with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
      self.assertEqual((results["strategy"], results["replicas"],
                        results["train_steps"]), ("multi_worker", 2, 4))

  def test_workers_end_with_equal_weights(self):
    chief = self.final_weights(self.shared)
    other = self.final_weights(os.path.join(self.shared, "workers",
                                            "worker-1"))
    for a, b in zip(chief, other):
      self.assertAllEqual(a, b)

  def test_workers_equal_one_process_on_the_same_global_batch(self):
    workers = self.final_weights(self.shared)
    single = self.final_weights(self.single)
    # Not exact: each worker averages its half of the batch and the halves'
    # gradients are then summed, a different float order than one mean.
    diff = max(abs(a - b).max() for a, b in zip(workers, single))
    self.assertLess(diff, 1e-5)
    # ...far below what two of the four steps move the weights.
    model, _ = builders.load_run("classifier", self.single)
    checkpoints.training_checkpoint(model).restore(
        os.path.join(self.single, "checkpoints", "ckpt-2")).expect_partial()
    moved = max(abs(a - b).max() for a, b in zip(single, model.get_weights()))
    self.assertGreater(moved, 100 * max(diff, 1e-7))

  def test_xla_on_cpus_is_refused_before_any_work(self):
    workdir = os.path.join(self.root, "xla")
    (code, stderr), = finish([start(
        workdir, self.flags + ["--config.train.strategy=multi_worker",
                               "--config.train.jit_compile=True"],
        tf_config([free_port()], 0))])
    self.assertNotEqual(code, 0)
    self.assertIn("config.train.jit_compile must be False", stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, "metrics.csv")))


if __name__ == "__main__":
  tf.test.main()
