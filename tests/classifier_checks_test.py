"""Classifier settings that cannot run fail before a run writes anything,
naming the field (issue 10 item 9); configs/images.py and the cluttered
presets of configs/mnist.py load locked and pass those checks."""

from absl.testing import parameterized
import tensorflow as tf

from wsram_tf.configs import images as image_configs
from wsram_tf.configs import mnist as mnist_configs
from wsram_tf import run
from wsram_tf.classifier import data as data_lib


def _images(**fields):
  """configs/images.py:wsram_qc,tiny with data.dir set; "a.b" overrides."""
  config = image_configs.get_config("wsram_qc,tiny")
  config.data.dir = "/nowhere/images"  # Checks must not read the data.
  for field, value in fields.items():
    section, name = field.split(".")
    config[section][name] = value
  return config


class ConfigCheckTest(parameterized.TestCase, tf.test.TestCase):

  def _refused(self, pattern: str, **fields):
    with self.assertRaisesRegex(ValueError, pattern):
      run.check_config(_images(**fields))

  def test_defaults_pass(self):
    run.check_config(_images())

  def test_zero_glimpses_names_the_field(self):
    self._refused(r"config.model: num_glimpses=0: must be an int >= 1",
                  **{"model.num_glimpses": 0})

  def test_window_larger_than_the_canvas_names_the_fields(self):
    self._refused(r"config.data.canvas_size=40: patch_size \* "
                  r"max\(scale_factors\) = 12 \* 4 = 48 pixels is larger "
                  r"than the 40x40 images",
                  **{"data.canvas_size": 40})

  def test_context_larger_than_the_canvas_names_the_fields(self):
    self._refused("config.data.canvas_size=48: context_size=50 is larger "
                  "than the 48x48 images",
                  **{"data.canvas_size": 48, "model.context_size": 50})

  def test_negative_num_classes_names_the_field(self):
    self._refused("config.model.num_classes=-1", **{"model.num_classes": -1})

  @parameterized.parameters(
      ({"data.name": "imagefolder"}, "config.data.name='imagefolder'.*"
       "translated_mnist, cluttered_mnist, image_folder, tfds_images"),
      ({"data.dir": ""}, "config.data.dir is empty"),
      ({"data.name": "tfds_images"}, "config.data.tfds_name is empty"),
      ({"data.channels": 2}, "config.data: channels=2"),
      ({"data.resize": "crop"}, "config.data: resize='crop'"),
      ({"model.scale_factors": ()}, "config.model: patch_size / scale_factors"),
  )
  def test_data_and_glimpse_fields(self, fields, pattern):
    self._refused(pattern, **fields)

  def test_num_classes_is_checked_against_the_data(self):
    names = ("ants", "bees", "cats")
    self.assertEqual(data_lib.resolve_num_classes(0, names), 3)
    self.assertEqual(data_lib.resolve_num_classes(3, names), 3)
    with self.assertRaisesRegex(ValueError, "num_classes=2 is smaller than "
                                "the 3 classes of the data .ants, bees, cats."
                                "; set it to 3 or to 0"):
      data_lib.resolve_num_classes(2, names)
    with self.assertRaisesRegex(ValueError, "num_classes=10 is larger"):
      data_lib.resolve_num_classes(10, names)


class ImageConfigsTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(*image_configs.VARIANTS)
  def test_every_variant_loads_locked(self, variant):
    config = image_configs.get_config(variant)
    self.assertTrue(config.is_locked)
    self.assertEqual((config.variant, config.task, config.data.name),
                     (variant, "classifier", "image_folder"))

  def test_same_variants_and_shared_modifiers_as_mnist(self):
    self.assertEqual(image_configs.VARIANTS, mnist_configs.VARIANTS)
    self.assertContainsSubset(image_configs.MODIFIERS, mnist_configs.MODIFIERS)
    self.assertEqual(image_configs.get_config().variant, "wsram_qc")
    # The shared model section means the same in both.
    self.assertEqual(image_configs.get_config("var_c,ram_net").model,
                     _with_classes(mnist_configs.get_config("var_c,ram_net"),
                                   0).model)

  def test_tiny_and_an_unknown_preset(self):
    config = image_configs.get_config("var_c,tiny")
    self.assertEqual((config.preset, config.train.num_train_steps,
                      config.data.max_train_examples), ("var_c,tiny", 4, 512))
    with self.assertRaisesRegex(ValueError, "configs/images.py: unknown "
                                "preset 'ram28'"):
      image_configs.get_config("ram28")


class ClutteredPresetsTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(("cluttered60", 60, 4, (1, 2, 4)),
                            ("cluttered100", 100, 8, (1, 2, 4, 8)))
  def test_the_ram_papers_settings(self, preset, side, pieces, factors):
    config = mnist_configs.get_config(f"var_c,{preset}")
    d, m = config.data, config.model
    self.assertEqual((d.name, d.canvas_size, d.clutter_pieces, d.clutter_size,
                      d.min_digit_size, d.max_digit_size),
                     ("cluttered_mnist", side, pieces, 8, 28, 28))
    self.assertEqual((m.num_glimpses, m.patch_size, tuple(m.scale_factors),
                      config.variant), (4, 12, factors, "var_c"))
    run.check_config(config)
    tiny = mnist_configs.get_config(f"{preset},tiny")
    self.assertEqual(tiny.data.canvas_size, side)


def _with_classes(config, num_classes):
  config.model.num_classes = num_classes
  return config


if __name__ == "__main__":
  tf.test.main()
