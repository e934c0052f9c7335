"""The SynthBirds evaluation network (the Inception stand-in) and caption consistency."""

from __future__ import annotations

import functools
import os

import numpy as np

from ganlib.metrics.images import as_model_images
from ganlib.metrics.scores import feature_statistics, frechet_distance, inception_score, statistics_pair

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
EVALUATOR_WEIGHTS = os.path.join(ASSETS, "evaluator.weights.h5")


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
        x = as_model_images(images)
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

    x = as_model_images(images)
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
    x = as_model_images(images)
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

    x = as_model_images(images)
    captions = list(captions) if not isinstance(captions, str) else captions
    if isinstance(captions, str) or len(captions) != x.shape[0]:
        raise ValueError(f"evaluate_images: `captions` must be a list of {x.shape[0]} strings (one per image)")
    mu, sigma = statistics_pair(real_statistics, "evaluate_images", "ganlib.metrics.real_statistics")
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
