"""wsram_tf/captioner/export.py: serves without wsram_tf, as greedy decoding.

Also: the input checks inside the signatures (issue 10 item 8: empty
batches, grey and RGBA images, wrong channel counts, out-of-range pixels)
and that the exported CNN maps of a JPEG are the feature cache's maps of it.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from wsram_tf.configs import captions as caption_configs
from wsram_tf.pipelines import feature_pyramid
from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines import flickr8k_vocab
from tests import flickr8k_data
from tests import standalone
from wsram_tf import export
from wsram_tf.captioner import decoding as caption_decoding
from wsram_tf.captioner import export as caption_export
from wsram_tf.captioner import presets as caption_presets

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
serve = loaded.signatures["serve_uint8"]
grey = serve(images=tf.constant(images[..., :1]))["token_ids"].numpy()
np.save(f"{out_dir}/grey_token_ids.npy", grey)
empty = serve(images=tf.constant(images[:0]))
with open(f"{out_dir}/empty_shapes.json", "w") as f:
  json.dump({k: v.shape.as_list() for k, v in empty.items()}, f)
try:
  serve(images=tf.constant(np.concatenate([images, images[..., :2]], -1)))
  message = "no error"
except tf.errors.InvalidArgumentError as e:
  message = e.message
with open(f"{out_dir}/five_channels_error.txt", "w") as f:
  f.write(message)
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
  model = caption_presets.build_from_config(config, shapes, len(vocab),
                                            vocab)
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
      model, maps, model.max_caption_length - 1)
  return out, caption_decoding.to_strings(out.ids, vocab)


class ExportedCaptionerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.model, cls.pyramid, cls.vocab = tiny_run()
    cls.export_dir = caption_export.export_saved_model(
        cls.model, cls.pyramid, cls.vocab, os.path.join(cls.tmp, "export"))
    cls.loaded = tf.saved_model.load(cls.export_dir)
    # One child (a TensorFlow import costs seconds) serves every probe the
    # child tests below read back.
    cls.child_dir = tempfile.mkdtemp(dir=cls.tmp)
    cls.child_images = images()
    np.save(os.path.join(cls.child_dir, "images.npy"), cls.child_images)
    cls.child = standalone.run(_CHILD, [
        cls.export_dir, os.path.join(cls.child_dir, "images.npy"),
        cls.child_dir], cls.child_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _child_ran(self):
    self.assertEqual(self.child.returncode, 0, self.child.stderr[-3000:])
    return self.child_dir

  def test_serving_without_our_package_matches_greedy_decode(self):
    work, batch = self._child_ran(), self.child_images
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

  def test_child_serves_a_grey_batch_as_its_rgb_copy(self):
    work = self._child_ran()
    grey = self.child_images[..., :1]
    want, _ = expected(self.model, self.pyramid, self.vocab,
                       np.repeat(grey, 3, axis=-1))
    self.assertAllEqual(np.load(os.path.join(work, "grey_token_ids.npy")),
                        want.ids)

  def test_child_serves_an_empty_batch_as_zero_rows(self):
    with open(os.path.join(self._child_ran(), "empty_shapes.json")) as f:
      shapes = json.load(f)
    steps = self.model.max_caption_length - 1
    self.assertEqual(shapes, {"token_ids": [0, steps], "captions": [0],
                              "locations": [0, steps, 2],
                              "scales": [0, steps]})

  def test_child_sees_the_channel_rule_for_five_channels(self):
    with open(os.path.join(self._child_ran(),
                           "five_channels_error.txt")) as f:
      message = f.read()
    self.assertIn("unsupported number of channels", message)
    self.assertIn("channels 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)",
                  message)

  def test_alpha_channel_is_dropped(self):
    rgb = images(2, seed=3)
    alpha = np.full(rgb.shape[:-1] + (1,), 7, np.uint8)
    serve = self.loaded.signatures["serve_uint8"]
    with_alpha = serve(images=tf.constant(np.concatenate([rgb, alpha], -1)))
    without = serve(images=tf.constant(rgb))
    self.assertAllEqual(with_alpha["token_ids"], without["token_ids"])
    self.assertAllEqual(with_alpha["locations"], without["locations"])

  def test_grey_with_alpha_is_served_as_grey(self):
    grey = images(2, seed=4)[..., :1]
    serve = self.loaded.signatures["serve"]
    two = serve(images=tf.constant(
        np.concatenate([grey, 255 - grey], -1).astype(np.float32)))
    rgb = serve(images=tf.constant(
        np.repeat(grey, 3, axis=-1).astype(np.float32)))
    self.assertAllEqual(two["token_ids"], rgb["token_ids"])

  def test_float_batch_of_zero_images_gives_zero_rows(self):
    out = self.loaded.signatures["serve"](
        images=tf.zeros([0, IMAGE_SIZE, IMAGE_SIZE, 3]))
    self.assertEqual(out["token_ids"].shape,
                     (0, self.model.max_caption_length - 1))
    self.assertEqual(out["captions"].shape, (0,))

  def test_zero_channels_fail_naming_the_rule(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "unsupported number of channels"):
      self.loaded.signatures["serve_uint8"](
          images=tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 0], tf.uint8))

  def test_an_empty_image_fails_naming_the_rule(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "empty images: .*height, width >= 1"):
      self.loaded.signatures["serve_uint8"](
          images=tf.zeros([2, 0, IMAGE_SIZE, 3], tf.uint8))

  def test_float_pixels_outside_0_255_fail_naming_the_range(self):
    batch = images(1).astype(np.float32)
    for bad in (batch * 2.0, batch - 128.0, np.full_like(batch, np.nan)):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "pixel values out of range"):
        self.loaded.signatures["serve"](images=tf.constant(bad))

  def test_other_image_sizes_are_resized_to_the_backbone_input(self):
    big = np.repeat(np.repeat(images(2, seed=1), 2, axis=1), 2, axis=2)
    out = self.loaded.signatures["serve_uint8"](images=tf.constant(big))
    self.assertEqual(out["token_ids"].shape,
                     (2, self.model.max_caption_length - 1))
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
    self.assertEqual(info["input"]["shape"], [None, None, None, None])
    self.assertEqual(flickr8k.Vocabulary.load(
        os.path.join(self.export_dir, "vocab.json")), self.vocab)


class FeatureMapsTest(tf.test.TestCase):
  """The export's CNN sees a JPEG as the feature cache did: one preprocessing.

  The cache decodes the file itself (`flickr8k_cache._load_image`); here the
  JPEG is decoded as a user would and sent through the `feature_maps`
  signature, and the maps are compared with those the training pipeline
  reads from the cache (stored as float32, so no rounding hides a
  difference).
  """

  def test_exported_maps_of_a_jpeg_equal_its_cached_features(self):
    root = self.create_tempdir().full_path
    config = flickr8k_data.tiny_dataset_config(root)
    config.data.feature_dtype = "float32"
    data = flickr8k.make_datasets(config)
    model = caption_presets.build_from_config(config, data.feature_shapes,
                                              len(data.vocab), data.vocab)
    export_dir = caption_export.export_saved_model(
        model, caption_export.build_pyramid(config), data.vocab,
        os.path.join(root, "export"))
    serve = tf.saved_model.load(export_dir).signatures["feature_maps"]
    for split, cached in (("val", data.validation_features),
                          ("test", data.test_features)):
      cached = next(iter(cached))
      paths = data.image_paths[split]
      self.assertLen(paths, cached["features_0"].shape[0])
      for row, path in enumerate(paths):
        jpeg = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        served = serve(images=jpeg[None])
        self.assertEqual(sorted(served), ["features_0", "features_1"])
        for key, value in served.items():
          self.assertAllClose(value[0], cached[key][row], rtol=1e-5,
                              atol=1e-5, msg=f"{path} {key}")
          # Degenerate if the maps were all zero (dead ReLUs).
          self.assertGreater(float(tf.reduce_max(tf.abs(value))), 0.0)


class WorkdirTest(tf.test.TestCase):

  def _workdir(self):
    """A captioning run's files: config.json, vocab.json, final.weights.h5."""
    workdir = self.create_tempdir().full_path
    model, pyramid, vocab = tiny_run(seed=1)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(tiny_config().to_json_best_effort(indent=2))
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
