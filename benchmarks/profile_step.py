"""Where a train step's time goes, by layer: a profile of the compiled step.

  python -m benchmarks.profile_step --config=configs/mnist.py:wsram_qc \
      [--steps=20] [--logdir=/tmp/profile/wsram_qc] [--profile_output=FILE]

Runs `benchmarks.throughput`'s train step (the Keras train function on
synthetic batches, XLA on) and records `--steps` steps with the TensorFlow
profiler, XLA's per-instruction trace events switched on
(`--xla_cpu_enable_xprof_traceme`). The trace is written to `--logdir`
(open it in TensorBoard's Profile tab, one run per config to compare steps
side by side). Each compiled instruction is then charged to the model part
named in its TensorFlow op name (XLA keeps the op name of a fused
instruction's root: `inference`, `rnn1`, `glimpse_encoder`, ...) and to the
forward or backward pass (op names under the gradient tape's
`gradients/`), and one JSON line gives ms per step by part.

Traced times are a profile, not a benchmark: the tracing itself costs time
and the parts' sum is below the step's wall time (the rest is runtime
overhead and the optimizer outside the cluster); compare shares between
configs profiled alike, and measure step times with `benchmarks.throughput`.
"""

import collections
import glob
import os
import re
import statistics
import tempfile
import time

_DUMP = tempfile.mkdtemp(prefix="wsram_hlo_")
# Before TensorFlow starts: XLA reads its flags once.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_enable_xprof_traceme=true"
                           f" --xla_dump_to={_DUMP}"
                           " --xla_dump_hlo_as_text=true")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks import throughput

# --config is throughput's flag (the module defines it on import).
_CONFIG = throughput._CONFIG  # pylint: disable=protected-access
_STEPS = flags.DEFINE_integer("steps", 20, "Train steps traced.")
_LOGDIR = flags.DEFINE_string("logdir", None,
                              "Profiler log directory (default: a temp dir).")
_OUTPUT = flags.DEFINE_string("profile_output", None,
                              "Also append the line here.")

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=.*?"
                          r"metadata=\{[^}]*op_name=\"([^\"]*)\"")
# Wrappers Keras and tf.function put in front of the model's own names.
_PREFIXES = re.compile(r"^(?:.*?/)?(?:while/body/)?(?:[\w]*_model/|"
                       r"glimpse_classifier[_\d]*/|glimpse_captioner[_\d]*/)")


def instruction_owners(dump_dir: str) -> dict:
  """{HLO instruction name: TensorFlow op name} of the optimized modules."""
  owners = {}
  for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
    with open(path) as f:
      for line in f:
        match = _INSTRUCTION.match(line)
        if match:
          owners.setdefault(match.group(1), match.group(2))
  return owners


def part_of(op_name: str, depth: int = 1) -> tuple:
  """(model part, "forward" | "backward") of a TensorFlow op name; the part
  is its first `depth` name scopes ("actions/inference" for depth 2)."""
  backward = op_name.startswith("gradient_tape/") or "gradients/" in op_name
  name = re.sub(r"^(?:.*?gradients/|gradient_tape/)", "", op_name)
  name = _PREFIXES.sub("", name)
  parts = [p for p in name.split("/") if p and not p.startswith("while")]
  # A layer called n times is `layer_<2n-1>`: one part per layer.
  part = "/".join(re.sub(r"_\d+$", "", p) for p in parts[:depth]) or "other"
  return part, "backward" if backward else "forward"


def traced_instruction_ps(logdir: str, owners: dict,
                          depth: int = 1) -> collections.Counter:
  """Picoseconds per (part, pass) over every traced XLA instruction."""
  totals = collections.Counter()
  for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                        recursive=True):
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
      space.ParseFromString(f.read())
    for plane in space.planes:
      names = {k: v.name for k, v in plane.event_metadata.items()}
      for line in plane.lines:
        for event in line.events:
          name = names.get(event.metadata_id, "")
          if name in owners:
            totals[part_of(owners[name], depth)] += event.duration_ps
  return totals


def profile(config, steps: int, logdir: str) -> dict:
  side = config.data.canvas_size
  arm = throughput.train_step_arm(config, (side, side, 1), True, 1)
  for _ in range(5):  # Compiles, then settles.
    arm.call()
  walls = []
  tf.profiler.experimental.start(logdir)
  for _ in range(steps):
    start = time.perf_counter()
    arm.call()
    walls.append(time.perf_counter() - start)
  tf.profiler.experimental.stop()
  owners = instruction_owners(_DUMP)
  totals = traced_instruction_ps(logdir, owners)
  detail = traced_instruction_ps(logdir, owners, depth=2)
  ms = {f"{part} ({phase})": round(ps / 1e9 / steps, 3)
        for (part, phase), ps in sorted(detail.items())
        if ps / 1e9 / steps >= 0.05}
  by_part = collections.Counter()
  for (part, _), ps in totals.items():
    by_part[part] += ps / 1e9 / steps
  traced = sum(by_part.values())
  return {"measure": "profile", "config": config.preset,
          "variant": config.variant, "steps": steps, "logdir": logdir,
          "traced_ms_per_step": round(traced, 3),
          "wall_ms_per_step_while_tracing": round(
              1e3 * statistics.median(walls), 3),
          "ms_per_step_by_part": {k: round(v, 3) for k, v in
                                  by_part.most_common()},
          "share_by_part": {k: round(v / traced, 3) for k, v in
                            by_part.most_common()} if traced else {},
          # Two name scopes deep, forward and backward apart (>= 0.05 ms).
          "ms_per_step_by_subpart_and_pass": ms,
          **throughput.machine_info(), "load_avg_1m": os.getloadavg()[0],
          "date": time.strftime("%Y-%m-%dT%H:%M:%S")}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logdir = _LOGDIR.value or tempfile.mkdtemp(prefix="wsram_profile_")
  throughput.emit(profile(_CONFIG.value, _STEPS.value, logdir),
                  _OUTPUT.value)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
