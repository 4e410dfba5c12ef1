"""wsram_tf/captioner/decoding.py: greedy, beam search, traces, strings.

Beam search is also checked against exhaustive enumeration: on a vocabulary
of 3 words (plus the 4 specials) every caption of up to 3 words is scored by
a word loop of its own, and a beam as wide as the number of captions must
return the best one.
"""

import itertools

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines import flickr8k_vocab
from tests import builders
from wsram_tf.captioner import decoding as caption_decoding
from wsram_tf.captioner import model as captioner
from wsram_tf import distributions

STEPS = 5
# The Markov captioner's words: <pad> <start> <end> <unk> a b c.
A, B, C = 4, 5, 6
SHORT = [A, flickr8k_vocab.END, flickr8k_vocab.PAD, flickr8k_vocab.PAD]  # log p = -1.0
LONG = [B, C, flickr8k_vocab.END, flickr8k_vocab.PAD]  # log p = -1.1


def model_and_features(seed: int = 0):
  model = builders.build_captioner("wsram_q")
  return model, builders.caption_features(batch=4, seed=seed)


class MarkovCaptioner:
  """Stands in for the captioner: word log-probs depend on the previous word.

  From <start>: a -0.7, b -0.8; a -> <end> -0.3; b -> c -0.15; c -> <end>
  -0.15; the rest of each row's mass goes to <unk>. So "a <end>" (log p -1.0,
  2 words) beats "b c <end>" (-1.1, 3 words) on the raw sum, but not with
  GNMT alpha 1: -1.0 / (7/6) = -0.857 < -1.1 / (8/6) = -0.825.
  """

  num_scales = 1
  vocab_size = 7

  def __init__(self):
    table = np.full((self.vocab_size, self.vocab_size), -30.0)
    for previous, word, log_p in ((flickr8k_vocab.START, A, -0.7),
                                  (flickr8k_vocab.START, B, -0.8),
                                  (A, flickr8k_vocab.END, -0.3), (B, C, -0.15),
                                  (C, flickr8k_vocab.END, -0.15)):
      table[previous, word] = log_p
    rest = 1.0 - np.exp(table).sum(1) + np.exp(table[:, 3])
    table[:, 3] = np.log(rest)
    self.table = tf.constant(table, tf.float32)

  def initial_state(self, maps, samples=1):
    zeros = tf.zeros([tf.shape(maps[0])[0] * samples, 1])
    return captioner.DecoderState(zeros, zeros)

  def action_head(self, h):
    rows = tf.shape(h)[0]
    return distributions.ActionParams(tf.zeros([rows, 2]), tf.ones([rows, 2]),
                                      tf.zeros([rows, 1]))

  def advance(self, maps, state, words, action, samples):
    del maps, action, samples  # Attention plays no part here.
    return tf.gather(self.table, words), state


def markov_features():
  return {"features_0": tf.zeros([1, 2, 2, 1])}


class DecodingTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(0.0, 1.5)
  def test_beam_width_one_equals_greedy(self, alpha):
    model, feats = model_and_features()
    for sample in (False, True):
      greedy = caption_decoding.greedy_decode(model, feats, STEPS, sample,
                                              seed=[1, 2])
      beam = caption_decoding.beam_search(model, feats, STEPS, 1, sample,
                                          seed=[1, 2],
                                          length_penalty_alpha=alpha)
      for a, b in zip(greedy, beam):
        self.assertAllClose(a, b, msg=f"sample_attention={sample}")

  def test_trace_shapes(self):
    model, feats = model_and_features()
    out = caption_decoding.beam_search(model, feats, STEPS, 3)
    self.assertEqual(out.ids.shape, (4, STEPS))
    self.assertEqual(out.locations.shape, (4, STEPS, 2))
    self.assertEqual(out.scales.shape, (4, STEPS))
    self.assertEqual(out.log_prob.shape, (4,))

  def test_beam_score_is_the_teacher_forced_log_likelihood_at_the_mode(self):
    # The returned caption, its glimpses and its score belong together: the
    # mode-attention rollout of <start> + ids scores the same words.
    model, feats = model_and_features(seed=3)
    for width in (1, 3):
      out = caption_decoding.decode(model, feats, STEPS, width)
      captions = tf.concat([tf.fill([4, 1], flickr8k_vocab.START), out.ids], 1)
      rollout = model.rollout(feats, captions, 1, "mode")
      self.assertAllClose(rollout.log_likelihood[:, 0], out.log_prob,
                          atol=1e-4, msg=f"width {width}")
      mask = rollout.mask > 0
      self.assertAllClose(tf.boolean_mask(rollout.locations[:, 0], mask),
                          tf.boolean_mask(out.locations, mask), atol=1e-5)

  def test_wider_beam_scores_at_least_the_narrow_beams_best_kept(self):
    # Beam search keeps the top W prefixes, so with W = vocabulary size the
    # first two words are exhaustive: never worse than greedy at 2 steps.
    model, feats = model_and_features(seed=4)
    greedy = caption_decoding.greedy_decode(model, feats, 2)
    beam = caption_decoding.beam_search(model, feats, 2, model.vocab_size)
    self.assertAllGreaterEqual(beam.log_prob - greedy.log_prob, -1e-5)

  def test_words_after_end_are_padding(self):
    model, feats = model_and_features()
    bias = np.zeros(model.vocab_size, np.float32)
    bias[flickr8k_vocab.END] = 50.0  # <end> first, always.
    model.word_head.bias.assign(bias)
    for width in (1, 2):
      out = caption_decoding.decode(model, feats, STEPS, width)
      self.assertAllEqual(out.ids[:, 0], [flickr8k_vocab.END] * 4)
      self.assertAllEqual(out.ids[:, 1:], np.zeros((4, STEPS - 1)))

  def test_to_strings_stops_at_end(self):
    vocab = flickr8k.Vocabulary(flickr8k.Vocabulary.SPECIALS + ("a", "dog"))
    self.assertEqual(
        caption_decoding.to_strings(tf.constant([[4, 5, 2, 0], [5, 2, 4, 0]]),
                                    vocab), ["a dog", "dog"])

  def test_sampled_attention_depends_on_the_seed(self):
    model, feats = model_and_features()
    a = caption_decoding.greedy_decode(model, feats, STEPS, True, seed=[1, 1])
    b = caption_decoding.greedy_decode(model, feats, STEPS, True, seed=[1, 1])
    c = caption_decoding.greedy_decode(model, feats, STEPS, True, seed=[2, 2])
    self.assertAllEqual(a.locations, b.locations)
    self.assertNotAllClose(a.locations, c.locations)

  def test_beam_width_must_be_positive(self):
    model, feats = model_and_features()
    with self.assertRaisesRegex(ValueError, "beam_width"):
      caption_decoding.beam_search(model, feats, STEPS, 0)


def enumerated_captions(vocab_size: int, steps: int) -> np.ndarray:
  """Every distinct caption of `steps` word slots: [N, steps] int32.

  Any id may be emitted (beam search does not forbid <pad>, <start> or
  <unk>); after the first <end> only <pad> follows, as decoding writes it.
  """
  captions = set()
  for words in itertools.product(range(vocab_size), repeat=steps):
    words = list(words)
    if flickr8k_vocab.END in words:
      end = words.index(flickr8k_vocab.END)
      words[end + 1:] = [flickr8k_vocab.PAD] * (steps - end - 1)
    captions.add(tuple(words))
  return np.array(sorted(captions), np.int32)


def exhaustive_scores(model, features, captions: np.ndarray):
  """(log p [B, N], lengths [N]) of every caption for every image.

  Written independently of decoding.py: for each image, all N captions are
  run as N rows of one word loop, the attention at the prior's mode (mean
  location, likeliest scale, read from the action head's parameters), and
  each word's log-probability added until <end> (inclusive). Length counts
  the words up to and including <end>, or all slots if there is none.
  """
  count, steps = captions.shape
  ended = np.cumsum(captions == flickr8k_vocab.END, axis=1)
  alive = np.concatenate([np.ones((count, 1)), ended[:, :-1] == 0], axis=1)
  lengths = alive.sum(1)
  scores = []
  batch = int(features["features_0"].shape[0])
  for b in range(batch):
    maps = [tf.repeat(features[f"features_{k}"][b:b + 1], count, axis=0)
            for k in range(model.num_scales)]
    state = model.initial_state(maps)
    words = tf.fill([count], flickr8k_vocab.START)
    total = np.zeros(count)
    for t in range(steps):
      params = model.action_head(state.h)
      action = distributions.Action(
          params.location_mean,
          tf.argmax(params.scale_logits, axis=-1, output_type=tf.int32))
      logits, state = model.advance(maps, state, words, action, 1)
      log_probs = tf.nn.log_softmax(logits).numpy().astype(np.float64)
      total += alive[:, t] * log_probs[np.arange(count), captions[:, t]]
      words = tf.constant(captions[:, t])
    scores.append(total)
  return np.stack(scores), lengths


def varied_captioner(vocab_size: int, seed: int):
  """A captioner over builders.SHAPES with random weights large enough that
  captions differ in probability and attention moves; <end> made less likely
  so that the best captions are not all "<end>" at once."""
  model = captioner.GlimpseCaptioner(**{
      **builders.captioner_arguments("wsram_q"), "vocab_size": vocab_size,
      "vocabulary": None})
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, 0.7, v.shape).astype(np.float32))
  bias = model.word_head.bias.numpy()
  bias[flickr8k_vocab.END] -= 1.5
  model.word_head.bias.assign(bias)
  return model


class ExhaustiveBeamTest(parameterized.TestCase, tf.test.TestCase):

  VOCAB = 7  # <pad> <start> <end> <unk> and three words.
  SLOTS = 3

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = varied_captioner(cls.VOCAB, seed=4)
    cls.features = builders.caption_features(batch=4, seed=6)
    cls.captions = enumerated_captions(cls.VOCAB, cls.SLOTS)
    cls.scores, cls.lengths = exhaustive_scores(cls.model, cls.features,
                                                cls.captions)

  def _rank(self, alpha: float) -> np.ndarray:
    # GNMT: score / ((5 + len) / 6) ** alpha, higher is better.
    return self.scores / ((5.0 + self.lengths) / 6.0) ** alpha

  def test_enumeration_is_complete(self):
    # 6 ids that do not end a caption in each of 3 slots, plus the captions
    # ended at slot 1, 2 or 3: 216 + 1 + 6 + 36.
    self.assertLen(self.captions, 6 ** 3 + 1 + 6 + 36)

  @parameterized.parameters(0.0, 0.7, 3.0)
  def test_full_width_beam_returns_the_best_of_all_captions(self, alpha):
    rank = self._rank(alpha)
    best = np.argmax(rank, axis=1)
    top2 = np.sort(rank, axis=1)[:, -2:]
    # No near-tie that float32 accumulation could flip.
    self.assertAllGreater(top2[:, 1] - top2[:, 0], 1e-3)
    out = caption_decoding.beam_search(
        self.model, self.features, self.SLOTS, len(self.captions),
        length_penalty_alpha=alpha)
    self.assertAllEqual(out.ids, self.captions[best])
    self.assertAllClose(out.log_prob,
                        self.scores[np.arange(len(best)), best], atol=1e-4)

  def test_greedy_and_a_narrow_beam_miss_the_best_caption_somewhere(self):
    # Otherwise the test above could not tell a full search from greedy or
    # from a beam that prunes too early.
    best = self.captions[np.argmax(self.scores, axis=1)]
    greedy = caption_decoding.greedy_decode(self.model, self.features,
                                            self.SLOTS)
    narrow = caption_decoding.beam_search(self.model, self.features,
                                          self.SLOTS, 2)
    self.assertFalse(np.all(greedy.ids.numpy() == best))
    self.assertFalse(np.all(narrow.ids.numpy() == best))

  def test_the_length_penalty_changes_the_best_caption_somewhere(self):
    # So the parameterised test checks the penalised ranking, not the raw.
    for alpha in (0.7, 3.0):
      self.assertFalse(np.all(np.argmax(self._rank(alpha), axis=1)
                              == np.argmax(self._rank(0.0), axis=1)), alpha)

  def test_greedy_score_is_its_enumerated_score(self):
    greedy = caption_decoding.greedy_decode(self.model, self.features,
                                            self.SLOTS)
    index = {tuple(c): i for i, c in enumerate(self.captions)}
    rows = [index[tuple(ids)] for ids in greedy.ids.numpy()]
    self.assertAllClose(greedy.log_prob,
                        self.scores[np.arange(len(rows)), rows], atol=1e-4)


class LengthPenaltyTest(parameterized.TestCase, tf.test.TestCase):

  def test_log_length_penalty_is_gnmts(self):
    lengths = tf.constant([1, 2, 7, 19])
    self.assertAllClose(
        tf.exp(caption_decoding.log_length_penalty(lengths, 0.7)),
        ((5.0 + np.array([1, 2, 7, 19])) / 6.0) ** 0.7)
    self.assertAllEqual(caption_decoding.log_length_penalty(lengths, 0.0),
                        np.zeros(4))

  def test_without_penalty_the_likelier_short_caption_wins(self):
    out = caption_decoding.beam_search(MarkovCaptioner(), markov_features(),
                                       4, 2)
    self.assertAllEqual(out.ids, [SHORT])
    self.assertAllClose(out.log_prob, [-1.0], atol=1e-4)

  def test_positive_alpha_lets_a_longer_less_likely_caption_win(self):
    out = caption_decoding.beam_search(MarkovCaptioner(), markov_features(),
                                       4, 2, length_penalty_alpha=1.0)
    self.assertAllEqual(out.ids, [LONG])
    # The returned score stays the raw log-probability, below the short one.
    self.assertAllClose(out.log_prob, [-1.1], atol=1e-4)

  def test_a_huge_alpha_ranks_by_length_without_overflow(self):
    # lp = (9/6)^1000 is inf in float32, so score / lp would tie every beam
    # at -0; in log space the longest caption still wins, the likeliest of
    # that length: "a <unk> <unk> <unk>", unfinished after 4 words.
    out = caption_decoding.beam_search(MarkovCaptioner(), markov_features(),
                                       4, 3, length_penalty_alpha=1000.0)
    self.assertAllEqual(out.ids, [[A, 3, 3, 3]])
    self.assertAllClose(out.log_prob, [-0.7 + np.log(1 - np.exp(-0.3))],
                        atol=1e-4)

  @parameterized.parameters(-0.5, float("nan"), float("inf"), "1", True, None)
  def test_bad_alpha_is_named(self, alpha):
    model, feats = model_and_features()
    for width in (1, 2):
      with self.assertRaisesRegex(ValueError, "eval.length_penalty"):
        caption_decoding.decode(model, feats, STEPS, width,
                                length_penalty_alpha=alpha)


if __name__ == "__main__":
  tf.test.main()
