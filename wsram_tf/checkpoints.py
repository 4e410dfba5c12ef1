"""Resumable training state and the best-model checkpoint.

A run killed at any point and started again with the same work directory
continues from its last backup: `ResumableCheckpoint` saves parameters, both
optimizers (theta's and eta's, with their step counters) and the action-sampling
seed state every N steps with `tf.train.CheckpointManager` (atomic writes, the
newest `max_to_keep` kept), and `restore()` puts them back before `fit`.
A backup due at an epoch's last step is taken at the epoch's end, after
validation and the epoch's other callbacks (metrics row, scalars, best
check): a run killed just after it never skips that epoch's row. A damaged
newest backup is skipped, with a WARNING naming it, for the older one.
`BestCheckpoint` keeps the weights with the lowest validation error; its best
value survives a restart, so a resumed run does not overwrite a better model.
"""

import json
import math
import os
import re
from typing import Optional

from absl import logging
import h5py
import keras
import tensorflow as tf

from wsram_tf import atomic


class CheckpointError(RuntimeError):
  """No intact backup to resume from although backups exist."""


def metric_variables(model) -> list:
  """The running sums of the model's metrics (the epoch's train averages),
  in the model's backup order (`resumable_metrics`, if it has one)."""
  metrics = getattr(model, "resumable_metrics", None)
  return [v for m in (metrics() if metrics else model.metrics)
          for v in m.variables]


def training_checkpoint(model, metrics: bool = True) -> tf.train.Checkpoint:
  """Everything a resumed run needs to continue as if never stopped."""
  generator = getattr(model, "training_seed_generator", None) or (
      model.seed_generator)
  state = {"model": model, "optimizer": model.optimizer,
           # Keras does not track the SeedGenerator for tf.train.Checkpoint.
           "seed": generator.state}
  if model.eta_optimizer is not None:
    state["eta_optimizer"] = model.eta_optimizer
  if metrics:
    # A run resumed mid-epoch logs the same epoch averages as one never
    # stopped only if it continues the sums of the steps before the backup.
    state["metrics"] = metric_variables(model)
  return tf.train.Checkpoint(**state)


def backups_on_disk(directory: str) -> list:
  """[(step, prefix)] of the ckpt-<step>.index files in `directory`, sorted."""
  if not os.path.isdir(directory):
    return []
  found = []
  for name in os.listdir(directory):
    match = re.fullmatch(r"ckpt-(\d+)\.index", name)
    if match:
      found.append((int(match.group(1)),
                    os.path.join(directory, name[:-len(".index")])))
  return sorted(found)


class ResumableCheckpoint(keras.callbacks.Callback):
  """Backs up the training state every `every_steps` optimizer steps."""

  def __init__(self, directory: str, every_steps: int, max_to_keep: int = 2,
               steps_per_epoch: int = 0):
    super().__init__()
    if every_steps < 1:
      raise ValueError("config.train.checkpoint_every_steps must be >= 1, got "
                       f"{every_steps}.")
    self.directory = directory
    self.every_steps = every_steps
    self.max_to_keep = max_to_keep
    self.steps_per_epoch = steps_per_epoch  # 0: backups at batch ends only.
    self._manager = None
    self._saved_step = None
    self._resumed_metrics = None

  def manager(self, model) -> tf.train.CheckpointManager:
    if self._manager is None:
      try:
        self._manager = tf.train.CheckpointManager(
            training_checkpoint(model), self.directory,
            max_to_keep=self.max_to_keep)
      except Exception as e:  # An unreadable directory, say; name it.
        raise CheckpointError(
            f"Cannot read the backup index {self.directory}/checkpoint: "
            f"{type(e).__name__}: {str(e)[:200]}. Move checkpoints/ away to "
            "start over.") from e
    return self._manager

  def restore(self, model) -> int:
    """Restores the newest intact backup if any; returns the step reached."""
    damaged = []
    for path in self._candidates(model):
      try:
        self._restore_one(model, path)
      except Exception as e:  # DataLoss, OutOfRange, IndexError, ...
        damaged.append(f"{path}: {type(e).__name__}: {str(e)[:200]}")
        logging.warning("Backup %s is damaged (%s: %s); trying an older one.",
                        path, type(e).__name__, str(e)[:200])
        continue
      logging.info("Resumed from %s", path)
      self._saved_step = int(model.optimizer.iterations.numpy())
      if self.steps_per_epoch and self._saved_step % self.steps_per_epoch:
        self._resumed_metrics = [v.numpy() for v in metric_variables(model)]
      return self._saved_step
    if damaged:
      raise CheckpointError(
          "No intact backup to resume from in " + self.directory + ": "
          + "; ".join(damaged) + ". Move checkpoints/ away to start over.")
    return int(model.optimizer.iterations.numpy())

  def _candidates(self, model) -> list:
    """Backups to try, newest first: the index's, else the files present
    (TF reads an unreadable index as "no backups", which would start over)."""
    listed = list(reversed(self.manager(model).checkpoints))
    if listed:
      return listed
    found = backups_on_disk(self.directory)
    if found:
      logging.warning(
          "The backup index %s is missing or unreadable; trying the backups "
          "found beside it: %s.", os.path.join(self.directory, "checkpoint"),
          ", ".join(path for _, path in found))
    return [path for _, path in reversed(found)]

  def _restore_one(self, model, path: str) -> None:
    names = [name for name, _ in tf.train.list_variables(path)]
    if any(name.startswith("metrics/") for name in names):
      checkpoint = self.manager(model).checkpoint
    else:  # Written before metrics were backed up: restore the rest.
      checkpoint = training_checkpoint(model, metrics=False)
    checkpoint.restore(path).assert_existing_objects_matched()

  def on_epoch_begin(self, epoch, logs=None):
    # Keras has just reset the metrics; a resumed epoch continues its sums.
    if self._resumed_metrics is not None:
      for variable, value in zip(metric_variables(self.model),
                                 self._resumed_metrics):
        variable.assign(value)
      self._resumed_metrics = None

  def save(self) -> None:
    step = int(self.model.optimizer.iterations.numpy())
    if step != self._saved_step:
      atomic.fault_point("backup")
      self.manager(self.model).save(checkpoint_number=step)
      self._saved_step = step

  def _due(self) -> bool:
    return int(self.model.optimizer.iterations.numpy()) % self.every_steps == 0

  def _at_epoch_end(self) -> bool:
    step = int(self.model.optimizer.iterations.numpy())
    return bool(self.steps_per_epoch) and step % self.steps_per_epoch == 0

  def on_train_batch_end(self, batch, logs=None):
    if self._due() and not self._at_epoch_end():
      self.save()

  def on_epoch_end(self, epoch, logs=None):
    atomic.fault_point("epoch_end")
    if self._due():
      self.save()

  def on_train_end(self, logs=None):
    self.save()


def readable_weights(path: str) -> bool:
  """True if `path` is an HDF5 file that opens (not torn, not garbage)."""
  try:
    with h5py.File(path, "r"):
      return True
  except (OSError, ValueError):
    return False


def load_best(model, path: str) -> Optional[dict]:
  """Loads BestCheckpoint's weights at `path` into `model`; returns its
  record ({monitor: value, "epoch", "step"}), or None if either is missing
  or unreadable (the model is then unchanged)."""
  try:
    with open(path + ".json", encoding="utf-8") as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(record, dict) or not readable_weights(path):
    return None
  model.load_weights(path)
  return record


class BestCheckpoint(keras.callbacks.Callback):
  """Saves the weights whenever `monitor` (lower is better) improves."""

  def __init__(self, path: str, monitor: str = "val_error"):
    super().__init__()
    self.path = path
    self.monitor = monitor
    self._record = path + ".json"
    self.best = self._stored_best()

  def _stored_best(self) -> float:
    """The recorded best, if its weights file is there and readable."""
    if not os.path.exists(self._record):
      return math.inf
    try:
      with open(self._record, encoding="utf-8") as f:
        best = float(json.load(f)[self.monitor])
    except (OSError, ValueError, KeyError, TypeError) as e:
      logging.warning("Best-model record %s is unreadable (%s); the next "
                      "validation rewrites %s.", self._record, e, self.path)
      return math.inf
    if not readable_weights(self.path):
      logging.warning(
          "%s (best %s=%s) is missing or unreadable; it is rewritten at the "
          "next validation, from the weights of that epoch.", self.path,
          self.monitor, best)
      return math.inf
    return best

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is None or not value < self.best:
      return
    self.best = float(value)
    atomic.save_weights(self.model, self.path)
    atomic.write_json(self._record, {
        self.monitor: self.best, "epoch": epoch + 1,
        "step": int(self.model.optimizer.iterations.numpy())})
