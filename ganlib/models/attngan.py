r"""AttnGAN (Xu et al. 2018, "AttnGAN: Fine-Grained Text to Image Generation with Attentional
Generative Adversarial Networks", CVPR).

**Attentional generative network.** StackGAN++'s tree of generators, with every
stage after the first looking at the *words* of the caption, not only at the
sentence. With the sentence feature $\bar e$ and the word features $e$ of the
DAMSM text encoder (`ganlib.models.damsm`, frozen),

$$h_0 = F_0(z, F^{ca}(\bar e)),\qquad h_i = F_i(h_{i-1}, F^{attn}_i(e, h_{i-1}))\quad(i = 1, \dots, m-1),
\qquad \hat x_i = G_i(h_i)$$

(paper, section *Attentional Generative Network*). $F^{ca}$ is conditioning
augmentation (`ConditioningAugmentation` with GLU), $F_0$ StackGAN++'s fully connected
layer and upsampling blocks, each $F^{attn}_i$ a word attention
(`ganlib.layers.WordAttention`): the words are projected by $U_i$ into the image
features' space and every sub-region $j$ of $h_{i-1}$ gets its word context
$c_j = \sum_i \beta_{j,i} U_i e_i$, $\beta$ a softmax of $h_j^\top U_i e_i$ over the
caption's real words. $F_i$ concatenates $h_{i-1}$ and its word contexts, applies
`num_residual` residual blocks and one upsampling block; $G_i$ is a 3x3 convolution
to an image. The blocks are StackGAN++'s (`ganlib.models.stackganpp`), as in the
reference code.

**Objective.** One discriminator per scale, each with an unconditional and a
conditional logit (the sentence feature $\bar e$ replicated at 4x4). The generator's
loss (paper, section *Objective*)

$$L = \sum_i L_{G_i} + \lambda L_{DAMSM},\qquad
L_{G_i} = -\tfrac12 \mathbb{E}[\log D_i(\hat x_i)] - \tfrac12 \mathbb{E}[\log D_i(\hat x_i, \bar e)]$$

with $L_{DAMSM}$ (`ganlib.losses.damsm_loss`) the word- and sentence-level matching loss
of the last image against the batch's captions, computed by the frozen DAMSM encoders.

**How the reference code (taoxugit/AttnGAN, `code/trainer.py`, `code/miscc/losses.py`)
computes it**, followed here so that its weights carry over:

* $L_{G_i} = \mathrm{bce}(f_u, 1) + \mathrm{bce}(f_c, 1)$ (no 1/2), plus $D_{KL}$ of
  CA with weight 1, plus $\lambda$ times (word loss + sentence loss), each the sum of
  its two directions, same-class items excluded as negatives (`class_ids`).
* $L_{D_i} = \tfrac12[\mathrm{bce}(r_u, 1) + \mathrm{bce}(r_c, 1)] + \tfrac13[\mathrm{bce}(f_u, 0)
  + \mathrm{bce}(f_c, 0) + \mathrm{bce}(w_c, 0)]$, the wrong pairs $w$ being the batch's
  real images shifted against the captions: image $k$ with caption $k+1$ (B - 1 pairs),
  scored from the same image codes as the real pairs.
* D's condition is the sentence feature $\bar e$ itself (256-d), not CA's output.
* An exponential moving average of G (decay 0.999) gives the samples.

Every $\mathrm{bce}$ is a batch mean of the sigmoid cross-entropy on logits.
"""

from dataclasses import dataclass

import keras
from keras import layers, ops

from ganlib import losses
from ganlib.conditioning import WordConditioning
from ganlib.layers import ConditioningAugmentation, Reparameterize, WordAttention
from ganlib.models import stackganpp as sgpp
from ganlib.models.base import PaperConfig, num_upsamplings, to_numpy_images
from ganlib.models.multiscale import MultiScaleGAN
from ganlib.models.registry import PaperSpec, batch_for

#: Epochs of the reference's birds run (cfg.TRAIN.MAX_EPOCH) and CUB's training images.
CUB_TRAIN_IMAGES = 8855


@dataclass
class Config(PaperConfig):
    """Hyperparameters of AttnGAN (the fields every paper has are `PaperConfig`'s).

    `paper()` is the reference's `cfg/bird_attn2.yml`, `coco()` its `cfg/coco_attn2.yml`,
    `fast()` a 2-core CPU classroom preset. The text encoder is a DAMSM
    (`damsm`: a `ganlib pretrain damsm --out DIR` folder; None: the shipped SynthBirds
    DAMSM); `embed_dim` and `max_words` must be the DAMSM's (`build` takes them from it).
    """

    conditioning: str = "words"
    text_encoder: str = "damsm"
    damsm: str | None = None     # DAMSM folder or shipped name (None: the SynthBirds DAMSM that scores R-precision)
    embed_dim: int = 256         # cfg.TEXT.EMBEDDING_DIM (the DAMSM's D)
    max_words: int = 18          # cfg.TEXT.WORDS_NUM
    image_size: int = 256        # the last branch's size; branch i is image_size / 2**(branches-1-i)
    branches: int = 3            # cfg.TREE.BRANCH_NUM: 64, 128, 256
    z_dim: int = 100             # cfg.GAN.Z_DIM
    ca_dim: int = 100            # cfg.GAN.CONDITION_DIM
    ngf: int = 32                # cfg.GAN.GF_DIM: channels of every h_i (F_0 starts at 16 ngf at 4x4)
    ndf: int = 64                # cfg.GAN.DF_DIM
    num_residual: int = 2        # cfg.GAN.R_NUM
    batch_size: int = 20
    kl_weight: float = 1.0       # the reference adds KL_loss unweighted
    damsm_weight: float = 5.0    # lambda (cfg.TRAIN.SMOOTH.LAMBDA)
    gamma1: float = 4.0          # cfg.TRAIN.SMOOTH.GAMMA1..3
    gamma2: float = 5.0
    gamma3: float = 10.0
    wrong: str | None = None     # the mismatched pairs are the batch shifted by one (no extra data)
    ema_decay: float = 0.999     # the reference's averaged G
    epochs: int = 600
    steps: int = 600 * (CUB_TRAIN_IMAGES // 20)
    lr_decay_every: int = 0
    sample_every: int = 2000

    @classmethod
    def paper(cls):
        """The reference's birds settings (`cfg/bird_attn2.yml`): 3 branches 64/128/256, ngf 32,
        ndf 64, z 100, CA 100, text 256, 2 residual blocks, 18 words, batch 20, Adam 2e-4
        (0.5, 0.999) for G and each D, lambda 5, gamma 4/5/10, 600 epochs, EMA 0.999, the
        reference's initialisers (orthogonal kernels, BatchNorm scale N(1, 0.02)).

        Remaining differences from the reference code (`code/trainer.py`, `code/model.py`):
        * the padding mask of the word attention is each caption's own: the reference
          repeats its (B, T) mask `queryL` times along the rows of the (B * queryL, T)
          logits, so a sub-region of image b is masked with caption
          `(b * queryL + j) mod B`'s padding (the same only when the batch's captions
          have equal lengths);
        * captions are padded to `max_words` and the batch is not sorted by length (the
          reference packs sequences and cuts the mask to the batch's longest caption:
          the same outputs);
        * logits with a numerically stable cross-entropy instead of sigmoid + `BCELoss`;
        * the DAMSM image encoder resizes G's last image bilinearly to its input size
          (the reference's `nn.Upsample(299)`; on SynthBirds the small DAMSM's 64 px).
        """
        return cls()

    @classmethod
    def coco(cls):
        """The reference's COCO settings (`cfg/coco_attn2.yml`): ngf 48, ndf 96, 3 residual
        blocks, 12 words, batch 14, lambda 50, 120 epochs (82,783 training images)."""
        return cls(ngf=48, ndf=96, num_residual=3, max_words=12, batch_size=14, damsm_weight=50.0,
                   epochs=120, steps=120 * (82783 // 14))

    @classmethod
    def fast(cls):
        """A classroom preset: three branches (16, 32 and 64 px, two attention stages), narrow
        nets (ngf = ndf = 16), z 32, CA 64, batch 24, lr 5e-4 and an EMA generator (0.995):
        2400 steps. The text encoder and the DAMSM loss are the shipped 30-epoch SynthBirds
        DAMSM (`"synthbirds-30ep"`, its width), not the 5-epoch one that scores R-precision:
        with that one (`damsm=None`) the same preset reached 3.05x chance caption consistency
        on a 2-core Intel Xeon, with this one 4.18x on a 2-core AMD EPYC Zen 4 (TensorFlow,
        seed 0; see the README)."""
        return cls(damsm="synthbirds-30ep", embed_dim=64, image_size=64, branches=3, z_dim=32, ca_dim=64, ngf=16, ndf=16,
                   num_residual=2, batch_size=24, lr=5e-4, ema_decay=0.995, epochs=0, steps=2400,
                   eval_every=600, sample_every=300, checkpoint_every=600, eval_samples=500)

    @property
    def branch_sizes(self):
        """Image sizes of the branches, smallest first, e.g. (64, 128, 256)."""
        return tuple(self.image_size // 2 ** (self.branches - 1 - i) for i in range(self.branches))

    def validate(self):
        """Raise ValueError naming the field when the config cannot build the networks."""
        if self.conditioning != "words":
            model = type(self).__module__.rsplit(".", 1)[-1]   # attngan, or a model built on it (mirrorgan)
            raise ValueError(f"{model} is conditioned on words: conditioning must be 'words', got "
                             f"{self.conditioning!r}.")
        if self.branches < 1:
            raise ValueError(f"branches must be >= 1, got {self.branches}.")
        num_upsamplings(self.branch_sizes[0], name=f"image_size / 2**(branches-1) "
                        f"(image_size={self.image_size}, branches={self.branches})")
        return self


# --------------------------------------------------------------------------- networks
def concatenate_join(i, h, context, c_hat):
    """AttnGAN's F_i input: [h_{i-1}, word contexts] concatenated (2 ngf channels)."""
    return layers.Concatenate(name=f"F{i}_join")([h, context])


def build_generator(cfg, attention_fn=None, join=None):
    """The attentional G: inputs `[z, sentence, words, mask, eps]`; outputs
    `[x_0, ..., x_{m-1}, mu, logvar, beta_1, ..., beta_{m-1}]`, beta_i `(B, H_i, W_i, T)` the
    word attention of stage i over the sub-regions of h_{i-1}.

    The reference's G_NET layer for layer. `attention_fn(query, words, mask)` replaces the
    attention's computation (`WordAttention`'s `fn`, lesson 04). `join(i, h, context, c_hat)`
    makes stage i's input to its residual blocks from h_{i-1}, its word contexts and CA's
    sample (default `concatenate_join`; MirrorGAN's GLAM adds a sentence attention).
    """
    cfg.validate()
    sizes = cfg.branch_sizes
    z = keras.Input((cfg.z_dim,), name="z")
    sentence = keras.Input((cfg.embed_dim,), name="sentence")
    words = keras.Input((cfg.max_words, cfg.embed_dim), name="words")
    mask = keras.Input((cfg.max_words,), name="mask")
    eps = keras.Input((cfg.ca_dim,), name="eps")
    _, mu, logvar = ConditioningAugmentation(cfg.ca_dim, activation="glu", kernel_initializer=sgpp._orthogonal(),
                                             name="F_ca")(sentence)
    c = Reparameterize(name="c_hat")([mu, logvar, eps])
    h = sgpp.initial_stage(layers.Concatenate(name="F0_in")([c, z]), sizes[0], cfg.ngf)
    images, attentions = [], []
    for i in range(cfg.branches):
        if i > 0:  # F_i(h_{i-1}, F_attn(e, h_{i-1})): join h and its word contexts, residual blocks, upsample
            context, beta = WordAttention(kernel_initializer=sgpp._orthogonal(), fn=attention_fn,
                                          name=f"F{i}_attn")([h, words, mask])
            attentions.append(beta)
            h = (join or concatenate_join)(i, h, context, c)
            for r in range(cfg.num_residual):
                h = sgpp.residual_block(h, f"F{i}_res{r}")
            h = sgpp.up_block(h, cfg.ngf, f"F{i}_up")
        image = sgpp._conv(3, 3, f"G{i}_conv")(h)
        images.append(layers.Activation("tanh", name=f"image_{sizes[i]}")(image))
    return keras.Model([z, sentence, words, mask, eps], images + [mu, logvar] + attentions, name="G")


def build_discriminator(cfg, size):
    """D_i for `size` x `size` images (the reference's D_NET64/128/256): inputs `[image, e_bar]`,
    logits `[conditional, unconditional]`. Three parts, Keras models of their own, so that
    one image code serves several conditions: `image_code` (image -> 4x4 code),
    `cond_head` ([code, e_bar] -> logit) and `uncond_head` (code -> logit)."""
    image = keras.Input((size, size, 3), name="image")
    code = keras.Model(image, sgpp.image_code(image, cfg.ndf), name="image_code")
    h = keras.Input(code.output.shape[1:], name="code")
    e_bar = keras.Input((cfg.embed_dim,), name="sentence")
    cond_head = keras.Model([h, e_bar], sgpp.conditional_logit(h, e_bar), name="cond_head")
    uncond_head = keras.Model(h, sgpp._logit_conv(h, "uncond"), name="uncond_head")
    x = keras.Input((size, size, 3), name="image")
    e = keras.Input((cfg.embed_dim,), name="sentence")
    hx = code(x)
    return keras.Model([x, e], [cond_head([hx, e]), uncond_head(hx)], name=f"D_{size}")


def build_discriminators(cfg):
    cfg.validate()
    return [build_discriminator(cfg, s) for s in cfg.branch_sizes]


def param_counts(config=None, generator_fn=None):
    """Trainable parameters of G (and its F_ca) and of each D of a config (default `Config.paper()`),
    built with constant initialisers (seconds). The frozen DAMSM encoders are not counted.
    `generator_fn(cfg)` builds another G (default `build_generator`)."""
    cfg = config or Config.paper()
    with sgpp.constant_initialisers():
        g = (generator_fn or build_generator)(cfg)
        counts = {"G": sgpp.trainable(g), "F_ca": sgpp.trainable(g.get_layer("F_ca"))}
        for d in build_discriminators(cfg):
            counts[d.name] = sgpp.trainable(d)
    return counts


# --------------------------------------------------------------------------- losses
def d_loss(real_cond, real_uncond, wrong_cond, fake_cond, fake_uncond):
    r"""A stage's discriminator loss as the reference computes it (`discriminator_loss`):

    $$L_{D_i} = \tfrac12[\mathrm{bce}(r_u, 1) + \mathrm{bce}(r_c, 1)]
    + \tfrac13[\mathrm{bce}(f_u, 0) + \mathrm{bce}(f_c, 0) + \mathrm{bce}(w_c, 0)]$$

    each bce a batch mean (the wrong pairs' over their own, B - 1, pairs)."""
    return (0.5 * (losses.bce(real_uncond, 1.0) + losses.bce(real_cond, 1.0))
            + (losses.bce(fake_uncond, 0.0) + losses.bce(fake_cond, 0.0) + losses.bce(wrong_cond, 0.0)) / 3.0)


def g_loss(fake_cond, fake_uncond):
    r"""A stage's adversarial generator loss (reference `generator_loss`):
    $\mathrm{bce}(f_u, 1) + \mathrm{bce}(f_c, 1)$."""
    return losses.bce(fake_uncond, 1.0) + losses.bce(fake_cond, 1.0)


def negative_classes(class_ids):
    """Class ids for the DAMSM loss's negatives: items without a class (-1) get ids of their own."""
    c = ops.cast(ops.reshape(class_ids, (-1,)), "int32")
    return ops.where(c < 0, -2 - ops.arange(ops.shape(c)[0], dtype="int32"), c)


# --------------------------------------------------------------------------- the model
@keras.saving.register_keras_serializable("ganlib")
class AttnGAN(MultiScaleGAN):
    """AttnGAN: an attentional multi-stage generator, one discriminator per stage and the
    DAMSM loss on the last image (Xu et al. 2018).

    Args:
        config: a `Config` (default `Config.paper()`).
        damsm: `(model, tokenizer)` of a built DAMSM (default: `ganlib.models.damsm.load_pretrained(
            config.damsm)`); its encoders are frozen helpers `text_encoder` and `image_encoder`.
        attention_fn: `(query (B, N, C), words (B, T, C), mask (B, T)) -> (context, beta)`, the word
            attention of every stage (default: `WordAttention`'s); lesson 04 plugs the student's in.
        damsm_loss_fn: `damsm_loss`'s signature (default `ganlib.losses.damsm_loss`).
        generator: a generator of `build_generator`'s inputs and outputs instead of AttnGAN's
            (MirrorGAN passes its GLAM generator).

    Batches hold `image` at `config.image_size`, `image_<s>` for the smaller stages,
    `tokens` (B, T) and `class_id` (`SPEC.batch(config)`). `generator` (outputs every
    stage's image, mu, logvar, then the attention maps) and `discriminators` (one per
    stage, smallest first) are Keras models.
    """

    config_class = Config

    def __init__(self, config=None, damsm=None, attention_fn=None, damsm_loss_fn=None, generator=None, **kwargs):
        cfg = self.resolve_config(config).validate()
        condition = WordConditioning(damsm, path=cfg.damsm)
        if (condition.embed_dim, condition.max_words) != (cfg.embed_dim, cfg.max_words):
            raise ValueError(f"the DAMSM has D = {condition.embed_dim} and {condition.max_words} words; the config "
                             f"has embed_dim={cfg.embed_dim}, max_words={cfg.max_words}: they must agree "
                             f"(ganlib.models.attngan.build sets them from the DAMSM).")
        generator = generator if generator is not None else build_generator(cfg, attention_fn)
        super().__init__(cfg, generator, build_discriminators(cfg), condition=condition, **kwargs)
        self.damsm_loss_fn = damsm_loss_fn or losses.damsm_loss
        self.damsm_image_size = int(condition.damsm.config.image_size)

    def noise_shapes(self, n, training=False):
        return {"z": (n, self.config.z_dim), "eps": (n, self.config.ca_dim)}

    # ------------------------------------------------------------ training
    def generator_outputs(self, batch, noise, training=False):
        text = self.condition.from_batch(self, batch)
        outs = self.generator([noise["z"], text["sentence"], text["words"], text["mask"], noise["eps"]],
                              training=training)
        m = self.config.branches
        return {"images": list(outs[:m]), "mu": outs[m], "logvar": outs[m + 1],
                "c": text["sentence"], "words": text["words"], "mask": text["mask"]}

    def wrong_pairs(self, batch, fakes, reals):
        """Real image k with caption k + 1 at every scale (the reference's shifted batch)."""
        return [(x[:-1], fakes["c"][1:]) for x in reals]

    def real_and_wrong_logits(self, D, real, condition, wrong, training=True):
        """The real pairs' logits, and the wrong pairs' conditional logit from the same image codes."""
        code = D.get_layer("image_code")(real, training=training)
        cond_head = D.get_layer("cond_head")
        real_logits = (cond_head([code, condition], training=training),
                       D.get_layer("uncond_head")(code, training=training))
        return real_logits, (cond_head([code[:-1], condition[1:]], training=training), None)

    def branch_d_loss(self, real, wrong, fake):
        return d_loss(real[0], real[1], wrong[0], fake[0], fake[1])

    def branch_g_loss(self, fake):
        return g_loss(*fake)

    def damsm_losses(self, image, words, sentence, mask, class_ids=None):
        """`(word_loss, sentence_loss)` of G's last images against their captions (frozen DAMSM)."""
        cfg, size = self.config, self.damsm_image_size
        if image.shape[1] != size:
            image = ops.image.resize(image, (size, size), interpolation="bilinear")
        regions, image_code = self.helper("image_encoder")(image, training=False)
        lengths = ops.cast(ops.sum(mask, axis=-1), "int32")
        return self.damsm_loss_fn(regions, image_code, words, sentence, lengths, cfg.gamma1, cfg.gamma2,
                                  cfg.gamma3, class_ids=class_ids)

    def extra_generator_loss(self, batch, fakes):
        r"""$\lambda_{KL} D_{KL}$ and $\lambda$ (word loss + sentence loss) of the last stage."""
        cfg = self.config
        kl = losses.kl_divergence(fakes["mu"], fakes["logvar"])
        total, logs = cfg.kl_weight * kl, {"kl": kl}
        if cfg.damsm_weight:
            classes = negative_classes(batch["class_id"]) if "class_id" in batch else None
            w, s = self.damsm_losses(fakes["images"][-1], fakes["words"], fakes["c"], fakes["mask"], classes)
            total = total + cfg.damsm_weight * (w + s)
            logs.update({"w_loss": w, "s_loss": s})
        return total, logs

    # ------------------------------------------------------------ inference
    def generator_inputs(self, tokens, noise):
        text = self.condition.embed_tokens(self, ops.convert_to_tensor(tokens))
        return [noise["z"], text["sentence"], text["words"], text["mask"], noise["eps"]]

    def generate_scales_from(self, condition, noise):
        return self.run_generator(self.generator_inputs(condition, noise))

    def generate_with_attention(self, captions, seed=0, noise=None):
        """`(images, attention, tokens)` for captions: every stage's images (list, numpy in
        [-1, 1]), every attention stage's maps (list of numpy (n, H, W, T)) and the tokens."""
        tokens, noise = self.inference_inputs(captions, seed, noise=noise)
        outs = self.inference_generator()(self.generator_inputs(tokens, noise), training=False)
        m = self.config.branches
        return ([to_numpy_images(o) for o in outs[:m]], [to_numpy_images(o) for o in outs[m + 2:]],
                ops.convert_to_numpy(tokens))


def fit_to_damsm(cfg, damsm=None):
    """`(config, damsm)`: the DAMSM (`cfg.damsm`'s folder, None: the shipped SynthBirds DAMSM, unless
    given) and the config with its `embed_dim` and `max_words` taken from it when they differ."""
    if damsm is None:
        from ganlib.models import damsm as damsm_lib

        damsm = damsm_lib.load_pretrained(cfg.damsm)
    dims = {"embed_dim": int(damsm[0].config.embed_dim), "max_words": int(damsm[0].config.max_words)}
    if dims != {"embed_dim": cfg.embed_dim, "max_words": cfg.max_words}:
        print(f"text features of the DAMSM: embed_dim {dims['embed_dim']}, max_words {dims['max_words']} "
              f"(the config had {cfg.embed_dim}, {cfg.max_words})")
        cfg = cfg.replace(**dims)
    return cfg, damsm


def build(config=None, previous=None, damsm=None):
    """The model `ganlib train attngan` trains: `config`'s `embed_dim` and `max_words` taken from
    its DAMSM (`config.damsm`; None: the shipped SynthBirds DAMSM) when they differ."""
    cfg, damsm = fit_to_damsm(config or Config.fast(), damsm)
    return AttnGAN(cfg, damsm=damsm)


SPEC = PaperSpec(
    name="attngan",
    title="AttnGAN (Xu et al. 2018)",
    config=Config,
    build=build,
    batch=lambda cfg: batch_for(cfg, cfg.image_size, pyramid=cfg.branch_sizes[:-1]),
    conditions=("words",),
)
