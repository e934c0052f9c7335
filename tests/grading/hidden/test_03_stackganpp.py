"""Hidden graded tests of lesson 03 (run by the autograder only): 7 points.

Other values than the visible tests, and the losses of StackGAN++'s training step
run inside the backend's compiled step with their gradients checked (`check_backend`).
"""

import pathlib

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close, load_tests

ALLOWED_GANLIB = {"ganlib.losses": ["bce"], "ganlib.layers": ["ReplicateConcat", "GLU"]}
VISIBLE = load_tests(pathlib.Path(__file__).resolve().parents[1] / "test_03_stackganpp.py")

# For the instructor: what a full answer to Exercise 7 (3 points) says.
RUBRIC = """
1 point: with alpha = 0 only the shared trunk ties the branches (each h_i grows from h_{i-1}); with
  text, the condition c enters every node and each D_i judges its branch against the same caption,
  which ties the named colours too. Without text nothing but the trunk does, so the paper adds the
  term (alpha = 50) for unconditional generation.
1 point: reads the numbers: the regulariser made both mismatches about ten times smaller at a similar
  FID; the text model's mismatch (0.011 / 0.0030) is a third of the unconditional alpha = 0 run's but
  three to five times the alpha = 50 run's, so on SynthBirds the captions alone did not tie the
  colours as tightly as the regulariser.
1 point: a decision with a measurement: train the text model with alpha = 50 and compare the
  colour mismatch, the FID analogue and caption consistency (against chance) at the same steps and
  seed; switch it on only if the mismatch drops without hurting FID or consistency.
"""


def bce_ref(x, z):
    return np.mean(z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x))


def stats_ref(images):
    x = np.asarray(images, np.float64).reshape(len(images), -1, 3)
    mu = x.mean(axis=1)
    centred = x - mu[:, None, :]
    return mu, np.einsum("bni,bnj->bij", centred, centred) / x.shape[1]


def colour_ref(a, b, lambda_mean=1.0, lambda_cov=5.0):
    (mu_a, s_a), (mu_b, s_b) = stats_ref(a), stats_ref(b)
    return lambda_mean * np.mean((mu_a - mu_b) ** 2) + lambda_cov * np.mean((s_a - s_b) ** 2)


def images(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def logits(n, seed):
    return (np.random.default_rng(seed).normal(size=n) * 2.0).astype(np.float32)


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_downsample_in_the_training_step(exercises):
    x = images(1, 4, 4, 3, seed=311)
    check_backend(exercises.downsample, (x, 2),
                  lambda x, size: x.reshape(1, 2, 2, 2, 2, 3).mean(axis=(2, 4)), "downsample")


@pytest.mark.exercise(3)
@pytest.mark.points(1)
def test_joint_d_loss_in_the_training_step(exercises):
    six = tuple(logits(3, seed) for seed in range(303, 309))

    def ref(rc, ru, wc, wu, fc, fu, uncond_weight):
        return (bce_ref(rc, 1) + bce_ref(wc, 0) + bce_ref(fc, 0)
                + uncond_weight * (bce_ref(ru, 1) + bce_ref(wu, 1) + bce_ref(fu, 0)))
    check_backend(exercises.joint_d_loss, six, ref, "joint_d_loss", kwargs={"uncond_weight": 0.5})


@pytest.mark.exercise(4)
@pytest.mark.points(1)
def test_joint_g_loss_in_the_training_step(exercises):
    check_backend(exercises.joint_g_loss, (logits(4, 309), logits(4, 310)),
                  lambda fc, fu, uncond_weight: bce_ref(fc, 1) + uncond_weight * bce_ref(fu, 1),
                  "joint_g_loss", kwargs={"uncond_weight": 2.0})


@pytest.mark.exercise(5)
@pytest.mark.points(1)
def test_colour_statistics_of_a_flat_image(exercises):
    x = np.tile(np.array([0.5, -0.25, 1.0], np.float32), (2, 3, 5, 1))
    mu, sigma = exercises.colour_statistics(x)
    check_close(mu, np.tile([0.5, -0.25, 1.0], (2, 1)), "colour_statistics of flat images (mu)",
                atol=1e-6)
    check_close(sigma, np.zeros((2, 3, 3)), "colour_statistics of flat images (Sigma: a "
                "single colour has no covariance)", atol=1e-6)


@pytest.mark.exercise(6)
@pytest.mark.points(2)
def test_color_consistency_in_the_training_step(exercises):
    a, b = images(2, 4, 4, 3, seed=301), images(2, 2, 2, 3, seed=302)
    check_backend(exercises.color_consistency, (a, b), colour_ref, "color_consistency")


@pytest.mark.exercise(1)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_tree_node_other_sizes(exercises):
    out, expected, _ = VISIBLE.node_case(exercises, 1, 2, 6, 5, 1, seed=160)
    check_close(out, expected, "tree_node on h (1, 2, 2, 6), c (1, 5) and one residual block "
                "(expected (1, 4, 4, 3))", atol=1e-4, rtol=1e-4)
