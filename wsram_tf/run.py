"""train_and_evaluate(config, workdir): what every experiment does.

Check the config, pick the strategy, seed once, build under the strategy's
scope, restore and fit (resuming mid-epoch, where the train stream left off),
run the shared callbacks, save the final weights, evaluate, export and write
results.json. What differs between experiments comes from the `Task`
that `config.task` names (`wsram_tf/tasks.py`): its data, model, extra
callbacks, evaluation, the metric that picks the best checkpoint and its
exporter.

Work directory layout:
  config.json        the full config
  data_fingerprint.json  what the run was trained on (data_record.py)
  metrics.csv        one row per epoch
  tensorboard/       scalars, glimpse pictures, profiler traces
  checkpoints/       ckpt-<step> backups for resume, best.weights.h5
  final.weights.h5   weights after the last step
  export/            the SavedModel (config.train.export)
  results.json       the task's test results, steps, variant, time
  workers/<task>/    a non-chief worker's own files (strategy=multi_worker)
  (and whatever the task adds, e.g. the captioner's vocab.json)
  run.lock           held (flock) while a run uses the directory

A work directory belongs to one config and one data set: a re-run with a
change that alters the model or the data, or on data whose files or classes
differ, is refused before anything is written (`workdir.check_stored_config`,
`data_record.check`); so is any start whose config, data, seed or sizes
cannot train. Files a user relies on are written under a
temporary name and renamed (`atomic`); a resumed run trims metrics.csv and
grad_variance.csv back to its restored step.
"""

import json
import os
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import keras
import tensorflow as tf

from wsram_tf import atomic
from wsram_tf import callbacks as callbacks_lib
from wsram_tf import checkpoints
from wsram_tf import data_record
from wsram_tf import learning_rates
from wsram_tf import tasks
from wsram_tf import variants
from wsram_tf import workdir as workdir_lib

STRATEGIES = ("default", "mirrored", "multi_worker")
EVAL_WEIGHTS = ("final", "best")  # config.eval.weights.
# Under the work directory: the weights after the last update, and
# BestCheckpoint's (lowest validation).
FINAL_WEIGHTS = "final.weights.h5"
BEST_WEIGHTS = os.path.join("checkpoints", "best.weights.h5")


class Task(NamedTuple):
  """What one kind of experiment supplies to the run skeleton."""
  check_config: Callable[[Any], None]  # Its own settings; raise naming them.
  # config -> data with .train_from(k), .validation and .fingerprint (what
  # data_record stores); reads and checks only: nothing is written.
  make_data: Callable[[Any], Any]
  # (config, workdir, data): the task's files about the data, written
  # once every check has passed (data_info.json, vocab.json).
  record_data: Callable[[Any, str, Any], None]
  build_model: Callable[[Any, Any], keras.Model]  # (config, data), compiled.
  # (config, workdir, data) -> callbacks after the scalars (pictures).
  extra_callbacks: Callable[[Any, str, Any], list]
  # (config, data) -> (inputs, targets): the gradient-variance batch.
  fixed_batch: Callable[[Any, Any], tuple]
  evaluate: Callable[[Any, Any, Any], dict]  # (model, config, data) results.
  best_metric: str  # Validation log (lower is better) of best.weights.h5.
  # (model, config, data, export_dir) at the end of training.
  export_trained: Callable[[Any, Any, Any, str], str]
  # (workdir, config, weights, export_dir, sampled) for `wsram_tf.export`.
  export_run: Callable[[str, Any, Any, str, bool], str]
  # workdir -> class names a run stored before data fingerprints existed
  # (None: unknown), so that such a run is checked by its classes at least.
  stored_classes: Callable[[str], Any] = lambda workdir: None


def check_config(config) -> "Task":
  """The task of `config`; fails before any work on settings that
  cannot run, naming the field."""
  task = tasks.get(config.task)
  variants.parse_variant(config.variant)
  t = config.train
  check_seed(config.seed)
  check_positive(config)
  if t.num_train_steps % t.steps_per_epoch:
    raise ValueError(
        f"config.train.num_train_steps={t.num_train_steps} must be a multiple "
        f"of config.train.steps_per_epoch={t.steps_per_epoch}.")
  k = t.steps_per_execution
  # Callbacks run between executions only: a step interval that k does not
  # divide would silently be skipped or shifted.
  intervals = {"steps_per_epoch": t.steps_per_epoch,
               "checkpoint_every_steps": t.checkpoint_every_steps,
               "grad_var_every_steps": t.grad_var_every_steps}
  for field, value in intervals.items():
    if value % k:
      raise ValueError(
          f"config.train.{field}={value} must be a multiple of "
          f"config.train.steps_per_execution={k}.")
  if t.strategy not in STRATEGIES:
    raise ValueError(f"config.train.strategy: unknown {t.strategy!r}; valid: "
                     f"{', '.join(STRATEGIES)}.")
  learning_rates.check(t)
  if config.eval.weights not in EVAL_WEIGHTS:
    raise ValueError(f"config.eval.weights: unknown {config.eval.weights!r}; "
                     f"valid: {', '.join(EVAL_WEIGHTS)}.")
  profile_steps(config)
  task.check_config(config)
  return task


# Shared fields that must be >= 1 (counts) or > 0 (rates); NaN fails too.
AT_LEAST_ONE = ("train.num_train_steps", "train.steps_per_epoch",
                "train.batch_size", "train.checkpoint_every_steps",
                "train.steps_per_execution",
                "eval.batch_size", "objective.num_samples",
                "eval.num_samples")
POSITIVE = ("train.learning_rate", "train.inference_learning_rate",
            "objective.temperature")
NOT_NEGATIVE = ("train.clip_norm", "train.grad_var_every_steps",
                "train.glimpse_every_epochs")


MAX_SEED = 2**32 - 1  # NumPy's seed range, which keras' set_random_seed uses.


def check_seed(seed) -> None:
  if isinstance(seed, bool) or not isinstance(seed, int) or not (
      0 <= seed <= MAX_SEED):
    raise ValueError(f"config.seed={seed!r}: must be an int in 0..{MAX_SEED} "
                     "(2**32 - 1, NumPy's seed range).")


def check_positive(config) -> None:
  """Raises ValueError naming the first shared field out of its range."""
  def value(field):
    section, name = field.split(".")
    return config[section][name]
  for fields, ok, what in ((AT_LEAST_ONE, lambda v: v >= 1, ">= 1"),
                           (POSITIVE, lambda v: v > 0, "> 0"),
                           (NOT_NEGATIVE, lambda v: v >= 0, ">= 0")):
    for field in fields:
      v = value(field)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
        raise ValueError(f"config.{field} must be {what}, got {v!r}.")


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


def worker_dir(strategy: tf.distribute.Strategy, workdir: str) -> str:
  """Where this process writes: `workdir`, or for a worker other than the
  chief of a multi-worker run, its own `workdir/workers/<task>/`.

  Every worker runs the whole skeleton (evaluation, for one, averages its
  logs with collective ops every worker must join), so each writes its
  files; beside the chief's in a shared `workdir` they would clobber them.
  The chief's are the run's, in `workdir` as in a one-process run.
  """
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or strategy.extended.should_checkpoint:
    return workdir
  return os.path.join(workdir, "workers",
                      f"{resolver.task_type}-{resolver.task_id}")


def sharded_by_data(train_from: Callable[[int], tf.data.Dataset]):
  """`train_from` whose batches a multi-worker run splits by element.

  Every worker then reads the whole stream and keeps its replicas' part of
  each global batch, as one process would split it. tf.data's AUTO policy
  does this only while no pipeline reads through a file reader dataset; with
  one it would hand the workers different files instead.
  """
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return lambda start_batch: train_from(start_batch).with_options(options)


def callbacks_for(task: Task, config, workdir: str,
                  data) -> list:
  """The callbacks of a run, in the order they must run."""
  t = config.train
  logdir = os.path.join(workdir, "tensorboard")
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  callbacks = [
      # First: it raises before a poisoned step reaches any checkpoint below.
      callbacks_lib.StopOnNonFinite(checkpoint_dir),
      keras.callbacks.CSVLogger(os.path.join(workdir, "metrics.csv"),
                                append=True),
      callbacks_lib.EpochScalars(logdir, config),
      *task.extra_callbacks(config, workdir, data),
  ]
  if t.grad_var_every_steps:
    inputs, targets = task.fixed_batch(config, data)
    callbacks.append(callbacks_lib.GradientVariance(
        inputs, targets, t.grad_var_every_steps, t.grad_var_draws, logdir,
        workdir=workdir, seed=config.seed))
  if profile_steps(config):
    callbacks.append(callbacks_lib.ProfileSteps(logdir, *profile_steps(config)))
  # Last: an epoch's backup follows its metrics row, scalars and best check.
  callbacks += [
      checkpoints.BestCheckpoint(
          os.path.join(workdir, BEST_WEIGHTS),
          monitor=task.best_metric),
      checkpoints.ResumableCheckpoint(checkpoint_dir, t.checkpoint_every_steps,
                                      steps_per_epoch=t.steps_per_epoch),
  ]
  return callbacks


def trim_logs(workdir: str, step: int, steps_per_epoch: int) -> None:
  """Drops log rows past the restored `step`: they are logged again."""
  epochs = step // steps_per_epoch
  workdir_lib.trim_csv(os.path.join(workdir, "metrics.csv"),
                       lambda row: _number(row.get("epoch")) < epochs)
  workdir_lib.trim_csv(os.path.join(workdir, "grad_variance.csv"),
                       lambda row: _number(row.get("step")) <= step)


def _number(text) -> float:
  try:
    return float(text)
  except (TypeError, ValueError):
    return float("inf")  # Not a row this library wrote whole: drop it.


def fit(model, config, train_from, validation_data, callbacks,
        workdir: str = "") -> int:
  """Runs the remaining steps, resuming mid-epoch if a backup exists.

  `train_from(k)` is the train stream from its batch k on: a resumed run (and
  each chunk below) continues the stream where the restored step left it,
  rather than seeing its first batches again.
  """
  t = config.train
  resume = next(c for c in callbacks
                if isinstance(c, checkpoints.ResumableCheckpoint))
  step = resume.restore(model)
  if workdir:
    trim_logs(workdir, step, t.steps_per_epoch)
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
  """Trains `config` into `workdir`; returns (and writes) results.json.

  Nothing is written into `workdir` (not even the lock) before every check
  that can fail before training has passed: the config, also against the
  config a previous run stored there, the strategy's batch split, the data
  (read and checked by the task) and, against the stored fingerprint,
  what the previous run was trained on. A refused start leaves the directory
  as it was, so the fix its message suggests works in the same directory.
  """
  start = time.time()
  task = check_config(config)
  workdir_lib.check_stored_config(config, workdir)
  keras.utils.set_random_seed(config.seed)
  strategy = make_strategy(config.train.strategy)
  check_strategy(config, strategy)
  own_dir = worker_dir(strategy, workdir)
  data = task.make_data(config)
  check_stored_data(task, own_dir, data)
  with workdir_lib.locked(workdir, lock_name(config)):
    # Again under the lock: another run may have written them meanwhile.
    workdir_lib.check_stored_config(config, workdir)
    check_stored_data(task, own_dir, data)
    if config.train.strategy != "multi_worker":  # Else others write here.
      for directory in (workdir, os.path.join(workdir, "checkpoints"),
                        os.path.join(workdir, "glimpses")):
        for path in atomic.remove_leftovers(directory):
          logging.info("Removed %s, left by a killed run.", path)
    for directory in {workdir, own_dir}:  # A non-chief worker's own copy.
      os.makedirs(directory, exist_ok=True)
      atomic.write_text(os.path.join(directory, "config.json"),
                        config.to_json_best_effort(indent=2))
    task.record_data(config, own_dir, data)
    data_record.write(own_dir, data.fingerprint)
    return _train_and_evaluate(task, config, own_dir, strategy, data,
                               start)


def check_stored_data(task: Task, workdir: str, data) -> None:
  """Refuses data other than what the run in `workdir` was trained on."""
  data_record.check(workdir, data.fingerprint,
                    task.stored_classes(workdir))


def check_strategy(config, strategy: tf.distribute.Strategy) -> None:
  """Raises ValueError naming the field a strategy cannot run with."""
  if (config.train.strategy == "multi_worker" and config.train.jit_compile
      and not tf.config.list_logical_devices("GPU")):
    # Fail before any work: otherwise the first step fails, after the data
    # and model are built, with "Collectives are not yet implemented for CPU
    # devices when compiling with XLA" (the gradient all-reduce).
    raise ValueError(
        "config.train.jit_compile must be False with strategy=multi_worker "
        "on CPUs: XLA does not compile collectives for CPU devices.")
  replicas = strategy.num_replicas_in_sync
  if config.train.batch_size % replicas:
    # An uneven split would silently differ from the one-device update: the
    # losses are scaled, and the action noise indexed, by equal shares.
    raise ValueError(
        f"config.train.batch_size={config.train.batch_size} must be a "
        f"multiple of the {replicas} replicas of strategy="
        f"{config.train.strategy}.")


def evaluated_weights(model, config, workdir: str) -> dict:
  """Loads the weights config.eval.weights names into `model` (they are
  tested and exported); returns what results.json records of them."""
  if config.eval.weights == "final":
    return {"weights": "final"}
  path = os.path.join(workdir, BEST_WEIGHTS)
  record = checkpoints.load_best(model, path)
  if record is None:
    logging.warning("config.eval.weights='best' but %s is missing or "
                    "unreadable (no validation ran?): testing and exporting "
                    "the final weights.", path)
    return {"weights": "final"}
  return {"weights": "best", "best_step": record.get("step")}


def lock_name(config) -> str:
  """Multi-worker runs share one work directory: one lock per task."""
  if config.train.strategy != "multi_worker":
    return workdir_lib.LOCK_FILE
  task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
  return f"{workdir_lib.LOCK_FILE}.{task.get('type', 'worker')}-" \
         f"{task.get('index', 0)}"


def _train_and_evaluate(task, config, workdir: str, strategy, data,
                        start: float) -> dict:
  with strategy.scope():
    model = task.build_model(config, data)
  steps = fit(model, config, sharded_by_data(data.train_from), data.validation,
              callbacks_for(task, config, workdir, data), workdir)
  atomic.save_weights(model, os.path.join(workdir, FINAL_WEIGHTS))
  evaluated = evaluated_weights(model, config, workdir)

  results = {
      "variant": config.variant,
      "preset": config.preset,
      **evaluated,
      **task.evaluate(model, config, data),
      "train_steps": steps,
      "strategy": config.train.strategy,
      "replicas": strategy.num_replicas_in_sync,
  }
  if config.train.export:
    atomic.replace_dir(
        lambda tmp: task.export_trained(model, config, data, tmp),
        os.path.join(workdir, "export"))
  results.update(wall_seconds=time.time() - start, tensorflow=tf.__version__)
  atomic.write_json(os.path.join(workdir, "results.json"), results)
  logging.info("Results: %s", {k: v for k, v in results.items()
                               if k != "examples"})
  return results
