"""Resumable training state and the best-model checkpoint.

A run killed at any point and started again with the same work directory
continues from its last backup: `ResumableCheckpoint` saves parameters, both
optimizers (theta's and eta's, with their step counters) and the action-sampling
seed state every N steps with `tf.train.CheckpointManager` (atomic writes, the
newest `max_to_keep` kept), and `restore()` puts them back before `fit`.
`BestCheckpoint` keeps the weights with the lowest validation error; its best
value survives a restart, so a resumed run does not overwrite a better model.
"""

import json
import math
import os

from absl import logging
import keras
import tensorflow as tf


def training_checkpoint(model) -> tf.train.Checkpoint:
  """Everything a resumed run needs to continue as if never stopped."""
  state = {"model": model, "optimizer": model.optimizer,
           # Keras does not track the SeedGenerator for tf.train.Checkpoint.
           "seed": model.seed_generator.state}
  if model.eta_optimizer is not None:
    state["eta_optimizer"] = model.eta_optimizer
  return tf.train.Checkpoint(**state)


class ResumableCheckpoint(keras.callbacks.Callback):
  """Backs up the training state every `every_steps` optimizer steps."""

  def __init__(self, directory: str, every_steps: int, max_to_keep: int = 2):
    super().__init__()
    if every_steps < 1:
      raise ValueError("config.train.checkpoint_every_steps must be >= 1, got "
                       f"{every_steps}.")
    self.directory = directory
    self.every_steps = every_steps
    self.max_to_keep = max_to_keep
    self._manager = None

  def manager(self, model) -> tf.train.CheckpointManager:
    if self._manager is None:
      self._manager = tf.train.CheckpointManager(
          training_checkpoint(model), self.directory,
          max_to_keep=self.max_to_keep)
    return self._manager

  def restore(self, model) -> int:
    """Restores the newest backup if there is one; returns the step reached."""
    manager = self.manager(model)
    if manager.latest_checkpoint:
      manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
      logging.info("Resumed from %s", manager.latest_checkpoint)
    return int(model.optimizer.iterations.numpy())

  def save(self) -> None:
    step = int(self.model.optimizer.iterations.numpy())
    if self.manager(self.model).latest_checkpoint != os.path.join(
        self.directory, f"ckpt-{step}"):
      self.manager(self.model).save(checkpoint_number=step)

  def on_train_batch_end(self, batch, logs=None):
    if int(self.model.optimizer.iterations.numpy()) % self.every_steps == 0:
      self.save()

  def on_train_end(self, logs=None):
    self.save()


class BestCheckpoint(keras.callbacks.Callback):
  """Saves the weights whenever `monitor` (lower is better) improves."""

  def __init__(self, path: str, monitor: str = "val_error"):
    super().__init__()
    self.path = path
    self.monitor = monitor
    self._record = path + ".json"
    self.best = math.inf
    if os.path.exists(self._record):
      with open(self._record) as f:
        self.best = json.load(f)[monitor]

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is None or not value < self.best:
      return
    self.best = float(value)
    self.model.save_weights(self.path, overwrite=True)
    with open(self._record, "w") as f:
      json.dump({self.monitor: self.best, "epoch": epoch + 1,
                 "step": int(self.model.optimizer.iterations.numpy())}, f)
