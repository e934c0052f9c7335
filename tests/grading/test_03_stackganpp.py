"""Graded tests of lesson 03 (StackGAN++): 19 points, and Exercise 7 (3 points) graded by
the instructor.

Every test compares the exercise's values with an independent numpy reference
written here, in float64. Run against the solutions (default) or a submission:

    pytest tests/grading/test_03_stackganpp.py
    GANLIB_SUBMISSION=lessons/03_stackganpp/exercises.py pytest tests/grading/test_03_stackganpp.py
    ganlib grade 03
"""

import numpy as np
import pytest

from ganlib.course import numpy_layers as nl
from ganlib.course.grading import check_batch_norm, check_close, layers_of, run_block, to_numpy


# ganlib names the exercises may use (the stubs point to them); every other ganlib
# name is unreachable to the submission (see ganlib.course.grading).
ALLOWED_GANLIB = {"ganlib.losses": ["bce"], "ganlib.layers": ["ReplicateConcat", "GLU"]}

# Exercise 7, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 7, "name": "reflection_colour_consistency_ablation", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "What ties the branches' colours together when alpha = 0, why does the paper use alpha = 50 "
                "without text and 0 with text, and, given the text model's measured mismatch, would you "
                "switch the term on for SynthBirds with text, and what would you measure to decide?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def bce_ref(x, z):
    """Batch mean of -z log sigma(x) - (1 - z) log(1 - sigma(x))."""
    x = np.asarray(x, np.float64)
    return float(np.mean(z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x)))


def stats_ref(images):
    x = np.asarray(images, np.float64).reshape(len(images), -1, 3)
    mu = x.mean(axis=1)
    centred = x - mu[:, None, :]
    return mu, np.einsum("bni,bnj->bij", centred, centred) / x.shape[1]


def colour_ref(a, b, lambda_mean=1.0, lambda_cov=5.0):
    (mu_a, s_a), (mu_b, s_b) = stats_ref(a), stats_ref(b)
    return lambda_mean * np.mean((mu_a - mu_b) ** 2) + lambda_cov * np.mean((s_a - s_b) ** 2)


def d_ref(rc, ru, wc, wu, fc, fu, w):
    if w == 0:
        return bce_ref(rc, 1) + 0.5 * (bce_ref(wc, 0) + bce_ref(fc, 0))
    return (bce_ref(rc, 1) + bce_ref(wc, 0) + bce_ref(fc, 0)
            + w * (bce_ref(ru, 1) + bce_ref(wu, 1) + bce_ref(fu, 0)))


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32 (convert "
                             "the inputs with ops.convert_to_tensor(x, 'float32'))")


def images(*shape, seed=0):
    """Images in [-1, 1] with per-image colour casts (so means and covariances differ)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape) * rng.uniform(0.2, 1.0, (shape[0], 1, 1, 3)) \
        + rng.uniform(-0.3, 0.3, (shape[0], 1, 1, 3))
    return np.clip(x, -1, 1).astype(np.float32)


def logits(n, seed):
    return (np.random.default_rng(seed).normal(size=n) * 3.0).astype(np.float32)


# ---------------------------------------------------------------------------
# 1. tree_node (3 points)
# ---------------------------------------------------------------------------

def node_case(exercises, batch, size, channels, cond_dim, num_residual, seed):
    """Build tree_node(h, c, num_residual) in the sandbox, run it on random inputs in
    inference mode; return (output, numpy reference, layers)."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    c = rng.normal(size=(batch, cond_dim)).astype(np.float32)
    name = "tree_node(h, c, num_residual)"
    out, layers = run_block(exercises.tree_node, [(size, size, channels), (cond_dim,)], (num_residual,),
                            [h, c], name, seed=seed)
    convs = layers_of(layers, "Conv2D", name, 2 + 2 * num_residual)
    norms = layers_of(layers, "BatchNormalization", name, 2 + 2 * num_residual)
    expected = [2 * channels] + [2 * channels, channels] * num_residual + [channels]
    got = [conv["config"]["filters"] for conv in convs]
    if got != expected:
        raise AssertionError(f"{name} with C={channels}, num_residual={num_residual}: expected Conv2D "
                             f"filters {expected} in this order (join, residual blocks, upsampling), got {got}")

    def conv_bn(x, k):
        bn = norms[k]
        return nl.batch_norm(nl.conv2d(x, *convs[k]["weights"]), *bn["weights"], bn["config"]["epsilon"])

    x = nl.glu(conv_bn(nl.replicate_concat(h, c), 0))
    for r in range(num_residual):
        x = x + conv_bn(nl.glu(conv_bn(x, 1 + 2 * r)), 2 + 2 * r)
    return out, nl.glu(conv_bn(nl.upsample_nearest(x, 2), 1 + 2 * num_residual)), layers


@pytest.mark.exercise(1)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_tree_node_layers(exercises):
    _, _, layers = node_case(exercises, 2, 4, 4, 3, 1, seed=60)
    name = "tree_node"
    for conv in layers_of(layers, "Conv2D", name):
        config = conv["config"]
        init = config["kernel_initializer"]
        init = init.get("class_name") if isinstance(init, dict) else init
        if (tuple(config["kernel_size"]) != (3, 3) or config["padding"] != "same" or config["use_bias"]
                or str(init).lower() != "orthogonal"):
            raise AssertionError(f"{name}: every Conv2D must be 3x3, padding 'same', without bias, with "
                                 f"kernel_initializer 'orthogonal'; got kernel {tuple(config['kernel_size'])}, "
                                 f"padding {config['padding']!r}, use_bias {config['use_bias']}, "
                                 f"initializer {init}")
    check_batch_norm(layers, name, 0.9, 1e-5, "give each BatchNormalization the reference code's "
                     "momentum=0.9, epsilon=1e-5")
    (up,) = layers_of(layers, "UpSampling2D", name, 1)
    if up["config"]["interpolation"] != "nearest" or tuple(up["config"]["size"]) != (2, 2):
        raise AssertionError(f"{name}: upsample with UpSampling2D(2, interpolation='nearest'); got size "
                             f"{up['config']['size']}, interpolation {up['config']['interpolation']!r}")


@pytest.mark.exercise(1)
@pytest.mark.time_factor(3)
@pytest.mark.points(2)
def test_tree_node_computes_the_equations(exercises):
    out, expected, _ = node_case(exercises, 2, 4, 4, 3, 2, seed=61)
    check_close(out, expected, "tree_node run in inference mode on h (2, 4, 4, 4), c (2, 3) and two "
                "residual blocks (expected (2, 8, 8, 2): join, GLU-conv, x + BN(conv(GLU-conv(x))) twice, "
                "then nearest x2 and a GLU-conv)", atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------
# 2. downsample
# ---------------------------------------------------------------------------


@pytest.mark.exercise(2)
@pytest.mark.points(2)
def test_downsample_is_the_block_mean(exercises):
    x = images(2, 8, 8, 3, seed=50)
    out = exercises.downsample(x, 2)
    expected = x.astype(np.float64).reshape(2, 2, 4, 2, 4, 3).mean(axis=(2, 4))
    check_close(out, expected, "downsample(images (2, 8, 8, 3), 2) (expected each output pixel "
                "to be the mean of a 4x4 block)", atol=1e-6)
    check_float32(out, "downsample")
    check_close(exercises.downsample(x, 4), x.astype(np.float64).reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4)),
                "downsample(images (2, 8, 8, 3), 4) (2x2 blocks)", atol=1e-6)


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_downsample_keeps_the_colour_mean_and_the_same_size(exercises):
    x = images(3, 16, 16, 3, seed=51)
    check_close(exercises.downsample(x, 16), x, "downsample to the same size (expected the "
                "images unchanged)", atol=0)
    mu_small = stats_ref(to_numpy(exercises.downsample(x, 4)))[0]
    check_close(mu_small, stats_ref(x)[0], "the colour mean of downsample(x, 4) (an area average "
                "keeps each image's mean colour)", atol=1e-5)


# ---------------------------------------------------------------------------
# 3. joint_d_loss
# ---------------------------------------------------------------------------

SIX = ("real_cond", "real_uncond", "wrong_cond", "wrong_uncond", "fake_cond", "fake_uncond")

@pytest.mark.exercise(3)
@pytest.mark.points(2)
def test_joint_d_loss_values(exercises):
    six = [logits(6, seed) for seed in range(10, 16)]
    out = exercises.joint_d_loss(*six, uncond_weight=1.0)
    check_close(out, d_ref(*six, 1.0), "joint_d_loss(...) with uncond_weight=1 on (6,) logits "
                "(expected bce(r_c,1) + bce(w_c,0) + bce(f_c,0) + bce(r_u,1) + bce(w_u,1) + "
                "bce(f_u,0), each a batch mean)", atol=1e-5)
    check_float32(out, "joint_d_loss")
    check_close(exercises.joint_d_loss(*six, uncond_weight=0.5), d_ref(*six, 0.5),
                "joint_d_loss(...) with uncond_weight=0.5 (the unconditional terms are scaled "
                "by lambda_u)", atol=1e-5)


@pytest.mark.exercise(3)
@pytest.mark.points(2)
def test_joint_d_loss_targets_of_each_term(exercises):
    x = logits(5, 20)
    sure = {1: np.full(5, 100.0, np.float32), 0: np.full(5, -100.0, np.float32)}  # bce ~ 0
    targets = dict(zip(SIX, (1, 1, 0, 1, 0, 0)))
    for name in SIX:
        args = [x if other == name else sure[targets[other]] for other in SIX]
        target = targets[name]
        check_close(exercises.joint_d_loss(*args, uncond_weight=1.0), bce_ref(x, target),
                    f"joint_d_loss with only {name} not yet classified (expected "
                    f"mean bce({name}, {target}), weight 1"
                    + ("; the wrong pair's IMAGE is real, so its unconditional target is 1"
                       if name == "wrong_uncond" else "") + ")", atol=1e-4)


@pytest.mark.exercise(3)
@pytest.mark.points(1)
def test_joint_d_loss_without_the_unconditional_term_is_gan_cls(exercises):
    six = [logits(4, seed) for seed in range(30, 36)]
    check_close(exercises.joint_d_loss(*six, uncond_weight=0.0), d_ref(*six, 0.0),
                "joint_d_loss with uncond_weight=0 (the reference falls back to GAN-CLS: "
                "bce(r_c,1) + (bce(w_c,0) + bce(f_c,0)) / 2)", atol=1e-5)


# ---------------------------------------------------------------------------
# 4. joint_g_loss
# ---------------------------------------------------------------------------


@pytest.mark.exercise(4)
@pytest.mark.points(2)
def test_joint_g_loss(exercises):
    fc, fu = logits(7, 40), logits(7, 41)
    out = exercises.joint_g_loss(fc, fu, uncond_weight=1.0)
    check_close(out, bce_ref(fc, 1) + bce_ref(fu, 1), "joint_g_loss(fake_cond, fake_uncond, 1.0) "
                "(expected mean bce(f_c, 1) + mean bce(f_u, 1))", atol=1e-5)
    check_float32(out, "joint_g_loss")
    check_close(exercises.joint_g_loss(fc, fu, uncond_weight=0.25), bce_ref(fc, 1) + 0.25 * bce_ref(fu, 1),
                "joint_g_loss with uncond_weight=0.25", atol=1e-5)
    check_close(exercises.joint_g_loss(np.array([-100.0, 100.0], np.float32), np.full(2, 100.0, np.float32),
                                       uncond_weight=1.0), 50.0,
                "joint_g_loss with fake_cond [-100, 100] and fake_uncond 100 (expected (100 + 0) / 2)",
                atol=1e-3)


# ---------------------------------------------------------------------------
# 5. colour_statistics
# ---------------------------------------------------------------------------


@pytest.mark.exercise(5)
@pytest.mark.points(1)
def test_colour_statistics_mean(exercises):
    x = images(3, 4, 6, 3, seed=1)  # H != W
    mu, sigma = exercises.colour_statistics(x)
    check_close(mu, stats_ref(x)[0], "colour_statistics(images)[0], the per-image mean mu "
                "(expected (B, 3): the mean over the H*W pixels of each image)", atol=1e-5)
    check_float32(mu, "colour_statistics (mu)")


@pytest.mark.exercise(5)
@pytest.mark.points(2)
def test_colour_statistics_covariance(exercises):
    x = images(3, 4, 6, 3, seed=2)
    _, sigma = exercises.colour_statistics(x)
    check_close(sigma, stats_ref(x)[1], "colour_statistics(images)[1], the per-image covariance "
                "Sigma (expected (B, 3, 3), biased: divided by N = H*W, not N - 1)", atol=1e-5)
    check_float32(sigma, "colour_statistics (sigma)")
    # A flat-colour image has zero covariance; a known two-pixel image has a known one.
    pair = np.array([[[[1.0, 0.0, 0.0], [-1.0, 0.0, 0.5]]]], np.float32)  # (1, 1, 2, 3)
    expected = np.array([[[1.0, 0.0, -0.25], [0.0, 0.0, 0.0], [-0.25, 0.0, 0.0625]]])
    check_close(exercises.colour_statistics(pair)[1], expected,
                "colour_statistics on the two pixels (1, 0, 0) and (-1, 0, 0.5)", atol=1e-6)


# ---------------------------------------------------------------------------
# 6. color_consistency
# ---------------------------------------------------------------------------


@pytest.mark.exercise(6)
@pytest.mark.points(2)
def test_color_consistency_values(exercises):
    a, b = images(4, 16, 16, 3, seed=3), images(4, 8, 8, 3, seed=4)  # two resolutions
    out = exercises.color_consistency(a, b)
    check_close(out, colour_ref(a, b), "color_consistency(x_a, x_b) on (4, 16, 16, 3) and "
                "(4, 8, 8, 3) images (expected a scalar: lambda_1 * mean of (mu_a - mu_b)^2 + "
                "lambda_2 * mean of (Sigma_a - Sigma_b)^2, lambda_1 = 1, lambda_2 = 5)", atol=1e-5)
    check_float32(out, "color_consistency")
    check_close(exercises.color_consistency(a, a), 0.0,
                "color_consistency(x, x) (the same images: expected 0)", atol=1e-7)


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_color_consistency_weights_and_mean_reduction(exercises):
    a, b = images(4, 8, 8, 3, seed=5), images(4, 8, 8, 3, seed=6)
    check_close(exercises.color_consistency(a, b, lambda_mean=1.0, lambda_cov=0.0),
                colour_ref(a, b, 1.0, 0.0), "color_consistency with lambda_cov=0 (only the mean "
                "term: a MEAN over the batch and the 3 components, not a sum)", atol=1e-6)
    check_close(exercises.color_consistency(a, b, lambda_mean=0.0, lambda_cov=2.0),
                colour_ref(a, b, 0.0, 2.0), "color_consistency with lambda_mean=0, lambda_cov=2 "
                "(only the covariance term: a MEAN over the batch and the 9 entries)", atol=1e-6)
