"""Analysis of trained models for the lessons: sample diversity (lesson 02) and colour
agreement between branches (lesson 03). Numpy in, numbers out; no training code."""

import numpy as np
from keras import ops

from ganlib.losses import colour_statistics


def mean_pairwise_distance(features):
    r"""Mean Euclidean distance over the pairs $i < j$ of rows of `features` (N, F), numpy."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features: expected shape (N >= 2, F), got {f.shape}.")
    squared = np.sum(f**2, 1)
    d2 = np.maximum(squared[:, None] + squared[None] - 2 * f @ f.T, 0.0)
    i, j = np.triu_indices(len(f), 1)
    return float(np.mean(np.sqrt(d2[i, j])))


def sample_diversity(model, captions, n=16, seed=0, distance_fn=None, evaluator=None):
    """Diversity of the samples for one caption: for each caption, `n` samples (different z and
    epsilon), the mean pairwise distance of their SynthBirds evaluation-net features
    (`ganlib.metrics.Evaluator`), averaged over the captions."""
    from ganlib import metrics

    evaluator = evaluator or metrics.default_evaluator()
    distance_fn = distance_fn or mean_pairwise_distance
    if isinstance(captions, str):
        captions = [captions]
    scores = []
    for k, caption in enumerate(captions):
        images = model.generate([caption] * n, seed=seed + k)
        scores.append(float(distance_fn(evaluator.predict(images)["features"])))
    return float(np.mean(scores))


def color_mismatch(branch_images):
    """Per adjacent pair of branches, the two terms of the colour-consistency loss (numpy).

    Args:
        branch_images: list of `(B, H_i, W_i, 3)` images of the same inputs, smallest first.

    Returns:
        list of dicts `{"sizes", "mean", "cov"}`: `mean` = mean over images and
        components of (mu_i - mu_{i-1})**2, `cov` the same for the covariances.
    """
    out = []
    for lo, hi in zip(branch_images[:-1], branch_images[1:]):
        mu_lo, cov_lo = colour_statistics(ops.convert_to_tensor(np.asarray(lo, "float32")))
        mu_hi, cov_hi = colour_statistics(ops.convert_to_tensor(np.asarray(hi, "float32")))
        out.append({"sizes": (int(np.shape(lo)[1]), int(np.shape(hi)[1])),
                    "mean": float(np.mean((ops.convert_to_numpy(mu_hi) - ops.convert_to_numpy(mu_lo)) ** 2)),
                    "cov": float(np.mean((ops.convert_to_numpy(cov_hi) - ops.convert_to_numpy(cov_lo)) ** 2))})
    return out
