r"""pix2pixHD (Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation
with Conditional GANs", CVPR), reference code NVIDIA/pix2pixHD.

The one paper of the course that maps a **semantic label map** $s$, not text, to a photo
$x$. The condition is the label map one-hot encoded ($label\_nc = 35$ channels, the
Cityscapes label ids), the **instance boundary map** $E(s)$ as one more channel (a pixel is
1 where its instance id differs from a 4-neighbour's, so two adjacent cars are told apart),
and optionally the **instance-wise features** of an encoder $E$ (`feat_num` = 3 channels).

**Coarse-to-fine generator** (paper, section *Coarse-to-fine generator*). The global
generator $G_1$ is a convolutional front end $G_1^{(F)}$ (a 7x7 convolution and 4
stride-2 downsamplings), 9 residual blocks $G_1^{(R)}$ and a transposed-convolution back
end $G_1^{(B)}$, with instance normalisation and reflection padding. The local enhancer
$G_2$ works at twice the resolution: its front end $G_2^{(F)}$ (7x7 conv, one
downsampling) gives a map of $G_1$'s last feature map's size, the two are *summed*, and
3 residual blocks $G_2^{(R)}$ and a back end $G_2^{(B)}$ produce the image. $G_1$ sees
the input downsampled by a 3x3 average pool. Training is coarse to fine: $G_1$ alone
at half resolution, then $G_2$ with $G_1$ frozen (`niter_fix_global` epochs), then both
(`Config.stage_plan`, `SPEC.stages`).

**Multi-scale discriminators** (section *Multi-scale discriminators*): `num_D` PatchGANs
$D_1, D_2, \dots$ of identical structure (n_layers_D = 3), $D_k$ judging the pair
(label input, image) average-pooled $k-1$ times: $D_1$ sees the finest scale, the
coarsest has the widest view. Every $D_k$ exposes its intermediate feature maps.

**Objective** (section *Improved adversarial loss*), LSGAN (Mao et al.) for $\mathcal{L}_{GAN}$:

$$\min_G \Big(\big(\max_{D_1, \dots} \sum_k \mathcal{L}_{GAN}(G, D_k)\big)
 + \lambda \sum_k \mathcal{L}_{FM}(G, D_k) + \lambda\,\mathcal{L}_{VGG}\Big),\qquad \lambda = 10$$

with the discriminator feature matching loss $\mathcal{L}_{FM}$
(`ganlib.losses.feature_matching`) and the perceptual loss of VGG19 features
$\mathcal{L}_{VGG} = \sum_i w_i\, \mathrm{mean}|F^{(i)}(x) - F^{(i)}(G(s))|$, $F^{(i)}$ at
relu1_1 .. relu5_1 with $w_i = 1/32, 1/16, 1/8, 1/4, 1$ (`vgg_loss`).

**Instance-level features** (section *Learning an instance-level feature embedding*):
an encoder-decoder $E$ maps the real image to `feat_num` channels, averaged over every
instance (`instance_average_pool`), and fed to G beside the label map; trained jointly
with G. After training, the features of every training instance are clustered per class
(k-means, `n_clusters` = 10, `cluster_features`); at inference a cluster centre is drawn
for each instance (`sample_features`), and resampling one instance's centre edits its look.

`Config.paper()` builds the reference's networks (label2city, `scripts/train_1024p_24G.sh`
after `train_512p.sh`); `param_counts()` equals the reference modules' counts (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses
from ganlib.layers import ReflectionPadding2D
from ganlib.models.base import PaperConfig, PaperGAN, to_numpy_images
from ganlib.models.registry import BatchSpec, PaperSpec, Variant

#: Cityscapes instance ids are label_id * 1000 + k (label ids 0..33); every id is below this
MAX_INSTANCE_ID = 34000
VGG_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


@dataclass
class Config(PaperConfig):
    """Hyperparameters of pix2pixHD (the reference's `options/*.py` names in comments).

    `paper()` is the reference's label2city setting; `fast()` a 2-core classroom preset.
    The learning rate is constant for the first `steps - decay_steps` steps, then decays
    linearly to 0 (niter, niter_decay epochs: `for_dataset` converts them to steps).
    """

    conditioning: str = "label_map"
    image_size: tuple = (1024, 2048)   # (H, W) of the last stage's images
    label_nc: int = 35              # --label_nc: one-hot channels of the label map
    instance_map: bool = True       # not --no_instance: the instance boundary channel
    instance_feat: bool = False     # --instance_feat: the encoder E's features as input
    feat_num: int = 3               # --feat_num
    nef: int = 16                   # --nef, E's width
    n_downsample_E: int = 4         # --n_downsample_E
    n_clusters: int = 10            # --n_clusters (k-means per class)
    netG: str = "local"             # --netG: "global" (G_1), "local" (G_1 + G_2), "unet" (pix2pix)
    ngf: int = 32                   # --ngf: G_2's width (G_1 has ngf * 2**n_local_enhancers)
    n_downsample_global: int = 4    # --n_downsample_global
    n_blocks_global: int = 9        # --n_blocks_global
    n_blocks_local: int = 3         # --n_blocks_local
    n_local_enhancers: int = 1      # --n_local_enhancers
    niter_fix_global: int = 10      # --niter_fix_global: epochs (fast preset: steps) of G_2 with G_1 frozen
    freeze_global: bool = False     # set by the stage plan for the G_1-frozen stage
    ndf: int = 64                   # --ndf
    n_layers_D: int = 3             # --n_layers_D
    num_D: int = 3                  # --num_D
    lambda_feat: float = 10.0       # --lambda_feat (feature matching and VGG)
    feature_matching: bool = True   # not --no_ganFeat_loss
    vgg_loss: bool = True           # not --no_vgg_loss
    vgg_weights: str | None = "imagenet"   # Keras' VGG19 ImageNet file (never downloaded), a path, or None
    gan_mode: str = "lsgan"         # "lsgan" (the reference default) or "vanilla" (--no_lsgan; pix2pix)
    l1_weight: float = 0.0          # pix2pix's L1 reconstruction term (0 in pix2pixHD)
    batch_size: int = 1             # --batchSize
    niter: int = 50                 # --niter: epochs at the initial learning rate
    niter_decay: int = 50           # --niter_decay: epochs of linear decay to 0
    global_niter: int = 100         # the global stage's (train_512p.sh) niter
    global_niter_decay: int = 100
    global_num_D: int = 2           # train_512p.sh: num_D 2
    steps: int = 0                  # set by for_dataset (or given: fast preset)
    decay_steps: int = 0
    decay_every: int = 1            # steps per epoch (for_dataset): the decay's stairs, as the reference's
    sample_every: int = 5000
    eval_every: int = 10000
    checkpoint_every: int = 10000
    eval_samples: int = 500

    @classmethod
    def paper(cls, netG="local"):
        """The reference label2city settings. `netG="local"`: 2048x1024, `scripts/train_1024p_24G.sh`
        (G_2 ngf 32 on G_1 ngf 64, num_D 3, 50 + 50 epochs, G_1 frozen for 10), trained after its
        global stage (`train_512p.sh`: 1024x512, ngf 64, num_D 2, 100 + 100 epochs); `netG="global"`:
        that global stage alone. label_nc 35 + the instance boundary map, LSGAN, feature
        matching and VGG losses x 10, ndf 64, n_layers_D 3, Adam 2e-4 (0.5, 0.999), batch 1;
        `replace(instance_feat=True)`: the feature encoder (nef 16, feat_num 3, 10 clusters).

        Remaining differences from the reference code (`train.py`, `models/pix2pixHD_model.py`):
        * the update order: the reference computes every loss from one forward pass, then
          steps G and D; here D is updated first and G is scored by the updated D (ganlib's
          `AdversarialModel`, as the other papers' references), so the feature-matching
          targets come from the updated D;
        * each stage starts fresh Adam states for G *and* D (the reference renews only G's
          optimizer when G_1 is unfrozen); the stage's D weights are carried over;
        * the VGG19 is Keras' (same ImageNet weights' architecture, Keras' file), fed the images
          in [-1, 1] as the reference feeds them; no VGG loss without the weights file;
        * random crops / flips of the data loader are the dataset pipeline's business;
        * weights initialised N(0, 0.02) (the reference's `weights_init`), biases 0 (PyTorch:
          uniform).
        """
        if netG == "global":
            return cls().global_stage()
        if netG != "local":
            raise ValueError(f"netG must be 'global' or 'local', got {netG!r}")
        return cls()

    @classmethod
    def fast(cls):
        """A classroom preset: 128x64 global stage, then 256x128 with the local enhancer;
        G_2 ngf 8 (G_1 16), 3 downsamplings, 3 + 2 residual blocks, num_D 2 (global 2) with
        ndf 16, no VGG loss (no ImageNet weights offline), batch 4, lr 1e-3."""
        return cls(image_size=(128, 256), ngf=8, n_downsample_global=3, n_blocks_global=3, n_blocks_local=2,
                   ndf=16, num_D=2, global_num_D=2, vgg_loss=False, batch_size=4, lr=1e-3, nef=8,
                   n_downsample_E=2, niter=0, niter_decay=0, global_niter=0, global_niter_decay=0,
                   steps=300, decay_steps=100, niter_fix_global=100, sample_every=100, eval_every=150,
                   checkpoint_every=150, eval_samples=64)

    # ------------------------------------------------------------------ stages
    def global_stage(self):
        """The global generator G_1 alone at half the resolution (its own niter / num_D)."""
        h, w = self.image_size
        k = 2 ** self.n_local_enhancers
        return self.replace(netG="global", ngf=self.ngf * k, image_size=(h // k, w // k), num_D=self.global_num_D,
                            niter=self.global_niter, niter_decay=self.global_niter_decay,
                            niter_fix_global=0)._epochs()

    def _epochs(self):
        """`steps` and `decay_steps` from niter / niter_decay epochs of `decay_every` steps (when
        counted in epochs; a config counted in steps is returned as it is)."""
        if not (self.niter or self.niter_decay):
            return self
        return self.replace(steps=(self.niter + self.niter_decay) * self.decay_every,
                            decay_steps=self.niter_decay * self.decay_every)

    def stage_plan(self):
        """`[(folder, config)]`: "global", then "local_fixed" (G_1 frozen for niter_fix_global
        epochs, constant learning rate) and "local" (everything, the remaining epochs)."""
        if self.netG != "local":
            return [("", self)]
        plan = [("global", self.global_stage())]
        fix = self.niter_fix_global
        if fix and (self.niter or self.niter_decay):
            if fix > self.niter:
                raise ValueError(f"niter_fix_global={fix} must be <= niter={self.niter} (G_1 is frozen "
                                 "while the learning rate is constant).")
            plan.append(("local_fixed", self.replace(freeze_global=True, niter=fix, niter_decay=0)._epochs()))
            plan.append(("local", self.replace(niter=self.niter - fix)._epochs()))
        elif fix:   # counted in steps (fast preset): niter_fix_global steps
            plan.append(("local_fixed", self.replace(freeze_global=True, steps=fix, decay_steps=0)))
            plan.append(("local", self))
        else:
            plan.append(("local", self))
        return plan

    def for_dataset(self, num_train_images):
        """Steps from epochs: (niter + niter_decay) epochs, the last niter_decay decaying."""
        if not (self.niter or self.niter_decay):
            return self
        return self.replace(decay_every=max(1, int(num_train_images) // self.batch_size))._epochs()

    @property
    def input_nc(self):
        """Channels of G's input: one-hot labels, the boundary map, the instance features."""
        return self.label_nc + int(self.instance_map) + (self.feat_num if self.instance_feat else 0)

    @property
    def label_channels(self):
        """Channels of the label input that D sees with the image (no features)."""
        return self.label_nc + int(self.instance_map)

    def validate(self):
        if self.conditioning != "label_map":
            raise ValueError(f"pix2pixHD is conditioned on label maps: conditioning must be 'label_map', "
                             f"got {self.conditioning!r}")
        if self.netG not in ("global", "local", "unet"):
            raise ValueError(f"netG must be 'global', 'local' or 'unet', got {self.netG!r}")
        h, w = self.image_size
        factor = 2 ** (self.n_downsample_global + (self.n_local_enhancers if self.netG == "local" else 0))
        if h % factor or w % factor:
            raise ValueError(f"image_size={self.image_size}: both sides must be multiples of {factor} "
                             f"(n_downsample_global={self.n_downsample_global}, netG={self.netG!r}).")
        if self.gan_mode not in ("lsgan", "vanilla"):
            raise ValueError(f"gan_mode must be 'lsgan' or 'vanilla', got {self.gan_mode!r}")
        return self


# --------------------------------------------------------------------------- blocks
_COUNTING_ONLY = False   # set by `param_counts`: constant initialisers, the 182M weights without random draws


def _init():
    return "zeros" if _COUNTING_ONLY else keras.initializers.RandomNormal(0.0, 0.02)   # weights_init


def _norm(name):
    """InstanceNorm2d(affine=False): GroupNormalization with one group per channel."""
    return layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5, name=name)


def conv(x, filters, kernel, name, stride=1, pad=0, reflect=False):
    """A PyTorch-style convolution: `pad` pixels (zeros, or reflected) on every side, then 'valid'."""
    if pad:
        x = ReflectionPadding2D(pad, name=f"{name}_pad")(x) if reflect else layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, kernel_initializer=_init(), name=name)(x)


def conv_norm_relu(x, filters, kernel, name, stride=1, pad=0, reflect=False):
    return layers.ReLU(name=f"{name}_relu")(_norm(f"{name}_norm")(conv(x, filters, kernel, name, stride, pad, reflect)))


def up(x, filters, name):
    """ConvTranspose2d(k3, s2, padding 1, output_padding 1): 'valid' (2n + 1 pixels), first row and
    column cropped, then instance norm and ReLU."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, kernel_initializer=_init(), name=name)(x)
    x = layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(x)
    return layers.ReLU(name=f"{name}_relu")(_norm(f"{name}_norm")(x))


def residual_block(x, name):
    """x + [reflect-pad, conv3x3, IN, ReLU, reflect-pad, conv3x3, IN](x) (the reference's ResnetBlock)."""
    dim = x.shape[-1]
    h = conv_norm_relu(x, dim, 3, f"{name}_a", pad=1, reflect=True)
    h = _norm(f"{name}_b_norm")(conv(h, dim, 3, f"{name}_b", pad=1, reflect=True))
    return layers.Add(name=f"{name}_add")([x, h])


def to_image(x, name):
    """Reflect-pad 3, 7x7 convolution to RGB, tanh."""
    return layers.Activation("tanh", name=f"{name}_tanh")(conv(x, 3, 7, name, pad=3, reflect=True))


def downsample(x):
    r"""The 3x3 average pool of stride 2 of the reference (padding 1, `count_include_pad=False`):
    each output pixel is the mean of the input pixels its window covers (4, 6 or 9), the
    image pyramid of the multi-scale discriminators and of the local enhancer's G_1 input."""
    ones = ops.ones_like(x[..., :1])
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = ops.average_pool(ops.pad(x, pad), 3, strides=2, padding="valid")
    count = ops.average_pool(ops.pad(ones, pad), 3, strides=2, padding="valid")
    return total / count


@keras.saving.register_keras_serializable("ganlib")
class Downsample(layers.Layer):
    """`downsample` as a layer (inside the local enhancer's functional model)."""

    def call(self, x):
        return downsample(x)

    def compute_output_shape(self, s):
        half = lambda n: None if n is None else (n + 1) // 2  # noqa: E731
        return (s[0], half(s[1]), half(s[2]), s[3])


def global_trunk(x, cfg, ngf, prefix="G1"):
    """G_1^(F), G_1^(R) and G_1^(B) up to its last feature map (ngf channels, input size)."""
    x = conv_norm_relu(x, ngf, 7, f"{prefix}_front", pad=3, reflect=True)
    for i in range(cfg.n_downsample_global):
        x = conv_norm_relu(x, ngf * 2 ** (i + 1), 3, f"{prefix}_down{i}", stride=2, pad=1)
    for i in range(cfg.n_blocks_global):
        x = residual_block(x, f"{prefix}_res{i}")
    for i in range(cfg.n_downsample_global):
        x = up(x, ngf * 2 ** (cfg.n_downsample_global - i - 1), f"{prefix}_up{i}")
    return x


def build_generator(cfg):
    """G for `cfg.netG`: "global" (G_1), "local" (G_1 and the local enhancers G_2, ...) or "unet"."""
    inputs = keras.Input((None, None, cfg.input_nc), name="label_input")
    if cfg.netG == "unet":
        return build_unet(cfg, inputs)
    if cfg.netG == "global":
        return keras.Model(inputs, to_image(global_trunk(inputs, cfg, cfg.ngf), "G1_back"), name="G")
    n = cfg.n_local_enhancers
    pyramid = [inputs]
    for _ in range(n):
        pyramid.append(Downsample(name=f"input_down{len(pyramid)}")(pyramid[-1]))
    h = global_trunk(pyramid[-1], cfg, cfg.ngf * 2 ** n)
    for k in range(1, n + 1):
        width = cfg.ngf * 2 ** (n - k)
        p = f"G{k + 1}"
        f = conv_norm_relu(pyramid[n - k], width, 7, f"{p}_front", pad=3, reflect=True)
        f = conv_norm_relu(f, width * 2, 3, f"{p}_down", stride=2, pad=1)
        h = layers.Add(name=f"{p}_sum")([f, h])   # G_1's last feature map summed in
        for i in range(cfg.n_blocks_local):
            h = residual_block(h, f"{p}_res{i}")
        h = up(h, width, f"{p}_up")
    model = keras.Model(inputs, to_image(h, f"G{n + 1}_back"), name="G")
    if cfg.freeze_global:
        for layer in model.layers:
            if layer.name.startswith("G1_"):
                layer.trainable = False
    return model


def build_unet(cfg, inputs):
    """pix2pix's U-Net (Isola et al. 2017), the baseline: 4x4 stride-2 convolutions down
    (LeakyReLU 0.2, instance norm), transposed convolutions up (ReLU), each up step
    concatenated with the mirror down step, tanh. Depth: n_downsample_global + 1 steps."""
    depth = cfg.n_downsample_global + 1
    skips, x = [], inputs
    for i in range(depth):
        x = layers.LeakyReLU(0.2, name=f"U_down{i}_act")(x) if i else x
        x = conv(x, min(cfg.ngf * 2 ** (i + 1), 512), 4, f"U_down{i}", stride=2, pad=1)
        if 0 < i < depth - 1:
            x = _norm(f"U_down{i}_norm")(x)
        skips.append(x)
    for i in reversed(range(depth)):
        if i < depth - 1:
            x = layers.Concatenate(name=f"U_skip{i}")([x, skips[i]])
        x = layers.ReLU(name=f"U_up{i}_act")(x)
        filters = 3 if i == 0 else min(cfg.ngf * 2 ** i, 512)
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=_init(),
                                   name=f"U_up{i}")(x)
        if i:
            x = _norm(f"U_up{i}_norm")(x)
    return keras.Model(inputs, layers.Activation("tanh", name="U_tanh")(x), name="G")


def build_discriminator(cfg, k):
    """PatchGAN D_k (the reference's NLayerDiscriminator, n_layers_D + 2 blocks): 4x4
    convolutions (padding 2) of stride 2 (n_layers_D times, ndf doubling to at most 512), one
    of stride 1, and a 1-channel stride-1 prediction map; instance norm after all but the
    first and last, LeakyReLU 0.2. Outputs: every block's output, the prediction last."""
    inputs = keras.Input((None, None, cfg.label_channels + 3), name="pair")
    x, outputs, nf = inputs, [], cfg.ndf
    for n in range(cfg.n_layers_D + 1):
        stride = 2 if n < cfg.n_layers_D else 1
        x = conv(x, nf, 4, f"D{k}_conv{n}", stride=stride, pad=2)
        if n:
            x = _norm(f"D{k}_norm{n}")(x)
        x = layers.LeakyReLU(0.2, name=f"D{k}_act{n}")(x)
        outputs.append(x)
        nf = min(nf * 2, 512)
    outputs.append(conv(x, 1, 4, f"D{k}_pred", pad=2))
    return keras.Model(inputs, outputs, name=f"D_{k}")


def build_encoder(cfg):
    """The feature encoder E (the reference's Encoder, before its instance-wise pooling):
    7x7 conv, n_downsample_E downsamplings, as many transposed convolutions, 7x7 conv to
    feat_num channels, tanh."""
    inputs = keras.Input((None, None, 3), name="image")
    x = conv_norm_relu(inputs, cfg.nef, 7, "E_front", pad=3, reflect=True)
    for i in range(cfg.n_downsample_E):
        x = conv_norm_relu(x, cfg.nef * 2 ** (i + 1), 3, f"E_down{i}", stride=2, pad=1)
    for i in range(cfg.n_downsample_E):
        x = up(x, cfg.nef * 2 ** (cfg.n_downsample_E - i - 1), f"E_up{i}")
    x = layers.Activation("tanh", name="E_back_tanh")(conv(x, cfg.feat_num, 7, "E_back", pad=3, reflect=True))
    return keras.Model(inputs, x, name="E")


def param_counts(config=None):
    """Trainable parameters of each network of a config (default `Config.paper()`), built with
    constant initialisers by the functions that build the model: `{"G_global", "G", "D_1", ...,
    "E"}` ("G_global": the global stage's G_1; "E" with instance_feat only)."""
    global _COUNTING_ONLY
    cfg = (config or Config.paper()).validate()
    count = lambda net: int(sum(np.prod(w.shape) for w in net.trainable_weights))  # noqa: E731
    _COUNTING_ONLY = True
    try:
        counts = {}
        if cfg.netG == "local":
            counts["G_global"] = count(build_generator(cfg.global_stage()))
        counts["G"] = count(build_generator(cfg))
        for k in range(1, cfg.num_D + 1):
            counts[f"D_{k}"] = count(build_discriminator(cfg, k))
        if cfg.instance_feat:
            counts["E"] = count(build_encoder(cfg))
    finally:
        _COUNTING_ONLY = False
    return counts


# --------------------------------------------------------------------------- the paper's operations
def one_hot_labels(label, label_nc):
    """(B, H, W) label ids -> (B, H, W, label_nc) one-hot, float32 (the reference's `scatter_`)."""
    return ops.one_hot(ops.cast(label, "int32"), label_nc, dtype="float32")


def instance_edges(instance):
    r"""The instance boundary map (paper, section *Using instance maps*): 1 where a pixel's
    instance id differs from one of its 4 neighbours' (both pixels of the pair marked), else 0.
    (B, H, W) ids -> (B, H, W, 1) float32."""
    t = ops.cast(instance, "int32")
    dx = ops.cast(ops.not_equal(t[:, :, 1:], t[:, :, :-1]), "float32")   # between columns j-1, j
    dy = ops.cast(ops.not_equal(t[:, 1:, :], t[:, :-1, :]), "float32")   # between rows i-1, i
    zc, zr = ops.zeros_like(dx[:, :, :1]), ops.zeros_like(dy[:, :1, :])
    edge = ops.maximum(ops.concatenate([zc, dx], 2), ops.concatenate([dx, zc], 2))
    edge = ops.maximum(edge, ops.maximum(ops.concatenate([zr, dy], 1), ops.concatenate([dy, zr], 1)))
    return edge[..., None]


def image_pyramid(x, num_scales):
    """[x, downsample(x), downsample(downsample(x)), ...]: num_scales maps, finest first (D_1's first)."""
    pyramid = [x]
    for _ in range(num_scales - 1):
        pyramid.append(downsample(pyramid[-1]))
    return pyramid


def instance_average_pool(features, instance):
    r"""Instance-wise average pooling (section *Learning an instance-level feature embedding*):
    every pixel gets the mean of `features` over the pixels of its instance (same id, same image).
    features (B, H, W, C), instance (B, H, W) ids in [0, MAX_INSTANCE_ID)."""
    shape = ops.shape(features)
    b = ops.shape(features)[0]
    ids = ops.cast(instance, "int32") + ops.arange(b, dtype="int32")[:, None, None] * MAX_INSTANCE_ID
    ids = ops.reshape(ids, (-1,))
    flat = ops.reshape(features, (-1, shape[-1]))
    segments = b * MAX_INSTANCE_ID
    total = ops.segment_sum(flat, ids, num_segments=segments)
    count = ops.segment_sum(ops.ones_like(flat[:, :1]), ids, num_segments=segments)
    mean = total / ops.maximum(count, 1.0)
    return ops.reshape(ops.take(mean, ids, axis=0), shape)


def gan_loss(prediction, real, mode="lsgan"):
    """LSGAN (mean squared error to 1 / 0) or vanilla (sigmoid cross-entropy on logits)."""
    target = 1.0 if real else 0.0
    return losses.least_squares(prediction, target) if mode == "lsgan" else losses.bce(prediction, target)


def vgg_loss(real_features, fake_features, weights=VGG_WEIGHTS):
    r"""$\sum_i w_i\,\mathrm{mean}|F^{(i)}(G(s)) - F^{(i)}(x)|$ over the VGG19 layers relu1_1 .. relu5_1,
    the real features held constant (the reference's VGGLoss)."""
    total = 0.0
    for w, r, f in zip(weights, real_features, fake_features):
        total = total + w * ops.mean(ops.abs(f - ops.stop_gradient(r)))
    return total


def build_vgg(weights="imagenet"):
    """Keras' VGG19 features at relu1_1 .. relu5_1 (`block{k}_conv1`, ReLU included), frozen.

    `weights`: "imagenet" reads Keras' ImageNet file from `~/.keras/models` (or
    `$KERAS_HOME/models`) and never downloads it; a path reads that file; None keeps the
    random initialisation (tests only: the loss then means little)."""
    from keras.applications import VGG19

    path = weights
    if weights == "imagenet":
        import os

        from ganlib.metrics.inception import keras_models_dir

        name = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
        path = os.path.join(keras_models_dir(), name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"vgg_weights='imagenet': the VGG19 ImageNet weights are not at {path}. Download "
                f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{name} and put it "
                "there (or pass vgg_weights=PATH), or train without the VGG loss (vgg_loss=False).")
    elif weights is not None and not __import__("os").path.isfile(weights):
        raise FileNotFoundError(f"vgg_weights: no file {weights!r} (Keras' VGG19 'notop' .h5 weights expected).")
    base = VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    if path is not None:
        base.load_weights(path)
    net = keras.Model(base.input, [base.get_layer(n).output for n in VGG_LAYERS], name="vgg19")
    net.trainable = False
    return net


def kmeans(points, k, seed=0, iterations=50):
    """Lloyd's k-means with k-means++ seeding, numpy: (k', D) centres, k' = min(k, number of
    distinct points)."""
    points = np.asarray(points, "float64")
    rng = np.random.default_rng(seed)
    k = min(k, len(np.unique(points, axis=0)))
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centres = np.asarray(centres)
    for _ in range(iterations):
        assign = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        new = np.stack([points[assign == j].mean(0) if np.any(assign == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres.astype("float32")


# --------------------------------------------------------------------------- the model
@keras.saving.register_keras_serializable("ganlib")
class Pix2PixHD(PaperGAN):
    """pix2pixHD: `generator` (G_1, or G_1 + G_2; with instance features a model of
    [label input, image, instance] that runs E, pools it per instance and feeds G),
    `discriminators` [D_1 (finest), ..., D_num_D], `encoder` E (instance_feat) and `G`
    (the generator network proper, on the concatenated input).

    The paper's operations are module functions, swappable for a student's: `edges_fn`
    (`instance_edges`), `pyramid_fn` (`image_pyramid`), `pool_fn` (`instance_average_pool`),
    `fm_fn` (`ganlib.losses.feature_matching`).
    """

    config_class = Config

    def __init__(self, config=None, edges_fn=None, pyramid_fn=None, pool_fn=None, fm_fn=None, vgg=None, **kwargs):
        cfg = self.resolve_config(config).validate()
        pool_fn = pool_fn or instance_average_pool
        G = build_generator(cfg)
        discriminators = [build_discriminator(cfg, k) for k in range(1, cfg.num_D + 1)]
        helpers = {"vgg19": vgg or build_vgg(cfg.vgg_weights)} if cfg.vgg_loss else {}
        encoder = build_encoder(cfg) if cfg.instance_feat else None
        generator = G
        if encoder is not None:
            label_input = keras.Input((None, None, cfg.label_channels), name="label_input")
            image = keras.Input((None, None, 3), name="image")
            instance = keras.Input((None, None), dtype="int32", name="instance")
            feat = _InstancePool(pool_fn, name="instance_pool")([encoder(image), instance])
            generator = keras.Model([label_input, image, instance],
                                    G(layers.Concatenate(name="with_features")([label_input, feat])), name="G_E")
        super().__init__(cfg, generator, discriminators, helpers=helpers, **kwargs)   # before any attribute (torch)
        self.G, self.encoder = G, encoder
        self.edges_fn = edges_fn or instance_edges
        self.pyramid_fn = pyramid_fn or image_pyramid
        self.pool_fn = pool_fn
        self.fm_fn = fm_fn or losses.feature_matching
        self.cluster_centres = {}   # label id -> (n, feat_num) k-means centres (cluster_features)

    def noise_shapes(self, n, training=False):
        return {}   # pix2pixHD has no noise input: diversity comes from the instance features

    def default_optimizers(self):
        """Adam(lr, 0.5, 0.999) for G (and E) and each D_k, constant then linear decay to 0."""
        cfg = self.config
        schedule = lambda: LinearDecay(cfg.lr, cfg.steps, cfg.decay_steps, cfg.decay_every)  # noqa: E731
        adam = lambda: keras.optimizers.Adam(schedule(), beta_1=cfg.beta1, beta_2=cfg.beta2)  # noqa: E731
        return adam(), [adam() for _ in self.discriminators]

    # ------------------------------------------------------------ inputs
    def label_input(self, label, instance):
        """One-hot labels (label_nc) and the instance boundary map (if `instance_map`)."""
        x = one_hot_labels(label, self.config.label_nc)
        if self.config.instance_map:
            x = ops.concatenate([x, self.edges_fn(instance)], axis=-1)
        return x

    def discriminate(self, label_input, image, training=True):
        """Every D_k on the pair (label input, image) of its pyramid level: a list per scale of
        [features..., prediction]."""
        pairs = self.pyramid_fn(ops.concatenate([label_input, ops.cast(image, "float32")], -1), len(self.discriminators))
        return [list(D(p, training=training)) for D, p in zip(self.discriminators, pairs)]

    # ------------------------------------------------------------ training
    def generator_outputs(self, batch, noise, training=False):
        x = self.label_input(batch["label"], batch["instance"])
        if self.encoder is not None:
            return {"images": self.generator([x, batch["image"], batch["instance"]], training=training)}
        return {"images": self.generator(x, training=training)}

    def discriminator_loss(self, batch, fakes, training=True):
        """(L_GAN(real) + L_GAN(fake)) / 2 summed over the scales (the reference's loss_D)."""
        x = self.label_input(batch["label"], batch["instance"])
        mode = self.config.gan_mode
        real = self.discriminate(x, batch["image"], training)
        fake = self.discriminate(x, fakes["images"], training)
        d_real = sum(gan_loss(r[-1], True, mode) for r in real)
        d_fake = sum(gan_loss(f[-1], False, mode) for f in fake)
        return 0.5 * (d_real + d_fake), {"d_real": d_real, "d_fake": d_fake}

    def generator_loss(self, batch, fakes, training=True):
        r"""$\sum_k L_{GAN}$ + lambda_feat (feature matching + VGG) (+ pix2pix's L1)."""
        cfg = self.config
        x = self.label_input(batch["label"], batch["instance"])
        fake_image = fakes["images"]
        fake = self.discriminate(x, fake_image, training)
        g_gan = sum(gan_loss(f[-1], True, cfg.gan_mode) for f in fake)
        total, logs = g_gan, {"g_gan": g_gan}
        if cfg.feature_matching:
            real = self.discriminate(x, batch["image"], training)
            fm = self.fm_fn([r[:-1] for r in real], [f[:-1] for f in fake])
            total, logs["g_feat"] = total + cfg.lambda_feat * fm, fm
        if cfg.vgg_loss:
            vgg = self.helper("vgg19")
            v = vgg_loss(vgg(ops.cast(batch["image"], "float32")), vgg(fake_image))
            total, logs["g_vgg"] = total + cfg.lambda_feat * v, v
        if cfg.l1_weight:
            l1 = ops.mean(ops.abs(fake_image - batch["image"]))
            total, logs["g_l1"] = total + cfg.l1_weight * l1, l1
        return total, logs

    # ------------------------------------------------------------ features and clusters
    def encode_features(self, image, instance):
        """E's instance-pooled features (B, H, W, feat_num) of real images, numpy."""
        if self.encoder is None:
            raise ValueError("this model has no feature encoder: build it with instance_feat=True.")
        feat = self.pool_fn(self.encoder(ops.convert_to_tensor(image, "float32"), training=False),
                            ops.convert_to_tensor(instance, "int32"))
        return ops.convert_to_numpy(feat)

    def instance_features(self, image, instance):
        """{label id: (n, feat_num + 1)} rows of one feature vector per instance and its relative
        area (pixels / (H * W / 32)), as the reference's `encode_features`, for a batch."""
        feat = self.encode_features(image, instance)
        instance = np.asarray(instance)
        h, w = instance.shape[1:]
        rows = {}
        for b in range(len(instance)):
            for i in np.unique(instance[b]):
                mask = instance[b] == i
                label = int(i if i < 1000 else i // 1000)
                row = np.append(feat[b][mask][0], mask.sum() / (h * w // 32))
                rows.setdefault(label, []).append(row)
        return {k: np.asarray(v, "float32") for k, v in rows.items()}

    def cluster_features(self, images, instances, batch_size=8, seed=0):
        """k-means (n_clusters) per class of the features of every instance in `images`, those
        of at least half the relative area (the reference's `feat[:, -1] > 0.5`); sets and
        returns `cluster_centres` {label id: (n, feat_num)}."""
        rows = {}
        for i in range(0, len(images), batch_size):
            for label, r in self.instance_features(images[i:i + batch_size], instances[i:i + batch_size]).items():
                rows.setdefault(label, []).append(r)
        centres = {}
        for label, parts in sorted(rows.items()):
            feat = np.concatenate(parts)
            feat = feat[feat[:, -1] > 0.5, :-1]
            if len(feat):
                centres[label] = kmeans(feat, self.config.n_clusters, seed=seed)
        self.cluster_centres = centres
        return centres

    def sample_features(self, instance, seed=0, choices=None):
        """A feature map (B, H, W, feat_num): for every instance a cluster centre of its class drawn
        at random (`choices` {instance id: cluster index} fixes some); classes without
        clusters get 0 (the reference leaves them uninitialised)."""
        instance = np.asarray(instance)
        rng = np.random.default_rng(seed)
        out = np.zeros(instance.shape + (self.config.feat_num,), "float32")
        for i in np.unique(instance):
            label = int(i if i < 1000 else i // 1000)
            if label in self.cluster_centres:
                centres = self.cluster_centres[label]
                j = (choices or {}).get(int(i), int(rng.integers(len(centres))))
                out[instance == i] = centres[j % len(centres)]
        return out

    # ------------------------------------------------------------ generation
    def generate(self, conditions, seed=0, features=None, choices=None):
        """Images in [-1, 1], numpy (B, H, W, 3), for label maps: `conditions` a dict with `label`
        and `instance` (B, H, W) arrays (or a list of dataset items), resized (nearest) to the
        config's size when they differ. With instance features: `features` (B, H, W, feat_num), or
        cluster centres drawn with `seed` (`sample_features`; `choices` fixes instances')."""
        maps = self.condition.encode(self, conditions)
        x = ops.convert_to_numpy(self.label_input(maps["label"], maps["instance"]))
        if self.encoder is not None:
            if features is None:
                features = self.sample_features(maps["instance"], seed, choices)
            x = np.concatenate([x, np.asarray(features, "float32")], -1)
        return to_numpy_images(self.G(x, training=False))



@keras.saving.register_keras_serializable("ganlib")
class _InstancePool(layers.Layer):
    """`instance_average_pool` as a layer of the generator model (E's output, instance ids)."""

    def __init__(self, fn=None, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn or instance_average_pool

    def call(self, inputs):
        return self.fn(*inputs)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable("ganlib")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr` for `steps - decay_steps` steps, then linear decay to 0 over `decay_steps`, in stairs
    of `every` steps (the reference lowers it by lr / niter_decay after each epoch)."""

    def __init__(self, lr, steps, decay_steps, every=1):
        self.lr, self.steps, self.decay_steps, self.every = float(lr), int(steps), int(decay_steps), max(1, int(every))

    def __call__(self, step):
        if not self.decay_steps:
            return ops.convert_to_tensor(self.lr, "float32")
        start = self.steps - self.decay_steps
        done = ops.floor(ops.maximum(ops.cast(step, "float32") - start, 0.0) / self.every) * self.every
        return self.lr * ops.maximum(1.0 - done / self.decay_steps, 0.0)

    def get_config(self):
        return {"lr": self.lr, "steps": self.steps, "decay_steps": self.decay_steps, "every": self.every}


def build(config=None, previous=None, **functions):
    """The model of one stage; `previous` (the stage before) gives its weights (`carry_weights`):
    G_1's from a global stage (without its last 7x7 convolution) and its discriminators, or
    everything from a local stage with G_1 frozen. `functions`: `Pix2PixHD`'s `edges_fn`,
    `pyramid_fn`, `pool_fn`, `fm_fn`."""
    cfg = (config or Config.fast()).validate()
    model = Pix2PixHD(cfg, **functions)
    if previous is not None:
        carry_weights(previous, model)
    return model


def train_coarse_to_fine(config, dataset, steps=None, callbacks=(), verbose=0, **functions):
    """Train every stage of `config.stage_plan()` on `dataset` (a street-scene dataset), each
    stage built on the previous one (`build`); `steps` {folder: steps} overrides stages'
    lengths. Returns {folder: trained model} in order (the last is the full model)."""
    models, previous = {}, None
    for folder, cfg in config.stage_plan():
        n = (steps or {}).get(folder, cfg.steps)
        cfg = cfg.replace(steps=n, decay_steps=min(cfg.decay_steps, n))
        keras.utils.set_random_seed(cfg.seed)
        model = build(cfg, previous, **functions)
        model.compile()
        pipeline = SPEC.batch(cfg).pipeline(dataset, cfg.batch_size, seed=cfg.seed)
        model.fit(pipeline, steps_per_epoch=n, epochs=1, verbose=verbose, callbacks=list(callbacks))
        models[folder or cfg.netG] = previous = model
    return models


def carry_weights(previous, model):
    """Copy every layer whose name and weight shapes match (as the reference's `load_network` of
    a smaller model); discriminators by the reference's scale index (D_k is its
    `scale{num_D - k}`): from 2 to 3 scales, D_1 -> D_2 and D_2 -> D_3, which see the same
    resolutions in the local stage as before."""
    def copy(src, dst):
        names = {layer.name: layer for layer in src.layers}
        for layer in dst.layers:
            other = names.get(layer.name)
            if other is not None and layer.weights and [w.shape for w in layer.weights] == [w.shape for w in other.weights]:
                layer.set_weights(other.get_weights())

    copy(previous.G, model.G)
    if previous.encoder is not None and model.encoder is not None:
        copy(previous.encoder, model.encoder)
    shift = len(model.discriminators) - len(previous.discriminators)
    for k, d in enumerate(previous.discriminators):
        if 0 <= k + shift < len(model.discriminators):
            model.discriminators[k + shift].set_weights(d.get_weights())


def _pix2pix(cfg):
    """The pix2pix baseline (Isola et al. 2017): U-Net G, one PatchGAN D, no feature matching, no
    VGG, no instance map, vanilla GAN loss + 100 x L1, trained in one stage at full size."""
    return cfg.replace(netG="unet", num_D=1, feature_matching=False, vgg_loss=False, instance_map=False,
                       gan_mode="vanilla", l1_weight=100.0, niter_fix_global=0)


SPEC = PaperSpec(
    name="pix2pixhd",
    title="pix2pixHD (Wang et al. 2018)",
    config=Config,
    build=build,
    batch=lambda cfg: BatchSpec(image_size=tuple(cfg.image_size), wrong=None, text=None, label_maps=True),
    conditions=("label_map",),
    metrics=("pixel_accuracy", "miou", "fid", "boundary_accuracy", "touching_step"),
    stages=lambda cfg: cfg.stage_plan(),   # [("", cfg)] for a single-stage G (global, unet)
    variants={
        "pix2pix": Variant("the pix2pix baseline: U-Net G, single-scale D, no feature matching / VGG / "
                           "instance map, GAN + 100 L1", _pix2pix),
        "no-instance": Variant("without the instance boundary map", lambda cfg: cfg.replace(instance_map=False)),
        "no-feature-matching": Variant("without the discriminator feature matching loss",
                                       lambda cfg: cfg.replace(feature_matching=False)),
        "features": Variant("with the instance-wise feature encoder E", lambda cfg: cfg.replace(instance_feat=True)),
    },
)
