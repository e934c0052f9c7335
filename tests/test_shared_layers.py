"""ganlib.layers.ConditioningAugmentation and ganlib.losses.color_consistency against their equations."""

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import losses
from ganlib.layers import ConditioningAugmentation


def _numpy_ca(layer, x):
    w, b = (ops.convert_to_numpy(v) for v in layer.fc.weights)
    h = x @ w + b
    u = layer.units
    if layer.activation == "glu":
        h = h[:, :2 * u] / (1.0 + np.exp(-h[:, 2 * u:]))
    elif layer.activation == "leaky_relu":
        h = np.where(h > 0, h, 0.2 * h)
    elif layer.activation == "relu":
        h = np.maximum(h, 0)
    return h[:, :u], h[:, u:]


@pytest.mark.parametrize("activation", ["leaky_relu", "glu", "relu", None])
def test_ca_mean_and_logvar_are_the_fully_connected_layer(activation):
    x = np.random.default_rng(0).standard_normal((5, 12)).astype("float32")
    layer = ConditioningAugmentation(6, activation=activation)
    c_det, mu, logvar = (ops.convert_to_numpy(t) for t in layer(x))
    mu_np, logvar_np = _numpy_ca(layer, x)
    np.testing.assert_allclose(mu, mu_np, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar, logvar_np, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_det, mu_np, rtol=1e-5, atol=1e-5)    # no eps: c_hat = mu


def test_ca_samples_are_mu_plus_sigma_times_the_given_eps():
    """c_hat = mu + exp(logvar / 2) * eps for the eps given (StackGAN, the reparameterisation trick)."""
    layer = ConditioningAugmentation(3, activation=None)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype("float32")
    layer.build(x.shape)
    b = np.array([1.0, -2.0, 0.5, np.log(0.25), 0.0, np.log(4.0)], "float32")
    layer.fc.set_weights([np.zeros((4, 6), "float32"), b])
    eps = np.random.default_rng(2).standard_normal((2, 3)).astype("float32")
    c_hat = ops.convert_to_numpy(layer(x, eps)[0])
    np.testing.assert_allclose(c_hat, [1.0, -2.0, 0.5] + np.array([0.5, 1.0, 2.0]) * eps, rtol=1e-5)


def test_ca_gradient_reaches_the_fully_connected_layer_and_serialises():
    """The KL term alone drives mu -> 0 and logvar -> 0 (the reparameterisation keeps it differentiable)."""
    inputs = keras.Input((8,))
    eps = keras.Input((4,))
    c_hat, mu, logvar = ConditioningAugmentation(4, name="ca")(inputs, eps)
    model = keras.Model([inputs, eps], [c_hat, mu, logvar])
    x = np.random.default_rng(2).standard_normal((64, 8)).astype("float32")
    x = [x, np.random.default_rng(3).standard_normal((64, 4)).astype("float32")]
    before = float(losses.kl_divergence(*model(x)[1:]))
    optimizer = keras.optimizers.SGD(0.5)
    for _ in range(60):
        _train_kl_step(model, optimizer, x)
    after = float(losses.kl_divergence(*model(x)[1:]))
    assert after < 0.1 * before
    restored = ConditioningAugmentation.from_config(model.get_layer("ca").get_config())
    assert (restored.units, restored.activation) == (4, "leaky_relu")


def _train_kl_step(model, optimizer, x):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = losses.kl_divergence(*model(x)[1:])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    elif backend == "torch":
        model.zero_grad()
        loss = losses.kl_divergence(*model(x)[1:])
        loss.backward()
        import torch

        with torch.no_grad():
            optimizer.apply([v.value.grad for v in model.trainable_variables], model.trainable_variables)
    else:
        import jax

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def loss_fn(tv):
            (c, mu, logvar), _ = model.stateless_call(tv, ntv, x)
            return losses.kl_divergence(mu, logvar)

        grads = jax.grad(loss_fn)(tv)
        optimizer.apply(grads, model.trainable_variables)


def _numpy_colour_loss(a, b, lm=1.0, lc=5.0):
    def stats(x):
        p = x.reshape(len(x), -1, 3).astype(np.float64)
        mu = p.mean(1)
        c = p - mu[:, None]
        return mu, np.einsum("bni,bnj->bij", c, c) / p.shape[1]

    (ma, sa), (mb, sb) = stats(a), stats(b)
    return lm * np.mean((ma - mb) ** 2) + lc * np.mean((sa - sb) ** 2)


def test_color_consistency_matches_the_reference_reduction():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    b = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32") ** 3
    got = float(losses.color_consistency(a, b))
    np.testing.assert_allclose(got, _numpy_colour_loss(a, b), rtol=1e-5)
    np.testing.assert_allclose(float(losses.color_consistency(a, b, 2.0, 0.0)),
                               _numpy_colour_loss(a, b, 2.0, 0.0), rtol=1e-5)


def test_color_consistency_known_answers():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    # a nearest-neighbour 2x upsampling has exactly the same colour statistics
    up = np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)
    assert abs(float(losses.color_consistency(a, up))) < 1e-6
    # constant images: no covariance, mean term = mean squared colour difference
    c1 = np.full((2, 4, 4, 3), 0.5, "float32")
    c2 = np.zeros((2, 8, 8, 3), "float32") + np.array([0.5, -0.5, 0.1], "float32")
    expected = np.mean((np.array([0.5, 0.5, 0.5]) - np.array([0.5, -0.5, 0.1])) ** 2)
    np.testing.assert_allclose(float(losses.color_consistency(c1, c2)), expected, rtol=1e-6)


def _numpy_transposed_conv(x, kernel, bias):
    """The definition: every input pixel scatters its 4x4 stamp, stride 2, 'same' (1-pixel crop)."""
    b, h, w, _ = x.shape
    out = np.zeros((b, 2 * h + 2, 2 * w + 2, kernel.shape[2]))
    for i in range(h):
        for j in range(w):
            out[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("bc,yxoc->byxo", x[:, i, j], kernel)
    return out[:, 1:-1, 1:-1] + bias


@pytest.mark.parametrize("mode", ["transpose", "phases", "auto"])
def test_upconv_is_the_transposed_convolution(mode):
    from ganlib.layers import UpConv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4)).astype("float32")
    layer = UpConv(6, mode=mode)
    layer.build(x.shape)
    kernel = rng.standard_normal((4, 4, 6, 4)).astype("float32")
    bias = rng.standard_normal(6).astype("float32")
    layer.set_weights([kernel, bias])
    out = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, _numpy_transposed_conv(x, kernel, bias), rtol=1e-4, atol=1e-4)
    keras_layer = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same")
    keras_layer.build(x.shape)
    keras_layer.set_weights([kernel, bias])
    np.testing.assert_allclose(out, ops.convert_to_numpy(keras_layer(x)), rtol=1e-4, atol=1e-4)
    assert layer.compute_output_shape((None, 3, 5, 4)) == (None, 6, 10, 6)


def test_upconv_modes_have_the_same_gradients_and_serialise():
    from ganlib.layers import UpConv

    x = keras.Input((4, 4, 3))
    model = keras.Model(x, UpConv(2, activation="tanh", use_bias=False, mode="transpose")(x))
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.layers[-1].get_config()["activation"] == "tanh"
    assert clone.layers[-1].bias is None
    clone.layers[-1].mode = "phases"
    data = np.random.default_rng(1).standard_normal((3, 4, 4, 3)).astype("float32")
    target = np.random.default_rng(2).uniform(-1, 1, (3, 8, 8, 2)).astype("float32")
    grads = []
    for m in (model, clone):
        m.compile(keras.optimizers.SGD(1.0), "mse")
        before = m.get_weights()[0]
        m.train_on_batch(data, target)
        grads.append(before - m.get_weights()[0])  # one SGD step of lr 1: the gradient
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert np.abs(grads[0]).max() > 1e-4
    with pytest.raises(ValueError, match="mode"):
        UpConv(2, mode="fast")


def _numpy_conv(x, w, s):
    """'valid' convolution (B, H, W, C) * (kh, kw, C, O) at stride s, and the gradients of
    sum(y * g) with respect to x and w."""
    kh, kw, _, _ = w.shape
    oh, ow = (x.shape[1] - kh) // s + 1, (x.shape[2] - kw) // s + 1
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("bpqc,co->bpqo", x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s], w[i, j])

    def grads(g):
        dx, dw = np.zeros(x.shape), np.zeros(w.shape)
        for i in range(kh):
            for j in range(kw):
                dw[i, j] = np.einsum("bpqc,bpqo->co", x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s], g)
                dx[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += np.einsum("co,bpqo->bpqc", w[i, j], g)
        return dx, dw

    return y, grads


def _assert_one_sgd_step_follows(layer, x, w, y, grads, rng):
    """`layer` (kernel `w`, no bias) applied to the image `x` (batch 1), which a Dense layer outputs
    (one input of 1.0, kernel = the image), gives `y`; one SGD step of rate 1 on sum(y * g) moves
    the kernel by -dL/dw and the image by -dL/dx, as `grads(g)` computes them in numpy."""
    one = keras.Input((1,))
    image = keras.layers.Reshape(x.shape[1:])(keras.layers.Dense(x.size, use_bias=False, name="image")(one))
    model = keras.Model(one, layer(image))
    model.get_layer("image").set_weights([x.reshape(1, -1)])
    layer.set_weights([w])
    np.testing.assert_allclose(ops.convert_to_numpy(model(np.ones((1, 1), "float32"))), y, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(y.shape).astype("float32")
    model.compile(keras.optimizers.SGD(1.0), loss=lambda target, pred: ops.sum(target * pred))
    model.train_on_batch(np.ones((1, 1), "float32"), g)
    dx, dw = grads(g.astype("float64"))
    np.testing.assert_allclose(w - layer.get_weights()[0], dw, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(x.reshape(1, -1) - model.get_layer("image").get_weights()[0], dx.reshape(1, -1),
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape,kernel,stride,filters", [((8, 8, 64), 5, 1, 64), ((9, 7, 64), 4, 2, 64),
                                                          ((10, 10, 2), 3, 1, 4)])
def test_conv_by_patches_is_the_convolution_and_keras_conv_has_its_gradients(shape, kernel, stride, filters):
    """`conv_by_patches` against a numpy convolution; then Keras' Conv2D (on JAX's CPU the
    patches when the output is smaller than the kernel, `small_output_conv`) trained one SGD
    step of rate 1 on sum(y * g): the kernel moves by -dL/dw, and a Dense layer that outputs
    the image (one input of 1.0, kernel = the image) by -dL/dx, both as in numpy."""
    from ganlib.backend import conv_by_patches

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1,) + shape).astype("float32")
    w = rng.standard_normal((kernel, kernel, shape[2], filters)).astype("float32")
    y, grads = _numpy_conv(x.astype("float64"), w.astype("float64"), stride)
    np.testing.assert_allclose(ops.convert_to_numpy(conv_by_patches(ops.convert_to_tensor(x), ops.convert_to_tensor(w),
                                                                    stride)), y, rtol=1e-4, atol=1e-4)
    _assert_one_sgd_step_follows(keras.layers.Conv2D(filters, kernel, strides=stride, use_bias=False), x, w, y,
                                 grads, rng)


def test_small_output_conv_selects_convolutions_whose_output_is_smaller_than_the_kernel():
    from ganlib.backend import small_output_conv

    assert small_output_conv((2, 8, 8, 512), (5, 5, 512, 512))          # HDGAN's D: 8x8 -> 4x4
    assert small_output_conv((None, 5, 5, 64), (4, 4, 64, 64))          # 2x2 outputs
    assert small_output_conv((2, 9, 7, 64), (4, 4, 64, 128), strides=2)  # 3 x 2 outputs
    assert not small_output_conv((None, 4, 4, 512), (4, 4, 512, 1), strides=4)   # a logit: too few channels
    assert not small_output_conv((2, 9, 9, 512), (5, 5, 512, 512))      # 5x5 outputs
    assert not small_output_conv((2, 8, 8, 512), (5, 5, 512, 512), padding="same")
    assert not small_output_conv((2, 8, 8, 512), (5, 5, 512, 512), dilation_rate=2)
    assert not small_output_conv((2, 8, 8, 512), (5, 5, 256, 512))      # grouped
    assert not small_output_conv((2, 512, 8, 8), (5, 5, 512, 512), data_format="channels_first")
    assert not small_output_conv((2, None, None, 512), (5, 5, 512, 512))


def test_keras_conv_uses_patches_on_jax_only():
    """ganlib replaces Keras' JAX `conv` (for small outputs on the CPU) when the backend is JAX,
    and leaves it alone otherwise."""
    import ganlib.backend  # noqa: F401  (installs the backend's patches)
    from keras.src.backend.jax import nn as jax_nn

    assert getattr(jax_nn.conv, "ganlib_patches", False) == (keras.backend.backend() == "jax")
    assert getattr(jax_nn.conv_transpose, "ganlib_patches", False) == (keras.backend.backend() == "jax")


def _numpy_conv_transpose(x, w, s, padding):
    """TensorFlow's conv2d_transpose (B, H, W, C) * (k, k, O, C) at stride s, by scattering:
    full[s i + t] += x[i] w[t] ((H - 1) s + k pixels), then 'valid' keeps (H - 1) s + max(k, s)
    pixels from 0 (zeros past the end) and 'same' H s pixels from (k - s) // 2; and the
    gradients of sum(y * g) with respect to x and w."""
    k, h = w.shape[0], x.shape[1]
    full = np.zeros((x.shape[0], (h - 1) * s + max(k, s), (h - 1) * s + max(k, s), w.shape[2]))
    for i in range(k):
        for j in range(k):
            full[:, i:i + s * (h - 1) + 1:s, j:j + s * (h - 1) + 1:s] += np.einsum("bpqc,oc->bpqo", x, w[i, j])
    start, size = (0, (h - 1) * s + max(k, s)) if padding == "valid" else ((k - s) // 2, h * s)

    def grads(g):
        g_full = np.zeros(full.shape)
        g_full[:, start:start + size, start:start + size] = g
        dx, dw = np.zeros(x.shape), np.zeros(w.shape)
        for i in range(k):
            for j in range(k):
                window = g_full[:, i:i + s * (h - 1) + 1:s, j:j + s * (h - 1) + 1:s]
                dx += np.einsum("bpqo,oc->bpqc", window, w[i, j])
                dw[i, j] = np.einsum("bpqc,bpqo->oc", x, window)
        return dx, dw

    return full[:, start:start + size, start:start + size], grads


class _PhasesConv2DTranspose(keras.layers.Conv2DTranspose):
    def call(self, inputs):
        from ganlib.backend import conv_transpose_by_phases

        return conv_transpose_by_phases(inputs, self.kernel, self.strides, self.padding)


@pytest.mark.parametrize("size,kernel,stride,padding", [(5, 3, 2, "valid"), (4, 4, 2, "same"), (5, 3, 2, "same"),
                                                         (3, 5, 3, "same"), (3, 2, 3, "valid")])
def test_conv_transpose_by_phases_is_the_transposed_convolution_with_its_gradients(size, kernel, stride, padding):
    """`conv_transpose_by_phases` against a numpy transposed convolution (pix2pixHD's 3x3 of
    stride 2, DCGAN's 4x4, kernels larger and smaller than the stride); then a Conv2DTranspose
    layer computed by the phases (on JAX Keras' own layer, which ganlib's CPU patch routes there,
    `phase_conv_transpose`) trained one SGD step of rate 1 on sum(y * g), its kernel and input
    image moving by the numpy gradients. (Keras' own layer is not checked on TensorFlow: with
    TF 2.21 its graph-mode train step without XLA gave a wrong kernel update on some calls, the
    same wrong value each time, in this test and in Conv2D -> Conv2DTranspose(3, stride 2) ->
    Cropping2D; with `jit_compile=True` every call was right.)"""
    from ganlib.backend import conv_transpose_by_phases

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, size, size, 3)).astype("float32")
    w = rng.standard_normal((kernel, kernel, 4, 3)).astype("float32")
    y, grads = _numpy_conv_transpose(x.astype("float64"), w.astype("float64"), stride, padding)
    np.testing.assert_allclose(ops.convert_to_numpy(conv_transpose_by_phases(
        ops.convert_to_tensor(x), ops.convert_to_tensor(w), stride, padding)), y, rtol=1e-4, atol=1e-4)
    x, (y, grads) = x[:1], _numpy_conv_transpose(x[:1].astype("float64"), w.astype("float64"), stride, padding)
    up = (keras.layers.Conv2DTranspose if keras.backend.backend() == "jax" else _PhasesConv2DTranspose)(
        4, kernel, strides=stride, padding=padding, use_bias=False)
    _assert_one_sgd_step_follows(up, x, w, y, grads, rng)


def test_phase_conv_transpose_selects_strided_transposed_convolutions():
    from ganlib.backend import phase_conv_transpose

    assert phase_conv_transpose((1, 32, 64, 1024), (3, 3, 512, 1024), strides=2)       # pix2pixHD's up step
    assert phase_conv_transpose((None, 8, 8, 64), (4, 4, 3, 64), strides=2, padding="same")
    assert phase_conv_transpose((None, 8, 8, 64), (4, 4, 3, 64), strides=(1, 2))
    assert not phase_conv_transpose((None, 8, 8, 64), (3, 3, 3, 64), strides=1)         # an ordinary conv
    assert not phase_conv_transpose((None, 8, 8, 64), (3, 3, 3, 64), strides=2, output_padding=1)
    assert not phase_conv_transpose((None, 8, 8, 64), (3, 3, 3, 64), strides=2, dilation_rate=2)
    assert not phase_conv_transpose((None, 64, 8, 8), (3, 3, 3, 64), strides=2, data_format="channels_first")
    assert not phase_conv_transpose((None, None, None, 64), (3, 3, 3, 64), strides=2)


def _numpy_batch_norm(x, gamma, beta, epsilon, g):
    r"""Training-mode batch normalisation (Ioffe & Szegedy 2015, Algorithm 1) over every axis but
    the last: $\hat x = (x - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}$ with the biased batch variance,
    $y = \gamma \hat x + \beta$; and the gradients of $L = \sum y g$: $\partial L / \partial \beta =
    \sum g$, $\partial L / \partial \gamma = \sum g \hat x$, $\partial L / \partial x = \gamma /
    \sqrt{\sigma_B^2 + \epsilon}\, (g - \bar g - \hat x\, \overline{g \hat x})$ (bars: batch means)."""
    axes = tuple(range(x.ndim - 1))
    mean, variance = x.mean(axes), x.var(axes)
    x_hat = (x - mean) / np.sqrt(variance + epsilon)
    dx = gamma / np.sqrt(variance + epsilon) * (g - g.mean(axes) - x_hat * (g * x_hat).mean(axes))
    return gamma * x_hat + beta, mean, variance, dx, (g * x_hat).sum(axes), g.sum(axes)


@pytest.mark.parametrize("shape", [(6, 5, 7, 16), (12, 32), (2, 1, 1, 3)])
def test_batch_norm_in_training_follows_its_equations_with_ganlibs_fused_kernel(shape):
    """Keras' BatchNormalization in training mode, which on TensorFlow and PyTorch ganlib computes
    in the framework's fused kernel (`ganlib.backend`): its output, the moving statistics after one
    step (momentum 0.9: 0.1 of the batch mean and of the biased variance) and one SGD step of rate 1
    on sum(y * g) (gamma, beta and the input, made by a Dense layer from the identity, move by minus
    their gradients) equal the numpy equations."""
    import ganlib.backend as gb
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    rng = np.random.default_rng(0)
    x = (3.0 * rng.standard_normal(shape) + 1.0).astype("float32")
    gamma, beta = (rng.standard_normal(shape[-1:]).astype("float32") for _ in range(2))
    g = rng.standard_normal(shape).astype("float32")
    eye = np.eye(shape[0], dtype="float32")
    bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    image = keras.layers.Dense(int(np.prod(shape[1:])), use_bias=False, name="image")
    one_hot = keras.Input((shape[0],))
    model = keras.Model(one_hot, bn(keras.layers.Reshape(shape[1:])(image(one_hot))))
    image.set_weights([x.reshape(shape[0], -1)])
    bn.set_weights([gamma, beta, np.zeros_like(gamma), np.ones_like(gamma)])

    assert gb.fused_batch_norm_applies(bn, ops.convert_to_tensor(x), True, None)
    assert getattr(BatchNormalization.call, "ganlib_fused", False) == (keras.backend.backend() != "jax")
    y, mean, variance, dx, dgamma, dbeta = _numpy_batch_norm(x.astype("float64"), gamma, beta, 1e-5,
                                                             g.astype("float64"))
    np.testing.assert_allclose(ops.convert_to_numpy(model(eye, training=True)), y, rtol=1e-4, atol=1e-4)
    bn.set_weights([gamma, beta, np.zeros_like(gamma), np.ones_like(gamma)])
    model.compile(keras.optimizers.SGD(1.0), loss=lambda target, pred: ops.sum(target * pred))
    model.train_on_batch(eye, g)
    new_gamma, new_beta, moving_mean, moving_variance = bn.get_weights()
    np.testing.assert_allclose(gamma - new_gamma, dgamma, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(beta - new_beta, dbeta, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(x.reshape(shape[0], -1) - image.get_weights()[0], dx.reshape(shape[0], -1),
                               rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_variance, 0.9 + 0.1 * variance, rtol=1e-5, atol=1e-6)


def test_fused_batch_norm_leaves_other_cases_to_keras():
    """Only training-mode calls over the last axis of a 2-D or 4-D float input without mask,
    renorm or synchronised statistics take the fused kernel; the rest stay Keras' own."""
    from ganlib.backend import fused_batch_norm_applies

    x4, x3 = ops.zeros((4, 3, 3, 8)), ops.zeros((4, 3, 8))
    plain = keras.layers.BatchNormalization()
    assert fused_batch_norm_applies(plain, x4, True, None)
    assert not fused_batch_norm_applies(plain, x4, False, None)
    assert not fused_batch_norm_applies(plain, x4, None, None)
    assert not fused_batch_norm_applies(plain, x3, True, None)
    assert not fused_batch_norm_applies(plain, x4, True, ops.ones((4, 3, 3)))
    assert not fused_batch_norm_applies(keras.layers.BatchNormalization(axis=1), x4, True, None)
    assert not fused_batch_norm_applies(keras.layers.BatchNormalization(renorm=True), x4, True, None)
    assert not fused_batch_norm_applies(plain, ops.zeros((1, 8)), True, None)   # one value per channel
    frozen = keras.layers.BatchNormalization()
    frozen.trainable = False
    assert not fused_batch_norm_applies(frozen, x4, True, None)


@pytest.mark.parametrize("shape,affine", [((1, 6, 10, 8), False), ((3, 5, 7, 4), True), ((2, 1, 3, 5), True)])
def test_instance_norm_follows_its_equations_with_ganlibs_fused_kernel(shape, affine):
    r"""GroupNormalization with one group per channel (instance normalisation, as pix2pixHD's
    InstanceNorm2d), which on TensorFlow and PyTorch ganlib runs as the fused batch-norm kernel on
    the images laid side by side: for every image $n$ and channel $c$ the mean and biased variance
    over its pixels, $y = \gamma_c (x - \mu_{nc}) / \sqrt{\sigma_{nc}^2 + \epsilon} + \beta_c$, and
    the gradients of sum(y * g) (the batch-norm gradients of `_numpy_batch_norm`, per image) equal
    the numpy equations, through one SGD step of rate 1 as in the batch-norm test."""
    import ganlib.backend as gb
    from keras.src.layers.normalization.group_normalization import GroupNormalization

    rng = np.random.default_rng(1)
    x = (2.0 * rng.standard_normal(shape) - 0.5).astype("float32")
    g = rng.standard_normal(shape).astype("float32")
    gamma, beta = (rng.standard_normal(shape[-1:]).astype("float32") for _ in range(2))
    if not affine:
        gamma, beta = np.ones_like(gamma), np.zeros_like(beta)
    per_image = [_numpy_batch_norm(x[n:n + 1].astype("float64"), gamma, beta, 1e-5, g[n:n + 1].astype("float64"))
                 for n in range(shape[0])]
    y, dx = (np.concatenate([r[k] for r in per_image]) for k in (0, 3))
    dgamma, dbeta = (sum(r[k] for r in per_image) for k in (4, 5))

    norm = keras.layers.GroupNormalization(groups=-1, center=affine, scale=affine, epsilon=1e-5)
    image = keras.layers.Dense(int(np.prod(shape[1:])), use_bias=False)
    one_hot = keras.Input((shape[0],))
    model = keras.Model(one_hot, norm(keras.layers.Reshape(shape[1:])(image(one_hot))))
    image.set_weights([x.reshape(shape[0], -1)])
    if affine:
        norm.set_weights([gamma, beta])
    assert gb.fused_instance_norm_applies(norm, ops.convert_to_tensor(x)) == (shape[1] * shape[2] > 1)
    assert getattr(GroupNormalization.call, "ganlib_fused", False) == (keras.backend.backend() != "jax")
    eye = np.eye(shape[0], dtype="float32")
    np.testing.assert_allclose(ops.convert_to_numpy(model(eye)), y, rtol=1e-4, atol=1e-4)
    model.compile(keras.optimizers.SGD(1.0), loss=lambda target, pred: ops.sum(target * pred))
    model.train_on_batch(eye, g)
    np.testing.assert_allclose(x.reshape(shape[0], -1) - image.get_weights()[0], dx.reshape(shape[0], -1),
                               rtol=1e-3, atol=1e-4)
    if affine:
        new_gamma, new_beta = norm.get_weights()
        np.testing.assert_allclose(gamma - new_gamma, dgamma, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(beta - new_beta, dbeta, rtol=1e-4, atol=1e-3)


def test_fused_instance_norm_leaves_other_cases_to_keras():
    """Only one group per channel over the last axis of a 4-D input with more than one pixel takes
    the fused kernel; group normalisation proper, other ranks and other axes stay Keras' own."""
    from ganlib.backend import fused_instance_norm_applies

    def built(**kwargs):
        layer = keras.layers.GroupNormalization(**kwargs)
        layer.build((None, 3, 3, 8) if kwargs.get("axis", -1) == -1 else (None, 8, 3, 3))
        return layer

    x4 = ops.zeros((2, 3, 3, 8))
    assert fused_instance_norm_applies(built(groups=-1), x4)
    assert fused_instance_norm_applies(built(groups=8), x4)
    assert not fused_instance_norm_applies(built(groups=4), x4)
    assert not fused_instance_norm_applies(built(groups=8, axis=1), ops.zeros((2, 8, 3, 3)))
    assert not fused_instance_norm_applies(built(groups=-1), ops.zeros((2, 1, 1, 8)))   # one pixel
    three_d = keras.layers.GroupNormalization(groups=-1)
    three_d.build((None, 5, 8))
    assert not fused_instance_norm_applies(three_d, ops.zeros((2, 5, 8)))
