r"""Losses of the course's papers, written with `keras.ops` so they run on every backend.

Every loss reduces the way the paper's reference implementation does, so the
papers' loss weights carry over unchanged (DESIGN.md, "Public API conventions").

The adversarial losses are binary cross-entropies on *logits*,

$$\mathrm{bce}(x, z) = \max(x, 0) - x z + \log\left(1 + e^{-|x|}\right),$$

which equals $-z \log \sigma(x) - (1 - z) \log(1 - \sigma(x))$ without ever
computing $\log 0$.
"""

from keras import ops


def sigmoid_cross_entropy(logits, labels):
    r"""Elementwise, numerically stable binary cross-entropy on logits.

    $$\mathrm{bce}(x, z) = \max(x, 0) - x z + \log(1 + e^{-|x|})$$

    Args:
        logits: tensor of any shape, the discriminator's pre-sigmoid outputs.
        labels: tensor broadcastable to `logits`, targets in [0, 1].

    Returns:
        A tensor with the shape of `logits`.
    """
    logits = ops.cast(logits, "float32")
    labels = ops.cast(labels, "float32")
    return ops.maximum(logits, 0.0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def bce(logits, target):
    """Mean binary cross-entropy of `logits` against a constant `target` (0 or 1)."""
    logits = ops.cast(logits, "float32")
    return ops.mean(sigmoid_cross_entropy(logits, ops.full(ops.shape(logits), target)))


def matching_aware_d_loss(real_logits, wrong_logits, fake_logits):
    r"""The matching-aware discriminator loss of GAN-CLS (Reed et al. 2016, Alg. 1).

    The discriminator sees three pairs: a real image with its caption ($s_r$), a
    real image with a mismatched caption ($s_w$) and a generated image with the
    caption it was made from ($s_f$):

    $$L_D = \mathrm{bce}(s_r, 1) + \tfrac{1}{2}\left(\mathrm{bce}(s_w, 0) + \mathrm{bce}(s_f, 0)\right)$$

    Each term is averaged over the batch (the reference code's convention; the
    paper's Alg. 1 writes the same with $\log$ and $1/2$).

    Args:
        real_logits: (B,) or (B, 1) logits for (real image, right text).
        wrong_logits: logits for (real image, wrong text).
        fake_logits: logits for (fake image, right text).

    Returns:
        A scalar tensor.
    """
    return bce(real_logits, 1.0) + 0.5 * (bce(wrong_logits, 0.0) + bce(fake_logits, 0.0))


def generator_loss(fake_logits):
    r"""The non-saturating generator loss (Goodfellow et al. 2014, Sec. 3).

    Instead of minimising $\log(1 - D(G(z)))$, whose gradient vanishes when the
    discriminator wins early in training, G maximises $\log D(G(z))$:

    $$L_G = \mathrm{bce}(s_f, 1)$$ averaged over the batch.
    """
    return bce(fake_logits, 1.0)


def kl_divergence(mu, logvar):
    r"""KL divergence of $\mathcal{N}(\mu, \mathrm{diag}(\sigma^2))$ to $\mathcal{N}(0, I)$.

    The conditioning-augmentation regulariser of StackGAN (Zhang et al. 2017, Eq. 3):

    $$D_{KL} = -\tfrac{1}{2}\,\mathrm{mean}\left(1 + \log\sigma^2 - \mu^2 - \sigma^2\right)$$

    averaged over the batch *and* the dimensions, as the reference code does (the
    paper's sum over dimensions is this times the condition size; the reference's
    KL weight of 2 assumes the mean).
    """
    mu = ops.cast(mu, "float32")
    logvar = ops.cast(logvar, "float32")
    return -0.5 * ops.mean(1.0 + logvar - ops.square(mu) - ops.exp(logvar))
