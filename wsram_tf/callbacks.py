"""Keras callbacks around `model.fit` that any task uses: gradient
variance, epoch scalars, profiling and a non-finite stop (docs/design.md §3).
The picture callbacks are the tasks' own, on `picture_callback`.

Where things land, with `logdir` = `<workdir>/tensorboard` by convention:
- `GradientVariance`: scalars `grad_var_theta`, `grad_var_eta` under
  `logdir/diagnostics` (step = optimizer iterations) and, if `workdir` is
  given, rows `step,theta,eta` appended to `<workdir>/grad_variance.csv`.
- `EpochScalars`: the config as text and hparams at train begin, and every
  epoch log value as `epoch/<name>` (step = optimizer iterations, the x axis
  of the gradient variance too), all directly in `logdir`.

Callbacks that draw actions pass their own seeds, so adding or removing them
does not change the model's sampling stream (its training randomness).
"""

import json
import os
from typing import List, NamedTuple, Optional, Sequence

import keras
import numpy as np
from tensorboard.plugins.hparams import api as hp
import tensorflow as tf

from wsram_tf import diagnostics
from wsram_tf import workdir as workdir_lib

# -- callbacks ----------------------------------------------------------------

def _fixed_batch(name: str, inputs, targets):
  """K rows of inputs (images [K, H, W, C], or the captioner's dict of maps)
  and their targets (labels [K] or captions [K, T]), as tensors."""
  inputs = tf.nest.map_structure(
      lambda x: tf.convert_to_tensor(x, tf.float32), inputs)
  targets = tf.convert_to_tensor(targets, tf.int32)
  shapes = [x.shape for x in tf.nest.flatten(inputs)]
  if any(s.rank != 4 or s[0] != targets.shape[0] for s in shapes) or (
      targets.shape.rank not in (1, 2)):
    raise ValueError(f"callbacks.{name}: need inputs [K, H, W, C] and targets "
                     f"[K] or [K, T], got {shapes} and {targets.shape}.")
  return inputs, targets


def _check_every(name: str, field: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"callbacks.{name}: {field} must be an int >= 1, got "
                     f"{value!r} (leave the callback out to turn it off).")
  return value


def _iterations(model) -> int:
  optimizer = getattr(model, "optimizer", None)
  return 0 if optimizer is None else int(optimizer.iterations.numpy())


class GradientVarianceRecord(NamedTuple):
  step: int  # Optimizer iterations when measured.
  theta: float  # Mean per-coordinate gradient variance of theta.
  eta: float  # Same for eta; NaN without an inference network.


class GradientVariance(keras.callbacks.Callback):
  """Every `every_steps` updates, `draws` gradient estimates on a fixed batch.

  Uses `diagnostics.gradient_variance` (fresh action samples, same
  parameters) with seed derived from (seed, step): new samples at every
  measurement, reproducible across runs. Results are kept in
  `self.measurements`. A measurement runs when the optimizer's iteration
  count reaches the next multiple of `every_steps` (with
  steps_per_execution > 1, at the first batch end past it).
  """

  def __init__(self, images, labels, every_steps: int, draws: int,
               logdir: str, workdir: Optional[str] = None, seed: int = 0,
               jit_compile: Optional[bool] = None):
    super().__init__()
    self.images, self.labels = _fixed_batch("GradientVariance", images, labels)
    self.every_steps = _check_every("GradientVariance", "every_steps",
                                    every_steps)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
      raise ValueError(f"callbacks.GradientVariance: draws must be an int >= "
                       f"2, got {draws!r}.")
    self.draws = draws
    self.logdir = os.path.join(logdir, "diagnostics")
    self.csv_path = (None if workdir is None
                     else os.path.join(workdir, "grad_variance.csv"))
    self.seed = seed
    self.jit_compile = jit_compile
    self.measurements: List[GradientVarianceRecord] = []
    self._writer = None
    self._next_step = every_steps

  def on_train_begin(self, logs=None):
    # On resume, the next multiple after the restored step.
    self._next_step = (_iterations(self.model) // self.every_steps + 1
                       ) * self.every_steps

  def on_train_batch_end(self, batch, logs=None):
    step = _iterations(self.model)
    if step >= self._next_step:
      self.measure(step)
      self._next_step = (step // self.every_steps + 1) * self.every_steps

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def measure(self, step: int) -> GradientVarianceRecord:
    """Measures now and logs the result under `step`."""
    jit = self.jit_compile
    if jit is None:
      jit = getattr(self.model, "jit_compile", False) is True
    result = diagnostics.gradient_variance(
        self.model, self.images, self.labels, self.draws,
        seed=(self.seed * 1_000_003 + step) % 2**31, jit_compile=jit)
    record = GradientVarianceRecord(step, result["theta"], result["eta"])
    self.measurements.append(record)
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self.logdir)
    with self._writer.as_default():
      for name, value in (("theta", record.theta), ("eta", record.eta)):
        if np.isfinite(value):  # eta is NaN for variants without q.
          tf.summary.scalar(f"grad_var_{name}", value, step=step)
    self._writer.flush()
    if self.csv_path is not None:
      new = not tf.io.gfile.exists(self.csv_path)
      with tf.io.gfile.GFile(self.csv_path, "a") as f:
        if new:
          f.write("step,theta,eta\n")
        f.write(f"{record.step},{record.theta!r},{record.eta!r}\n")
    return record


def _scalars(config) -> dict:
  """{"model.hidden_size": 256, ...} with bool/int/float/str values only."""
  # Tuples, None, ...: hparams takes only scalars.
  flat = workdir_lib.flatten(config)
  return {name: value if isinstance(value, (bool, int, float, str))
          else str(value) for name, value in flat.items()}


class EpochScalars(keras.callbacks.Callback):
  """Config as text and hparams once; every epoch log value as a scalar.

  Scalars are `epoch/<log name>` (loss, bound, ess, train_error,
  baseline_loss, val_error, val_log_likelihood, ...), step = optimizer
  iterations so that runs with different epoch lengths line up.
  """

  def __init__(self, logdir: str, config):
    super().__init__()
    self.logdir = logdir
    self.config = config
    self._writer = None
    self._config_written = False

  def _get_writer(self):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self.logdir)
    return self._writer

  def on_train_begin(self, logs=None):
    if self._config_written:
      return
    flat = _scalars(self.config)
    with self._get_writer().as_default():
      text = json.dumps(flat, indent=2, sort_keys=True)
      # Indented: TensorBoard renders text as markdown; this keeps it verbatim.
      tf.summary.text("config", "\n".join("    " + line
                                          for line in text.splitlines()),
                      step=0)
      hp.hparams(flat)
    self._writer.flush()
    self._config_written = True

  def on_epoch_end(self, epoch, logs=None):
    step = _iterations(self.model) if self.model is not None else epoch + 1
    with self._get_writer().as_default():
      for name, value in (logs or {}).items():
        value = np.asarray(value)
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
          tf.summary.scalar(f"epoch/{name}", float(value), step=step)
    self._writer.flush()

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class NonFiniteLossError(RuntimeError):
  """A training or validation metric became NaN or Inf."""


class StopOnNonFinite(keras.callbacks.Callback):
  """Stops `fit` by raising NonFiniteLossError at the first NaN/Inf in logs.

  Put it BEFORE every checkpointing callback (ModelCheckpoint,
  BackupAndRestore, ...): callbacks run in list order, and the raise stops
  the later ones from seeing the batch, so no checkpoint holds the poisoned
  weights (the update that produced the NaN is already applied). Raising,
  not only setting `model.stop_training` as keras' TerminateOnNaN does, is
  what makes this robust: after `stop_training` Keras still ends the epoch,
  and epoch-end checkpoints would save the NaN weights. Checks train logs
  after every batch and the validation logs at epoch end. Given the run's
  `checkpoint_dir`, the message names the newest backup, or says there is
  none yet.
  """

  def __init__(self, checkpoint_dir: Optional[str] = None):
    super().__init__()
    self.checkpoint_dir = checkpoint_dir

  def _backup_note(self) -> str:
    if self.checkpoint_dir is None:
      return ""
    latest = tf.train.latest_checkpoint(self.checkpoint_dir)
    if latest is None:
      return " No backup has been written yet."
    return f" The newest backup, {latest}, predates it."

  def on_train_batch_end(self, batch, logs=None):
    self._check(logs, f"training step {_iterations(self.model)} "
                f"(batch {batch})")

  def on_epoch_end(self, epoch, logs=None):
    self._check(logs, f"the end of epoch {epoch + 1} (training step "
                f"{_iterations(self.model)})")

  def _check(self, logs, where: str):
    bad = []
    # "loss" first: the name users look for; Keras' log order varies.
    for name, value in sorted((logs or {}).items(),
                              key=lambda item: item[0] != "loss"):
      value = np.asarray(value)
      if np.issubdtype(value.dtype, np.number) and not np.all(
          np.isfinite(value)):
        bad.append(f"{name}={value.tolist()}")
    if bad:
      self.model.stop_training = True
      raise NonFiniteLossError(
          f"StopOnNonFinite: non-finite metric {bad[0]} at {where}"
          + (f"; also {', '.join(bad[1:])}" if bad[1:] else "")
          + ". Training stopped before later callbacks could save the "
          "poisoned weights." + self._backup_note())


class ProfileSteps(keras.callbacks.Callback):
  """Profiler trace of training steps first..last (1-based optimizer steps).

  The trace lands in `logdir/plugins/profile/`; view it in TensorBoard's
  Profile tab (pip install tensorboard-plugin-profile).
  """

  def __init__(self, logdir: str, first: int, last: int):
    super().__init__()
    if not 1 <= first <= last:
      raise ValueError(f"callbacks.ProfileSteps: need 1 <= first <= last, got "
                       f"{first}, {last}.")
    self.logdir, self.first, self.last = logdir, first, last
    self._running = False
    self._done = False

  def _steps_per_call(self) -> int:
    return int(getattr(self.model, "steps_per_execution", 1) or 1)

  def on_train_batch_begin(self, batch, logs=None):
    # With steps_per_execution k > 1 a call runs k steps: start at the call
    # that contains step `first`, not only at a call that begins with it.
    step = _iterations(self.model)
    if not self._running and not self._done and (
        step < self.first <= step + self._steps_per_call()):
      tf.profiler.experimental.start(self.logdir)
      self._running = True

  def on_train_batch_end(self, batch, logs=None):
    if self._running and _iterations(self.model) >= self.last:
      self._stop()

  def on_train_end(self, logs=None):
    if self._running:
      self._stop()

  def _stop(self):
    tf.profiler.experimental.stop()
    self._running = False
    self._done = True
