"""The classifier as a `run.Application` (paper §5.1, docs/design.md §4).

Translated, scaled MNIST (`pipelines.mnist.make_datasets`), the `WSRAM`
model, glimpse pictures of fixed validation canvases, and on the test set the
error and a Monte-Carlo estimate of log p(y|I) with `eval.num_samples` prior
samples. The best checkpoint is the one of the lowest validation error.
"""

import os

from absl import logging

from pipelines import mnist as mnist_pipeline
from wsram_tf import run
from wsram_tf.classifier import export
from wsram_tf.classifier import model as model_lib
from wsram_tf.classifier import pictures


def check_config(config) -> None:
  del config  # Everything the classifier reads is checked where it is built.


def make_data(config, workdir: str):
  del workdir
  data = mnist_pipeline.make_datasets(config)
  logging.info("MNIST source: %s (%d train, %d validation, %d test)",
               data.source, data.num_train, data.num_validation, data.num_test)
  return data


def build_model(config, data):
  return model_lib.build_model(config, data.image_shape)


def fixed_batch(config, data):
  """The first validation canvases (fixed in every run, pipelines/mnist.py)."""
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
      workdir=workdir, seed=config.seed)]


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
  }


def export_trained(model, config, data, export_dir: str) -> str:
  del config
  return export.export_saved_model(model, export_dir, data.image_shape)


APPLICATION = run.Application(
    check_config=check_config, make_data=make_data, build_model=build_model,
    extra_callbacks=extra_callbacks, fixed_batch=fixed_batch,
    evaluate=evaluate, best_metric="val_error",
    export_trained=export_trained, export_run=export.export_run)
