"""Train a hard-attention classifier on your own numpy arrays, then save,
load and serve it: the Python API end to end.

  python examples/train_on_arrays.py --out=/tmp/example
  python examples/train_on_arrays.py --out=/tmp/example --tiny  # seconds

The arrays here are a synthetic stand-in (one of four patterns at a random
corner of a black canvas, so the class needs a glimpse): put your own
`images` float32 [N, H, W, C] in [0, 1] and `labels` int [N] in their place.
"""

import json
import os

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

import wsram_tf

_OUT = flags.DEFINE_string("out", "/tmp/wsram_example", "Output folder.")
_TINY = flags.DEFINE_bool("tiny", False, "A seconds-long run (for tests).")


def corner_patterns(num: int, side: int = 32, seed: int = 0):
  """Four patterns of equal mass at random corners: (images, labels)."""
  rng = np.random.default_rng(seed)
  patch = 8
  grid = np.indices((patch, patch))
  patterns = np.stack([np.ones((patch, patch)),
                       (grid.max(0) % 7 == 0) | (grid.min(0) == 0),
                       (abs(grid[0] - grid[1]) < 2),
                       (grid.sum(0) // 2 % 2)]).astype(np.float32)
  patterns /= patterns.sum(axis=(1, 2), keepdims=True) / patterns[0].sum()
  labels = rng.integers(0, 4, num)
  images = np.zeros((num, side, side, 1), np.float32)
  for i, (label, corner) in enumerate(zip(labels, rng.integers(0, 4, num))):
    row, col = (corner // 2) * (side - patch), (corner % 2) * (side - patch)
    images[i, row:row + patch, col:col + patch, 0] = np.minimum(
        patterns[label], 1.0)
  return images, labels.astype(np.int32)


def main(argv):
  del argv
  tiny = _TINY.value
  os.makedirs(_OUT.value, exist_ok=True)
  images, labels = corner_patterns(64 if tiny else 4096)
  test_images, test_labels = corner_patterns(32 if tiny else 1024, seed=1)

  keras.utils.set_random_seed(0)
  model = wsram_tf.GlimpseClassifier(
      num_classes=4, variant="wsram_qc", num_glimpses=2, patch_size=8,
      scale_factors=(1, 2), context_size=4, hidden_size=16 if tiny else 64,
      num_samples=2 if tiny else 5)
  model.compile()  # Adam at the variant's tuned rates.
  checkpoint = os.path.join(_OUT.value, "best.keras")
  model.fit(images, labels, batch_size=32, epochs=1 if tiny else 20,
            validation_split=0.1, verbose=0 if tiny else 2,
            callbacks=[keras.callbacks.EarlyStopping(
                           monitor="val_accuracy", patience=3,
                           restore_best_weights=True),
                       keras.callbacks.ModelCheckpoint(checkpoint,
                                                       save_best_only=True)])
  results = model.evaluate(test_images, test_labels, return_dict=True,
                           verbose=0)

  # Save, load (no custom_objects: importing wsram_tf registers the model)
  # and check the loaded model predicts the same.
  path = os.path.join(_OUT.value, "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  same = bool(np.array_equal(model.predict(test_images, verbose=0),
                             loaded.predict(test_images, verbose=0)))

  # Where it looked, and a SavedModel that TensorFlow alone serves.
  glimpses = loaded.predict_glimpses(test_images[:4])
  served = tf.saved_model.load(loaded.export(os.path.join(_OUT.value,
                                                          "serving")))
  probabilities = served.signatures["serve"](
      images=tf.constant(test_images[:4]))["probabilities"].numpy()

  summary = {"test": {k: float(v) for k, v in results.items()},
             "loaded_predicts_the_same": same,
             "first_glimpse_locations": glimpses["locations"][:, 0].tolist(),
             "served_classes": probabilities.argmax(-1).tolist()}
  with open(os.path.join(_OUT.value, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  app.run(main)
