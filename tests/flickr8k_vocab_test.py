"""pipelines/flickr8k_vocab.py: building, encoding, decoding, saving."""

import os
import tempfile

import tensorflow as tf

from wsram_tf.pipelines import flickr8k_vocab

Vocabulary = flickr8k_vocab.Vocabulary


class VocabularyTest(tf.test.TestCase):

  def test_specials_come_first_and_unseen_words_are_unk(self):
    vocab = Vocabulary.build(["a dog runs", "a cat sits"], min_count=1)
    self.assertEqual(vocab.words[:4], ("<pad>", "<start>", "<end>", "<unk>"))
    self.assertIn("dog", vocab.ids)
    self.assertEqual(vocab.encode("a zebra", 5)[2], vocab.UNK)

  def test_min_count_maps_rare_words_to_unk(self):
    vocab = Vocabulary.build(["a dog", "a cat", "a dog"], min_count=2)
    self.assertEqual(vocab.words[4:], ("a", "dog"))

  def test_encode_pads_and_truncation_keeps_end(self):
    vocab = Vocabulary.build(["a b c d"], min_count=1)
    self.assertEqual(vocab.encode("a b", 6), [1, 4, 5, 2, 0, 0])
    self.assertEqual(vocab.encode("a b c d", 4), [1, 4, 5, 2])
    self.assertEqual(vocab.decode([1, 4, 5, 2, 6, 0]), "a b")

  def test_save_and_load_round_trip(self):
    vocab = Vocabulary.build(["a dog runs", "a cat"], min_count=1)
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "vocab.json")
    vocab.save(path)
    self.assertEqual(Vocabulary.load(path), vocab)

  def test_hash_changes_with_the_words(self):
    self.assertNotEqual(Vocabulary.build(["a dog"], 1).hash,
                        Vocabulary.build(["a cat"], 1).hash)

  def test_words_without_specials_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "must start with"):
      Vocabulary(("a", "dog"))


if __name__ == "__main__":
  tf.test.main()
