"""The captioner learns: a tiny set of four captioned "image" classes.

Each image is a pair of random feature maps (builders.SHAPES) whose every
cell carries its class's signature plus noise, and is captioned with its
class's sentence. Fifty WS-RAM+q updates must take the validation
per-word NLL well below its start, and greedy captions of the validation
images must beat, in BLEU, the best caption a model could give without
looking: the one training sentence that scores highest on every image.
"""

import keras
import numpy as np
import tensorflow as tf

from wsram_tf.pipelines import flickr8k_vocab
from tests import builders
from wsram_tf.captioner import bleu
from wsram_tf.captioner import decoding
from wsram_tf.captioner import model as captioner

SENTENCES = ("a brown dog runs on the grass",
             "a black cat sits on a mat",
             "two white birds fly over water",
             "a brown dog sits on a mat")
WORDS = sorted({w for s in SENTENCES for w in s.split()})
VOCAB = flickr8k_vocab.SPECIALS + tuple(WORDS)
LENGTH = 2 + max(len(s.split()) for s in SENTENCES)  # <start> .. <end>.


def encode(sentence: str) -> list[int]:
  ids = [flickr8k_vocab.START] + [VOCAB.index(w) for w in sentence.split()]
  ids.append(flickr8k_vocab.END)
  return ids + [flickr8k_vocab.PAD] * (LENGTH - len(ids))


def captioned_images(count: int, seed: int):
  """(features dict, caption ids [count, LENGTH], classes [count])."""
  rng = np.random.default_rng(seed)
  classes = np.arange(count) % len(SENTENCES)
  # Signatures from a fixed seed: training and validation share them.
  signatures = [np.random.default_rng(100 + k).normal(size=(4, s[-1]))
                for k, s in enumerate(builders.SHAPES)]
  features = {}
  for k, shape in enumerate(builders.SHAPES):
    noise = rng.normal(0.0, 0.5, (count,) + shape)
    features[f"features_{k}"] = tf.constant(
        signatures[k][classes][:, None, None, :] + noise, tf.float32)
  ids = np.array([encode(SENTENCES[c]) for c in classes], np.int32)
  return features, ids, classes


def per_word_nll(model, features, ids) -> float:
  log_likelihood, words = model.caption_log_likelihood(
      features, ids, num_samples=2, seed=[3, 3])
  return float(-tf.reduce_sum(log_likelihood) / tf.reduce_sum(words))


def greedy_strings(model, features) -> list[str]:
  out = decoding.greedy_decode(model, features, LENGTH - 1)
  return decoding.to_strings(out.ids, flickr8k_vocab.Vocabulary(VOCAB))


class LearningTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Keras draws unseeded initial weights from its global seed: fix it so
    # the test sees the same start every run.
    keras.utils.set_random_seed(0)
    cls.model = captioner.GlimpseCaptioner(
        feature_shapes=builders.SHAPES, vocabulary=VOCAB, variant="wsram_q",
        hidden_size=32, word_embedding_size=16, num_samples=2,
        max_caption_length=LENGTH)
    cls.model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      jit_compile=False)
    train, train_ids, _ = captioned_images(64, seed=1)
    cls.val, cls.val_ids, cls.val_classes = captioned_images(16, seed=2)
    cls.start_nll = per_word_nll(cls.model, cls.val, cls.val_ids)
    batches = tf.data.Dataset.from_tensor_slices((train, train_ids)).shuffle(
        64, seed=0).repeat().batch(16)
    cls.model.fit(batches, epochs=1, steps_per_epoch=50, verbose=0)
    cls.end_nll = per_word_nll(cls.model, cls.val, cls.val_ids)

  def test_validation_nll_falls_well_below_its_start(self):
    # At the start every word is near-uniform over the vocabulary.
    self.assertGreater(self.start_nll, 0.8 * np.log(len(VOCAB)))
    self.assertLess(self.end_nll, 0.15 * self.start_nll)

  def test_greedy_captions_beat_the_best_constant_caption_in_bleu(self):
    references = [[SENTENCES[c]] for c in self.val_classes]
    learned = bleu.corpus_bleu(greedy_strings(self.model, self.val),
                               references)
    constant = max(
        bleu.corpus_bleu([s] * len(references), references)["bleu_4"]
        for s in SENTENCES)
    self.assertGreater(constant, 0.0)  # The bar is not trivially low.
    self.assertGreater(learned["bleu_4"], constant + 20.0)


if __name__ == "__main__":
  tf.test.main()
