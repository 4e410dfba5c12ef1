"""Greedy and beam-search caption decoding for `model.GlimpseCaptioner`.

At each word step the attention reads one feature vector at the prior's mode
(mean location, likeliest scale: deterministic) or at a sample of the prior
(seeded, one stateless draw per row and step), then the LSTM emits the word
distribution. Greedy takes the likeliest word; beam search keeps the
`beam_width` highest-ranked partial captions. The rank is the summed word
log-probability divided by the GNMT length penalty ((5 + len) / 6) ** alpha
(Wu et al. 2016; len = words so far, <end> included; alpha 0 turns it off). A
finished caption (<end> emitted) is padded with <pad> and keeps its score and
length. Live beams all have the same length, so the penalty only changes how
finished captions rank against longer ones; width 1 is exactly greedy for any
alpha.

Both return `Decoded`: word ids after <start> (<end> included, then <pad>),
the glimpse trace per word (the trace goes on after <end>; mask it with the
ids) and the caption's log-probability. Both are plain TF code: wrap them in
`tf.function` for speed (the loop over steps is unrolled once per shape).
"""

import math
import numbers
from typing import NamedTuple, Sequence

import tensorflow as tf

from wsram_tf.pipelines.flickr8k_vocab import END
from wsram_tf.pipelines.flickr8k_vocab import PAD
from wsram_tf.pipelines.flickr8k_vocab import START
from wsram_tf import distributions
from wsram_tf.captioner import model as captioner

_NEG = -1e9  # Score of impossible beams: finite, so no inf - inf NaNs.


class Decoded(NamedTuple):
  ids: tf.Tensor  # int32 [B, S]: words after <start>, <pad> after <end>.
  locations: tf.Tensor  # [B, S, 2] glimpse centre read for each word.
  scales: tf.Tensor  # int32 [B, S] feature map read for each word.
  log_prob: tf.Tensor  # [B] sum of the caption's word log-probabilities.


def check_length_penalty(alpha) -> float:
  """`alpha` as a float; a clear error for anything but a finite alpha >= 0."""
  if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (
      math.isfinite(alpha) and alpha >= 0):
    raise ValueError("config.eval.length_penalty must be a finite number >= 0 "
                     f"(GNMT alpha, 0 = off), got {alpha!r}.")
  return float(alpha)


def log_length_penalty(lengths, alpha: float) -> tf.Tensor:
  """log lp, GNMT's lp = ((5 + len) / 6) ** alpha (1 at len 1 or alpha 0)."""
  return alpha * tf.math.log((5.0 + tf.cast(lengths, tf.float32)) / 6.0)


def _attend(model, state, step_seed, sample: bool) -> distributions.Action:
  prior = distributions.ActionDistribution(model.action_head(state.h))
  if not sample:
    return prior.mode()
  rows = tf.shape(state.h)[0]
  return prior.sample_from_noise(
      distributions.draw_noise(step_seed, rows, model.num_scales))


def _step_seeds(seed, steps: int):
  seed = tf.constant([0, 0]) if seed is None else seed
  return tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), steps)


def greedy_decode(model: captioner.GlimpseCaptioner, features,
                  max_steps: int, sample_attention: bool = False,
                  seed=None) -> Decoded:
  """The likeliest word at every step, up to `max_steps` words."""
  maps = captioner.feature_list(features, model.num_scales)
  state = model.initial_state(maps)
  batch = tf.shape(maps[0])[0]
  words = tf.fill([batch], START)
  finished = tf.zeros([batch], tf.bool)
  log_prob = tf.zeros([batch])
  seeds = _step_seeds(seed, max_steps)
  ids, locations, scales = [], [], []
  for t in range(max_steps):
    action = _attend(model, state, seeds[t], sample_attention)
    logits, state = model.advance(maps, state, words, action, 1)
    log_probs = tf.nn.log_softmax(logits)
    best = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    gained = tf.reduce_max(log_probs, axis=-1)
    words = tf.where(finished, PAD, best)
    log_prob += tf.where(finished, 0.0, gained)
    finished = finished | tf.equal(words, END)
    ids.append(words)
    locations.append(action.location)
    scales.append(action.scale)
  return Decoded(tf.stack(ids, 1), tf.stack(locations, 1),
                 tf.stack(scales, 1), log_prob)


def beam_search(model: captioner.GlimpseCaptioner, features, max_steps: int,
                beam_width: int, sample_attention: bool = False,
                seed=None, length_penalty_alpha: float = 0.0) -> Decoded:
  """The best of `beam_width` beams by length-penalised log-probability."""
  if beam_width < 1:
    raise ValueError(f"config.eval.beam_width must be >= 1, got {beam_width}.")
  alpha = check_length_penalty(length_penalty_alpha)
  maps = captioner.feature_list(features, model.num_scales)
  width = beam_width
  state = model.initial_state(maps, width)  # row b*W+w: beam w of image b.
  batch = tf.shape(maps[0])[0]
  vocab = model.vocab_size
  words = tf.fill([batch * width], START)
  # Only beam 0 is live at first, so the W beams do not start as copies.
  scores = tf.tile(tf.concat([[0.0], tf.fill([width - 1], _NEG)], 0)[None],
                   [batch, 1])
  finished = tf.zeros([batch, width], tf.bool)
  lengths = tf.zeros([batch, width], tf.int32)  # Words incl. <end>.
  ids = tf.zeros([batch, width, 0], tf.int32)
  locations = tf.zeros([batch, width, 0, 2])
  scales = tf.zeros([batch, width, 0], tf.int32)
  # A finished beam may only continue with <pad>, at no cost.
  pad_only = tf.concat([[0.0], tf.fill([vocab - 1], _NEG)], 0)
  seeds = _step_seeds(seed, max_steps)
  for t in range(max_steps):
    action = _attend(model, state, seeds[t], sample_attention)
    logits, state = model.advance(maps, state, words, action, width)
    log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch, width, vocab])
    log_probs = tf.where(finished[..., None], pad_only, log_probs)
    total = tf.reshape(scores[..., None] + log_probs, [batch, width * vocab])
    grown = tf.where(finished, lengths, lengths + 1)
    rank = total
    if alpha:
      # score / lp (<= 0) ranks as log lp - log(-score): the same order, and
      # no overflow of lp for a large alpha. Impossible candidates keep their
      # raw ~_NEG, so the lower beams too stay possible captions.
      key = tf.repeat(log_length_penalty(grown, alpha), vocab, axis=1) - (
          tf.math.log(tf.maximum(-total, 0.0)))
      rank = tf.where(total > _NEG / 2, key, total)
    _, index = tf.math.top_k(rank, k=width)  # Ties: lower index first.
    scores = tf.gather(total, index, batch_dims=1)
    beam, word = index // vocab, index % vocab
    keep = lambda x: tf.gather(x, beam, batch_dims=1)
    lengths = keep(grown)
    rows = tf.reshape(beam + tf.range(batch)[:, None] * width, [-1])
    state = captioner.DecoderState(tf.gather(state.h, rows),
                                   tf.gather(state.c, rows))
    ids = tf.concat([keep(ids), word[..., None]], axis=2)
    locations = tf.concat([keep(locations), keep(tf.reshape(
        action.location, [batch, width, 1, 2]))], axis=2)
    scales = tf.concat([keep(scales), keep(tf.reshape(
        action.scale, [batch, width, 1]))], axis=2)
    finished = keep(finished) | tf.equal(word, END)
    words = tf.reshape(word, [-1])
  return Decoded(ids[:, 0], locations[:, 0], scales[:, 0], scores[:, 0])


def decode(model, features, max_steps: int, beam_width: int = 1,
           sample_attention: bool = False, seed=None,
           length_penalty_alpha: float = 0.0) -> Decoded:
  """Greedy for width 1 (any length penalty ranks alike), beam otherwise."""
  check_length_penalty(length_penalty_alpha)
  if beam_width == 1:
    return greedy_decode(model, features, max_steps, sample_attention, seed)
  return beam_search(model, features, max_steps, beam_width, sample_attention,
                     seed, length_penalty_alpha)


def to_strings(ids, vocab) -> list[str]:
  """Decoded ids [B, S] -> captions via `pipelines.flickr8k_vocab.Vocabulary`."""
  return [vocab.decode(row) for row in _numpy(ids)]


def _numpy(ids) -> Sequence:
  return ids.numpy() if hasattr(ids, "numpy") else ids
