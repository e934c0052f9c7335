"""Hidden graded tests of lesson 02 (run by the autograder only): 7 points.

Other values than the visible tests, and the functions that StackGAN's training
step calls (CA's reparameterisation, the KL term, the generator loss) run inside
the backend's compiled step with their gradients checked (`check_backend`).
"""

import pathlib

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close, load_tests

ALLOWED_GANLIB = {"ganlib.losses": ["generator_loss"], "ganlib.layers": ["ReplicateConcat"]}
VISIBLE = load_tests(pathlib.Path(__file__).resolve().parents[1] / "test_02_stackgan.py")

# For the instructor: what a full answer to Exercise 7 (3 points) says.
RUBRIC = """
1 point: without CA the condition is the fixed mu(phi_t), and the generator learns to ignore z
  (nothing in the loss rewards using it; the discriminator judges realism and the text match),
  so one caption gives nearly one image: the paper's sparse, discontinuous conditioning manifold.
1 point: with CA each caption is a Gaussian of conditions; a caption names only some parts, so the
  unnamed parts, pose and background are free, and CA's samples vary them, more than real birds of
  one species (which share every part colour) do.
1 point: an untrained or poor generator is "diverse" by being noisy; diversity means something only
  at comparable quality (FID) and text match (caption consistency), as in the notebook's table.
"""


def kl_ref(mu, logvar):
    return -0.5 * np.mean(1.0 + logvar - mu**2 - np.exp(logvar))


def bce_ref(x, z):
    return z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x)


def f32(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


@pytest.mark.exercise(1)
@pytest.mark.points(1)
def test_reparameterize_in_the_training_step(exercises):
    mu, logvar, eps = f32(3, 4, seed=201), f32(3, 4, seed=202, scale=0.5), f32(3, 4, seed=203)
    check_backend(exercises.reparameterize, (mu, logvar, eps),
                  lambda m, lv, e: m + np.exp(0.5 * lv) * e, "reparameterize")


@pytest.mark.exercise(2)
@pytest.mark.points(2)
def test_kl_divergence_in_the_training_step(exercises):
    mu, logvar = f32(4, 3, seed=204), f32(4, 3, seed=205, scale=0.5)
    check_backend(exercises.kl_divergence, (mu, logvar), kl_ref, "kl_divergence")


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_kl_divergence_large_variance(exercises):
    mu, logvar = np.zeros((2, 2), np.float32), np.full((2, 2), 3.0, np.float32)
    check_close(exercises.kl_divergence(mu, logvar), -0.5 * (1 + 3.0 - np.exp(3.0)),
                "kl_divergence(mu=0, logvar=3) (expected -0.5 (1 + 3 - e^3))", atol=1e-4)


@pytest.mark.exercise(3)
@pytest.mark.points(1)
def test_generator_loss_with_kl_in_the_training_step(exercises):
    logits, mu, logvar = f32(5, seed=206, scale=2.0), f32(5, 3, seed=207), f32(5, 3, seed=208, scale=0.4)
    check_backend(exercises.generator_loss_with_kl, (logits, mu, logvar),
                  lambda x, m, lv, kl_weight: bce_ref(x, 1.0).mean() + kl_weight * kl_ref(m, lv),
                  "generator_loss_with_kl", kwargs={"kl_weight": 0.5})


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_mean_pairwise_distance_two_points(exercises):
    check_close(exercises.mean_pairwise_distance(np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 3.0]],
                                                          np.float32)), 3.0,
                "mean_pairwise_distance of (1,1,1) and (2,3,3) (one pair at distance 3)", atol=1e-5)


@pytest.mark.exercise(4)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_joint_encoder_other_sizes(exercises):
    out, expected, _ = VISIBLE.joint_case(exercises, 3, 16, 4, 1, seed=240)
    check_close(out, expected, "joint_encoder on (3, 16, 16, 3) images, a (3, 4) c_hat and ngf 1 "
                "(expected (3, 4, 4, 4))", atol=1e-4, rtol=1e-4)
