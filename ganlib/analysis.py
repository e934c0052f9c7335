"""Analysis of trained models for the lessons: sample diversity (lesson 02) and colour
agreement between branches (lesson 03), where DAMSM's words attend (lesson 04). Numpy in, numbers out; no training code."""

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


def part_cover(dataset, i, grid):
    """How much of each cell of a `grid` x `grid` partition of SynthBirds item `i`'s image
    (after the standard crop) each part covers: `{part: (grid * grid,) fractions}` for
    crown, wing, belly, tail and beak, read from the dataset's `masks/` (SynthBirds only)."""
    import pathlib

    from PIL import Image

    from ganlib.data.synthbirds import MASK_LABELS, PARTS

    path = pathlib.Path(dataset.root) / "masks" / f"{dataset.filenames[i]}.png"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no part mask (part masks are SynthBirds', written by "
                                "`ganlib data synthbirds` under masks/).")
    mask = Image.open(path)
    mask = np.asarray(mask.crop(dataset.crop(i, mask.width, mask.height)).resize((8 * grid, 8 * grid), Image.NEAREST))
    out = {}
    for part in PARTS:
        inside = (mask == MASK_LABELS[part]).astype(np.float64).reshape(grid, 8, grid, 8)
        out[part] = inside.mean(axis=(1, 3)).reshape(-1)
    return out


def attention_localisation(damsm, tokenizer, dataset, n=200, seed=0):
    r"""Where DAMSM's words look: the share of a part word's attention over the image regions
    that falls inside that part's ground-truth mask, on SynthBirds' real images.

    For every word of a caption that names a part (crown/head, wings, belly/breast, tail,
    beak/bill), with its attention $\alpha_{i,j}$ over the regions $j$ (AttnGAN Eq. 9,
    `ganlib.losses.word_region_attention`) and $m_j$ the fraction of region $j$ covered by
    the part, the mass inside is $\sum_j \alpha_{i,j} m_j$; a word attending uniformly
    gets $\frac1N \sum_j m_j$, the part's share of the image (the baseline).

    Args:
        damsm: a DAMSM (`ganlib.models.damsm.load_pretrained()[0]`); tokenizer: its tokenizer.
        dataset: a SynthBirds split (with `masks/`); n items (seeded), one random caption each.

    Returns:
        `{"inside": mean mass inside, "uniform": mean baseline, "words": count, "parts":
        {part: (inside, uniform, count)}}`.
    """
    from ganlib import losses
    from ganlib.data.synthbirds import PART_WORDS

    rng = np.random.default_rng(seed)
    index = rng.choice(len(dataset), min(n, len(dataset)), replace=False)
    size = int(damsm.config.image_size)
    captions = [dataset.captions[int(i)][int(rng.integers(len(dataset.captions[int(i)])))] for i in index]
    tokens = np.asarray(tokenizer.encode_checked(captions), "int32")
    images = np.stack([dataset.load_image(int(i), size=size) for i in index]).astype("float32") / 127.5 - 1.0
    regions, _ = damsm.image_encoder(images, training=False)
    words, _ = damsm.text_encoder(tokens, training=False)
    mask = (tokens > 0).astype("float32")
    alpha = ops.convert_to_numpy(losses.word_region_attention(words, regions, mask, damsm.config.gamma1))
    grid = int(round(alpha.shape[-1] ** 0.5))
    per_part = {}
    for k, i in enumerate(index):
        cover = part_cover(dataset, int(i), grid)
        for t, token in enumerate(tokens[k]):
            word = tokenizer.vocabulary[token - 2] if token >= 2 else None
            part = PART_WORDS.get(word)
            if part is not None:
                per_part.setdefault(part, []).append((float(alpha[k, t] @ cover[part]), float(cover[part].mean())))
    pairs = [p for values in per_part.values() for p in values]
    if not pairs:
        raise ValueError("attention_localisation: no caption of the sample names a part.")
    parts = {part: (float(np.mean([a for a, _ in v])), float(np.mean([u for _, u in v])), len(v))
             for part, v in per_part.items()}
    return {"inside": float(np.mean([a for a, _ in pairs])), "uniform": float(np.mean([u for _, u in pairs])),
            "words": len(pairs), "parts": parts}
