r"""CGAN (Mirza & Osindero 2014) and GAN-INT-CLS (Reed et al. 2016).

A conditional GAN gives both players the condition $y$:

$$\min_G \max_D\; \mathbb{E}_{x}[\log D(x \mid y)] + \mathbb{E}_{z}[\log(1 - D(G(z \mid y) \mid y))]
\qquad \text{(Mirza \& Osindero, "Conditional Adversarial Nets")}$$

`CGAN` conditions on a class id (one-hot). `GANINTCLS` conditions on a caption:
the caption's sentence embedding $\varphi(t)$ (Reed et al. fed a pre-trained
char-CNN-RNN; here the shipped SynthBirds `SentenceEncoder`, frozen) is
compressed by a fully connected layer with leaky ReLU and

* in G, concatenated with the noise $z$ and decoded by a DCGAN generator;
* in D, replicated spatially and depth-concatenated at 4x4 (`ReplicateConcat`).

`Config.paper()` builds the reference code's networks (reedscot/icml2016,
`main_cls_int.lua`): a bottleneck residual block at 4x4 and 8x8 in G and at 4x4 in D,
BatchNorm in D's text projection, the DCGAN initialisers; `Config.fast()` the plain
DCGAN stacks (`bottleneck_blocks`, `d_text_bn`, `init`).

**CLS, the matching-aware discriminator** (Reed et al., Alg. 1): D must also
reject real images with the wrong caption, so it learns whether image and text
match, not only whether the image is real:

$$L_D = \mathrm{bce}(s_r, 1) + \tfrac12\left[\mathrm{bce}(s_w, 0) + \mathrm{bce}(s_f, 0)\right],\qquad
L_G = \mathrm{bce}(s_f, 1)$$

**INT, manifold interpolation** (Reed et al., "Learning with manifold interpolation (GAN-INT)"): G is also trained on
interpolated embeddings $\beta t_1 + (1 - \beta) t_2$ ($\beta = 0.5$), which have
no real image, so only the "fool D" term applies to them:

$$L_G \mathrel{+}= \mathrm{bce}\big(D(G(z, \beta t_1 + (1-\beta) t_2), \beta t_1 + (1-\beta) t_2), 1\big)$$

The paper writes this term beside the fake term unweighted; the reference code interpolates B/2
pairs (the first half of the batch with the second) and pools them with the B fakes in one
weighted mean, so the INT term weighs half the fake term (`int_pairs`, `int_reduction`).
Interpolated embeddings are not renormalised: the reference mixes raw char-CNN-RNN embeddings
as they are. With the SynthBirds encoder, whose embeddings are rescaled to norm $\sqrt d$, the
midpoint of two of them is shorter (by $\cos(\theta/2)$ for an angle $\theta$ between them):
the mix stays on the segment the paper interpolates along, not on the sphere.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.layers import ReplicateConcat, UpConv
from ganlib.models.base import PaperConfig, PaperGAN, num_upsamplings, score_logs, to_numpy_images
from ganlib.models.registry import PaperSpec, Variant, batch_for


_CHOICES = {"init": ("reference", "keras"), "int_pairs": ("halves", "roll"),
            "int_reduction": ("pooled", "separate"), "wrong": ("image", "caption")}


@dataclass
class Config(PaperConfig):
    """Hyperparameters of CGAN / GAN-INT-CLS.

    `paper()` holds Reed et al.'s CUB run (reedscot/icml2016, `scripts/train_cub.sh`
    running `main_cls_int.lua`); `fast()` trains on a 2-core CPU in a few minutes.
    """

    image_size: int = 64
    z_dim: int = 100            # noise size
    text_encoder: str = "char-cnn-rnn"  # the reference datasets' 1024-d embeddings (SynthBirds: its encoder)
    embed_dim: int = 1024       # sentence embedding size
    proj_dim: int = 128         # compressed text embedding (Reed et al.: 128)
    ngf: int = 128              # generator width at the last layer x8 at 4x4
    ndf: int = 64               # discriminator width
    bottleneck_blocks: bool = True  # the reference's residual bottleneck blocks: G at 4x4 and 8x8, D at 4x4
    d_text_bn: bool = True      # D's text projection FC -> BatchNorm -> LeakyReLU (the reference's)
    init: str = "reference"     # "reference": convs N(0, 0.02), BN gamma N(1, 0.02), FCs torch's default; "keras"
    conv_biases: bool = False   # biases on D's first conv, G's output and D's logit (the reference zeroes them)
    bn_momentum: float = 0.9    # BatchNorm moving-average momentum (torch's momentum 0.1)
    bn_epsilon: float = 1e-5    # BatchNorm epsilon (torch's default)
    epochs: int = 600           # training length in epochs (0: `steps` as given); see `for_dataset`
    lr_decay_epochs: int = 100  # halve lr every N epochs (Reed et al.: 100); see `for_dataset`
    lr_decay_every: int = 100 * 139  # the same in steps (CUB: 139 steps per epoch); 0: never
    int_weight: float = 1.0     # weight of each interpolated sample in L_G (the reference's interp_weight; 0: no INT)
    int_beta: float = 0.5       # beta of the GAN-INT interpolation
    int_pairs: str = "halves"   # "halves": B/2 interpolations t_i, t_{i+B/2} (the reference); "roll": B, t_i, t_{i-1}
    int_reduction: str = "pooled"  # "pooled": one weighted mean over all 1.5 B samples (the reference); "separate"
    wrong: str = "image"        # D's mismatched pair: a real image of another class ("image", the reference) or
                                # this image with another class's caption ("caption")
    num_classes: int = 200
    max_words: int = 18
    captions_per_embedding: int = 4  # train on the mean embedding of 4 captions of the image (Reed et al.'s code)
    ema_decay: float = 0.0      # 0: no EMA generator (the reference has none)
    steps: int = 600 * 139      # total training steps (600 epochs of CUB's 8855 images at batch 64)

    def __post_init__(self):
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")

    @classmethod
    def paper(cls):
        """Reed et al. (2016), CUB, as `scripts/train_cub.sh` runs `main_cls_int.lua`.

        64x64, z 100 ~ N(0, 1), text FC 1024 -> 128, ngf 128, ndf 64, the bottleneck
        residual blocks (G at 4x4 and 8x8, D at 4x4), D's text FC -> BN -> LeakyReLU,
        convs N(0, 0.02) without biases, BN gamma N(1, 0.02), momentum 0.9, epsilon 1e-5,
        batch 64, Adam 2e-4 beta1 0.5, the wrong (a real image of another class) and fake
        terms of L_D weighted 1/2 each, INT on B/2 pairs weighted as the reference's
        `BCECriterion` does, the mean embedding of 4 captions, 600 epochs with the learning
        rate halved every 100 (`for_dataset`; the defaults are CUB's 139 steps per epoch).

        The text is the dataset's 1024-d char-CNN-RNN embeddings (`text_encoder`), as the
        reference; on data without them (SynthBirds, COCO) `ganlib train` uses the shipped
        256-d SynthBirds sentence encoder instead (rescaled to unit RMS) and says so.

        Remaining differences from the reference:
        * the reference samples its 4 captions with replacement; the pipeline's are distinct;
        * G's first layer is an FC to 4x4 (the reference: a 4x4 transposed conv of a 1x1
          input, the same function and parameter count without its zeroed bias);
        * the reference halves the learning rate at the start of epochs 100, 200, ...
          (after 99 epochs, then every 100); here after every 100 epochs;
        * BatchNorm's running variance: torch keeps the unbiased batch variance, Keras the
          biased one (inference-time statistics only);
        * the reference scales the whole CUB image (no bounding-box crop) to 76x76 and
          takes a random 64x64 crop, flipped with probability 1/2;
        * the reference's G step draws fresh z (it does not reuse D's fakes) and runs D once
          on the B + B/2 fakes (one set of BatchNorm batch statistics); here D sees the B
          fakes and the B/2 interpolations in two calls, and the G step reuses the fakes of
          the D step (`ganlib.training`: one generator pass per step).
        """
        return cls()

    @classmethod
    def fast(cls):
        """A classroom preset: 32x32 birds, G and D of width 64, the paper's text
        compression to 128, batch 32, a higher learning rate halved every 1200 steps
        and an EMA generator (which steadies the samples of a short run); 3600 steps of
        26.1 GFLOP: ~6 min on an earlier 2-core machine with TensorFlow (calibration not
        recorded; ~1.2x the step time on JAX, ~2.8x on PyTorch), ~37 min on a 2-core AVX2
        AMD EPYC at matmul calibration 70 GFLOP/s (`ganlib bench cgan`: 625 ms/step on
        TensorFlow, 1.02x on JAX, 1.62x on PyTorch; README, leaderboard).

        The discriminator's width matters most for caption consistency: with ndf 32 it
        stalls at ~2.7x chance, because D can reject most mismatched captions by the
        wing colour alone; width 64 at batch 32 costs ~1.35x the time per step of
        width 32 at batch 64 and reaches ~3x (README, lesson 01).

        It trains on one caption per image: the references' mean of 4 caption
        embeddings (`captions_per_embedding=4`, the paper preset) lowered the
        consistency of this short run (TensorFlow, seed 0: 0.40 against 0.45).

        The networks are the plain DCGAN stacks with Keras' initialisers and BatchNorm
        defaults (no bottleneck blocks, no BN on D's text), mismatched captions as D's
        wrong pairs, and INT on B rolled pairs added as a separate mean: the settings
        these figures were measured with."""
        return cls(text_encoder="synthbirds", embed_dim=256,
                   image_size=32, z_dim=32, proj_dim=128, ngf=64, ndf=64, batch_size=32,
                   bottleneck_blocks=False, d_text_bn=False, init="keras", conv_biases=True,
                   bn_momentum=0.99, bn_epsilon=1e-3, int_pairs="roll", int_reduction="separate",
                   wrong="caption", captions_per_embedding=1, epochs=0,
                   lr=5e-4, lr_decay_every=1200, ema_decay=0.995, steps=3600, eval_every=600,
                   sample_every=300, checkpoint_every=600, eval_samples=500)


    def steps_per_epoch(self, num_train_images):
        """Steps of one pass over `num_train_images` as the reference counts them:
        ceil(N / batch_size) (its loop `for i = 1, N, batchSize`; CUB: 8855 -> 139)."""
        n = int(num_train_images)
        if n < 1:
            raise ValueError(f"num_train_images must be a positive count, got {num_train_images!r}.")
        return -(-n // self.batch_size)

    def steps_for(self, num_train_images):
        """Total training steps: `epochs` x `steps_per_epoch(num_train_images)`
        (`steps` when `epochs` is 0)."""
        return self.epochs * self.steps_per_epoch(num_train_images) if self.epochs else self.steps

    def for_dataset(self, num_train_images):
        """This config with `steps` and `lr_decay_every` converted from `epochs` and
        `lr_decay_epochs` for a training set of `num_train_images`; unchanged when
        `epochs` is 0 (a preset counted in steps, like `fast()`)."""
        if not self.epochs:
            return self
        per_epoch = self.steps_per_epoch(num_train_images)
        return self.replace(steps=self.epochs * per_epoch, lr_decay_every=self.lr_decay_epochs * per_epoch)


# ---------------------------------------------------------------------------- layers as the reference makes them
def _conv_init(cfg):
    """Conv kernels: N(0, 0.02) (the reference's `weights_init`) or Keras' default."""
    return keras.initializers.RandomNormal(0.0, 0.02) if cfg.init == "reference" else "glorot_uniform"


def _conv(cfg, filters, kernel, strides=1, padding="same", bias=False, **kwargs):
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=bias,
                         kernel_initializer=_conv_init(cfg), **kwargs)


def _bn(cfg):
    """BatchNorm with the config's momentum and epsilon; gamma N(1, 0.02) with the reference init."""
    gamma = keras.initializers.RandomNormal(1.0, 0.02) if cfg.init == "reference" else "ones"
    return layers.BatchNormalization(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon, gamma_initializer=gamma)


def _upconv(cfg, h, filters, bias=False, **kwargs):
    """DCGAN's 4x4 stride-2 transposed conv (`UpConv`), its kernel drawn from N(0, 0.02) with the reference init."""
    layer = UpConv(filters, use_bias=bias, **kwargs)
    h = layer(h)
    if cfg.init == "reference":  # UpConv has no initializer argument: redraw the built kernel
        layer.kernel.assign(_conv_init(cfg)(tuple(layer.kernel.shape)))
    return h


def _linear(cfg, units, fan_in, **kwargs):
    """A fully connected layer; with the reference init, torch's `nn.Linear` default
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias (`weights_init` leaves Linear alone)."""
    if cfg.init == "reference":
        bound = 1.0 / float(np.sqrt(fan_in))
        uniform = keras.initializers.RandomUniform(-bound, bound)
        kwargs = {"kernel_initializer": uniform, "bias_initializer": uniform, **kwargs}
    return layers.Dense(units, **kwargs)


# ---------------------------------------------------------------------------- blocks
def compress(condition, proj_dim, name, cfg=None, batch_norm=False):
    """The text-embedding bottleneck (Reed et al., Sec. 4.1): FC + LeakyReLU(0.2), with
    BatchNorm between them when `batch_norm` (the reference's D). `cfg` sets the FC's
    and BN's initialisers (None: Keras' defaults)."""
    dense = (_linear(cfg, proj_dim, condition.shape[-1], name=name) if cfg is not None
             else layers.Dense(proj_dim, name=name))
    h = dense(condition)
    if batch_norm:
        h = _bn(cfg)(h) if cfg is not None else layers.BatchNormalization()(h)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(h)


def residual_block(h, cfg, act):
    r"""The reference's bottleneck residual block (`main_cls_int.lua`):
    $h + \mathrm{BN}(\mathrm{conv}_{3\times3}(a(\mathrm{BN}(\mathrm{conv}_{3\times3}(a(\mathrm{BN}(\mathrm{conv}_{1\times1}(h))))))))$,
    widths C -> C/4 -> C/4 -> C, then `act` (ReLU in G, LeakyReLU(0.2) in D) on the sum.

    `act` is a function returning a new activation layer."""
    width = h.shape[-1]
    r = act()(_bn(cfg)(_conv(cfg, width // 4, 1)(h)))
    r = act()(_bn(cfg)(_conv(cfg, width // 4, 3)(r)))
    r = _bn(cfg)(_conv(cfg, width, 3)(r))
    return act()(layers.Add()([h, r]))


# ---------------------------------------------------------------------------- networks
def build_generator(cfg, cond_dim):
    """G(z, phi(t)): [z ; FC(phi(t))] -> 4x4x(8 ngf) -> upsampling blocks -> tanh image.

    With `bottleneck_blocks` (the reference): BN without ReLU after the 4x4 layer and
    after the first upsampling, each followed by a residual block (ReLU after the sum)."""
    z = keras.Input((cfg.z_dim,), name="z")
    condition = keras.Input((cond_dim,), name="condition")
    h = layers.Concatenate()([z, compress(condition, cfg.proj_dim, "g_compress", cfg)])
    ups = num_upsamplings(cfg.image_size)
    width = cfg.ngf * 2 ** (ups - 1)
    dense = layers.Dense(4 * 4 * width, use_bias=False, kernel_initializer=_conv_init(cfg))
    h = _bn(cfg)(layers.Reshape((4, 4, width))(dense(h)))
    h = residual_block(h, cfg, layers.ReLU) if cfg.bottleneck_blocks else layers.ReLU()(h)
    for i in range(ups - 1):
        width //= 2
        h = _bn(cfg)(_upconv(cfg, h, width))  # 4x4 transposed conv, stride 2
        h = residual_block(h, cfg, layers.ReLU) if cfg.bottleneck_blocks and i == 0 else layers.ReLU()(h)
    image = _upconv(cfg, h, 3, bias=cfg.conv_biases, activation="tanh", name="image")
    return keras.Model([z, condition], image, name="G")


def discriminator_head(h, condition, proj_dim, cfg):
    r"""D's conditioned head (Reed et al., Sec. 4.1): the condition compressed to `proj_dim`
    (FC, BatchNorm with `d_text_bn`, LeakyReLU(0.2)), replicated over the 4x4 code h and
    depth-concatenated, a 1x1 conv to h's width with BN and LeakyReLU(0.2), then a 4x4 valid
    conv to one logit per example, (B,)."""
    text = compress(condition, proj_dim, "d_compress", cfg, batch_norm=cfg.d_text_bn)
    h2 = ReplicateConcat()([h, text])
    h2 = layers.LeakyReLU(0.2)(_bn(cfg)(_conv(cfg, h.shape[-1], 1)(h2)))
    logit = _conv(cfg, 1, 4, padding="valid", bias=cfg.conv_biases, name="logit")(h2)
    return layers.Reshape(())(logit)


def build_discriminator(cfg, cond_dim, head_fn=None):
    """D(x, phi(t)): strided convs to 4x4, [h ; replicate(FC(phi(t)))], 1x1 conv, 4x4 conv -> logit.

    With `bottleneck_blocks` (the reference): the last two strided convs have BN but no
    LeakyReLU, then a residual block at 4x4 (LeakyReLU after the sum). `head_fn(h, condition,
    proj_dim) -> logits (B,)` builds the conditioned head (default `discriminator_head`);
    lesson 01 plugs the student's in."""
    image = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    condition = keras.Input((cond_dim,), name="condition")
    leaky = lambda: layers.LeakyReLU(0.2)  # noqa: E731
    h = leaky()(_conv(cfg, cfg.ndf, 4, strides=2, bias=cfg.conv_biases)(image))
    width, downs = cfg.ndf, num_upsamplings(cfg.image_size) - 1
    for i in range(downs):
        width *= 2
        h = _bn(cfg)(_conv(cfg, width, 4, strides=2)(h))
        if not (cfg.bottleneck_blocks and i >= downs - 2):
            h = leaky()(h)
    if cfg.bottleneck_blocks:
        h = residual_block(h, cfg, leaky)
    logits = head_fn(h, condition, cfg.proj_dim) if head_fn else discriminator_head(h, condition, cfg.proj_dim, cfg)
    if tuple(logits.shape[1:]) != ():
        raise ValueError(f"head_fn: expected one logit per example, shape (B,), got {tuple(logits.shape)}")
    return keras.Model([image, condition], logits, name="D")


def param_counts(config=None, cond_dim=None):
    """Trainable parameters of G and D of a config (default `Config.paper()`), building them:
    `{"G": ..., "D": ...}`; `cond_dim` defaults to the config's `embed_dim` (text) or
    `num_classes` (class). BatchNorm's moving statistics are not counted, as the reference
    (torch's `getParameters`) does not count them."""
    cfg = config or Config.paper()
    if cond_dim is None:
        cond_dim = cfg.embed_dim if cfg.conditioning == "text" else cfg.num_classes

    def trainable(network):
        return int(sum(np.prod(w.shape) for w in network.trainable_weights))

    return {"G": trainable(build_generator(cfg, cond_dim)), "D": trainable(build_discriminator(cfg, cond_dim))}


def interpolate_embeddings(t1, t2, beta=0.5):
    r"""GAN-INT (Reed et al. 2016, "Learning with manifold interpolation"): $\beta t_1 + (1 - \beta) t_2$."""
    return beta * t1 + (1.0 - beta) * t2


class _ConditionalGAN(PaperGAN):
    """The shared machinery of CGAN and GAN-INT-CLS (the conditioning component differs)."""

    config_class = Config

    def __init__(self, config=None, d_loss_fn=None, g_loss_fn=None, interpolate_fn=None, d_head_fn=None,
                 one_hot_fn=None, **kwargs):
        cfg = self.resolve_config(config)
        cond_dim = cfg.embed_dim if cfg.conditioning == "text" else cfg.num_classes
        super().__init__(cfg, build_generator(cfg, cond_dim), [build_discriminator(cfg, cond_dim, d_head_fn)],
                         **kwargs)
        self.d_loss_fn = d_loss_fn or losses.matching_aware_d_loss
        self.g_loss_fn = g_loss_fn or losses.generator_loss
        self.interpolate_fn = interpolate_fn or interpolate_embeddings
        if one_hot_fn is not None:
            if cfg.conditioning != "class":
                raise ValueError("one_hot_fn: only a class-conditional model (CGAN) uses one-hot conditions")
            self.condition.one_hot_fn = one_hot_fn

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
        interpolate_fn: `(t1, t2, beta) -> t` (default `interpolate_embeddings`).
        d_head_fn: `(h, condition, proj_dim) -> logits (B,)`, builds D's conditioned head
            with Keras layers on D's 4x4 code (default `discriminator_head`).

    Batches (from `dataset.pipeline(...)`, as `SPEC.batch(config)` asks) hold `image`,
    `tokens` and `wrong_tokens` (a caption of another class). The text side
    (`embed`, `encode_text`, `generate`) is the conditioning component's
    (`ganlib.conditioning`).
    """

    def noise_shapes(self, n, training=False):
        """z, and in training z_int for the interpolated embeddings of GAN-INT (n // 2 of them with
        `int_pairs="halves"`)."""
        shapes = {"z": (n, self.config.z_dim)}
        if training:
            shapes["z_int"] = (n // 2 if self.config.int_pairs == "halves" else n, self.config.z_dim)
        return shapes

    def interpolation_pairs(self, e):
        """(t_1, t_2) of GAN-INT: with `int_pairs="halves"` (the reference) the first half of the
        batch's embeddings with the second half (B/2 pairs); with "roll", each with the previous (B)."""
        if self.config.int_pairs == "halves":
            half = ops.shape(e)[0] // 2
            return e[:half], e[half:2 * half]
        return e, ops.roll(e, 1, axis=0)

    def generator_outputs(self, batch, noise, training=False):
        e = self.condition.from_batch(self, batch)
        e_int = self.interpolate_fn(*self.interpolation_pairs(e), self.config.int_beta)
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
        r"""$L_G$ with the INT term. `int_reduction="pooled"` (the reference's weighted
        `BCECriterion` over its B + n fakes): $(B\,\bar\ell_f + w\,n\,\bar\ell_{int}) / (B + n)$, so with
        B/2 pairs and $w = 1$ the INT term weighs half the fake term; "separate":
        $\bar\ell_f + w\,\bar\ell_{int}$ (the paper's unweighted sum of the two expectations)."""
        D, cfg = self.discriminator, self.config
        loss = self.g_loss_fn(D([fakes["fake"], fakes["e"]], training=training))
        if not cfg.int_weight:
            return loss, {}
        int_loss = self.g_loss_fn(D([fakes["fake_int"], fakes["e_int"]], training=training))
        if cfg.int_reduction == "separate":
            return loss + cfg.int_weight * int_loss, {"g_int": int_loss}
        b = ops.cast(ops.shape(fakes["fake"])[0], loss.dtype)
        n = ops.cast(ops.shape(fakes["fake_int"])[0], loss.dtype)
        return (b * loss + cfg.int_weight * n * int_loss) / (b + n), {"g_int": int_loss}


@keras.saving.register_keras_serializable("ganlib")
class CGAN(_ConditionalGAN):
    """Class-conditional GAN (Mirza & Osindero 2014): the condition is a one-hot class id
    (`ganlib.conditioning.ClassConditioning`); `generate(class_ids)`.

    `one_hot_fn(class_ids, num_classes)` (e.g. lesson 01's `one_hot_labels`) makes the
    one-hot conditions of `generate` and of the sample grids (training one-hots its batches
    with `ops.one_hot` inside the compiled step).

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
