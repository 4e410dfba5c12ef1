"""wsram_tf/captioner/export.py: serves without wsram_tf, as greedy decoding."""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from configs import captions as caption_configs
from pipelines import feature_pyramid
from pipelines import flickr8k
from pipelines import flickr8k_vocab
from tests import standalone
from wsram_tf import export
from wsram_tf.captioner import decoding as caption_decoding
from wsram_tf.captioner import export as caption_export
from wsram_tf.captioner import model as captioner

IMAGE_SIZE = 32
WORDS = ("a", "dog", "cat", "runs", "on", "grass", "red", "ball")

# Runs in a child that cannot import this project (tests/standalone.py).
_CHILD = r"""
import json
import numpy as np
import tensorflow as tf

before = set(sys.modules)
BLOCKED += ["keras", "tf_keras"]
export_dir, images_path, out_dir = sys.argv[1:]
loaded = tf.saved_model.load(export_dir)
images = np.load(images_path)
for name, batch in (("serve_uint8", images),
                    ("serve", images.astype(np.float32))):
  out = loaded.signatures[name](images=tf.constant(batch))
  for key in ("token_ids", "locations", "scales"):
    np.save(f"{out_dir}/{name}_{key}.npy", out[key].numpy())
  with open(f"{out_dir}/{name}_captions.json", "w") as f:
    json.dump([c.decode() for c in out["captions"].numpy()], f)
leaked = [m for m in set(sys.modules) - before
          if m.split(".")[0] in BLOCKED]
if leaked:
  raise SystemExit(f"modules leaked into the child: {leaked}")
"""


def tiny_config():
  config = caption_configs.get_config("wsram_q,tiny")
  config.backbone.image_size = IMAGE_SIZE
  config.model.hidden_size = 8
  config.model.word_embedding_size = 4
  config.data.max_caption_length = 7
  config.train.jit_compile = False
  return config


def tiny_run(seed: int = 0):
  """(model, pyramid, vocab) with random weights that give varied captions."""
  config = tiny_config()
  vocab = flickr8k.Vocabulary(flickr8k.Vocabulary.SPECIALS + WORDS)
  pyramid = caption_export.build_pyramid(config)
  shapes = [tuple(o.shape[1:]) for o in pyramid.model.outputs]
  model = captioner.build_captioner(config, shapes, len(vocab))
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, 0.5, v.shape).astype(np.float32))
  bias = model.word_head.bias.numpy()
  bias[flickr8k_vocab.END] -= 2.0  # Some words before <end>, yet not all rows full.
  model.word_head.bias.assign(bias)
  return model, pyramid, vocab


def images(count: int = 4, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)


def expected(model, pyramid, vocab, batch):
  maps = pyramid(feature_pyramid.resize_images(batch, IMAGE_SIZE))
  out = caption_decoding.greedy_decode(
      model, maps, model.config.data.max_caption_length - 1)
  return out, caption_decoding.to_strings(out.ids, vocab)


class ExportedCaptionerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.model, cls.pyramid, cls.vocab = tiny_run()
    cls.export_dir = caption_export.export_captioner(
        cls.model, cls.pyramid, cls.vocab, os.path.join(cls.tmp, "export"))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_serving_without_our_package_matches_greedy_decode(self):
    work = tempfile.mkdtemp(dir=self.tmp)
    batch = images()
    np.save(os.path.join(work, "images.npy"), batch)
    child = standalone.run(_CHILD, [self.export_dir,
         os.path.join(work, "images.npy"), work], work)
    self.assertEqual(child.returncode, 0, child.stderr[-3000:])

    want, want_strings = expected(self.model, self.pyramid, self.vocab, batch)
    self.assertTrue(any(want_strings), "degenerate test: all captions empty")
    for signature in ("serve_uint8", "serve"):
      got = {k: np.load(os.path.join(work, f"{signature}_{k}.npy"))
             for k in ("token_ids", "locations", "scales")}
      with open(os.path.join(work, f"{signature}_captions.json")) as f:
        captions = json.load(f)
      self.assertAllEqual(got["token_ids"], want.ids)
      self.assertAllClose(got["locations"], want.locations, atol=1e-5)
      self.assertEqual(got["scales"].dtype, np.int32)
      self.assertAllEqual(got["scales"], want.scales)
      self.assertEqual(captions, want_strings)

  def test_other_image_sizes_are_resized_to_the_backbone_input(self):
    big = np.repeat(np.repeat(images(2, seed=1), 2, axis=1), 2, axis=2)
    loaded = tf.saved_model.load(self.export_dir)
    out = loaded.signatures["serve_uint8"](images=tf.constant(big))
    self.assertEqual(out["token_ids"].shape,
                     (2, self.model.config.data.max_caption_length - 1))
    self.assertEqual(out["captions"].shape, (2,))

  def test_captions_from_ids_stop_at_end_and_skip_specials(self):
    ids = tf.constant([[4, 5, 2, 6, 0], [1, 4, 0, 7, 2], [2, 4, 4, 4, 4]])
    got = caption_export.captions_from_ids(ids, self.vocab.words)
    self.assertEqual([c.decode() for c in got.numpy()],
                     [self.vocab.decode(row) for row in ids.numpy()])

  def test_export_info_names_outputs_and_feature_shapes(self):
    with open(os.path.join(self.export_dir, "export_info.json")) as f:
      info = json.load(f)
    self.assertEqual(info["backbone"]["feature_shapes"],
                     [list(s) for s in self.model.feature_shapes])
    self.assertEqual(sorted(info["outputs"]),
                     ["captions", "locations", "scales", "token_ids"])
    self.assertEqual(flickr8k.Vocabulary.load(
        os.path.join(self.export_dir, "vocab.json")), self.vocab)


class WorkdirTest(tf.test.TestCase):

  def _workdir(self):
    """A captioning run's files: config.json, vocab.json, final.weights.h5."""
    workdir = self.create_tempdir().full_path
    model, pyramid, vocab = tiny_run(seed=1)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(model.config.to_json_best_effort(indent=2))
    vocab.save(os.path.join(workdir, "vocab.json"))
    model.save_weights(os.path.join(workdir, "final.weights.h5"))
    return workdir, model, pyramid, vocab

  def test_export_from_workdir_serves_the_trained_weights(self):
    workdir, model, pyramid, vocab = self._workdir()
    export_dir = export.export_from_workdir(workdir)
    self.assertEqual(export_dir, os.path.join(workdir, "export"))
    batch = images(3, seed=2)
    out = tf.saved_model.load(export_dir).signatures["serve_uint8"](
        images=tf.constant(batch))
    want, want_strings = expected(model, pyramid, vocab, batch)
    self.assertAllEqual(out["token_ids"], want.ids)
    self.assertEqual([c.decode() for c in out["captions"].numpy()],
                     want_strings)

  def test_a_run_written_before_config_task_is_still_a_captioner(self):
    workdir, *_ = self._workdir()
    path = os.path.join(workdir, "config.json")
    with open(path) as f:
      config = json.load(f)
    del config["task"]
    with open(path, "w") as f:
      json.dump(config, f)
    export_dir = export.export_from_workdir(
        workdir, os.path.join(workdir, "old"))
    self.assertIn("serve_uint8",
                  tf.saved_model.load(export_dir).signatures)

  def test_missing_files_are_named(self):
    for name, error in (("vocab.json", FileNotFoundError),
                        ("final.weights.h5", FileNotFoundError),
                        ("config.json", FileNotFoundError)):
      workdir, *_ = self._workdir()
      os.remove(os.path.join(workdir, name))
      with self.assertRaisesRegex(error, name):
        caption_export.load_from_workdir(workdir)


if __name__ == "__main__":
  tf.test.main()
