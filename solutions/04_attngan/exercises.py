r"""Lesson 04 exercises: AttnGAN (word attention) and DAMSM (the word-level matching loss).

Fill in every function below. Compute with `keras.ops` only (not numpy, `tf.`,
`torch.` or `jax.`), so that your code runs on the TensorFlow, JAX and PyTorch
backends and can drive the notebook's training: your `word_attention` is the
attention of every stage of the notebook's generator, and your `damsm_loss` (which
calls your `word_region_attention` and `matching_score`: write them in order) is its
DAMSM term. Exercises 1-4 are numbered as in the notebook. Exercise 5 is a question, not
code: answer it in `REFLECTION` at the end of this file.

Papers:
    [AttnGAN] Xu et al. 2018, "AttnGAN: Fine-Grained Text to Image Generation with
              Attentional Generative Adversarial Networks" (CVPR); reference code
              taoxugit/AttnGAN.

Check your work:

    ganlib grade 04                                  # score table
    GANLIB_SUBMISSION=lessons/04_attngan/exercises.py pytest tests/grading/test_04_attngan.py
"""

from keras import ops


def word_attention(query, words, mask):
    r"""Exercise 4. The word context of every image sub-region ([AttnGAN], section "Attentional Generative Network").

    Each sub-region $j$ (one pixel of the hidden state, a vector $q_j$) scores every
    word $i$ (a vector $e_i$, already projected by $U$ into the same space) by a dot
    product and takes a softmax over the caption's **real** words:

    $$s_{j,i} = q_j^\top e_i,\qquad
      \beta_{j,i} = \frac{\exp(s_{j,i})}{\sum_{k\,\text{real}} \exp(s_{j,k})},\qquad
      c_j = \sum_{i} \beta_{j,i}\, e_i .$$

    Padding words (`mask` 0) must get weight exactly 0.

    Args:
        query: float (B, N, C): N sub-regions per image.
        words: float (B, T, C): T words per caption (padded).
        mask: float (B, T): 1 for a real word, 0 for padding.

    Returns:
        `(context, beta)`: float32 (B, N, C) and (B, N, T).

    Hint: `ops.matmul(query, ops.swapaxes(words, 1, 2))`; replace the padding's
    scores by a very negative number (`ops.where(mask[:, None, :] > 0, s, -1e9)`)
    before `ops.softmax(..., axis=-1)`.
    """
    # BEGIN SOLUTION
    query = ops.convert_to_tensor(query, "float32")
    words = ops.convert_to_tensor(words, "float32")
    mask = ops.convert_to_tensor(mask, "float32")
    s = ops.matmul(query, ops.swapaxes(words, 1, 2))
    beta = ops.softmax(ops.where(mask[:, None, :] > 0, s, -1e9), axis=-1)
    return ops.matmul(beta, words), beta
    # END SOLUTION


def word_region_attention(words, regions, word_mask, gamma1=4.0):
    r"""Exercise 1. DAMSM's attention of each word over the image regions: the two softmaxes ([AttnGAN], Eq. 7-9).

    With $s = e^\top v$ (word $i$, region $j$, Eq. 7), the scores are first
    normalised **over the words** (for each region, Eq. 8), then sharpened by
    $\gamma_1$ and normalised **over the regions** (for each word, Eq. 9):

    $$\bar s_{i,j} = \frac{\exp(s_{i,j})}{\sum_{k} \exp(s_{k,j})},\qquad
      \alpha_{i,j} = \frac{\exp(\gamma_1 \bar s_{i,j})}{\sum_{k} \exp(\gamma_1 \bar s_{i,k})}.$$

    Only the caption's real words (`word_mask` 1) take part in the first softmax
    (the reference cuts each caption to its length).

    Args:
        words: float (B, T, D) word features $e$.
        regions: float (B, N, D) region features $v$.
        word_mask: float (B, T), 1 for real words.
        gamma1: $\gamma_1$.

    Returns:
        `alpha`: float32 (B, T, N); each real word's row sums to 1.

    Hint: `ops.matmul(words, ops.swapaxes(regions, 1, 2))` gives (B, T, N); mask the
    padding before the softmax over axis 1, then softmax `gamma1 * s_bar` over axis -1.
    """
    # BEGIN SOLUTION
    words = ops.convert_to_tensor(words, "float32")
    regions = ops.convert_to_tensor(regions, "float32")
    word_mask = ops.convert_to_tensor(word_mask, "float32")
    s = ops.matmul(words, ops.swapaxes(regions, -1, -2))
    s_bar = ops.softmax(ops.where(word_mask[..., :, None] > 0, s, -1e9), axis=-2)
    return ops.softmax(gamma1 * s_bar, axis=-1)
    # END SOLUTION


def matching_score(words, context, word_mask, gamma2=5.0):
    r"""Exercise 2. The word-level image-text matching score $R(Q, D)$ ([AttnGAN], Eq. 10, as the code has it).

    Each real word $e_i$ is compared by cosine with its region context $c_i$
    ($c_i = \sum_j \alpha_{i,j} v_j$), and the words are pooled by a log-sum-exp:

    $$R(c_i, e_i) = \frac{c_i^\top e_i}{\lVert c_i\rVert\,\lVert e_i\rVert},\qquad
      R(Q, D) = \log \sum_{i\,\text{real}} \exp\big(\gamma_2 R(c_i, e_i)\big).$$

    (The paper raises the sum to the power $1/\gamma_2$; the reference code does not,
    and its $\gamma_3$ was tuned for that scale: follow the code.) Use
    $\max(\lVert c\rVert\lVert e\rVert, 10^{-8})$ in the cosine's denominator.

    Args:
        words: float (B, T, D); context: float (B, T, D); word_mask: float (B, T).
        gamma2: $\gamma_2$.

    Returns:
        float32 (B,).
    """
    # BEGIN SOLUTION
    words = ops.convert_to_tensor(words, "float32")
    context = ops.convert_to_tensor(context, "float32")
    word_mask = ops.convert_to_tensor(word_mask, "float32")
    dot = ops.sum(words * context, axis=-1)
    norms = ops.sqrt(ops.maximum(ops.sum(words * words, axis=-1) * ops.sum(context * context, axis=-1), 1e-16))
    cos = dot / norms
    return ops.log(ops.sum(word_mask * ops.exp(gamma2 * cos), axis=-1))
    # END SOLUTION


def damsm_loss(regions, image_code, words, sentence, lengths, gamma1=4.0, gamma2=5.0, gamma3=10.0,
               class_ids=None):
    r"""Exercise 3. The DAMSM loss ([AttnGAN], section "DAMSM loss", after Eq. 10, as the reference code computes it).

    For every image $Q_a$ and caption $D_b$ of the batch, the word-level score
    $R(Q_a, D_b)$: your `word_region_attention` of caption b's words over image a's
    regions, the contexts $c = \alpha v$, and your `matching_score`. Each image's
    posterior over the batch's captions and each caption's over the images:

    $$P(D_a|Q_a) = \frac{\exp(\gamma_3 R(Q_a, D_a))}{\sum_b \exp(\gamma_3 R(Q_a, D_b))},\qquad
      L^w = -\frac1B\sum_a \log P(D_a|Q_a) - \frac1B\sum_a \log P(Q_a|D_a).$$

    The sentence loss $L^s$ is the same with $R(Q, D) = \cos(\bar v, \bar e)$ (image
    code against sentence feature, the same $\max(\cdot, 10^{-8})$ in the denominator).
    With `class_ids`, a pair (a, b), a != b, of the same class is not a negative: leave
    it out of both softmaxes (score $-10^9$).

    Args:
        regions: (B, N, D); image_code: (B, D); words: (B, T, D); sentence: (B, D);
        lengths: int (B,) real words per caption (the first `lengths[b]` of row b);
        gamma1, gamma2, gamma3: the smoothing factors; class_ids: int (B,) or None.

    Returns:
        `(word_loss, sentence_loss)`: float32 scalars, each the sum of its two directions.

    Hint: broadcast to all pairs: `words[None]` (1, B, T, D) against `regions[:, None]`
    (B, 1, N, D) (`ops.matmul` and `ops.softmax` work on the last two axes);
    `ops.logsumexp(scores, axis=1) - ops.diagonal(scores)` is $-\log P$ of each row.
    """
    # BEGIN SOLUTION
    regions = ops.convert_to_tensor(regions, "float32")
    image_code = ops.convert_to_tensor(image_code, "float32")
    words = ops.convert_to_tensor(words, "float32")
    sentence = ops.convert_to_tensor(sentence, "float32")
    b, t = ops.shape(words)[0], ops.shape(words)[1]
    mask = ops.cast(ops.arange(t)[None, :] < ops.reshape(ops.cast(lengths, "int32"), (-1, 1)), "float32")
    w = ops.broadcast_to(words[None], (b, b, t, ops.shape(words)[2]))       # [image a, caption b]
    v = ops.broadcast_to(regions[:, None], (b, b, ops.shape(regions)[1], ops.shape(regions)[2]))
    m = ops.broadcast_to(mask[None], (b, b, t))
    alpha = word_region_attention(ops.reshape(w, (b * b, t, -1)), ops.reshape(v, (b * b, -1, ops.shape(v)[3])),
                                  ops.reshape(m, (b * b, t)), gamma1)
    context = ops.matmul(alpha, ops.reshape(v, (b * b, -1, ops.shape(v)[3])))
    word_scores = gamma3 * ops.reshape(matching_score(ops.reshape(w, (b * b, t, -1)), context,
                                                      ops.reshape(m, (b * b, t)), gamma2), (b, b))
    dot = ops.matmul(image_code, ops.transpose(sentence))
    norms = ops.sqrt(ops.maximum(ops.sum(image_code ** 2, axis=1)[:, None] * ops.sum(sentence ** 2, axis=1)[None, :],
                                 1e-16))
    sentence_scores = gamma3 * dot / norms

    def both_directions(scores):
        if class_ids is not None:
            c = ops.reshape(ops.cast(class_ids, "int32"), (-1,))
            same = ops.logical_and(ops.equal(c[:, None], c[None, :]), ops.logical_not(ops.eye(b, dtype="bool")))
            scores = ops.where(same, -1e9, scores)
        true = ops.diagonal(scores)
        return ops.mean(ops.logsumexp(scores, axis=1) - true) + ops.mean(ops.logsumexp(scores, axis=0) - true)

    return both_directions(word_scores), both_directions(sentence_scores)
    # END SOLUTION


# Exercise 5 (reflection; 3 points, graded by the instructor: `ganlib grade` gives it no score).
# The notebook's section "Evaluate: what does the DAMSM term buy?" trained AttnGAN twice from the
# same seed and for the same steps, with the DAMSM weight lambda = 5 and lambda = 0, and printed the
# R-precision, caption consistency and FID analogue of each (the README's lesson-04 row has the
# figures of the full fast() preset when they are measured). In 4 to 8 sentences: what does the
# lambda term ask of the generator that the discriminators' conditional losses do not, and why can
# it raise R-precision without raising caption consistency (or the other way round)? The loss comes
# from the 30-epoch DAMSM and R-precision is scored by the 5-epoch one: the same architecture, data
# and vocabulary, other weights. How independent is that score of what G was trained on, and what
# measurement would you add to decide whether lambda = 5 really helps?
REFLECTION = """
(Write your answer here.)
"""
