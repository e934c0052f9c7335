"""Layers shared by several papers (each paper's own blocks live in its model file).

Every layer here uses `keras.ops` only, serialises with `get_config()`, and runs on
TensorFlow, JAX and PyTorch.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable("ganlib")
class ReplicateConcat(layers.Layer):
    r"""Condition a feature map on a vector by spatial replication and concatenation.

    Reed et al. (2016, Sec. 4.1): "we replicate [the compressed text embedding]
    spatially and perform a depth concatenation" with the discriminator's 4x4
    feature map; StackGAN does the same in D and in Stage-II's G.

    $$\mathrm{out}[b, i, j] = [\,h[b, i, j] \,;\, c[b]\,]$$

    Input shape:
        `[h, c]`: h `(B, H, W, C)`, c `(B, D)`.

    Output shape:
        `(B, H, W, C + D)`.

    Example:
        >>> out = ReplicateConcat()([keras.ops.zeros((2, 4, 4, 8)), keras.ops.ones((2, 3))])
        >>> tuple(out.shape)
        (2, 4, 4, 11)
    """

    def call(self, inputs):
        h, c = inputs
        shape = ops.shape(h)
        c = ops.cast(c, h.dtype)
        tiled = ops.broadcast_to(c[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(c)[-1]))
        return ops.concatenate([h, tiled], axis=-1)

    def compute_output_shape(self, input_shape):
        h, c = input_shape
        channels = None if h[-1] is None or c[-1] is None else h[-1] + c[-1]
        return (*h[:-1], channels)
