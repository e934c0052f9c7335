r"""DAMSM: AttnGAN's Deep Attentional Multimodal Similarity Model (Xu et al. 2018, Sec. 3.2).

Two encoders map a caption and an image into one 256-d space, at two levels:

* the **text encoder** (a bidirectional LSTM) gives a feature $e_i$ per word
  (``words``, $D \times T$) and a sentence feature $\bar e$ (its last hidden states);
* the **image encoder** gives a feature $v_j$ per image region (``regions``, a
  17x17 grid of InceptionV3's Mixed_6e features projected to $D$ by a 1x1
  convolution) and a global code $\bar v$ (the pooled last block, projected by a
  dense layer).

They are trained together with :func:`ganlib.losses.damsm_loss` so that, within a
batch, each image picks its own caption and each caption its own image, at the
word level (every word attends over the regions, Eq. 7-10) and at the sentence
level (cosine of $\bar v$ and $\bar e$). Pretrained and frozen, DAMSM then gives
AttnGAN's generator a word-level matching loss, and its R-precision evaluates
generated images.

Reference implementation: ``taoxugit/AttnGAN``, ``code/model.py`` (``RNN_ENCODER``,
``CNN_ENCODER``), ``code/pretrain_DAMSM.py``, ``code/cfg/DAMSM/{bird,coco}.yml``.
On real data the image backbone is Keras' InceptionV3 (ImageNet weights when the
user has them, frozen); on SynthBirds a small CNN trained from scratch with the
same interface. DAMSM is a helper network, not a GAN: it is not in
``ganlib.models.MODELS``; ``ganlib pretrain damsm`` trains it.

Two SynthBirds DAMSMs ship (their test R-precisions in ``ganlib/assets/pretrained.json``):
``ganlib/assets/damsm_synthbirds`` (5 epochs) scores the R-precision of every model, and
``ganlib/assets/damsm_synthbirds_30ep`` (30 epochs, ``load_pretrained("synthbirds-30ep")``)
gives AttnGAN's fast preset its text features and DAMSM loss, so that the network G
trains against is not the one that scores it. :func:`load_pretrained` gives either
with its tokenizer, frozen encoders are the caller's choice.

    >>> model, tokenizer = load_pretrained()                 # doctest: +SKIP
    >>> words, sentence = model.text_encoder(tokenizer(["a red bird with blue wings"]))  # doctest: +SKIP
    >>> model = DAMSM(Config.fast(), vocabulary_size=100)   # doctest: +SKIP
    >>> out = model({"image": images, "tokens": tokens})    # doctest: +SKIP
    >>> out["regions"].shape, out["words"].shape            # (B, 64, 64), (B, 18, 64)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import keras
from keras import layers, ops

from ganlib.losses import damsm_loss
from ganlib.models import folders


# --------------------------------------------------------------------------- #
# Config
# --------------------------------------------------------------------------- #
@dataclass
class Config:
    """DAMSM hyperparameters.

    ``paper()`` is ``cfg/DAMSM/bird.yml`` of the reference, ``coco()`` its
    ``coco.yml``, ``fast()`` a SynthBirds model for a 2-core CPU.

    Attributes:
        embed_dim: D, the shared word/region/sentence/image feature size
            (``TEXT.EMBEDDING_DIM``); the LSTM has ``embed_dim // 2`` units per direction.
        word_dim: word embedding size (300).
        dropout: dropout on the word embeddings (0.5).
        max_words: caption length in tokens (``TEXT.WORDS_NUM``: 18 birds, 15 COCO).
        captions_per_image: 10 (birds), 5 (COCO).
        backbone: ``"inception"`` (InceptionV3, 299x299 input, 17x17 regions) or
            ``"small"`` (a CNN trained from scratch).
        image_size: input side the pipeline crops to.
        inception_weights: ``None`` (random, frozen: only for tests), ``"imagenet"``
            (Keras fetches the file on first use), or a path to an InceptionV3 weights file.
        small_filters: channels of the small CNN's stride-2 convolutions; regions are
            taken after the last but one (``image_size / 2**(len-1)`` per side).
        batch_size, learning_rate, beta_1, beta_2: Adam as the reference (48, 0.002, 0.5, 0.999).
        lr_decay, lr_floor: lr x ``lr_decay`` after each epoch while it is above
            ``lr_floor`` x the initial lr.
        rnn_grad_clip: global norm clip of the text encoder's gradients (0.25).
        gamma1, gamma2, gamma3: the loss's smoothing factors (4, 5, 10).
        epochs: ``TRAIN.MAX_EPOCH``.
        use_class_ids: same-class items are not negatives of each other.
    """

    embed_dim: int = 256
    word_dim: int = 300
    dropout: float = 0.5
    max_words: int = 18
    captions_per_image: int = 10
    backbone: str = "inception"
    image_size: int = 299
    inception_weights: str | None = None
    small_filters: tuple = (32, 64, 128, 256)
    batch_size: int = 48
    learning_rate: float = 0.002
    beta_1: float = 0.5
    beta_2: float = 0.999
    lr_decay: float = 0.98
    lr_floor: float = 0.1
    rnn_grad_clip: float = 0.25
    gamma1: float = 4.0
    gamma2: float = 5.0
    gamma3: float = 10.0
    epochs: int = 600
    use_class_ids: bool = True

    @classmethod
    def paper(cls):
        """``cfg/DAMSM/bird.yml``: CUB, InceptionV3 (ImageNet weights) at 299, batch 48, 600 epochs."""
        return cls(inception_weights="imagenet")

    @classmethod
    def coco(cls):
        """``cfg/DAMSM/coco.yml``: as ``paper()`` with 15 words, 5 captions per image."""
        return cls(inception_weights="imagenet", max_words=15, captions_per_image=5)

    @classmethod
    def fast(cls):
        """SynthBirds at 64 px on a 2-core CPU: a small CNN from scratch (16-32-64-128 channels,
        8x8 regions) instead of ImageNet InceptionV3 (17x17), D = 64 (word embeddings 64) instead
        of 256 (300), batch 32 instead of 48, 10 epochs instead of 600; the rest (Adam 0.002
        (0.5, 0.999) fresh each epoch, lr x 0.98, RNN clip 0.25, gammas 4/5/10, dropout 0.5,
        18 words, class-id negatives) as ``bird.yml``."""
        return cls(embed_dim=64, word_dim=64, backbone="small", image_size=64,
                   small_filters=(16, 32, 64, 128), batch_size=32, epochs=10)

    def __post_init__(self):
        if self.backbone not in ("inception", "small"):
            raise ValueError(f"Config.backbone must be 'inception' or 'small', got {self.backbone!r}")
        if self.embed_dim <= 0 or self.embed_dim % 2:
            raise ValueError(f"Config.embed_dim must be a positive even number (two LSTM directions), "
                             f"got {self.embed_dim}")
        self.small_filters = tuple(int(f) for f in self.small_filters)

    def learning_rate_at(self, epoch):
        """The reference's schedule: ``lr x 0.98`` after each epoch while ``lr > lr0 / 10``."""
        lr = self.learning_rate
        for _ in range(int(epoch)):
            if lr > self.learning_rate * self.lr_floor:
                lr *= self.lr_decay
        return lr

    def to_dict(self):
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- #
# Text encoder
# --------------------------------------------------------------------------- #
@keras.saving.register_keras_serializable(package="ganlib")
class LSTMCell(layers.Layer):
    r"""An LSTM cell with PyTorch's parameters (two bias vectors, gates in order i, f, g, o).

    $$(i, f, g, o) = x W + h U + b_{ih} + b_{hh},\quad
    c' = \sigma(f) c + \sigma(i) \tanh(g),\quad h' = \sigma(o) \tanh(c')$$

    The two biases only ever appear as their sum; they are kept so the parameter
    count (and the weights) match the reference's ``nn.LSTM``. Every weight is
    initialised U(-1/sqrt(units), 1/sqrt(units)) as PyTorch does.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        bound = 1.0 / math.sqrt(self.units)
        init = keras.initializers.RandomUniform(-bound, bound)
        n = 4 * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], n), initializer=init, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, n), initializer=init, name="recurrent_kernel")
        self.input_bias = self.add_weight(shape=(n,), initializer=init, name="input_bias")
        self.recurrent_bias = self.add_weight(shape=(n,), initializer=init, name="recurrent_bias")

    def call(self, inputs, states, training=False):
        h, c = states
        z = (ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel)
             + self.input_bias + self.recurrent_bias)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="ganlib")
class TextEncoder(layers.Layer):
    r"""DAMSM's text encoder: word features $e$ and the sentence feature $\bar e$.

    tokens -> Embedding(word_dim) -> Dropout -> bidirectional LSTM (embed_dim / 2
    units per direction). Token 0 is padding (``ganlib.text``): the LSTM skips it,
    so the forward direction ends at the caption's last real word and the
    backward direction starts there (as the reference's packed sequences).

    Input shape: int tokens ``(B, T)``.
    Output shape: ``words (B, T, embed_dim)`` (zeros at padding; each position is
    [forward, backward] hidden state) and ``sentence (B, embed_dim)``: [last forward
    state, last backward state].
    """

    def __init__(self, vocabulary_size, embed_dim=256, word_dim=300, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embed_dim = int(embed_dim)
        self.word_dim = int(word_dim)
        self.dropout_rate = float(dropout)
        self.embedding = layers.Embedding(
            self.vocabulary_size, self.word_dim, name="embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-0.1, 0.1))   # the reference's init
        self.dropout = layers.Dropout(self.dropout_rate)
        rnn = layers.RNN(LSTMCell(self.embed_dim // 2), return_sequences=True, return_state=True, name="lstm")
        self.rnn = layers.Bidirectional(rnn, merge_mode="concat", name="bilstm")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        self.rnn.build((input_shape[0], input_shape[1], self.word_dim))
        self.built = True

    def call(self, tokens, training=False):
        tokens = ops.cast(tokens, "int32")
        mask = ops.not_equal(tokens, 0)
        x = self.dropout(self.embedding(tokens), training=training)
        words, forward_h, _, backward_h, _ = self.rnn(x, mask=mask, training=training)
        words = words * ops.cast(mask, words.dtype)[..., None]
        return words, ops.concatenate([forward_h, backward_h], axis=-1)

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape) + (self.embed_dim,), (input_shape[0], self.embed_dim))

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "embed_dim": self.embed_dim,
                "word_dim": self.word_dim, "dropout": self.dropout_rate}


# --------------------------------------------------------------------------- #
# Image encoder
# --------------------------------------------------------------------------- #
INCEPTION_SIZE = 299


def small_backbone(image_size, filters, name="small_cnn"):
    """A CNN from scratch: stride-2 [Conv 3x3 + BatchNorm + LeakyReLU(0.2)] blocks.

    Returns a model ``images -> (local (B, s, s, filters[-2]), global (B, filters[-1]))``
    with ``s = image_size / 2**(len(filters) - 1)``: the last but one block gives the
    regions, the last one, average-pooled, the global code.
    """
    images = keras.Input((image_size, image_size, 3), name="images")
    h, local = images, None
    for k, f in enumerate(filters):
        h = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"conv{k}")(h)
        h = layers.BatchNormalization(momentum=0.9, name=f"bn{k}")(h)   # PyTorch's momentum 0.1
        h = layers.LeakyReLU(0.2, name=f"act{k}")(h)
        if k == len(filters) - 2:
            local = h
    pooled = layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(images, [local, pooled], name=name)


def inception_backbone(image_size=INCEPTION_SIZE, weights=None, name="inception_v3"):
    """Keras' InceptionV3, frozen: images in [-1, 1] -> (Mixed_6e (B, 17, 17, 768), pooled (B, 2048)).

    Images are resized to 299x299 (bilinear, as the reference's ``nn.Upsample``).
    Keras' ``mixed7`` is torchvision's ``Mixed_6e``; ``mixed10`` is ``Mixed_7c``,
    average-pooled to 2048 as the reference's ``avg_pool2d(kernel_size=8)``.

    Args:
        weights: ``None`` (random: tests only), ``"imagenet"`` (fetched by Keras on
            first use, see :mod:`ganlib.metrics.inception`) or a path to a weights file
            (``*notop*`` files are read without the classifier).
    """
    from ganlib.metrics.inception import _resolve_weights

    path = _resolve_weights(weights)
    top = path is not None and "notop" not in os.path.basename(path)
    net = keras.applications.InceptionV3(include_top=top, weights=None,
                                         input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    if path is not None:
        net.load_weights(path)
    net.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    x = images
    if image_size != INCEPTION_SIZE:
        x = layers.Resizing(INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear", name="resize")(x)
    features = keras.Model(net.input, [net.get_layer("mixed7").output, net.get_layer("mixed10").output])
    local, last = features(x)
    pooled = layers.GlobalAveragePooling2D(name="pool")(last)
    model = keras.Model(images, [local, pooled], name=name)
    model.trainable = False
    return model


@keras.saving.register_keras_serializable(package="ganlib")
class ImageEncoder(layers.Layer):
    r"""DAMSM's image encoder: region features $v$ and the global code $\bar v$.

    backbone -> local features $f$ (B, s, s, C) and pooled $\bar f$ (B, C') ->
    $v = W f$ (a 1x1 convolution without bias, ``emb_features``) and
    $\bar v = \bar W \bar f + b$ (``emb_cnn_code``). With the InceptionV3 backbone
    only these two projections train (768*256 + 2048*256 + 256 = 721,152
    parameters at D = 256), initialised U(-0.1, 0.1) as the reference.

    Input shape: ``(B, S, S, 3)`` in [-1, 1].
    Output shape: ``regions (B, s*s, embed_dim)``, ``image_code (B, embed_dim)``.
    """

    def __init__(self, embed_dim=256, backbone="inception", image_size=INCEPTION_SIZE, inception_weights=None,
                 small_filters=(32, 64, 128, 256), **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = int(embed_dim)
        self.backbone_name = backbone
        self.image_size = int(image_size)
        self.inception_weights = inception_weights
        self.small_filters = tuple(int(f) for f in small_filters)
        if backbone == "inception":
            self.backbone = inception_backbone(self.image_size, inception_weights)
        elif backbone == "small":
            self.backbone = small_backbone(self.image_size, self.small_filters)
        else:
            raise ValueError(f"ImageEncoder: backbone must be 'inception' or 'small', got {backbone!r}")
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.emb_features = layers.Conv2D(self.embed_dim, 1, use_bias=False, kernel_initializer=init,
                                          name="emb_features")
        self.emb_cnn_code = layers.Dense(self.embed_dim, kernel_initializer=init, name="emb_cnn_code")

    def build(self, input_shape):
        local_shape, pooled_shape = self.backbone.output_shape
        self.emb_features.build(local_shape)
        self.emb_cnn_code.build(pooled_shape)
        self.built = True

    def call(self, images, training=False):
        local, pooled = self.backbone(images, training=training and self.backbone.trainable)
        v = self.emb_features(local)
        b = ops.shape(v)[0]
        regions = ops.reshape(v, (b, -1, self.embed_dim))
        return regions, self.emb_cnn_code(pooled)

    @property
    def head_weights(self):
        """The two projections' weights (what trains when the backbone is frozen)."""
        return self.emb_features.weights + self.emb_cnn_code.weights

    def compute_output_shape(self, input_shape):
        local_shape = self.backbone.output_shape[0]
        return ((input_shape[0], local_shape[1] * local_shape[2], self.embed_dim), (input_shape[0], self.embed_dim))

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "backbone": self.backbone_name,
                "image_size": self.image_size, "inception_weights": self.inception_weights,
                "small_filters": list(self.small_filters)}


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #
def caption_lengths(tokens):
    """Real words per caption: the number of non-padding (non-zero) tokens, ``(B,)`` int32."""
    return ops.sum(ops.cast(ops.not_equal(ops.cast(tokens, "int32"), 0), "int32"), axis=-1)


class DAMSM(keras.Model):
    """The two DAMSM encoders trained with :func:`ganlib.losses.damsm_loss`.

    ``fit()`` takes batches ``{"image": (B, S, S, 3), "tokens": (B, T), "class_id": (B,)}``
    (``ganlib.data`` pipelines with ``wrong=None``). The loss is word loss +
    sentence loss, each summed over both directions (image -> caption, caption ->
    image), as ``pretrain_DAMSM.py``. ``compile()`` without an optimizer uses the
    reference's: Adam(lr, 0.5, 0.999) on both encoders, with the text encoder's
    gradients clipped to global norm 0.25 (``clip_grad_norm`` on the RNN).

    Args:
        config: a :class:`Config`.
        vocabulary_size: token ids of the tokenizer (PAD and OOV included).
    """

    def __init__(self, config=None, vocabulary_size=None, **kwargs):
        super().__init__(**kwargs)
        self.config = config or Config.fast()
        if vocabulary_size is None:
            from ganlib.text import Tokenizer
            vocabulary_size = Tokenizer.default(self.config.max_words).vocabulary_size
        c = self.config
        self.text_encoder = TextEncoder(vocabulary_size, c.embed_dim, c.word_dim, c.dropout, name="text_encoder")
        self.image_encoder = ImageEncoder(c.embed_dim, c.backbone, c.image_size, c.inception_weights,
                                          c.small_filters, name="image_encoder")
        self.word_loss_tracker = keras.metrics.Mean(name="word_loss")
        self.sentence_loss_tracker = keras.metrics.Mean(name="sentence_loss")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        c = self.config
        self.text_encoder.build((None, c.max_words))
        self.image_encoder.build((None, c.image_size, c.image_size, 3))
        self.built = True

    def call(self, inputs, training=False):
        regions, image_code = self.image_encoder(inputs["image"], training=training)
        words, sentence = self.text_encoder(inputs["tokens"], training=training)
        return {"regions": regions, "image_code": image_code, "words": words, "sentence": sentence,
                "lengths": caption_lengths(inputs["tokens"])}

    def losses_of(self, outputs, class_ids=None):
        """``(word_loss, sentence_loss)`` of the encoders' outputs (``call``'s dict)."""
        c = self.config
        return damsm_loss(outputs["regions"], outputs["image_code"], outputs["words"], outputs["sentence"],
                          outputs["lengths"], c.gamma1, c.gamma2, c.gamma3,
                          class_ids=class_ids if c.use_class_ids else None)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        word_loss, sentence_loss = self.losses_of(y_pred, x.get("class_id"))
        loss = word_loss + sentence_loss
        self.word_loss_tracker.update_state(word_loss)
        self.sentence_loss_tracker.update_state(sentence_loss)
        self.loss_tracker.update_state(loss)
        return loss

    @property
    def metrics(self):
        return [self.loss_tracker, self.word_loss_tracker, self.sentence_loss_tracker]

    def compile(self, optimizer=None, learning_rate=None, **kwargs):
        """Compile with the reference's optimiser at ``learning_rate`` (default: the config's)."""
        if optimizer is None:
            optimizer = self.reference_optimizer(learning_rate)
        super().compile(optimizer=optimizer, **kwargs)

    def reference_optimizer(self, learning_rate=None):
        """Adam(lr, beta_1=0.5, beta_2=0.999); the text encoder's gradients clipped to global norm 0.25."""
        c = self.config
        lr = c.learning_rate if learning_rate is None else float(learning_rate)
        text_opt = keras.optimizers.Adam(lr, beta_1=c.beta_1, beta_2=c.beta_2, global_clipnorm=c.rnn_grad_clip,
                                         name="text_adam")
        image_opt = keras.optimizers.Adam(lr, beta_1=c.beta_1, beta_2=c.beta_2, name="image_adam")
        text_paths = {v.path for v in self.text_encoder.weights}

        def select(variable):
            return text_opt if variable.path in text_paths else image_opt

        self.text_optimizer, self.image_optimizer, self.select_optimizer = text_opt, image_opt, select
        return keras.optimizers.MultiOptimizer(select, name="damsm_adam")

    # ---- encoding for evaluation
    def encode_images(self, images, batch_size=64):
        """Global image codes ``(N, D)`` as numpy (inference mode)."""
        import numpy as np

        return np.concatenate([ops.convert_to_numpy(self.image_encoder(images[s:s + batch_size])[1])
                               for s in range(0, len(images), batch_size)])

    def encode_captions(self, tokens, batch_size=256):
        """Sentence features ``(N, D)`` of int tokens ``(N, T)`` as numpy (inference mode)."""
        import numpy as np

        return np.concatenate([ops.convert_to_numpy(self.text_encoder(tokens[s:s + batch_size])[1])
                               for s in range(0, len(tokens), batch_size)])


# --------------------------------------------------------------------------- #
# Loading a pretrained DAMSM
# --------------------------------------------------------------------------- #
_ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
#: the shipped SynthBirds DAMSMs (``ganlib pretrain damsm --data synthbirds --out`` these folders), by
#: name: ``"synthbirds"`` (5 epochs) scores R-precision (``ganlib.metrics``) and is ``None``'s;
#: ``"synthbirds-30ep"`` (30 epochs) is the text encoder and DAMSM loss of AttnGAN's fast preset, a
#: different network from the one that scores it
SHIPPED_NAMES = {"synthbirds": os.path.join(_ASSETS, "damsm_synthbirds"),
                 "synthbirds-30ep": os.path.join(_ASSETS, "damsm_synthbirds_30ep")}
SHIPPED = SHIPPED_NAMES["synthbirds"]
FILES = ("damsm.weights.h5", "config.json", "vocab.txt")


def folder(path=None):
    """The folder of a DAMSM: ``None`` (the shipped scoring DAMSM), a name of ``SHIPPED_NAMES``
    (it wins over a folder of that name in the working directory) or a folder."""
    return folders.resolve(path, SHIPPED, SHIPPED_NAMES)


def read_config(path=None):
    """The ``config.json`` of a DAMSM folder (``None`` or a shipped name: see :func:`folder`) as a dict
    ``{"config": {...}, "data", "vocabulary_size"}``, after checking the folder's files."""
    import json

    path = folder(path)
    missing = [name for name in FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(f"DAMSM folder {path}: missing {', '.join(missing)} (expected {', '.join(FILES)}, "
                                f"as written by `ganlib pretrain damsm --out DIR`)")
    with open(os.path.join(path, "config.json")) as f:
        info = json.load(f)
    if not isinstance(info.get("config"), dict):
        raise ValueError(f"{os.path.join(path, 'config.json')}: expected a 'config' object (the DAMSM Config fields)")
    return info


def load_pretrained(path=None):
    """A pretrained DAMSM and its tokenizer: ``(model, tokenizer)``.

    Args:
        path: a folder written by ``ganlib pretrain damsm --out DIR`` (``damsm.weights.h5``,
            ``config.json``, ``vocab.txt``); ``None``: the shipped SynthBirds DAMSM that scores
            R-precision (``ganlib/assets/damsm_synthbirds``); ``"synthbirds-30ep"``: the shipped
            30-epoch one AttnGAN's fast preset trains with (``ganlib/assets/damsm_synthbirds_30ep``);
            test R-precisions in ``pretrained.json``.

    Returns:
        ``model``: a built :class:`DAMSM` with the weights (``model.text_encoder``,
        ``model.image_encoder``, ``model.config``); callers freeze the encoders
        (``trainable = False``) and resize images to ``model.config.image_size``.
        ``tokenizer``: a :class:`ganlib.text.Tokenizer` mapping captions to
        ``(N, max_words)`` int tokens, 0 = padding.

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: the vocabulary or the weights do not fit the config.
    """
    from ganlib.text import Tokenizer

    path = folder(path)
    info = read_config(path)
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(info["config"]) - fields)
    if unknown:
        raise ValueError(f"{os.path.join(path, 'config.json')}: unknown DAMSM config fields {unknown}")
    config = Config(**info["config"])
    tokenizer = Tokenizer.load(os.path.join(path, "vocab.txt"), max_words=config.max_words)
    expected = info.get("vocabulary_size", tokenizer.vocabulary_size)
    if tokenizer.vocabulary_size != expected:
        raise ValueError(f"{os.path.join(path, 'vocab.txt')} gives {tokenizer.vocabulary_size} token ids, "
                         f"config.json says {expected}")
    # every weight (a frozen InceptionV3 backbone's too) is in the weights file: build without fetching any
    model = DAMSM(dataclasses.replace(config, inception_weights=None), vocabulary_size=tokenizer.vocabulary_size)
    model.build()
    weights = os.path.join(path, "damsm.weights.h5")
    try:
        model.load_weights(weights)
    except ValueError as error:
        raise ValueError(f"{weights} does not fit the DAMSM of {os.path.join(path, 'config.json')}: {error}") from error
    model.config = config
    return model, tokenizer
