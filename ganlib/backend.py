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


def _torch_bf16_conv_layout():
    """PyTorch on a CPU without native bfloat16 convolutions (no AVX512-BF16: oneDNN declines,
    and `slow_conv2d` runs) refuses the backward pass of some bfloat16 convolutions (e.g. a
    4x4 valid convolution to one channel, every discriminator's logit) with "slow_conv2d:
    grad_weight must be contiguous", because Keras 3.15's torch backend converts every conv
    kernel to the channels-last memory format. Under `mixed_bfloat16` on the CPU, ganlib leaves
    bfloat16 tensors in the layout they have; float32 and GPU tensors are untouched."""
    import torch
    from keras.src.backend.torch import nn as torch_nn

    convert = torch_nn._maybe_convert_to_channels_last
    if getattr(convert, "ganlib_bf16", False):
        return

    def keep_bf16_layout(tensor):
        if tensor.dtype == torch.bfloat16 and tensor.device.type == "cpu":
            return tensor
        return convert(tensor)

    keep_bf16_layout.ganlib_bf16 = True
    torch_nn._maybe_convert_to_channels_last = keep_bf16_layout


def conv_by_patches(inputs, kernel, strides=1):
    r"""A 'valid' 2-D convolution (channels last, no dilation, one group) as one matrix product:
    the $k_h k_w$ shifted, strided views of `inputs` concatenated along the channels (the image
    patches, ordered as the kernel's (row, column, channel) axes) times the kernel reshaped to
    $(k_h k_w C_{in}, C_{out})$. The same numbers as the convolution within float round-off,
    in Keras ops (any backend).

    Input shapes: `inputs` (B, H, W, C_in), `kernel` (k_h, k_w, C_in, C_out).
    Output shape: (B, (H - k_h) // s_h + 1, (W - k_w) // s_w + 1, C_out).
    """
    from keras import ops

    kh, kw, cin, cout = kernel.shape
    sh, sw = (strides, strides) if isinstance(strides, int) else tuple(strides)
    oh, ow = (inputs.shape[1] - kh) // sh + 1, (inputs.shape[2] - kw) // sw + 1
    patches = ops.concatenate([inputs[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
                               for i in range(kh) for j in range(kw)], axis=-1)
    return ops.matmul(patches, ops.reshape(kernel, (kh * kw * cin, cout)))


MIN_PATCH_CHANNELS = 64 * 64


def small_output_conv(inputs_shape, kernel_shape, strides=1, padding="valid", data_format="channels_last",
                      dilation_rate=1):
    """Whether :func:`conv_by_patches` replaces JAX's convolution: a 'valid' channels-last 2-D
    convolution without dilation or groups whose output is smaller than its kernel along a
    spatial axis (e.g. HDGAN's 5x5 convolution from 8x8 to 4x4, or a 4x4 one from 5x5 to 2x2),
    with at least `MIN_PATCH_CHANNELS` input x output channels (gradients at batch 24 on one
    thread: a discriminator's one-channel 4x4 logit, 128 -> 1, XLA 0.23 ms, patches 0.50 ms;
    64 -> 64 from 8x8 with 5x5, XLA 23 ms, patches 3.5 ms).

    The gradient with respect to the input of such a convolution is a convolution of the
    small output padded by more than its size, which XLA's CPU backend (jax 0.10) computes
    at 1-2 GFLOP/s: 0.63 s for HDGAN's (B=2, 8, 8, 512) 5x5 convolution to 512 channels,
    against 0.05 s for the same convolution from 9x9 (`tests/benchmarks/small_conv.py`).
    As image patches times the kernel, its gradients are two matrix products and the
    patches' slices (0.01 s).
    """
    norm = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    if len(inputs_shape) != 4 or len(kernel_shape) != 4 or data_format != "channels_last":
        return False
    if str(padding).lower() != "valid" or norm(dilation_rate) != (1, 1) or inputs_shape[-1] != kernel_shape[2]:
        return False
    if any(n is None for n in inputs_shape[1:3]):
        return False
    if kernel_shape[2] * kernel_shape[3] < MIN_PATCH_CHANNELS:
        return False
    out = [(n - k) // s + 1 for n, k, s in zip(inputs_shape[1:3], kernel_shape[:2], norm(strides))]
    return min(out) >= 1 and any(o < k for o, k in zip(out, kernel_shape[:2]))


def _jax_small_output_conv():
    """On JAX's CPU, Keras' `conv` computes the convolutions `small_output_conv` selects by
    :func:`conv_by_patches`; every other convolution (and every one on a GPU) is unchanged."""
    import jax
    from keras.src import backend as keras_backend
    from keras.src.backend.jax import nn as jax_nn

    conv = jax_nn.conv
    if getattr(conv, "ganlib_patches", False):
        return

    def conv_small_outputs_by_patches(inputs, kernel, strides=1, padding="valid", data_format=None,
                                      dilation_rate=1):
        data_format = keras_backend.standardize_data_format(data_format)
        if (jax.default_backend() == "cpu"
                and small_output_conv(tuple(inputs.shape), tuple(kernel.shape), strides, padding, data_format,
                                      dilation_rate)):
            kernel = jax_nn.convert_to_tensor(kernel)
            return conv_by_patches(jax_nn.convert_to_tensor(inputs, dtype=kernel.dtype), kernel, strides)
        return conv(inputs, kernel, strides, padding, data_format, dilation_rate)

    conv_small_outputs_by_patches.ganlib_patches = True
    jax_nn.conv = conv_small_outputs_by_patches


if BACKEND == "torch":
    _torch_bf16_conv_layout()
elif BACKEND == "jax":
    _jax_small_output_conv()
