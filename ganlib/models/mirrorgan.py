r"""MirrorGAN (Qiao et al. 2019, "MirrorGAN: Learning Text-to-image Generation by Redescription",
CVPR).

**Text -> image -> text.** If an image matches its caption, a captioner should be able
to read the caption back from it. MirrorGAN has three modules:

* **STEM** (semantic text embedding): the frozen DAMSM text encoder of lesson 04
  (`ganlib.models.damsm`) gives the word features $w$ and the sentence feature $s$;
  conditioning augmentation $F^{ca}$ turns $s$ into $s_{ca}$.
* **GLAM** (global-local collaborative attention): AttnGAN's cascade of generators,
  where every later stage looks at the *words* (local attention $Att^w$, Eq. (4),
  `ganlib.layers.WordAttention`) **and** at the *sentence* (global attention
  $Att^s = (V s_{ca}) \circ \mathrm{softmax}(f \circ V s_{ca})$, Eq. (5),
  `ganlib.layers.SentenceAttention`; the equation numbers are those the reference's
  `GLAttention.py` gives them in its comments, not checked against the paper's text):

  $$f_0 = F_0(z, s_{ca}),\qquad f_i = F_i\big(f_{i-1}, F^{att}_i(f_{i-1}, w, s_{ca})\big),
  \qquad I_i = G_i(f_i).$$

  As in the reference's `NEXT_STAGE_G`, $F_i$ concatenates $[f_{i-1}, Att^w, Att^s]$
  (3 ngf channels), maps them to 2 ngf channels with a 1x1 convolution (no bias), then
  applies AttnGAN's residual blocks and upsampling (`glam_join`, plugged into
  `ganlib.models.attngan.build_generator`).
* **STREAM** (semantic text regeneration and alignment): a captioner pretrained on real
  images and frozen (`ganlib.models.stream`, the shipped SynthBirds one by default)
  re-describes the last image; the generator pays the cross-entropy of the true words
  under teacher forcing, $\mathcal{L}_{stream} = -\sum_{t=0}^{L-1} \log p_t(T_t)$
  (`ganlib.losses.caption_cross_entropy`).

**Objective** (paper, section *Objective functions*): $\mathcal{L}_G = \sum_i \mathcal{L}_{G_i}
+ \lambda \mathcal{L}_{stream}$, each $\mathcal{L}_{G_i}$ AttnGAN's unconditional plus conditional
adversarial term; the discriminators are AttnGAN's.

**How the reference code (qiaott/MirrorGAN, `trainer.py`, `miscc/losses.py`) computes it**,
followed here:

* G: per stage $\mathrm{bce}(f_u, 1) + \mathrm{bce}(f_c, 1)$, plus $D_{KL}$ of CA (weight 1), plus
  `LAMBDA1` times the STREAM loss of the last stage's image. The STREAM loss is
  `nn.CrossEntropyLoss` on `pack_padded_sequence`d outputs and captions: **padding is masked**
  (by packing) and the loss is the mean over the batch's real words. The captioner runs
  in eval mode (BatchNorm statistics frozen).
* **No DAMSM loss**: the reference's `generator_loss` never calls `words_loss`/`sent_loss`
  (and its `LAMBDA` is 0), so `damsm_weight` is 0 here; setting it adds AttnGAN's term.
* D: AttnGAN's (`ganlib.models.attngan.d_loss`, wrong pairs = the batch shifted by one).
* An exponential moving average of G (0.999) gives the samples.
"""

from dataclasses import dataclass

import keras
from keras import layers, ops

from ganlib import losses
from ganlib.layers import SentenceAttention
from ganlib.models import attngan
from ganlib.models import stackganpp as sgpp
from ganlib.models import stream as stream_lib
from ganlib.models.registry import PaperSpec, Variant


@dataclass
class Config(attngan.Config):
    """MirrorGAN's hyperparameters: AttnGAN's (`ganlib.models.attngan.Config`) and the STREAM's.

    `stream` is a `ganlib pretrain stream --out DIR` folder (None: the shipped SynthBirds
    captioner); its vocabulary must be the DAMSM's. `caption_weight` is lambda
    (the reference's `cfg.TRAIN.SMOOTH.LAMBDA1`).
    """

    stream: str | None = None
    caption_weight: float = 10.0   # lambda (cfg.TRAIN.SMOOTH.LAMBDA1 of cfg/train_bird.yml)
    damsm_weight: float = 0.0      # cfg.TRAIN.SMOOTH.LAMBDA = 0; the reference's G loss has no DAMSM term
    batch_size: int = 12
    epochs: int = 650
    steps: int = 650 * (attngan.CUB_TRAIN_IMAGES // 12)

    @classmethod
    def paper(cls):
        """The reference's birds settings (`cfg/train_bird.yml`): 3 stages 64/128/256, GF 32, DF 64,
        z 100, CA 100, text 256, 2 residual blocks, 18 words, batch 12, Adam 2e-4 (0.5, 0.999)
        for G and each D, lambda (`LAMBDA1`) 10, 650 epochs, EMA 0.999.

        The paper reports lambda = 20 as its best setting on CUB; the released config
        trains with 10, which is kept here (set `caption_weight=20.0` for the paper's).

        Remaining differences from the reference code (besides AttnGAN's, listed in
        `ganlib.models.attngan.Config.paper`):
        * the STREAM's encoder sees G's last image resized bilinearly to the captioner's
          input size (the reference's `CAPTION_CNN` upsamples to 224 itself; ganlib's
          ResNet-152 STREAM does the same, the shipped SynthBirds one takes 64 px);
        * the word attention's padding mask is each caption's own (the reference repeats
          its mask as AttnGAN's does; the same when the batch's captions have equal lengths);
        * `GLAttentionGeneral` hard-codes `nn.Linear(100, idf)` for V; here V's input is
          `ca_dim` wide (100 in both presets).
        """
        return cls()

    @classmethod
    def fast(cls):
        """AttnGAN's classroom preset (16, 32 and 64 px, ngf = ndf = 16, batch 24, lr 5e-4, EMA 0.995,
        2400 steps, the shipped 30-epoch DAMSM `"synthbirds-30ep"` as STEM's text encoder) with the
        shipped SynthBirds STREAM and lambda 10 as the reference, no DAMSM term. The STREAM reads
        images through its own copy of the 5-epoch DAMSM's image CNN, trained with it; STEM's DAMSM
        only encodes the text, so the two need only share the vocabulary. Measured (TensorFlow,
        seeds 0 / 1, AMD EPYC Zen 4): caption consistency 2.84x / 3.03x chance (2.43x / 2.53x with
        the 5-epoch DAMSM, the preset until 2026-12-07); AttnGAN's preset with the same DAMSM
        4.18x / 4.21x, and this preset with AttnGAN's DAMSM term added (`--variant with-damsm`)
        4.10x / 4.23x."""
        base = attngan.Config.fast()
        return cls(**{**base.__dict__, "damsm_weight": 0.0, "caption_weight": 10.0})


# --------------------------------------------------------------------------- networks
def glam_join(cfg, sentence_attention_fn=None):
    """GLAM's F_i input (the reference's `NEXT_STAGE_G`): `join(i, h, word_context, c_hat)` ->
    conv1x1([h, word_context, Att^s(h, c_hat)]) with 2 ngf channels, no bias.

    `sentence_attention_fn(h, e, kernel)` replaces `SentenceAttention`'s computation."""
    def join(i, h, context, c_hat):
        att_s, _ = SentenceAttention(kernel_initializer=sgpp._orthogonal(), fn=sentence_attention_fn,
                                     name=f"F{i}_sent_attn")([h, c_hat])
        joined = layers.Concatenate(name=f"F{i}_join")([h, context, att_s])
        return sgpp._conv(2 * cfg.ngf, 1, f"F{i}_join_conv")(joined)
    return join


def build_generator(cfg, attention_fn=None, sentence_attention_fn=None):
    """GLAM's generator: AttnGAN's (`attngan.build_generator`: same inputs and outputs) with the
    sentence attention joined at every later stage."""
    return attngan.build_generator(cfg, attention_fn, join=glam_join(cfg, sentence_attention_fn))


def param_counts(config=None):
    """Trainable parameters of G, F_ca and each D (default `Config.paper()`); frozen STEM and STREAM
    not counted."""
    return attngan.param_counts(config or Config.paper(), generator_fn=build_generator)


# --------------------------------------------------------------------------- the model
@keras.saving.register_keras_serializable("ganlib")
class MirrorGAN(attngan.AttnGAN):
    """MirrorGAN: STEM (frozen DAMSM text encoder + CA), GLAM (word and sentence attention) and
    STREAM (a frozen captioner whose caption loss on the last image trains G).

    Args:
        config: a `Config` (default `Config.paper()`).
        damsm: `(model, tokenizer)` of a built DAMSM (default: `config.damsm`'s, the shipped one).
        stream: `(model, tokenizer)` of a built STREAM (default: `ganlib.models.stream.load_pretrained(
            config.stream)`), the frozen helper `stream`.
        attention_fn: `(query, words, mask) -> (context, beta)`, the word attention (`WordAttention`'s `fn`).
        sentence_attention_fn: `(h (B, H, W, C), e (B, C), kernel (C, C)) -> (Att^s, a)`, the sentence
            attention (`SentenceAttention`'s `fn`; default `ganlib.layers.sentence_attention`).
        caption_loss_fn: `(logits (B, T, V), targets (B, T), mask (B, T)) -> scalar`, the STREAM loss
            (default `ganlib.losses.caption_cross_entropy`).
        damsm_loss_fn: as AttnGAN's (used only when `damsm_weight` > 0).

    Batches as AttnGAN's (`SPEC.batch(config)`). `generator` outputs every stage's image, mu,
    logvar, then the word attention maps; `discriminators` one per stage, smallest first.
    """

    config_class = Config

    def __init__(self, config=None, damsm=None, stream=None, attention_fn=None, sentence_attention_fn=None,
                 caption_loss_fn=None, damsm_loss_fn=None, **kwargs):
        cfg = self.resolve_config(config).validate()
        stream_model, stream_tokenizer = stream if stream is not None else stream_lib.load_pretrained(cfg.stream)
        if stream_model.name != "stream":
            raise ValueError(f"stream: the captioner must be named 'stream', got {stream_model.name!r}.")
        super().__init__(cfg, damsm=damsm, attention_fn=attention_fn, damsm_loss_fn=damsm_loss_fn,
                         generator=build_generator(cfg, attention_fn, sentence_attention_fn),
                         helpers={"stream": stream_model}, **kwargs)
        if list(stream_tokenizer.vocabulary) != list(self.tokenizer.vocabulary):
            raise ValueError(f"stream: the captioner's vocabulary ({stream_tokenizer.vocabulary_size} ids) is not "
                             f"the DAMSM's ({self.tokenizer.vocabulary_size} ids): pretrain both on the same data.")
        self.caption_loss_fn = caption_loss_fn or losses.caption_cross_entropy
        self.stream_image_size = int(stream_model.config.image_size)

    def stream_loss(self, images, tokens):
        r"""$\mathcal{L}_{stream}$ of `images` against their captions `tokens` (B, T): the frozen
        captioner, teacher-forced, scored by `caption_loss_fn` over the real words."""
        size = self.stream_image_size
        if images.shape[1] != size:
            images = ops.image.resize(images, (size, size), interpolation="bilinear")
        captioner = self.helper("stream")
        tokens = ops.cast(tokens, "int32")
        logits = captioner.decoder(captioner.encoder(images, training=False), tokens)
        return self.caption_loss_fn(logits, tokens, stream_lib.caption_mask(tokens))

    def extra_generator_loss(self, batch, fakes):
        r"""$D_{KL}$ (and AttnGAN's DAMSM term when `damsm_weight` > 0) plus
        $\lambda \mathcal{L}_{stream}$ of the last stage's images."""
        total, logs = super().extra_generator_loss(batch, fakes)
        if self.config.caption_weight:
            cap = self.stream_loss(fakes["images"][-1], batch["tokens"])
            total = total + self.config.caption_weight * cap
            logs["cap_loss"] = cap
        return total, logs


def build(config=None, previous=None, damsm=None, stream=None):
    """The model `ganlib train mirrorgan` trains (`embed_dim`, `max_words` from the DAMSM, as AttnGAN's)."""
    cfg, damsm = attngan.fit_to_damsm(config or Config.fast(), damsm)
    return MirrorGAN(cfg, damsm=damsm, stream=stream)


SPEC = PaperSpec(
    name="mirrorgan",
    title="MirrorGAN (Qiao et al. 2019)",
    config=Config,
    build=build,
    batch=attngan.SPEC.batch,
    conditions=("words",),
    variants={
        "no-stream": Variant("lambda = 0: GLAM (AttnGAN's G with the sentence attention) without the STREAM loss",
                             lambda cfg: cfg.replace(caption_weight=0.0)),
        "with-damsm": Variant("the STREAM loss plus AttnGAN's DAMSM term (lambda_DAMSM 5, as AttnGAN's birds; "
                              "the reference trains without it)",
                              lambda cfg: cfg.replace(damsm_weight=attngan.Config().damsm_weight)),
    },
)
