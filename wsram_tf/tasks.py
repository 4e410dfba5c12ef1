"""`config.task` -> the task that trains, evaluates and exports it.

A task is a `run.Task` in its subpackage's `task`
module. They are imported by name, only when asked for: the core never
imports a task (nor, through it, `pipelines`) on its own.
"""

import importlib

TASKS = {
    "classifier": "wsram_tf.classifier.task",  # configs/mnist.py
    "captioner": "wsram_tf.captioner.task",  # configs/captions.py
}


def task_of(config) -> str:
  """config.task (a ConfigDict or a config.json dict); for configs written
  before the field, inferred from the data."""
  task = config.get("task")
  if task is None:
    data = config.get("data") or {}
    return "captioner" if data.get("name") == "flickr8k" else "classifier"
  return task


def get(task: str):
  """The `run.Task` of `task`; an unknown task names the valid ones."""
  if task not in TASKS:
    raise ValueError(f"config.task: unknown {task!r}; valid: "
                     f"{', '.join(TASKS)}.")
  return importlib.import_module(TASKS[task]).TASK
