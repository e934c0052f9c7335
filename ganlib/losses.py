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

    The conditioning-augmentation regulariser of StackGAN (Zhang et al. 2017, "Conditioning Augmentation"):

    $$D_{KL} = -\tfrac{1}{2}\,\mathrm{mean}\left(1 + \log\sigma^2 - \mu^2 - \sigma^2\right)$$

    averaged over the batch *and* the dimensions, as the reference code does (the
    paper's sum over dimensions is this times the condition size; the reference's
    KL weight of 2 assumes the mean).
    """
    mu = ops.cast(mu, "float32")
    logvar = ops.cast(logvar, "float32")
    return -0.5 * ops.mean(1.0 + logvar - ops.square(mu) - ops.exp(logvar))


def colour_statistics(images):
    """Per-image pixel mean (B, 3) and biased pixel covariance (B, 3, 3)."""
    x = ops.cast(images, "float32")
    shape = ops.shape(x)
    x = ops.reshape(x, (shape[0], -1, shape[-1]))                       # (B, N, 3)
    mu = ops.mean(x, axis=1)                                            # (B, 3)
    centred = x - mu[:, None, :]
    sigma = ops.einsum("bni,bnj->bij", centred, centred) / ops.cast(ops.shape(x)[1], "float32")
    return mu, sigma


def color_consistency(x_a, x_b, lambda_mean=1.0, lambda_cov=5.0):
    r"""StackGAN++'s colour-consistency regulariser (Zhang et al. 2018, "Color-consistency regularization").

    The images one generator tree makes for the same input at two scales should
    share their colours. For each image, over its $N$ pixels $x_k$ (RGB):

    $$\mu = \tfrac1N \textstyle\sum_k x_k,\qquad
    \Sigma = \tfrac1N \textstyle\sum_k (x_k - \mu)(x_k - \mu)^\top$$

    $$L_C = \lambda_1 \lVert \mu_a - \mu_b \rVert^2 + \lambda_2 \lVert \Sigma_a - \Sigma_b \rVert_F^2$$

    reduced as the reference code does: a *mean* (not sum) over the 3 mean and
    9 covariance components and over the batch, with $\lambda_1 = 1$, $\lambda_2 = 5$.
    The two inputs may differ in resolution (each image's statistics are over
    its own pixels).

    Args:
        x_a, x_b: images `(B, H_a, W_a, 3)` and `(B, H_b, W_b, 3)`.
        lambda_mean, lambda_cov: $\lambda_1$, $\lambda_2$.
    """
    mu_a, sigma_a = colour_statistics(x_a)
    mu_b, sigma_b = colour_statistics(x_b)
    return (lambda_mean * ops.mean(ops.square(mu_a - mu_b))
            + lambda_cov * ops.mean(ops.square(sigma_a - sigma_b)))
