r"""StackGAN (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis
with Stacked Generative Adversarial Networks", ICCV).

Two GANs, trained one after the other: **Stage-I** sketches the shape and colours
at low resolution from the text, **Stage-II** reads Stage-I's image and the text
again, corrects defects and adds detail at 4x the resolution.

**Conditioning augmentation** $F_{ca}$ (paper, "Conditioning Augmentation"). Instead of the fixed
sentence embedding $\varphi_t$, G is conditioned on a sample of a Gaussian whose
mean and diagonal covariance are functions of $\varphi_t$ (a fully connected
layer with leaky ReLU, `ganlib.layers.ConditioningAugmentation`), drawn with the
reparameterisation trick

$$\hat c = \mu(\varphi_t) + \sigma(\varphi_t) \odot \epsilon,\qquad \epsilon \sim \mathcal{N}(0, I),$$

and kept close to the standard normal by a KL term in G's loss (paper, "Conditioning Augmentation"):

$$D_{KL}\big(\mathcal{N}(\mu(\varphi_t), \Sigma(\varphi_t)) \,\|\, \mathcal{N}(0, I)\big).$$

More (noisy) conditions per caption make the conditioning manifold smooth and
give diverse images for one caption.

**Stage-I** (paper, "Stage-I GAN"), $G_0(z, \hat c_0) \to$ 64x64 and $D_0(I_0, \varphi_t)$:

$$L_{D_0} = \mathbb{E}_{(I_0, t)}[\log D_0(I_0, \varphi_t)] + \mathbb{E}_{z, t}[\log(1 - D_0(G_0(z, \hat c_0), \varphi_t))]
\quad \text{(maximised)}$$

$$L_{G_0} = \mathbb{E}_{z, t}[\log(1 - D_0(G_0(z, \hat c_0), \varphi_t))]
+ \lambda D_{KL}\big(\mathcal{N}(\mu_0(\varphi_t), \Sigma_0(\varphi_t)) \,\|\, \mathcal{N}(0, I)\big)
\quad \text{(minimised)}$$

**Stage-II** (paper, "Stage-II GAN"), $G(s_0, \hat c) \to$ 256x256 and $D(I, \varphi_t)$, with
$s_0 = G_0(z, \hat c_0)$ from the *frozen* Stage-I and $\hat c$ from Stage-II's own
$F_{ca}$ (no noise $z$: Stage-I's image carries it):

$$L_D = \mathbb{E}_{(I, t)}[\log D(I, \varphi_t)] + \mathbb{E}_{s_0, t}[\log(1 - D(G(s_0, \hat c), \varphi_t))]$$

$$L_G = \mathbb{E}_{s_0, t}[\log(1 - D(G(s_0, \hat c), \varphi_t))]
+ \lambda D_{KL}\big(\mathcal{N}(\mu(\varphi_t), \Sigma(\varphi_t)) \,\|\, \mathcal{N}(0, I)\big)$$

**As the reference code computes them** (hanzhanggit/StackGAN, `stageI/trainer.py`,
`stageII/trainer.py`), which this module follows so that $\lambda = 2$ carries over:

* both D's are matching-aware (GAN-CLS): they also score a mismatched pair,
  $L_D = \mathrm{bce}(s_r, 1) + \frac12[\mathrm{bce}(s_w, 0) + \mathrm{bce}(s_f, 0)]$
  (`ganlib.losses.matching_aware_d_loss`); the reference pairs a *wrong image* with
  the right text, which is used here when the batch holds `wrong_image`
  (`pipeline(wrong="image")`), else the real image with a *wrong caption*;
* G uses the non-saturating loss $\mathrm{bce}(s_f, 1)$ instead of
  $\log(1 - D)$, and the KL is averaged over the batch *and* the $N_g$
  dimensions (`ganlib.losses.kl_divergence`);
* the learning rate halves every 50 epochs (Stage-I) / 100 epochs (Stage-II);
* $\lambda = 2$ (`COEFF.KL` of the birds configs), where the paper's text sets $\lambda = 1$.

The networks: `Config.paper()` builds the reference code's (stageI/model.py,
stageII/model.py), which add to the paper's text a bottleneck residual block at 4x4
(and 8x8 in $G_0$) to Stage-I's G and to both D's, and whose $F_{ca}$ outputs
$\log\sigma$ and draws $\epsilon$ from a truncated normal; `Config.fast()` builds the
paper's plain up-/down-sampling stacks with $\log\sigma^2$ and $\mathcal{N}(0, I)$
(`bottleneck_blocks`, `ca_log_sigma`, `ca_noise`).
"""

import dataclasses
import pathlib
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.layers import ConditioningAugmentation, Reparameterize, ReplicateConcat, reparameterize
from ganlib.models.base import PaperConfig, PaperGAN, num_upsamplings, score_logs, to_numpy_images
from ganlib.models.registry import PaperSpec, Variant, batch_for

# CUB-200-2011 has 8855 training images: 138 steps of 64 per epoch (the reference's
# `updates_per_epoch = int(num_examples / batch_size)`).
CUB_EPOCH_STEPS = 8855 // 64

# Config fields that hold one value per stage; `Config.<name>` reads the current stage's.
_PER_STAGE = ("image_size", "steps", "lr_decay_every")
_STAGE_FIELD = {"image_size": "stage{}_size", "steps": "stage{}_steps", "lr_decay_every": "stage{}_lr_decay_every"}
_CHOICES = {"init": ("reference", "keras"), "ca_noise": ("truncated_normal", "normal"),
            "wrong": ("image", "caption")}


@dataclass
class Config(PaperConfig):
    """Hyperparameters of StackGAN, both stages.

    `stage` picks the GAN this config trains (1: $G_0$, $D_0$; 2: $G$, $D$ on a
    frozen Stage-I); `image_size`, `steps` and `lr_decay_every` read that stage's
    `stage{1,2}_*` fields, and `replace(steps=...)` writes them.
    `paper()` holds the reference code's CUB settings; `fast()` trains both stages
    on a 2-core CPU in a few minutes.
    """

    stage: int = 1
    stage1_size: int = 64       # Stage-I output (Stage-II's input)
    stage2_size: int = 256      # Stage-II output
    z_dim: int = 100            # noise size
    text_encoder: str = "char-cnn-rnn"  # the reference datasets' 1024-d embeddings (SynthBirds: its encoder)
    embed_dim: int = 1024       # sentence embedding size
    ca_dim: int = 128           # N_g: size of c_hat, and of D's compressed text embedding
    ngf: int = 128              # generator width (Stage-I: 8 ngf at 4x4; Stage-II: 4 ngf in the middle)
    ndf: int = 64               # discriminator width at the first layer
    res_blocks: int = 4         # Stage-II residual blocks (paper: 4 for 256x256, 2 for 128x128)
    bottleneck_blocks: bool = True  # the reference's G_0 (FC + BN per feature, bottleneck residual blocks
                                    # at 4x4 and 8x8) and D's (bottleneck residual block at 4x4)
    init: str = "reference"     # "reference": convs truncated N(0, 0.02), FCs N(0, 0.02), BN gamma N(1, 0.02); "keras"
    conv_biases: bool = False   # biases on the first and last convs of G and D (the reference's convs have none)
    ca_log_sigma: bool = True   # F_ca's FC outputs log(sigma) (the reference) instead of log(sigma^2)
    ca_noise: str = "truncated_normal"  # epsilon of F_ca: the reference's truncated normal (|eps| < 2) or "normal"
    kl_weight: float = 2.0      # lambda of the stages' L_G (the reference's COEFF.KL; the paper's text: 1)
    conditioning_augmentation: bool = True  # False: c_hat = mu, no KL (the paper's "without CA" ablation)
    captions_per_embedding: int = 4  # train on the mean embedding of 4 distinct captions (NUM_EMBEDDING)
    wrong: str = "image"        # D's mismatched pair: a real image of another class (the reference) or "caption"
    stage1_epochs: int = 600    # 0: the steps fields as given; see `for_dataset`
    stage2_epochs: int = 600
    stage1_lr_decay_epochs: int = 50
    stage2_lr_decay_epochs: int = 100
    stage1_steps: int = 600 * CUB_EPOCH_STEPS           # 600 epochs of CUB
    stage2_steps: int = 600 * CUB_EPOCH_STEPS           # 600 more epochs (epochs 600-1200)
    stage1_lr_decay_every: int = 50 * CUB_EPOCH_STEPS   # lr halves every 50 epochs (0: constant)
    stage2_lr_decay_every: int = 100 * CUB_EPOCH_STEPS  # ... every 100 epochs in Stage-II
    checkpoint_every: int = 2000  # the reference's SNAPSHOT_INTERVAL

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 (Stage-I) or 2 (Stage-II), got {self.stage!r}.")
        if self.conditioning != "text":
            raise ValueError(f"StackGAN is text-conditional: conditioning must be 'text', got {self.conditioning!r}.")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")
        num_upsamplings(self.stage1_size, "stage1_size")
        num_upsamplings(self.stage2_size, "stage2_size")
        if self.stage2_size <= self.stage1_size or self.stage2_size % self.stage1_size:
            raise ValueError(f"stage2_size must be a multiple of stage1_size larger than it "
                             f"(paper: 64 -> 256), got {self.stage1_size} -> {self.stage2_size}.")

    @classmethod
    def paper(cls, stage=1):
        """The reference code's birds settings (stageI/cfg/birds.yml, stageII/cfg/birds.yml,
        misc/config.py, stageI/model.py, stageII/model.py, misc/custom_ops.py).

        64 -> 256, z 100, N_g 128, ngf 128, ndf 64; G_0's FC with BN per feature and its
        bottleneck residual blocks at 4x4 and 8x8, D_0's and D's at 4x4, Stage-II's 4
        residual blocks; convs without biases, truncated N(0, 0.02), FCs N(0, 0.02), BN
        gamma N(1, 0.02), momentum 0.9, epsilon 1e-5; F_ca's FC gives log(sigma), its
        epsilon a truncated normal; KL weight 2; the mean embedding of 4 captions; a real
        image of another class as D's wrong pair; batch 64, Adam 2e-4 beta1 0.5, 600
        epochs per stage, the learning rate halved every 50 (Stage-I) / 100 (Stage-II)
        epochs (`for_dataset`; the defaults are CUB's 138 steps per epoch).

        The text is the dataset's 1024-d char-CNN-RNN embeddings (`text_encoder`), as the
        reference; on data without them (SynthBirds, COCO) `ganlib train` uses the shipped
        256-d SynthBirds sentence encoder instead (rescaled to unit RMS) and says so.

        Remaining differences from the reference:
        * Stage-II: the reference restores Stage-I's counter (82000) and trains epochs
          594-1199 (606 epochs, 83,628 steps) with the rate halved at epochs 700, 800, ...
          1100 (first after 106 epochs); here 600 epochs halved every 100 from the start;
        * the reference runs the frozen G_0 in its BatchNorm training phase (batch
          statistics) during Stage-II; `StageIIGAN` runs it in inference mode (moving
          statistics), the mode Keras gives a frozen network's BatchNorm, so that Stage-II
          trains on the same s_0 that Stage-I's samples show. Measured on the fast preset's
          trained Stage-I (TensorFlow, 512 test captions in batches of 64): the two modes'
          images differ by 0.107 per pixel on average (on the [-1, 1] scale), with caption
          consistency 0.332 (moving statistics) vs 0.322 (batch statistics), chance 0.134;
        * the reference re-draws z and epsilon and re-runs G for the G step (two
          `sess.run`s); `ganlib.training` runs G once per step for D and G;
        * the reference's images are bounding-box crops stored at 76x76 (Stage-I) and
          304x304 (Stage-II), randomly cropped to 64 / 256 and flipped; Stage-II's
          Stage-I-size real images are bilinear resizes of the 256 crops.
        """
        return cls(stage=stage)

    @classmethod
    def fast(cls, stage=1):
        """A classroom preset: 32 -> 64 birds, narrow nets, 2 residual blocks (the paper's
        choice for its smaller Stage-II), a higher learning rate halved once half-way,
        an EMA generator; each stage a few minutes on 2 CPU cores.

        Its networks are the plain up-/down-sampling stacks with Keras' initialisers (no
        bottleneck blocks, conv biases at the ends), F_ca's FC gives log(sigma^2) with a
        normal epsilon, one caption per image and mismatched captions as D's wrong pairs:
        the settings its figures were measured with."""
        return cls(stage=stage, text_encoder="synthbirds", embed_dim=256,
                   stage1_size=32, stage2_size=64, z_dim=32, ca_dim=64, ngf=16, ndf=32,
                   res_blocks=2, bottleneck_blocks=False, init="keras", conv_biases=True, ca_log_sigma=False,
                   ca_noise="normal", captions_per_embedding=1, wrong="caption", batch_size=64, lr=5e-4,
                   ema_decay=0.995, stage1_epochs=0, stage2_epochs=0,
                   stage1_steps=2000, stage2_steps=1000, stage1_lr_decay_every=1000, stage2_lr_decay_every=500,
                   eval_every=500, sample_every=250, checkpoint_every=500, eval_samples=500)

    @property
    def image_size(self):
        """Output size of the stage this config trains."""
        return getattr(self, _STAGE_FIELD["image_size"].format(self.stage))

    @property
    def steps(self):
        """Training steps of the stage this config trains."""
        return getattr(self, _STAGE_FIELD["steps"].format(self.stage))

    @property
    def lr_decay_every(self):
        """Steps between learning-rate halvings of the stage this config trains (0: never);
        `PaperGAN.learning_rate()` reads it."""
        return getattr(self, _STAGE_FIELD["lr_decay_every"].format(self.stage))

    def replace(self, **changes):
        """`dataclasses.replace`; `image_size`, `steps`, `lr_decay_every` set the current stage's field."""
        stage = changes.get("stage", self.stage)
        for name in _PER_STAGE:
            if name in changes:
                changes[_STAGE_FIELD[name].format(stage)] = changes.pop(name)
        return dataclasses.replace(self, **changes)

    def steps_per_epoch(self, num_train_images):
        """Steps of one epoch as the reference counts them: floor(N / batch_size)
        (`updates_per_epoch = int(num_examples / batch_size)`; CUB: 8855 -> 138)."""
        n = int(num_train_images)
        if n < self.batch_size:
            raise ValueError(f"num_train_images must be at least batch_size ({self.batch_size}), "
                             f"got {num_train_images!r}.")
        return n // self.batch_size

    def for_dataset(self, num_train_images):
        """This config with each stage's steps and lr_decay_every converted from its epochs for a
        training set of `num_train_images`; a stage whose `stage{k}_epochs` is 0 keeps its steps."""
        per_epoch = self.steps_per_epoch(num_train_images)
        changes = {}
        for k in (1, 2):
            epochs = getattr(self, f"stage{k}_epochs")
            if epochs:
                changes[f"stage{k}_steps"] = epochs * per_epoch
                changes[f"stage{k}_lr_decay_every"] = getattr(self, f"stage{k}_lr_decay_epochs") * per_epoch
        return dataclasses.replace(self, **changes)


def _reference(cfg):
    return cfg is not None and cfg.init == "reference"


def _bn(cfg=None, name=None):
    """Batch normalisation as the reference code has it (moving-average decay 0.9, epsilon 1e-5;
    gamma N(1, 0.02) with the reference init)."""
    gamma = keras.initializers.RandomNormal(1.0, 0.02) if _reference(cfg) else "ones"
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=gamma, name=name)


def _conv(cfg, filters, kernel, strides=1, padding="same", bias=False, **kwargs):
    """A conv; with the reference init its kernel is truncated N(0, 0.02) (`custom_conv2d`)."""
    init = keras.initializers.TruncatedNormal(0.0, 0.02) if _reference(cfg) else "glorot_uniform"
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=bias,
                         kernel_initializer=init, **kwargs)


def _dense(cfg, units, **kwargs):
    """A fully connected layer; with the reference init N(0, 0.02) weights and zero bias."""
    if _reference(cfg):
        kwargs = {"kernel_initializer": keras.initializers.RandomNormal(0.0, 0.02), **kwargs}
    return layers.Dense(units, **kwargs)


# ---------------------------------------------------------------------------- F_ca
def conditioning(embedding, eps, cfg, name):
    r"""$F_{ca}$: $(\mu, \log\sigma^2)$ from LeakyReLU(FC($\varphi_t$)) and $\hat c$ (or $\mu$ without CA).

    With `ca_log_sigma` (the reference) the FC's second half is $\log\sigma$, passed on as
    $\log\sigma^2 = 2 \log\sigma$. Returns `(c_hat, mu, logvar)`.
    """
    init = keras.initializers.RandomNormal(0.0, 0.02) if _reference(cfg) else "glorot_uniform"
    _, mu, logvar = ConditioningAugmentation(cfg.ca_dim, activation="leaky_relu", kernel_initializer=init,
                                             name=f"{name}_F_ca")(embedding)
    if cfg.ca_log_sigma:
        logvar = layers.Rescaling(2.0, name=f"{name}_log_sigma_to_logvar")(logvar)
    if not cfg.conditioning_augmentation:
        return mu, mu, logvar
    return Reparameterize(name=f"{name}_reparameterize")([mu, logvar, eps]), mu, logvar


# ---------------------------------------------------------------------------- blocks
def upsample_block(h, width, name=None, cfg=None, relu=True):
    """Nearest-neighbour upsampling x2, 3x3 stride-1 conv, BN, ReLU (paper, "Implementation details");
    `relu=False` stops after BN (the reference's G_0 before a bottleneck block)."""
    h = layers.UpSampling2D(2, interpolation="nearest")(h)
    h = _bn(cfg)(_conv(cfg, width, 3, name=name)(h))
    return layers.ReLU()(h) if relu else h


def residual_block(h, filters, cfg=None):
    r"""Stage-II's residual block (paper, "Implementation details"; He et al. 2016):
    $h + \mathrm{BN}(\mathrm{conv}_{3\times3}(\mathrm{ReLU}(\mathrm{BN}(\mathrm{conv}_{3\times3}(h)))))$, then ReLU.
    `cfg` sets the initialisers (None: Keras' defaults)."""
    r = layers.ReLU()(_bn(cfg)(_conv(cfg, filters, 3)(h)))
    r = _bn(cfg)(_conv(cfg, filters, 3)(r))
    return layers.ReLU()(layers.Add()([h, r]))


def bottleneck_block(h, cfg, act):
    r"""The reference's bottleneck residual block of G_0 and the D's (stageI/model.py):
    $h + \mathrm{BN}(\mathrm{conv}_{3\times3}(a(\mathrm{BN}(\mathrm{conv}_{3\times3}(a(\mathrm{BN}(\mathrm{conv}_{1\times1}(h))))))))$,
    widths C -> C/4 -> C/4 -> C, then `act` on the sum (ReLU in G_0, LeakyReLU(0.2) in D).
    `act` returns a new activation layer."""
    width = h.shape[-1]
    r = act()(_bn(cfg)(_conv(cfg, width // 4, 1)(h)))
    r = act()(_bn(cfg)(_conv(cfg, width // 4, 3)(r)))
    r = _bn(cfg)(_conv(cfg, width, 3)(r))
    return act()(layers.Add()([h, r]))


def _leaky():
    return layers.LeakyReLU(0.2)


# ---------------------------------------------------------------------------- networks
def build_stage1_generator(cfg, reparameterize_fn=None):
    r"""$G_0(z, \hat c_0)$: $F_{ca}$, [$\hat c_0$ ; z] -> FC -> 4x4x(8 ngf) -> upsampling blocks -> tanh image.

    With `bottleneck_blocks` (the reference): FC with bias and BN per feature, no ReLU
    before the bottleneck block at 4x4; the first upsampling without ReLU, then the one
    at 8x8. Inputs `[z (B, z_dim), phi_t (B, embed_dim), eps (B, N_g)]` (eps absent
    without CA); outputs `[image (B, s, s, 3), mu, logvar]`, s = `stage1_size`.
    """
    z = keras.Input((cfg.z_dim,), name="z")
    embedding = keras.Input((cfg.embed_dim,), name="embedding")
    eps = keras.Input((cfg.ca_dim,), name="eps")
    c_hat, mu, logvar = conditioning(embedding, eps, cfg, "G_0")
    h = layers.Concatenate()([c_hat, z])  # the reference's order: [c ; z]
    width = cfg.ngf * 8
    if cfg.bottleneck_blocks:  # FC -> BN over the 4*4*8ngf features -> 4x4 -> bottleneck block
        h = layers.Reshape((4, 4, width))(_bn(cfg)(_dense(cfg, 4 * 4 * width)(h)))
        h = bottleneck_block(h, cfg, layers.ReLU)
    else:
        h = _dense(cfg, 4 * 4 * width, use_bias=False)(h)
        h = layers.ReLU()(_bn(cfg)(layers.Reshape((4, 4, width))(h)))
    for i in range(num_upsamplings(cfg.stage1_size) - 1):
        width //= 2
        first = cfg.bottleneck_blocks and i == 0
        h = upsample_block(h, width, cfg=cfg, relu=not first)
        if first:
            h = bottleneck_block(h, cfg, layers.ReLU)
    h = layers.UpSampling2D(2, interpolation="nearest")(h)
    image = _conv(cfg, 3, 3, bias=cfg.conv_biases, activation="tanh", name="image")(h)
    inputs = [z, embedding, eps] if cfg.conditioning_augmentation else [z, embedding]
    model = keras.Model(inputs, [image, mu, logvar], name="G_0")
    _set_reparameterize(model, reparameterize_fn)
    return model


def joint_encoder(image, c_hat, ngf, cfg=None):
    r"""Stage-II's joint image-text encoder (paper, "Stage-II GAN" and "Implementation details"):
    3x3 conv (ngf, with bias when `cfg.conv_biases`) + ReLU; two 4x4 stride-2 convs (2 ngf,
    4 ngf) with BN + ReLU, down to s/4; [h ; replicate($\hat c$)]; 3x3 conv (4 ngf) + BN + ReLU.
    `cfg` sets the initialisers and the first conv's bias (None: Keras' defaults, with bias)."""
    h = layers.ReLU()(_conv(cfg, ngf, 3, bias=cfg.conv_biases if cfg is not None else True)(image))
    for width in (ngf * 2, ngf * 4):
        h = layers.ReLU()(_bn(cfg)(_conv(cfg, width, 4, strides=2)(h)))
    h = ReplicateConcat()([h, c_hat])
    return layers.ReLU()(_bn(cfg)(_conv(cfg, ngf * 4, 3)(h)))


def build_stage2_generator(cfg, reparameterize_fn=None, residual_block_fn=None, joint_encoder_fn=None):
    r"""$G(s_0, \hat c)$: encoder -> [h ; replicate($\hat c$)] -> residual blocks -> decoder -> tanh image.

    Encoder: 3x3 conv (ngf) + ReLU, then two 4x4 stride-2 convs (2 ngf, 4 ngf) with
    BN + ReLU, down to s/4. Joint: 3x3 conv (4 ngf) + BN + ReLU on the image code
    depth-concatenated with $\hat c$ replicated spatially (`joint_encoder_fn(s_0, c_hat, ngf)`,
    default `joint_encoder`). `res_blocks` residual
    blocks (`residual_block_fn(h, filters)`, default `residual_block`). Decoder:
    upsampling blocks from s/4 to `stage2_size` (2 ngf, ngf, ngf/2, ngf/4...), a 3x3
    conv to RGB and tanh.

    Inputs `[s_0 (B, s, s, 3), phi_t, eps]` (eps absent without CA); outputs
    `[image (B, S, S, 3), mu, logvar]`.
    """
    s, big = cfg.stage1_size, cfg.stage2_size
    image_lr = keras.Input((s, s, 3), name="stage1_image")
    embedding = keras.Input((cfg.embed_dim,), name="embedding")
    eps = keras.Input((cfg.ca_dim,), name="eps")
    c_hat, mu, logvar = conditioning(embedding, eps, cfg, "G")
    h = (joint_encoder_fn(image_lr, c_hat, cfg.ngf) if joint_encoder_fn
         else joint_encoder(image_lr, c_hat, cfg.ngf, cfg))
    expected = (s // 4, s // 4, cfg.ngf * 4)
    if tuple(h.shape[1:]) != expected:
        raise ValueError(f"joint_encoder_fn: expected a joint code of shape (B, {expected[0]}, {expected[1]}, "
                         f"{expected[2]}) from a ({s}, {s}, 3) image, got {tuple(h.shape)}")
    for _ in range(cfg.res_blocks):
        h = residual_block_fn(h, cfg.ngf * 4) if residual_block_fn else residual_block(h, cfg.ngf * 4, cfg)
    for k in range(int(np.log2(big // (s // 4)))):
        h = upsample_block(h, max(cfg.ngf * 2 // 2**k, 4), cfg=cfg)
    image = _conv(cfg, 3, 3, bias=cfg.conv_biases, activation="tanh", name="image")(h)
    inputs = [image_lr, embedding, eps] if cfg.conditioning_augmentation else [image_lr, embedding]
    model = keras.Model(inputs, [image, mu, logvar], name="G")
    _set_reparameterize(model, reparameterize_fn)
    return model


def build_discriminator(cfg, image_size, name):
    r"""$D(I, \varphi_t)$: 4x4 stride-2 convs (BN + LeakyReLU, the first without BN) down to 4x4,
    1x1 convs down to 8 ndf if wider, [h ; replicate(FC($\varphi_t$))], 1x1 conv, 4x4 conv -> logit.

    With `bottleneck_blocks` (the reference): the convs that reach 8 ndf at 4x4 (D_0: the
    last two strided ones; Stage-II's D: the last 1x1) have BN but no LeakyReLU, then a
    bottleneck residual block at 4x4."""
    image = keras.Input((image_size, image_size, 3), name="image")
    embedding = keras.Input((cfg.embed_dim,), name="embedding")
    h = _leaky()(_conv(cfg, cfg.ndf, 4, strides=2, bias=cfg.conv_biases)(image))
    downs = num_upsamplings(image_size) - 1
    plain_strided = cfg.bottleneck_blocks and cfg.ndf * 2**downs <= cfg.ndf * 8
    width = cfg.ndf
    for i in range(downs):
        width *= 2
        h = _bn(cfg)(_conv(cfg, width, 4, strides=2)(h))
        if not (plain_strided and i >= downs - 2):
            h = _leaky()(h)
    while width > cfg.ndf * 8:  # Stage-II's D: 32 ndf -> 16 ndf -> 8 ndf at 4x4
        width //= 2
        h = _bn(cfg)(_conv(cfg, width, 1)(h))
        if not (cfg.bottleneck_blocks and width == cfg.ndf * 8):
            h = _leaky()(h)
    if cfg.bottleneck_blocks:
        h = bottleneck_block(h, cfg, _leaky)
    text = _leaky()(_dense(cfg, cfg.ca_dim, name="compress")(embedding))
    h = ReplicateConcat()([h, text])
    h = _leaky()(_bn(cfg)(_conv(cfg, cfg.ndf * 8, 1)(h)))
    logit = _conv(cfg, 1, 4, padding="valid", bias=cfg.conv_biases, name="logit")(h)
    return keras.Model([image, embedding], layers.Reshape(())(logit), name=name)


def _set_reparameterize(generator, fn):
    for layer in generator.layers:
        if isinstance(layer, Reparameterize):
            layer.fn = fn


def param_counts(config=None):
    """Trainable parameters of each network: {"G_0", "D_0", "G", "D", "F_ca"} -> count (builds them).

    "F_ca" is one conditioning augmentation; G_0 and G each hold their own, already
    counted in theirs. The frozen sentence encoder is not counted, nor BatchNorm's
    moving statistics (the reference's `tf.trainable_variables` hold neither).
    """
    cfg = config or Config.paper()

    def trainable(network):
        return int(sum(np.prod(w.shape) for w in network.trainable_weights))

    g0 = build_stage1_generator(cfg)
    ca = next(layer for layer in g0.layers if isinstance(layer, ConditioningAugmentation))
    return {"G_0": trainable(g0), "D_0": trainable(build_discriminator(cfg, cfg.stage1_size, "D_0")),
            "G": trainable(build_stage2_generator(cfg)),
            "D": trainable(build_discriminator(cfg, cfg.stage2_size, "D")), "F_ca": trainable(ca)}


def generator_loss(fake_logits, mu, logvar, kl_weight=2.0):
    r"""$L_G = \mathrm{bce}(s_f, 1) + \lambda D_{KL}$ (paper, "Stage-I GAN" and "Stage-II GAN", as the reference code reduces them)."""
    return losses.generator_loss(fake_logits) + kl_weight * losses.kl_divergence(mu, logvar)


# ---------------------------------------------------------------------------- models
class _StackGANStage(PaperGAN):
    """What both stages share: F_ca noise, the matching-aware D loss, L_G + lambda KL.

    `compile()` with no arguments gives G and D Adam(lr, beta1, beta2) with the
    learning rate halved every `lr_decay_every` steps (`PaperGAN.learning_rate()`,
    a Keras `ExponentialDecay(lr, lr_decay_every, 0.5, staircase=True)`), counted
    from the start of the stage, as the reference does.
    """

    config_class = Config
    stage = None
    ca_noise = ()   # names of the CA noise inputs: "eps0" (Stage-I's F_ca), "eps" (Stage-II's)

    def __init__(self, config, generator, discriminator, helpers=None, d_loss_fn=None, g_loss_fn=None,
                 reparameterize_fn=None, **kwargs):
        super().__init__(config, generator, [discriminator], helpers=helpers, **kwargs)
        self.d_loss_fn = d_loss_fn or losses.matching_aware_d_loss
        self.g_loss_fn = g_loss_fn or generator_loss
        self.reparameterize_fn = reparameterize_fn
        if self.generator_ema is not None:  # clone_model made new layers: give them the function too
            _set_reparameterize(self.generator_ema, reparameterize_fn)

    @classmethod
    def _stage_config(cls, config):
        cfg = cls.resolve_config(config)
        return cfg if cfg.stage == cls.stage else cfg.replace(stage=cls.stage)

    @property
    def discriminator(self):
        return self.discriminators[0]

    def noise_shapes(self, n, training=False):
        """z, then the CA noise of each F_ca (`eps0` for Stage-I's, `eps` for Stage-II's) with CA."""
        shapes = {"z": (n, self.config.z_dim)}
        if self.config.conditioning_augmentation:
            shapes.update({name: (n, self.config.ca_dim) for name in self.ca_noise})
        return shapes

    @property
    def truncated_noise(self):
        """The CA noise is the reference's truncated normal with `ca_noise="truncated_normal"`."""
        return self.ca_noise if self.config.ca_noise == "truncated_normal" else ()

    def _ca_inputs(self, noise, name):
        return [noise[name]] if self.config.conditioning_augmentation else []

    # ------------------------------------------------------------------ losses
    def discriminator_loss(self, batch, fakes, training=True):
        """Matching-aware $L_D$ on (real, right), (wrong pair), (fake, right) (paper, "Stage-I GAN" / "Stage-II GAN")."""
        s_r, s_w, s_f = self.matching_aware_logits(self.discriminator, batch, fakes["e"], fakes["fake"], training)
        return self.d_loss_fn(s_r, s_w, s_f), score_logs(s_r, s_w, s_f)

    def generator_loss(self, batch, fakes, training=True):
        r"""$L_G = \mathrm{bce}(D(G(\cdot), \varphi_t), 1) + \lambda D_{KL}$ (paper, "Stage-I GAN" / "Stage-II GAN"); no KL without CA."""
        s_f = self.discriminator([fakes["fake"], fakes["e"]], training=training)
        weight = self.config.kl_weight if self.config.conditioning_augmentation else 0.0
        loss = self.g_loss_fn(s_f, fakes["mu"], fakes["logvar"], weight)
        return loss, {"kl": losses.kl_divergence(fakes["mu"], fakes["logvar"])}


@keras.saving.register_keras_serializable("ganlib")
class StageIGAN(_StackGANStage):
    r"""StackGAN's Stage-I GAN: $G_0(z, \hat c_0)$ and $D_0(I_0, \varphi_t)$ (paper, "Stage-I GAN").

    Args:
        config: a `Config` (default `Config.paper()`); its `stage` is set to 1.
        d_loss_fn: `(real_logits, wrong_logits, fake_logits) -> scalar`
            (default `ganlib.losses.matching_aware_d_loss`).
        g_loss_fn: `(fake_logits, mu, logvar, kl_weight) -> scalar`, the whole
            generator loss (default `generator_loss`: non-saturating + kl_weight * KL);
            lesson 02 plugs the student's function (and so their KL) in here.
        reparameterize_fn: `(mu, logvar, eps) -> c_hat` (default `reparameterize`).

    Pluggable functions are not saved: a loaded model uses the defaults.
    Noise (`draw_noise`): `z`, `eps0`.
    """

    stage = 1
    ca_noise = ("eps0",)

    def __init__(self, config=None, d_loss_fn=None, g_loss_fn=None, reparameterize_fn=None, **kwargs):
        cfg = self._stage_config(config)
        super().__init__(cfg, build_stage1_generator(cfg, reparameterize_fn),
                         build_discriminator(cfg, cfg.stage1_size, "D_0"),
                         d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn, reparameterize_fn=reparameterize_fn, **kwargs)

    def generator_outputs(self, batch, noise, training=False):
        e = self.condition.from_batch(self, batch)
        fake, mu, logvar = self.generator([noise["z"], e, *self._ca_inputs(noise, "eps0")], training=training)
        return {"e": e, "fake": fake, "mu": mu, "logvar": logvar}

    def generate_from(self, condition, noise):
        """Stage-I images in [-1, 1] (numpy) for sentence embeddings and noise `z`, `eps0`."""
        images = self.inference_generator()([noise["z"], condition, *self._ca_inputs(noise, "eps0")],
                                            training=False)[0]
        return to_numpy_images(images)


@keras.saving.register_keras_serializable("ganlib")
class StageIIGAN(_StackGANStage):
    r"""StackGAN's Stage-II GAN: $G(s_0, \hat c)$ and $D(I, \varphi_t)$ on a frozen Stage-I (paper, "Stage-II GAN").

    Stage-I's generator $G_0$ (its EMA copy if it has one) is copied into this
    model as a frozen helper network named "G_0": saved with it, never trained,
    run in inference mode. Stage-II's $F_{ca}$ is its own (paper: "a different
    fully connected layer").

    Args:
        config: a `Config` (default `Config.paper()`); its `stage` is set to 2.
        stage1: the trained Stage-I: a `StageIGAN`, or the path of its `.keras`
            file (e.g. a `ganlib train` checkpoint). None leaves $G_0$ untrained
            (what loading a saved Stage-II does before its weights are read).
        d_loss_fn, g_loss_fn, reparameterize_fn: as `StageIGAN`.
        residual_block_fn: `(h, filters) -> h`, builds one residual block with Keras
            layers (default `residual_block`); lesson 02 plugs the student's in.
        joint_encoder_fn: `(s_0, c_hat, ngf) -> h`, builds the joint image-text encoder
            with Keras layers (default `joint_encoder`); lesson 02 plugs the student's in.

    Noise (`draw_noise`): `z` and `eps0` for Stage-I, `eps` for Stage-II's F_ca.
    """

    stage = 2
    ca_noise = ("eps0", "eps")

    def __init__(self, config=None, stage1=None, d_loss_fn=None, g_loss_fn=None, reparameterize_fn=None,
                 residual_block_fn=None, joint_encoder_fn=None, **kwargs):
        cfg = self._stage_config(config)
        g0 = build_stage1_generator(cfg.replace(stage=1))
        super().__init__(cfg, build_stage2_generator(cfg, reparameterize_fn, residual_block_fn, joint_encoder_fn),
                         build_discriminator(cfg, cfg.stage2_size, "D"), helpers={"G_0": g0},
                         d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn, reparameterize_fn=reparameterize_fn, **kwargs)
        if stage1 is not None:
            self.load_stage1(stage1)

    @property
    def stage1_generator(self):
        """The frozen $G_0$."""
        return self.helper("G_0")

    def load_stage1(self, stage1):
        """Copy a trained Stage-I's generator (its EMA copy if any) into the frozen $G_0$."""
        if isinstance(stage1, (str, pathlib.Path)):
            path = pathlib.Path(stage1)
            if not path.is_file():
                raise FileNotFoundError(f"stage1: no Stage-I model file at {path} (expected a .keras file "
                                        "saved from a StageIGAN, e.g. RUN/stage1/checkpoints/ckpt-*.keras).")
            stage1 = keras.saving.load_model(path)
        if not isinstance(stage1, StageIGAN):
            raise ValueError(f"stage1: expected a trained StageIGAN or the path of its .keras file, "
                             f"got {type(stage1).__name__}.")
        fields = ("stage1_size", "z_dim", "embed_dim", "ca_dim", "ngf", "conditioning_augmentation",
                  "bottleneck_blocks", "conv_biases", "ca_log_sigma")
        mismatch = {f: (getattr(stage1.config, f), getattr(self.config, f)) for f in fields
                    if getattr(stage1.config, f) != getattr(self.config, f)}
        if mismatch:
            raise ValueError("stage1: its config does not match this Stage-II's "
                             + ", ".join(f"{f}={a!r} (Stage-II expects {b!r})" for f, (a, b) in mismatch.items()))
        self.stage1_generator.set_weights(stage1.inference_generator().get_weights())

    def _stage1_images(self, noise, e):
        images = self.stage1_generator([noise["z"], e, *self._ca_inputs(noise, "eps0")], training=False)[0]
        return ops.stop_gradient(images)

    def generator_outputs(self, batch, noise, training=False):
        e = self.condition.from_batch(self, batch)
        s0 = self._stage1_images(noise, e)
        fake, mu, logvar = self.generator([s0, e, *self._ca_inputs(noise, "eps")], training=training)
        return {"e": e, "fake": fake, "mu": mu, "logvar": logvar}

    def generate_from(self, condition, noise, return_stage1=False):
        """Stage-II images in [-1, 1] (numpy); with `return_stage1`, `(stage1_images, stage2_images)`
        of the same samples."""
        s0 = self._stage1_images(noise, condition)
        images = to_numpy_images(self.inference_generator()([s0, condition, *self._ca_inputs(noise, "eps")],
                                                            training=False)[0])
        return (to_numpy_images(s0), images) if return_stage1 else images

    def generate(self, conditions, seed=0, z=None, noise=None, return_stage1=False):
        """As `PaperGAN.generate`; `return_stage1=True` also returns Stage-I's images of the same samples."""
        return self.generate_from(*self.inference_inputs(conditions, seed, z, noise), return_stage1=return_stage1)

    def generate_from_embeddings(self, embeddings, z=None, seed=0, noise=None, return_stage1=False):
        return self.generate_from(*self.inference_inputs(embeddings, seed, z, noise, encoded=True),
                                  return_stage1=return_stage1)


# ---------------------------------------------------------------------------- runs
def stages(config):
    """The sub-runs of `ganlib train stackgan`, in the paper's order: Stage-I, then Stage-II."""
    return [("stage1", config.replace(stage=1)), ("stage2", config.replace(stage=2))]


def build(config=None, previous=None):
    """The model of `config.stage`: `StageIGAN`, or `StageIIGAN` on the trained Stage-I `previous`."""
    cfg = config or Config.fast()
    if cfg.stage == 1:
        return StageIGAN(cfg)
    if previous is None:
        raise ValueError("Stage-II trains on a trained Stage-I: build(config, previous=stage1_model).")
    return StageIIGAN(cfg, stage1=previous)


SPEC = PaperSpec(
    name="stackgan",
    title="StackGAN (Zhang et al. 2017)",
    config=Config,
    build=build,
    batch=lambda cfg: batch_for(cfg, cfg.image_size),
    stages=stages,
    variants={"no-ca": Variant("without conditioning augmentation (c_hat = mu, no KL): the paper's ablation",
                               lambda cfg: cfg.replace(conditioning_augmentation=False))},
)
