"""The config sections every experiment shares: seed, objective, train, eval.

`configs/mnist.py` and `configs/captions.py` start from `defaults(task, ...)`
and add their own `data` and `model` sections (and any task field),
so a setting the run skeleton (`wsram_tf/run.py`) reads exists, with the same
meaning and default, in every config.

A re-run in an existing work directory may change only the fields listed in
`wsram_tf/workdir.py` (SAFE_TO_CHANGE: more train.num_train_steps, eval.*,
logging, checkpoint, profile, export and strategy settings, data paths); any
other change is refused, naming the field.
"""

import ml_collections

# The paper's six training methods (docs/design.md §2, Fig. 2).
VARIANTS = ("var", "var_c", "wsram", "wsram_c", "wsram_q", "wsram_qc")


def defaults(task: str, preset: str) -> ml_collections.ConfigDict:
  """Shared sections; `task` picks the task (wsram_tf/tasks.py)."""
  c = ml_collections.ConfigDict()
  c.task = task  # Task trained by wsram_tf.main: classifier, captioner.
  c.preset = preset  # The preset string this config was built from.
  c.variant = preset  # Training method: one of VARIANTS (docs/design.md §2).
  # The one seed: parameters, action sampling, data order and placements.
  c.seed = 0

  c.objective = ml_collections.ConfigDict()
  c.objective.num_samples = 5  # M, action sequences per example in training.
  c.objective.temperature = 1.0  # Exploration (1): proposal temperature tau.
  c.objective.coverage_weight = 0.0  # Exploration (2): coverage regularizer.
  c.objective.entropy_weight = 0.0  # Exploration (3): entropy bonus on p(a_n).

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64  # Examples per update (global batch).
  c.train.learning_rate = 1e-3  # Adam rate for theta (prediction net, baseline).
  c.train.inference_learning_rate = 1e-3  # Adam rate for eta (inference net).
  c.train.clip_norm = 0.0  # Global-norm gradient clipping (0: off).
  # Schedule of both rates (wsram_tf/learning_rates.py): "constant" (the
  # paper's) or "cosine": linear warm-up from 0 over warmup_steps, then a
  # half cosine down to final_lr_fraction x the rate at num_train_steps.
  c.train.lr_schedule = "constant"
  c.train.warmup_steps = 0  # cosine only: updates of linear warm-up.
  c.train.final_lr_fraction = 0.0  # cosine only: last rate / peak rate.
  c.train.num_train_steps = 10000  # Total updates.
  c.train.steps_per_epoch = 500  # Updates per Keras epoch (logging granularity).
  c.train.jit_compile = True  # Compile train/test steps with XLA.
  # Train steps per compiled call (Keras steps_per_execution): fewer Python
  # round trips per update; callbacks see every k-th step, so steps_per_epoch,
  # checkpoint_every_steps and grad_var_every_steps must be multiples of it.
  c.train.steps_per_execution = 1
  c.train.strategy = "default"  # tf.distribute: default, mirrored, multi_worker.
  c.train.checkpoint_every_steps = 500  # Mid-epoch backup interval for resume.
  c.train.profile_steps = ""  # e.g. "10,20": profiler trace of those steps.
  c.train.glimpse_every_epochs = 5  # Glimpse pictures interval (0: off).
  c.train.grad_var_every_steps = 0  # Gradient-variance diagnostic (0: off).
  c.train.grad_var_draws = 10  # K estimates per gradient-variance measurement.
  # Write WORKDIR/export/ (the task's SavedModel) when training ends.
  c.train.export = True

  c.eval = ml_collections.ConfigDict()
  # M at test time: p(y|I) ~ mean of p(y|a^m), a^m ~ prior.
  c.eval.num_samples = 5
  c.eval.deterministic = False  # Mean location and likeliest scale instead.
  c.eval.batch_size = 250  # Test batch size.
  # Weights the test evaluation and the export use: "final" (after the last
  # update) or "best" (best.weights.h5, the lowest validation metric seen at
  # an epoch's end: early stopping without stopping).
  c.eval.weights = "final"
  return c
