"""Graded tests of lesson 02 (StackGAN): 15 points, and Exercise 7 (3 points) graded by
the instructor.

Every test compares the exercise's values with an independent numpy reference
written here, in float64. Run against the solutions (default) or a submission:

    pytest tests/grading/test_02_stackgan.py
    GANLIB_SUBMISSION=lessons/02_stackgan/exercises.py pytest tests/grading/test_02_stackgan.py
    ganlib grade 02
"""

import numpy as np
import pytest

from ganlib.course import numpy_layers as nl
from ganlib.course.grading import check_batch_norm, check_close, layers_of, run_block, to_numpy


# ganlib names the exercises may use (the stubs point to them); every other ganlib
# name is unreachable to the submission (see ganlib.course.grading).
ALLOWED_GANLIB = {"ganlib.losses": ["generator_loss"], "ganlib.layers": ["ReplicateConcat"]}

# Exercise 7, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 7, "name": "reflection_diversity_with_and_without_ca", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "Why are the samples of a caption nearly copies of each other without CA (diversity 2.3 vs "
                "13.5), why can CA's samples be more diverse than real birds of one species (5.8), and why "
                "compare diversity only between models of similar FID and caption consistency?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def kl_ref(mu, logvar):
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return -0.5 * np.mean(1.0 + logvar - mu**2 - np.exp(logvar))


def bce_ref(x, z):
    x = np.asarray(x, np.float64)
    return z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x)


def conv3x3_ref(x, kernel, bias=None):
    """'same' 3x3 convolution, stride 1 (Keras' cross-correlation), x (B, H, W, C), kernel (3, 3, C, F)."""
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("bhwc,cf->bhwf", padded[:, dy:dy + h, dx:dx + w], kernel[dy, dx])
    return out if bias is None else out + bias


def bn_ref(x, weights, epsilon):
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in weights)
    return gamma * (x - mean) / np.sqrt(var + epsilon) + beta


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32 (convert "
                             "the inputs with ops.convert_to_tensor(x, 'float32'))")


def f32(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------
# 1. reparameterize
# ---------------------------------------------------------------------------


@pytest.mark.exercise(1)
@pytest.mark.points(2)
def test_reparameterize(exercises):
    mu, logvar, eps = f32(4, 6, seed=1), f32(4, 6, seed=2), f32(4, 6, seed=3)
    out = exercises.reparameterize(mu, logvar, eps)
    check_close(out, mu + np.exp(0.5 * logvar.astype(np.float64)) * eps,
                "reparameterize(mu, logvar, eps) (expected mu + exp(logvar / 2) * eps: sigma is the "
                "square root of the variance exp(logvar))", atol=1e-5)
    check_float32(out, "reparameterize")
    check_close(exercises.reparameterize(mu, logvar, np.zeros_like(eps)), mu,
                "reparameterize with eps = 0 (expected mu)", atol=1e-6)


# ---------------------------------------------------------------------------
# 2. kl_divergence
# ---------------------------------------------------------------------------


@pytest.mark.exercise(2)
@pytest.mark.points(2)
def test_kl_divergence_values(exercises):
    mu, logvar = f32(5, 8, seed=4), f32(5, 8, seed=5, scale=0.7)
    out = exercises.kl_divergence(mu, logvar)
    check_close(out, kl_ref(mu, logvar),
                "kl_divergence(mu, logvar) on (5, 8) inputs (expected a scalar: "
                "-0.5 * mean(1 + logvar - mu**2 - exp(logvar)) over batch AND dimensions)", atol=1e-5)
    check_float32(out, "kl_divergence")


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_kl_divergence_is_zero_at_the_prior_and_a_mean(exercises):
    zeros = np.zeros((3, 4), np.float32)
    check_close(exercises.kl_divergence(zeros, zeros), 0.0,
                "kl_divergence(0, 0): N(0, I) against itself (expected 0)", atol=1e-6)
    mu, logvar = f32(3, 4, seed=6), f32(3, 4, seed=7)
    single = kl_ref(mu, logvar)
    check_close(exercises.kl_divergence(np.tile(mu, (2, 3)), np.tile(logvar, (2, 3))), single,
                "kl_divergence on the batch and the dimensions repeated (a MEAN over both must not "
                "change; did you sum?)", atol=1e-5)
    check_close(exercises.kl_divergence(np.full((2, 2), 2.0, np.float32), zeros[:2, :2]), 2.0,
                "kl_divergence(mu=2, logvar=0) (expected mu**2 / 2 = 2)", atol=1e-5)


# ---------------------------------------------------------------------------
# 3. generator_loss_with_kl
# ---------------------------------------------------------------------------


@pytest.mark.exercise(3)
@pytest.mark.points(2)
def test_generator_loss_with_kl(exercises):
    logits = f32(6, seed=8, scale=3.0)
    mu, logvar = f32(6, 5, seed=9), f32(6, 5, seed=10, scale=0.5)
    adversarial = bce_ref(logits, 1.0).mean()
    kl = kl_ref(mu, logvar)
    check_close(exercises.generator_loss_with_kl(logits, mu, logvar, kl_weight=2.0), adversarial + 2.0 * kl,
                "generator_loss_with_kl(fake_logits, mu, logvar, kl_weight=2.0) (expected mean "
                "bce(fake, 1) + 2 * KL)", atol=1e-5)
    check_close(exercises.generator_loss_with_kl(logits, mu, logvar), adversarial + 2.0 * kl,
                "generator_loss_with_kl with the default kl_weight (expected 2.0)", atol=1e-5)
    check_close(exercises.generator_loss_with_kl(logits, mu, logvar, kl_weight=0.0), adversarial,
                "generator_loss_with_kl with kl_weight=0 (expected the adversarial term alone)", atol=1e-5)


# ---------------------------------------------------------------------------
# 4. joint_encoder (3 points)
# ---------------------------------------------------------------------------

def joint_case(exercises, batch, size, cond_dim, ngf, seed):
    """Build joint_encoder(image, c_hat, ngf) in the sandbox, run it on random inputs in
    inference mode; return (output, numpy reference, layers)."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    c_hat = rng.normal(size=(batch, cond_dim)).astype(np.float32)
    name = "joint_encoder(image, c_hat, ngf)"
    out, layers = run_block(exercises.joint_encoder, [(size, size, 3), (cond_dim,)], (ngf,),
                            [image, c_hat], name, seed=seed)
    convs = layers_of(layers, "Conv2D", name, 4)
    norms = layers_of(layers, "BatchNormalization", name, 3)
    expected = [(ngf, 3, 1), (2 * ngf, 4, 2), (4 * ngf, 4, 2), (4 * ngf, 3, 1)]
    got = [(c["config"]["filters"], c["config"]["kernel_size"][0], c["config"]["strides"][0]) for c in convs]
    if got != expected:
        raise AssertionError(f"{name} with ngf={ngf}: expected Conv2D layers (filters, kernel, stride) "
                             f"{expected} in this order, got {got}")
    h = nl.relu(nl.conv2d(image, *convs[0]["weights"]))
    for conv, bn in zip(convs[1:3], norms[:2]):
        h = nl.relu(nl.batch_norm(nl.conv2d(h, *conv["weights"], strides=2), *bn["weights"],
                                  bn["config"]["epsilon"]))
    h = nl.conv2d(nl.replicate_concat(h, c_hat), *convs[3]["weights"])
    return out, nl.relu(nl.batch_norm(h, *norms[2]["weights"], norms[2]["config"]["epsilon"])), layers


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_joint_encoder_layers(exercises):
    _, _, layers = joint_case(exercises, 2, 8, 3, 2, seed=40)
    name = "joint_encoder"
    biases = [c["config"]["use_bias"] for c in layers_of(layers, "Conv2D", name, 4)]
    if biases != [True, False, False, False]:
        raise AssertionError(f"{name}: only the first Conv2D has a bias (a BN follows each of the others); "
                             f"got use_bias {biases}")
    check_batch_norm(layers, name, 0.9, 1e-5, "give each BatchNormalization the reference code's "
                     "momentum=0.9, epsilon=1e-5")


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(2)
def test_joint_encoder_computes_the_equations(exercises):
    out, expected, _ = joint_case(exercises, 2, 8, 5, 2, seed=41)
    check_close(out, expected, "joint_encoder run in inference mode on (2, 8, 8, 3) images and a (2, 5) "
                "c_hat, ngf 2 (expected (2, 2, 2, 8): ReLU(BN(conv3x3([enc(s_0) ; replicate(c_hat)]))), "
                "enc = conv3x3 + ReLU, then two 4x4 stride-2 convs with BN + ReLU)", atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------
# 5. residual_block
# ---------------------------------------------------------------------------

def _block(exercises, x, filters=4, zero_last_bn=False):
    """Build residual_block(h, filters) in the child, give its BatchNormalization layers
    non-trivial statistics (so that inference mode is checked), run it on x.

    Returns (output, [(kernel, bias) per Conv2D], [BN weights per BN layer]).
    """
    shape = x.shape[1:]
    built = exercises.residual_block.model(shape, filters)
    if built is None:
        raise AssertionError("residual_block returned None; did you forget a `return`?")
    kinds = [layer["class"] for layer in built["layers"]]
    convs = [i for i, kind in enumerate(kinds) if kind == "Conv2D"]
    norms = [i for i, kind in enumerate(kinds) if kind == "BatchNormalization"]
    if len(convs) != 2 or len(norms) != 2:
        raise AssertionError(f"residual_block built {len(convs)} Conv2D and {len(norms)} BatchNormalization "
                             "layers; expected 2 of each (conv, BN, ReLU, conv, BN)")
    for i in convs:
        config = built["layers"][i]["config"]
        if tuple(config["kernel_size"]) != (3, 3) or tuple(config["strides"]) != (1, 1) \
                or config["padding"] != "same" or config["filters"] != filters:
            raise AssertionError(f"residual_block: each Conv2D must be 3x3, stride 1, padding 'same', with "
                                 f"`filters` channels; got kernel {tuple(config['kernel_size'])}, strides "
                                 f"{tuple(config['strides'])}, padding {config['padding']!r}, "
                                 f"{config['filters']} filters")
    rng = np.random.default_rng(11)
    weights = {}
    for i in norms:
        weights[i] = [rng.uniform(0.5, 1.5, filters).astype(np.float32),
                      (rng.normal(size=filters) * 0.3).astype(np.float32),
                      (rng.normal(size=filters) * 0.2).astype(np.float32),
                      rng.uniform(0.5, 2.0, filters).astype(np.float32)]
    if zero_last_bn:
        gamma, beta, mean, var = weights[norms[1]]
        weights[norms[1]] = [np.zeros_like(gamma), np.zeros_like(beta), mean, var]
    run = exercises.residual_block.model(shape, filters, weights=weights, x=x)
    eps = [built["layers"][i]["config"].get("epsilon", 1e-3) for i in norms]
    return (run["output"], [run["weights"][i] for i in convs],
            [(run["weights"][i], e) for i, e in zip(norms, eps)])


def _block_ref(x, convs, norms):
    def conv(weights, h):
        return conv3x3_ref(h, np.asarray(weights[0], np.float64), weights[1] if len(weights) > 1 else None)

    r = np.maximum(bn_ref(conv(convs[0], x), *norms[0]), 0.0)
    r = bn_ref(conv(convs[1], r), *norms[1])
    return np.maximum(x + r, 0.0)

@pytest.mark.exercise(5)
@pytest.mark.time_factor(3)
@pytest.mark.points(2)
def test_residual_block_computes_the_equation(exercises):
    x = f32(2, 5, 5, 4, seed=12)
    out, convs, norms = _block(exercises, x)
    check_close(out, _block_ref(x.astype(np.float64), convs, norms),
                "residual_block(h, filters) run in inference mode (expected "
                "ReLU(h + BN2(conv2(ReLU(BN1(conv1(h))))))", atol=1e-4, rtol=1e-4)


@pytest.mark.exercise(5)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_residual_block_is_residual(exercises):
    """With the last BN's scale and offset at 0 the correction vanishes: out = ReLU(h)."""
    x = f32(2, 5, 5, 4, seed=13)
    out, _, _ = _block(exercises, x, zero_last_bn=True)
    check_close(out, np.maximum(x, 0.0),
                "residual_block with the second BatchNormalization's gamma = beta = 0 (expected "
                "ReLU(h): h must be added back after the second BN, then a ReLU)", atol=1e-5)


# ---------------------------------------------------------------------------
# 6. mean_pairwise_distance
# ---------------------------------------------------------------------------


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_mean_pairwise_distance_values(exercises):
    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]], np.float32)
    check_close(exercises.mean_pairwise_distance(f), (5.0 + 8.0 + 5.0) / 3,
                "mean_pairwise_distance of the points (0,0), (3,4), (0,8) (pairs at distances 5, 8, 5)",
                atol=1e-5)
    g = f32(7, 10, seed=14)
    expected = np.mean([np.linalg.norm(g[i].astype(np.float64) - g[j]) for i in range(7) for j in range(i + 1, 7)])
    check_close(exercises.mean_pairwise_distance(g), expected,
                "mean_pairwise_distance of 7 random 10-d points (mean over the 21 pairs i < j)", atol=1e-4)


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_mean_pairwise_distance_of_equal_rows_is_zero(exercises):
    f = np.tile(f32(1, 6, seed=15, scale=100.0), (5, 1))
    check_close(exercises.mean_pairwise_distance(f), 0.0,
                "mean_pairwise_distance of 5 equal rows (expected 0, not NaN: clip the squared "
                "distances at 0 before the square root)", atol=1e-3)
    g = f32(6, 3, seed=16)
    check_close(exercises.mean_pairwise_distance(g[::-1].copy()), exercises.mean_pairwise_distance(g),
                "mean_pairwise_distance must not depend on the order of the rows", atol=1e-5)
