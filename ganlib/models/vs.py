r"""HDGAN's visual-semantic (VS) similarity model (Zhang, Xie, Yang, CVPR 2018).

HDGAN introduces "a new visual-semantic similarity measure to evaluate the semantic
consistency of generated images" (paper, abstract). In the reference code
(``Evaluation/compute_neudist_score.sh``) it is a separate embedding model: an image
feature and the caption's sentence embedding are each projected linearly into one
space and L2-normalised; the VS similarity of a pair is the cosine (dot product) of
the two vectors, reported as mean and std over the test set. The two projections are trained with the bidirectional ranking loss
(:func:`ganlib.losses.bidirectional_ranking_loss`, margin 0.2): each image must score
its own caption above the batch's other captions by the margin, and each caption its
own image.

Reference: ``ypxie/HDGan``, ``HDGan/neuralDist/neuralDistModel.py`` (``ImageEncoder``,
``ImgSenRanking``), ``HDGan/neuralDist/trainNeuralDist.py`` (``PairwiseRankingLoss``,
Adam(2e-4, 0.5, 0.999), lr halved every 100 epochs), ``train/train_neudist/`` (1536-d
InceptionResNetV2 features, 1024-d char-CNN-RNN sentence embeddings, 512-d space,
batch 32 in ``train_birds.sh``), ``HDGan/neuralDist/testNeuralDist.py`` (mean and std
of the per-pair cosine).

On SynthBirds (``Config.fast()``, the shipped ``ganlib/assets/vs_synthbirds``) the
sentence embedding is the one the GANs are conditioned on, the shipped sentence
encoder $\varphi$ (256-d, frozen, inside the model), and the image feature comes
from a small CNN trained from scratch together with the projections (there is no
pretrained backbone for synthetic birds), as DAMSM's ``fast`` preset does.

Differences from the reference:

* ``fast``: small CNN (4 stride-2 conv + BN + ReLU, global average pool) trained
  jointly instead of a frozen ImageNet InceptionResNetV2; 64 px input instead of
  299; 128-d space instead of 512; lr 1e-3 instead of 2e-4 (the CNN learns from
  scratch); 12 epochs instead of 600; the SynthBirds sentence encoder instead of
  char-CNN-RNN embeddings.
* ``paper``: the backbone is Keras' InceptionResNetV2 (frozen; ImageNet weights when
  the user has them) with inputs scaled to [-1, 1] as Keras' preprocessing, not
  the Cadene ``pretrainedmodels`` port's normalisation; the sentence side takes
  precomputed 1024-d embeddings (``"embeddings"``).
* The loss is averaged over the batch (the reference sums it; Adam is nearly
  invariant to the scale). The reference also draws a share of its training
  batches from the test split; here only the train split is used.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import keras
from keras import layers, ops

from ganlib.losses import bidirectional_ranking_loss
from ganlib.models import folders

WEIGHTS_FILE = "vs.weights.h5"
#: the shipped SynthBirds VS model (``ganlib pretrain vs --data synthbirds --out`` this folder)
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "vs_synthbirds")


@dataclass
class Config:
    """VS model hyperparameters.

    Attributes:
        backbone: ``"small"`` (CNN from scratch, trained) or ``"inception_resnet_v2"``
            (frozen, 1536-d pooled features, as the reference).
        image_size: input side (64 small, 299 InceptionResNetV2).
        small_filters: channels of the small CNN's stride-2 convolutions.
        backbone_weights: InceptionResNetV2 weights: None (random: tests only), ``"imagenet"``
            or a file path.
        text: ``"sentence_encoder"`` (tokens through the shipped SynthBirds encoder, frozen) or
            ``"embeddings"`` (precomputed sentence embeddings of ``sentence_dim``).
        sentence_dim: size of the sentence embedding (256 sentence encoder; 1024 char-CNN-RNN).
        hid_dim: the joint space (512 in the reference).
        margin: ranking margin (0.2).
        batch_size, learning_rate, beta_1, beta_2: Adam (reference: 32, 2e-4, 0.5, 0.999).
        epoch_decay: the lr is halved every ``epoch_decay`` epochs (100).
        epochs: total epochs (``--maxepoch`` 600).
        max_words: caption length in tokens.
    """

    backbone: str = "inception_resnet_v2"
    image_size: int = 299
    small_filters: tuple = (32, 64, 128, 256)
    backbone_weights: str | None = None
    text: str = "embeddings"
    sentence_dim: int = 1024
    hid_dim: int = 512
    margin: float = 0.2
    batch_size: int = 32
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    epoch_decay: int = 100
    epochs: int = 600
    max_words: int = 18

    @classmethod
    def paper(cls):
        """The reference's birds setting: InceptionResNetV2 (ImageNet), 1024-d embeddings, 512-d space."""
        return cls(backbone_weights="imagenet")

    @classmethod
    def fast(cls):
        """SynthBirds on a CPU: small CNN at 64 px, the shipped sentence encoder, 128-d space, lr 1e-3,
        12 epochs, lr halved every 4; margin, batch and Adam's betas as the reference."""
        return cls(backbone="small", image_size=64, text="sentence_encoder", sentence_dim=256, hid_dim=128,
                   learning_rate=1e-3, epoch_decay=4, epochs=12)

    def __post_init__(self):
        if self.backbone not in ("small", "inception_resnet_v2"):
            raise ValueError(f"Config.backbone must be 'small' or 'inception_resnet_v2', got {self.backbone!r}")
        if self.text not in ("sentence_encoder", "embeddings"):
            raise ValueError(f"Config.text must be 'sentence_encoder' or 'embeddings', got {self.text!r}")
        self.small_filters = tuple(int(f) for f in self.small_filters)

    def learning_rate_at(self, epoch):
        """The reference's schedule: halved at every multiple of ``epoch_decay`` (epochs counted from 1)."""
        return self.learning_rate * 0.5 ** ((int(epoch) + 1) // self.epoch_decay)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["small_filters"] = list(self.small_filters)
        return d


def image_backbone(config):
    """``images -> (B, image_dim)`` features: the small CNN (trainable) or a frozen InceptionResNetV2."""
    c = config
    images = keras.Input((c.image_size, c.image_size, 3), name="images")
    if c.backbone == "small":
        h = images
        for k, f in enumerate(c.small_filters):
            h = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"conv{k}")(h)
            h = layers.BatchNormalization(momentum=0.9, name=f"bn{k}")(h)   # PyTorch's momentum 0.1
            h = layers.ReLU(name=f"act{k}")(h)
        return keras.Model(images, layers.GlobalAveragePooling2D(name="pool")(h), name="small_cnn")
    net = keras.applications.InceptionResNetV2(include_top=False, weights=c.backbone_weights, pooling="avg",
                                               input_shape=(c.image_size, c.image_size, 3))
    net.trainable = False
    return keras.Model(images, net(images), name="inception_resnet_v2")


class VS(keras.Model):
    """Image encoder + the two linear projections (``ImgSenRanking``), trained with the ranking loss.

    ``call({"image": (B, S, S, 3) in [-1, 1], "tokens": (B, T)})`` (or ``"embeddings"``
    (B, sentence_dim) with ``config.text == "embeddings"``) returns ``{"image": (B, hid),
    "sentence": (B, hid)}``, both L2-normalised. ``fit()`` takes ``ganlib.data``
    pipeline batches (``wrong=None``).

    Args:
        config: a :class:`Config` (default ``Config.fast()``).
        sentence_encoder: the frozen tokens -> embedding model for ``text="sentence_encoder"``
            (default: the shipped SynthBirds one, :func:`ganlib.encoders.load_sentence_encoder`).
        ranking_loss_fn: ``(image_vectors, sentence_vectors, margin) -> scalar``, the training loss
            (default :func:`ganlib.losses.bidirectional_ranking_loss`); lesson 05 trains with the
            student's.
    """

    def __init__(self, config=None, sentence_encoder=None, ranking_loss_fn=None, **kwargs):
        super().__init__(**kwargs)
        self.config = c = config or Config.fast()
        self.ranking_loss_fn = ranking_loss_fn or bidirectional_ranking_loss
        self.sentence_encoder = None
        if c.text == "sentence_encoder":
            if sentence_encoder is None:
                from ganlib.encoders import load_sentence_encoder
                sentence_encoder = load_sentence_encoder()
            sentence_encoder.trainable = False
            self.sentence_encoder = sentence_encoder
        self.backbone = image_backbone(c)
        self.linear_img = layers.Dense(c.hid_dim, kernel_initializer="glorot_normal", name="linear_img")
        self.linear_sent = layers.Dense(c.hid_dim, kernel_initializer="glorot_normal", name="linear_sent")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        c = self.config
        self.backbone.build((None, c.image_size, c.image_size, 3))
        self.linear_img.build(self.backbone.output.shape)
        self.linear_sent.build((None, c.sentence_dim))
        self.built = True

    def sentences(self, inputs):
        """The sentence embeddings of a batch (``tokens`` through the frozen encoder, or ``embeddings``)."""
        if self.sentence_encoder is not None:
            return self.sentence_encoder(inputs["tokens"])
        return inputs["embeddings"]

    def call(self, inputs, training=False):
        img = self.linear_img(self.backbone(inputs["image"], training=training))
        sent = self.linear_sent(ops.cast(self.sentences(inputs), img.dtype))
        return {"image": ops.normalize(img, axis=-1), "sentence": ops.normalize(sent, axis=-1)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.ranking_loss_fn(y_pred["image"], y_pred["sentence"], self.config.margin)
        self.loss_tracker.update_state(loss)
        return loss

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer=None, learning_rate=None, **kwargs):
        """Adam(lr, beta_1=0.5, beta_2=0.999) as the reference, at ``learning_rate`` (default: the config's)."""
        c = self.config
        if optimizer is None:
            optimizer = keras.optimizers.Adam(c.learning_rate if learning_rate is None else float(learning_rate),
                                              beta_1=c.beta_1, beta_2=c.beta_2)
        super().compile(optimizer=optimizer, **kwargs)

    # ---- evaluation
    def encode_images(self, images, batch_size=128):
        """L2-normalised image vectors ``(N, hid)`` as numpy (inference mode)."""
        import numpy as np

        return np.concatenate([ops.convert_to_numpy(ops.normalize(self.linear_img(
            self.backbone(images[s:s + batch_size], training=False)), axis=-1))
            for s in range(0, len(images), batch_size)])

    def encode_sentences(self, sentences, batch_size=256):
        """L2-normalised sentence vectors ``(N, hid)`` of tokens (or embeddings) as numpy."""
        import numpy as np

        key = "tokens" if self.sentence_encoder is not None else "embeddings"
        return np.concatenate([ops.convert_to_numpy(ops.normalize(self.linear_sent(ops.cast(
            self.sentences({key: sentences[s:s + batch_size]}), "float32")), axis=-1))
            for s in range(0, len(sentences), batch_size)])


def save(model, tokenizer, out, extra=None):
    """Write ``vs.weights.h5`` (the network's weights, not the optimiser's), ``config.json`` and
    ``vocab.txt`` to ``out``."""
    from ganlib.encoders import build_sentence_encoder

    os.makedirs(out, exist_ok=True)
    encoder = model.sentence_encoder
    fresh = VS(model.config, sentence_encoder=None if encoder is None else build_sentence_encoder(
        tokenizer.vocabulary_size, embed_dim=model.config.sentence_dim))
    fresh.build()
    fresh.set_weights(model.get_weights())
    fresh.save_weights(os.path.join(out, WEIGHTS_FILE))
    folders.write(out, model.config, tokenizer, extra)


def folder(path=None):
    """The folder of a VS model: ``None`` -> the shipped SynthBirds one, else ``path``."""
    return folders.resolve(path, SHIPPED)


def load_pretrained(path=None):
    """A built, frozen :class:`VS` and its tokenizer: ``(model, tokenizer)``.

    Args:
        path: a folder written by ``ganlib pretrain vs --out DIR`` (``vs.weights.h5``,
            ``config.json``, ``vocab.txt``); ``None``: the shipped SynthBirds model.

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: the config or the weights do not fit.
    """
    from ganlib.encoders import build_sentence_encoder

    path = folder(path)
    config, tokenizer, weights = folders.read(path, WEIGHTS_FILE, Config, "vs")
    config = dataclasses.replace(config, backbone_weights=None)   # all weights are in the file
    encoder = (build_sentence_encoder(tokenizer.vocabulary_size, embed_dim=config.sentence_dim)
               if config.text == "sentence_encoder" else None)
    model = VS(config, sentence_encoder=encoder)
    model.build()
    try:
        model.load_weights(weights)
    except ValueError as error:
        raise ValueError(f"{weights} does not fit the VS model of {os.path.join(path, 'config.json')}: "
                         f"{error}") from error
    model.trainable = False
    return model, tokenizer
