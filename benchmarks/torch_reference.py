"""A PyTorch (CPU) reference for the ram28 train-step throughput (issue 5).

  python3 -m pip install torch==2.13.0   # this machine only, not requirements
  python3 -m benchmarks.torch_reference [--config=configs/mnist.py:ram28] \
      [--arch=ours,ram] [--modes=eager,compiled] [--threads=2[,1]] \
      [--repeats=7] [--warmup=5] [--min_time=1.0]

One training step of a recurrent attention model on synthetic images of the
config's shape, written as a PyTorch user would for speed: batched tensors,
every glimpse of the batch read by one index into an `unfold` view, the
location drawn from a Normal of fixed std, REINFORCE with a learned baseline,
Adam. Two networks:

- `ours`: the library's ram28 network and step (wsram_tf/classifier/
  networks.py and model.py, objectives.var_losses; VAR+c draws no second rollout for the
  train error): context view -> layer 2, glimpse encoder what/where/combine,
  two ReLU recurrences with identity-initialised recurrent kernels, action
  head on layer 2, class head on layer 1, per-step baseline on stopped
  layer 2, reward log p(y|a). Same layer shapes and parameter count as
  `wsram_tf.classifier.presets.build_from_config` (tests/torch_reference_test.py).
  The last step's layer-2 update feeds nothing, so it is skipped, as XLA prunes it.
- `ram`: the widely used PyTorch RAM (kevinzakka/recurrent-visual-attention):
  glimpse fc P*P->128 and location fc 2->128, each then ->256 and summed, one
  ReLU core of 256, location net 256->128->2 (tanh) and baseline 256->1 on
  the detached core state, classifier 256->10; reward 0/1 accuracy, loss
  nll + baseline MSE + 0.01 REINFORCE; the first location uniform at random.

Prints one JSON line per (arch, mode, threads) in the format of
benchmarks/throughput.py and times with its helpers (the arms' repeats
interleaved, median). Both use the config's batch, glimpses, patch and
learning rate, and Adam with Keras' epsilon (1e-7), fused.
`--threads=2,1` times both counts: when other jobs leave less than two cores
free, libgomp's spin-waiting at every parallel region made 2 threads 6-75x
slower than 1 here (2026-11-29, load 4-6); OMP_WAIT_POLICY=PASSIVE avoids most
of that.
`mflop_per_image` counts the matmul FLOPs of one step, forward and backward
(`torch.utils.flop_counter`). `--modes=compiled` wraps the network in
`torch.compile` (the first warm-up call compiles; `compile_s` says how long);
a failure is printed as a record with `error` and the other arms still run.
"""

import itertools
import json
import statistics
import sys
import time
from typing import NamedTuple

try:
  import torch
  from torch import nn
  from torch.nn import functional as F
  from torch.utils import flop_counter
except ImportError:
  sys.exit("benchmarks.torch_reference: PyTorch is not installed (it is not in "
           "requirements.txt on purpose). On the benchmark machine only: "
           "python3 -m pip install torch==2.13.0")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

# Its timing helpers; importing it also defines --config, --repeats, --warmup,
# --min_time and --output, which this script reads too.
from benchmarks import throughput
from wsram_tf.configs import mnist

ARCHS = ("ours", "ram")
MODES = ("eager", "compiled")
_ARCH = flags.DEFINE_list("arch", list(ARCHS), f"Any of {', '.join(ARCHS)}.")
_MODES = flags.DEFINE_list("modes", list(MODES), f"Any of {', '.join(MODES)}.")
_THREADS = flags.DEFINE_list(
    "threads", ["2"], "torch.set_num_threads values, each its own arm.")


class StepStats(NamedTuple):
  loss: torch.Tensor  # The scalar the step differentiates.
  baseline_loss: torch.Tensor  # Baseline MSE (part of `loss`).
  train_error: torch.Tensor  # Error of the sampled rollout's prediction.


def gaussian_log_prob(x, mean, std):
  """log N(x; mean, std^2 I), summed over the last axis."""
  z = (x - mean) / std
  return (-0.5 * z * z - torch.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)


def patch_windows(images, patch_size: int):
  """[B, H+P+1, W+P+1, P, P] view: every P x P window of the zero-padded image.

  Window (i, j) has its top-left pixel at (i - P, j - P) of `images` [B, H, W];
  padding by P keeps every clamped origin in range, and the view copies nothing.
  """
  p = patch_size
  return F.pad(images, (p, p, p, p)).unfold(1, p, 1).unfold(2, p, 1)


def read_patches(windows, top_left, patch_size: int):
  """[B, P*P] patches at integer top-left corners [B, 2] (row, column)."""
  rows, cols = (top_left + patch_size).unbind(-1)
  batch = torch.arange(windows.shape[0], device=windows.device)
  return windows[batch, rows, cols].flatten(1)


def library_top_left(location, size, patch_size: int):
  """glimpse.py's integer window corner: centre (l + 1) / 2 * size, rounded.

  Clamped to [-P, size] like glimpse.py (further out reads only zeros anyway).
  """
  top_left = torch.floor((location + 1.0) / 2.0 * size - (patch_size / 2 - 0.5))
  return torch.minimum(top_left.clamp(min=-patch_size), size).long()


def context_view(images, size: int):
  """glimpse.context_view for one channel: block means of the centred crop."""
  b, h, w = images.shape
  fh, fw = h // size, w // size
  top, left = (h - fh * size) // 2, (w - fw * size) // 2
  crop = images[:, top:top + fh * size, left:left + fw * size]
  return crop.reshape(b, size, fh, size, fw).mean((2, 4)).flatten(1)


def dense(n_in: int, n_out: int, bias: bool = True, init: str = "glorot"):
  """nn.Linear with Keras' initialisers (Dense default: Glorot, zero bias)."""
  layer = nn.Linear(n_in, n_out, bias=bias)
  with torch.no_grad():
    if init == "identity":
      layer.weight.copy_(torch.eye(n_out, n_in))
    elif init == "small":
      layer.weight.normal_(0.0, 1e-3)
    else:
      nn.init.xavier_uniform_(layer.weight)
    if bias:
      layer.bias.zero_()
  return layer


class OursRAM(nn.Module):
  """The library's ram28 network and VAR+c losses; layer names as in Keras."""

  def __init__(self, config):
    super().__init__()
    m = config.model
    h, self.patch_size = m.hidden_size, m.patch_size
    self.context_size, self.num_glimpses = m.context_size, m.num_glimpses
    self.context = dense(m.context_size ** 2, h)
    self.what = dense(m.patch_size ** 2, h)
    self.where = dense(2 + 1, h)  # location and one-hot scale (one scale).
    self.combine = dense(2 * h, h)
    self.rnn1_input, self.rnn2_input = dense(h, h), dense(h, h)
    self.rnn1_recurrent = dense(h, h, bias=False, init="identity")
    self.rnn2_recurrent = dense(h, h, bias=False, init="identity")
    self.location = dense(h, 2, init="small")
    self.scale = dense(h, 1, init="small")
    self.classifier = dense(h, m.num_classes)
    self.baseline = dense(h, 1)
    self.register_buffer("location_std", torch.tensor(m.location_std))

  def forward(self, images, labels) -> StepStats:
    b, n, p = images.shape[0], self.num_glimpses, self.patch_size
    size = torch.tensor(images.shape[1:], dtype=images.dtype)
    windows = patch_windows(images, p)
    normal = torch.randn(n, b, 2)
    gumbel = -torch.log(-torch.log(torch.empty(n, b, 1).uniform_(1e-7, 1.0)))
    r2 = F.relu(self.context(context_view(images, self.context_size)))
    r1 = torch.zeros_like(r2)
    log_prior, baselines = [], []
    for t in range(n):
      mean, scale_logits = torch.tanh(self.location(r2)), self.scale(r2)
      location = mean.detach() + self.location_std * normal[t]
      scale = torch.argmax(scale_logits.detach() + gumbel[t], -1, keepdim=True)
      log_prior.append(
          gaussian_log_prob(location, mean, self.location_std)
          + F.log_softmax(scale_logits, -1).gather(-1, scale)[:, 0])
      baselines.append(self.baseline(r2.detach())[:, 0])
      top_left = library_top_left(location, size, p)
      where = torch.cat([location, (scale == 0).to(location.dtype)], -1)
      features = F.relu(self.combine(torch.cat(
          [F.relu(self.what(read_patches(windows, top_left, p))),
           F.relu(self.where(where))], -1)))
      r1 = F.relu(self.rnn1_input(features) + self.rnn1_recurrent(r1))
      if t < n - 1:  # The last r2 feeds nothing; XLA prunes it too.
        r2 = F.relu(self.rnn2_input(r1) + self.rnn2_recurrent(r2))
    logits = self.classifier(r1)
    return var_c_losses(torch.stack(log_prior, 1),
                        -F.cross_entropy(logits, labels, reduction="none"),
                        torch.stack(baselines, 1), logits, labels)


def var_c_losses(log_prior, log_likelihood, baselines, logits,
                 labels) -> StepStats:
  """objectives.var_losses with M = 1: reward log p(y|a) minus baseline b_n.

  With M = 1 the logged bound is log p(y|a) and the ESS 1, so they are not
  computed (nor are Keras' running means of the logged values).
  """
  reward = log_likelihood.detach()[:, None]
  advantage = reward - baselines.detach()
  baseline_loss = torch.mean(torch.square(baselines - reward))
  objective = -torch.mean(log_likelihood + (advantage * log_prior).sum(-1))
  with torch.no_grad():
    error = (logits.argmax(-1) != labels).float().mean()
  return StepStats(objective + baseline_loss, baseline_loss, error)


class KevinzakkaRAM(nn.Module):
  """The kevinzakka/recurrent-visual-attention RAM (torch default inits)."""

  def __init__(self, config, glimpse_hidden=128, loc_hidden=128, hidden=256,
               std=0.05):
    super().__init__()
    m = config.model
    self.patch_size, self.num_glimpses = m.patch_size, m.num_glimpses
    self.fc_glimpse = nn.Linear(m.patch_size ** 2, glimpse_hidden)
    self.fc_location = nn.Linear(2, loc_hidden)
    self.what = nn.Linear(glimpse_hidden, glimpse_hidden + loc_hidden)
    self.where = nn.Linear(loc_hidden, glimpse_hidden + loc_hidden)
    self.core_input = nn.Linear(glimpse_hidden + loc_hidden, hidden)
    self.core_hidden = nn.Linear(hidden, hidden)
    self.locator_hidden = nn.Linear(hidden, hidden // 2)
    self.locator_out = nn.Linear(hidden // 2, 2)
    self.baseline = nn.Linear(hidden, 1)
    self.classifier = nn.Linear(hidden, m.num_classes)
    self.register_buffer("location_std", torch.tensor(std))

  def forward(self, images, labels) -> StepStats:
    b, p = images.shape[0], self.patch_size
    size = torch.tensor(images.shape[1:], dtype=images.dtype)
    windows = patch_windows(images, p)
    location = torch.empty(b, 2).uniform_(-1.0, 1.0)
    noise = torch.randn(self.num_glimpses, b, 2) * self.location_std
    h = torch.zeros(b, self.core_hidden.in_features)
    log_pi, baselines = [], []
    for t in range(self.num_glimpses):
      # Its retina: integer centre (l + 1) / 2 * size, P x P around it.
      top_left = ((location + 1.0) * 0.5 * size).long() - p // 2
      g = F.relu(
          self.what(F.relu(self.fc_glimpse(read_patches(windows, top_left, p))))
          + self.where(F.relu(self.fc_location(location))))
      h = F.relu(self.core_input(g) + self.core_hidden(h))
      mean = torch.tanh(
          self.locator_out(F.relu(self.locator_hidden(h.detach()))))
      sample = (mean + noise[t]).detach()
      log_pi.append(gaussian_log_prob(sample, mean, self.location_std))
      location = sample.clamp(-1.0, 1.0)
      baselines.append(self.baseline(h.detach())[:, 0])
    log_probas = F.log_softmax(self.classifier(h), -1)
    baselines = torch.stack(baselines, 1)
    reward = (log_probas.argmax(-1) == labels).float()[:, None]
    baseline_loss = F.mse_loss(baselines, reward.expand_as(baselines))
    reinforce = torch.mean(
        (-torch.stack(log_pi, 1) * (reward - baselines.detach())).sum(1))
    loss = F.nll_loss(log_probas, labels) + baseline_loss + 0.01 * reinforce
    return StepStats(loss, baseline_loss, 1.0 - reward.mean())


def check_config(config) -> None:
  """Only what both networks implement: one scale, M = 1, VAR+c (ram28)."""
  m = config.model
  wanted = {"variant": (config.variant, "var_c"),
            "model.scale_factors": (tuple(m.scale_factors), (1,)),
            "objective.num_samples": (config.objective.num_samples, 1),
            "objective.temperature": (config.objective.temperature, 1.0),
            "model.learn_location_std": (m.learn_location_std, False)}
  for field, (got, want) in wanted.items():
    if got != want:
      raise ValueError(f"--config ({config.preset}): {field} is {got!r}; "
                       f"benchmarks.torch_reference implements only {want!r} "
                       "(the ram28 setting).")


def build(arch: str, config):
  """(model, Adam) for `arch`, seeded by the config."""
  if arch not in ARCHS:
    raise ValueError(f"--arch: unknown {arch!r}; valid: {', '.join(ARCHS)}.")
  check_config(config)
  torch.manual_seed(config.seed)
  model = OursRAM(config) if arch == "ours" else KevinzakkaRAM(config)
  # fused: one kernel for all parameters (CPU since torch 2.4).
  optimizer = torch.optim.Adam(model.parameters(), config.train.learning_rate,
                               eps=1e-7, fused=True)
  return model, optimizer


def train_step(network, optimizer, images, labels) -> StepStats:
  """One update; `network` is the model or its torch.compile wrapper."""
  stats = network(images, labels)
  optimizer.zero_grad(set_to_none=True)
  stats.loss.backward()
  optimizer.step()
  return stats


def synthetic_batches(config, num: int = 4):
  """Uniform noise images [B, H, W] and random labels, as throughput.py uses."""
  rng = np.random.default_rng(config.seed)
  side, batch = config.data.canvas_size, config.train.batch_size
  images = rng.random((num, batch, side, side), np.float32)
  labels = rng.integers(0, config.model.num_classes, (num, batch))
  return list(zip(torch.from_numpy(images), torch.from_numpy(labels)))


def mflop_per_image(arch: str, config) -> float:
  """Matmul FLOPs of one eager step (forward and backward) per image."""
  model, optimizer = build(arch, config)
  images, labels = synthetic_batches(config, 1)[0]
  with flop_counter.FlopCounterMode(display=False) as counter:
    train_step(model, optimizer, images, labels)
  return counter.get_total_flops() / images.shape[0] / 1e6


def arm(arch: str, mode: str, threads: int, config) -> throughput.Arm:
  """A timed call of one step on `threads` threads and its JSON record."""
  if mode not in MODES:
    raise ValueError(f"--modes: unknown {mode!r}; valid: {', '.join(MODES)}.")
  torch.set_num_threads(threads)
  model, optimizer = build(arch, config)
  network = torch.compile(model) if mode == "compiled" else model
  batches = itertools.cycle(synthetic_batches(config))
  compile_s = None
  if mode == "compiled":  # Compile here, so a failure names its arm.
    start = time.perf_counter()
    train_step(network, optimizer, *next(batches))
    compile_s = time.perf_counter() - start
  batch = config.train.batch_size

  def call():
    torch.set_num_threads(threads)  # Arms with other counts take turns.
    return train_step(network, optimizer, *next(batches)).loss.item()

  def record(timing: throughput.Timing) -> dict:
    rates = timing.rates(batch)
    return {"measure": "train_step", "framework": "pytorch", "arch": arch,
            "compiled": mode == "compiled", "compile_s": compile_s,
            "threads": threads,
            "images_per_s": statistics.median(rates),
            "images_per_s_repeats": rates,
            "ms_per_step": timing.ms_per_call(),
            "cpu_ms_per_step": timing.cpu_ms_per_call(),
            "params": sum(p.numel() for p in model.parameters()),
            "mflop_per_image": mflop_per_image(arch, config),
            "image_side": config.data.canvas_size, "data": "synthetic"}

  return throughput.Arm(call, record)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = flags.FLAGS.config or mnist.get_config("ram28")
  machine = throughput.machine_info()
  common = {"config": config.preset, "variant": config.variant,
            "batch": config.train.batch_size,
            "M": config.objective.num_samples,
            "glimpses": config.model.num_glimpses,
            "torch_version": torch.__version__,
            "cpu_count": machine["cpu_count"],
            "cpu_model": machine["cpu_model"],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
  arms, records = [], []
  for arch, mode, threads in itertools.product(
      _ARCH.value, _MODES.value, [int(t) for t in _THREADS.value]):
    try:
      arms.append(arm(arch, mode, threads, config))
    except Exception as e:  # pylint: disable=broad-except
      if mode != "compiled":
        raise
      records.append({"measure": "train_step", "framework": "pytorch",
                      "arch": arch, "compiled": True, "threads": threads,
                      "error": f"{type(e).__name__}: {e}"[:2000]})
  timings = throughput.time_interleaved(
      [a.call for a in arms], flags.FLAGS.repeats, flags.FLAGS.warmup,
      flags.FLAGS.min_time)
  for a, timing in zip(arms, timings):
    records.append({**a.record(timing), **common,
                    "load_avg_1m": statistics.median(timing.load)})
  for record in records:
    line = json.dumps({**common, **record})
    print(line, flush=True)
    if flags.FLAGS.output:
      with open(flags.FLAGS.output, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
  app.run(main)
