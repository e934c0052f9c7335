"""Hidden graded tests of lesson 07 (run by the autograder only): 5 points.

Other values than the visible tests, and the exercises run inside the backend's compiled
step with their gradients checked (`check_backend`).
"""

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close

ALLOWED_GANLIB = {}


def down_ref(x):
    b, h, w, c = x.shape
    out = np.zeros((b, h // 2, w // 2, c))
    for i, j in np.ndindex(h // 2, w // 2):
        rows = [r for r in (2 * i - 1, 2 * i, 2 * i + 1) if 0 <= r < h]
        cols = [k for k in (2 * j - 1, 2 * j, 2 * j + 1) if 0 <= k < w]
        out[:, i, j] = np.float64(x)[:, rows][:, :, cols].mean(axis=(1, 2))
    return out


def pool_ref(feat, inst, max_id=34000):
    out = np.float64(feat).copy()
    for n in range(len(inst)):
        for i in np.unique(inst[n]):
            out[n][inst[n] == i] = np.float64(feat[n])[inst[n] == i].mean(axis=0)
    return out


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_downsample_in_the_training_step(exercises):
    x = np.random.default_rng(701).normal(size=(1, 4, 6, 2)).astype(np.float32)
    check_backend(exercises.downsample, (x,), down_ref, "downsample")


@pytest.mark.points(1)
@pytest.mark.exercise(5)
def test_instance_average_pool_in_the_training_step(exercises):
    rng = np.random.default_rng(702)
    feat = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
    inst = rng.choice([1, 26002, 24000], size=(1, 3, 4)).astype(np.int32)
    check_backend(exercises.instance_average_pool, (feat, inst), pool_ref, "instance_average_pool")


@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_instance_edges_in_the_training_step(exercises):
    inst = np.random.default_rng(703).integers(0, 2, size=(1, 4, 4)).astype(np.int32)

    def ref(t):
        out = np.zeros(t.shape + (1,))
        for n, i, j in np.ndindex(*t.shape):
            for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                if 0 <= i + di < t.shape[1] and 0 <= j + dj < t.shape[2] and t[n, i + di, j + dj] != t[n, i, j]:
                    out[n, i, j, 0] = 1.0
        return out
    check_backend(exercises.instance_edges, (inst,), ref, "instance_edges", gradient=False)


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_feature_matching_other_values(exercises):
    rng = np.random.default_rng(704)
    real = [[rng.normal(size=(3, 2, 2, 5)).astype(np.float32) for _ in range(3)]]
    fake = [[rng.normal(size=(3, 2, 2, 5)).astype(np.float32) for _ in range(3)]]
    expected = sum(4.0 / 3 * np.mean(np.abs(np.float64(a) - b)) for a, b in zip(real[0], fake[0]))
    check_close(exercises.feature_matching(real, fake), expected, "feature_matching with one scale of 3 maps",
                atol=1e-5)


@pytest.mark.points(1)
@pytest.mark.exercise(3)
def test_image_pyramid_of_one_scale(exercises):
    x = np.random.default_rng(705).normal(size=(2, 4, 4, 3)).astype(np.float32)
    out = exercises.image_pyramid(x, 1)
    if len(out) != 1:
        raise AssertionError(f"image_pyramid(x, 1) returned {len(out)} maps, expected [x]")
    check_close(out[0], x, "image_pyramid(x, 1)[0] (x itself)", atol=0, check_dtype=False)
