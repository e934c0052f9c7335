r"""Lesson 01 exercises: conditional GANs and GAN-INT-CLS.

Fill in every function below. Compute with `keras.ops` only (not numpy, `tf.`,
`torch.` or `jax.`; numpy is fine for checking inputs, as in `one_hot_labels`), so
that your code runs on the TensorFlow, JAX and PyTorch backends and can drive the
notebook's training, which calls your losses and your interpolation inside `fit()`
and builds its discriminator's conditioned head with your `discriminator_head`.
Where a function calls another one of yours (the losses call
`sigmoid_cross_entropy`; `discriminator_head` uses `concat_condition`), write them
in order. Exercise 8 is a question, not code: answer it in `REFLECTION` at the end
of this file (the instructor grades it; `ganlib grade` gives it no score).

Papers:
    [GAN]  Goodfellow et al. 2014, "Generative Adversarial Nets".
    [CGAN] Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".
    [Reed] Reed et al. 2016, "Generative Adversarial Text to Image Synthesis".

Check your work:

    ganlib grade 01                                  # score table
    GANLIB_SUBMISSION=lessons/01_cgan/exercises.py pytest tests/grading/test_01_cgan.py
"""

import keras
import numpy as np
from keras import layers, ops


def sigmoid_cross_entropy(logits, labels):
    r"""Exercise 1. Elementwise binary cross-entropy of a logit $x$ against a target $z$.

    With $\sigma(x) = 1 / (1 + e^{-x})$ the discriminator's probability,

    $$\mathrm{bce}(x, z) = -z \log \sigma(x) - (1 - z) \log(1 - \sigma(x)),$$

    which, rewritten so that no $\log 0$ or overflowing $e^{x}$ is ever computed, is

    $$\mathrm{bce}(x, z) = \max(x, 0) - x z + \log\left(1 + e^{-|x|}\right).$$

    Args:
        logits: float tensor of any shape, the discriminator's pre-sigmoid outputs $x$.
        labels: float tensor of the same shape (or broadcastable to it), targets
            $z$ in [0, 1].

    Returns:
        A float32 tensor with the shape of `logits`, finite even for logits of +-100.

    Hint: `ops.maximum`, `ops.abs`, `ops.exp` and `ops.log1p` (log(1 + y), accurate
    for small y). Convert the inputs first with `ops.convert_to_tensor(x, "float32")`.
    """
    # BEGIN SOLUTION
    x = ops.convert_to_tensor(logits, "float32")
    z = ops.convert_to_tensor(labels, "float32")
    return ops.maximum(x, 0.0) - x * z + ops.log1p(ops.exp(-ops.abs(x)))
    # END SOLUTION


def generator_loss(fake_logits):
    r"""Exercise 2. The non-saturating generator loss ([GAN], Section 3).

    The min-max game has G minimise $\log(1 - D(G(z)))$, whose gradient vanishes
    while D confidently rejects the early, poor samples. Goodfellow et al. train G
    to maximise $\log D(G(z))$ instead; on logits $s_f$ that is

    $$L_G = \overline{\mathrm{bce}}(s_f, 1),$$

    the batch mean of `sigmoid_cross_entropy(fake_logits, 1)`.

    Args:
        fake_logits: float tensor (B,) or (B, 1), D's logits for (fake image, right text).

    Returns:
        A float32 scalar tensor.

    Hint: one line with `sigmoid_cross_entropy`, `ops.ones_like` and `ops.mean`.
    """
    # BEGIN SOLUTION
    fake_logits = ops.convert_to_tensor(fake_logits, "float32")
    return ops.mean(sigmoid_cross_entropy(fake_logits, ops.ones_like(fake_logits)))
    # END SOLUTION


def one_hot_labels(labels, num_classes):
    r"""Exercise 3. One-hot class conditions $y$ for the class-conditional GAN ([CGAN], Sec. 4.1).

    Mirza & Osindero condition both networks on the class label as a one-hot
    vector: the objective ([CGAN], "Conditional Adversarial Nets") is

    $$\min_G \max_D \; \mathbb{E}_{x}\left[\log D(x \mid y)\right]
      + \mathbb{E}_{z}\left[\log(1 - D(G(z \mid y)))\right].$$

    Args:
        labels: integer array-like (B,) of class ids, each in [0, num_classes).
        num_classes: int, the number of classes K.

    Returns:
        A float32 tensor (B, K) with a single 1 per row, at column `labels[b]`.

    Raises:
        ValueError: naming `labels` and the offending value when an id is negative
            or >= num_classes (a silent all-zero row would train on garbage).

    Hint: check the range with numpy first (`np.asarray(labels)`), then use
    `ops.one_hot(labels, num_classes)` and cast to float32.
    """
    # BEGIN SOLUTION
    ids = np.asarray(ops.convert_to_numpy(labels) if not isinstance(labels, (list, tuple))
                     else labels)
    bad = (ids < 0) | (ids >= num_classes)
    if np.any(bad):
        raise ValueError(f"labels must be class ids in [0, {num_classes}); got "
                         f"{int(ids[bad].ravel()[0])} (num_classes={num_classes})")
    return ops.cast(ops.one_hot(ops.convert_to_tensor(ids, "int32"), num_classes), "float32")
    # END SOLUTION


def concat_condition(h, c):
    r"""Exercise 4. Condition a discriminator feature map on text by depth concatenation ([Reed], Sec. 4.1).

    "When the spatial dimension of the discriminator is 4x4, we replicate the
    description embedding spatially and perform a depth concatenation": the
    condition $c \in \mathbb{R}^{D}$ of each example is copied to every pixel of
    its feature map $h \in \mathbb{R}^{H \times W \times C}$ and stacked on the
    channels,

    $$[h; c]_{b,i,j} = (h_{b,i,j,1}, \dots, h_{b,i,j,C}, c_{b,1}, \dots, c_{b,D}).$$

    Args:
        h: float tensor (B, H, W, C), image features (channels last).
        c: float tensor (B, D), the (projected) text embedding.

    Returns:
        A float32 tensor (B, H, W, C + D): the first C channels are `h` unchanged,
        the last D channels equal `c[b]` at every pixel of example b.

    Hint: `ops.expand_dims` twice turns c into (B, 1, 1, D); `ops.tile` with the
    spatial size from `ops.shape(h)` replicates it; `ops.concatenate(..., axis=-1)`.
    """
    # BEGIN SOLUTION
    h = ops.convert_to_tensor(h, "float32")
    c = ops.convert_to_tensor(c, "float32")
    height, width = ops.shape(h)[1], ops.shape(h)[2]
    c = ops.expand_dims(ops.expand_dims(c, 1), 1)  # (B, 1, 1, D)
    c = ops.tile(c, (1, height, width, 1))  # (B, H, W, D)
    return ops.concatenate([h, c], axis=-1)
    # END SOLUTION


def matching_aware_d_loss(real_logits, wrong_logits, fake_logits):
    r"""Exercise 5. The matching-aware discriminator loss of GAN-CLS ([Reed], Algorithm 1).

    The discriminator scores three kinds of pairs: a real image with its own
    caption ($s_r$, target 1), a real image with a mismatched caption ($s_w$,
    target 0) and a generated image with the caption it was made from ($s_f$,
    target 0). Algorithm 1 writes $L_D \leftarrow \log(s_r) + (\log(1 - s_w) +
    \log(1 - s_f)) / 2$ (to be maximised); as a loss on logits:

    $$L_D = \overline{\mathrm{bce}}(s_r, 1)
          + \tfrac{1}{2}\left(\overline{\mathrm{bce}}(s_w, 0) + \overline{\mathrm{bce}}(s_f, 0)\right)$$

    where $\overline{\mathrm{bce}}$ is `sigmoid_cross_entropy` averaged over the
    batch. The real pair weighs as much as the two "reject" pairs together.

    Args:
        real_logits: float tensor (B,) or (B, 1), logits for (real image, right text).
        wrong_logits: same shape, logits for (real image, wrong text).
        fake_logits: same shape, logits for (fake image, right text).

    Returns:
        A float32 scalar tensor (shape ()).

    Hint: `ops.ones_like` / `ops.zeros_like` make the targets, `ops.mean` averages.
    Average each term on its own before adding them.
    """
    # BEGIN SOLUTION
    real_logits = ops.convert_to_tensor(real_logits, "float32")
    wrong_logits = ops.convert_to_tensor(wrong_logits, "float32")
    fake_logits = ops.convert_to_tensor(fake_logits, "float32")
    real = ops.mean(sigmoid_cross_entropy(real_logits, ops.ones_like(real_logits)))
    wrong = ops.mean(sigmoid_cross_entropy(wrong_logits, ops.zeros_like(wrong_logits)))
    fake = ops.mean(sigmoid_cross_entropy(fake_logits, ops.zeros_like(fake_logits)))
    return real + 0.5 * (wrong + fake)
    # END SOLUTION


def interpolate_embeddings(t1, t2, beta=0.5):
    r"""Exercise 6. GAN-INT: interpolate between two text embeddings ([Reed], "Learning with manifold interpolation").

    Reed et al. add to the generator's objective the term

    $$\mathbb{E}_{t_1, t_2 \sim p_{data}}\left[\log\left(1 - D(G(z, \beta t_1 + (1 - \beta) t_2))\right)\right],$$

    i.e. G must also fool D on points *between* the captions of the data, which
    fills the text manifold. This function computes the interpolated embedding
    $\beta t_1 + (1 - \beta) t_2$ (the paper uses $\beta = 0.5$).

    Args:
        t1: float tensor (B, D), embeddings of a first batch of captions.
        t2: float tensor (B, D), embeddings of a second batch (e.g. t1 shuffled).
        beta: float in [0, 1], or a tensor broadcastable to (B, D) (e.g. (B, 1)):
            the weight of `t1`. beta=1 gives t1, beta=0 gives t2.

    Returns:
        A float32 tensor (B, D).

    Hint: plain arithmetic on tensors; convert the inputs to float32 first.
    """
    # BEGIN SOLUTION
    t1 = ops.convert_to_tensor(t1, "float32")
    t2 = ops.convert_to_tensor(t2, "float32")
    beta = ops.convert_to_tensor(beta, "float32")
    return beta * t1 + (1.0 - beta) * t2
    # END SOLUTION


class ConcatCondition(layers.Layer):
    """Your `concat_condition` as a Keras layer: `ConcatCondition()([h, c])` inside a
    functional model (given, not an exercise). The notebook's discriminator replicates
    its text with it, so with your `discriminator_head` it runs your Exercise 4."""

    def call(self, inputs):
        return concat_condition(*inputs)

    def compute_output_shape(self, input_shape):
        (batch, height, width, channels), (_, dim) = input_shape
        return (batch, height, width, None if channels is None or dim is None else channels + dim)


def discriminator_head(h, condition, proj_dim):
    r"""Exercise 7. Build the text-conditioned head of the discriminator ([Reed], Sec. 4.1).

    GAN-INT-CLS's $D$ halves its image to a $4 \times 4$ code $h$ with strided
    convolutions (given). The head makes $D$ a judge of (image, text) *pairs*: the
    condition is compressed by a fully connected layer, replicated over the 4x4 grid
    and depth-concatenated (your Exercise 4), and convolutions read image and text
    together:

    $$t = \mathrm{LReLU}(W c + b) \in \mathbb{R}^{P},\qquad
      u = \mathrm{LReLU}\left(\mathrm{BN}\left(\mathrm{conv}_{1\times1}([h ; t])\right)\right),\qquad
      s = \mathrm{conv}_{4\times4}(u),$$

    LReLU with slope 0.2. Build it with Keras layers on the symbolic tensors, in this order:

    * `Dense(proj_dim)`, then `LeakyReLU(0.2)` on the condition;
    * `ConcatCondition()([h, t])` (above: your `concat_condition` as a layer);
    * `Conv2D(C, 1, use_bias=False)` with C = h's channels (`h.shape[-1]`),
      `BatchNormalization()` (Keras' defaults, as `Config.fast()`), `LeakyReLU(0.2)`;
    * `Conv2D(1, 4, padding="valid")` (with its bias): 4x4 -> 1x1, one logit;
    * `Reshape(())`: the logits as a vector (B,).

    The same head conditions the class CGAN's $D$, with a one-hot class (your Exercise 3)
    as the condition instead of the sentence embedding.

    Args:
        h: Keras tensor (B, 4, 4, C), D's image code.
        condition: Keras tensor (B, K), the sentence embedding $\varphi(t)$ (or a one-hot class).
        proj_dim: int P, the compressed text's size (Reed et al.: 128).

    Returns:
        A Keras tensor (B,): D's logit for each (image, condition) pair.

    Hint: layers are called on tensors, `t = layers.LeakyReLU(0.2)(layers.Dense(proj_dim)(condition))`.
    """
    # BEGIN SOLUTION
    text = layers.LeakyReLU(0.2)(layers.Dense(proj_dim)(condition))
    joint = ConcatCondition()([h, text])
    joint = layers.Conv2D(h.shape[-1], 1, use_bias=False)(joint)
    joint = layers.LeakyReLU(0.2)(layers.BatchNormalization()(joint))
    logit = layers.Conv2D(1, 4, padding="valid")(joint)
    return layers.Reshape(())(logit)
    # END SOLUTION


# Exercise 8 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The notebook's section "Which parts does D check?" measured, for the full fast() preset, that
# D prefers the right colour for 87% of the birds for the wings but only 55% for the tail, and
# that the generator's wings matched their caption 81% of the time against 25% for the tails.
# In 4 to 8 sentences: why does the matching-aware D learn to check the wings first, and so
# little the tail? Propose one change to how the mismatched (wrong) captions are drawn that
# should make D check the tail, and say which numbers of the notebook you would compare,
# before and after, to tell whether it worked.
REFLECTION = """
(Write your answer here.)
"""
