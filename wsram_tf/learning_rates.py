"""Learning-rate schedules of `config.train`, for theta's and eta's Adam.

The paper trains at constant rates ("constant", the default). A long run
learns further with a schedule ("cosine"): a linear warm-up from 0 over
`warmup_steps` updates, then a half cosine from the peak rate down to
`final_lr_fraction` x the peak at `num_train_steps`. Both optimizers follow
the same shape, each from its own peak, and both count the same updates, so
a resumed run continues the schedule where its backup left it (the step is
the optimizer's `iterations`, which the backup holds).
"""

import keras

SCHEDULES = ("constant", "cosine")


def check(train) -> None:
  """Raises ValueError naming the schedule field of `train` that is wrong."""
  if train.lr_schedule not in SCHEDULES:
    raise ValueError(f"config.train.lr_schedule: unknown "
                     f"{train.lr_schedule!r}; valid: {', '.join(SCHEDULES)}.")
  warmup, fraction = train.warmup_steps, train.final_lr_fraction
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise ValueError(
        f"config.train.warmup_steps must be an int >= 0, got {warmup!r}.")
  if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
      or not 0 <= fraction <= 1):  # NaN fails too.
    raise ValueError("config.train.final_lr_fraction must be in [0, 1], got "
                     f"{fraction!r}.")
  if train.lr_schedule == "constant" and (warmup or fraction):
    # Silently ignored settings would make a run differ from its config.
    raise ValueError(
        "config.train.warmup_steps and final_lr_fraction only apply to "
        "lr_schedule='cosine'; with 'constant' they must be 0.")
  if train.lr_schedule == "cosine" and warmup >= train.num_train_steps:
    raise ValueError(
        f"config.train.warmup_steps={warmup} must be below "
        f"num_train_steps={train.num_train_steps}: no updates would be left "
        "to decay over.")


def rate(peak: float, train):
  """The learning rate Adam gets: `peak`, or a schedule peaking at it."""
  if train.lr_schedule == "constant":
    return peak
  warmup = train.warmup_steps
  return keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0 if warmup else peak,
      decay_steps=train.num_train_steps - warmup,
      alpha=train.final_lr_fraction,
      warmup_target=peak if warmup else None,
      warmup_steps=warmup)



def optimizers(train) -> tuple:
  """(theta's, eta's) Adam for `config.train`: each on the schedule from its
  own rate, with the global-norm clipping of train.clip_norm (0: none)."""
  clip = {"global_clipnorm": train.clip_norm} if train.clip_norm else {}
  return (keras.optimizers.Adam(rate(train.learning_rate, train), **clip),
          keras.optimizers.Adam(rate(train.inference_learning_rate, train),
                                **clip))


def compile_for_training(model, train):
  """Compiles `model` as config.train says (the command line's compile)."""
  theta, eta = optimizers(train)
  model.compile(optimizer=theta, inference_optimizer=eta,
                jit_compile=train.jit_compile,
                steps_per_execution=train.steps_per_execution)
  return model
