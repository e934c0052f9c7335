r"""STREAM: MirrorGAN's image captioner (Qiao et al. 2019, the paper's "STREAM" module).

MirrorGAN closes a text -> image -> text loop: a captioner pretrained on real
images, then frozen, re-describes each generated image, and the generator is
penalised when the caption it gets back differs from the one it was given. The
captioner is the classic CNN encoder + LSTM decoder ("Show and Tell"):

$$x_{-1} = \mathrm{CNN}(I),\qquad x_t = W_e T_t,\ t \in \{0, \dots, L-1\},\qquad
p_{t+1} = \mathrm{RNN}(x_t),\ t \in \{0, \dots, L-1\}$$

where $x_{-1}$ is the image feature fed as the first LSTM input, $W_e$ the word
embedding, $T_t$ the $t$-th word of the caption and $p_{t+1}$ the distribution of
the next word. Training (and MirrorGAN's STREAM loss) uses **teacher forcing**: the
true previous word is fed at every step, and the loss is the cross-entropy of the
true words, padding excluded (:func:`caption_cross_entropy`):

$$\mathcal{L}_{\mathrm{stream}} = -\sum_{t=0}^{L-1} \log p_t(T_t)$$

averaged over the batch's real words, as ``nn.CrossEntropyLoss`` on packed
sequences does in the reference. At test time the caption is decoded greedily
(:func:`greedy_decode`): the most likely word is fed back as the next input.

Reference: ``qiaott/MirrorGAN``, ``model.py`` (``CAPTION_CNN``, ``CAPTION_RNN``,
built in ``trainer.py`` with ``embed_size`` 256, ``hidden_size * 2`` = 512, one
layer); the STREAM was pretrained with ``yunjey/pytorch-tutorial``'s image
captioning code (Adam 1e-3, batch 128, 5 epochs; only the projection, its
BatchNorm and the decoder train; the ResNet-152 is frozen).

Differences (documented in :meth:`Config.paper`): on real data the backbone is
Keras' ResNet-152 (ImageNet weights only when the user provides a file or asks
for ``"imagenet"``) instead of torchvision's; on SynthBirds (``Config.fast``) the
shipped SynthBirds DAMSM's small image CNN, frozen, in the role of the pretrained
ResNet (a CNN trained from scratch with the decoder learned to ignore the image).
The tutorial's vocabulary has ``<start>`` / ``<end>``; ganlib's tokenizer has neither, so the image feature starts the caption and the padding
token 0 after the last word is taught as the end (``end_token=True``) during
pretraining, which lets :func:`greedy_decode` stop. MirrorGAN's STREAM loss keeps
the reference's target, the real words only (``end_token=False``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib.losses import caption_cross_entropy  # noqa: F401  (STREAM's loss, re-exported)
from ganlib.models import folders
from ganlib.models.damsm import LSTMCell, small_backbone
from ganlib.text import Tokenizer

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                         "stream_synthbirds")
WEIGHTS_FILE = "stream.weights.h5"
RESNET_SIZE = 224


# --------------------------------------------------------------------------- #
# Config
# --------------------------------------------------------------------------- #
@dataclass
class Config:
    """STREAM hyperparameters.

    Attributes:
        embed_size: image feature and word embedding size (``CAP.embed_size``).
        hidden_size: LSTM units (the reference builds ``CAPTION_RNN`` with
            ``CAP.hidden_size * 2`` = 512).
        max_words: caption length in tokens of the training pipeline.
        sample_length: greedy decoding steps (``CAPTION_RNN.max_seg_length`` = 20).
        backbone: ``"resnet152"`` (frozen Keras ResNet-152, images resized to 224)
            or ``"small"`` (a CNN trained from scratch).
        image_size: input side the pipeline gives.
        backbone_weights: ResNet-152 weights: ``None`` (random: tests only),
            ``"imagenet"`` (Keras fetches them) or a path to a weights file. Small CNN:
            ``None`` (trained from scratch with the decoder), ``"damsm"`` (the shipped
            SynthBirds DAMSM's image CNN, frozen) or a ``ganlib pretrain damsm`` folder.
        small_filters: channels of the small CNN's stride-2 blocks.
        batch_size, learning_rate, epochs: Adam as the captioning tutorial.
        end_token: pretraining also teaches token 0 after the last word as "end".
    """

    embed_size: int = 256
    hidden_size: int = 512
    max_words: int = 18
    sample_length: int = 20
    backbone: str = "resnet152"
    image_size: int = RESNET_SIZE
    backbone_weights: str | None = None
    small_filters: tuple = (32, 64, 128, 256)
    batch_size: int = 128
    learning_rate: float = 0.001
    epochs: int = 5
    end_token: bool = True

    @classmethod
    def paper(cls):
        """The reference's STREAM: ResNet-152 (frozen) -> Linear(2048, 256) + BatchNorm -> LSTM(256, 512).

        Differences from the reference: Keras' ResNet-152 (Caffe-style, its own
        preprocessing applied to the [-1, 1] images) instead of torchvision's
        (whose generated images the reference feeds un-normalised); the end of a
        caption is the padding token (no ``<start>`` / ``<end>`` words).
        """
        return cls(backbone_weights="imagenet")

    @classmethod
    def fast(cls):
        """SynthBirds at 64 px on a CPU: the shipped DAMSM's small image CNN (pretrained, frozen, as the
        reference's ImageNet ResNet-152), embedding 128, LSTM 256, batch 64, 16 epochs.

        A small CNN trained from scratch with the decoder (``backbone_weights=None``) learns
        to ignore the image on SynthBirds: the image only enters at the first step, the
        first words of a caption are template words, and the colour words come 4-15 steps
        later, so the decoder settles on a language model (own-caption and shuffled-image
        losses equal) before the CNN learns to see the bird's parts.
        """
        return cls(embed_size=128, hidden_size=256, backbone="small", image_size=64, batch_size=64,
                   learning_rate=0.002, epochs=16, small_filters=(16, 32, 64, 128), backbone_weights="damsm")

    def __post_init__(self):
        if self.backbone not in ("resnet152", "small"):
            raise ValueError(f"Config.backbone must be 'resnet152' or 'small', got {self.backbone!r}")
        for name in ("embed_size", "hidden_size", "max_words", "sample_length", "image_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"Config.{name} must be a positive integer, got {getattr(self, name)!r}")
        self.small_filters = tuple(int(f) for f in self.small_filters)

    def to_dict(self):
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- #
# The loss and greedy decoding (the paper's equations, backend-free)
# --------------------------------------------------------------------------- #
def caption_mask(tokens, end_token=False):
    """Which teacher-forced positions carry a target: ``t < L`` (``t <= L`` with ``end_token``).

    ``tokens (B, T)`` int, 0 = padding after the ``L`` real words. Returns float32 ``(B, T)``.
    """
    tokens = ops.cast(tokens, "int32")
    lengths = ops.sum(ops.cast(ops.not_equal(tokens, 0), "int32"), axis=-1, keepdims=True)
    positions = ops.arange(ops.shape(tokens)[1], dtype="int32")[None, :]
    return ops.cast(positions < lengths + int(bool(end_token)), "float32")


def greedy_decode(cell, embed, project, features, steps):
    """Greedy decoding: feed the image feature, then each step's most likely word.

    Args:
        cell: an LSTM cell, ``cell(x, [h, c]) -> (h, [h, c])``.
        embed: word ids ``(B,)`` -> ``(B, E)``.
        project: hidden state ``(B, H)`` -> next-word logits ``(B, V)``.
        features: image features ``(B, E)`` (the first input, $x_{-1}$).
        steps: words to produce.

    Returns:
        int32 ``(B, steps)`` word ids (the caller cuts at the first end token).
    """
    b = ops.shape(features)[0]
    h = ops.zeros((b, cell.units), dtype=features.dtype)
    states, x, words = [h, h], features, []
    for _ in range(int(steps)):
        out, states = cell(x, states)
        word = ops.cast(ops.argmax(project(out), axis=-1), "int32")
        words.append(word)
        x = embed(word)
    return ops.stack(words, axis=1)


class _ArrayLSTMCell:
    """An LSTM cell over plain weights (gates i, f, g, o, as :class:`~ganlib.models.damsm.LSTMCell`)."""

    def __init__(self, kernel, recurrent_kernel, bias):
        self.kernel, self.recurrent_kernel, self.bias = kernel, recurrent_kernel, bias
        self.units = int(ops.shape(recurrent_kernel)[0])

    def __call__(self, x, states):
        h, c = states
        z = ops.matmul(x, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]


def decoding_weights(decoder):
    """A :class:`CaptionRNN`'s weights as :func:`greedy_decode_weights` takes them: ``(embeddings (V, E),
    kernel (E, 4H), recurrent_kernel (H, 4H), bias (4H,), out_kernel (H, V), out_bias (V,))``, gates in
    the order i, f, g, o, the cell's two biases summed."""
    cell = decoder.cell
    return (decoder.embed.embeddings, cell.kernel, cell.recurrent_kernel, cell.input_bias + cell.recurrent_bias,
            decoder.linear.kernel, decoder.linear.bias)


def greedy_decode_weights(features, embeddings, kernel, recurrent_kernel, bias, out_kernel, out_bias, steps):
    """:func:`greedy_decode` with the decoder given by its weights (:func:`decoding_weights`): the
    signature of lesson 06's exercise, and the decode function ``Stream.caption(decode_fn=...)`` takes.

    Returns int32 ``(B, steps)`` word ids."""
    features = ops.convert_to_tensor(features, "float32")
    embeddings = ops.convert_to_tensor(embeddings, "float32")
    out_kernel, out_bias = ops.convert_to_tensor(out_kernel, "float32"), ops.convert_to_tensor(out_bias, "float32")
    cell = _ArrayLSTMCell(*(ops.convert_to_tensor(w, "float32") for w in (kernel, recurrent_kernel, bias)))
    return greedy_decode(cell, lambda w: ops.take(embeddings, w, axis=0),
                         lambda h: ops.matmul(h, out_kernel) + out_bias, features, steps)


def cut_at_end(ids):
    """Zero every word after the first end token (0) of each row, as numpy int32."""
    ids = np.asarray(ids, np.int32).copy()
    ended = np.cumsum(ids == 0, axis=1) > 0
    ids[ended] = 0
    return ids


# --------------------------------------------------------------------------- #
# The networks
# --------------------------------------------------------------------------- #
def resnet_backbone(image_size, weights=None, name="resnet152"):
    """Keras' ResNet-152, frozen: images in [-1, 1] resized to 224 -> pooled features (B, 2048)."""
    if weights is not None and str(weights) != "imagenet" and not os.path.isfile(os.fspath(weights)):
        raise FileNotFoundError(f"STREAM backbone_weights: ResNet-152 weights file {weights} does not exist "
                                f"(expected a Keras ResNet152 .h5/.weights.h5 file, 'imagenet' or None)")
    net = keras.applications.ResNet152(include_top=False, weights="imagenet" if weights == "imagenet" else None,
                                       pooling="avg", input_shape=(RESNET_SIZE, RESNET_SIZE, 3))
    if weights is not None and weights != "imagenet":
        net.load_weights(os.fspath(weights))
    net.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Resizing(RESNET_SIZE, RESNET_SIZE, interpolation="bilinear", name="resize")(images)
    x = layers.Lambda(lambda t: keras.applications.resnet.preprocess_input((t + 1.0) * 127.5),
                      name="preprocess")(x)
    model = keras.Model(images, net(x), name=name)
    model.trainable = False
    return model


def damsm_backbone_weights(path, image_size, filters):
    """The weights of a pretrained DAMSM's small image CNN (``"damsm"``: the shipped SynthBirds DAMSM,
    else a folder written by ``ganlib pretrain damsm``), checked against the captioner's CNN."""
    from ganlib.models import damsm

    model, _ = damsm.load_pretrained(None if str(path) == "damsm" else path)
    c = model.config
    if c.backbone != "small" or int(c.image_size) != int(image_size) or tuple(c.small_filters) != tuple(filters):
        raise ValueError(f"STREAM backbone_weights: the DAMSM at {path} has a {c.backbone!r} CNN at {c.image_size} px "
                         f"with filters {tuple(c.small_filters)}; the captioner expects 'small' at {image_size} px "
                         f"with filters {tuple(filters)}")
    return model.image_encoder.backbone.get_weights()


@keras.saving.register_keras_serializable(package="ganlib")
class CaptionCNN(layers.Layer):
    r"""STREAM's encoder ``CAPTION_CNN``: $x_{-1} = \mathrm{BN}(W\,\mathrm{CNN}(I) + b)$.

    Input shape: images ``(B, S, S, 3)`` in [-1, 1].
    Output shape: ``(B, embed_size)``.
    """

    def __init__(self, embed_size=256, backbone="resnet152", image_size=RESNET_SIZE, backbone_weights=None,
                 small_filters=(32, 64, 128, 256), **kwargs):
        super().__init__(**kwargs)
        self.embed_size = int(embed_size)
        self.backbone_name = backbone
        self.image_size = int(image_size)
        self.backbone_weights = backbone_weights
        self.small_filters = tuple(int(f) for f in small_filters)
        if backbone == "resnet152":
            self.backbone = resnet_backbone(self.image_size, backbone_weights)
        elif backbone == "small":
            net = small_backbone(self.image_size, self.small_filters, name="small_cnn")
            self.backbone = keras.Model(net.input, net.output[1], name="small_cnn_pooled")
            if backbone_weights is not None:     # a pretrained DAMSM's image CNN, frozen (as the ResNet)
                net.set_weights(damsm_backbone_weights(backbone_weights, self.image_size, self.small_filters))
                self.backbone.trainable = False
        else:
            raise ValueError(f"CaptionCNN: backbone must be 'resnet152' or 'small', got {backbone!r}")
        self.linear = layers.Dense(self.embed_size, name="linear")
        self.bn = layers.BatchNormalization(momentum=0.99, epsilon=1e-5, name="bn")   # PyTorch momentum 0.01

    def build(self, input_shape):
        pooled = self.backbone.output_shape
        self.linear.build(pooled)
        self.bn.build((pooled[0], self.embed_size))
        self.built = True

    def call(self, images, training=False):
        features = self.backbone(images, training=training and self.backbone.trainable)
        return self.bn(self.linear(features), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embed_size)

    def get_config(self):
        return {**super().get_config(), "embed_size": self.embed_size, "backbone": self.backbone_name,
                "image_size": self.image_size, "backbone_weights": self.backbone_weights,
                "small_filters": list(self.small_filters)}


@keras.saving.register_keras_serializable(package="ganlib")
class CaptionRNN(layers.Layer):
    r"""STREAM's decoder ``CAPTION_RNN``: an LSTM over $[x_{-1}, W_e T_0, \dots, W_e T_{L-2}]$.

    ``call(features, tokens)`` is teacher forcing: output $t$ scores word $T_t$
    (the image feature predicts the first word). ``sample(features, steps)`` decodes greedily.

    Input shape: ``features (B, embed_size)``, int ``tokens (B, T)``.
    Output shape: logits ``(B, T, vocabulary_size)``.
    """

    def __init__(self, vocabulary_size, embed_size=256, hidden_size=512, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embed_size = int(embed_size)
        self.hidden_size = int(hidden_size)
        self.embed = layers.Embedding(self.vocabulary_size, self.embed_size, name="embed",
                                      embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.cell = LSTMCell(self.hidden_size, name="lstm_cell")
        self.lstm = layers.RNN(self.cell, return_sequences=True, name="lstm")
        self.linear = layers.Dense(self.vocabulary_size, name="linear")

    def build(self, input_shape):
        self.embed.build((None,))
        self.lstm.build((None, None, self.embed_size))
        self.linear.build((None, self.hidden_size))
        self.built = True

    def call(self, features, tokens):
        tokens = ops.cast(tokens, "int32")
        inputs = ops.concatenate([features[:, None, :], self.embed(tokens[:, :-1])], axis=1)
        return self.linear(self.lstm(inputs))

    def sample(self, features, steps=20, decode_fn=None):
        """Greedy word ids ``(B, steps)`` (not cut at the end token).

        ``decode_fn(features, *decoding_weights(self), steps)`` replaces the decoding
        (:func:`greedy_decode_weights`'s signature; lesson 06 plugs the student's in)."""
        if decode_fn is not None:
            return decode_fn(features, *decoding_weights(self), int(steps))
        return greedy_decode(self.cell, self.embed, self.linear, features, steps)

    def compute_output_shape(self, input_shape):
        features_shape, tokens_shape = input_shape
        return (*tokens_shape, self.vocabulary_size)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "embed_size": self.embed_size,
                "hidden_size": self.hidden_size}


class Stream(keras.Model):
    """The captioner: ``encoder`` (:class:`CaptionCNN`) + ``decoder`` (:class:`CaptionRNN`).

    ``fit()`` takes batches ``{"image": (B, S, S, 3), "tokens": (B, T)}`` (``ganlib.data``
    pipelines with ``wrong=None``) and minimises :func:`caption_cross_entropy`.
    ``compile()`` without an optimizer uses the tutorial's Adam(lr); with the
    ResNet-152 backbone only the projection, its BatchNorm and the decoder train.

    Args:
        config: a :class:`Config`.
        vocabulary_size: token ids of the tokenizer (PAD and OOV included).
    """

    def __init__(self, config=None, vocabulary_size=None, **kwargs):
        super().__init__(**kwargs)
        c = self.config = config or Config.fast()
        vocabulary_size = vocabulary_size or Tokenizer.default(c.max_words).vocabulary_size   # SynthBirds'
        self.encoder = CaptionCNN(c.embed_size, c.backbone, c.image_size, c.backbone_weights, c.small_filters,
                                  name="caption_cnn")
        self.decoder = CaptionRNN(vocabulary_size, c.embed_size, c.hidden_size, name="caption_rnn")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        c = self.config
        self.encoder.build((None, c.image_size, c.image_size, 3))
        self.decoder.build(((None, c.embed_size), (None, c.max_words)))
        self.built = True

    def call(self, inputs, training=False):
        """Teacher-forced next-word logits ``(B, T, V)``."""
        return self.decoder(self.encoder(inputs["image"], training=training), inputs["tokens"])

    def caption_loss(self, images, tokens, end_token=False, training=False):
        """Teacher-forced :func:`caption_cross_entropy` of ``tokens`` given ``images``.

        ``end_token=False`` is MirrorGAN's STREAM loss (the real words only).
        """
        logits = self.decoder(self.encoder(images, training=training), tokens)
        return caption_cross_entropy(logits, tokens, caption_mask(tokens, end_token))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = caption_cross_entropy(y_pred, x["tokens"], caption_mask(x["tokens"], self.config.end_token))
        self.loss_tracker.update_state(loss)
        return loss

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer=None, **kwargs):
        if optimizer is None:
            optimizer = keras.optimizers.Adam(self.config.learning_rate)
        super().compile(optimizer=optimizer, **kwargs)

    def caption(self, images, steps=None, batch_size=128, decode_fn=None):
        """Greedy captions as int32 ids ``(N, steps)``, zero after the first end token (numpy).

        ``decode_fn``: see :meth:`CaptionRNN.sample`."""
        steps = self.config.sample_length if steps is None else int(steps)
        out = [ops.convert_to_numpy(self.decoder.sample(self.encoder(images[s:s + batch_size]), steps, decode_fn))
               for s in range(0, len(images), batch_size)]
        return cut_at_end(np.concatenate(out))


# --------------------------------------------------------------------------- #
# Saving and the shipped SynthBirds captioner
# --------------------------------------------------------------------------- #
def save(model, tokenizer, out, extra=None):
    """Write ``stream.weights.h5``, ``config.json`` and ``vocab.txt`` to ``out``."""
    folders.write(out, model.config, tokenizer, extra)
    model.save_weights(os.path.join(out, WEIGHTS_FILE))


def folder(path=None):
    """The folder of a STREAM: ``None`` -> the shipped SynthBirds captioner, else ``path``."""
    return folders.resolve(path, ASSET_DIR)


def load_pretrained(path=None):
    """A built, frozen :class:`Stream` and its tokenizer from a folder written by ``ganlib pretrain stream``.

    Args:
        path: the folder (``stream.weights.h5``, ``config.json``, ``vocab.txt``);
            ``None`` = the SynthBirds captioner shipped in ``ganlib/assets/stream_synthbirds``.

    Returns:
        ``(model, tokenizer)``.
    """
    path = folder(path)
    config, tokenizer, weights = folders.read(path, WEIGHTS_FILE, Config, "stream")
    model = Stream(config, vocabulary_size=tokenizer.vocabulary_size, name="stream")   # a helper's name
    model.build()
    model.load_weights(weights)
    model.trainable = False
    return model, tokenizer
