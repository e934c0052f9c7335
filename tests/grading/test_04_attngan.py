"""Graded tests of lesson 04 (AttnGAN, DAMSM): 14 points, and Exercise 5 (3 points) graded by
the instructor.

Every test compares the exercise's values with an independent numpy reference
written here, in float64 (the DAMSM loss follows the reference code's per-caption
loop, `words_loss` / `sent_loss`). Run against the solutions (default) or a submission:

    pytest tests/grading/test_04_attngan.py
    GANLIB_SUBMISSION=lessons/04_attngan/exercises.py pytest tests/grading/test_04_attngan.py
    ganlib grade 04
"""

import numpy as np
import pytest

from ganlib.course.grading import check_close, to_numpy

ALLOWED_GANLIB = {}

# Exercise 5, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 5, "name": "reflection_damsm_weight", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "What does the lambda term ask of the generator that the conditional D losses do not, why can "
                "it move R-precision and caption consistency differently, what does measuring R-precision with "
                "the loss's own DAMSM mean, and what independent measurement would you add?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention_ref(query, words, mask):
    q, e = np.asarray(query, np.float64), np.asarray(words, np.float64)
    s = np.einsum("bnc,btc->bnt", q, e)
    s = np.where(np.asarray(mask)[:, None, :] > 0, s, -np.inf)
    beta = softmax(s, -1)
    return beta @ e, beta


def cosine(a, b):
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-8))


def pair_ref(word, region, gamma1, gamma2):
    """The reference's func_attention + row_sim for one caption (cut to its length) and one image."""
    attn = softmax(region @ word.T, axis=1)          # (N, L): over the words, per region
    alpha = softmax(gamma1 * attn.T, axis=1)         # (L, N): over the regions, per word
    context = alpha @ region
    return alpha, context, np.log(np.sum(np.exp(gamma2 * np.array([cosine(w, c) for w, c in zip(word, context)]))))


def cross_entropies(scores, class_ids):
    scores = scores.copy()
    b = len(scores)
    if class_ids is not None:
        for i in range(b):
            for j in range(b):
                if i != j and class_ids[i] == class_ids[j]:
                    scores[i, j] = -np.inf
    def ce(s):
        return np.mean([-(s[i, i] - np.log(np.sum(np.exp(s[i][np.isfinite(s[i])])))) for i in range(b)])
    return ce(scores) + ce(scores.T)


def damsm_ref(regions, image_code, words, sentence, lengths, gamma1=4.0, gamma2=5.0, gamma3=10.0, class_ids=None):
    regions, image_code, words, sentence = (np.asarray(a, np.float64) for a in (regions, image_code, words, sentence))
    b = len(regions)
    scores = np.zeros((b, b))
    for i in range(b):                       # caption i
        for j in range(b):                   # image j
            scores[j, i] = pair_ref(words[i, :lengths[i]], regions[j], gamma1, gamma2)[2]
    sent = np.array([[cosine(image_code[a], sentence[c]) for c in range(b)] for a in range(b)])
    return cross_entropies(gamma3 * scores, class_ids), cross_entropies(gamma3 * sent, class_ids)


def data(b=4, t=6, n=5, d=8, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, t + 1, b)
    lengths[0] = t
    words = rng.normal(size=(b, t, d)).astype(np.float32)
    mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float32)
    words *= mask[..., None]
    return (rng.normal(size=(b, n, d)).astype(np.float32), rng.normal(size=(b, d)).astype(np.float32),
            words, rng.normal(size=(b, d)).astype(np.float32), lengths.astype(np.int32), mask)


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32")


# ---------------------------------------------------------------------------
# 1. word_attention (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(4)
def test_word_attention_values(exercises):
    rng = np.random.default_rng(1)
    query, words = rng.normal(size=(2, 9, 4)).astype(np.float32), rng.normal(size=(2, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.float32)
    context, beta = exercises.word_attention(query, words, mask)
    c_ref, b_ref = attention_ref(query, words, mask)
    check_close(beta, b_ref, "word_attention(...)[1], beta (B, N, T): the softmax over the real words of "
                "q_j . e_i", atol=1e-5)
    check_close(context, c_ref, "word_attention(...)[0], the contexts c_j = sum_i beta_ji e_i (B, N, C)", atol=1e-5)
    check_float32(context, "word_attention (context)")


@pytest.mark.points(2)
@pytest.mark.exercise(4)
def test_word_attention_ignores_padding(exercises):
    rng = np.random.default_rng(2)
    query = rng.normal(size=(1, 4, 3)).astype(np.float32)
    words = rng.normal(size=(1, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0]], np.float32)
    words_changed = words.copy()
    words_changed[:, 2:] = 100.0                 # padding with large values must not matter
    context, beta = exercises.word_attention(query, words_changed, mask)
    check_close(beta[..., 2:] if isinstance(beta, np.ndarray) else to_numpy(beta)[..., 2:], np.zeros((1, 4, 2)),
                "word_attention's beta on the padding words (expected exactly 0)", atol=1e-7)
    check_close(context, attention_ref(query, words, mask)[0],
                "word_attention's contexts when the padding words hold large values (they must not count)",
                atol=1e-5)


# ---------------------------------------------------------------------------
# 2. word_region_attention: the two softmaxes (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.exercise(1)
def test_word_region_attention_two_softmaxes(exercises):
    regions, _, words, _, lengths, mask = data(seed=3)
    alpha = to_numpy(exercises.word_region_attention(words, regions, mask, 4.0))
    for b in range(len(words)):
        expected = pair_ref(words[b, :lengths[b]].astype(np.float64), regions[b].astype(np.float64), 4.0, 5.0)[0]
        check_close(alpha[b, :lengths[b]], expected, f"word_region_attention row {b} (its {lengths[b]} real words): "
                    "softmax over the real words (axis of T) per region, then softmax of gamma1 * that over "
                    "the regions per word", atol=1e-5)
    check_float32(alpha, "word_region_attention")


# ---------------------------------------------------------------------------
# 3. matching_score (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.exercise(2)
def test_matching_score(exercises):
    rng = np.random.default_rng(4)
    words, context = rng.normal(size=(3, 5, 6)).astype(np.float32), rng.normal(size=(3, 5, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.float32)
    out = exercises.matching_score(words, context, mask, 5.0)
    expected = [np.log(np.sum(np.exp(5.0 * np.array([cosine(words[b, i].astype(np.float64), context[b, i])
                                                      for i in range(5) if mask[b, i]])))) for b in range(3)]
    check_close(out, expected, "matching_score (B,): log sum over the REAL words of exp(gamma2 * cosine(c_i, e_i)) "
                "(no 1/gamma2 power, as the reference code)", atol=1e-5)
    check_float32(out, "matching_score")
    check_close(exercises.matching_score(words, context, mask, 1.0)[0],
                np.log(np.sum(np.exp([cosine(words[0, i].astype(np.float64), context[0, i]) for i in range(5)]))),
                "matching_score with gamma2 = 1", atol=1e-5)


# ---------------------------------------------------------------------------
# 4. damsm_loss (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_damsm_loss_word_and_sentence(exercises):
    regions, code, words, sentence, lengths, _ = data(seed=5)
    w, s = exercises.damsm_loss(regions, code, words, sentence, lengths)
    w_ref, s_ref = damsm_ref(regions, code, words, sentence, lengths)
    check_close(w, w_ref, "damsm_loss(...)[0], the word loss (both directions' mean cross-entropies of "
                "gamma3 * R(Q_a, D_b))", atol=1e-3)
    check_close(s, s_ref, "damsm_loss(...)[1], the sentence loss (gamma3 * cosine(image_code, sentence))", atol=1e-4)
    check_float32(w, "damsm_loss (word loss)")


@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_damsm_loss_same_class_items_are_not_negatives(exercises):
    regions, code, words, sentence, lengths, _ = data(b=5, seed=6)
    classes = np.array([3, 1, 3, 2, 1], np.int32)
    w, s = exercises.damsm_loss(regions, code, words, sentence, lengths, 4.0, 5.0, 10.0, class_ids=classes)
    w_ref, s_ref = damsm_ref(regions, code, words, sentence, lengths, class_ids=classes)
    check_close(s, s_ref, "damsm_loss's sentence loss with class_ids [3, 1, 3, 2, 1] (pairs of different items "
                "of the same class left out of both softmaxes)", atol=1e-4)
    check_close(w, w_ref, "damsm_loss's word loss with class_ids", atol=1e-3)
