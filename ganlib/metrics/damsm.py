r"""R-precision of generated images with a pretrained DAMSM (AttnGAN, Xu et al. 2018).

AttnGAN's evaluation ranks, for each generated image, its own caption against 99
mismatched captions by the cosine of the DAMSM global image code $\bar v$ and the
sentence features $\bar e$; R-precision is the fraction of images whose own caption
ranks first (chance: 1 / 100). DM-GAN's code cuts the hits into 10 folds and reports
mean +- std: :func:`damsm_r_precision` returns the same pair
(:func:`ganlib.metrics.r_precision_folds`). On SynthBirds the DAMSM is the shipped 5-epoch one
(``ganlib/assets/damsm_synthbirds``, ``ganlib.models.damsm.load_pretrained()``), not the 30-epoch
one AttnGAN's fast preset trains against: a scorer apart from the network G is trained on.
"""

from __future__ import annotations

import numpy as np

from ganlib.metrics.images import as_model_images
from ganlib.metrics.loaded import pretrained
from ganlib.metrics.scores import r_precision_folds


def load_damsm(path=None):
    """``(model, tokenizer)`` of a DAMSM folder (None: the shipped SynthBirds DAMSM), loaded once."""
    return pretrained("damsm", path)


def damsm_codes(images, captions, model, tokenizer, batch_size=250):
    """DAMSM global image codes and sentence features, ``(N, D)`` each, as numpy.

    Images (N, S, S, 3) in [-1, 1] (or uint8) are resized (bilinear, antialiased)
    to the DAMSM's input size.
    """
    from keras import ops

    x = as_model_images(images)
    captions = [captions] if isinstance(captions, str) else list(captions)
    if len(captions) != x.shape[0]:
        raise ValueError(f"damsm_codes: `captions` must hold one caption per image ({x.shape[0]}), "
                         f"got {len(captions)}")
    size = model.config.image_size
    if x.shape[1] != size:
        x = np.concatenate([ops.convert_to_numpy(ops.image.resize(x[s:s + batch_size], (size, size),
                                                                  interpolation="bilinear", antialias=True))
                            for s in range(0, len(x), batch_size)])
        x = np.clip(x, -1.0, 1.0)
    tokens = tokenizer(captions)[:, :model.config.max_words]
    return model.encode_images(x, batch_size), model.encode_captions(tokens)


def damsm_r_precision(images, captions, path=None, candidates=100, folds=10, seed=0, model=None,
                      tokenizer=None):
    """R-precision of images against the captions they were generated from: ``(mean, std)``.

    Each image's own caption is ranked by cosine of DAMSM codes against
    ``candidates - 1`` mismatched captions of the other images; the hits are split
    into ``folds`` folds (AttnGAN / DM-GAN: 100 candidates, 10 folds). With fewer
    than ``candidates`` images, all of them are the candidates.

    Args:
        images: (N, S, S, 3) in [-1, 1] or uint8.
        captions: N strings.
        path: a DAMSM folder (None: the shipped SynthBirds DAMSM); or give ``model`` and ``tokenizer``.
        candidates, folds, seed: as :func:`ganlib.metrics.r_precision_folds`.
    """
    if model is None or tokenizer is None:
        model, tokenizer = load_damsm(path)
    image_codes, text_codes = damsm_codes(images, captions, model, tokenizer)
    n = image_codes.shape[0]
    if n < 2:
        raise ValueError(f"damsm_r_precision: need at least 2 images, got {n}")
    return r_precision_folds(image_codes, text_codes, candidates=min(candidates, n), folds=min(folds, n),
                             seed=seed)
