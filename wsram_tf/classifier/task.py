"""The classifier as a `run.Task` (paper §5.1, docs/design.md §4).

The data is the one `config.data.name` picks (classifier/data.py):
translated or cluttered MNIST, a user's class folders or a prepared tfds
dataset. The `GlimpseClassifier`, glimpse pictures of fixed validation canvases,
and on the test set the error and a Monte-Carlo estimate of log p(y|I) with
`eval.num_samples` prior samples. The best checkpoint is the one of the
lowest validation error. The work directory gains `data_info.json` (classes,
image shape, source, skipped files), which results.json and the export
repeat.
"""

import copy
import os

from absl import logging

from wsram_tf import run
from wsram_tf.classifier import checks
from wsram_tf.classifier import data as data_lib
from wsram_tf.classifier import export
from wsram_tf.classifier import pictures
from wsram_tf.classifier import presets

check_config = checks.check_config


def make_data(config):
  """Reads and checks the data; writes nothing (record_data does)."""
  data = data_lib.make_datasets(config)
  data_lib.resolve_num_classes(config.model.num_classes, data.class_names)
  if not data.num_validation:
    # Name only the fields this data's config has: a folder has no
    # validation_size, MNIST no validation_fraction.
    fields = " or ".join(f"config.data.{f}" for f in (
        "validation_fraction", "validation_size") if f in config.data)
    raise ValueError(
        f"{data.source}: no validation examples (validation picks the best "
        f"checkpoint); add a validation split or raise {fields}"
        + (" (each class holds out floor(fraction x its images): none of a "
           "class with fewer than 1 / fraction images)"
           if "validation_fraction" in config.data else "") + ".")
  logging.info("Data: %s (%d train, %d validation, %d test, %d classes, "
               "%d skipped)", data.source, data.num_train, data.num_validation,
               data.num_test, len(data.class_names), data.num_skipped)
  return data


def record_data(config, workdir: str, data) -> None:
  """WORKDIR/data_info.json: classes, shape and source, for the export."""
  data_lib.write_info(workdir, data_lib.info_of(config, data))


def stored_classes(workdir: str):
  """The class names data_info.json holds (None if absent or unreadable):
  a run written before data fingerprints existed is checked by them."""
  if not os.path.exists(os.path.join(workdir, data_lib.INFO_FILE)):
    return None
  try:
    return list(data_lib.read_info(workdir, None).class_names)
  except ValueError:
    return None  # Unreadable: it tells nothing; the run rewrites it.


def build_model(config, data):
  """The GlimpseClassifier of `config` for `data`, built and compiled for
  config.train (model.num_classes 0 means the data's count)."""
  return presets.build_from_config(
      config, data.image_shape, data_lib.resolve_num_classes(
          config.model.num_classes, data.class_names))


def fixed_batch(config, data):
  """The first validation canvases (fixed in every run)."""
  images, labels = next(iter(data.validation.unbatch().batch(
      min(config.train.batch_size, data.num_validation)).take(1)))
  return images, labels


def extra_callbacks(config, workdir: str, data) -> list:
  """Glimpse pictures of 8 fixed validation canvases."""
  every = config.train.glimpse_every_epochs
  if not every:
    return []
  images, labels = fixed_batch(config, data)
  return [pictures.GlimpsePictures(
      images[:8], labels[:8], os.path.join(workdir, "tensorboard"), every,
      class_names=data.class_names, workdir=workdir, seed=config.seed)]


def evaluate(model, config, data) -> dict:
  """Test error and log-likelihood (eval.num_samples prior samples)."""
  test = model.evaluate(data.test, return_dict=True, verbose=0)
  return {
      "test_error": float(test["error"]),
      "test_log_likelihood": float(test["log_likelihood"]),
      "test_samples": (1 if config.eval.deterministic
                       else config.eval.num_samples),
      "data_source": data.source,
      "num_test": data.num_test,
      "class_names": list(data.class_names),
      "num_skipped": int(data.num_skipped),
  }


def export_trained(model, config, data, export_dir: str) -> str:
  info = data_lib.info_of(config, data)
  resolved = copy.deepcopy(config)  # config.json names the real count.
  resolved.model.num_classes = model.num_classes
  return export.export_saved_model(model, export_dir, info.image_shape,
                                   info=info, config=resolved)


TASK = run.Task(
    check_config=check_config, make_data=make_data, record_data=record_data,
    stored_classes=stored_classes, build_model=build_model,
    extra_callbacks=extra_callbacks, fixed_batch=fixed_batch,
    evaluate=evaluate, best_metric="val_error",
    export_trained=export_trained, export_run=export.export_run)
