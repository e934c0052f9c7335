"""Hidden graded tests of lesson 01 (run by the autograder only): 9 points.

Other values than the visible tests, and each function the training step calls run
the way `fit()` runs it: inside the backend's compiled step, on tensors, with the
gradient of its value checked against the numpy reference's (`check_backend`).
"""

import pathlib

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close, load_tests

ALLOWED_GANLIB = {}
VISIBLE = load_tests(pathlib.Path(__file__).resolve().parents[1] / "test_01_cgan.py")

# For the instructor: what a full answer to Exercise 8 (3 points) says.
RUBRIC = """
1 point: a wrong caption comes from another species, whose wing colour almost always differs
  (the wings are the largest part); rejecting by the wings alone already rejects most wrong
  pairs, so D's loss gives little reason to look at the small tail.
1 point: a concrete change to the wrong pairs that makes the tail decisive, e.g. captions that
  differ from the right one in a single part (the tail among them), or wrong captions of
  species with the same wings.
1 point: what to compare before/after, from the notebook: D's preference for the right tail
  colour ("Which parts does D check?", 55% here) and the generated tails' match rate (25%),
  and caption consistency against chance (overall), at the same number of steps.
"""


def bce_ref(x, z):
    return z * np.logaddexp(0.0, -x) + (1.0 - z) * np.logaddexp(0.0, x)


def d_loss_ref(real, wrong, fake):
    return bce_ref(real, 1.0).mean() + 0.5 * (bce_ref(wrong, 0.0).mean() + bce_ref(fake, 0.0).mean())


def f32(*shape, seed=0, scale=2.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


@pytest.mark.exercise(1)
@pytest.mark.points(1)
def test_sigmoid_cross_entropy_in_the_training_step(exercises):
    x, z = f32(3, 4, seed=101), np.random.default_rng(102).uniform(size=(3, 4)).astype(np.float32)
    check_backend(exercises.sigmoid_cross_entropy, (x, z), bce_ref, "sigmoid_cross_entropy")


@pytest.mark.exercise(2)
@pytest.mark.points(1)
def test_generator_loss_in_the_training_step(exercises):
    check_backend(exercises.generator_loss, (f32(5, 1, seed=106),),
                  lambda fake: bce_ref(fake, 1.0).mean(), "generator_loss")


@pytest.mark.exercise(3)
@pytest.mark.points(1)
def test_one_hot_labels_other_values(exercises):
    labels = np.array([6, 6, 0], np.int64)
    check_close(exercises.one_hot_labels(labels, 7), np.eye(7)[labels],
                "one_hot_labels([6, 6, 0], 7) on int64 ids", atol=0)
    try:
        exercises.one_hot_labels(np.array([7], np.int32), 7)
    except ValueError:
        pass
    else:
        raise AssertionError("one_hot_labels([7], 7) must raise ValueError (7 is not in [0, 7))")


@pytest.mark.exercise(4)
@pytest.mark.points(1)
def test_concat_condition_in_the_training_step(exercises):
    h, c = f32(2, 4, 3, 2, seed=109), f32(2, 3, seed=110)

    def ref(h, c):
        return np.concatenate([h, np.broadcast_to(c[:, None, None, :], h.shape[:3] + c.shape[1:])], -1)
    check_backend(exercises.concat_condition, (h, c), ref, "concat_condition")


@pytest.mark.exercise(4)
@pytest.mark.points(1)
def test_concat_condition_single_pixel_and_batch_one(exercises):
    h, c = f32(1, 1, 1, 3, seed=114), f32(1, 2, seed=115)
    check_close(exercises.concat_condition(h, c), np.concatenate([h, c[:, None, None, :]], -1),
                "concat_condition on a (1, 1, 1, 3) map and a (1, 2) condition", atol=1e-6)


@pytest.mark.exercise(5)
@pytest.mark.points(1)
def test_matching_aware_d_loss_in_the_training_step(exercises):
    real, wrong, fake = f32(4, 1, seed=103), f32(4, 1, seed=104), f32(4, 1, seed=105)
    check_backend(exercises.matching_aware_d_loss, (real, wrong, fake), d_loss_ref,
                  "matching_aware_d_loss")


@pytest.mark.exercise(5)
@pytest.mark.points(1)
def test_losses_on_other_shapes_and_values(exercises):
    real, wrong, fake = f32(9, seed=111, scale=8.0), f32(9, seed=112, scale=8.0), f32(9, seed=113)
    check_close(exercises.matching_aware_d_loss(real, wrong, fake),
                d_loss_ref(real.astype(np.float64), wrong, fake),
                "matching_aware_d_loss on 9 logits of scale 8", atol=1e-5)
    check_close(exercises.generator_loss(np.zeros((3, 1), np.float32)), np.log(2.0),
                "generator_loss of zero logits (expected log 2)", atol=1e-6)


@pytest.mark.exercise(6)
@pytest.mark.points(1)
def test_interpolate_embeddings_in_the_training_step(exercises):
    t1, t2 = f32(2, 5, seed=107), f32(2, 5, seed=108)
    check_backend(exercises.interpolate_embeddings, (t1, t2),
                  lambda a, b, beta: beta * a + (1 - beta) * b, "interpolate_embeddings",
                  kwargs={"beta": 0.8})


@pytest.mark.exercise(7)
@pytest.mark.time_factor(3)
@pytest.mark.points(1)
def test_discriminator_head_on_one_hot_classes(exercises):
    """The class CGAN's D: the same head with one-hot conditions, other sizes, batch 1 too."""
    for batch, seed in ((5, 170), (1, 171)):
        out, expected, _ = VISIBLE.head_case(exercises, batch, 3, 7, 2, seed=seed, one_hot=True)
        check_close(out, expected, f"discriminator_head on one-hot conditions (7 classes), h ({batch}, 4, "
                    "4, 3), proj_dim 2", atol=1e-4, rtol=1e-4)
