"""A work directory belongs to one run of one config.

- `check_stored_config`: a re-run compares its config with the stored
  config.json (reading only) and refuses any change outside
  `SAFE_TO_CHANGE`, naming each field old -> new (more updates only with
  a constant learning rate: a schedule spans num_train_steps). A field the
  stored config predates counts as the value that version used
  (`IMPLIED_WHEN_ABSENT`), else as today's default.
- `locked`: one run at a time; the second fails at once naming the holder.
- `trim_csv`: a resumed run drops log rows beyond the restored step (and a
  torn last line), so every row is present exactly once.
"""

import contextlib
import csv
import datetime
import fcntl
import json
import os
import socket
from typing import Callable, Iterator, Optional

from absl import logging

from wsram_tf import atomic
from wsram_tf import tasks

# Fields a re-run may change: none alters the model, its training data or its
# update. More updates extend training; the rest are evaluation, logging,
# checkpoint, export and hardware settings, or where the same data lives.
SAFE_TO_CHANGE = frozenset({
    "preset",  # A label; the fields it set are compared one by one.
    "train.num_train_steps",  # Only upwards: training continues.
    "train.checkpoint_every_steps", "train.profile_steps",
    "train.glimpse_every_epochs", "train.grad_var_every_steps",
    "train.grad_var_draws", "train.export", "train.strategy",
    "train.train_error_examples",  # Which rows log train_error, not the update.
    "train.jit_compile", "train.steps_per_execution",
    "data.mnist_dir", "data.cache_dir", "data.flickr8k_dir",
    "data.feature_cache_dir", "data.feature_batch_size", "data.verify_images",
})
SAFE_SECTIONS = ("eval.",)  # Every eval.* field.
LOCK_FILE = "run.lock"
ABSENT = "<absent>"
# Fields added since runs were stored -> the value a config.json written
# before them implies (a function of that config): that run used it,
# whatever the default becomes later.
IMPLIED_WHEN_ABSENT = {
    "task": tasks.task_of,  # Implied by the data it ran on.
    "model.inference_units": lambda old: 0,  # q was hidden_size wide.
}


class WorkdirError(RuntimeError):
  """The work directory holds another config, or another run holds it."""


def flatten(value, prefix: str = "") -> dict:
  """A nested dict (or ConfigDict) as {"model.hidden_size": 256, ...}."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if not isinstance(value, dict):
    return {prefix[:-1]: value}
  flat = {}
  for key, item in value.items():
    flat.update(flatten(item, f"{prefix}{key}."))
  return flat


def config_changes(old: dict, new: dict) -> dict:
  """{field: (old, new)} of the fields that differ ("<absent>" if missing)."""
  old, new = flatten(old), flatten(new)
  return {k: (old.get(k, ABSENT), new.get(k, ABSENT))
          for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
          or (k in old) != (k in new)}


def _safe(field: str, old, new, schedule: str = "constant") -> bool:
  if field == "train.num_train_steps":
    # A schedule spans num_train_steps: more updates would reshape its past.
    return (isinstance(old, int) and isinstance(new, int) and new >= old
            and schedule == "constant")
  return field in SAFE_TO_CHANGE or field.startswith(SAFE_SECTIONS)


def check_stored_config(config, workdir: str) -> Optional[dict]:
  """Raises WorkdirError naming every unsafe change against
  WORKDIR/config.json; returns the safe changes (None for a new directory)."""
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  if not os.path.exists(path):
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
      raise WorkdirError(
          f"{workdir} has checkpoints/ but no config.json: cannot tell which "
          "config its backups belong to. Restore config.json or use another "
          "--workdir.")
    return None
  try:
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f"Cannot read the stored config {path}: {e}. Restore "
                       "it or use another --workdir.") from e
  changes = config_changes(old, new)
  for field, implied in IMPLIED_WHEN_ABSENT.items():
    if changes.get(field, (None,))[0] == ABSENT:
      changes[field] = (implied(old), changes[field][1])
      if changes[field][0] == changes[field][1]:
        del changes[field]
  # A field only one side has comes from another version of the library (a
  # setting added or retired since the run started), not from this command:
  # resuming a run across an upgrade must stay possible, so name and allow it.
  versioned = {k: v for k, v in changes.items() if ABSENT in v}
  if versioned:
    logging.warning(
        "%s was written by another version of wsram: settings only one side "
        "has (kept as the new defaults): %s", path,
        "; ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in versioned.items()))
  schedule = old.get("train", {}).get("lr_schedule", "constant")
  unsafe = {k: v for k, v in changes.items()
            if k not in versioned and not _safe(k, *v, schedule)}
  if unsafe:
    listed = "; ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in unsafe.items())
    more_steps = ("more train.num_train_steps, " if schedule == "constant"
                  else "")  # A schedule spans the steps: never safe then.
    raise WorkdirError(
        f"{workdir} holds a run of another config ({path}); these changes "
        f"alter the model or the data: {listed}. To resume that run, give "
        f"it its stored values back{_restoring_flags(unsafe)}; else use "
        "another --workdir "
        f"(safe to change: {more_steps}eval.*, logging, checkpoint, profile, "
        "export and strategy settings, data paths; see README).")
  if changes:
    logging.info("Re-run of %s with changed settings: %s", workdir,
                 {k: f"{o!r} -> {n!r}" for k, (o, n) in changes.items()})
  return changes


def _restoring_flags(unsafe: dict) -> str:
  """' (--config.f=old ...)' for the scalar fields, which a flag can set."""
  flags = [f"--config.{k}='{o}'" if isinstance(o, str) else f"--config.{k}={o}"
           for k, (o, _) in unsafe.items()
           if k != "task" and isinstance(o, (bool, int, float, str))]
  return f" ({' '.join(flags)})" if flags else ""


def _holder(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().strip() or "unknown (empty lock file)"
  except OSError:
    return "unknown"


@contextlib.contextmanager
def locked(workdir: str, name: str = LOCK_FILE) -> Iterator[None]:
  """Holds WORKDIR/`name` with flock: the kernel frees it when the holder
  dies, even by SIGKILL, so a stale file never blocks a resume."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, name)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirError(f"{workdir} is in use by another run: {_holder(path)}"
                         f" (lock {path}). Wait for it or use another "
                         "--workdir.") from None
    os.ftruncate(fd, 0)
    start = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}, "
                 f"started {start}\n".encode())
    yield
  finally:
    os.close(fd)


def trim_csv(path: str, keep: Callable[[dict], bool]) -> int:
  """Rewrites `path` (atomically) without the rows `keep` rejects and without
  a torn last line; returns how many rows were dropped."""
  if not os.path.exists(path):
    return 0
  with open(path, encoding="utf-8", newline="") as f:
    text = f.read()
  lines = text.splitlines(keepends=True)
  torn = bool(lines) and not lines[-1].endswith("\n")
  if torn:
    lines.pop()  # A write cut short by a kill.
  kept = lines[:1]
  if lines:
    header = next(csv.reader([lines[0]]))
    kept += [line for line in lines[1:]
             if keep(dict(zip(header, next(csv.reader([line])))))]
  dropped = len(lines) - len(kept)
  if dropped or torn:
    atomic.write_text(path, "".join(kept))
    logging.warning("%s: dropped %d row(s) past the restored backup%s; they "
                    "are computed again.", path, dropped,
                    " and a line torn by a kill" if torn else "")
  return dropped
