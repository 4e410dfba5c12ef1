"""wsram_tf/caption_decoding.py: greedy, beam search, traces, strings."""

import numpy as np
import tensorflow as tf

from pipelines import flickr8k
from tests import captioner_test
from wsram_tf import caption_decoding
from wsram_tf import captioner

STEPS = 5


def model_and_features(seed: int = 0):
  model = captioner_test.build("wsram_q")
  return model, captioner_test.features(batch=4, seed=seed)


class DecodingTest(tf.test.TestCase):

  def test_beam_width_one_equals_greedy(self):
    model, feats = model_and_features()
    for sample in (False, True):
      greedy = caption_decoding.greedy_decode(model, feats, STEPS, sample,
                                              seed=[1, 2])
      beam = caption_decoding.beam_search(model, feats, STEPS, 1, sample,
                                          seed=[1, 2])
      for a, b in zip(greedy, beam):
        self.assertAllClose(a, b, msg=f"sample_attention={sample}")

  def test_trace_shapes(self):
    model, feats = model_and_features()
    out = caption_decoding.beam_search(model, feats, STEPS, 3)
    self.assertEqual(out.ids.shape, (4, STEPS))
    self.assertEqual(out.locations.shape, (4, STEPS, 2))
    self.assertEqual(out.depths.shape, (4, STEPS))
    self.assertEqual(out.log_prob.shape, (4,))

  def test_beam_score_is_the_teacher_forced_log_likelihood_at_the_mode(self):
    # The returned caption, its glimpses and its score belong together: the
    # mode-attention rollout of <start> + ids scores the same words.
    model, feats = model_and_features(seed=3)
    for width in (1, 3):
      out = caption_decoding.decode(model, feats, STEPS, width)
      captions = tf.concat([tf.fill([4, 1], captioner.START), out.ids], 1)
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
    bias[captioner.END] = 50.0  # <end> first, always.
    model.word_head.bias.assign(bias)
    for width in (1, 2):
      out = caption_decoding.decode(model, feats, STEPS, width)
      self.assertAllEqual(out.ids[:, 0], [captioner.END] * 4)
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


if __name__ == "__main__":
  tf.test.main()
