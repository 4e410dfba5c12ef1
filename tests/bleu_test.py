"""wsram_tf/captioner/bleu.py: corpus BLEU-1..4 identities and a hand-computed case."""

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
