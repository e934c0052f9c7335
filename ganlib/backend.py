"""Facts about the Keras backend that layers and the training step both need.

Kept apart from :mod:`ganlib.training` so that layers can ask them without importing
the training machinery.
"""

import keras

BACKEND = keras.backend.backend()


def upconv_mode():
    """How `ganlib.layers.UpConv` computes its transposed convolution on this backend.

    "phases" (ordinary convolutions) on JAX, whose XLA CPU transposed convolution
    is ~9x slower; "transpose" elsewhere, where the native op is the faster one.
    Both give the same numbers within float round-off.
    """
    return "phases" if BACKEND == "jax" else "transpose"
