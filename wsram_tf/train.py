"""train_and_evaluate(config, workdir): build data and model, fit, test, write results.

Work directory layout:
  config.json        the full config (written by main.py)
  metrics.csv        one row per epoch
  tensorboard/       scalars, glimpse pictures, profiler traces
  checkpoints/       ckpt-<step> backups for resume, best.weights.h5
  final.weights.h5   weights after the last step
  results.json       test error and log-likelihood, steps, source, time
"""

import json
import os
import time

from absl import logging
import keras
import tensorflow as tf

from pipelines import mnist as mnist_pipeline
from wsram_tf import callbacks as callbacks_lib
from wsram_tf import checkpoints
from wsram_tf import model as model_lib
from wsram_tf import variants

STRATEGIES = ("default", "mirrored", "multi_worker")


def check_config(config) -> None:
  """Fails before any work on settings that cannot run, naming the field."""
  variants.parse_variant(config.variant)
  t = config.train
  if t.num_train_steps < 1 or t.steps_per_epoch < 1:
    raise ValueError("config.train.num_train_steps and steps_per_epoch must "
                     "be >= 1.")
  if t.num_train_steps % t.steps_per_epoch:
    raise ValueError(
        f"config.train.num_train_steps={t.num_train_steps} must be a multiple "
        f"of config.train.steps_per_epoch={t.steps_per_epoch}.")
  k = t.steps_per_execution
  if k < 1:
    raise ValueError(
        f"config.train.steps_per_execution must be >= 1, got {k}.")
  # Callbacks run between executions only: a step interval that k does not
  # divide would silently be skipped or shifted.
  intervals = {"steps_per_epoch": t.steps_per_epoch,
               "checkpoint_every_steps": t.checkpoint_every_steps,
               "grad_var_every_steps": t.get("grad_var_every_steps", 0)}
  for field, value in intervals.items():
    if value % k:
      raise ValueError(
          f"config.train.{field}={value} must be a multiple of "
          f"config.train.steps_per_execution={k}.")
  if t.strategy not in STRATEGIES:
    raise ValueError(f"config.train.strategy: unknown {t.strategy!r}; valid: "
                     f"{', '.join(STRATEGIES)}.")
  profile_steps(config)
  if config.objective.num_samples < 1 or config.eval.num_samples < 1:
    raise ValueError("config.objective.num_samples and config.eval.num_samples"
                     " must be >= 1.")
  if config.objective.temperature <= 0:
    raise ValueError("config.objective.temperature must be > 0.")


def profile_steps(config):
  """config.train.profile_steps "10,20" -> (10, 20); "" -> 0 (no profiling)."""
  text = config.train.profile_steps.strip()
  if not text:
    return 0
  try:
    first, last = (int(x) for x in text.split(","))
  except ValueError:
    first, last = 0, -1
  if not 1 <= first <= last:
    raise ValueError("config.train.profile_steps must be 'first,last' with "
                     f"1 <= first <= last, got {text!r}.")
  return (first, last)


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy called `name` (multi_worker reads TF_CONFIG)."""
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def callbacks_for(config, workdir: str, data) -> list:
  """The callbacks of a run, in the order they must run."""
  t = config.train
  logdir = os.path.join(workdir, "tensorboard")
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  # Fixed validation canvases: the same in every run (pipelines/mnist.py).
  images, labels = next(iter(data.validation.unbatch().batch(
      min(t.batch_size, data.num_validation)).take(1)))
  callbacks = [
      # First: it raises before a poisoned step reaches any checkpoint below.
      callbacks_lib.StopOnNonFinite(),
      keras.callbacks.CSVLogger(os.path.join(workdir, "metrics.csv"),
                                append=True),
      callbacks_lib.EpochScalars(logdir, config),
  ]
  if t.glimpse_every_epochs:
    callbacks.append(callbacks_lib.GlimpsePictures(
        images[:8], labels[:8], logdir, t.glimpse_every_epochs,
        workdir=workdir, seed=config.seed))
  if t.grad_var_every_steps:
    callbacks.append(callbacks_lib.GradientVariance(
        images, labels, t.grad_var_every_steps, t.grad_var_draws, logdir,
        workdir=workdir, seed=config.seed))
  if profile_steps(config):
    callbacks.append(callbacks_lib.ProfileSteps(logdir, *profile_steps(config)))
  callbacks += [
      checkpoints.BestCheckpoint(
          os.path.join(checkpoint_dir, "best.weights.h5")),
      checkpoints.ResumableCheckpoint(checkpoint_dir, t.checkpoint_every_steps),
  ]
  return callbacks


def fit(model, config, train_from, validation_data, callbacks) -> int:
  """Runs the remaining steps, resuming mid-epoch if a backup exists.

  `train_from(k)` is the train stream from its batch k on: a resumed run (and
  each chunk below) continues the stream where the restored step left it,
  rather than seeing its first batches again.
  """
  t = config.train
  resume = next(c for c in callbacks
                if isinstance(c, checkpoints.ResumableCheckpoint))
  step = resume.restore(model)
  epochs = t.num_train_steps // t.steps_per_epoch
  # Keras cannot start mid-epoch: finish the interrupted epoch on its own.
  chunks = []
  if step % t.steps_per_epoch and step < t.num_train_steps:
    epoch = step // t.steps_per_epoch
    chunks.append((epoch, epoch + 1, t.steps_per_epoch - step % t.steps_per_epoch))
    step += chunks[-1][2]
  if step < t.num_train_steps:
    chunks.append((step // t.steps_per_epoch, epochs, t.steps_per_epoch))
  for initial_epoch, last_epoch, steps in chunks:
    model.fit(train_from(int(model.optimizer.iterations.numpy())),
              initial_epoch=initial_epoch, epochs=last_epoch,
              steps_per_epoch=steps, validation_data=validation_data,
              callbacks=callbacks, shuffle=False,
              verbose=1 if logging.get_verbosity() >= logging.INFO else 0)
  return int(model.optimizer.iterations.numpy())


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains `config` into `workdir`; returns (and writes) results.json."""
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  keras.utils.set_random_seed(config.seed)
  strategy = make_strategy(config.train.strategy)
  data = mnist_pipeline.make_datasets(config)
  logging.info("MNIST source: %s (%d train, %d validation, %d test)",
               data.source, data.num_train, data.num_validation, data.num_test)
  with strategy.scope():
    model = model_lib.build_model(config, data.image_shape)
  steps = fit(model, config, data.train_from, data.validation,
              callbacks_for(config, workdir, data))
  model.save_weights(os.path.join(workdir, "final.weights.h5"))

  test = model.evaluate(data.test, return_dict=True, verbose=0)
  results = {
      "variant": config.variant,
      "preset": config.preset,
      "test_error": float(test["error"]),
      "test_log_likelihood": float(test["log_likelihood"]),
      "test_samples": 1 if config.eval.deterministic else config.eval.num_samples,
      "train_steps": steps,
      "wall_seconds": time.time() - start,
      "data_source": data.source,
      "num_test": data.num_test,
      "strategy": config.train.strategy,
      "replicas": strategy.num_replicas_in_sync,
      "tensorflow": tf.__version__,
  }
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  logging.info("Results: %s", results)
  return results
