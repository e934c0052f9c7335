"""Graded tests of lesson 05 (HDGAN): 13 points, and Exercise 5 (3 points) graded by the
instructor.

Every test compares the exercise's values with an independent numpy reference written
here, in float64: the LSGAN losses as PyTorch's `MSELoss` means (the reference code's
`compute_d_pair_loss` / `compute_d_img_loss`), the ranking loss as explicit loops over the
batch's pairs, and the side-output head with `ganlib.course.numpy_layers` on the weights
drawn by `run_block`. Run against the solutions (default) or a submission:

    pytest tests/grading/test_05_hdgan.py
    GANLIB_SUBMISSION=lessons/05_hdgan/exercises.py pytest tests/grading/test_05_hdgan.py
    ganlib grade 05
"""

import numpy as np
import pytest

from ganlib.course import numpy_layers as nl
from ganlib.course.grading import check_close, layers_of, run_block, to_numpy

ALLOWED_GANLIB = {"ganlib.layers": ["ReflectionPadding2D"]}

# Exercise 5, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 5, "name": "reflection_nested_discriminators", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "What does a discriminator at a small side output give the layers of G below it that the top "
                "discriminator alone does not, why does it matter more at high resolution, what do the side "
                "outputs cost and buy, and what evidence would you need before concluding they help here?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def mse(x, target):
    return float(np.mean((np.asarray(x, np.float64) - target) ** 2))


def pair_ref(real, wrong, fake):
    return mse(real, 1.0) + 0.5 * (mse(wrong, 0.0) + mse(fake, 0.0))


def local_ref(real, wrong, fake):
    return mse(fake, 0.0) + 0.5 * (mse(wrong, 1.0) + mse(real, 1.0))


def ranking_ref(image_emb, text_emb, margin=0.2):
    v, t = np.asarray(image_emb, np.float64), np.asarray(text_emb, np.float64)
    b = len(v)

    def s(i, j):
        return v[i] @ t[j] / (np.linalg.norm(v[i]) * np.linalg.norm(t[j]))

    total = 0.0
    for k in range(b):
        for j in range(b):
            if j != k:
                total += max(0.0, margin - s(k, k) + s(k, j))   # image k, a wrong caption
                total += max(0.0, margin - s(k, k) + s(j, k))   # caption k, a wrong image
    return total / b


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32")


# ---------------------------------------------------------------------------
# 1. pair_loss (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(1)
def test_pair_loss_values(exercises):
    rng = np.random.default_rng(1)
    real, wrong, fake = (rng.normal(size=6).astype(np.float32) for _ in range(3))
    out = exercises.pair_loss(real, wrong, fake)
    check_close(out, pair_ref(real, wrong, fake), "pair_loss(real, wrong, fake): mse(real, 1) + (mse(wrong, 0) "
                "+ mse(fake, 0)) / 2, each a mean over the batch", atol=1e-5)
    check_float32(out, "pair_loss")


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_pair_loss_targets(exercises):
    """A perfect D scores 0; swapping the roles of real and fake costs 1 + (1 + 0) / 2."""
    ones, zeros = np.ones(4, np.float32), np.zeros(4, np.float32)
    check_close(exercises.pair_loss(ones, zeros, zeros), 0.0, "pair_loss of a perfect D (real 1, wrong and "
                "fake 0)", atol=1e-6)
    check_close(exercises.pair_loss(zeros, zeros, ones), 1.5, "pair_loss with real scored 0, wrong 0 and fake 1 "
                "(expected 1 + (0 + 1) / 2)", atol=1e-6)


# ---------------------------------------------------------------------------
# 2. local_image_loss (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(2)
def test_local_image_loss_values(exercises):
    rng = np.random.default_rng(2)
    real, wrong, fake = (rng.normal(size=(3, 5, 5, 1)).astype(np.float32) for _ in range(3))
    out = exercises.local_image_loss(real, wrong, fake)
    check_close(out, local_ref(real, wrong, fake), "local_image_loss on (3, 5, 5, 1) patch maps: mse(fake, 0) + "
                "(mse(wrong, 1) + mse(real, 1)) / 2, means over the batch and the map", atol=1e-5)
    check_float32(out, "local_image_loss")


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_local_image_loss_counts_the_wrong_image_real(exercises):
    ones, zeros = np.ones((2, 1, 1, 1), np.float32), np.zeros((2, 1, 1, 1), np.float32)
    check_close(exercises.local_image_loss(ones, ones, zeros), 0.0, "local_image_loss with real and WRONG "
                "patches scored 1 and fake 0 (the wrong image is a real image: expected 0)", atol=1e-6)
    check_close(exercises.local_image_loss(ones, zeros, zeros), 0.5, "local_image_loss with the wrong image "
                "scored 0 (expected (1 + 0) / 2 = 0.5: it should have scored 1)", atol=1e-6)


# ---------------------------------------------------------------------------
# 3. bidirectional_ranking_loss (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_bidirectional_ranking_loss_values(exercises):
    rng = np.random.default_rng(3)
    v, t = rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=(5, 7)).astype(np.float32)
    out = exercises.bidirectional_ranking_loss(v, t, 0.2)
    check_close(out, ranking_ref(v, t, 0.2), "bidirectional_ranking_loss (B = 5, margin 0.2): the hinge over "
                "every wrong caption of each image plus every wrong image of each caption, cosine "
                "similarities, summed and divided by B", atol=1e-5)
    check_float32(out, "bidirectional_ranking_loss")


@pytest.mark.points(1)
@pytest.mark.exercise(3)
def test_bidirectional_ranking_loss_uses_cosine_and_the_margin(exercises):
    rng = np.random.default_rng(4)
    v, t = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    scale = np.array([[0.1], [10.0], [3.0], [0.5]], np.float32)
    check_close(exercises.bidirectional_ranking_loss(v * scale, t, 0.5), ranking_ref(v, t, 0.5),
                "bidirectional_ranking_loss with image embeddings of norms from 0.1 to 10 (cosine similarity: "
                "the norms must not matter), margin 0.5", atol=1e-5)


@pytest.mark.points(1)
@pytest.mark.exercise(3)
def test_bidirectional_ranking_loss_of_a_perfect_embedding(exercises):
    """Orthogonal matching pairs: every wrong pair scores 0, so the loss is 0 for a margin
    below 1 and 2 (B - 1) (m - 1) for a margin m above it."""
    eye = np.eye(3, dtype=np.float32)
    check_close(exercises.bidirectional_ranking_loss(eye, 2 * eye, 0.2), 0.0,
                "bidirectional_ranking_loss when each image equals its caption and the pairs are orthogonal",
                atol=1e-6)
    check_close(exercises.bidirectional_ranking_loss(eye, eye, 1.5), 2 * 2 * 0.5,
                "bidirectional_ranking_loss of orthogonal pairs with margin 1.5 (expected 2 (B-1)(m-1) = 2)",
                atol=1e-5)


# ---------------------------------------------------------------------------
# 4. side_output: the generator's side-output head (3 points)
# ---------------------------------------------------------------------------

def side_output_case(exercises, batch, size, channels, seed):
    """Build side_output(h, size) in the sandbox, run it on a random h in inference mode;
    return (output, numpy reference, layers)."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    name = "side_output(h, size)"
    out, layers = run_block(exercises.side_output, (size, size, channels), (size,), h, name, seed=seed)
    (conv,) = layers_of(layers, "Conv2D", name, 1)
    expected = nl.tanh(nl.conv2d(nl.reflection_pad(h, 1), *conv["weights"], padding="valid"))
    return out, expected, layers


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_side_output_layers(exercises):
    _, _, layers = side_output_case(exercises, 2, 8, 5, seed=40)
    name = "side_output"
    (conv,) = layers_of(layers, "Conv2D", name, 1)
    config = conv["config"]
    if (config["filters"] != 3 or tuple(config["kernel_size"]) != (3, 3) or config["use_bias"]
            or config["padding"] != "valid"):
        raise AssertionError(f"{name}: expected Conv2D(3, 3, use_bias=False) with padding 'valid' (after the "
                             f"reflection padding); got {config['filters']} filters, kernel "
                             f"{tuple(config['kernel_size'])}, use_bias={config['use_bias']}, padding "
                             f"{config['padding']!r}")
    (pad,) = layers_of(layers, "ReflectionPadding2D", name, 1)
    if pad["config"]["padding"] not in (1, [1, 1], (1, 1), [[1, 1], [1, 1]], ((1, 1), (1, 1))):
        raise AssertionError(f"{name}: the reflection padding must be 1 pixel, got {pad['config']['padding']}")


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(2)
def test_side_output_computes_the_equation(exercises):
    out, expected, _ = side_output_case(exercises, 3, 8, 4, seed=41)
    check_close(out, expected, "side_output run on h (3, 8, 8, 4): tanh(conv3x3(reflect_pad_1(h))), no bias "
                "(the border pixels see mirrored features, not zeros)", atol=1e-4, rtol=1e-4)
