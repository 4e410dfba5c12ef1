"""pipelines/synthetic_captions.py: layout, true captions, determinism."""

import os
import re
import tempfile

import tensorflow as tf

from wsram_tf.pipelines import flickr8k
from wsram_tf.pipelines import synthetic_captions
from tests import builders

WORDS = synthetic_captions.WORDS
_WORD = "|".join(WORDS)
# "a <sizes> X to the left of a <sizes> Y" and its three siblings.
_RELATION = re.compile(
    rf"^an? (?:\w+ )*?({_WORD}) (to the left of|to the right of|above|below) "
    rf"an? (?:\w+ )*?({_WORD})$")


class SyntheticCaptionsTest(tf.test.TestCase):

  def _generate(self, seed: int = 0, num_images: int = 20):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    pictures = synthetic_captions.generate(out, *builders.tiny_digits(40),
                                           num_images, 96, seed)
    return out, pictures

  def test_writes_the_original_flickr8k_layout(self):
    out, _ = self._generate()
    for name in ("Flickr8k.token.txt", "Flickr_8k.trainImages.txt",
                 "Flickr_8k.devImages.txt", "Flickr_8k.testImages.txt"):
      self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
    images = os.listdir(os.path.join(out, "Flicker8k_Dataset"))
    self.assertLen(images, 20)
    image = tf.io.decode_jpeg(tf.io.read_file(
        os.path.join(out, "Flicker8k_Dataset", images[0])))
    self.assertEqual(image.shape, (96, 96, 3))

  def test_read_examples_finds_five_captions_per_image(self):
    out, _ = self._generate()
    examples = flickr8k.read_examples(out)
    self.assertEqual([len(examples[s]) for s in flickr8k.SPLITS], [16, 2, 2])
    for split in flickr8k.SPLITS:
      for example in examples[split]:
        self.assertLen(set(example.captions), 5)

  def test_deterministic_for_a_seed(self):
    first, _ = self._generate(seed=3)
    second, _ = self._generate(seed=3)
    other, _ = self._generate(seed=4)
    read = lambda root, name: open(os.path.join(root, name), "rb").read()
    image = os.path.join("Flicker8k_Dataset", "synth_00007.jpg")
    self.assertEqual(read(first, "Flickr8k.token.txt"),
                     read(second, "Flickr8k.token.txt"))
    self.assertEqual(read(first, image), read(second, image))
    self.assertNotEqual(read(first, "Flickr8k.token.txt"),
                        read(other, "Flickr8k.token.txt"))

  def test_captions_name_exactly_the_digits_present(self):
    _, pictures = self._generate()
    for picture in pictures:
      present = {d.label for d in picture.digits}
      named = set()
      for caption in picture.captions:
        words = caption.split()
        mentioned = {i for i, w in enumerate(WORDS) if w in words}
        mentioned |= {int(w) for w in words if w.isdigit()}
        self.assertNotEmpty(mentioned, caption)
        self.assertContainsSubset(mentioned, present, caption)
        named |= mentioned
      self.assertEqual(named, present, picture.captions)

  def test_relations_match_the_geometry(self):
    _, pictures = self._generate(num_images=40)
    checked = 0
    for picture in pictures:
      along = {d.label: d.box[1 - picture.axis] for d in picture.digits}
      for caption in picture.captions:
        match = _RELATION.match(caption)
        if match:
          x, relation, y = match.groups()
          earlier = relation in ("to the left of", "above")
          self.assertEqual(relation in ("to the left of", "to the right of"),
                           picture.axis == 0, caption)
          self.assertEqual(along[WORDS.index(x)] < along[WORDS.index(y)],
                           earlier, caption)
          checked += 1
    self.assertGreater(checked, 5)

  def test_digits_are_inside_and_apart_with_sizes_in_class_order(self):
    _, pictures = self._generate(num_images=40)
    for picture in pictures:
      axis = 1 - picture.axis  # Box coordinate along the reading direction.
      boxes = [d.box for d in picture.digits]
      for top, left, height, width in boxes:
        self.assertBetween(top, 0, 96 - height)
        self.assertBetween(left, 0, 96 - width)
      for before, after in zip(boxes, boxes[1:]):
        self.assertLessEqual(before[axis] + before[2 + axis], after[axis])
      by_class = sorted(picture.digits, key=lambda d: d.size_class)
      self.assertEqual([d.box[2] for d in by_class],
                       sorted(d.box[2] for d in by_class))

  def test_bad_digit_arrays_are_rejected(self):
    digits, labels = builders.tiny_digits(40)
    with self.assertRaisesRegex(ValueError, "digits must be"):
      synthetic_captions.generate(self.get_temp_dir(), digits[0], labels, 2)
    with self.assertRaisesRegex(ValueError, "three classes"):
      synthetic_captions.generate(self.get_temp_dir(), digits[:2], labels[:2],
                                  2)


if __name__ == "__main__":
  tf.test.main()
