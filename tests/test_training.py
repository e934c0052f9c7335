"""`ganlib.training.AdversarialModel` on the active backend (run the suite once per backend).

The exact-value tests use `LinearGAN`, whose losses and gradients are short
enough to write out by hand in NumPy: G(z) = z W + b, D(x) = x w + c, SGD. They
pin down the order of the alternating update (every D first, then G scored by
the updated D), that each step moves only its own network, and that the
generator runs once per step.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, ops

from ganlib.losses import bce
from ganlib.training import AdversarialModel, enable_determinism

from toy_gan import DATA_MEAN, DATA_STD, ToyGAN, toy_data

BACKEND = keras.backend.backend()
HERE = os.path.dirname(__file__)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@keras.saving.register_keras_serializable("ganlib_tests")
class LinearGAN(AdversarialModel):
    """G(z) = BN?(z W + b), D(x) = x w + c; the noise is the batch's "z" (no randomness)."""

    def __init__(self, lr_g=0.1, lr_d=0.1, batchnorm=False, **kwargs):
        z = keras.Input((3,))
        x = layers.Dense(2, name="g_dense")(z)
        if batchnorm:
            x = layers.BatchNormalization(momentum=0.9, center=False, scale=False, name="g_bn")(x)
        generator = keras.Model(z, x, name="G")
        p = keras.Input((2,))
        discriminator = keras.Model(p, layers.Dense(1, name="d_dense")(p), name="D")
        super().__init__(generator, [discriminator], **kwargs)
        self.lr_g, self.lr_d, self.batchnorm = lr_g, lr_d, batchnorm

    def generator_outputs(self, batch, noise, training=False):
        return {"fake": self.generator(batch["z"], training=training)}

    def discriminator_loss(self, batch, fakes, training=True):
        d = self.discriminators[0]
        return bce(d(batch["x"]), 1.0) + bce(d(fakes["fake"]), 0.0), {}

    def generator_loss(self, batch, fakes, training=True):
        return bce(self.discriminators[0](fakes["fake"]), 1.0), {}

    def default_optimizers(self):
        return keras.optimizers.SGD(self.lr_g), [keras.optimizers.SGD(self.lr_d)]

    def get_config(self):
        return {"lr_g": self.lr_g, "lr_d": self.lr_d, "batchnorm": self.batchnorm}


def linear_setup(seed=0, batch_size=8):
    rng = np.random.default_rng(seed)
    weights = {
        "W": rng.normal(size=(3, 2)).astype("float32"),
        "b": rng.normal(size=(2,)).astype("float32"),
        "w": rng.normal(size=(2, 1)).astype("float32"),
        "c": rng.normal(size=(1,)).astype("float32"),
    }
    batch = {"z": rng.normal(size=(batch_size, 3)).astype("float32"),
             "x": rng.normal(size=(batch_size, 2)).astype("float32")}
    return weights, batch


def build_linear(weights, **kwargs):
    model = LinearGAN(**kwargs)
    model.generator.get_layer("g_dense").set_weights([weights["W"], weights["b"]])
    model.discriminators[0].get_layer("d_dense").set_weights([weights["w"], weights["c"]])
    model.compile()
    return model


def one_batch(batch):
    return tf.data.Dataset.from_tensors(batch).repeat()


def numpy_step(weights, batch, lr_g=0.1, lr_d=0.1):
    """One alternating update written out by hand (the spec)."""
    W, b, w, c = weights["W"], weights["b"], weights["w"], weights["c"]
    z, x = batch["z"].astype("float64"), batch["x"].astype("float64")
    n = len(z)
    fake = z @ W + b
    s_real, s_fake = x @ w + c, fake @ w + c
    d_loss = np.mean(np.logaddexp(0, -s_real)) + np.mean(np.logaddexp(0, s_fake))
    # dL_D/ds = sigmoid(s) - target, averaged over the batch
    g_real, g_fake = (sigmoid(s_real) - 1) / n, sigmoid(s_fake) / n
    w2 = w - lr_d * (x.T @ g_real + fake.T @ g_fake)
    c2 = c - lr_d * (g_real.sum(0) + g_fake.sum(0))
    s_fake2 = fake @ w2 + c2
    g_loss = np.mean(np.logaddexp(0, -s_fake2))
    d_fake = ((sigmoid(s_fake2) - 1) / n) @ w2.T  # dL_G / d fake
    W2 = W - lr_g * (z.T @ d_fake)
    b2 = b - lr_g * d_fake.sum(0)
    return {"W": W2, "b": b2, "w": w2, "c": c2}, d_loss, g_loss


def test_alternating_update_matches_hand_written_gradients():
    weights, batch = linear_setup()
    model = build_linear(weights)
    logs = model.fit(one_batch(batch), steps_per_epoch=1, epochs=1, verbose=0).history
    expected, d_loss, g_loss = numpy_step(weights, batch)
    W, b = model.generator.get_layer("g_dense").get_weights()
    w, c = model.discriminators[0].get_layer("d_dense").get_weights()
    np.testing.assert_allclose(logs["d_loss"][0], d_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["g_loss"][0], g_loss, rtol=1e-5)
    np.testing.assert_allclose(w, expected["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, expected["c"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(W, expected["W"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, expected["b"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("frozen", ["generator", "discriminator"])
def test_each_step_moves_only_its_own_network(frozen):
    weights, batch = linear_setup(1)
    lr_g, lr_d = (0.0, 0.1) if frozen == "generator" else (0.1, 0.0)
    model = build_linear(weights, lr_g=lr_g, lr_d=lr_d)
    model.fit(one_batch(batch), steps_per_epoch=1, epochs=1, verbose=0)
    expected, _, _ = numpy_step(weights, batch, lr_g=lr_g, lr_d=lr_d)
    W, b = model.generator.get_layer("g_dense").get_weights()
    w, c = model.discriminators[0].get_layer("d_dense").get_weights()
    if frozen == "generator":
        np.testing.assert_array_equal(W, weights["W"])
        assert np.abs(w - weights["w"]).max() > 1e-4
    else:
        np.testing.assert_array_equal(w, weights["w"])
        assert np.abs(W - weights["W"]).max() > 1e-4
    np.testing.assert_allclose(W, expected["W"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, expected["w"], rtol=1e-5, atol=1e-6)


def test_iterations_advance_once_per_step_for_every_optimizer():
    model = ToyGAN(num_discriminators=2)
    model.compile()
    data, _ = toy_data()
    model.fit(data, steps_per_epoch=7, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 14
    assert int(model.g_optimizer.iterations) == 14
    assert [int(o.iterations) for o in model.d_optimizers] == [14, 14]


def test_batchnorm_statistics_move_once_per_step():
    """The generator runs once per step: after one step the BN moving mean is
    momentum * 0 + (1 - momentum) * (batch mean), not what two updates would give."""
    weights, batch = linear_setup(2)
    model = build_linear(weights, lr_g=0.0, batchnorm=True)
    bn = model.generator.get_layer("g_bn")
    model.fit(one_batch(batch), steps_per_epoch=1, epochs=1, verbose=0)
    pre_bn = batch["z"] @ weights["W"] + weights["b"]
    np.testing.assert_allclose(ops.convert_to_numpy(bn.moving_mean), 0.1 * pre_bn.mean(0), rtol=1e-4, atol=1e-6)


def test_generator_ema_follows_its_equation():
    weights, batch = linear_setup(3)
    model = build_linear(weights, ema_decay=0.75)
    W_start, _ = model.generator_ema.get_layer("g_dense").get_weights()
    assert np.abs(W_start - weights["W"]).max() > 1e-3  # the copy was made at construction
    model.sync_ema()
    model.fit(one_batch(batch), steps_per_epoch=1, epochs=1, verbose=0)
    W_new, _ = model.generator.get_layer("g_dense").get_weights()
    W_ema, _ = model.generator_ema.get_layer("g_dense").get_weights()
    np.testing.assert_allclose(W_ema, 0.75 * weights["W"] + 0.25 * W_new, rtol=1e-5, atol=1e-6)
    assert model.inference_generator() is model.generator_ema


def _train_toy(seed, steps=12):
    enable_determinism(seed)
    model = ToyGAN(seed=seed, ema_decay=0.9)
    model.compile()
    data, _ = toy_data(seed=seed)
    history = model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0).history
    return model.generator.get_weights(), history


def test_seeded_run_repeats_exactly():
    w1, h1 = _train_toy(5)
    w2, h2 = _train_toy(5)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    w3, _ = _train_toy(6)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(w1, w3))


def test_save_load_resume_continues_at_the_same_step(tmp_path):
    """10 steps straight == 5 steps, save to .keras, load, 5 more (optimizer state included)."""
    def fresh():
        enable_determinism(0)
        model = ToyGAN(seed=0, ema_decay=0.9)
        model.compile()
        return model

    data, _ = toy_data(n=32, batch_size=32)  # every batch the same: data order plays no part
    straight = fresh()
    straight.fit(data, steps_per_epoch=10, epochs=1, verbose=0)

    first = fresh()
    first.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
    path = tmp_path / "toy.keras"
    first.save(path)
    resumed = keras.saving.load_model(path)
    assert int(resumed.optimizer.iterations) == 5
    assert int(resumed.g_optimizer.iterations) == 5
    assert [int(o.iterations) for o in resumed.d_optimizers] == [5, 5]
    resumed.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
    assert int(resumed.g_optimizer.iterations) == 10
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_toy_gan_learns_the_data_distribution():
    """The generated points' mean and spread move to the data's: the moment gap falls."""
    enable_determinism(0)
    model = ToyGAN(seed=0, lr=5e-3)
    model.compile()
    data, _ = toy_data(n=512, batch_size=64)
    z = keras.random.normal((1024, 4), seed=1)

    def moment_gap():
        points = ops.convert_to_numpy(model.generator(z, training=False))
        return float(np.abs(points.mean(0) - DATA_MEAN).sum() + np.abs(points.std(0) - DATA_STD).sum())

    before = moment_gap()
    model.fit(data, steps_per_epoch=300, epochs=1, verbose=0)
    after = moment_gap()
    assert after < 0.3 * before, (before, after)


def test_mixed_bfloat16_trains_with_float32_weights():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = ToyGAN()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model.compile()
    data, _ = toy_data()
    history = model.fit(data, steps_per_epoch=3, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0]) and np.isfinite(history["g_loss"][0])
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    out = model.generator(keras.random.normal((2, 4)))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"


def test_mixed_float16_is_refused_with_a_clear_message():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = ToyGAN()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        model.compile()


def test_wrong_number_of_discriminator_optimizers_is_an_error():
    model = ToyGAN(num_discriminators=2)
    with pytest.raises(ValueError, match="d_optimizers"):
        model.compile(keras.optimizers.Adam(), [keras.optimizers.Adam()])


def _benchmark(name):
    """A script of tests/benchmarks/ as a module (they are not collected by pytest)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tensorflow_trainer_switches_off_the_graph_pass_that_broke_transposed_conv_gradients():
    """TensorFlow 2.21 without XLA: a `tf.function` taking Conv2DTranspose gradients with
    `tf.GradientTape` and applying them with a Keras optimizer (the trainer's step) returned
    other kernel gradients from the same state on 15-57 of 90 one-thread calls, with grappler's
    dependency optimisation on. Compiling a ganlib model switches it off on TensorFlow, and
    leaves TensorFlow's settings alone on the other backends. Known answer: the same weights and
    inputs give the same gradients on every call."""
    before = tf.config.optimizer.get_experimental_options().get("dependency_optimization")
    LinearGAN().compile()
    after = tf.config.optimizer.get_experimental_options().get("dependency_optimization")
    if BACKEND != "tensorflow":
        assert after == before
        return
    assert after is False
    assert _benchmark("tf_conv_transpose_gradients").wrong_calls(models=10) == 0


LOSSES_SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
import numpy as np
from test_training import build_linear, linear_setup, one_batch
weights, batch = linear_setup(7)
model = build_linear(weights)
logs = model.fit(one_batch(batch), steps_per_epoch=2, epochs=1, verbose=0).history
print("LOSSES", json.dumps({{k: [float(x) for x in v] for k, v in logs.items()}}))
"""


def _losses_on(backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run([sys.executable, "-c", LOSSES_SCRIPT.format(here=HERE)], env=env,
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("LOSSES ")]
    assert lines, f"{backend} run failed:\n{out.stderr[-3000:]}"
    return json.loads(lines[-1][len("LOSSES "):])


@pytest.mark.backend_neutral   # it runs all three backends itself, in subprocesses
def test_same_weights_and_inputs_give_the_same_losses_on_all_backends():
    """Two steps from the same weights on the same batch: equal losses on TF, JAX, torch."""
    results = {b: _losses_on(b) for b in ("tensorflow", "jax", "torch")}
    reference = results[BACKEND]
    for backend, logs in results.items():
        for key in ("d_loss", "g_loss"):
            np.testing.assert_allclose(logs[key], reference[key], rtol=1e-5, err_msg=f"{key} on {backend}")
