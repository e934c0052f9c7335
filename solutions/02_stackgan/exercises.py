r"""Lesson 02 exercises: StackGAN — conditioning augmentation and the second stage.

Fill in every function below. Compute with `keras.ops` and Keras layers only (not
numpy, `tf.`, `torch.` or `jax.`), so that your code runs on the TensorFlow, JAX
and PyTorch backends and can drive the notebook's training: your
`reparameterize` samples the condition inside both generators, your
`kl_divergence` and `generator_loss_with_kl` are the generator's loss, your
`residual_block` builds the Stage-II generator, and your `mean_pairwise_distance`
measures how diverse the samples are. `mean_pairwise_distance` may use numpy
(it runs on evaluation features, outside training).

Papers:
    [StackGAN] Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis
               with Stacked Generative Adversarial Networks" (ICCV).
    [VAE]      Kingma & Welling 2014, "Auto-Encoding Variational Bayes".
    [ResNet]   He et al. 2016, "Deep Residual Learning for Image Recognition".

Check your work:

    ganlib grade 02                                  # score table
    GANLIB_SUBMISSION=lessons/02_stackgan/exercises.py pytest tests/grading/test_02_stackgan.py
"""

import keras
import numpy as np
from keras import layers, ops

from ganlib import losses


def reparameterize(mu, logvar, eps):
    r"""Sample the conditioning variable $\hat c$ ([StackGAN], "Conditioning Augmentation"; [VAE], Sec. 2.4).

    Conditioning augmentation draws $\hat c$ from $\mathcal{N}(\mu(\varphi_t),
    \Sigma(\varphi_t))$ with $\Sigma = \mathrm{diag}(\sigma^2)$. To let gradients
    reach $\mu$ and $\sigma$ (the outputs of a fully connected layer), the sample
    is written as a deterministic function of the parameters and an independent
    standard normal noise $\epsilon$ (the reparameterisation trick):

    $$\hat c = \mu + \sigma \odot \epsilon,\qquad \sigma = \exp\left(\tfrac12 \log\sigma^2\right).$$

    The network outputs $\log\sigma^2$ (`logvar`), which can be any real number.

    Args:
        mu: float tensor (B, N_g), the means.
        logvar: float tensor (B, N_g), the log-variances $\log\sigma^2$.
        eps: float tensor (B, N_g), standard normal noise.

    Returns:
        A float32 tensor (B, N_g).

    Hint: `ops.exp`; convert the inputs with `ops.convert_to_tensor(x, "float32")`.
    """
    # BEGIN SOLUTION
    mu = ops.convert_to_tensor(mu, "float32")
    logvar = ops.convert_to_tensor(logvar, "float32")
    eps = ops.convert_to_tensor(eps, "float32")
    return mu + ops.exp(0.5 * logvar) * eps
    # END SOLUTION


def kl_divergence(mu, logvar):
    r"""The conditioning-augmentation regulariser ([StackGAN], "Conditioning Augmentation").

    $D_{KL}\big(\mathcal{N}(\mu, \mathrm{diag}(\sigma^2)) \,\|\, \mathcal{N}(0, I)\big)$
    has a closed form ([VAE], Appendix B): per dimension $j$,

    $$D_{KL,j} = -\tfrac12\left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right).$$

    The paper sums over the $N_g$ dimensions; the reference code takes the
    **mean over the batch and over the dimensions**, and its KL weight
    $\lambda = 2$ is tuned for that mean. Compute the mean:

    $$D_{KL} = -\frac{1}{2 B N_g}\sum_{b, j}\left(1 + \log\sigma_{bj}^2 - \mu_{bj}^2 - \sigma_{bj}^2\right).$$

    Args:
        mu: float tensor (B, N_g).
        logvar: float tensor (B, N_g), $\log\sigma^2$.

    Returns:
        A float32 scalar tensor, >= 0, and 0 exactly when mu = 0 and logvar = 0.
    """
    # BEGIN SOLUTION
    mu = ops.convert_to_tensor(mu, "float32")
    logvar = ops.convert_to_tensor(logvar, "float32")
    return -0.5 * ops.mean(1.0 + logvar - ops.square(mu) - ops.exp(logvar))
    # END SOLUTION


def generator_loss_with_kl(fake_logits, mu, logvar, kl_weight=2.0):
    r"""The whole generator loss of one StackGAN stage ([StackGAN], "Stage-I GAN" and "Stage-II GAN").

    $$L_G = \mathbb{E}\left[\log\left(1 - D(G(z, \hat c), \varphi_t)\right)\right]
          + \lambda\, D_{KL}\left(\mathcal{N}(\mu(\varphi_t), \Sigma(\varphi_t)) \,\|\, \mathcal{N}(0, I)\right)$$

    with, as in the reference code (and lesson 01), the non-saturating form of
    the first term: the batch mean of $\mathrm{bce}(s_f, 1)$ on D's logits $s_f$,
    which `losses.generator_loss(fake_logits)` computes. Use YOUR `kl_divergence`.

    Args:
        fake_logits: float tensor (B,), D's logits for (fake image, its text).
        mu, logvar: float tensors (B, N_g), the F_ca outputs of the generator.
        kl_weight: $\lambda$ (2 in the reference code; the model passes 0 when
            conditioning augmentation is off).

    Returns:
        A float32 scalar tensor.
    """
    # BEGIN SOLUTION
    return losses.generator_loss(fake_logits) + kl_weight * kl_divergence(mu, logvar)
    # END SOLUTION


def residual_block(h, filters):
    r"""Build one residual block of the Stage-II generator ([StackGAN], "Implementation details"; [ResNet]).

    Stage-II refines its joint image-text code with residual blocks, each of which
    learns a *correction* $F(h)$ added to its input:

    $$\mathrm{out} = \mathrm{ReLU}\left(h + \mathrm{BN}_2(\mathrm{conv}_2(\mathrm{ReLU}(\mathrm{BN}_1(\mathrm{conv}_1(h)))))\right)$$

    with $\mathrm{conv}_{1,2}$ 3x3, stride 1, "same" padding, `filters` channels and
    no bias (the BN after each conv has its own offset). Build it with Keras layers
    on the symbolic tensor `h`, in this order:

    `Conv2D(filters, 3, padding="same", use_bias=False)`, `BatchNormalization(...)`,
    `ReLU()`, `Conv2D(...)` as the first, `BatchNormalization(...)`, then the sum with
    `h` (`layers.Add()`) and a last `ReLU()`. Give the BatchNormalizations the
    reference code's `momentum=0.9, epsilon=1e-5`: with Keras' default momentum
    (0.99) the moving statistics, which `generate()` uses, lag far behind a short
    classroom run.

    Args:
        h: a Keras tensor (B, H, W, filters), e.g. `keras.Input((16, 16, 64))` or a
            layer's output inside a functional model.
        filters: int, the number of channels of h (the sum needs the same shape).

    Returns:
        A Keras tensor with the shape of h.

    Hint: layers are called on tensors: `x = layers.ReLU()(layers.BatchNormalization(...)(x))`.
    Make new layers on every call (each block has its own weights).
    """
    # BEGIN SOLUTION
    r = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    r = layers.ReLU()(layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(r))
    r = layers.Conv2D(filters, 3, padding="same", use_bias=False)(r)
    r = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(r)
    return layers.ReLU()(layers.Add()([h, r]))
    # END SOLUTION


def mean_pairwise_distance(features):
    r"""How different the samples are: the mean Euclidean distance over all pairs.

    Conditioning augmentation should give *diverse* images for one caption
    ([StackGAN], "Component analysis"). To measure it, the notebook embeds N samples of one
    caption with the SynthBirds evaluation network and averages the distance of
    every pair $i < j$ of feature vectors $f_i$:

    $$\bar d = \frac{2}{N (N - 1)} \sum_{i < j} \lVert f_i - f_j \rVert_2.$$

    Args:
        features: array-like (N, F), N >= 2 (numpy is fine here).

    Returns:
        A Python float.

    Hint: $\lVert f_i - f_j \rVert^2 = \lVert f_i \rVert^2 + \lVert f_j \rVert^2 - 2 f_i \cdot f_j$
    for all pairs at once, clipped at 0 before the square root (round-off), then
    the mean over the upper triangle (`np.triu_indices(N, 1)`).
    """
    # BEGIN SOLUTION
    f = np.asarray(keras.ops.convert_to_numpy(features), np.float64)
    squared = np.sum(f**2, axis=1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2.0 * f @ f.T, 0.0)
    i, j = np.triu_indices(len(f), 1)
    return float(np.mean(np.sqrt(d2[i, j])))
    # END SOLUTION
