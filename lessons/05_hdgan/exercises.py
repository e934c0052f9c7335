# Generated from solutions/05_hdgan/exercises.py by `python -m ganlib.course.stubs`: edit the solution, not this file.
r"""Lesson 05 exercises: HDGAN (side outputs, hierarchically-nested discriminators, the
multi-purpose adversarial losses) and the visual-semantic embedding of its VS similarity.

Fill in every function below. Compute with `keras.ops` only (not numpy, `tf.`,
`torch.` or `jax.`), so that your code runs on the TensorFlow, JAX and PyTorch
backends and can drive the notebook's training: your `pair_loss` and `local_image_loss`
are the discriminators' losses at every side output of the notebook's HDGAN, your
`side_output` is every side-output head of its generator, and your
`bidirectional_ranking_loss` trains the notebook's visual-semantic embedding.
Exercises 1-4 are numbered as in the notebook. Exercise 5 is a question, not code:
answer it in `REFLECTION` at the end of this file.

Papers:
    [HDGAN] Zhang, Xie and Yang 2018, "Photographic Text-to-Image Synthesis with a
            Hierarchically-nested Adversarial Network" (CVPR); reference code ypxie/HDGan.
    [LSGAN] Mao et al. 2017, "Least Squares Generative Adversarial Networks" (ICCV).

Check your work:

    ganlib grade 05                                  # score table
    GANLIB_SUBMISSION=lessons/05_hdgan/exercises.py pytest tests/grading/test_05_hdgan.py
"""

from keras import layers, ops

from ganlib.layers import ReflectionPadding2D


def pair_loss(real, wrong, fake):
    r"""Exercise 1. The pair branch's discriminator loss at one side output ([HDGAN], section
    "Multi-purpose adversarial losses", with [LSGAN]'s least squares as the reference code).

    The pair branch scores (image, text) pairs: a real image with its own text should score 1,
    a real image with another item's text (the *wrong* pair) and a generated image with the
    text should score 0. Each term is a least-squares loss, the mean of $(D - t)^2$ over the
    batch (PyTorch's `MSELoss`), and the two negatives share half a weight:

    $$L^{pair}_{D} = \mathrm{mse}(r, 1) + \tfrac12\big[\mathrm{mse}(w, 0) + \mathrm{mse}(f, 0)\big],\qquad
      \mathrm{mse}(x, t) = \frac1B\sum_b (x_b - t)^2 .$$

    Args:
        real: float (B,) scores of the real pairs $D(Y, t)$.
        wrong: float (B,) scores of the mismatched pairs.
        fake: float (B,) scores of the generated pairs $D(X, t)$.

    Returns:
        A float32 scalar.

    Hint: `ops.mean(ops.square(x - t))`.
    """
    raise NotImplementedError("Exercise: pair_loss")


def local_image_loss(real, wrong, fake):
    r"""Exercise 2. The local image branch's discriminator loss at one side output ([HDGAN], section
    "Multi-purpose adversarial losses", as the reference code's `compute_d_img_loss`).

    The local branch sees no text: it scores each patch of the image (a map of $k \times k$
    scores, 5x5 at the largest side output, 1x1 below) as real or generated. So the wrong
    image, a *real* photograph of another item, counts **real** here:

    $$L^{local}_{D} = \mathrm{mse}(f_\ell, 0) + \tfrac12\big[\mathrm{mse}(w_\ell, 1) + \mathrm{mse}(r_\ell, 1)\big],$$

    each mse a mean over the batch **and** the patch map.

    Args:
        real, wrong, fake: float (B, k, k, 1) patch scores of the real, wrong and generated images.

    Returns:
        A float32 scalar.
    """
    raise NotImplementedError("Exercise: local_image_loss")


def bidirectional_ranking_loss(image_emb, text_emb, margin=0.2):
    r"""Exercise 3. The bidirectional ranking loss of the visual-semantic embedding behind HDGAN's
    VS similarity ([HDGAN], section "Evaluation metrics"; after Kiros et al.'s pairwise ranking loss).

    With the cosine similarity $s(v, t) = v^\top t / (\lVert v\rVert \lVert t\rVert)$, each
    matching pair $(v_k, t_k)$ of the batch must beat every mismatched caption of its image
    and every mismatched image of its caption by a margin $m$:

    $$L = \frac1B \sum_k \Big[\sum_{j \ne k} \max\big(0, m - s(v_k, t_k) + s(v_k, t_j)\big)
      + \sum_{j \ne k} \max\big(0, m - s(v_k, t_k) + s(v_j, t_k)\big)\Big].$$

    Args:
        image_emb: float (B, D) image embeddings $v$ (any norm).
        text_emb: float (B, D) embeddings $t$ of the matching captions.
        margin: $m$.

    Returns:
        A float32 scalar.

    Hint: normalise the rows (divide by `ops.norm(..., axis=-1, keepdims=True)`), then
    `scores = v @ t^T` holds every $s(v_i, t_j)$ and `ops.diagonal(scores)` the matching
    ones; leave the diagonal out of both sums (`1 - ops.eye(B)`).
    """
    raise NotImplementedError("Exercise: bidirectional_ranking_loss")


def side_output(h, size):
    r"""Exercise 4. Build a side-output head of the generator ([HDGAN], section "Hierarchical-nested
    adversarial objectives"; the reference code's `branch_out`).

    HDGAN's generator is one stream of feature maps from 4x4 up; at some of its scales a
    small head turns the feature map $h$ into an image $X_i$, which its own discriminator
    $D_i$ judges. The head is a 3x3 convolution to 3 channels, reflection-padded so that the
    border pixels see mirrored features rather than zeros, without bias, then tanh:

    $$X_i = \tanh\big(\mathrm{conv}_{3\times3}(\mathrm{reflect\_pad}_1(h))\big) \in [-1, 1].$$

    Build it with Keras layers on the symbolic tensor, in this order:

    * `ReflectionPadding2D(1)` (imported above from `ganlib.layers`);
    * `Conv2D(3, 3, use_bias=False)` (padding "valid": the padding is done);
    * `Activation("tanh")`.

    Args:
        h: Keras tensor (B, size, size, C), G's feature map at this side output.
        size: int, the side output's resolution (to name your layers if you like).

    Returns:
        A Keras tensor (B, size, size, 3): the side-output image.
    """
    raise NotImplementedError("Exercise: side_output")


# Exercise 5 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The notebook's section 6 ("Ablations in miniature", ablation (a)) trained HDGAN
# twice from the same seed and for the same steps: with a discriminator at every side output, and
# with one at the largest side output only (`top-only`), and printed the FID analogue and caption
# consistency of the largest output of each. In 4 to 8 sentences: what does a discriminator at a
# small side output give the layers of G below it that the top discriminator alone does not, and
# why should that matter more as the top resolution grows? The small side outputs are not shown
# to the user: what do they cost and what do they buy? Which numbers of the notebook would you
# need (how many steps, seeds) before concluding that the nested discriminators help here?
REFLECTION = """
(Write your answer here.)
"""
