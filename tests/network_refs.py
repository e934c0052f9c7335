"""Helpers the network tests share: a readable layer listing and numpy references."""

import numpy as np


def layer_sequence(network):
    """The network's layers in Keras' order, short names, conv widths appended."""
    short = {"BatchNormalization": "BN", "LeakyReLU": "LR"}
    return " ".join(short.get(type(layer).__name__, type(layer).__name__) + str(getattr(layer, "filters", ""))
                    for layer in network.layers)


def numpy_conv_same(x, kernel):
    """Stride-1 'same' convolution (B, H, W, C) * (k, k, C, O), odd k, no bias."""
    k = kernel.shape[0]
    p = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    h, w = x.shape[1:3]
    return sum(np.einsum("bhwc,co->bhwo", xp[:, i:i + h, j:j + w], kernel[i, j]) for i in range(k) for j in range(k))


def randomize_weights(network, rng):
    """Non-trivial weights for a value test: BatchNorm variances in [0.5, 1.5], the rest N(0, 0.5)."""
    for layer in network.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else
                               rng.normal(0, 0.5, w.shape) for w in layer.weights])
