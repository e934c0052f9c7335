r"""HDGAN's visual-semantic similarity of images and their captions (Zhang, Xie, Yang, CVPR 2018).

Each image and its caption are embedded by a pretrained VS model
(:mod:`ganlib.models.vs`: image features and the sentence embedding, each projected
linearly and L2-normalised); the score of a pair is the cosine of the two vectors,
and the test set's mean and standard deviation are reported, as the reference's
``testNeuralDist.py`` does. On SynthBirds the model is the shipped one
(``ganlib/assets/vs_synthbirds``).
"""

from __future__ import annotations

import numpy as np

from ganlib.metrics.images import as_model_images
from ganlib.metrics.loaded import pretrained


def load_vs(path=None):
    """``(model, tokenizer)`` of a VS folder (None: the shipped SynthBirds model), loaded once."""
    return pretrained("vs", path)


def vs_vectors(images, captions_or_tokens, model, tokenizer=None, batch_size=128):
    """The VS model's L2-normalised image and sentence vectors, ``(N, hid)`` each, as numpy.

    Images (N, S, S, 3) in [-1, 1] (or uint8) are resized (bilinear, antialiased) to the
    model's input. ``captions_or_tokens``: N strings (through ``tokenizer``), or int tokens
    (N, T), or, for a model on precomputed embeddings, float embeddings (N, sentence_dim).
    """
    from keras import ops

    x = as_model_images(images)
    if isinstance(captions_or_tokens, str):
        captions_or_tokens = [captions_or_tokens]
    if isinstance(captions_or_tokens, (list, tuple)) and captions_or_tokens and isinstance(captions_or_tokens[0], str):
        if tokenizer is None:
            raise ValueError("vs_similarity: captions given as strings need the model's `tokenizer`")
        sentences = tokenizer(list(captions_or_tokens))
    else:
        sentences = np.asarray(captions_or_tokens)
    if sentences.ndim != 2 or len(sentences) != x.shape[0]:
        raise ValueError(f"vs_similarity: `captions_or_tokens` must hold one caption (or token row) per image "
                         f"({x.shape[0]}), got shape {sentences.shape}")
    if model.sentence_encoder is not None:
        if not np.issubdtype(sentences.dtype, np.integer):
            raise ValueError(f"vs_similarity: expected captions or int tokens, got {sentences.dtype} values")
        sentences = sentences[:, :model.config.max_words].astype("int32")
    size = model.config.image_size
    if x.shape[1] != size:
        x = np.concatenate([ops.convert_to_numpy(ops.image.resize(x[s:s + batch_size], (size, size),
                                                                  interpolation="bilinear", antialias=True))
                            for s in range(0, len(x), batch_size)])
        x = np.clip(x, -1.0, 1.0)
    return model.encode_images(x, batch_size), model.encode_sentences(sentences)


def vs_similarity(images, captions_or_tokens, path=None, model=None, tokenizer=None, batch_size=128):
    """HDGAN's VS similarity: ``(mean, std)`` over the pairs of the cosine of image and caption vectors.

    Args:
        images: (N, S, S, 3) in [-1, 1] or uint8.
        captions_or_tokens: N captions, or int tokens (N, T) of the model's tokenizer.
        path: a VS folder (None: the shipped SynthBirds model); or give ``model`` (and ``tokenizer``
            for string captions).
    """
    if model is None:
        model, tokenizer = load_vs(path)
    v, s = vs_vectors(images, captions_or_tokens, model, tokenizer, batch_size)
    scores = np.sum(v * s, axis=1)
    return float(np.mean(scores)), float(np.std(scores))
