r"""Pre-trained text and image encoders.

GAN-INT-CLS (Reed et al., 2016) conditions its generator on $\varphi(t)$, a sentence
embedding from a *pre-trained* char-CNN-RNN text encoder. Reed et al. (2016, "Learning
Deep Representations of Fine-Grained Visual Descriptions") train it jointly with an
image encoder $\theta(v)$ so that the compatibility $F(v, t) = \theta(v)^\top\varphi(t)$
ranks a description's own class first, with the symmetric structured objective
$\frac{1}{N}\sum_n \Delta(y_n, f_v(v_n)) + \Delta(y_n, f_t(t_n))$.

:class:`SentenceEncoder` is the course's CPU-sized stand-in: a word-CNN (embedding
-> two 1-D convolutions -> masked mean -> linear), trained with
:class:`ImageEncoder` on SynthBirds by ``python -m ganlib.pretrain encoder`` with a
symmetric hinge ranking loss over cosine similarities (Reed et al.'s symmetric
objective in ranking form). Only the sentence encoder's weights are shipped
(``ganlib/assets/sentence_encoder.weights.h5``): lessons 01-03 load it frozen with
:func:`load_sentence_encoder`.
"""

from __future__ import annotations

import os

import keras
from keras import layers, ops

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
SENTENCE_ENCODER_WEIGHTS = os.path.join(ASSETS, "sentence_encoder.weights.h5")


@keras.saving.register_keras_serializable(package="ganlib")
class SentenceEncoder(keras.layers.Layer):
    r"""Word-CNN sentence encoder $\varphi(t)$.

    tokens -> Embedding(word_dim) (PAD=0 rows zeroed) -> 2 x [Conv1D(hidden, 3,
    "same") + ReLU] -> mean over real (non-PAD) words -> Dense(embed_dim).

    Args:
        vocabulary_size: number of token ids (PAD=0 and OOV=1 included).
        embed_dim: output size (256, as Reed et al.'s text embedding feeds the GAN).
        word_dim: word embedding size.
        hidden_dim: convolution width.

    Input shape: int tokens ``(B, T)``, 0 = padding.
    Output shape: ``(B, embed_dim)`` float32. An all-PAD caption gives the bias
    of the last layer (no division by zero).

    >>> import numpy as np
    >>> enc = SentenceEncoder(vocabulary_size=100)
    >>> tuple(enc(np.array([[5, 6, 7, 0]])).shape)
    (1, 256)
    """

    def __init__(self, vocabulary_size, embed_dim=256, word_dim=128, hidden_dim=256, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embed_dim = int(embed_dim)
        self.word_dim = int(word_dim)
        self.hidden_dim = int(hidden_dim)
        self.embedding = layers.Embedding(self.vocabulary_size, self.word_dim, name="embedding")
        self.conv1 = layers.Conv1D(self.hidden_dim, 3, padding="same", activation="relu", name="conv1")
        self.conv2 = layers.Conv1D(self.hidden_dim, 3, padding="same", activation="relu", name="conv2")
        self.proj = layers.Dense(self.embed_dim, name="proj")

    def build(self, input_shape):
        t = input_shape[1] if len(input_shape) > 1 else None
        self.embedding.build(input_shape)
        self.conv1.build((None, t, self.word_dim))
        self.conv2.build((None, t, self.hidden_dim))
        self.proj.build((None, self.hidden_dim))
        self.built = True

    def call(self, tokens):
        tokens = ops.cast(tokens, "int32")
        mask = ops.cast(ops.not_equal(tokens, 0), self.compute_dtype)[..., None]  # (B, T, 1)
        h = self.embedding(tokens) * mask          # PAD words contribute nothing
        h = self.conv1(h) * mask
        h = self.conv2(h) * mask
        h = ops.sum(h, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)   # masked mean
        return self.proj(h)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary_size=self.vocabulary_size, embed_dim=self.embed_dim,
                      word_dim=self.word_dim, hidden_dim=self.hidden_dim)
        return config


@keras.saving.register_keras_serializable(package="ganlib")
class ImageEncoder(keras.layers.Layer):
    r"""Small CNN image encoder $\theta(v)$, used only to train the joint embedding.

    4 x [Conv2D(stride 2) + BatchNorm + ReLU] -> global average pool -> Dense(embed_dim).

    Input shape: ``(B, 64, 64, 3)`` in [-1, 1]. Output shape: ``(B, embed_dim)``.
    """

    def __init__(self, embed_dim=256, filters=(32, 64, 128, 256), **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = int(embed_dim)
        self.filters = tuple(int(f) for f in filters)
        self.convs = [layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")
                      for i, f in enumerate(self.filters)]
        self.norms = [layers.BatchNormalization(name=f"bn{i}") for i in range(len(self.filters))]
        self.gap = layers.GlobalAveragePooling2D()
        self.proj = layers.Dense(self.embed_dim, name="proj")

    def call(self, images, training=False):
        h = images
        for conv, bn in zip(self.convs, self.norms):
            h = ops.relu(bn(conv(h), training=training))
        return self.proj(self.gap(h))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(embed_dim=self.embed_dim, filters=list(self.filters))
        return config


def build_sentence_encoder(vocabulary_size=None, embed_dim=256, name="sentence_encoder"):
    """Functional model ``tokens (B, None) int32 -> (B, embed_dim)`` around :class:`SentenceEncoder`."""
    if vocabulary_size is None:
        from ganlib.text import Tokenizer
        vocabulary_size = Tokenizer.default().vocabulary_size
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    out = SentenceEncoder(vocabulary_size, embed_dim=embed_dim, name="phi")(tokens)
    return keras.Model(tokens, out, name=name)


def load_sentence_encoder(path=None, trainable=False, vocabulary_size=None):
    """The pre-trained SynthBirds sentence encoder $\\varphi$, frozen by default.

    Returns a built ``keras.Model`` taking int32 tokens ``(B, T)`` (from
    ``ganlib.text.Tokenizer.default()``) and returning ``(B, 256)`` embeddings.
    Loads ``ganlib/assets/sentence_encoder.weights.h5`` unless ``path`` is given.
    """
    path = path or SENTENCE_ENCODER_WEIGHTS
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Sentence encoder weights not found at {path}. Make them with "
            "`python -m ganlib.pretrain encoder` (a few minutes on a CPU).")
    model = build_sentence_encoder(vocabulary_size)
    try:
        model.load_weights(path)
    except ValueError as err:
        raise ValueError(
            f"Sentence encoder weights {path} do not fit a vocabulary of "
            f"{model.get_layer('phi').vocabulary_size} ids (ganlib.text.Tokenizer.default()): "
            "the vocabulary changed since they were trained; re-run "
            f"`python -m ganlib.pretrain encoder`. ({err})") from err
    model.trainable = bool(trainable)
    return model
