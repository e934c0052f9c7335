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


# --------------------------------------------------------------------------- #
# AttnGAN's DAMSM (Xu et al. 2018, Sec. 3.2)
# --------------------------------------------------------------------------- #
_EXCLUDED = -1e9   # a logit whose exp underflows to exactly 0 (the reference fills -inf)


def _masked_softmax(logits, mask, axis):
    """Softmax over ``axis`` where ``mask`` is 1; masked entries get probability 0."""
    return ops.softmax(ops.where(mask > 0, logits, _EXCLUDED), axis=axis)


def _cosine(x, y, eps=1e-8):
    r"""$x^\top y / \max(\lVert x\rVert \lVert y\rVert, \epsilon)$ over the last axis.

    Written as ``sqrt(max(|x|^2 |y|^2, eps^2))`` so a zero vector gives 0 with a
    zero (not NaN) gradient; the value is the reference's clamped cosine.
    """
    dot = ops.sum(x * y, axis=-1)
    norms = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1) * ops.sum(ops.square(y), axis=-1),
                                 eps * eps))
    return dot / norms


def word_region_attention(words, regions, word_mask, gamma1=4.0):
    r"""DAMSM's attention of each word over the image regions (AttnGAN, Eq. 7-9).

    $s = e^\top v$ (Eq. 7) holds the dot product of word $i$ and region $j$. It is
    normalised over the caption's words (Eq. 8), then sharpened by $\gamma_1$ and
    normalised over the regions (Eq. 9):

    $$\bar s_{i,j} = \frac{e^{s_{i,j}}}{\sum_k e^{s_{k,j}}},\qquad
    \alpha_{i,j} = \frac{e^{\gamma_1 \bar s_{i,j}}}{\sum_k e^{\gamma_1 \bar s_{i,k}}}$$

    Only the caption's real words (``word_mask`` 1) take part in the first softmax,
    as the reference code cuts each caption to its length. Leading axes broadcast
    (``words (B, 1, T, D)`` with ``regions (1, B, N, D)`` gives every pair).

    Args:
        words: ``(..., T, D)`` word features $e$.
        regions: ``(..., N, D)`` region features $v$.
        word_mask: ``(..., T)``, 1 for real words, 0 for padding.
        gamma1: $\gamma_1$.

    Returns:
        ``alpha (..., T, N)``: for each word, weights over the regions summing to 1.
    """
    s = ops.matmul(words, ops.swapaxes(regions, -1, -2))              # (..., T, N), Eq. 7
    s_bar = _masked_softmax(s, word_mask[..., :, None], axis=-2)      # over words, Eq. 8
    return ops.softmax(gamma1 * s_bar, axis=-1)                       # over regions, Eq. 9


def region_context(attention, regions):
    r"""The region-context vector of each word, $c_i = \sum_j \alpha_{i,j} v_j$ (AttnGAN, Eq. 9).

    Args:
        attention: ``(..., T, N)`` from :func:`word_region_attention`.
        regions: ``(..., N, D)``.

    Returns:
        ``(..., T, D)``.
    """
    return ops.matmul(attention, regions)


def matching_score(words, context, word_mask, gamma2=5.0):
    r"""Word-level image-text matching score $R(Q, D)$ (AttnGAN, Eq. 10, as the code computes it).

    Each word is compared with its region context by cosine,
    $R(c_i, e_i) = c_i^\top e_i / (\lVert c_i\rVert\,\lVert e_i\rVert)$, and the
    caption's real words are pooled by a log-sum-exp sharpened by $\gamma_2$:

    $$R(Q, D) = \log \sum_{i=1}^{T} \exp\big(\gamma_2 R(c_i, e_i)\big)$$

    The paper raises the sum to the power $1/\gamma_2$ (a smooth maximum over the
    words); the reference code leaves that exponent out, so its scores are
    $\gamma_2$ times larger, and $\gamma_3$ was tuned with that scale. We follow
    the code.

    Args:
        words: ``(..., T, D)``; context: ``(..., T, D)``; word_mask: ``(..., T)``.

    Returns:
        ``(...)``.
    """
    cos = _cosine(words, context)                                     # (..., T)
    return ops.log(ops.sum(ops.cast(word_mask, cos.dtype) * ops.exp(gamma2 * cos), axis=-1))


def _matching_cross_entropies(scores, class_ids):
    r"""Both directions' cross-entropies of a score matrix ``scores[i, j]`` (image i, text j).

    $-\log P(D_i \mid Q_i)$ with $P$ the softmax over the batch's texts for image
    $i$, plus the same over images for text $j$; each averaged over the batch.
    With ``class_ids``, pairs of different items of the same class are left out
    of the softmaxes (they are not negatives).
    """
    b = ops.shape(scores)[0]
    if class_ids is not None:
        c = ops.reshape(ops.cast(class_ids, "int32"), (-1,))
        same = ops.logical_and(ops.equal(c[:, None], c[None, :]),
                               ops.logical_not(ops.eye(b, dtype="bool")))
        scores = ops.where(same, _EXCLUDED, scores)
    true = ops.diagonal(scores)
    loss_images = ops.mean(ops.logsumexp(scores, axis=1) - true)     # image -> its caption
    loss_texts = ops.mean(ops.logsumexp(scores, axis=0) - true)      # caption -> its image
    return loss_images + loss_texts


def damsm_word_scores(regions, words, lengths, gamma1=4.0, gamma2=5.0):
    r"""$R(Q_i, D_j)$ for every image $i$ and caption $j$ of a batch: ``(B, B)``.

    One batched computation over all pairs (the reference loops over captions).
    """
    regions = ops.cast(regions, "float32")
    words = ops.cast(words, "float32")
    t = ops.shape(words)[1]
    mask = ops.cast(ops.arange(t)[None, :] < ops.cast(ops.reshape(lengths, (-1, 1)), "int32"),
                    "float32")                                        # (B, T)
    w = words[None, :, :, :]                                          # (1, B_text, T, D)
    v = regions[:, None, :, :]                                        # (B_img, 1, N, D)
    m = mask[None, :, :]                                              # (1, B_text, T)
    alpha = word_region_attention(w, v, m, gamma1)                    # (B_img, B_text, T, N)
    context = region_context(alpha, v)                                # (B_img, B_text, T, D)
    return matching_score(w, context, m, gamma2)                      # (B_img, B_text)


def damsm_loss(regions, image_code, words, sentence, lengths, gamma1=4.0, gamma2=5.0,
               gamma3=10.0, class_ids=None):
    r"""The DAMSM loss of AttnGAN (Xu et al. 2018, Sec. 3.2), as the reference code computes it.

    Word level: $R(Q_i, D_j)$ from :func:`word_region_attention`,
    :func:`region_context` and :func:`matching_score` for every image $Q_i$ and
    caption $D_j$ of the batch; the posterior of the true caption is a softmax
    of $\gamma_3 R$ over the batch's captions,
    $P(D_i|Q_i) = e^{\gamma_3 R(Q_i, D_i)} / \sum_j e^{\gamma_3 R(Q_i, D_j)}$, and
    $L^w = -\tfrac1B\sum_i \log P(D_i|Q_i) - \tfrac1B\sum_i \log P(Q_i|D_i)$.
    Sentence level: the same with $R(Q, D) = \cos(\bar v, \bar e)$.
    Each direction is a cross-entropy averaged over the batch, as the
    reference's ``nn.CrossEntropyLoss`` (the paper writes sums).

    Args:
        regions: ``(B, N, D)`` image region features $v$ (e.g. 17x17 = 289 regions).
        image_code: ``(B, D)`` global image feature $\bar v$.
        words: ``(B, T, D)`` word features $e$, padded after each caption's length.
        sentence: ``(B, D)`` sentence feature $\bar e$.
        lengths: ``(B,)`` number of real words per caption (>= 1).
        gamma1, gamma2, gamma3: the smoothing factors (4, 5, 10 in the reference).
        class_ids: optional ``(B,)``: items of the same class are not used as
            negatives of each other.

    Returns:
        ``(word_loss, sentence_loss)``, scalars, each the sum of the two directions.
    """
    word_scores = gamma3 * damsm_word_scores(regions, words, lengths, gamma1, gamma2)
    image_code = ops.cast(image_code, "float32")
    sentence = ops.cast(sentence, "float32")
    sentence_scores = gamma3 * _cosine(image_code[:, None, :], sentence[None, :, :])
    return (_matching_cross_entropies(word_scores, class_ids),
            _matching_cross_entropies(sentence_scores, class_ids))


def least_squares(outputs, target):
    r"""The least-squares GAN loss (LSGAN, Mao et al. 2017) of one set of D outputs against a
    constant target t (1 "real", 0 "fake"): $\mathrm{mean}\big((D - t)^2\big)$ over every element
    (PyTorch's `MSELoss`, as HDGAN's reference code scores its pair logits and its local patch
    maps, and pix2pixHD's the patches of each PatchGAN's prediction map)."""
    outputs = ops.cast(outputs, "float32")
    return ops.mean(ops.square(outputs - target))


def bidirectional_ranking_loss(image_emb, text_emb, margin=0.2):
    r"""The bidirectional ranking loss of a visual-semantic embedding (HDGAN's VS model, after
    Kiros et al.'s pairwise ranking loss), with cosine similarity $s(v, t)$ and every other item of
    the batch as a negative:

    $$L = \frac1B \sum_k \Big[\sum_{j \ne k} \max\big(0, m - s(v_k, t_k) + s(v_k, t_j)\big)
    + \sum_{j \ne k} \max\big(0, m - s(v_k, t_k) + s(v_j, t_k)\big)\Big]$$

    The reference's `PairwiseRankingLoss` (`trainNeuralDist.py`) returns the same sum without
    the $1/B$ (its embeddings are L2-normalised before, so its dot products are cosines).

    Args:
        image_emb: `(B, D)` image embeddings (any norm).
        text_emb: `(B, D)` sentence embeddings of the matching captions.
        margin: $m$.

    Returns:
        A scalar tensor.
    """
    v = ops.normalize(ops.cast(image_emb, "float32"), axis=-1)
    t = ops.normalize(ops.cast(text_emb, "float32"), axis=-1)
    scores = ops.matmul(v, ops.transpose(t))              # scores[i, j] = s(v_i, t_j)
    positive = ops.diagonal(scores)
    off = 1.0 - ops.eye(ops.shape(scores)[0])
    wrong_text = ops.relu(margin - positive[:, None] + scores) * off    # image k, caption j != k
    wrong_image = ops.relu(margin - positive[None, :] + scores) * off   # caption k, image i != k
    return (ops.sum(wrong_text) + ops.sum(wrong_image)) / ops.cast(ops.shape(scores)[0], "float32")


def feature_matching(real_features, fake_features):
    r"""pix2pixHD's discriminator feature-matching loss (Wang et al. 2018, section *Improved
    adversarial loss*).

    For each discriminator scale $k$ (of `num_D`) and each of its $L$ intermediate
    feature maps $D_k^{(i)}$ (the final prediction excluded):

    $$\mathcal{L}_{FM} = \sum_{k=1}^{num\_D} \sum_{i=1}^{L} \frac{4}{L}\,\frac{1}{num\_D}\;
    \mathrm{mean}\,\big|D_k^{(i)}(s, x) - D_k^{(i)}(s, G(s))\big|$$

    with the real features held constant. The paper weighs layer $i$ by $1/N_i$, $N_i$ its
    number of elements, which makes each term a mean; the reference code adds the
    weights $4 / (n\_layers\_D + 1)$ (with n_layers_D = 3 and the L = n_layers_D + 1
    intermediate maps, $4/L$) and $1 / num\_D$. Multiply by lambda_feat (10) outside.

    Args:
        real_features, fake_features: one list per discriminator scale, each holding
            that discriminator's L intermediate feature maps, in the same order.

    Returns:
        A scalar tensor.
    """
    if len(real_features) != len(fake_features):
        raise ValueError(f"feature_matching: {len(real_features)} real and {len(fake_features)} fake "
                         "discriminator scales; expected one list of feature maps per scale for each.")
    num_d = len(real_features)
    total = 0.0
    for k, (real, fake) in enumerate(zip(real_features, fake_features)):
        if len(real) != len(fake):
            raise ValueError(f"feature_matching: scale {k} has {len(real)} real and {len(fake)} fake feature maps.")
        weight = (4.0 / len(real)) * (1.0 / num_d)
        for r, f in zip(real, fake):
            total = total + weight * ops.mean(ops.abs(ops.cast(f, "float32") - ops.stop_gradient(ops.cast(r, "float32"))))
    return total


def caption_cross_entropy(logits, targets, mask):
    r"""MirrorGAN's text-semantic reconstruction loss (the STREAM loss), masked caption cross-entropy.

    The paper writes $\mathcal{L}_{stream} = -\sum_{t=0}^{L-1} \log p_t(T_t)$ (Qiao et al. 2019,
    section *Objective functions*): the log-probability the captioner, fed the generated
    image and the true previous words (teacher forcing), gives each true word $T_t$. The
    reference (qiaott/MirrorGAN `miscc/losses.py`, `caption_loss`) feeds `nn.CrossEntropyLoss`
    the `pack_padded_sequence` of the outputs and of the captions: padding is left out and
    the sum becomes a mean over the batch's real words,

    $$\mathcal{L} = -\frac{\sum_{b,t} m_{bt} \log \mathrm{softmax}(z_{bt})[T_{bt}]}{\sum_{b,t} m_{bt}}.$$

    Args:
        logits: `(B, T, V)` next-word scores $z$ (output t scores word t).
        targets: int `(B, T)`, the true words $T$.
        mask: `(B, T)`, 1 where a target counts, 0 at padding
            (`ganlib.models.stream.caption_mask`).

    Returns:
        A scalar (0 when the mask is empty).
    """
    logits = ops.cast(logits, "float32")
    mask = ops.cast(mask, "float32")
    log_p = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_p, ops.cast(targets, "int32")[..., None], axis=-1)[..., 0]
    return -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)
