"""Facts about the Keras backend that layers and the training step both need.

Kept apart from :mod:`ganlib.training` so that layers can ask them without importing
the training machinery.
"""

import os

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


def _pair(value):
    """A stride or dilation rate given as one int or as (rows, columns), as a pair."""
    return (value, value) if isinstance(value, int) else tuple(value)


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
    sh, sw = _pair(strides)
    oh, ow = (inputs.shape[1] - kh) // sh + 1, (inputs.shape[2] - kw) // sw + 1
    patches = ops.concatenate([inputs[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
                               for i in range(kh) for j in range(kw)], axis=-1)
    return ops.matmul(patches, ops.reshape(kernel, (kh * kw * cin, cout)))


def conv_transpose_by_phases(inputs, kernel, strides=2, padding="valid"):
    r"""Keras' 2-D transposed convolution (channels last, no dilation, no `output_padding`) as
    one ordinary convolution: output pixel $(s_h m + a, s_w n + b)$ of the full ('valid') result
    is $\sum_{i, j} x[m - i, n - j]\, K[a + i s_h, b + j s_w]$, a $T_h \times T_w$ convolution
    ($T = \lceil k / s \rceil$, the kernel zero-padded to $T s$ taps) of the input padded by
    $T - 1$, with the $s_h s_w$ phases as $s_h s_w C_{out}$ output channels, interleaved
    (depth-to-space), then cropped as `padding` asks: 'valid' $(n - 1) s + \max(k, s)$ pixels,
    'same' $n s$ from offset $k - 1 - \min(\lceil (s + k - 2) / 2 \rceil, k - 1)$ (Keras' and
    TensorFlow's convention). The same numbers as `keras.ops.conv_transpose` within float
    round-off, in Keras ops (any backend); a 3x3 kernel of stride 2 costs 16/9 of its
    multiplications (zero taps), a 4x4 one none.

    Input shapes: `inputs` (B, H, W, C_in), `kernel` (k_h, k_w, C_out, C_in) (Keras' layout).
    Output shape: (B, H_out, W_out, C_out) as `keras.ops.conv_transpose`.
    """
    from keras import ops

    kh, kw, cout, cin = kernel.shape
    s = _pair(strides)
    taps = [-(-k // st) for k, st in zip((kh, kw), s)]
    kernel = ops.pad(kernel, ((0, taps[0] * s[0] - kh), (0, taps[1] * s[1] - kw), (0, 0), (0, 0)))
    kernel = ops.flip(ops.reshape(kernel, (taps[0], s[0], taps[1], s[1], cout, cin)), axis=(0, 2))
    kernel = ops.reshape(ops.transpose(kernel, (0, 2, 5, 1, 3, 4)), (taps[0], taps[1], cin, s[0] * s[1] * cout))
    x = ops.pad(inputs, ((0, 0), (taps[0] - 1,) * 2, (taps[1] - 1,) * 2, (0, 0)))
    y = ops.conv(x, kernel, padding="valid")                   # (B, H + T_h - 1, W + T_w - 1, s_h s_w C_out)
    rows, cols = y.shape[1], y.shape[2]
    y = ops.reshape(y, (-1, rows, cols, s[0], s[1], cout))
    y = ops.reshape(ops.transpose(y, (0, 1, 3, 2, 4, 5)), (-1, rows * s[0], cols * s[1], cout))
    crops = []
    for n, k, st, full in zip(inputs.shape[1:3], (kh, kw), s, (rows * s[0], cols * s[1])):
        if str(padding).lower() == "valid":
            start, size = 0, (n - 1) * st + max(k, st)
        else:
            start, size = k - 1 - min(-(-(st + k - 2) // 2), k - 1), n * st
        crops.append((start, size, max(start + size - full, 0)))
    if any(extra for *_, extra in crops):
        y = ops.pad(y, ((0, 0), (0, crops[0][2]), (0, crops[1][2]), (0, 0)))
    (r0, nr, _), (c0, nc, _) = crops
    return y[:, r0:r0 + nr, c0:c0 + nc, :]


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
    if len(inputs_shape) != 4 or len(kernel_shape) != 4 or data_format != "channels_last":
        return False
    if str(padding).lower() != "valid" or _pair(dilation_rate) != (1, 1) or inputs_shape[-1] != kernel_shape[2]:
        return False
    if any(n is None for n in inputs_shape[1:3]):
        return False
    if kernel_shape[2] * kernel_shape[3] < MIN_PATCH_CHANNELS:
        return False
    out = [(n - k) // s + 1 for n, k, s in zip(inputs_shape[1:3], kernel_shape[:2], _pair(strides))]
    return min(out) >= 1 and any(o < k for o, k in zip(out, kernel_shape[:2]))


def phase_conv_transpose(inputs_shape, kernel_shape, strides=1, padding="valid", output_padding=None,
                         data_format="channels_last", dilation_rate=1):
    """Whether :func:`conv_transpose_by_phases` replaces JAX's transposed convolution: a 2-D
    channels-last one with a stride above 1, no dilation and no `output_padding` (e.g.
    pix2pixHD's 3x3 up-sampling steps, pix2pix's and DCGAN's 4x4 ones).

    XLA's CPU backend (jax 0.10) computes a strided transposed convolution as a convolution of
    the input dilated by zeros, at 0.5-0.6 GFLOP/s for pix2pixHD's 3x3 steps (the gradient of
    1024 -> 512 channels from 32x64: 104 s on one thread), where the phases take 3.4 s
    (`tests/benchmarks/conv_transpose.py`).
    """
    if len(inputs_shape) != 4 or len(kernel_shape) != 4 or data_format != "channels_last":
        return False
    if output_padding is not None or _pair(dilation_rate) != (1, 1) or str(padding).lower() not in ("valid", "same"):
        return False
    if inputs_shape[-1] != kernel_shape[3] or any(n is None for n in inputs_shape[1:3]):
        return False
    return max(_pair(strides)) > 1


def _jax_cpu_convolutions():
    """On JAX's CPU, Keras' `conv` computes the convolutions `small_output_conv` selects by
    :func:`conv_by_patches`, and its `conv_transpose` the ones `phase_conv_transpose` selects
    by :func:`conv_transpose_by_phases`; every other convolution (and every one on a GPU) is
    unchanged."""
    import jax
    from keras.src import backend as keras_backend
    from keras.src.backend.jax import nn as jax_nn

    conv, conv_transpose = jax_nn.conv, jax_nn.conv_transpose
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

    def conv_transpose_strided_by_phases(inputs, kernel, strides=1, padding="valid", output_padding=None,
                                         data_format=None, dilation_rate=1):
        data_format = keras_backend.standardize_data_format(data_format)
        if (jax.default_backend() == "cpu"
                and phase_conv_transpose(tuple(inputs.shape), tuple(kernel.shape), strides, padding,
                                         output_padding, data_format, dilation_rate)):
            kernel = jax_nn.convert_to_tensor(kernel)
            return conv_transpose_by_phases(jax_nn.convert_to_tensor(inputs, dtype=kernel.dtype), kernel, strides,
                                            padding)
        return conv_transpose(inputs, kernel, strides, padding, output_padding, data_format, dilation_rate)

    conv_small_outputs_by_patches.ganlib_patches = True
    conv_transpose_strided_by_phases.ganlib_patches = True
    jax_nn.conv, jax_nn.conv_transpose = conv_small_outputs_by_patches, conv_transpose_strided_by_phases


def _fused_batch_norm_tensorflow(x, gamma, beta, epsilon):
    """TensorFlow's fused kernel (`FusedBatchNormV3`, NHWC) in training mode: the normalised
    `x`, the batch mean and the biased batch variance (the op returns the unbiased one, for its
    own moving average; Keras keeps the biased one). The raw op, as `tf.nn.fused_batch_norm`
    would raise `epsilon` to cuDNN's 1.001e-5."""
    import tensorflow as tf

    shape = tf.shape(x)
    x4 = x if x.shape.rank == 4 else tf.reshape(x, (-1, 1, 1, x.shape[-1]))
    empty = tf.constant([], x.dtype)
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x4, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=epsilon,
        exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
    n = tf.cast(tf.size(x4) // tf.shape(x4)[-1], variance.dtype)
    return tf.reshape(y, shape), mean, variance * (n - 1.0) / n


def _fused_batch_norm_torch(x, gamma, beta, epsilon):
    """PyTorch's fused kernel (`aten::batch_norm`, channels at axis 1, so a channels-last view)
    in training mode: the normalised `x`, the batch mean and the biased batch variance (the
    kernel's running variance, with momentum 1, is the unbiased one)."""
    import torch

    channels_first = x.permute(0, 3, 1, 2) if x.dim() == 4 else x
    mean = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
    variance = torch.ones_like(mean)
    y = torch.batch_norm(channels_first, gamma, beta, mean, variance, True, 1.0, epsilon, False)
    n = x.numel() // x.shape[-1]
    return (y.permute(0, 2, 3, 1) if x.dim() == 4 else y), mean, variance * ((n - 1) / n)


def fused_batch_norm_applies(layer, inputs, training, mask):
    """Whether `BatchNormalization` (patched by :func:`_fused_batch_norm`) takes the fused
    kernel: training mode on TensorFlow or PyTorch, float32 statistics, a 2-D or 4-D input
    normalised over its last axis with more than one value per channel, no mask, no renorm,
    no cross-replica statistics. Anything else goes through Keras' own `call`."""
    shape = tuple(inputs.shape)
    if len(shape) not in (2, 4) or any(n is None for n in shape[1:]):
        return False
    values_per_channel = None if shape[0] is None else shape[0] * (shape[1] * shape[2] if len(shape) == 4 else 1)
    return (training is True and layer.trainable and mask is None and not layer.renorm
            and not layer.synchronized and layer.axis in (-1, len(shape) - 1)
            and keras.backend.result_type(inputs.dtype, "float32") == "float32"
            and (values_per_channel is None or values_per_channel > 1))


def _fused_batch_norm():
    """On TensorFlow and PyTorch, Keras' `BatchNormalization` in training mode computes its batch
    statistics and normalises in the framework's fused kernel (one pass forward, one backward)
    instead of Keras' separate moments, subtraction and scaling: the same outputs, gradients
    and moving statistics within float round-off (a GAN run then drifts from Keras' own as from
    any round-off). The paper presets' TensorFlow steps 8-18% shorter on AttnGAN, HDGAN and
    MirrorGAN, StackGAN++'s within the noise; StackGAN++'s fast step on PyTorch about 15% shorter
    (README, paper presets against the reference code). `GANLIB_FUSED_BATCH_NORM=0` leaves Keras'
    layer alone."""
    from keras import ops
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    call = BatchNormalization.call
    if getattr(call, "ganlib_fused", False):
        return
    fused = _fused_batch_norm_tensorflow if BACKEND == "tensorflow" else _fused_batch_norm_torch

    def call_fused(self, inputs, training=None, mask=None):
        if not fused_batch_norm_applies(self, inputs, training, mask):
            return call(self, inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = (x.shape[-1],)
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones(channels)
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros(channels)
        y, mean, variance = fused(x, gamma, beta, self.epsilon)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)

    call_fused.ganlib_fused = True
    call_fused.keras_call = call
    BatchNormalization.call = call_fused


def fused_instance_norm_applies(layer, inputs):
    """Whether `GroupNormalization` (patched by :func:`_fused_instance_norm`) takes the fused
    batch-norm kernel: instance normalisation, i.e. one group per channel, over the last axis of
    a 4-D input with static height, width and channels and more than one pixel, float32
    statistics. Anything else (fewer groups than channels, other ranks) goes through Keras' own
    `call`."""
    shape = tuple(inputs.shape)
    return (len(shape) == 4 and all(n is not None for n in shape[1:]) and shape[1] * shape[2] > 1
            and layer.axis in (-1, 3) and layer.groups == shape[-1]
            and keras.backend.result_type(inputs.dtype, "float32") == "float32")


def _fused_instance_norm():
    r"""On TensorFlow and PyTorch, Keras' `GroupNormalization` with one group per channel (instance
    normalisation: every image's channel over its own pixels, pix2pixHD's `InstanceNorm2d`)
    runs as the framework's fused batch-norm kernel on the batch laid side by side along the
    channels, $(N, H, W, C) \to (H, W, N, C) \to (1, H, W, NC)$ (a transpose and a reshape), $\gamma$ and $\beta$
    repeated $N$ times: the same statistics (the mean and biased variance over $H W$ values) and
    outputs within float round-off, in one pass forward and one backward instead of Keras'
    separate moments, subtraction and scaling. A training step of a 1024x512x64 instance norm
    (`python tests/benchmarks/fused_batch_norm.py --layer instance`, 2-core Zen 4): 105 vs 293 ms
    on TensorFlow, 550 vs 912 ms on PyTorch; at batch 4 (4x64x128x64) 0.92x and 0.83x, the
    transposes included. `GANLIB_FUSED_BATCH_NORM=0` leaves this layer alone too."""
    from keras import ops
    from keras.src.layers.normalization.group_normalization import GroupNormalization

    call = GroupNormalization.call
    if getattr(call, "ganlib_fused", False):
        return
    fused = _fused_batch_norm_tensorflow if BACKEND == "tensorflow" else _fused_batch_norm_torch

    def call_fused(self, inputs):
        if not fused_instance_norm_applies(self, inputs):
            return call(self, inputs)
        _, height, width, channels = inputs.shape
        x = ops.reshape(ops.transpose(ops.cast(inputs, "float32"), (1, 2, 0, 3)), (1, height, width, -1))
        images = ops.shape(x)[-1] // channels
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,))
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,))
        y, _, _ = fused(x, ops.tile(gamma, (images,)), ops.tile(beta, (images,)), self.epsilon)
        y = ops.transpose(ops.reshape(y, (height, width, -1, channels)), (2, 0, 1, 3))
        return ops.cast(y, self.compute_dtype)

    call_fused.ganlib_fused = True
    call_fused.keras_call = call
    GroupNormalization.call = call_fused


if BACKEND in ("tensorflow", "torch") and os.environ.get("GANLIB_FUSED_BATCH_NORM", "1") != "0":
    _fused_batch_norm()
    _fused_instance_norm()
if BACKEND == "torch":
    _torch_bf16_conv_layout()
elif BACKEND == "jax":
    _jax_cpu_convolutions()
