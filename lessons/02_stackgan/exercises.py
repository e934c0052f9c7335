# Generated from solutions/02_stackgan/exercises.py by `python -m ganlib.course.stubs`: edit the solution, not this file.
r"""Lesson 02 exercises: StackGAN — conditioning augmentation and the second stage.

Fill in every function below. Compute with `keras.ops` and Keras layers only (not
numpy, `tf.`, `torch.` or `jax.`), so that your code runs on the TensorFlow, JAX
and PyTorch backends and can drive the notebook's training: your
`reparameterize` samples the condition inside both generators, your
`kl_divergence` and `generator_loss_with_kl` are the generator's loss, your
`joint_encoder` and `residual_block` build the Stage-II generator, and your
`mean_pairwise_distance` measures how diverse the samples are.
`mean_pairwise_distance` may use numpy (it runs on evaluation features, outside
training). Exercise 7 is a question, not code: answer it in `REFLECTION` at the end
of this file (the instructor grades it; `ganlib grade` gives it no score).

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
from ganlib.layers import ReplicateConcat


def reparameterize(mu, logvar, eps):
    r"""Exercise 1. Sample the conditioning variable $\hat c$ ([StackGAN], "Conditioning Augmentation"; [VAE], Sec. 2.4).

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
    raise NotImplementedError("Exercise: reparameterize")


def kl_divergence(mu, logvar):
    r"""Exercise 2. The conditioning-augmentation regulariser ([StackGAN], "Conditioning Augmentation").

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
    raise NotImplementedError("Exercise: kl_divergence")


def generator_loss_with_kl(fake_logits, mu, logvar, kl_weight=2.0):
    r"""Exercise 3. The whole generator loss of one StackGAN stage ([StackGAN], "Stage-I GAN" and "Stage-II GAN").

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
    raise NotImplementedError("Exercise: generator_loss_with_kl")


def joint_encoder(image, c_hat, ngf):
    r"""Exercise 4. Build Stage-II's joint image-text encoder ([StackGAN], "Stage-II GAN" and "Implementation details").

    Stage-II does not draw from noise: it *reads* Stage-I's image $s_0$ and the text
    again. An encoder brings $s_0$ down to a spatial code; the condition $\hat c$
    (Stage-II's own conditioning augmentation) is replicated over the code and
    depth-concatenated, as in lesson 01's discriminator, and a 3x3 convolution
    mixes them into the joint image-text code that the residual blocks refine:

    $$h = \mathrm{enc}(s_0) \in \mathbb{R}^{\frac s4 \times \frac s4 \times 4 N_{gf}},\qquad
      j = \mathrm{ReLU}\left(\mathrm{BN}\left(\mathrm{conv}_{3\times3}\left([h ;\, \mathrm{replicate}(\hat c)]\right)\right)\right).$$

    Build it with Keras layers on the symbolic tensors, in this order:

    * `Conv2D(ngf, 3, padding="same")` (with bias), `ReLU()`;
    * twice, for `filters` = 2 ngf then 4 ngf: `Conv2D(filters, 4, strides=2,
      padding="same", use_bias=False)`, `BatchNormalization(momentum=0.9,
      epsilon=1e-5)`, `ReLU()` (each halves the size: s -> s/2 -> s/4);
    * `ReplicateConcat()([h, c_hat])` (`ganlib.layers`: what you wrote in lesson 01);
    * `Conv2D(4 * ngf, 3, padding="same", use_bias=False)`,
      `BatchNormalization(momentum=0.9, epsilon=1e-5)`, `ReLU()`.

    Args:
        image: Keras tensor (B, s, s, 3), Stage-I's image $s_0$.
        c_hat: Keras tensor (B, N_g), Stage-II's condition $\hat c$.
        ngf: int, $N_{gf}$, the generator's base width.

    Returns:
        A Keras tensor (B, s/4, s/4, 4 ngf): the joint code.

    Hint: as in `residual_block` below, `x = layers.ReLU()(layers.BatchNormalization(...)(x))`.
    """
    raise NotImplementedError("Exercise: joint_encoder")


def residual_block(h, filters):
    r"""Exercise 5. Build one residual block of the Stage-II generator ([StackGAN], "Implementation details"; [ResNet]).

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
    raise NotImplementedError("Exercise: residual_block")


def mean_pairwise_distance(features):
    r"""Exercise 6. How different the samples are: the mean Euclidean distance over all pairs.

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
    raise NotImplementedError("Exercise: mean_pairwise_distance")


# Exercise 7 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The notebook's ablation "Without conditioning augmentation" measured, with the full fast()
# preset, a diversity (mean pairwise feature distance of 16 samples of one caption) of 13.8 with
# CA against 3.0 without, at a similar caption consistency (0.345 vs 0.348), and 5.9 for real
# birds of one species. In 4 to 8 sentences: why are the no-CA samples of a caption nearly
# copies of each other although z still varies, and why can the CA model's samples be MORE
# diverse than real birds of one species? Why is diversity only worth comparing between
# models of similar FID and caption consistency?
REFLECTION = """
(Write your answer here.)
"""
