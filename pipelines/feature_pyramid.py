"""A frozen CNN feature pyramid for caption attention (paper §5.2, docs/design.md §5).

The attention picks a layer ("scale") and a location inside it; the layers are
feature maps tapped at several depths of one frozen backbone. Backbones:

- `vgg16`, `resnet50`, `mobilenet_v2`: `keras.applications` models built with
  `include_top=False`. `weights` is "imagenet" (Keras downloads it, which needs
  internet), a local `.h5`/`.weights.h5` notop file, or "" / "none" / None
  for a random frozen network.
- `small`: a tiny from-scratch CNN (three strided convolutions, two taps) that
  runs on a CPU in milliseconds; random and frozen unless given a weights file.

`build_feature_pyramid` returns the model (preprocessed image -> list of maps,
shallow first) and the matching preprocessing of 0..255 RGB images.
`resize_images` is the one way an image reaches the CNN's square input: the
feature cache, the captioner's pictures and its export all call it, so
training and serving see the same pixels.
"""

import os
from typing import Callable, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

# Default taps per backbone, shallow (finer) first; sizes are for a 224 input.
DEFAULT_TAPS = {
    # 28x28x512 and 14x14x512: the last convolutions of blocks 4 and 5.
    "vgg16": ("block4_conv3", "block5_conv3"),
    # 14x14x1024 and 7x7x2048 at 224: the ends of stages 4 and 5.
    "resnet50": ("conv4_block6_out", "conv5_block3_out"),
    # 14x14x576 and 7x7x1280 at 224.
    "mobilenet_v2": ("block_13_expand_relu", "out_relu"),
    # stride 4 x 32 channels and stride 8 x 64 channels.
    "small": ("conv2", "conv3"),
}
BACKBONES = tuple(DEFAULT_TAPS)
NO_WEIGHTS = ("", "none", "None", "random")


def resize_images(images, image_size: int) -> tf.Tensor:
  """Any-size 0..255 RGB [..., H, W, 3] -> float32 [..., S, S, 3].

  Squashed, not cropped, so every region stays visible to the attention;
  antialiased so that large photographs do not alias.
  """
  return tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size),
                         antialias=True)


class FeaturePyramid(NamedTuple):
  """A frozen backbone and how to feed it."""
  model: keras.Model  # preprocessed [B, H, W, 3] -> list of [B, h_k, w_k, c_k].
  preprocess: Callable[[tf.Tensor], tf.Tensor]  # 0..255 RGB -> model input.
  taps: tuple[str, ...]  # Layer names of the maps, in output order.
  backbone: str  # One of BACKBONES.

  def __call__(self, images: tf.Tensor) -> list[tf.Tensor]:
    """Feature maps of a batch of 0..255 RGB images [B, H, W, 3]."""
    maps = self.model(self.preprocess(tf.cast(images, tf.float32)),
                      training=False)
    return list(maps) if isinstance(maps, (list, tuple)) else [maps]


def build_feature_pyramid(backbone: str = "vgg16",
                          weights: str | None = None,
                          image_size: int = 224,
                          taps: Sequence[str] | None = None,
                          seed: int = 0) -> FeaturePyramid:
  """The frozen backbone with outputs at `taps` (default: DEFAULT_TAPS)."""
  if backbone not in DEFAULT_TAPS:
    raise ValueError(f"feature_pyramid: unknown backbone {backbone!r}; valid "
                     f"backbones are {', '.join(BACKBONES)}.")
  weights = None if weights in NO_WEIGHTS else weights
  if weights is not None and weights != "imagenet":
    if not os.path.isfile(os.path.expanduser(weights)):
      raise FileNotFoundError(
          f"feature_pyramid: weights file for backbone {backbone!r} not found: "
          f"{weights!r} (use 'imagenet', a local file, or '' for random).")
    weights = os.path.expanduser(weights)
  taps = tuple(taps) if taps else DEFAULT_TAPS[backbone]
  shape = (image_size, image_size, 3)

  if backbone == "small":
    if weights == "imagenet":
      raise ValueError("feature_pyramid: backbone 'small' has no ImageNet "
                       "weights; use '' (random) or a local weights file.")
    base = _small_cnn(shape, seed)
    preprocess = lambda x: x / 127.5 - 1.0
  else:
    app, module = {
        "vgg16": (keras.applications.VGG16, keras.applications.vgg16),
        "resnet50": (keras.applications.ResNet50, keras.applications.resnet50),
        "mobilenet_v2": (keras.applications.MobileNetV2,
                         keras.applications.mobilenet_v2),
    }[backbone]
    base = app(include_top=False, weights=weights, input_shape=shape)
    if weights is None:
      _seeded_kernels(base, seed)
    preprocess = module.preprocess_input

  names = [layer.name for layer in base.layers]
  for tap in taps:
    if tap not in names:
      raise ValueError(
          f"feature_pyramid: backbone {backbone!r} has no layer {tap!r}; its "
          f"last layers are {', '.join(names[-12:])}.")
  if backbone == "small" and weights is not None:
    base.load_weights(weights)
  model = keras.Model(base.input, [base.get_layer(t).output for t in taps],
                      name=f"{backbone}_pyramid")
  model.trainable = False  # Frozen: features are computed once and cached.
  return FeaturePyramid(model, preprocess, taps, backbone)


def _small_cnn(shape: tuple[int, int, int], seed: int) -> keras.Model:
  """Three stride-2 3x3 ReLU convolutions: strides 2, 4, 8."""
  inputs = keras.Input(shape)
  x = inputs
  for i, width in enumerate((16, 32, 64)):
    x = keras.layers.Conv2D(
        width, 3, strides=2, padding="same", activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=seed + i),
        name=f"conv{i + 1}")(x)
  return keras.Model(inputs, x, name="small")


def _seeded_kernels(model: keras.Model, seed: int) -> None:
  """Kernels drawn from `seed`, so a random backbone is the same network in
  every run (keras.applications takes no seed, and seeding Keras globally would
  change the caller's random streams). Biases and batch-norm statistics keep
  their constant initial values."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
      continue
    shape = tuple(kernel.shape)
    receptive = int(np.prod(shape[:-2]))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      # Each output sees one input channel: He scaling keeps the signal, where
      # Glorot's would shrink it to ~0 through MobileNet's 17 blocks.
      limit = np.sqrt(6.0 / receptive)
    else:
      limit = np.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
    kernel.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
