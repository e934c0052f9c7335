"""The image contract of the metrics: (N, S, S, 3) floats in [-1, 1] (or uint8)."""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- #
# Image input checks
# --------------------------------------------------------------------------- #
def as_model_images(images, name="images", allow_uint8=True, square=True):
    """Check (N, S, S, 3) images (``square=False``: (N, H, W, 3)) and return float32 in [-1, 1]."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3 or (square and x.shape[1] != x.shape[2]) or x.shape[0] < 1:
        shape = "(N, S, S, 3) (square, channels-last RGB)" if square else "(N, H, W, 3) (channels-last RGB)"
        raise ValueError(f"`{name}` must have shape {shape}, got {x.shape}")
    if x.dtype == np.uint8:
        if not allow_uint8:
            raise ValueError(f"`{name}` must be floats in [-1, 1], got uint8")
        return x.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"`{name}` must be floats in [-1, 1] (or uint8 in [0, 255]), got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` has non-finite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(f"`{name}` must be floats in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return np.clip(x, -1.0, 1.0)
