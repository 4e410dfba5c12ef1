"""The captioner through wsram_tf/run.py: a tiny synthetic run, end to end."""

import itertools
import json
import os
import tempfile

import sacrebleu
import tensorflow as tf

from wsram_tf.pipelines import synthetic_captions
from tests import builders
from wsram_tf import run
from wsram_tf.captioner import task as task_lib


def tiny_run_config(data_dir: str, cache_dir: str, preset: str = "wsram_q"):
  # XLA is off: compile time dominates a 2-step run; captioner_test covers it.
  return builders.caption_run_config(data_dir, cache_dir, preset,
                                     num_train_steps=2, steps_per_epoch=2)


class TrainAndEvaluateTest(tf.test.TestCase):

  def test_tiny_run_writes_bleu_and_examples(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    data_dir = os.path.join(root, "data")
    synthetic_captions.generate(data_dir, *builders.tiny_digits(),
                                num_images=20, image_size=64, seed=0)
    config = tiny_run_config(data_dir, os.path.join(root, "cache"))
    workdir = os.path.join(root, "work")
    results = run.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
      written = json.load(f)
    self.assertEqual(written["train_steps"], 2)
    self.assertEqual(written["variant"], "wsram_q")
    self.assertEqual(written["num_test_images"], 2)
    self.assertLen(written["examples"], 2)
    # The examples hold every test image here: BLEU recomputed from them
    # with sacrebleu directly must be the BLEU written.
    hypotheses = [e["caption"] for e in written["examples"]]
    streams = [list(refs) for refs in itertools.zip_longest(
        *[e["references"] for e in written["examples"]])]
    self.assertNotEmpty(streams)
    for n in range(1, 5):
      want = sacrebleu.metrics.BLEU(
          max_ngram_order=n, tokenize="none", smooth_method="none"
      ).corpus_score(hypotheses, streams).score
      self.assertAllClose(written[f"bleu_{n}"], want, msg=f"bleu_{n}")
    self.assertIsInstance(written["examples"][0]["caption"], str)
    self.assertEqual(results["bleu_1"], written["bleu_1"])
    exported = tf.saved_model.load(os.path.join(workdir, "export"))
    self.assertIn("serve_uint8", exported.signatures)


class CheckConfigTest(tf.test.TestCase):

  def test_bad_fields_are_named_before_any_work(self):
    for field, value, message in (
        ("eval.beam_width", 0, "beam_width"),
        ("eval.length_penalty", -1.0, "length_penalty"),
        ("model.inference_word", "next", "inference_word")):
      config = tiny_run_config("/nonexistent", "/nonexistent")
      section, name = field.split(".")
      config[section][name] = value
      with self.assertRaisesRegex(ValueError, message):
        task_lib.check_config(config)


if __name__ == "__main__":
  tf.test.main()
