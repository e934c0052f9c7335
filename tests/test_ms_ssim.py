"""`ganlib.metrics.ms_ssim` against known values and TensorFlow's `tf.image.ssim_multiscale`."""

import numpy as np
import pytest

from ganlib.metrics import ms_ssim


def test_identical_images_score_one():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 176, 176, 3))
    np.testing.assert_allclose(ms_ssim(x, x), [1.0, 1.0], atol=1e-12)


def test_constant_images_score_their_luminance_term():
    """Flat images have no variance: cs = 1 at every scale, and one scale leaves
    l = (2ab + c1) / (a^2 + b^2 + c1), c1 = (0.01 * 2)^2."""
    a, b = 0.5, 0.25
    x, y = np.full((1, 16, 16, 3), a), np.full((1, 16, 16, 3), b)
    c1 = (0.01 * 2.0) ** 2
    assert ms_ssim(x, y, power_factors=(1.0,))[0] == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    # five scales on flat 176 px images: the luminance term of the last scale only (cs = 1 elsewhere)
    x, y = np.full((1, 176, 176, 3), a), np.full((1, 176, 176, 3), b)
    assert ms_ssim(x, y)[0] == pytest.approx(((2 * a * b + c1) / (a * a + b * b + c1)) ** 0.1333)


def test_equals_tensorflow_ssim_multiscale():
    import tensorflow as tf
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(2, 181, 184, 3)), 1), 2)
    x = (smooth / np.abs(smooth).max()).astype("float32")
    y = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1).astype("float32")
    expected = tf.image.ssim_multiscale(x, y, 2.0).numpy()
    np.testing.assert_allclose(ms_ssim(x, y), expected, atol=1e-5)


def test_too_small_images_are_refused_with_the_size_needed():
    x = np.zeros((1, 64, 64, 3))
    with pytest.raises(ValueError, match="at least 176 px"):
        ms_ssim(x, x)
    assert ms_ssim(x + 0.1, x + 0.1, power_factors=(0.5, 0.5, 0.5))[0] == pytest.approx(1.0)
