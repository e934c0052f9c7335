"""Hidden graded tests of lesson 05 (run by the autograder only): 5 points.

Other values than the visible tests; the losses run inside the backend's compiled step
with their gradients checked (`check_backend`), and the side-output head on a
non-square batch of one."""

import numpy as np
import pytest

from ganlib.course import numpy_layers as nl
from ganlib.course.grading import check_backend, check_close, layers_of, run_block

ALLOWED_GANLIB = {"ganlib.layers": ["ReflectionPadding2D"]}

# For the instructor: what a full answer to Exercise 5 (3 points) says.
RUBRIC = """
1 point: a discriminator at a small side output sends its gradient straight into the lower layers
  of G (deep supervision): they are told what a plausible 16 or 64 px bird looks like, with its
  text, instead of receiving only what is left of the top discriminator's gradient after it has
  passed through every layer above them; the coarse layout and colours are learnt early and the
  higher layers only add detail.
1 point: the higher the top resolution, the longer the path from the top D to the first layers and
  the easier it is for the top D to win on high-frequency detail alone (training collapses or
  produces textures without a bird); the small outputs keep a matching game at low resolution
  where D cannot win that way. They cost the extra discriminators' compute and memory (small:
  their inputs are small) and nothing at inference (the heads are 3x3 convolutions).
1 point: one short run from one seed cannot separate the effect from noise: the notebook's FAST
  runs are ~100 steps; one would need the full preset (or longer), several seeds, and the FID
  analogue and caption consistency of the largest output over training (a curve, not one point),
  and ideally the stability (how often a run diverges) with and without the nested D's.
"""


def mse(x, target):
    return np.mean((np.asarray(x, np.float64) - target) ** 2)


def pair_ref(real, wrong, fake):
    return mse(real, 1.0) + 0.5 * (mse(wrong, 0.0) + mse(fake, 0.0))


def local_ref(real, wrong, fake):
    return mse(fake, 0.0) + 0.5 * (mse(wrong, 1.0) + mse(real, 1.0))


def ranking_ref(v, t, margin=0.2):
    v, t = np.asarray(v, np.float64), np.asarray(t, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    s = v @ t.T
    off = 1.0 - np.eye(len(s))
    return (np.sum(np.maximum(0, margin - np.diag(s)[:, None] + s) * off)
            + np.sum(np.maximum(0, margin - np.diag(s)[None, :] + s) * off)) / len(s)


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_pair_loss_in_the_training_step(exercises):
    rng = np.random.default_rng(501)
    real, wrong, fake = (rng.normal(size=5).astype(np.float32) for _ in range(3))
    check_backend(exercises.pair_loss, (real, wrong, fake), pair_ref, "pair_loss")


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_local_image_loss_in_the_training_step(exercises):
    rng = np.random.default_rng(502)
    real, wrong, fake = (rng.normal(size=(2, 3, 3, 1)).astype(np.float32) for _ in range(3))
    check_backend(exercises.local_image_loss, (real, wrong, fake), local_ref, "local_image_loss")


@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_bidirectional_ranking_loss_in_the_training_step(exercises):
    rng = np.random.default_rng(503)
    v, t = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    check_backend(exercises.bidirectional_ranking_loss, (v, t), ranking_ref, "bidirectional_ranking_loss",
                  kwargs={"margin": 0.3})


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_side_output_on_one_rectangular_map(exercises):
    rng = np.random.default_rng(504)
    h = rng.normal(size=(1, 4, 6, 3)).astype(np.float32)
    name = "side_output(h, size) on h (1, 4, 6, 3)"
    out, layers = run_block(exercises.side_output, (4, 6, 3), (4,), h, name, seed=504)
    (conv,) = layers_of(layers, "Conv2D", name, 1)
    check_close(out, nl.tanh(nl.conv2d(nl.reflection_pad(h, 1), *conv["weights"], padding="valid")),
                f"{name}: tanh(conv3x3(reflect_pad_1(h))), the output as large as h", atol=1e-4, rtol=1e-4)
