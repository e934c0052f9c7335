"""Hidden graded tests of lesson 03 (run by the autograder only): 6 points.

Other values than the visible tests, and the losses of StackGAN++'s training step
run inside the backend's compiled step with their gradients checked (`check_backend`).
"""

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close

ALLOWED_GANLIB = {"ganlib.losses": ["bce"]}


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


@pytest.mark.points(2)
def test_color_consistency_in_the_training_step(exercises):
    a, b = images(2, 4, 4, 3, seed=301), images(2, 2, 2, 3, seed=302)
    check_backend(exercises.color_consistency, (a, b), colour_ref, "color_consistency")


@pytest.mark.points(1)
def test_joint_d_loss_in_the_training_step(exercises):
    six = tuple(logits(3, seed) for seed in range(303, 309))

    def ref(rc, ru, wc, wu, fc, fu, uncond_weight):
        return (bce_ref(rc, 1) + bce_ref(wc, 0) + bce_ref(fc, 0)
                + uncond_weight * (bce_ref(ru, 1) + bce_ref(wu, 1) + bce_ref(fu, 0)))
    check_backend(exercises.joint_d_loss, six, ref, "joint_d_loss", kwargs={"uncond_weight": 0.5})


@pytest.mark.points(1)
def test_joint_g_loss_in_the_training_step(exercises):
    check_backend(exercises.joint_g_loss, (logits(4, 309), logits(4, 310)),
                  lambda fc, fu, uncond_weight: bce_ref(fc, 1) + uncond_weight * bce_ref(fu, 1),
                  "joint_g_loss", kwargs={"uncond_weight": 2.0})


@pytest.mark.points(1)
def test_downsample_in_the_training_step(exercises):
    x = images(1, 4, 4, 3, seed=311)
    check_backend(exercises.downsample, (x, 2),
                  lambda x, size: x.reshape(1, 2, 2, 2, 2, 3).mean(axis=(2, 4)), "downsample")


@pytest.mark.points(1)
def test_colour_statistics_of_a_flat_image(exercises):
    x = np.tile(np.array([0.5, -0.25, 1.0], np.float32), (2, 3, 5, 1))
    mu, sigma = exercises.colour_statistics(x)
    check_close(mu, np.tile([0.5, -0.25, 1.0], (2, 1)), "colour_statistics of flat images (mu)",
                atol=1e-6)
    check_close(sigma, np.zeros((2, 3, 3)), "colour_statistics of flat images (Sigma: a "
                "single colour has no covariance)", atol=1e-6)
