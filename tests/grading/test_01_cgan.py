"""Graded tests of lesson 01 (CGAN / GAN-INT-CLS): 15 points, and Exercise 8 (3 points)
graded by the instructor.

Every test compares the exercise's values with an independent numpy reference
written here, in float64. Run against the solutions (default) or a submission:

    pytest tests/grading/test_01_cgan.py
    GANLIB_SUBMISSION=lessons/01_cgan/exercises.py pytest tests/grading/test_01_cgan.py
    ganlib grade 01
"""

import numpy as np
import pytest

from ganlib.course import numpy_layers as nl
from ganlib.course.grading import check_batch_norm, check_close, layers_of, run_block, to_numpy


# The exercises may import nothing from ganlib: every piece of it is written here.
ALLOWED_GANLIB = {}

# Exercise 8, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 8, "name": "reflection_which_parts_d_checks", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "Why does the matching-aware D learn to check the wings first and the tail so little "
                "(87% vs 55% in the notebook's measurement)? Propose a change to how the wrong captions "
                "are drawn that should make D check the tail, and the numbers you would compare.",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def bce_ref(x, z):
    """-z log sigma(x) - (1 - z) log(1 - sigma(x)), via logaddexp (no log 0)."""
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    return z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x)


def d_loss_ref(real, wrong, fake):
    return bce_ref(real, 1).mean() + 0.5 * (bce_ref(wrong, 0).mean() + bce_ref(fake, 0).mean())


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32 (convert "
                             "the inputs with ops.convert_to_tensor(x, 'float32'))")


def f32(*shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------
# 1. sigmoid_cross_entropy
# ---------------------------------------------------------------------------


@pytest.mark.exercise(1)
@pytest.mark.points(2)
def test_sigmoid_cross_entropy_values(exercises):
    x = f32(4, 5, seed=1)
    z = np.random.default_rng(2).uniform(size=(4, 5)).astype(np.float32)  # soft targets too
    z[0] = 0.0
    z[1] = 1.0
    out = exercises.sigmoid_cross_entropy(x, z)
    check_close(out, bce_ref(x, z), "sigmoid_cross_entropy(logits, labels)", atol=1e-5)
    check_float32(out, "sigmoid_cross_entropy")


@pytest.mark.exercise(1)
@pytest.mark.points(1)
def test_sigmoid_cross_entropy_is_stable_for_large_logits(exercises):
    x = np.array([100.0, -100.0, 100.0, -100.0, 500.0, -500.0, 1000.0, -1000.0, 0.0],
                 np.float32)
    z = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0], np.float32)
    # Expected: ~0, ~0, 100, 100, ~0, 500, 1000, ~0, log 2.
    check_close(exercises.sigmoid_cross_entropy(x, z), bce_ref(x, z),
                "sigmoid_cross_entropy at logits of +-100..1000 (use the stable form "
                "max(x, 0) - x z + log1p(exp(-|x|)), never log(sigmoid(x)))",
                atol=1e-4, rtol=1e-6)


# ---------------------------------------------------------------------------
# 2. generator_loss
# ---------------------------------------------------------------------------


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_generator_loss(exercises):
    fake = f32(7, 1, seed=7)
    out = exercises.generator_loss(fake)
    check_close(out, bce_ref(fake, 1).mean(),
                "generator_loss(fake_logits) (expected the non-saturating loss, a scalar: "
                "mean bce(fake, 1))", atol=1e-5)
    check_float32(out, "generator_loss")
    big = np.array([[-100.0], [100.0]], np.float32)
    check_close(exercises.generator_loss(big), 50.0,
                "generator_loss on logits [-100, 100] (expected (100 + 0) / 2)", atol=1e-4)


# ---------------------------------------------------------------------------
# 3. one_hot_labels
# ---------------------------------------------------------------------------


@pytest.mark.exercise(3)
@pytest.mark.points(1)
def test_one_hot_labels(exercises):
    labels = np.array([2, 0, 4, 2], np.int32)
    out = exercises.one_hot_labels(labels, 5)
    check_close(out, np.eye(5)[labels], "one_hot_labels([2, 0, 4, 2], 5)", atol=0)
    check_float32(out, "one_hot_labels")
    for bad in ([0, 5], [-1, 1]):
        try:
            exercises.one_hot_labels(np.array(bad, np.int32), 5)
        except ValueError as error:
            assert "labels" in str(error), (
                f"one_hot_labels({bad}, 5) raised ValueError({str(error)!r}); the message "
                "must name the argument `labels`")
        else:
            raise AssertionError(f"one_hot_labels({bad}, 5) must raise ValueError: "
                                 "a class id outside [0, num_classes) is a bug, not a zero row")


# ---------------------------------------------------------------------------
# 4. concat_condition
# ---------------------------------------------------------------------------


@pytest.mark.exercise(4)
@pytest.mark.points(2)
def test_concat_condition(exercises):
    batch, height, width, channels, dim = 2, 3, 5, 4, 6  # H != W catches a swap
    h = f32(batch, height, width, channels, seed=12)
    c = f32(batch, dim, seed=13)
    out = exercises.concat_condition(h, c)
    expected = np.concatenate(
        [h, np.broadcast_to(c[:, None, None, :], (batch, height, width, dim))], axis=-1)
    got = check_close(out, expected, "concat_condition(h, c) with h (2, 3, 5, 4) and "
                      "c (2, 6) (expected (B, H, W, C + D): h first, then c at every pixel)",
                      atol=1e-6)
    check_float32(out, "concat_condition")
    assert np.array_equal(got[..., :channels], h), \
        "concat_condition: the first C channels must be h, unchanged"
    for b in range(batch):
        assert np.array_equal(got[b, :, :, channels:], np.broadcast_to(c[b], (height, width, dim))), \
            f"concat_condition: channels C: of example {b} must equal c[{b}] at every pixel"


# ---------------------------------------------------------------------------
# 5. matching_aware_d_loss
# ---------------------------------------------------------------------------


@pytest.mark.exercise(5)
@pytest.mark.points(2)
def test_matching_aware_d_loss_values(exercises):
    real, wrong, fake = f32(6, 1, seed=3), f32(6, 1, seed=4), f32(6, 1, seed=5)
    out = exercises.matching_aware_d_loss(real, wrong, fake)
    check_close(out, d_loss_ref(real, wrong, fake),
                "matching_aware_d_loss(real_logits, wrong_logits, fake_logits) on (6, 1) "
                "logits (expected a scalar: mean over the batch of each term)", atol=1e-5)
    check_float32(out, "matching_aware_d_loss")
    # Flat (B,) logits work the same.
    check_close(exercises.matching_aware_d_loss(real[:, 0], wrong[:, 0], fake[:, 0]),
                d_loss_ref(real, wrong, fake), "matching_aware_d_loss on (6,) logits",
                atol=1e-5)


@pytest.mark.exercise(5)
@pytest.mark.points(1)
def test_matching_aware_d_loss_weights_and_batch_mean(exercises):
    x = f32(5, 1, seed=6)
    sure_real = np.full((5, 1), 100.0, np.float32)   # bce(., 1) ~ 0
    sure_fake = np.full((5, 1), -100.0, np.float32)  # bce(., 0) ~ 0
    f = exercises.matching_aware_d_loss
    # Only one term is non-zero at a time: the real term counts fully, the
    # wrong and fake terms each count one half.
    check_close(f(x, sure_fake, sure_fake), bce_ref(x, 1).mean(),
                "matching_aware_d_loss with only the real term non-zero (expected "
                "mean bce(real, 1), weight 1)", atol=1e-5)
    check_close(f(sure_real, x, sure_fake), 0.5 * bce_ref(x, 0).mean(),
                "matching_aware_d_loss with only the wrong term non-zero (expected "
                "0.5 * mean bce(wrong, 0))", atol=1e-5)
    check_close(f(sure_real, sure_fake, x), 0.5 * bce_ref(x, 0).mean(),
                "matching_aware_d_loss with only the fake term non-zero (expected "
                "0.5 * mean bce(fake, 0))", atol=1e-5)
    # A mean, not a sum: repeating the batch does not change the loss.
    twice = [np.concatenate([a, a]) for a in (x, sure_fake, sure_fake)]
    check_close(f(*twice), bce_ref(x, 1).mean(),
                "matching_aware_d_loss on a batch repeated twice (a batch MEAN must not "
                "change; did you sum over the batch?)", atol=1e-5)


# ---------------------------------------------------------------------------
# 6. interpolate_embeddings
# ---------------------------------------------------------------------------


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_interpolate_embeddings_ends(exercises):
    t1, t2 = f32(3, 8, seed=8), f32(3, 8, seed=9)
    out = exercises.interpolate_embeddings(t1, t2, beta=1.0)
    check_close(out, t1, "interpolate_embeddings(t1, t2, beta=1.0) (expected t1)", atol=1e-6)
    check_float32(out, "interpolate_embeddings")
    check_close(exercises.interpolate_embeddings(t1, t2, beta=0.0), t2,
                "interpolate_embeddings(t1, t2, beta=0.0) (expected t2)", atol=1e-6)


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_interpolate_embeddings_middle(exercises):
    t1, t2 = f32(3, 8, seed=10), f32(3, 8, seed=11)
    expected = 0.3 * t1.astype(np.float64) + 0.7 * t2
    check_close(exercises.interpolate_embeddings(t1, t2, beta=0.3), expected,
                "interpolate_embeddings(t1, t2, beta=0.3) (expected 0.3 t1 + 0.7 t2)",
                atol=1e-5)
    check_close(exercises.interpolate_embeddings(t1, t2), 0.5 * (t1.astype(np.float64) + t2),
                "interpolate_embeddings(t1, t2) with the default beta (expected 0.5)",
                atol=1e-5)
    beta = np.array([[0.0], [0.25], [1.0]], np.float32)  # one beta per row
    check_close(exercises.interpolate_embeddings(t1, t2, beta=beta),
                beta * t1.astype(np.float64) + (1 - beta) * t2,
                "interpolate_embeddings with a (B, 1) beta per row", atol=1e-5)


# ---------------------------------------------------------------------------
# 7. discriminator_head (3 points)
# ---------------------------------------------------------------------------

def head_case(exercises, batch, channels, cond_dim, proj_dim, seed, one_hot=False):
    """Build discriminator_head(h, condition, proj_dim) in the sandbox, run it on random
    (h, condition) in inference mode; return (output, numpy reference, layers)."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(batch, 4, 4, channels)).astype(np.float32)
    c = (np.eye(cond_dim, dtype=np.float32)[rng.integers(0, cond_dim, batch)] if one_hot
         else rng.normal(size=(batch, cond_dim)).astype(np.float32))
    name = "discriminator_head(h, condition, proj_dim)"
    out, layers = run_block(exercises.discriminator_head, [(4, 4, channels), (cond_dim,)], (proj_dim,),
                            [h, c], name, seed=seed)
    (fc,) = layers_of(layers, "Dense", name, 1)
    convs = layers_of(layers, "Conv2D", name, 2)
    (bn,) = layers_of(layers, "BatchNormalization", name, 1)
    one = [conv for conv in convs if tuple(conv["config"]["kernel_size"]) == (1, 1)]
    four = [conv for conv in convs if tuple(conv["config"]["kernel_size"]) == (4, 4)]
    if len(one) != 1 or len(four) != 1:
        raise AssertionError(f"{name}: expected one 1x1 Conv2D and one 4x4 Conv2D, got kernels "
                             f"{[tuple(c['config']['kernel_size']) for c in convs]}")
    t = nl.leaky_relu(nl.dense(c, *fc["weights"]), 0.2)
    u = nl.conv2d(nl.replicate_concat(h, t), *one[0]["weights"])
    u = nl.leaky_relu(nl.batch_norm(u, *bn["weights"], bn["config"]["epsilon"]), 0.2)
    logits = nl.conv2d(u, *four[0]["weights"], padding="valid").reshape(batch)
    return out, logits, layers


@pytest.mark.exercise(7)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_discriminator_head_layers(exercises):
    _, _, layers = head_case(exercises, 2, 6, 5, 3, seed=70)
    name = "discriminator_head"
    (fc,) = layers_of(layers, "Dense", name, 1)
    if fc["config"]["units"] != 3:
        raise AssertionError(f"{name}: the Dense layer must compress the condition to proj_dim = 3 "
                             f"units, got {fc['config']['units']}")
    for conv in layers_of(layers, "Conv2D", name, 2):
        config, kernel = conv["config"], tuple(conv["config"]["kernel_size"])
        if kernel == (1, 1) and (config["filters"] != 6 or config["use_bias"]):
            raise AssertionError(f"{name}: the 1x1 Conv2D must keep h's 6 channels, without bias; got "
                                 f"{config['filters']} filters, use_bias={config['use_bias']}")
        if kernel == (4, 4) and (config["filters"] != 1 or config["padding"] != "valid"
                                 or not config["use_bias"]):
            raise AssertionError(f"{name}: the 4x4 Conv2D must give 1 logit with padding 'valid' and a "
                                 f"bias; got {config['filters']} filters, padding {config['padding']!r}, "
                                 f"use_bias={config['use_bias']}")
    check_batch_norm(layers, name, 0.99, 1e-3, "use BatchNormalization() with Keras' defaults (momentum "
                     "0.99, epsilon 1e-3, as Config.fast())")
    slopes = [layer["config"]["negative_slope"] for layer in layers_of(layers, "LeakyReLU", name)]
    if len(slopes) != 2 or any(abs(a - 0.2) > 1e-9 for a in slopes):
        raise AssertionError(f"{name}: expected two LeakyReLU(0.2) (after the Dense and after the BN), "
                             f"got slopes {slopes}")


@pytest.mark.exercise(7)
@pytest.mark.time_factor(3)
@pytest.mark.points(2)
def test_discriminator_head_computes_the_equations(exercises):
    out, expected, _ = head_case(exercises, 3, 4, 6, 5, seed=71)
    check_close(out, expected, "discriminator_head run in inference mode on h (3, 4, 4, 4) and a (3, 6) "
                "condition, proj_dim 5 (expected logits (B,): conv4x4(LReLU(BN(conv1x1([h ; "
                "replicate(LReLU(Dense(c)))])))))", atol=1e-4, rtol=1e-4)
