r"""HDGAN (Zhang, Xie and Yang, CVPR 2018, "Photographic Text-to-Image Synthesis with a
Hierarchically-nested Adversarial Network"), reference code ypxie/HDGan.

**One generator, images on the way up.** A single stream of feature maps grows from
4x4 to the top resolution; at some of its scales (64, 128 and 256 px for birds) a
*side output* head turns the feature map into an image:

$$X_1, \dots, X_s = G(z, t),\qquad z \sim \mathcal N(0, I),$$

with $t$ the sentence embedding after conditioning augmentation (`F_ca`, KL-regularised
as in StackGAN). There is no second generator per scale (StackGAN) and no branch tree
(StackGAN++): the side outputs share every layer below them.

**Hierarchically-nested discriminators.** Each side output $X_i$ has its own
discriminator $D_i$, so the adversarial signal reaches the intermediate layers of G
directly (deep supervision). The paper's min-max objective over the side outputs
(paper, section *Hierarchical-nested adversarial objectives*):

$$G^*, D^* = \arg\min_G \max_D\; V(G, D, Y, t),\qquad
V = \sum_{i=1}^{s} L_2\big(D_i(Y_i)\big) + L_2\big(D_i(X_i)\big)$$

where $Y_i$ are real images at the side-output scales and $L_2$ is the least-squares
(LSGAN) loss. Each $D_i$ has two branches on one image code:

* the **pair** branch: the image code (4x4) depth-concatenated with a compressed
  sentence code, a 1x1 convolution and a 4x4 convolution to one score: does the image
  match the text? The mismatched pair is a real image of another item with this text.
* the **local image** branch: a 4x4 convolution on the image code gives a map of
  patch scores (5x5 at 256 px, 1x1 at the smaller scales): is each patch real?

The paper's multi-purpose loss (section *Multi-purpose adversarial losses*) sums the
two for every side output; the reference code (`HDGan/HDGan.py`) computes them as

$$L_{D_i}^{\text{pair}} = \mathrm{mse}(r, 1) + \tfrac12\big[\mathrm{mse}(w, 0) + \mathrm{mse}(f, 0)\big],\qquad
L_{D_i}^{\text{local}} = \mathrm{mse}(f_\ell, 0) + \tfrac12\big[\mathrm{mse}(w_\ell, 1) + \mathrm{mse}(r_\ell, 1)\big]$$

(the wrong image is a *real* image for the local branch: it has no text to mismatch),
and $L_G = \sum_i \big[\mathrm{mse}(f, 1) + \mathrm{mse}(f_\ell, 1)\big] + \lambda_{KL} D_{KL}$,
$\lambda_{KL} = 4$ for birds (`KL_COE`). Each mse is a mean over the batch and the
patch map (`ganlib.losses.least_squares`).

`Config.paper()` is the birds HDGAN_256 setting of the reference (`train_birds.sh`,
`train_worker.py`); its parameter counts equal the reference networks' (tests/test_hdgan.py).

**Evaluation.** HDGAN's visual-semantic similarity of generated images and their captions is
`ganlib.metrics.vs_similarity` with a VS model (`ganlib.models.vs`, pretrained by `ganlib
pretrain vs`; on SynthBirds the shipped one), reported as `vs_similarity` / `vs_similarity_std` in `metrics.json`;
its MS-SSIM is `ganlib.metrics.ms_ssim`.
"""

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.layers import ConditioningAugmentation, ReflectionPadding2D, ReplicateConcat, Reparameterize
from ganlib.models.base import PaperConfig, to_numpy_images
from ganlib.models.multiscale import MultiScaleGAN
from ganlib.models.registry import PaperSpec, Variant, batch_for

CUB_TRAIN_IMAGES = 8855


@dataclass
class Config(PaperConfig):
    """Hyperparameters of HDGAN (the fields every paper has are `PaperConfig`'s)."""

    text_encoder: str = "char-cnn-rnn"   # the reference's 1024-d char-CNN-RNN embeddings (sent_dim)
    embed_dim: int = 1024
    captions_per_embedding: int = 4      # --num_emb 4: the mean of 4 caption embeddings per image
    wrong: str | None = "image"          # the reference's wrong_images: real images of other items
    side_outputs: tuple = (64, 128, 256)  # side_output_at
    adversarial_at: tuple | None = None  # side outputs with a discriminator (None: all of them)
    local_branch: bool = True            # the local image loss (False: pair loss only)
    z_dim: int = 100                     # noise_dim
    ca_dim: int = 128                    # emb_dim: the CA condition and D's sentence code
    gf_dim: int = 128                    # G's hid_dim: 8 * gf_dim channels at 4x4
    df_dim: int = 128                    # D's hid_dim: image code of 4 * df_dim channels
    reduce_at: tuple = (8, 32, 128, 256)  # G halves its width at these scales (reduce_dim_at)
    num_resblock: int = 1                # residual blocks per scale
    kl_weight: float = 4.0               # KL_COE
    batch_size: int = 10
    epochs: int = 600                    # maxepoch
    lr_decay_epochs: int = 100           # epoch_decay: lr halved every 100 epochs
    steps: int = 600 * (CUB_TRAIN_IMAGES // 10)
    lr_decay_every: int = 100 * (CUB_TRAIN_IMAGES // 10)
    sample_every: int = 2000

    @classmethod
    def paper(cls):
        """The reference birds HDGAN_256 setting: `Generator(sent_dim=1024, noise_dim=100, emb_dim=128,
        hid_dim=128, num_resblock=1)`, `Discriminator(hid_dim=128, sent_dim=1024, emb_dim=128)`, side
        outputs 64/128/256 each with a pair and a local image branch, LSGAN losses, KL_COE 4, batch 10,
        Adam 2e-4 (0.5, 0.999) for G and D, the rate halved every 100 epochs, 600 epochs, the mean of
        4 caption embeddings per image, wrong images as mismatched pairs; the reference's initialisers
        (`weights_init`: convolutions N(0, 0.02), BatchNorm scale N(1, 0.02); linear layers and
        convolution biases PyTorch's default U(+-1/sqrt(fan_in))), BatchNorm momentum 0.9 (PyTorch's
        0.1) and epsilon 1e-5. On data without the char-CNN-RNN embeddings (SynthBirds) `ganlib train`
        uses the shipped sentence encoder (256-d) and says so.

        Remaining differences from the reference code (`hd_networks.py`, `HDGan.py`, `train_worker.py`):

        * the reference's D is one module with one Adam over all scales; here one D (and one Adam)
          per side output. Adam is elementwise, so the updates are the same.
        * its epoch loop is `range(1, 600)` (599 epochs) and halves the rate at epochs 100, 200, ...
          (the first after 99 epochs); here 600 epochs halved every 100.
        * the CA's fully connected layer has PyTorch's uniform kernel initialiser but a zero bias
          (PyTorch: uniform); the converter loads the reference's values either way.
        * the progress bar's `d_real` / `d_fake` are sigmoids of D's scores (LSGAN scores are not
          logits; only the display uses them).
        * HDGAN_512 (a 512 px head trained on top of a frozen 256 model, with an L1 term) is not built.

        As the reference, one generator pass per step feeds both the D and the G update (its G update
        reuses `fake_images` of the D step).
        """
        return cls()

    @classmethod
    def fast(cls):
        """A classroom preset: side outputs 16/32/64, G 128 channels at 4x4 (gf_dim 16) halved at
        8, 16, 32 and 64 px (8 channels at 64 px), D image code 64 channels (df_dim 16), z 32, CA 64, the SynthBirds sentence
        encoder, mismatched pairs from wrong captions, batch 24, lr 5e-4, an EMA generator (0.995):
        2400 steps."""
        return cls(text_encoder="synthbirds", embed_dim=256, captions_per_embedding=1, wrong="caption",
                   side_outputs=(16, 32, 64), z_dim=32, ca_dim=64, gf_dim=16, df_dim=16,
                   reduce_at=(8, 16, 32, 64), batch_size=24, lr=5e-4, ema_decay=0.995, epochs=0,
                   lr_decay_epochs=0, steps=2400, lr_decay_every=0, eval_every=600, sample_every=300,
                   checkpoint_every=600, eval_samples=500)

    @property
    def image_size(self):
        return max(self.side_outputs)

    @property
    def branch_sizes(self):
        """The side outputs that have a discriminator, smallest first."""
        return tuple(sorted(self.adversarial_at or self.side_outputs))

    def validate(self):
        """Raise ValueError naming the field when the config cannot build HDGAN."""
        if self.conditioning != "text":
            raise ValueError(f"HDGAN is a text-to-image model: conditioning must be 'text', got {self.conditioning!r}.")
        sizes = tuple(self.side_outputs)
        for s in sizes:
            n = int(np.log2(max(s, 1) / 4))
            if s < 16 or 4 * 2 ** n != s:
                raise ValueError(f"side_outputs: each size must be 4 * 2**k and >= 16, got {s}.")
        if sorted(set(sizes)) != list(sizes):
            raise ValueError(f"side_outputs must be increasing and distinct, got {sizes}.")
        extra = set(self.branch_sizes) - set(sizes)
        if extra or self.image_size not in self.branch_sizes:
            raise ValueError(f"adversarial_at={self.adversarial_at} must be side outputs {sizes} and include "
                             f"the largest, {self.image_size}.")
        width = 8 * self.gf_dim
        for s in self.reduce_at:
            if s <= self.image_size:
                if width % 2:
                    raise ValueError(f"gf_dim={self.gf_dim} cannot be halved at every size in reduce_at={self.reduce_at}.")
                width //= 2
        return self


# --------------------------------------------------------------------------- blocks
def _normal():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _torch_uniform(fan_in):
    """PyTorch's default initialiser of linear layers and of biases, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _bn(name):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name,
                                     gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def _dense(units, fan_in, name):
    return layers.Dense(units, kernel_initializer=_torch_uniform(fan_in),
                        bias_initializer=_torch_uniform(fan_in), name=name)


def pad_conv_bn(x, filters, name, relu=True):
    """Reflection pad 1, 3x3 convolution without bias, BatchNorm, ReLU (reference `pad_conv_norm`)."""
    x = layers.Conv2D(filters, 3, use_bias=False, kernel_initializer=_normal(),
                      name=f"{name}_conv")(ReflectionPadding2D(1, name=f"{name}_pad")(x))
    x = _bn(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def residual_block(x, name):
    """x + BN(conv(ReLU(BN(conv(x))))), reflection-padded 3x3 convolutions (reference `ResnetBlock`)."""
    h = pad_conv_bn(x, x.shape[-1], f"{name}_a")
    h = pad_conv_bn(h, x.shape[-1], f"{name}_b", relu=False)
    return layers.Add(name=f"{name}_add")([x, h])


def side_output(x, size):
    """The side-output head at `size` px: reflection pad, 3x3 convolution to RGB without bias,
    tanh (reference `branch_out`)."""
    x = ReflectionPadding2D(1, name=f"to_img_{size}_pad")(x)
    x = layers.Conv2D(3, 3, use_bias=False, kernel_initializer=_normal(), name=f"to_img_{size}_conv")(x)
    return layers.Activation("tanh", name=f"image_{size}")(x)


def build_generator(cfg, side_output_fn=None):
    """G: inputs `[z, phi_t, eps]`, outputs `[X_1, ..., X_s, mu, logvar]` (side outputs smallest first).

    $\\hat c = \\mu + \\exp(\\log\\sigma) \\epsilon$ from the CA (a fully connected layer, leaky
    ReLU); `logvar` is $2 \\log\\sigma$, so `ganlib.losses.kl_divergence(mu, logvar)` is the
    reference's `get_KL_Loss(mu, logsigma)`. `[c_hat, z]` goes through a fully connected layer and
    BatchNorm to 4x4 x (8 gf_dim) (`Sent2FeatMap`); then one stage per scale 4, 8, ..., the top:
    nearest x2 upsampling (from 8 on), a width-halving `pad_conv_bn` at the `reduce_at` scales,
    `num_resblock` residual blocks, and a `side_output` head at the side-output scales.
    `side_output_fn(h, size)` replaces `side_output` (lesson 05 builds G with the student's head).
    """
    cfg.validate()
    z = keras.Input((cfg.z_dim,), name="z")
    e = keras.Input((cfg.embed_dim,), name="phi_t")
    eps = keras.Input((cfg.ca_dim,), name="eps")
    ca = ConditioningAugmentation(cfg.ca_dim, activation="leaky_relu", kernel_initializer=_torch_uniform(cfg.embed_dim),
                                  name="F_ca")
    mu, _, log_sigma = ca(e)
    logvar = layers.Rescaling(2.0, name="logvar")(log_sigma)
    c_hat = Reparameterize(name="c_hat")([mu, logvar, eps])
    width = 8 * cfg.gf_dim
    h = layers.Concatenate(name="c_z")([c_hat, z])
    h = _dense(16 * width, cfg.ca_dim + cfg.z_dim, "sent2featmap_fc")(h)
    h = layers.Reshape((4, 4, width), name="h_4")(_bn("sent2featmap_bn")(h))
    images, size = [], 4
    while size <= cfg.image_size:
        if size > 4:
            h = layers.UpSampling2D(2, interpolation="nearest", name=f"scale_{size}_up")(h)
        if size in cfg.reduce_at:
            width //= 2
            h = pad_conv_bn(h, width, f"scale_{size}_reduce")
        for r in range(cfg.num_resblock):
            h = residual_block(h, f"scale_{size}_res{r}")
        if size in cfg.side_outputs:
            images.append((side_output_fn or side_output)(h, size))
        size *= 2
    return keras.Model([z, e, eps], images + [mu, logvar], name="G")


def _conv_bn_leaky(x, filters, kernel, strides, name, norm=True):
    """Convolution without bias (+ BatchNorm) + leaky ReLU 0.2 (reference `conv_norm`): 3x3 with
    zero padding 1 (explicit: PyTorch pads both sides, Keras' 'same' only the right at stride 2),
    other kernels unpadded."""
    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel, strides=strides, use_bias=False, kernel_initializer=_normal(),
                      name=f"{name}_conv")(x)
    if norm:
        x = _bn(f"{name}_bn")(x)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def _score_conv(x, name):
    """The 4x4 unpadded convolution with bias to one score per position."""
    return layers.Conv2D(1, 4, kernel_initializer=_normal(), bias_initializer=_torch_uniform(16 * x.shape[-1]),
                         name=name)(x)


def build_discriminator(cfg, size):
    """D_i for `size` px side outputs: inputs `[image, phi_t]`, outputs `[pair (B,), local (B, k, k, 1)]`
    (`[pair]` without the local branch).

    Image encoder (`ImageDown`): 3x3 stride-2 convolutions down to 8x8, widths doubling to the image
    code's 4 df_dim (the first without BatchNorm). At the largest side output the local branch reads
    this 8x8 code (5x5 patch scores) and a 5x5 convolution makes the pair branch's 4x4 code
    (`pre_encode`); at the other sizes the 5x5 convolution is part of the encoder and both branches read
    its 4x4 code (one local score). Pair branch (`DiscClassifier`): the sentence code
    leaky-ReLU(W phi_t) (`context_emb_pipe`) replicated at 4x4 and concatenated, a 1x1 convolution
    + BatchNorm + leaky ReLU, a 4x4 convolution to one score.
    """
    enc = 4 * cfg.df_dim
    image = keras.Input((size, size, 3), name="image")
    e = keras.Input((cfg.embed_dim,), name="phi_t")
    downs = int(np.log2(size // 8))
    h = image
    for k in range(downs):
        h = _conv_bn_leaky(h, enc // 2 ** (downs - 1 - k), 3, 2, f"down{k}", norm=k > 0)
    top = size == cfg.image_size
    code = _conv_bn_leaky(h, enc, 5, 1, "encode5") if not top else h
    outputs = []
    sent = layers.LeakyReLU(0.2, name="sent_code_act")(_dense(cfg.ca_dim, cfg.embed_dim, "sent_code")(e))
    pair_code = _conv_bn_leaky(h, enc, 5, 1, "pre_encode") if top else code
    p = ReplicateConcat(name="pair_join")([pair_code, sent])
    p = _conv_bn_leaky(p, enc, 1, 1, "pair_1x1")
    outputs.append(layers.Reshape((), name="pair")(_score_conv(p, "pair_score")))
    if cfg.local_branch:
        outputs.append(layers.Identity(name="local")(_score_conv(code, "local_score")))
    return keras.Model([image, e], outputs, name=f"D_{size}")


def build_discriminators(cfg):
    cfg.validate()
    return [build_discriminator(cfg, s) for s in cfg.branch_sizes]


def param_counts(config=None):
    """Trainable parameters of each network (default `Config.paper()`): `{"G", "F_ca", "D_<size>"...}`
    ("F_ca" is part of "G"); BatchNorm moving statistics are not counted, as PyTorch's `parameters()`."""
    cfg = config or Config.paper()

    def trainable(network):
        return int(sum(np.prod(w.shape) for w in network.trainable_weights))

    g = build_generator(cfg)
    counts = {"G": trainable(g), "F_ca": trainable(g.get_layer("F_ca"))}
    for d in build_discriminators(cfg):
        counts[d.name] = trainable(d)
    return counts


# --------------------------------------------------------------------------- losses
def pair_d_loss(real, wrong, fake):
    r"""The pair branch's D loss: $\mathrm{mse}(r, 1) + \frac12[\mathrm{mse}(w, 0) + \mathrm{mse}(f, 0)]$
    (reference `compute_d_pair_loss`); scores in, means over the batch."""
    return losses.least_squares(real, 1.0) + 0.5 * (losses.least_squares(wrong, 0.0) + losses.least_squares(fake, 0.0))


def local_d_loss(real, wrong, fake):
    r"""The local image branch's D loss: $\mathrm{mse}(f_\ell, 0) + \frac12[\mathrm{mse}(w_\ell, 1) +
    \mathrm{mse}(r_\ell, 1)]$, the wrong image counted *real* (reference `compute_d_img_loss`); patch
    maps in, means over the batch and the map."""
    return losses.least_squares(fake, 0.0) + 0.5 * (losses.least_squares(wrong, 1.0) + losses.least_squares(real, 1.0))


def g_adversarial_loss(fake_pair, fake_local=None):
    r"""G's loss at one side output: $\mathrm{mse}(f, 1) + \mathrm{mse}(f_\ell, 1)$ (reference `compute_g_loss`)."""
    loss = losses.least_squares(fake_pair, 1.0)
    return loss if fake_local is None else loss + losses.least_squares(fake_local, 1.0)


# --------------------------------------------------------------------------- the model
@keras.saving.register_keras_serializable("ganlib")
class HDGAN(MultiScaleGAN):
    """HDGAN: one generator with side outputs, a two-branch discriminator at each (Zhang et al. 2018).

    Args:
        config: a `Config` (default `Config.paper()`).
        pair_loss_fn: `(real, wrong, fake) -> scalar`, the pair branch's D loss at each side output
            (default `pair_d_loss`); lesson 05 plugs the student's function in here.
        local_loss_fn: `(real, wrong, fake) -> scalar`, the local image branch's D loss (default
            `local_d_loss`).
        pyramid_fn: `(images, size) -> images`, the real images of the smaller side outputs when the
            batch has no `image_<size>` (default area downsampling).
        side_output_fn: `(h, size) -> image`, the side-output head built on G's feature map at each
            side output (default `side_output`); lesson 05 builds G with the student's head.

    Batches hold `image` at the top side output, `image_<s>` for the smaller ones, the text
    (`tokens` or `embeddings`, 4 captions averaged in the paper preset) and the mismatched pair
    (`wrong_image` or `wrong_tokens`), as `SPEC.batch(config)` asks the pipeline. D sees the
    sentence embedding itself (its own `sent_code` layer compresses it), not the CA output.
    """

    config_class = Config

    def __init__(self, config=None, pair_loss_fn=None, local_loss_fn=None, pyramid_fn=None, side_output_fn=None,
                 **kwargs):
        cfg = self.resolve_config(config).validate()
        super().__init__(cfg, build_generator(cfg, side_output_fn), build_discriminators(cfg), pyramid_fn=pyramid_fn,
                         **kwargs)
        self.pair_loss_fn = pair_loss_fn or pair_d_loss
        self.local_loss_fn = local_loss_fn or local_d_loss

    def noise_shapes(self, n, training=False):
        return {"z": (n, self.config.z_dim), "eps": (n, self.config.ca_dim)}

    # ------------------------------------------------------------ training
    def generator_outputs(self, batch, noise, training=False):
        cfg = self.config
        e = ops.stop_gradient(self.condition.from_batch(self, batch))
        outs = self.generator([noise["z"], e, noise["eps"]], training=training)
        m = len(cfg.side_outputs)
        by_size = dict(zip(cfg.side_outputs, outs[:m]))
        fakes = {"images": [by_size[s] for s in cfg.branch_sizes], "c": e, "mu": outs[m], "logvar": outs[m + 1]}
        if "wrong_image" not in batch:
            fakes["c_wrong"] = ops.stop_gradient(self.condition.from_batch(self, batch, wrong=True))
        return fakes

    def d_logits(self, D, image, condition, training=True):
        """`(pair score, local patch scores or None)` of one side output's D."""
        out = D([image, condition], training=training)
        if self.config.local_branch:
            return out[0], out[1]
        return (out[0] if isinstance(out, (list, tuple)) else out), None

    def branch_d_loss(self, real, wrong, fake):
        loss = self.pair_loss_fn(real[0], wrong[0], fake[0])
        if real[1] is not None:
            loss = loss + self.local_loss_fn(real[1], wrong[1], fake[1])
        return loss

    def branch_g_loss(self, fake):
        return g_adversarial_loss(*fake)

    def extra_generator_loss(self, batch, fakes):
        kl = losses.kl_divergence(fakes["mu"], fakes["logvar"])
        return self.config.kl_weight * kl, {"kl": kl}

    # ------------------------------------------------------------ inference
    def generate_scales_from(self, condition, noise):
        """Every side output (smallest first), numpy in [-1, 1]."""
        outs = self.inference_generator()([noise["z"], condition, noise["eps"]], training=False)
        return [to_numpy_images(o) for o in outs[: len(self.config.side_outputs)]]


def build(config=None, previous=None):
    """The model `ganlib train hdgan` trains."""
    return HDGAN(config or Config.fast())


SPEC = PaperSpec(
    name="hdgan",
    title="HDGAN (Zhang, Xie and Yang 2018)",
    config=Config,
    build=build,
    batch=lambda cfg: batch_for(cfg, cfg.image_size, pyramid=cfg.branch_sizes[:-1]),
    metrics=("fid", "inception_score", "caption_consistency", "chance_consistency", "r_precision"),
    variants={
        "top-only": Variant("adversarial supervision at the largest side output only (the paper's ablation)",
                            lambda cfg: cfg.replace(adversarial_at=(cfg.image_size,))),
        "no-local": Variant("without the local image branch: the pair loss only (the paper's ablation)",
                            lambda cfg: cfg.replace(local_branch=False)),
    },
)
