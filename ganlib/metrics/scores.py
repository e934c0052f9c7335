"""Sample-level scores: Inception Score, Frechet distance, R-precision (numpy only)."""

from __future__ import annotations

import numpy as np



# --------------------------------------------------------------------------- #
# Inception score
# --------------------------------------------------------------------------- #
def inception_score(probs, splits=10):
    r"""Inception Score of class probabilities, as mean and std over splits.

    $\mathrm{IS} = \exp\big(\frac{1}{N}\sum_x \sum_y p(y|x)
    (\log p(y|x) - \log p(y))\big)$ with $p(y)$ the mean of $p(y|x)$ over the
    split (StackGAN `inception_score.py`: the sample is cut into `splits`
    consecutive parts of equal size).

    Args:
        probs: (N, K) class probabilities, rows summing to 1.
        splits: number of parts, 1 <= splits <= N.

    Returns:
        (mean, std) over the splits, Python floats.

    >>> inception_score(np.eye(4)[np.arange(8) % 4], splits=2)
    (4.0, 0.0)
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"inception_score: `probs` must have shape (N, num_classes), got {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise ValueError("inception_score: `probs` must be finite, non-negative, with rows summing to 1 "
                         "(softmax outputs, not logits)")
    splits = int(splits)
    n = p.shape[0]
    if splits < 1 or splits > n:
        raise ValueError(f"inception_score: `splits` must be in [1, N={n}], got {splits}")
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = part.mean(0, keepdims=True)
        # 0 * log 0 = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0)
        scores.append(np.exp(terms.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------- #
# Frechet distance
# --------------------------------------------------------------------------- #
def statistics_pair(real_statistics, caller, source):
    """`(mu, sigma)` from `real_statistics`; ValueError naming `caller` and where the pair comes from."""
    try:
        mu, sigma = real_statistics
    except (TypeError, ValueError):
        raise ValueError(f"{caller}: `real_statistics` must be a (mu, sigma) pair from {source}") from None
    return mu, sigma


def feature_statistics(features):
    """Mean and covariance (``np.cov(rowvar=False)``, unbiased) of (N, F) features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"feature_statistics: `features` must have shape (N >= 2, F), got {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def _sym_sqrt(s):
    """Symmetric PSD square root by eigendecomposition (tiny negatives clipped)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    r"""Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    $d^2 = \|\mu_1-\mu_2\|^2 + \mathrm{Tr}(\Sigma_1) + \mathrm{Tr}(\Sigma_2)
    - 2\,\mathrm{Tr}\big((\Sigma_1\Sigma_2)^{1/2}\big)$.

    $\Sigma_1\Sigma_2$ is similar to the symmetric PSD matrix
    $\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}$, so the trace of its square root is the
    sum of square roots of that matrix's eigenvalues (symmetric ``eigh``; tiny
    negative eigenvalues from round-off clipped to 0). This is stable without
    scipy's ``sqrtm`` and gives the same value.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    for name, m in (("mu1", mu1), ("mu2", mu2)):
        if m.shape != (d,):
            raise ValueError(f"frechet_distance: `{name}` must have shape ({d},), got {m.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"frechet_distance: `{name}` must have shape ({d}, {d}), got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"frechet_distance: `{name}` has non-finite entries")
    sq1 = _sym_sqrt(s1)
    m = sq1 @ s2 @ sq1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(w, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


# --------------------------------------------------------------------------- #
# R-precision
# --------------------------------------------------------------------------- #
def r_precision(image_codes, text_codes, candidates=100, seed=0):
    """AttnGAN's R-precision with R = 1.

    For each image i, its true caption code ``text_codes[i]`` is ranked by cosine
    similarity against ``candidates - 1`` mismatched caption codes drawn (without
    replacement, seeded) from the other rows. Returns the fraction of images whose
    true caption ranks strictly first. Random codes give about ``1 / candidates``.
    :func:`r_precision_folds` reports the same hits as mean +- std over folds.

    Args:
        image_codes: (N, D) image embeddings.
        text_codes: (N, D) embeddings of the matching captions (row i describes image i).
        candidates: ranking list size (true caption included), N >= candidates.
        seed: seed of the draw of mismatched captions.
    """
    return float(np.mean(_r_precision_hits(image_codes, text_codes, candidates, seed, "r_precision")))


def r_precision_folds(image_codes, text_codes, candidates=100, folds=10, seed=0):
    """R-precision as mean and std over folds, as DM-GAN reports it for AttnGAN-style models.

    DM-GAN's evaluation (``trainer.py``, ``sampling``): for each generated image,
    the DAMSM image code is compared by cosine with the codes of its true caption
    and 99 mismatched ones; a hit is the true caption ranking first. The 30,000
    hits are shuffled and cut into 10 folds; the reported number is the mean and
    std of the folds' hit rates. Here the hits are those of :func:`r_precision`
    (same draw of mismatched captions for the same ``seed``; mismatched captions
    come from the other rows, while DM-GAN draws them from other classes), then
    shuffled (seeded) and cut into ``folds`` near-equal folds.

    Args:
        image_codes: (N, D) image codes (e.g. DAMSM image encoder of generated images).
        text_codes: (N, D) codes of the captions they were generated from.
        candidates: ranking list size, true caption included (100 in the papers).
        folds: number of folds, 1 <= folds <= N (10 in DM-GAN).
        seed: seed of the mismatched-caption draw and of the shuffle.

    Returns:
        (mean, std) over the folds, Python floats. Perfect codes give (1.0, 0.0);
        random codes give a mean of about ``1 / candidates``.
    """
    hits = _r_precision_hits(image_codes, text_codes, candidates, seed, "r_precision_folds")
    n = hits.shape[0]
    folds = int(folds)
    if folds < 1 or folds > n:
        raise ValueError(f"r_precision_folds: `folds` must be in [1, N={n}], got {folds}")
    order = np.random.default_rng([int(seed), 1]).permutation(n)   # DM-GAN: np.random.shuffle(R)
    rates = [hits[part].mean() for part in np.array_split(order, folds)]
    return float(np.mean(rates)), float(np.std(rates))


def _r_precision_hits(image_codes, text_codes, candidates, seed, name):
    """Per image, 1.0 where its true caption ranks strictly first among ``candidates``, else 0.0."""
    im = np.asarray(image_codes, dtype=np.float64)
    tx = np.asarray(text_codes, dtype=np.float64)
    if im.ndim != 2:
        raise ValueError(f"{name}: `image_codes` must have shape (N, D), got {im.shape}")
    if tx.shape != im.shape:
        raise ValueError(f"{name}: `text_codes` must have the shape of `image_codes` {im.shape}, got {tx.shape}")
    n = im.shape[0]
    candidates = int(candidates)
    if candidates < 2:
        raise ValueError(f"{name}: `candidates` must be >= 2, got {candidates}")
    if n < candidates:
        raise ValueError(f"{name}: need at least `candidates`={candidates} rows of codes, got N={n}")
    im = im / np.maximum(np.linalg.norm(im, axis=1, keepdims=True), 1e-12)
    tx = tx / np.maximum(np.linalg.norm(tx, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    neg = np.empty((n, candidates - 1), dtype=np.int64)
    for i in range(n):
        j = rng.choice(n - 1, size=candidates - 1, replace=False)
        neg[i] = j + (j >= i)
    hits = np.zeros(n)
    for s in range(0, n, 1024):
        e = min(n, s + 1024)
        true = np.sum(im[s:e] * tx[s:e], axis=1)
        wrong = np.einsum("nd,ncd->nc", im[s:e], tx[neg[s:e]])
        hits[s:e] = true > wrong.max(1)
    return hits
