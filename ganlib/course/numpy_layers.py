"""numpy forward passes of the Keras layers the architectural exercises build, in float64.

The graded tests of an architectural exercise build the student's block in the
sandboxed child, read back its layers and weights, and compare its output with these
functions run on the same weights (so the reference is independent of Keras). They
take channels-last arrays and Keras' weight layouts:

    conv2d(x, kernel, bias=None, strides=1, padding="same")   kernel (k, k, C_in, C_out)
    batch_norm(x, gamma, beta, mean, var, epsilon)            inference mode
    dense(x, kernel, bias=None)                               kernel (D_in, D_out)
    leaky_relu(x, 0.2), relu(x), glu(x), tanh(x), upsample_nearest(x, 2), replicate_concat(h, c),
    reflection_pad(x, 1)

Graded exercises cannot import this module (the sandbox allows only the ganlib names a
lesson lists), so it is no answer key for the exercises that use Keras layers.
"""

import numpy as np

__all__ = ["batch_norm", "conv2d", "dense", "glu", "leaky_relu", "random_batch_norm", "reflection_pad", "relu",
           "replicate_concat", "tanh", "upsample_nearest"]


def _pads(size, kernel, stride, padding):
    """(before, after) padding of one spatial axis, as TensorFlow/Keras compute "same"."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x, kernel, bias=None, strides=1, padding="same"):
    """Keras' Conv2D (cross-correlation): x (B, H, W, C), kernel (kh, kw, C, F) -> (B, H', W', F)."""
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    (top, bottom), (left, right) = (_pads(x.shape[1], kh, strides, padding),
                                    _pads(x.shape[2], kw, strides, padding))
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (x.shape[1] - kh) // strides + 1
    out_w = (x.shape[2] - kw) // strides + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, dy:dy + strides * (out_h - 1) + 1:strides, dx:dx + strides * (out_w - 1) + 1:strides]
            out += np.einsum("bhwc,cf->bhwf", patch, kernel[dy, dx])
    return out if bias is None else out + np.asarray(bias, np.float64)


def batch_norm(x, gamma, beta, mean, var, epsilon):
    """BatchNormalization in inference mode, over the last axis."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in (gamma, beta, mean, var))
    return gamma * (np.asarray(x, np.float64) - mean) / np.sqrt(var + epsilon) + beta


def dense(x, kernel, bias=None):
    out = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    return out if bias is None else out + np.asarray(bias, np.float64)


def leaky_relu(x, alpha=0.2):
    return np.where(x >= 0, x, alpha * x)


def relu(x):
    return np.maximum(x, 0.0)


def glu(x):
    """a * sigmoid(b) with [a ; b] the two halves of the last axis."""
    a, b = np.split(np.asarray(x, np.float64), 2, axis=-1)
    return a / (1.0 + np.exp(-b))


def upsample_nearest(x, factor=2):
    return np.repeat(np.repeat(np.asarray(x, np.float64), factor, axis=1), factor, axis=2)


def replicate_concat(h, c):
    """[h ; c replicated at every pixel] on the channels: (B, H, W, C), (B, D) -> (B, H, W, C + D)."""
    h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
    return np.concatenate([h, np.broadcast_to(c[:, None, None, :], h.shape[:3] + c.shape[1:])], axis=-1)


def random_batch_norm(rng, channels):
    """[gamma, beta, moving_mean, moving_var] (float32) far from the identity, so that a test
    run in inference mode sees whether the moving statistics are used."""
    return [rng.uniform(0.5, 1.5, channels).astype(np.float32),
            (rng.normal(size=channels) * 0.3).astype(np.float32),
            (rng.normal(size=channels) * 0.2).astype(np.float32),
            rng.uniform(0.5, 2.0, channels).astype(np.float32)]


def reflection_pad(x, pad=1):
    """Mirror padding of the two spatial axes without repeating the edge (PyTorch's
    `ReflectionPad2d`, `ganlib.layers.ReflectionPadding2D`): (B, H, W, C) -> (B, H+2p, W+2p, C)."""
    return np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def tanh(x):
    return np.tanh(np.asarray(x, np.float64))
