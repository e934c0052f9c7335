r"""Evaluation metrics for text-to-image GANs.

The papers in this course report three kinds of numbers:

* **Inception Score** (Salimans et al., 2016):
  $\mathrm{IS} = \exp\big(\mathbb{E}_x\, D_{KL}(p(y|x)\,\|\,p(y))\big)$, computed on
  `splits` disjoint parts of the sample and reported as mean +- std over the parts,
  as the StackGAN / AttnGAN evaluation code does.
* **Frechet (Inception) Distance** (Heusel et al., 2017) between Gaussians fitted to
  features of real and generated images:
  $\|\mu_1-\mu_2\|^2 + \mathrm{Tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})$.
* **R-precision** (AttnGAN, Xu et al., 2018): rank each image's true caption among
  `candidates - 1` mismatched ones by cosine similarity of image/text codes
  (DAMSM codes); :func:`r_precision_folds` reports it as mean +- std over 10
  folds, as DM-GAN (Zhu et al., 2019) does.

On the synthetic SynthBirds data the "Inception network" is a small classifier
trained on real SynthBirds renders (:class:`Evaluator`, weights shipped in
``ganlib/assets/evaluator.weights.h5``, re-made with
``python -m ganlib.pretrain evaluator``). Because SynthBirds keeps the ground truth
of every attribute, it also gives a direct text-image agreement score,
:func:`caption_consistency`: the fraction of caption-mentioned attributes (part
colours) that the evaluator sees in the image, next to the same fraction expected
by chance.

On real data (CUB, Oxford-102, COCO) the network is Keras' InceptionV3 with
ImageNet weights (:mod:`ganlib.inception`): :func:`inception_statistics` gives
the FID statistics of the real set (kept as ``.npz`` with :func:`save_statistics`
/ :func:`load_statistics`), :func:`inception_metrics` the FID and Inception Score
(10 splits) of generated images from one forward pass.

All functions take and return numpy arrays / Python floats. scipy is not needed.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ganlib.inception import InceptionNetwork, InceptionWeightsUnavailable, default_inception  # noqa: F401

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
EVALUATOR_WEIGHTS = os.path.join(ASSETS, "evaluator.weights.h5")


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


# --------------------------------------------------------------------------- #
# Image input checks
# --------------------------------------------------------------------------- #
def _as_model_images(images, name="images", allow_uint8=True):
    """Check (N, S, S, 3) images and return float32 in [-1, 1]."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2] or x.shape[0] < 1:
        raise ValueError(f"`{name}` must have shape (N, S, S, 3) (square, channels-last RGB), got {x.shape}")
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


# --------------------------------------------------------------------------- #
# The SynthBirds evaluation network (Inception stand-in)
# --------------------------------------------------------------------------- #
def _part_colours():
    from ganlib.data import synthbirds
    return synthbirds.PARTS, synthbirds.PART_COLOURS, synthbirds.NUM_SPECIES


def build_evaluator_network(num_species=None, part_colours=None, parts=None, feature_dim=256):
    """The evaluation CNN: 4 conv blocks (Conv-BN-ReLU) -> GAP -> Dense(256) features.

    Heads: ``species`` softmax over the SynthBirds species and one softmax head per
    part over that part's colours. Input (B, 64, 64, 3) in [-1, 1]. Returns a
    functional ``keras.Model`` with outputs
    ``{"features", "species", "attr_<part>"...}``.
    """
    import keras
    from keras import layers

    if parts is None or part_colours is None or num_species is None:
        p, pc, ns = _part_colours()
        parts = parts or p
        part_colours = part_colours or pc
        num_species = num_species or ns
    x_in = keras.Input((Evaluator.input_size, Evaluator.input_size, 3), name="image")
    x = x_in
    for i, (filters, stride) in enumerate(((32, 1), (64, 1), (128, 1), (256, 1))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < 3:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    feats = layers.Dense(feature_dim, activation="relu", name="features")(x)
    outputs = {"features": feats,
               "species": layers.Dense(num_species, activation="softmax", name="species")(feats)}
    for part in parts:
        outputs[f"attr_{part}"] = layers.Dense(len(part_colours[part]), activation="softmax",
                                               name=f"attr_{part}")(feats)
    return keras.Model(x_in, outputs, name="synthbirds_evaluator")


class Evaluator:
    """SynthBirds evaluation net: species, part colours and features of images.

    Plays the role Inception-v3 plays on real data: ``species_probs`` feed the
    Inception Score, ``features`` (penultimate layer, 256-d) the FID, and the
    per-part colour predictions the caption-consistency score.

    >>> ev = Evaluator.load()                    # doctest: +SKIP
    >>> out = ev.predict(images)                 # images (N, S, S, 3) in [-1, 1]
    >>> out["attributes"]["wing"].shape          # (N, len(PART_COLOURS["wing"]))
    """

    input_size = 64

    def __init__(self, model=None):
        self.model = model if model is not None else build_evaluator_network()
        self.parts, self.part_colours, self.num_species = _part_colours()

    @classmethod
    def load(cls, path=None):
        path = path or EVALUATOR_WEIGHTS
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Evaluator weights not found at {path}. Make them with "
                "`python -m ganlib.pretrain evaluator` (a few minutes on a CPU).")
        ev = cls()
        ev.model.load_weights(path)
        return ev

    def save(self, path):
        """Write the network's weights only (a fresh copy: no optimizer state)."""
        fresh = build_evaluator_network()
        fresh.set_weights(self.model.get_weights())
        fresh.save_weights(path)

    def _resize(self, x):
        import keras
        s = self.input_size
        if x.shape[1] == s:
            return x
        return keras.ops.image.resize(x, (s, s), interpolation="bilinear", antialias=True)

    def predict(self, images, batch_size=256):
        """Run the net. ``images`` (N, S, S, 3) floats in [-1, 1] (or uint8).

        Returns ``{"features": (N, 256), "species_probs": (N, 200),
        "attributes": {part: (N, len(PART_COLOURS[part]))}}`` numpy arrays.
        """
        import keras
        x = _as_model_images(images)
        outs = []
        for s in range(0, x.shape[0], batch_size):
            xb = keras.ops.convert_to_tensor(x[s:s + batch_size])
            o = self.model(self._resize(xb), training=False)
            outs.append({k: keras.ops.convert_to_numpy(v) for k, v in o.items()})
        cat = {k: np.concatenate([o[k] for o in outs]).astype(np.float32) for k in outs[0]}
        return {"features": cat["features"],
                "species_probs": cat["species"],
                "attributes": {p: cat[f"attr_{p}"] for p in self.parts}}


@functools.lru_cache(maxsize=1)
def default_evaluator():
    """The shipped evaluator, loaded once and cached."""
    return Evaluator.load()


# --------------------------------------------------------------------------- #
# Caption consistency
# --------------------------------------------------------------------------- #
def caption_consistency(images, captions, evaluator=None):
    r"""Fraction of caption-mentioned attributes that the evaluator sees.

    For every (image, attribute mentioned in its caption) pair -- attributes from
    ``synthbirds.parse_caption`` -- the evaluator predicts the colour of that part
    (argmax of its head); the score is the fraction of pairs where it equals the
    mentioned colour.

    The chance level is the same fraction if the captions were paired with the
    images at random: for part $k$ with $n_k$ mentions, $q_k(c)$ the histogram of
    predicted colours over the images and $r_k(c)$ the histogram of mentioned
    colours over the captions,
    $\text{chance} = \sum_k n_k \sum_c q_k(c) r_k(c) / \sum_k n_k$.

    Args:
        images: (N, S, S, 3) floats in [-1, 1] (any S; resized to 64).
        captions: N strings, caption i describes image i.
        evaluator: object with ``predict(images) -> {"attributes": {part: probs}}``
            (default: the shipped :class:`Evaluator`).

    Returns:
        (score, chance), Python floats.
    """
    from ganlib.data import synthbirds

    x = _as_model_images(images)
    if isinstance(captions, str) or not hasattr(captions, "__len__"):
        raise ValueError("caption_consistency: `captions` must be a list of N strings")
    captions = list(captions)
    if len(captions) != x.shape[0]:
        raise ValueError(f"caption_consistency: `captions` must have one caption per image: "
                         f"expected {x.shape[0]}, got {len(captions)}")
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise ValueError(f"caption_consistency: `captions[{i}]` must be a str, got {type(c).__name__}")
    evaluator = evaluator if evaluator is not None else default_evaluator()
    attrs = evaluator.predict(x)["attributes"]
    parts = list(synthbirds.PARTS)
    pred = {}
    for p in parts:
        names = synthbirds.PART_COLOURS[p]
        pred[p] = [names[j] for j in np.argmax(np.asarray(attrs[p]), axis=1)]
    n = len(captions)
    hits = 0
    mentions = {p: [] for p in parts}
    for i, cap in enumerate(captions):
        for part, colour in synthbirds.parse_caption(cap).items():
            if part not in mentions:
                continue
            mentions[part].append(colour)
            hits += int(pred[part][i] == colour)
    total = sum(len(m) for m in mentions.values())
    if total == 0:
        raise ValueError("caption_consistency: no caption mentions a part colour the evaluator knows")
    chance = 0.0
    for p in parts:
        if not mentions[p]:
            continue
        names = list(synthbirds.PART_COLOURS[p])
        q = np.bincount([names.index(c) for c in pred[p]], minlength=len(names)) / n
        r = np.zeros(len(names))
        for c in mentions[p]:
            if c in names:
                r[names.index(c)] += 1
        r /= len(mentions[p])
        chance += len(mentions[p]) * float(q @ r)
    return hits / total, chance / total


# --------------------------------------------------------------------------- #
# All metrics at once
# --------------------------------------------------------------------------- #
def real_statistics(images, evaluator=None):
    """(mu, sigma) of the evaluator features of real images.

    ``images`` (N, S, S, 3) uint8 in [0, 255] or floats in [-1, 1] (detected by dtype).
    """
    evaluator = evaluator if evaluator is not None else default_evaluator()
    x = _as_model_images(images)
    return feature_statistics(evaluator.predict(x)["features"])


def evaluate_images(images, captions, real_statistics, evaluator=None, splits=10):
    """FID, Inception Score and caption consistency of generated SynthBirds images.

    Args:
        images: (N, S, S, 3) generated images in [-1, 1].
        captions: the N captions they were generated from.
        real_statistics: (mu, sigma) from :func:`real_statistics` on real images.
        evaluator: default the shipped :class:`Evaluator`.
        splits: Inception Score splits (reduced to N when N < splits).

    Returns:
        dict with ``fid``, ``inception_score``, ``inception_score_std``,
        ``caption_consistency``, ``chance_consistency``.
    """
    from ganlib.data import synthbirds  # noqa: F401  (clear ImportError early)

    x = _as_model_images(images)
    captions = list(captions) if not isinstance(captions, str) else captions
    if isinstance(captions, str) or len(captions) != x.shape[0]:
        raise ValueError(f"evaluate_images: `captions` must be a list of {x.shape[0]} strings (one per image)")
    try:
        mu, sigma = real_statistics
    except (TypeError, ValueError):
        raise ValueError("evaluate_images: `real_statistics` must be a (mu, sigma) pair "
                         "from ganlib.metrics.real_statistics") from None
    evaluator = evaluator if evaluator is not None else default_evaluator()
    out = evaluator.predict(x)

    class _Cached:  # reuse the forward pass for caption consistency
        def predict(self, images, batch_size=256):
            return out

    fid = frechet_distance(*feature_statistics(out["features"]), mu, sigma)
    is_mean, is_std = inception_score(out["species_probs"], splits=min(splits, x.shape[0]))
    score, chance = caption_consistency(x, captions, evaluator=_Cached())
    return {"fid": fid, "inception_score": is_mean, "inception_score_std": is_std,
            "caption_consistency": score, "chance_consistency": chance}


# --------------------------------------------------------------------------- #
# Real data: InceptionV3 (ganlib.inception)
# --------------------------------------------------------------------------- #
def inception_statistics(images, network=None, batch_size=50):
    """FID statistics (mu, sigma) of the InceptionV3 2048-d pool features of ``images``.

    This is what FID code precomputes once for the real set (Heusel et al.'s
    ``fid_stats_*.npz``); keep it with :func:`save_statistics`.

    Args:
        images: (N >= 2, S, S, 3) floats in [-1, 1] or uint8 in [0, 255].
        network: an :class:`ganlib.inception.InceptionNetwork` (default: ImageNet
            weights, :func:`ganlib.inception.default_inception`).
        batch_size: images per forward pass.

    Raises:
        InceptionWeightsUnavailable: no network given and the ImageNet weights are
            not available offline.
    """
    network = network if network is not None else default_inception()
    return feature_statistics(network.predict(images, batch_size=batch_size)["features"])


def inception_metrics(images, real_statistics, network=None, splits=10, batch_size=50):
    """FID and Inception Score of generated images with InceptionV3 (one forward pass).

    Args:
        images: (N, S, S, 3) generated images in [-1, 1] (or uint8).
        real_statistics: (mu, sigma) of the real set, from :func:`inception_statistics`
            or :func:`load_statistics`.
        network: default :func:`ganlib.inception.default_inception` (ImageNet weights).
        splits: Inception Score splits (10 as in the papers; reduced to N when N < 10).

    Returns:
        dict with ``fid``, ``inception_score``, ``inception_score_std`` (Python floats).
    """
    try:
        mu, sigma = real_statistics
    except (TypeError, ValueError):
        raise ValueError("inception_metrics: `real_statistics` must be a (mu, sigma) pair from "
                         "ganlib.metrics.inception_statistics or load_statistics") from None
    network = network if network is not None else default_inception()
    out = network.predict(images, batch_size=batch_size)
    n = out["probs"].shape[0]
    fid = frechet_distance(*feature_statistics(out["features"]), mu, sigma) if n >= 2 else float("nan")
    is_mean, is_std = inception_score(out["probs"], splits=min(int(splits), n))
    return {"fid": fid, "inception_score": is_mean, "inception_score_std": is_std}


_STATISTICS_KEYS = ("mu", "sigma")


def save_statistics(path, mu, sigma, **metadata):
    """Write FID statistics to an ``.npz`` file: arrays ``mu`` (F,), ``sigma`` (F, F), plus metadata.

    Metadata (e.g. ``count=N``, ``dataset="cub"``, ``split="test"``,
    ``image_size=256``, ``weights="imagenet"``) is stored as scalar entries and
    returned by ``load_statistics(path, with_metadata=True)``. The file is written
    to exactly ``path`` (no suffix added), atomically (temporary file + rename).
    """
    import pathlib

    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"save_statistics: expected mu (F,) and sigma (F, F), got {mu.shape} and {sigma.shape}")
    extra = {}
    for key, value in metadata.items():
        if key in _STATISTICS_KEYS:
            raise ValueError(f"save_statistics: metadata key {key!r} is reserved")
        if isinstance(value, (np.generic,)):
            value = value.item()
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"save_statistics: metadata {key}={value!r} must be a str, int, float or bool")
        extra[key] = np.asarray(value)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma, **extra)
    os.replace(tmp, path)
    return path


def load_statistics(path, with_metadata=False):
    """Read FID statistics written by :func:`save_statistics` (or any ``.npz`` with ``mu``, ``sigma``).

    Returns:
        ``(mu, sigma)``, or ``(mu, sigma, metadata)`` with ``with_metadata=True``
        (metadata: dict of Python scalars).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not an ``.npz`` file, ``mu`` / ``sigma`` missing, of the wrong
            shapes, or not finite (the message names the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FID statistics file {path} does not exist (write one with "
                                "ganlib.metrics.save_statistics(path, *inception_statistics(real_images)))")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npz file of FID statistics "
                         f"(expected arrays 'mu' and 'sigma'): {error}") from None
    if not hasattr(data, "files"):
        raise ValueError(f"{path} holds a single array, not an .npz file of FID statistics "
                         "(expected arrays 'mu' and 'sigma')")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except Exception as error:
        raise ValueError(f"{path}: cannot read the FID statistics in it: {error}") from None
    missing = [k for k in _STATISTICS_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: FID statistics file lacks {missing}; it holds {sorted(arrays)} "
                         "(expected 'mu' (F,) and 'sigma' (F, F))")
    mu, sigma = arrays.pop("mu"), arrays.pop("sigma")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: expected 'mu' of shape (F,) and 'sigma' of shape (F, F), "
                         f"got {mu.shape} and {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"{path}: 'mu' / 'sigma' have non-finite entries")
    if not with_metadata:
        return mu, sigma
    return mu, sigma, {k: (v.item() if v.ndim == 0 else v) for k, v in arrays.items()}
