r"""Multi-scale structural similarity (MS-SSIM; Wang, Simoncelli and Bovik 2003), the diversity check of
HDGAN's evaluation (paper, section on sample diversity): a low MS-SSIM between samples of one caption
means varied samples.

At scale $j$ (the images average-pooled by 2, $j - 1$ times), with Gaussian-weighted local means
$\mu$, variances $\sigma^2$ and covariance $\sigma_{xy}$ (11x11 window, sigma 1.5, valid positions),
$c_1 = (k_1 L)^2$, $c_2 = (k_2 L)^2$:

$$l_j = \frac{2\mu_x\mu_y + c_1}{\mu_x^2 + \mu_y^2 + c_1},\qquad
cs_j = \frac{2\sigma_{xy} + c_2}{\sigma_x^2 + \sigma_y^2 + c_2},\qquad
\text{MS-SSIM} = \overline{l_M cs_M}^{\,w_M} \prod_{j < M} \overline{cs_j}^{\,w_j}$$

(bars: means over positions), per channel and then averaged over channels, as
`tf.image.ssim_multiscale` computes it (its default weights and constants).
"""

import numpy as np

POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian(size, sigma):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * x ** 2 / sigma ** 2)
    return g / g.sum()


def _filter(x, g):
    """Separable valid filtering of (B, H, W, C) with the 1-D kernel g along H and W."""
    k = len(g)
    h = sum(g[i] * x[:, i:x.shape[1] - k + 1 + i] for i in range(k))
    return sum(g[i] * h[:, :, i:h.shape[2] - k + 1 + i] for i in range(k))


def _ssim_terms(x, y, max_val, g, k1, k2):
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mx, my = _filter(x, g), _filter(y, g)
    luminance = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    num = 2 * _filter(x * y, g) - 2 * mx * my
    den = _filter(x ** 2 + y ** 2, g) - (mx ** 2 + my ** 2)
    cs = (num + c2) / (den + c2)
    return (luminance * cs).mean(axis=(1, 2)), cs.mean(axis=(1, 2))   # (B, C) each


def _halve(x):
    """2x2 average pooling; an odd side is first padded by repeating its last row / column."""
    pad = [(0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)]
    x = np.pad(x, pad, mode="symmetric")
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(images_a, images_b, max_val=2.0, power_factors=POWER_FACTORS, filter_size=11, filter_sigma=1.5,
            k1=0.01, k2=0.03):
    """MS-SSIM of image pairs: `(B,)` numpy, 1 for identical images.

    Args:
        images_a, images_b: `(B, H, W, C)` (or one `(H, W, C)` image each), same shape; values in a
            range of width `max_val` (2 for ganlib's [-1, 1] images, 255 for uint8).
        power_factors: the weight of each scale (default: the 5 of Wang et al.); the smallest scale
            must still be `filter_size` px, i.e. H, W >= filter_size * 2**(len(power_factors) - 1)
            (176 px for the defaults: pass fewer factors for smaller images).
    """
    x, y = (np.asarray(v, np.float64) for v in (images_a, images_b))
    if x.shape != y.shape:
        raise ValueError(f"images_a and images_b must have the same shape, got {x.shape} and {y.shape}.")
    single = x.ndim == 3
    x, y = (x[None], y[None]) if single else (x, y)
    if x.ndim != 4:
        raise ValueError(f"images: expected (B, H, W, C) or (H, W, C), got shape {x.shape}.")
    scales = len(power_factors)
    need = filter_size * 2 ** (scales - 1)
    if min(x.shape[1:3]) < need:
        raise ValueError(f"images of {x.shape[1]}x{x.shape[2]} px are too small for {scales} scales with a "
                         f"{filter_size} px window (at least {need} px): pass fewer power_factors.")
    g = _gaussian(filter_size, filter_sigma)
    weights = np.asarray(power_factors, np.float64)
    terms = []
    for j in range(scales):
        if j:
            x, y = _halve(x), _halve(y)
        ssim, cs = _ssim_terms(x, y, max_val, g, k1, k2)
        terms.append(np.maximum(cs if j < scales - 1 else ssim, 0.0))
    value = np.prod(np.stack(terms, -1) ** weights, axis=-1).mean(axis=-1)
    return value[0] if single else value
