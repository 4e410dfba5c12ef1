"""WS-RAM: Wake-Sleep Recurrent Attention Models in TensorFlow 2 / Keras 3."""
