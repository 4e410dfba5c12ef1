"""WS-RAM: Wake-Sleep Recurrent Attention Models in TensorFlow 2 / Keras 3.

    import wsram_tf
    model = wsram_tf.GlimpseClassifier(num_classes=10, variant="wsram_qc")
    model.compile()
    model.fit(images, labels, epochs=...)
    wsram_tf.GlimpseClassifier.from_preset("translated_mnist")  # trained

Importing the package registers both models with Keras, so
`keras.models.load_model("m.keras")` needs no custom_objects.
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# pylint: disable=g-import-not-at-top,wrong-import-position
from wsram_tf.captioner.model import GlimpseCaptioner
from wsram_tf.classifier.model import GlimpseClassifier
from wsram_tf.variants import VARIANTS

__all__ = ["GlimpseClassifier", "GlimpseCaptioner", "VARIANTS"]
