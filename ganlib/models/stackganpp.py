r"""StackGAN++ (Zhang et al. 2018, "StackGAN++: Realistic Image Synthesis with Stacked
Generative Adversarial Networks", TPAMI), a.k.a. StackGAN-v2.

**A tree of generators, trained end to end.** One noise vector $z$ and one
condition $c$ feed a trunk of hidden states, one per scale,

$$h_0 = F_0(c, z),\qquad h_i = F_i(h_{i-1}, c)\quad (i = 1, \dots, m-1),\qquad s_i = G_i(h_i)$$

(paper, section *Multi-scale image distributions approximation*), each branch
$G_i$ a 3x3 convolution to an RGB image $s_i$ at 64, 128 and 256 pixels. $F_0$
is a fully connected layer and nearest-neighbour upsampling blocks; each $F_i$
replicates $c$ spatially, concatenates it to $h_{i-1}$
(`ganlib.layers.ReplicateConcat`), and applies a joining 3x3 convolution,
residual blocks and one upsampling block. Every nonlinearity of G is a gated
linear unit (`ganlib.layers.GLU`). With text, $c = \hat c$ is the conditioning
augmentation of the sentence embedding $\varphi_t$ (`ConditioningAugmentation`
with GLU, $N_g = 128$), regularised by its KL divergence; in the unconditional
setting ($c$ absent) the reference code feeds $z$ itself as $c$ to each $F_i$.

**One discriminator per branch**, $D_i$ judging $s_i$ against the real image
$x_i$ at that scale, each with its own optimizer. With text each $D_i$ has two
logits on a shared image code: an *unconditional* one (is this a real image?)
and a *conditional* one (the code depth-concatenated with $c$ replicated at
4x4: is it real and does it match the text?). The joint losses (paper, section
*Joint conditional and unconditional distribution approximation*):

$$L_{D_i} = \underbrace{-\mathbb{E}[\log D_i(x_i)] - \mathbb{E}[\log(1 - D_i(s_i))]}_{\text{unconditional}}
\;\underbrace{- \mathbb{E}[\log D_i(x_i, c)] - \mathbb{E}[\log(1 - D_i(s_i, c))]}_{\text{conditional}}$$

$$L_{G_i} = -\mathbb{E}[\log D_i(s_i)] - \mathbb{E}[\log D_i(s_i, c)],\qquad L_G = \sum_i L_{G_i}$$

**Colour consistency** (paper, section *Color-consistency regularization*): the
images of one input at adjacent scales should share colours. Per image, the pixel mean $\mu$ and covariance
$\Sigma$; $L_{C_i} = \frac1n \sum_j \big(\lambda_1 \lVert \mu_{s_i^j} - \mu_{s_{i-1}^j}\rVert_2^2
+ \lambda_2 \lVert \Sigma_{s_i^j} - \Sigma_{s_{i-1}^j} \rVert_F^2\big)$ (both terms inside the sum over
the n images), $\lambda_1 = 1$,
$\lambda_2 = 5$, added to $L_{G_i}$ with weight $\alpha$ (50 in the
unconditional settings; 0 for text-to-image, where the text already ties the
scales together).

**How the reference code (hanzhanggit/StackGAN-v2, `trainer.py`) differs from the
printed equations**, followed here so that its weights carry over:

* $D_i$ also sees *wrong pairs* (matching-aware, as in GAN-CLS): a real image
  with a mismatched condition. The conditional logit must call it fake, the
  unconditional one real (it is a real image). With unconditional weight
  $\lambda_u$ (`uncond_weight`, 1 for birds) the reference's D loss is

  $$L_{D_i} = \mathrm{bce}(r_c, 1) + \mathrm{bce}(w_c, 0) + \mathrm{bce}(f_c, 0)
  + \lambda_u\left[\mathrm{bce}(r_u, 1) + \mathrm{bce}(w_u, 1) + \mathrm{bce}(f_u, 0)\right]$$

  (no 1/2 on the wrong and fake terms), and with $\lambda_u = 0$ the GAN-CLS loss
  $\mathrm{bce}(r_c, 1) + \frac12[\mathrm{bce}(w_c, 0) + \mathrm{bce}(f_c, 0)]$
  (`joint_d_loss`). $L_{G_i} = \mathrm{bce}(f_c, 1) + \lambda_u \mathrm{bce}(f_u, 1)$
  (`joint_g_loss`). The reference's wrong pair is a real image of another class
  with the right text; the pipeline here gives a caption of another class, so
  the wrong pair is (real image, wrong text): $w_u$ is then $D_i$'s
  unconditional logit of the real image again, which weighs real images twice
  in the unconditional term exactly as the reference does.
* $D_i$'s condition is the CA mean $\mu(\varphi_t)$ of G's own CA network, held
  constant in the D update; in the G update the gradient of $L_{G_i}$ reaches
  the CA network through it.
* Colour consistency pulls only the larger image: $L_{C_i}$ compares $s_i$ with
  $s_{i-1}$ held constant, reduced as a mean over the 3 mean and 9 covariance
  components (`ganlib.losses.color_consistency`), and the generator's total is
  $\sum_i L_{G_i} + \alpha \sum_{i \ge 1} L_{C_i} + \lambda_{KL} D_{KL}$ with
  $\lambda_{KL} = 2$ and the KL a mean over batch and dimensions.
* The reference keeps an exponential moving average of G's weights (decay
  0.999) for its samples and snapshots: `ema_decay`.
* In the unconditional setting D has a single logit: $L_{D_i} = \mathrm{bce}(r, 1)
  + \mathrm{bce}(f, 0)$, $L_{G_i} = \mathrm{bce}(f, 1)$ (the paper's multi-scale losses,
  without text).

Every $\mathrm{bce}$ is a batch mean of the sigmoid cross-entropy on logits
(`ganlib.losses.bce`).

`Config.paper()` is the reference's birds setting and network (checked at the weights by
`ganlib.convert.load_stackganv2` and `tests/test_convert.py`); its docstring lists what
still differs from the reference code.
"""

import itertools
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.losses import colour_statistics  # noqa: F401  (lesson 03's reference)
from ganlib.layers import GLU, ConditioningAugmentation, Reparameterize, ReplicateConcat
from ganlib.models.base import PaperConfig
from ganlib.models.multiscale import MultiScaleGAN, downsample  # noqa: F401  (lesson 03 uses sgpp.downsample)
from ganlib.models.registry import PaperSpec, Variant, batch_for

CONDITIONINGS = ("text", "none")


@dataclass
class Config(PaperConfig):
    """Hyperparameters of StackGAN++ (the fields every paper has are `PaperConfig`'s).

    `paper()` holds the reference birds settings (hanzhanggit/StackGAN-v2,
    `cfg/birds_3stages.yml`); `paper(unconditional=True)` its unconditional ones
    (`cfg/*_3stages_color.yml`: no text, colour loss 50). `fast()` trains on a
    2-core CPU in a few minutes.
    """

    text_encoder: str = "char-cnn-rnn"  # the reference datasets' 1024-d embeddings (SynthBirds: its encoder)
    embed_dim: int = 1024
    image_size: int = 256       # the last branch's size; branch i is image_size / 2**(branches-1-i)
    branches: int = 3           # cfg.TREE.BRANCH_NUM: 64, 128, 256
    z_dim: int = 100            # cfg.GAN.Z_DIM
    ca_dim: int = 128           # N_g, the CA condition size (cfg.GAN.EMBEDDING_DIM)
    ngf: int = 64               # G width: channels of h_0 (F_0 starts at ngf * base/4 at 4x4)
    ndf: int = 64               # D width of the first convolution
    num_residual: int = 2       # residual blocks per F_i (cfg.GAN.R_NUM)
    batch_size: int = 24
    kl_weight: float = 2.0      # cfg.TRAIN.COEFF.KL
    uncond_weight: float = 1.0  # cfg.TRAIN.COEFF.UNCOND_LOSS (lambda_u)
    color_weight: float = 0.0   # cfg.TRAIN.COEFF.COLOR_LOSS (alpha): 0 for birds, 50 unconditional
    color_mean: float = 1.0     # lambda_1 of the colour-consistency loss
    color_cov: float = 5.0      # lambda_2 of the colour-consistency loss
    wrong: str | None = "image"  # the reference's wrong pair: a real image of another class, right text
    ema_decay: float = 0.999    # the reference's averaged G (avg_param_G)
    steps: int = 221400         # 600 epochs of CUB's 8855 training images at batch 24
    lr_decay_every: int = 0     # the reference keeps the learning rate constant
    sample_every: int = 2000

    @classmethod
    def paper(cls, unconditional=False):
        """The reference settings: birds (the char-CNN-RNN 1024-d text embeddings of the dataset,
        3 branches 64/128/256, ngf 64, ndf 64, z 100, CA 128, 2 residual blocks, batch 24,
        Adam 2e-4 (0.5, 0.999), KL 2, unconditional loss 1, colour loss 0, wrong images as
        mismatched pairs, the reference's initialisers (`weights_init`: orthogonal kernels,
        BatchNorm scale N(1, 0.02)), BatchNorm momentum 0.9 (PyTorch's 0.1) and epsilon 1e-5;
        on data without the embeddings (SynthBirds) `ganlib train` uses the shipped sentence
        encoder (256-d) and says so;
        `unconditional=True`: no text, colour loss 50 (the LSUN / ImageNet configs).

        Remaining differences from the reference code (`code/trainer.py`, `code/model.py`):
        * logits with a numerically stable cross-entropy instead of sigmoid + `BCELoss`
          (the same loss, computed without the sigmoid's round-off);
        * the 4th and 5th branches of its 512 / 1024 px configs (one residual block in
          branch 4) are not expressed by the single `num_residual`.
        As the reference, one generator pass per step feeds both the D and the G update
        (`self.fake_imgs` in `train_Dnet` and `train_Gnet`).
        """
        cfg = cls()
        return cfg.unconditional() if unconditional else cfg

    @classmethod
    def fast(cls, unconditional=False):
        """A classroom preset: two branches (32 and 64 px), narrow nets (ngf = ndf = 16: h_0 has
        16 channels at 32 px, D starts at 16), z 32, CA 64, lr 5e-4 and an EMA generator
        (0.995): 2400 steps. Its mismatched pairs are real images with a wrong caption
        (`wrong="caption"`), as lesson 03's figures were measured."""
        cfg = cls(text_encoder="synthbirds", embed_dim=256,
                  image_size=64, branches=2, z_dim=32, ca_dim=64, ngf=16, ndf=16, num_residual=2,
                  batch_size=24, lr=5e-4, ema_decay=0.995, steps=2400, eval_every=600, wrong="caption",
                  sample_every=300, checkpoint_every=600, eval_samples=500)
        return cfg.unconditional() if unconditional else cfg

    def unconditional(self):
        """The same config in the paper's unconditional setting: no text, colour loss 50
        (`uncond_weight` 0 as in those configs; D has a single, unconditional logit)."""
        return self.replace(conditioning="none", color_weight=50.0, uncond_weight=0.0, wrong=None)

    @property
    def branch_sizes(self):
        """Image sizes of the branches, smallest first, e.g. (64, 128, 256)."""
        return tuple(self.image_size // 2 ** (self.branches - 1 - i) for i in range(self.branches))

    def validate(self):
        """Raise ValueError naming the field when the config cannot build a tree."""
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS} for StackGAN++, "
                             f"got {self.conditioning!r}")
        if self.branches < 1:
            raise ValueError(f"branches must be >= 1, got {self.branches}")
        base = self.image_size / 2 ** (self.branches - 1)
        n = int(np.log2(base / 4)) if base >= 4 else -1
        if base != int(base) or base < 16 or 4 * 2 ** n != base:
            raise ValueError(f"image_size={self.image_size} with branches={self.branches} gives a first "
                             f"branch of {base:g} px; it must be 4 * 2**k and >= 16 (e.g. image_size 256 "
                             f"with 3 branches: 64/128/256).")
        if self.ngf % 2 ** (self.branches - 1):
            raise ValueError(f"ngf={self.ngf} must be divisible by 2**(branches-1)={2 ** (self.branches - 1)} "
                             "(each branch halves the width).")
        return self


# --------------------------------------------------------------------------- blocks
# Initialisers of the reference's `weights_init` (trainer.py): orthogonal kernels (gain 1) for every
# convolution and fully connected layer, BatchNorm scale ~ N(1, 0.02) and offset 0, linear biases 0.
# Each layer gets its own initialiser instance: one instance reused would repeat its seed.
_COUNTING_ONLY = False   # set by `param_counts`: orthogonal init of the paper nets is minutes of QR on a CPU


def _orthogonal():
    return "zeros" if _COUNTING_ONLY else keras.initializers.Orthogonal(gain=1.0)


def _torch_bias(fan_in):
    """PyTorch's default bias initialiser, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): `weights_init`
    leaves the biases of the logit convolutions as PyTorch made them."""
    bound = 1.0 / np.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _bn(name):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name,
                                     gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def _conv(filters, kernel_size, name, strides=1):
    """A convolution without bias, 'same' padding (PyTorch's padding 1 for 3x3 and for 4x4 stride 2)."""
    return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                         kernel_initializer=_orthogonal(), name=name)


def _logit_conv(x, name):
    """The 4x4 convolution of stride 4 from the 4x4 code to one logit, with bias."""
    conv = layers.Conv2D(1, 4, strides=4, kernel_initializer=_orthogonal(),
                         bias_initializer=_torch_bias(16 * x.shape[-1]), name=f"{name}_conv")
    return layers.Reshape((), name=f"{name}_logit")(conv(x))


def glu_conv(x, filters, name):
    """3x3 convolution to 2*filters, BatchNorm, GLU -> `filters` channels (reference Block3x3_relu)."""
    x = _conv(2 * filters, 3, f"{name}_conv")(x)
    return GLU(name=f"{name}_glu")(_bn(f"{name}_bn")(x))


def up_block(x, filters, name):
    """x2 nearest-neighbour upsampling then `glu_conv` (reference upBlock)."""
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    return glu_conv(x, filters, name)


def residual_block(x, name):
    """x + BN(conv3x3(GLU-conv3x3(x))) (reference ResBlock)."""
    channels = x.shape[-1]
    h = glu_conv(x, channels, f"{name}_a")
    h = _bn(f"{name}_b_bn")(_conv(channels, 3, f"{name}_b_conv")(h))
    return layers.Add(name=f"{name}_add")([x, h])


_NODE_IDS = itertools.count(1)


def tree_node(h, c, num_residual, name=None):
    r"""$F_i(h_{i-1}, c)$, one node of the tree (reference NEXT_STAGE_G): c replicated over
    $h_{i-1}$ and concatenated, a joining `glu_conv` to $h_{i-1}$'s width C, `num_residual`
    residual blocks, an `up_block`: twice the size, C/2 channels. `name` prefixes the layer
    names (`build_generator` gives "F1", "F2"...; None: a fresh "node<k>")."""
    name = name or f"node{next(_NODE_IDS)}"
    width = h.shape[-1]
    h = ReplicateConcat(name=f"{name}_join")([h, c])
    h = glu_conv(h, width, f"{name}_joint")
    for r in range(num_residual):
        h = residual_block(h, f"{name}_res{r}")
    return up_block(h, width // 2, f"{name}_up")


# --------------------------------------------------------------------------- networks
def build_generator(cfg, node_fn=None):
    """The tree G: inputs `[z, phi_t, eps]` (text) or `[z]` (unconditional);
    outputs `[s_0, ..., s_{m-1}, mu, logvar]` (text) or `[s_0, ..., s_{m-1}]`.

    The reference's G_NET layer for layer (`ganlib.convert` loads its weights). Two
    differences of layout only, undone by the converter: h_0 is reshaped channels-last
    (the reference views F_0's output as (C, 4, 4)), and `ReplicateConcat` puts c after
    h where the reference concatenates c first.

    `node_fn(h, c, num_residual) -> h` builds each $F_i$, i >= 1, with Keras layers
    (default `tree_node`); lesson 03 plugs the student's in.
    """
    cfg.validate()
    sizes = cfg.branch_sizes
    z = keras.Input((cfg.z_dim,), name="z")
    if cfg.conditioning == "text":
        phi = keras.Input((cfg.embed_dim,), name="phi_t")
        eps = keras.Input((cfg.ca_dim,), name="eps")
        _, mu, logvar = ConditioningAugmentation(cfg.ca_dim, activation="glu", kernel_initializer=_orthogonal(),
                                                 name="F_ca")(phi)
        c = Reparameterize(name="c_hat")([mu, logvar, eps])
        inputs = [z, phi, eps]
        h = layers.Concatenate(name="F0_in")([c, z])
    else:
        inputs, c, h = [z], z, z   # the reference feeds z as the condition of every F_i
    # F_0: FC -> 4x4 -> upsampling to the first branch's size, halving the width each time.
    ups = int(np.log2(sizes[0] // 4))
    width = cfg.ngf * 2 ** ups
    h = layers.Dense(4 * 4 * width * 2, use_bias=False, kernel_initializer=_orthogonal(), name="F0_fc")(h)
    h = GLU(name="F0_glu")(_bn("F0_fc_bn")(h))
    h = layers.Reshape((4, 4, width), name="F0_reshape")(h)
    for k in range(ups):
        width //= 2
        h = up_block(h, width, f"F0_up{k}")
    images = []
    for i in range(cfg.branches):
        if i > 0:  # F_i(h_{i-1}, c): join c, residual blocks, upsample
            size = h.shape[1]
            h = node_fn(h, c, cfg.num_residual) if node_fn else tree_node(h, c, cfg.num_residual, f"F{i}")
            width //= 2
            if tuple(h.shape[1:]) != (2 * size, 2 * size, width):
                raise ValueError(f"node_fn: F_{i} must give (B, {2 * size}, {2 * size}, {width}) "
                                 f"(twice the size, half the channels), got {tuple(h.shape)}")
        image = _conv(3, 3, f"G{i}_conv")(h)
        images.append(layers.Activation("tanh", name=f"image_{sizes[i]}")(image))
    outputs = images + ([mu, logvar] if cfg.conditioning == "text" else [])
    return keras.Model(inputs, outputs, name="G")


def _leaky(x, name):
    return layers.LeakyReLU(0.2, name=name)(x)


def build_discriminator(cfg, size):
    """D_i for `size` x `size` images: strided 4x4 convolutions to a 4x4 code; logits
    `[conditional, unconditional]` (text: input `[image, c]`) or one logit (unconditional).

    At 64, 128 and 256 px the reference's D_NET64/128/256 layer for layer (and its
    D_NET512/1024 beyond); the logits are its outputs before the sigmoid.
    """
    image = keras.Input((size, size, 3), name="image")
    downs = int(np.log2(size // 4))
    h = _leaky(_conv(cfg.ndf, 4, "down0", strides=2)(image), "down0_act")
    width = cfg.ndf
    for k in range(1, downs):
        width = cfg.ndf * 2 ** k
        h = _conv(width, 4, f"down{k}", strides=2)(h)
        h = _leaky(_bn(f"down{k}_bn")(h), f"down{k}_act")
    k = 0
    while width > 8 * cfg.ndf:  # 128 px and up: back to 8 ndf with 3x3 blocks (reference D_NET128/256)
        width //= 2
        h = _conv(width, 3, f"reduce{k}")(h)
        h = _leaky(_bn(f"reduce{k}_bn")(h), f"reduce{k}_act")
        k += 1
    uncond = _logit_conv(h, "uncond")
    if cfg.conditioning != "text":
        return keras.Model(image, uncond, name=f"D_{size}")
    c = keras.Input((cfg.ca_dim,), name="c")
    hc = ReplicateConcat(name="join")([h, c])
    hc = _conv(width, 3, "joint_conv")(hc)
    hc = _leaky(_bn("joint_bn")(hc), "joint_act")
    cond = _logit_conv(hc, "cond")
    return keras.Model([image, c], [cond, uncond], name=f"D_{size}")


def build_discriminators(cfg):
    cfg.validate()
    return [build_discriminator(cfg, s) for s in cfg.branch_sizes]


def param_counts(config=None):
    """Trainable parameters of each network of a config (default `Config.paper()`), building them:
    `{"G": ..., "F_ca": ..., "D_64": ..., "D_128": ..., "D_256": ...}` ("F_ca" is part of "G").

    Trainable weights only (BatchNorm's moving statistics are not counted), as
    PyTorch's `parameters()` counts the reference's networks. The networks are built
    with constant initialisers (the counts do not depend on the values), in seconds.
    """
    global _COUNTING_ONLY
    cfg = config or Config.paper()

    def trainable(network):
        return int(sum(np.prod(w.shape) for w in network.trainable_weights))

    _COUNTING_ONLY = True
    try:
        g = build_generator(cfg)
        counts = {"G": trainable(g)}
        if cfg.conditioning == "text":
            counts["F_ca"] = trainable(g.get_layer("F_ca"))
        for d in build_discriminators(cfg):
            counts[d.name] = trainable(d)
    finally:
        _COUNTING_ONLY = False
    return counts


# --------------------------------------------------------------------------- losses
def joint_d_loss(real_cond, real_uncond, wrong_cond, wrong_uncond, fake_cond, fake_uncond, uncond_weight=1.0):
    r"""A branch discriminator's joint conditional + unconditional loss, as the reference trains it.

    With $\lambda_u > 0$ (the paper's joint loss plus the reference's wrong pairs):

    $$L_D = \mathrm{bce}(r_c, 1) + \mathrm{bce}(w_c, 0) + \mathrm{bce}(f_c, 0)
    + \lambda_u\left[\mathrm{bce}(r_u, 1) + \mathrm{bce}(w_u, 1) + \mathrm{bce}(f_u, 0)\right]$$

    ($w_u$: the wrong pair's image is real). With $\lambda_u = 0$ the reference
    falls back to GAN-CLS, $\mathrm{bce}(r_c, 1) + \frac12[\mathrm{bce}(w_c, 0) + \mathrm{bce}(f_c, 0)]$.
    Each bce is averaged over the batch. Logits in; `uncond_weight` a Python number.
    """
    if not uncond_weight:
        return losses.matching_aware_d_loss(real_cond, wrong_cond, fake_cond)
    cond = losses.bce(real_cond, 1.0) + losses.bce(wrong_cond, 0.0) + losses.bce(fake_cond, 0.0)
    uncond = losses.bce(real_uncond, 1.0) + losses.bce(wrong_uncond, 1.0) + losses.bce(fake_uncond, 0.0)
    return cond + uncond_weight * uncond


def joint_g_loss(fake_cond, fake_uncond, uncond_weight=1.0):
    r"""A branch's generator loss (the paper's joint G loss):
    $\mathrm{bce}(f_c, 1) + \lambda_u\,\mathrm{bce}(f_u, 1)$."""
    loss = losses.bce(fake_cond, 1.0)
    if uncond_weight:
        loss = loss + uncond_weight * losses.bce(fake_uncond, 1.0)
    return loss


# --------------------------------------------------------------------------- the model
@keras.saving.register_keras_serializable("ganlib")
class StackGANpp(MultiScaleGAN):
    """StackGAN++: a tree generator with one discriminator per branch (Zhang et al. 2018).

    Args:
        config: a `Config` (default `Config.paper()`); `conditioning="none"` is the
            unconditional setting (no text).
        d_loss_fn: `(real_cond, real_uncond, wrong_cond, wrong_uncond, fake_cond,
            fake_uncond, uncond_weight) -> scalar`, each branch's D loss (default
            `joint_d_loss`); lesson 03 plugs the student's function in here.
        g_loss_fn: `(fake_cond, fake_uncond, uncond_weight) -> scalar`, each
            branch's G loss (default `joint_g_loss`).
        color_fn: `(x_i, x_{i-1}, lambda_mean, lambda_cov) -> scalar` (default
            `ganlib.losses.color_consistency`), added to G's loss with weight
            `config.color_weight`; `x_{i-1}` is held constant.
        pyramid_fn: `(images, size) -> images`, the real images of the smaller
            branches when the batch has no `image_<size>` (default area `downsample`).
        node_fn: `(h, c, num_residual) -> h`, builds each tree node $F_i$ (i >= 1) with
            Keras layers (default `tree_node`).

    Batches hold `image` at `config.image_size` (the last branch), `image_<s>` for
    the smaller branches, `tokens` and the mismatched pair (`wrong_image` or
    `wrong_tokens`), as `SPEC.batch(config)` asks the pipeline. `generator`
    (outputs every branch, then mu and logvar) and `discriminators` (one per branch,
    smallest first) are Keras models.
    """

    config_class = Config

    def __init__(self, config=None, d_loss_fn=None, g_loss_fn=None, color_fn=None, pyramid_fn=None, node_fn=None,
                 **kwargs):
        cfg = self.resolve_config(config).validate()
        super().__init__(cfg, build_generator(cfg, node_fn), build_discriminators(cfg), pyramid_fn=pyramid_fn,
                         **kwargs)
        self.d_loss_fn = d_loss_fn or joint_d_loss
        self.g_loss_fn = g_loss_fn or joint_g_loss
        self.color_fn = color_fn or losses.color_consistency

    def noise_shapes(self, n, training=False):
        """z, and the CA noise eps with text."""
        shapes = {"z": (n, self.config.z_dim)}
        if self.config.conditioning == "text":
            shapes["eps"] = (n, self.config.ca_dim)
        return shapes

    # ------------------------------------------------------------ training
    def generator_outputs(self, batch, noise, training=False):
        m = self.config.branches
        if self.config.conditioning != "text":
            return {"images": self.run_tree([noise["z"]], training)}
        e = self.condition.from_batch(self, batch)
        outs = self.generator([noise["z"], e, noise["eps"]], training=training)
        # D's condition is the CA mean mu (the reference's `mu.detach()` in the D update).
        fakes = {"images": list(outs[:m]), "c": outs[m], "mu": outs[m], "logvar": outs[m + 1]}
        if "wrong_image" not in batch:   # the mismatched caption's CA mean
            wrong = self.condition.from_batch(self, batch, wrong=True)
            _, fakes["c_wrong"], _ = self.generator.get_layer("F_ca")(wrong)
        return fakes

    def run_tree(self, inputs, training):
        images = self.generator(inputs, training=training)
        return list(images) if isinstance(images, (list, tuple)) else [images]

    def branch_d_loss(self, real, wrong, fake):
        """`joint_d_loss` with text; without, bce(r, 1) + bce(f, 0) on the single logit."""
        if real[0] is None:
            return losses.bce(real[1], 1.0) + losses.bce(fake[1], 0.0)
        return self.d_loss_fn(*real, *wrong, *fake, self.config.uncond_weight)

    def branch_g_loss(self, fake):
        if fake[0] is None:
            return losses.generator_loss(fake[1])
        return self.g_loss_fn(*fake, self.config.uncond_weight)

    def extra_generator_loss(self, batch, fakes):
        r"""$\alpha \sum_{i \ge 1} L_{C_i}$ (the lower branch held constant) and $\lambda_{KL} D_{KL}$ with text."""
        cfg, total, logs = self.config, 0.0, {}
        images = fakes["images"]
        if cfg.branches > 1:
            color = 0.0
            for lo, hi in zip(images[:-1], images[1:]):
                color = color + self.color_fn(hi, ops.stop_gradient(lo), cfg.color_mean, cfg.color_cov)
            logs["color"] = ops.stop_gradient(color)
            if cfg.color_weight:
                total = total + cfg.color_weight * color
        if "mu" in fakes:
            kl = losses.kl_divergence(fakes["mu"], fakes["logvar"])
            logs["kl"] = kl
            if cfg.kl_weight:
                total = total + cfg.kl_weight * kl
        return total, logs

    # ------------------------------------------------------------ inference
    def generate_scales_from(self, condition, noise):
        if self.config.conditioning != "text":
            return self.run_generator([noise["z"]])
        return self.run_generator([noise["z"], condition, noise["eps"]])


def build(config=None, previous=None):
    """The model `ganlib train stackganpp` trains (`config.conditioning="none"`: unconditional)."""
    return StackGANpp(config or Config.fast())


SPEC = PaperSpec(
    name="stackganpp",
    title="StackGAN++ (Zhang et al. 2018)",
    config=Config,
    build=build,
    batch=lambda cfg: batch_for(cfg, cfg.image_size, pyramid=cfg.branch_sizes[:-1]),
    conditions=CONDITIONINGS,
    variants={"unconditional": Variant("no text, colour-consistency weight 50 (the paper's unconditional "
                                       "setting)", lambda cfg: cfg.unconditional())},
)
