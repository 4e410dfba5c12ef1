"""wsram_tf/captioner/bleu.py: corpus BLEU-1..4 identities and a hand-computed case."""

import math

import sacrebleu
import tensorflow as tf

from wsram_tf.captioner import bleu

REFERENCES = [
    ["a large seven to the left of a small two",
     "a small two to the right of a big seven"],
    ["a dog runs on the grass", "a brown dog is running",
     "the dog runs across a green field"],
]


class CorpusBleuTest(tf.test.TestCase):

  def test_references_against_themselves_score_100(self):
    scores = bleu.corpus_bleu([refs[0] for refs in REFERENCES], REFERENCES)
    for n in range(1, 5):
      self.assertAllClose(scores[f"bleu_{n}"], 100.0)

  def test_empty_outputs_score_0(self):
    scores = bleu.corpus_bleu(["", ""], REFERENCES)
    self.assertEqual(sorted(scores), ["bleu_1", "bleu_2", "bleu_3", "bleu_4"])
    for value in scores.values():
      self.assertEqual(value, 0.0)

  def test_hand_computed_precisions(self):
    # Unigrams 3/4 match, bigrams 1/3, equal lengths so no brevity penalty:
    # BLEU-1 = 75, BLEU-2 = sqrt(3/4 * 1/3) = 50; no trigram matches -> 0.
    scores = bleu.corpus_bleu(["a b c d"], [["a b x d"]])
    self.assertAllClose(scores["bleu_1"], 75.0)
    self.assertAllClose(scores["bleu_2"], 50.0)
    self.assertEqual(scores["bleu_3"], 0.0)

  def test_brevity_penalty_uses_the_closest_reference_length(self):
    # Worked by hand. Hypothesis 1 has 4 words; its references have 6 and 1:
    # the closest is 6 (|4-6| = 2 < |4-1| = 3), though it is listed first
    # and is the longer one. Hypothesis 2 has 2 words, references 6 and 3:
    # closest 3. Corpus: c = 4 + 2 = 6, r = 6 + 3 = 9 > c, so
    # BP = exp(1 - 9/6) = exp(-0.5). (The shortest reference would give
    # r = 4, BP = 1; the first ones r = 12, BP = exp(-1).)
    # Clipped n-gram matches, hypothesis 1 + hypothesis 2:
    #   1-grams: the dog runs fast 4/4 + a cat 2/2 = 6/6
    #   2-grams: the-dog, dog-runs (not runs-fast) 2/3 + a-cat 1/1 = 3/4
    #   3-grams: the-dog-runs (not dog-runs-fast) 1/2 + none 0/0 = 1/2
    #   4-grams: 0/1: BLEU-4 is 0 without smoothing.
    hypotheses = ["the dog runs fast", "a cat"]
    references = [["the dog runs very fast today", "dog"],
                  ["a small cat sat down here", "a cat sat"]]
    bp = math.exp(-0.5)
    scores = bleu.corpus_bleu(hypotheses, references)
    self.assertAllClose(scores["bleu_1"], 100 * bp * 1.0)
    self.assertAllClose(scores["bleu_2"], 100 * bp * (1.0 * 3 / 4) ** (1 / 2))
    self.assertAllClose(scores["bleu_3"],
                        100 * bp * (1.0 * 3 / 4 * 1 / 2) ** (1 / 3))
    self.assertEqual(scores["bleu_4"], 0.0)

  def test_equally_close_references_take_the_shorter_length(self):
    # 5 words; references of 7 and 3 words are both 2 away. sacrebleu (like
    # multi-bleu.perl) takes the shorter, 3 < 5: no penalty, and every
    # unigram is in the first reference, so BLEU-1 is exactly 100. The
    # longer one would give 100 * exp(1 - 7/5) = 67.0.
    scores = bleu.corpus_bleu(["a b c d e"], [["a b c d e f g", "x y z"]])
    self.assertAllClose(scores["bleu_1"], 100.0)

  def test_uneven_reference_counts_match_sacrebleu(self):
    hypotheses = ["a big seven left of a two", "a dog runs on a field"]
    streams = [[REFERENCES[0][0], REFERENCES[1][0]],
               [REFERENCES[0][1], REFERENCES[1][1]],
               [None, REFERENCES[1][2]]]
    scores = bleu.corpus_bleu(hypotheses, REFERENCES)
    for n in range(1, 5):
      expected = sacrebleu.metrics.BLEU(
          max_ngram_order=n, tokenize="none",
          smooth_method="none").corpus_score(hypotheses, streams).score
      self.assertAllClose(scores[f"bleu_{n}"], expected)
    self.assertGreater(scores["bleu_1"], scores["bleu_4"])

  def test_mismatched_lengths_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "2 hypotheses but 1"):
      bleu.corpus_bleu(["a", "b"], [["a"]])


if __name__ == "__main__":
  tf.test.main()
