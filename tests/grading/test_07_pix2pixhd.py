"""Graded tests of lesson 07 (pix2pixHD): 14 points.

Every test compares the exercise's values with an independent numpy reference
written here, in float64. Run against the solutions (default) or a submission:

    pytest tests/grading/test_07_pix2pixhd.py
    GANLIB_SUBMISSION=lessons/07_pix2pixhd/exercises.py pytest tests/grading/test_07_pix2pixhd.py
    ganlib grade 07
"""

import numpy as np
import pytest

from ganlib.course.grading import check_close, to_numpy

ALLOWED_GANLIB = {}

# Exercise 6 is a question: the grader lists it with its points for the instructor, shows the
# student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 6, "name": "reflection_instance_boundaries", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "What can the generator not know about two adjacent cars from the one-hot label map alone, "
                "what does the boundary channel add, why boundaries rather than instance ids, and which "
                "other measurement would show the same effect?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def fm_ref(real, fake):
    num_d = len(real)
    return sum(4.0 / len(r) / num_d * np.mean(np.abs(np.float64(a) - np.float64(b)))
               for r, f in zip(real, fake) for a, b in zip(r, f))


def down_ref(x):
    b, h, w, c = x.shape
    out = np.zeros((b, h // 2, w // 2, c))
    for i, j in np.ndindex(h // 2, w // 2):
        rows = [r for r in (2 * i - 1, 2 * i, 2 * i + 1) if 0 <= r < h]
        cols = [k for k in (2 * j - 1, 2 * j, 2 * j + 1) if 0 <= k < w]
        out[:, i, j] = np.float64(x)[:, rows][:, :, cols].mean(axis=(1, 2))
    return out


def edges_ref(inst):
    b, h, w = inst.shape
    out = np.zeros((b, h, w, 1))
    for n, i, j in np.ndindex(b, h, w):
        for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            if 0 <= i + di < h and 0 <= j + dj < w and inst[n, i + di, j + dj] != inst[n, i, j]:
                out[n, i, j, 0] = 1.0
    return out


def pool_ref(feat, inst):
    out = np.float64(feat).copy()
    for n in range(len(inst)):
        for i in np.unique(inst[n]):
            out[n][inst[n] == i] = np.float64(feat[n])[inst[n] == i].mean(axis=0)
    return out


def maps(shapes, seed):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype(np.float32) for s in scale] for scale in shapes]


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32")


SHAPES = [[(2, 8, 8, 4), (2, 4, 4, 8), (2, 2, 2, 16), (2, 3, 3, 16)],
          [(2, 4, 4, 4), (2, 2, 2, 8), (2, 1, 1, 16), (2, 2, 2, 16)]]


# ---------------------------------------------------------------------------
# 1. feature_matching (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(1)
def test_feature_matching_values(exercises):
    real, fake = maps(SHAPES, 1), maps(SHAPES, 2)
    out = exercises.feature_matching(real, fake)
    check_close(out, fm_ref(real, fake), "feature_matching(real, fake) with 2 scales of 4 maps (expected the "
                "sum over scales and layers of (4 / L) * (1 / num_D) * mean |real - fake|)", atol=1e-5)
    check_float32(out, "feature_matching")


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_feature_matching_weights(exercises):
    one = [[np.ones((1, 2, 2, 1), np.float32)] * 2] * 3     # 3 scales, L = 2
    zero = [[np.zeros((1, 2, 2, 1), np.float32)] * 2] * 3
    check_close(exercises.feature_matching(one, zero), 4.0, "feature_matching with 3 scales of 2 maps, "
                "|real - fake| = 1 everywhere (expected 3 * 2 * (4 / 2) * (1 / 3) = 4)", atol=1e-6)


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_feature_matching_of_equal_features_is_zero(exercises):
    real = maps(SHAPES, 3)
    check_close(exercises.feature_matching(real, real), 0.0, "feature_matching(x, x) (expected 0)", atol=1e-7)


# ---------------------------------------------------------------------------
# 2. downsample and image_pyramid (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(2)
def test_downsample_is_the_reference_average_pool(exercises):
    x = np.random.default_rng(4).normal(size=(2, 6, 8, 3)).astype(np.float32)
    out = exercises.downsample(x)
    check_close(out, down_ref(x), "downsample(x (2, 6, 8, 3)) (expected (2, 3, 4, 3): each pixel the mean "
                "of the input pixels its 3x3 stride-2 window covers, padding not counted)", atol=1e-5)
    check_float32(out, "downsample")


@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_image_pyramid(exercises):
    x = np.random.default_rng(5).normal(size=(1, 8, 16, 2)).astype(np.float32)
    out = exercises.image_pyramid(x, 3)
    if len(out) != 3:
        raise AssertionError(f"image_pyramid(x, 3) returned {len(out)} maps, expected 3")
    expected = [np.float64(x), down_ref(x), down_ref(down_ref(x))]
    for k, (o, e) in enumerate(zip(out, expected)):
        check_close(o, e, f"image_pyramid(x (1, 8, 16, 2), 3)[{k}] (x downsampled {k} times)", atol=1e-5)


# ---------------------------------------------------------------------------
# 3. instance_edges (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(4)
def test_instance_edges_values(exercises):
    inst = np.random.default_rng(6).integers(0, 3, size=(2, 5, 7)).astype(np.int32)
    out = exercises.instance_edges(inst)
    check_close(out, edges_ref(inst), "instance_edges(random ids (2, 5, 7)) (expected (2, 5, 7, 1): 1 where a "
                "4-neighbour has another id)", atol=0)
    check_float32(out, "instance_edges")


@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_instance_edges_between_two_adjacent_cars(exercises):
    inst = np.full((1, 4, 6), 7, np.int32)
    inst[0, 1:3, 1:3], inst[0, 1:3, 3:5] = 26000, 26001          # two cars side by side
    check_close(exercises.instance_edges(inst), edges_ref(inst), "instance_edges of two adjacent cars "
                "(26000 | 26001 on road 7): their shared border is marked on both sides", atol=0)


# ---------------------------------------------------------------------------
# 4. instance_average_pool (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(5)
def test_instance_average_pool_values(exercises):
    rng = np.random.default_rng(7)
    feat = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    inst = rng.choice([7, 26000, 26001, 33999], size=(2, 4, 5)).astype(np.int32)
    out = exercises.instance_average_pool(feat, inst)
    check_close(out, pool_ref(feat, inst), "instance_average_pool(features (2, 4, 5, 3), ids) (expected every "
                "pixel's features replaced by its instance's mean, per image)", atol=1e-5)
    check_float32(out, "instance_average_pool")


@pytest.mark.points(1)
@pytest.mark.exercise(5)
def test_instance_average_pool_keeps_images_apart(exercises):
    feat = np.stack([np.ones((2, 2, 1)), -np.ones((2, 2, 1))]).astype(np.float32)
    inst = np.full((2, 2, 2), 26000, np.int32)   # the same id in both images
    check_close(exercises.instance_average_pool(feat, inst), feat, "instance_average_pool when two images "
                "use the same id (expected each image's own mean: +1 and -1)", atol=1e-6)
