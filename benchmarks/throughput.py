"""Throughput: the train step, the glimpse sensor and the input pipeline (issue 5).

  python -m benchmarks.throughput --config=configs/mnist.py:ram28 \
      [--repeats=7] [--warmup=5] [--min_time=1.0] \
      [--measures=train_step,glimpse,input_pipeline] [--xla=both|on|off] \
      [--steps_per_execution=1,10] [--glimpse_sides=100,300,1000]

Prints one JSON line per measurement. Each timed quantity is the median over
`--repeats` timed runs of about `--min_time` seconds, after `--warmup` untimed
calls (the first of which compiles). The variants of one measure (XLA on and
off, each steps_per_execution, each image side) are built first and their
timed runs interleaved round-robin, so that a machine shared with other work
slows them alike and their ratios stay meaningful.

- train_step: the full Keras train function (`model.make_train_function()`
  on a `tf.data` iterator, as `fit` runs it: rollout, losses, one backward
  pass, both Adam updates, the train-error estimate, the metric updates) over
  a few fixed in-memory batches of SYNTHETIC images (uniform noise of the
  config's image shape, random labels: a step's cost does not depend on pixel
  values). With `steps_per_execution` k > 1 Keras runs k steps per call in a
  graph loop (a real `compile` setting).
- glimpse: `glimpse.extract_glimpses` alone for the config's batch B, samples
  M, glimpses N, patch and scales on square images of each side in
  `--glimpse_sides`; one compiled call reads N glimpses for B * M rows and
  `ms_per_glimpse` = time per call / (N * B * M).
- input_pipeline: batches of `pipelines.mnist.make_datasets(config).train`
  (real MNIST from the local cache) pulled as fast as possible, nothing else
  running; `over_train_step` = its rate / the fastest train-step rate.

Benchmarks never assert times. `load_avg_1m` (median over the timed runs)
says how busy the machine was; `cpu_ms_*` (this process's CPU time) is
steadier than wall time under load.
"""

import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import keras
from ml_collections import config_flags
import numpy as np
import tensorflow as tf

from wsram_tf.classifier import glimpse
from wsram_tf.classifier import presets

MEASURES = ("train_step", "glimpse", "input_pipeline")
_SYNTHETIC_BATCHES = 4  # Distinct in-memory batches the train step cycles over.

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file and preset, e.g. configs/mnist.py:ram28.",
    lock_config=True)
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed runs per measurement.")
_WARMUP = flags.DEFINE_integer("warmup", 5, "Untimed calls before timing.")
_MIN_TIME = flags.DEFINE_float("min_time", 1.0, "Seconds per timed run.")
_MEASURES = flags.DEFINE_list("measures", list(MEASURES),
                              f"Any of {', '.join(MEASURES)}.")
_XLA = flags.DEFINE_enum("xla", "both", ["both", "on", "off"],
                         "jit_compile of the train step and glimpse sensor.")
_STEPS_PER_EXECUTION = flags.DEFINE_list(
    "steps_per_execution", ["1", "10"], "Keras steps_per_execution values.")
_GLIMPSE_SIDES = flags.DEFINE_list("glimpse_sides", ["100", "300", "1000"],
                                   "Image sides for the glimpse measurement.")
_OUTPUT = flags.DEFINE_string("output", None, "Also append the lines here.")


def machine_info() -> dict:
  """What the numbers depend on besides the config."""
  model = platform.processor() or "unknown"
  try:
    with open("/proc/cpuinfo") as f:
      names = [l.split(":", 1)[1].strip() for l in f
               if l.startswith("model name")]
    model = names[0] if names else model
  except OSError:
    pass
  return {"tf_version": tf.__version__, "keras_version": keras.__version__,
          "cpu_count": os.cpu_count(), "cpu_model": model}


def _config_info(config) -> dict:
  return {"config": config.preset, "variant": config.variant,
          "batch": config.train.batch_size,
          "M": config.objective.num_samples,
          "glimpses": config.model.num_glimpses}


class Timing(NamedTuple):
  """`repeats` timed runs of `calls` calls each."""
  wall: List[float]  # Seconds per run.
  cpu: List[float]  # This process's CPU seconds per run.
  load: List[float]  # 1-minute load average after each run.
  calls: int

  def rates(self, units_per_call: float) -> List[float]:
    return [units_per_call * self.calls / w for w in self.wall]

  def ms_per_call(self) -> float:
    return 1e3 * statistics.median(self.wall) / self.calls

  def cpu_ms_per_call(self) -> float:
    return 1e3 * statistics.median(self.cpu) / self.calls


class Arm(NamedTuple):
  """One variant of a measure: a blocking call and its record from a Timing."""
  call: Callable[[], object]
  record: Callable[[Timing], dict]


def time_interleaved(calls: Sequence[Callable[[], object]], repeats: int,
                     warmup: int, min_time: float) -> List[Timing]:
  """Times each call (which must block until its work is done).

  Each call is warmed up, and its number of calls per timed run calibrated so
  that a run lasts about `min_time` seconds; then the runs of all calls take
  turns, in alternating order.
  """
  if repeats < 1 or warmup < 1:
    raise ValueError(f"repeats and warmup must be >= 1, got {repeats}, "
                     f"{warmup}.")
  counts = []
  for call in calls:
    for _ in range(warmup - 1):
      call()
    start = time.perf_counter()
    call()
    counts.append(max(1, math.ceil(
        min_time / max(time.perf_counter() - start, 1e-6))))
  runs = [([], [], []) for _ in calls]
  for r in range(repeats):
    order = range(len(calls)) if r % 2 == 0 else reversed(range(len(calls)))
    for i in order:
      cpu_start, start = time.process_time(), time.perf_counter()
      for _ in range(counts[i]):
        calls[i]()
      runs[i][0].append(time.perf_counter() - start)
      runs[i][1].append(time.process_time() - cpu_start)
      runs[i][2].append(os.getloadavg()[0])
  return [Timing(w, c, l, n) for (w, c, l), n in zip(runs, counts)]


def synthetic_batches(config, image_shape, num: int = _SYNTHETIC_BATCHES):
  """`num` fixed (images, labels) batches of the train batch size, cycled."""
  rng = np.random.default_rng(config.seed)
  batch = config.train.batch_size
  images = rng.random((num, batch) + tuple(image_shape), np.float32)
  labels = rng.integers(0, config.model.num_classes, (num, batch), np.int32)
  return tf.data.Dataset.from_tensor_slices((images, labels)).repeat()


def train_step_arm(config, image_shape, xla: bool,
                   steps_per_execution: int) -> Arm:
  """Images per second of the full Keras train step (synthetic images)."""
  config = config.copy_and_resolve_references()
  config.train.jit_compile = xla
  config.train.steps_per_execution = steps_per_execution
  keras.utils.set_random_seed(config.seed)
  model = presets.build_from_config(config, image_shape)
  iterator = iter(synthetic_batches(config, image_shape))
  model.make_train_function()
  train = model.train_function

  def call():
    return float(train(iterator)["loss"])  # Fetching a value waits for it.

  def record(timing: Timing) -> dict:
    rates = timing.rates(config.train.batch_size * steps_per_execution)
    return {"measure": "train_step", "xla": xla,
            "steps_per_execution": steps_per_execution,
            "images_per_s": statistics.median(rates),
            "images_per_s_repeats": rates,
            "ms_per_step": timing.ms_per_call() / steps_per_execution,
            "cpu_ms_per_step": timing.cpu_ms_per_call() / steps_per_execution,
            "image_side": image_shape[0], "data": "synthetic"}

  return Arm(call, record)


def glimpse_arm(config, side: int, xla: bool) -> Arm:
  """Time per glimpse of the sensor alone on [B, side, side, 1] images.

  One call reads the N glimpses of a rollout (N = the config's glimpses, each
  at fresh locations and scales for all B * M rows), so that the fixed cost of
  calling a compiled function is spread as it is in a train step.
  """
  m = config.model
  reads = m.num_glimpses
  batch, samples = config.train.batch_size, config.objective.num_samples
  rng = tf.random.Generator.from_seed(config.seed)
  images = rng.uniform([batch, side, side, 1])
  locations = rng.uniform([reads, batch, samples, 2], -1.0, 1.0)
  scales = rng.uniform([reads, batch, samples], 0, len(m.scale_factors),
                       tf.int32)

  @tf.function(jit_compile=xla)
  def sensor(images, locations, scales):
    patches = tf.stack([
        glimpse.extract_glimpses(images, locations[n], scales[n],
                                 m.patch_size, m.scale_factors)
        for n in range(reads)])
    return patches, patches[0, 0, 0, 0, 0]  # The scalar is cheap to fetch.

  def call():
    return sensor(images, locations, scales)[1].numpy()

  def record(timing: Timing) -> dict:
    per_glimpse = [1e3 * w / timing.calls / (reads * batch * samples)
                   for w in timing.wall]
    return {"measure": "glimpse", "xla": xla, "image_side": side,
            "ms_per_glimpse": statistics.median(per_glimpse),
            "ms_per_glimpse_repeats": per_glimpse,
            "ms_per_call": timing.ms_per_call(),
            "glimpses_per_call": reads * batch * samples,
            "patch_size": m.patch_size,
            "scale_factors": list(m.scale_factors)}

  return Arm(call, record)


def input_pipeline_arm(config, dataset: tf.data.Dataset) -> Arm:
  """Images per second of the training input pipeline alone."""
  iterator = iter(dataset)

  def record(timing: Timing) -> dict:
    rates = timing.rates(config.train.batch_size)
    return {"measure": "input_pipeline", "xla": False,
            "images_per_s": statistics.median(rates),
            "images_per_s_repeats": rates,
            "cpu_ms_per_batch": timing.cpu_ms_per_call(), "data": "mnist"}

  return Arm(lambda: next(iterator), record)


def _mnist_train(config) -> tuple:
  from wsram_tf.pipelines import mnist  # pylint: disable=g-import-not-at-top
  data = mnist.make_datasets(config)
  return data.train, data.image_shape


def run(config, measures: Sequence[str] = MEASURES,
        xla_modes: Sequence[bool] = (True, False),
        steps_per_execution: Sequence[int] = (1,),
        glimpse_sides: Sequence[int] = (100, 300, 1000), repeats: int = 7,
        warmup: int = 5, min_time: float = 1.0,
        train_data: Optional[Callable] = None) -> Iterator[dict]:
  """Yields one record per measurement.

  `train_data(config) -> (dataset, image_shape)` gives the input pipeline
  (default: translated MNIST from `pipelines.mnist`).
  """
  unknown = set(measures) - set(MEASURES)
  if unknown:
    raise ValueError(f"--measures: unknown {sorted(unknown)}; valid: "
                     f"{', '.join(MEASURES)}.")
  side = config.data.canvas_size
  common = {**_config_info(config), **machine_info(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
  groups = []
  if "train_step" in measures:
    groups.append(lambda: [
        train_step_arm(config, (side, side, 1), xla, k)
        for xla in xla_modes for k in steps_per_execution])
  if "glimpse" in measures:
    groups.append(lambda: [glimpse_arm(config, s, xla)
                           for xla in xla_modes for s in glimpse_sides])
  if "input_pipeline" in measures:
    groups.append(lambda: [input_pipeline_arm(
        config, (train_data or _mnist_train)(config)[0])])

  fastest_step = None
  for make_arms in groups:
    arms = make_arms()
    timings = time_interleaved([a.call for a in arms], repeats, warmup,
                               min_time)
    for arm, timing in zip(arms, timings):
      out = {**arm.record(timing), **common,
             "load_avg_1m": statistics.median(timing.load)}
      if out["measure"] == "train_step":
        fastest_step = max(fastest_step or 0.0, out["images_per_s"])
      elif out["measure"] == "input_pipeline" and fastest_step:
        out["over_train_step"] = out["images_per_s"] / fastest_step
      yield out


def emit(record: dict, output: Optional[str] = None) -> None:
  """Prints the record as one JSON line, and appends it to `output`."""
  line = json.dumps(record)
  print(line, flush=True)
  if output:
    with open(output, "a") as f:
      f.write(line + "\n")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  xla_modes = {"both": (True, False), "on": (True,), "off": (False,)}
  # The --config.<field>=value overrides, so a line says what it timed.
  overrides = [a[len("--config."):] for a in sys.argv[1:]
               if a.startswith("--config.")]
  for record in run(
      _CONFIG.value, _MEASURES.value, xla_modes[_XLA.value],
      [int(k) for k in _STEPS_PER_EXECUTION.value],
      [int(s) for s in _GLIMPSE_SIDES.value], _REPEATS.value, _WARMUP.value,
      _MIN_TIME.value):
    emit({**record, "overrides": overrides}, _OUTPUT.value)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
