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


if BACKEND == "torch":
    _torch_bf16_conv_layout()
