r"""CGAN (Mirza & Osindero 2014) and GAN-INT-CLS (Reed et al. 2016).

A conditional GAN gives both players the condition $y$:

$$\min_G \max_D\; \mathbb{E}_{x}[\log D(x \mid y)] + \mathbb{E}_{z}[\log(1 - D(G(z \mid y) \mid y))]
\qquad \text{(Mirza \& Osindero, Eq. 2)}$$

`CGAN` conditions on a class id (one-hot). `GANINTCLS` conditions on a caption:
the caption's sentence embedding $\varphi(t)$ (Reed et al. fed a pre-trained
char-CNN-RNN; here the shipped SynthBirds `SentenceEncoder`, frozen) is
compressed by a fully connected layer with leaky ReLU and

* in G, concatenated with the noise $z$ and decoded by a DCGAN generator;
* in D, replicated spatially and depth-concatenated at 4x4 (`ReplicateConcat`).

**CLS, the matching-aware discriminator** (Reed et al., Alg. 1): D must also
reject real images with the wrong caption, so it learns whether image and text
match, not only whether the image is real:

$$L_D = \mathrm{bce}(s_r, 1) + \tfrac12\left[\mathrm{bce}(s_w, 0) + \mathrm{bce}(s_f, 0)\right],\qquad
L_G = \mathrm{bce}(s_f, 1)$$

**INT, manifold interpolation** (Reed et al., Eq. 5): G is also trained on
interpolated embeddings $\beta t_1 + (1 - \beta) t_2$ ($\beta = 0.5$), which have
no real image, so only the "fool D" term applies to them:

$$L_G \mathrel{+}= \mathrm{bce}\big(D(G(z, \beta t_1 + (1-\beta) t_2), \beta t_1 + (1-\beta) t_2), 1\big)$$
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.layers import ReplicateConcat, UpConv
from ganlib.models.base import PaperConfig, PaperGAN, num_upsamplings, score_logs, to_numpy_images
from ganlib.models.registry import PaperSpec, Variant, batch_for


@dataclass
class Config(PaperConfig):
    """Hyperparameters of CGAN / GAN-INT-CLS.

    `paper()` holds Reed et al.'s CUB settings (icml2016 reference code);
    `fast()` trains on a 2-core CPU in a few minutes.
    """

    image_size: int = 64
    z_dim: int = 100            # noise size
    proj_dim: int = 128         # compressed text embedding (Reed et al.: 128)
    ngf: int = 128              # generator width at the last layer x8 at 4x4
    ndf: int = 64               # discriminator width
    lr_decay_every: int = 13800  # halve lr every N steps (Reed et al.: every 100 epochs of CUB); 0: never
    int_weight: float = 1.0     # weight of the GAN-INT generator term (0 disables INT)
    int_beta: float = 0.5       # beta of Eq. 5
    num_classes: int = 200
    captions_per_embedding: int = 4  # train on the mean embedding of 4 captions of the image (Reed et al.'s code)
    ema_decay: float = 0.0      # 0: no EMA generator (the reference has none)
    steps: int = 60000          # total training steps (~600 epochs of CUB at batch 64)

    @classmethod
    def paper(cls):
        """Reed et al. (2016), CUB: 64x64, z 100, text projection 128, ngf 128, ndf 64,
        batch 64, Adam 2e-4 beta1 0.5, the wrong/fake terms weighted 1/2 each."""
        return cls()

    @classmethod
    def fast(cls):
        """A classroom preset: 32x32 birds, G and D of width 64, the paper's text
        compression to 128, batch 32, a higher learning rate halved every 1200 steps
        and an EMA generator (which steadies the samples of a short run); 3600 steps,
        ~6 min on 2 idle CPU cores with TensorFlow (~1.2x the step time on JAX, ~2.8x
        on PyTorch).

        The discriminator's width matters most for caption consistency: with ndf 32 it
        stalls at ~2.7x chance, because D can reject most mismatched captions by the
        wing colour alone; width 64 at batch 32 costs ~1.35x the time per step of
        width 32 at batch 64 and reaches ~3x (README, lesson 01).

        It trains on one caption per image: the references' mean of 4 caption
        embeddings (`captions_per_embedding=4`, the paper preset) lowered the
        consistency of this short run (TensorFlow, seed 0: 0.40 against 0.45)."""
        return cls(image_size=32, z_dim=32, proj_dim=128, ngf=64, ndf=64, batch_size=32,
                   captions_per_embedding=1,
                   lr=5e-4, lr_decay_every=1200, ema_decay=0.995, steps=3600, eval_every=600,
                   sample_every=300, checkpoint_every=600, eval_samples=500)




def compress(condition, proj_dim, name):
    """The text-embedding bottleneck: FC + LeakyReLU(0.2) (Reed et al., Sec. 4.1)."""
    return layers.LeakyReLU(0.2, name=f"{name}_act")(layers.Dense(proj_dim, name=name)(condition))


def build_generator(cfg, cond_dim):
    """G(z, phi(t)): [z ; FC(phi(t))] -> 4x4x(8 ngf) -> upsampling blocks -> tanh image."""
    z = keras.Input((cfg.z_dim,), name="z")
    condition = keras.Input((cond_dim,), name="condition")
    h = layers.Concatenate()([z, compress(condition, cfg.proj_dim, "g_compress")])
    ups = num_upsamplings(cfg.image_size)
    width = cfg.ngf * 2 ** (ups - 1)
    h = layers.Dense(4 * 4 * width, use_bias=False)(h)
    h = layers.ReLU()(layers.BatchNormalization()(layers.Reshape((4, 4, width))(h)))
    for i in range(ups - 1):
        width //= 2
        h = UpConv(width, use_bias=False)(h)  # 4x4 transposed conv, stride 2
        h = layers.ReLU()(layers.BatchNormalization()(h))
    image = UpConv(3, activation="tanh", name="image")(h)
    return keras.Model([z, condition], image, name="G")


def build_discriminator(cfg, cond_dim):
    """D(x, phi(t)): strided convs to 4x4, [h ; replicate(FC(phi(t)))], 1x1 conv, 4x4 conv -> logit."""
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    condition = keras.Input((cond_dim,), name="condition")
    h = layers.LeakyReLU(0.2)(layers.Conv2D(cfg.ndf, 4, strides=2, padding="same")(image))
    width = cfg.ndf
    for _ in range(num_upsamplings(cfg.image_size) - 1):
        width *= 2
        h = layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False)(h)
        h = layers.LeakyReLU(0.2)(layers.BatchNormalization()(h))
    h = ReplicateConcat()([h, compress(condition, cfg.proj_dim, "d_compress")])
    h = layers.Conv2D(width, 1, use_bias=False)(h)
    h = layers.LeakyReLU(0.2)(layers.BatchNormalization()(h))
    logit = layers.Reshape(())(layers.Conv2D(1, 4, padding="valid", name="logit")(h))
    return keras.Model([image, condition], logit, name="D")


def interpolate_embeddings(t1, t2, beta=0.5):
    r"""GAN-INT (Reed et al. 2016, Eq. 5): $\beta t_1 + (1 - \beta) t_2$."""
    return beta * t1 + (1.0 - beta) * t2


class _ConditionalGAN(PaperGAN):
    """The shared machinery of CGAN and GAN-INT-CLS (the conditioning component differs)."""

    config_class = Config

    def __init__(self, config=None, d_loss_fn=None, g_loss_fn=None, interpolate_fn=None, **kwargs):
        cfg = self.resolve_config(config)
        cond_dim = cfg.embed_dim if cfg.conditioning == "text" else cfg.num_classes
        super().__init__(cfg, build_generator(cfg, cond_dim), [build_discriminator(cfg, cond_dim)], **kwargs)
        self.d_loss_fn = d_loss_fn or losses.matching_aware_d_loss
        self.g_loss_fn = g_loss_fn or losses.generator_loss
        self.interpolate_fn = interpolate_fn or interpolate_embeddings

    @property
    def discriminator(self):
        return self.discriminators[0]

    def generate_from(self, condition, noise):
        """Images in [-1, 1] (numpy) from conditions (B, D) and noise `z`."""
        return to_numpy_images(self.inference_generator()([noise["z"], condition], training=False))


@keras.saving.register_keras_serializable("ganlib")
class GANINTCLS(_ConditionalGAN):
    """Text-conditional GAN with the matching-aware discriminator (CLS) and
    manifold interpolation (INT), Reed et al. 2016.

    Args:
        config: a `Config` (default `Config.paper()`).
        d_loss_fn: `(real_logits, wrong_logits, fake_logits) -> scalar`
            (default `ganlib.losses.matching_aware_d_loss`); lesson 01 plugs the
            student's function in here.
        g_loss_fn: `(fake_logits) -> scalar` (default the non-saturating loss).
        interpolate_fn: `(t1, t2, beta) -> t` (default Eq. 5).

    Batches (from `dataset.pipeline(...)`, as `SPEC.batch(config)` asks) hold `image`,
    `tokens` and `wrong_tokens` (a caption of another class). The text side
    (`embed`, `encode_text`, `generate`) is the conditioning component's
    (`ganlib.conditioning`).
    """

    def noise_shapes(self, n, training=False):
        """z, and in training z_int for the interpolated embeddings of GAN-INT."""
        shapes = {"z": (n, self.config.z_dim)}
        if training:
            shapes["z_int"] = (n, self.config.z_dim)
        return shapes

    def generator_outputs(self, batch, noise, training=False):
        e = self.condition.from_batch(self, batch)
        e_int = self.interpolate_fn(e, ops.roll(e, 1, axis=0), self.config.int_beta)
        return {
            "e": e,
            "fake": self.generator([noise["z"], e], training=training),
            "e_int": e_int,
            "fake_int": self.generator([noise["z_int"], e_int], training=training),
        }

    def discriminator_loss(self, batch, fakes, training=True):
        s_r, s_w, s_f = self.matching_aware_logits(self.discriminator, batch, fakes["e"], fakes["fake"], training)
        return self.d_loss_fn(s_r, s_w, s_f), score_logs(s_r, s_w, s_f)

    def generator_loss(self, batch, fakes, training=True):
        D = self.discriminator
        loss = self.g_loss_fn(D([fakes["fake"], fakes["e"]], training=training))
        if self.config.int_weight:
            int_loss = self.g_loss_fn(D([fakes["fake_int"], fakes["e_int"]], training=training))
            loss = loss + self.config.int_weight * int_loss
        return loss, {}


@keras.saving.register_keras_serializable("ganlib")
class CGAN(_ConditionalGAN):
    """Class-conditional GAN (Mirza & Osindero 2014): the condition is a one-hot class id
    (`ganlib.conditioning.ClassConditioning`); `generate(class_ids)`.

    The plain conditional loss (no wrong pairs):
    $L_D = \\mathrm{bce}(D(x|y), 1) + \\mathrm{bce}(D(G(z|y)|y), 0)$,
    $L_G = \\mathrm{bce}(D(G(z|y)|y), 1)$.
    """

    def __init__(self, config=None, **kwargs):
        cfg = self.resolve_config(config)
        super().__init__(cfg.replace(conditioning="class", int_weight=0.0), **kwargs)

    def generator_outputs(self, batch, noise, training=False):
        y = self.condition.from_batch(self, batch)
        return {"y": y, "fake": self.generator([noise["z"], y], training=training)}

    def discriminator_loss(self, batch, fakes, training=True):
        s_r = self.discriminator([batch["image"], fakes["y"]], training=training)
        s_f = self.discriminator([fakes["fake"], fakes["y"]], training=training)
        return losses.bce(s_r, 1.0) + losses.bce(s_f, 0.0), {}

    def generator_loss(self, batch, fakes, training=True):
        return self.g_loss_fn(self.discriminator([fakes["fake"], fakes["y"]], training=training)), {}


def build(config=None, previous=None):
    """The model `ganlib train cgan` trains: GAN-INT-CLS, or CGAN with conditioning="class"."""
    cfg = config or Config.fast()
    return CGAN(cfg) if cfg.conditioning == "class" else GANINTCLS(cfg)


SPEC = PaperSpec(
    name="cgan",
    title="CGAN (Mirza & Osindero 2014) and GAN-INT-CLS (Reed et al. 2016)",
    config=Config,
    build=build,
    batch=lambda cfg: batch_for(cfg, cfg.image_size),
    conditions=("text", "class"),
    variants={"class": Variant("Mirza & Osindero's class-conditional CGAN (one-hot species)",
                               lambda cfg: cfg.replace(conditioning="class", int_weight=0.0))},
)
