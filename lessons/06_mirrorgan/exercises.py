# Generated from solutions/06_mirrorgan/exercises.py by `python -m ganlib.course.stubs`: edit the solution, not this file.
r"""Lesson 06 exercises: MirrorGAN (text -> image -> text), GLAM's sentence attention and STREAM.

Fill in every function below. Exercises 1-3 compute with `keras.ops` only (not numpy,
`tf.`, `torch.` or `jax.`), so that your code runs on the TensorFlow, JAX and PyTorch
backends and drives the notebook: your `sentence_attention` is the global attention of
every later stage of the notebook's generator, your `caption_cross_entropy` its STREAM
loss, and your `greedy_decode` writes the captions STREAM gives real and generated
images. Exercise 4 (`corpus_bleu`) is plain Python: it scores those captions. Exercise 5
is a question, not code: answer it in `REFLECTION` at the end of this file.

Papers:
    [MirrorGAN] Qiao, Zhang, Xu, Tao 2019, "MirrorGAN: Learning Text-to-image Generation by
                Redescription" (CVPR); reference code qiaott/MirrorGAN.
    [BLEU]      Papineni, Roukos, Ward, Zhu 2002, "BLEU: a Method for Automatic Evaluation of
                Machine Translation" (ACL).

Check your work:

    ganlib grade 06                                  # score table
    GANLIB_SUBMISSION=lessons/06_mirrorgan/exercises.py pytest tests/grading/test_06_mirrorgan.py
"""

import math
from collections import Counter

from keras import ops


def sentence_attention(h, e, kernel):
    r"""Exercise 1. GLAM's sentence-level (global) attention $Att^s$ ([MirrorGAN], section "GLAM", Eq. (5) as the reference's `GLAttention.py` numbers it).

    The sentence condition, already projected to the visual features' channels
    ($e = V s_{ca}$, the same vector at every pixel), multiplies the visual features $f$
    element-wise; a 1x1 convolution $U$ (no bias, here a (C, C) matrix) and a softmax
    **over the channels** (the reference's `nn.Softmax()` on a 4-D tensor) give a
    weight $a$ per pixel and channel, and the attention is $e$ weighted by $a$:

    $$a = \mathrm{softmax}_{\text{channels}}\big((f \circ e)\, U\big),\qquad Att^s = e \circ a .$$

    Args:
        h: float (B, H, W, C), the visual features $f$.
        e: float (B, C), the projected sentence $V s_{ca}$.
        kernel: float (C, C), $U$ (input channels x output channels).

    Returns:
        `(att, a)`: float32 (B, H, W, C) each; `a` sums to 1 over the last axis.

    Hint: `e[:, None, None, :]` broadcasts over the pixels; `ops.matmul` on the last
    axis applies $U$; `ops.softmax(..., axis=-1)`.
    """
    raise NotImplementedError("Exercise: sentence_attention")


def caption_cross_entropy(logits, targets, mask):
    r"""Exercise 2. STREAM's text-semantic reconstruction loss ([MirrorGAN], section "Objective functions", as the reference computes it).

    The paper writes $\mathcal{L}_{stream} = -\sum_{t=0}^{L-1} \log p_t(T_t)$: the log
    probability the captioner, fed the generated image and the true previous words
    (teacher forcing), gives each true word $T_t$. The reference packs the padded
    captions (`pack_padded_sequence`) before `nn.CrossEntropyLoss`: padding takes no part,
    and the sum becomes the **mean over the batch's real words**:

    $$\mathcal{L} = -\frac{\sum_{b,t} m_{bt}\, \log \mathrm{softmax}(z_{bt})[T_{bt}]}{\max(\sum_{b,t} m_{bt},\ 1)} .$$

    Args:
        logits: float (B, T, V), the next-word scores $z$ (output t scores word t).
        targets: int (B, T), the true words $T$.
        mask: (B, T), 1 where a word counts, 0 at padding.

    Returns:
        A float32 scalar (0 when the mask is all zeros).

    Hint: `ops.log_softmax(logits, axis=-1)`, then pick each target's entry with
    `ops.take_along_axis(log_p, targets[..., None], axis=-1)`.
    """
    raise NotImplementedError("Exercise: caption_cross_entropy")


def lstm_step(x, h, c, kernel, recurrent_kernel, bias):
    r"""One step of STREAM's LSTM (given, not an exercise): gates in the order i, f, g, o.

    $$(i, f, g, o) = x W + h U + b,\quad c' = \sigma(f) c + \sigma(i) \tanh(g),\quad
    h' = \sigma(o) \tanh(c').$$

    Args: x (B, E), h (B, H), c (B, H), kernel (E, 4H), recurrent_kernel (H, 4H), bias (4H,).
    Returns: `(h', c')`, (B, H) each.
    """
    z = ops.matmul(x, kernel) + ops.matmul(h, recurrent_kernel) + bias
    i, f, g, o = ops.split(z, 4, axis=-1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def greedy_decode(features, embeddings, kernel, recurrent_kernel, bias, out_kernel, out_bias, steps):
    r"""Exercise 3. STREAM's greedy decoding: the caption it writes for an image ([MirrorGAN], section "STREAM").

    The captioner's equations: the image feature starts the sequence, and each step's
    output scores the next word,

    $$x_{-1} = \mathrm{CNN}(I),\qquad x_t = W_e T_t,\qquad p_{t+1} = \mathrm{RNN}(x_t).$$

    In training (and in the STREAM loss) the true words $T_t$ are fed (teacher forcing).
    To *write* a caption there are no true words: feed the image feature first, take the
    most likely word of each step's output ($\arg\max$ of $h W_{out} + b_{out}$) and feed
    its embedding as the next input. Start from $h = c = 0$ and run exactly `steps`
    steps (do not stop at the end token 0: the caller cuts the captions).

    Args:
        features: float (B, E), the image features $x_{-1}$.
        embeddings: float (V, E), $W_e$ (row k embeds word k).
        kernel, recurrent_kernel, bias: the LSTM's weights, for `lstm_step` above.
        out_kernel: float (H, V), out_bias: float (V,), the next-word scores.
        steps: int, words to write.

    Returns:
        int32 (B, steps) word ids.

    Hint: a Python loop of `steps` iterations; `ops.argmax(scores, axis=-1)`, cast to
    int32; `ops.take(embeddings, words, axis=0)`; `ops.stack(list, axis=1)`.
    """
    raise NotImplementedError("Exercise: greedy_decode")


def corpus_bleu(references, hypotheses, max_n=4):
    r"""Exercise 4. Corpus BLEU-1..N with the brevity penalty ([BLEU], sections 2.1 and 2.2).

    Every hypothesis (a caption STREAM wrote) has a list of references (the image's
    true captions). Sentences are token lists (strings: lower-case, split on spaces).
    Summed over the whole corpus (not averaged per sentence):

    * **clipped n-gram precision**: each n-gram of a hypothesis counts at most as often
      as it occurs in the one reference where it occurs most,
      $p_n = \sum_C \sum_{g} \min(\mathrm{count}_C(g), \max_R \mathrm{count}_R(g)) \,/\, \sum_C \sum_g \mathrm{count}_C(g)$;
    * **brevity penalty**: $c$ the total hypothesis length, $r$ the sum over hypotheses
      of the reference length closest to the hypothesis' length (the shorter one on a
      tie); $\mathrm{BP} = 1$ if $c > r$, else $e^{1 - r/c}$ (0 when $c = 0$);
    * $\mathrm{BLEU}\text{-}n = \mathrm{BP} \cdot \exp\big(\frac1n \sum_{k=1}^{n} \log p_k\big)$,
      and 0 when any $p_k$ (k <= n) is 0 (no smoothing).

    Args:
        references: one list of reference sentences per hypothesis.
        hypotheses: the hypotheses (strings or token lists).
        max_n: the largest n.

    Returns:
        `{"bleu1": float, ..., f"bleu{max_n}": float}`.

    Hint: `collections.Counter` of `tuple(tokens[i:i + n])`; `counter_a | counter_b` is
    the element-wise maximum of two Counters.
    """
    raise NotImplementedError("Exercise: corpus_bleu")


# Exercise 5 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The notebook's section "Evaluate: what does the STREAM loss buy?" trained MirrorGAN twice from the
# same seed and for the same steps, with the STREAM weight lambda = 10 and lambda = 0, and printed
# the R-precision (DAMSM), caption consistency, BLEU of STREAM's captions of the generated images
# and the FID analogue of each (the README's lesson-06 row has the figures of the full fast() preset
# when they are measured). In 4 to 8 sentences: what does the STREAM loss ask of the generator that
# the discriminators' conditional losses do not? Which of the four numbers is measured with the very
# network that gives the loss, and what does that mean for reading it? Why can the BLEU of the
# captions rise while caption consistency (or the FID analogue) does not, and which measurement
# would you trust to decide whether lambda = 10 really helps?
REFLECTION = """
(Write your answer here.)
"""
