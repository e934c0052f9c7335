"""Graded tests of lesson 06 (MirrorGAN: GLAM's sentence attention, STREAM's loss, greedy decoding,
BLEU): 13 points, and Exercise 5 (3 points) graded by the instructor.

Every test compares the exercise's values with an independent numpy (or plain Python)
reference written here, in float64: the sentence attention as the reference's
`GLAttention.py` computes it, the caption loss as `nn.CrossEntropyLoss` over packed
captions, the LSTM's greedy loop step by step, and BLEU from its n-gram counts.
Run against the solutions (default) or a submission:

    pytest tests/grading/test_06_mirrorgan.py
    GANLIB_SUBMISSION=lessons/06_mirrorgan/exercises.py pytest tests/grading/test_06_mirrorgan.py
    ganlib grade 06
"""

import math

import numpy as np
import pytest

from ganlib.course.grading import check_close, to_numpy

ALLOWED_GANLIB = {}

# Exercise 5, a question the instructor grades: `ganlib grade` lists it with its points and
# the student's answer (REFLECTION in exercises.py, read, never run), and gives it no score.
MANUALLY_GRADED = [{
    "exercise": 5, "name": "reflection_stream_weight", "points": 3, "answer": "REFLECTION",
    "placeholder": "(Write your answer here.)",
    "question": "What does the STREAM loss ask of the generator that the conditional D losses do not, which "
                "number is measured with the loss's own network and what that means, why BLEU can rise while "
                "caption consistency or the FID analogue does not, and which measurement you would trust?",
}]


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------

def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sentence_attention_ref(h, e, kernel):
    """GLAttention.py's global attention, per pixel: a = softmax over channels of U(f * e); Att = e * a."""
    h, e, kernel = (np.asarray(a, np.float64) for a in (h, e, kernel))
    b, hh, ww, c = h.shape
    att, weights = np.zeros_like(h), np.zeros_like(h)
    for n in range(b):
        for y in range(hh):
            for x in range(ww):
                a = softmax(np.array([sum(h[n, y, x, i] * e[n, i] * kernel[i, o] for i in range(c))
                                      for o in range(c)]))
                weights[n, y, x] = a
                att[n, y, x] = e[n] * a
    return att, weights


def caption_ce_ref(logits, targets, mask):
    """nn.CrossEntropyLoss over the packed (real) words: the mean of -log p(target)."""
    logits, targets = np.asarray(logits, np.float64), np.asarray(targets).astype(int)
    losses = [-(logits[b, t, targets[b, t]] - np.log(np.sum(np.exp(logits[b, t]))))
              for b in range(logits.shape[0]) for t in range(logits.shape[1]) if mask[b][t]]
    return float(np.mean(losses)) if losses else 0.0


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def greedy_ref(features, embeddings, kernel, recurrent_kernel, bias, out_kernel, out_bias, steps):
    """Caption by caption: LSTM step (gates i, f, g, o), argmax, embed, repeat."""
    w = [np.asarray(a, np.float64) for a in (embeddings, kernel, recurrent_kernel, bias, out_kernel, out_bias)]
    embeddings, kernel, recurrent_kernel, bias, out_kernel, out_bias = w
    units = recurrent_kernel.shape[0]
    out = []
    for feature in np.asarray(features, np.float64):
        h, c, x, words = np.zeros(units), np.zeros(units), feature, []
        for _ in range(steps):
            z = x @ kernel + h @ recurrent_kernel + bias
            i, f, g, o = z[:units], z[units:2 * units], z[2 * units:3 * units], z[3 * units:]
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            words.append(int(np.argmax(h @ out_kernel + out_bias)))
            x = embeddings[words[-1]]
        out.append(words)
    return np.array(out, np.int32)


def decoder_weights(v=11, e=4, units=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(v, e)).astype(np.float32), (rng.normal(size=(e, 4 * units)) * 0.8).astype(np.float32),
            (rng.normal(size=(units, 4 * units)) * 0.8).astype(np.float32),
            (rng.normal(size=(4 * units,)) * 0.3).astype(np.float32),
            (rng.normal(size=(units, v)) * 2.0).astype(np.float32), (rng.normal(size=(v,)) * 0.3).astype(np.float32))


def bleu_ref(references, hypotheses, max_n=4):
    """BLEU from its definition, written differently from the exercise's hint: explicit n-gram lists."""
    def grams(words, n):
        return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    hyps = [h.lower().split() if isinstance(h, str) else list(h) for h in hypotheses]
    refs = [[r.lower().split() if isinstance(r, str) else list(r) for r in rs] for rs in references]
    c = sum(len(h) for h in hyps)
    r = 0
    for h, rs in zip(hyps, refs):
        lengths = sorted(len(x) for x in rs)
        r += min(lengths, key=lambda length: abs(length - len(h)))     # sorted: the shorter wins a tie
    bp = 0.0 if c == 0 else (1.0 if c > r else math.exp(1 - r / c))
    precisions = []
    for n in range(1, max_n + 1):
        hit = total = 0
        for h, rs in zip(hyps, refs):
            hg = grams(h, n)
            total += len(hg)
            for g in set(hg):
                hit += min(hg.count(g), max(grams(x, n).count(g) for x in rs))
        precisions.append(hit / total if total else 0.0)
    out = {}
    for n in range(1, max_n + 1):
        p = precisions[:n]
        out[f"bleu{n}"] = 0.0 if min(p) == 0 else bp * math.exp(sum(math.log(x) for x in p) / n)
    return out


def check_bleu(got, expected, name):
    if not isinstance(got, dict):
        raise AssertionError(f"{name} returned a {type(got).__name__}, expected a dict "
                             f"{{'bleu1': ..., 'bleu{len(expected)}': ...}}")
    if sorted(got) != sorted(expected):
        raise AssertionError(f"{name} returned the keys {sorted(got)}, expected {sorted(expected)}")
    for key in expected:
        check_close(float(got[key]), expected[key], f"{name}[{key!r}]", atol=1e-6)


def check_float32(value, name):
    got = to_numpy(value)
    if got.dtype != np.float32:
        raise AssertionError(f"{name} returned dtype {got.dtype}, expected float32")


# ---------------------------------------------------------------------------
# 1. sentence_attention (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(1)
def test_sentence_attention_values(exercises):
    rng = np.random.default_rng(1)
    h = rng.normal(size=(2, 3, 2, 4)).astype(np.float32)
    e = rng.normal(size=(2, 4)).astype(np.float32)
    kernel = rng.normal(size=(4, 4)).astype(np.float32)
    att, a = exercises.sentence_attention(h, e, kernel)
    att_ref, a_ref = sentence_attention_ref(h, e, kernel)
    check_close(a, a_ref, "sentence_attention(...)[1], a (B, H, W, C): the softmax over the CHANNELS of "
                "(f * e) U at every pixel", atol=1e-5)
    check_close(att, att_ref, "sentence_attention(...)[0], Att^s = e * a (B, H, W, C)", atol=1e-5)
    check_float32(att, "sentence_attention (Att^s)")


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_sentence_attention_of_a_zero_sentence_is_uniform(exercises):
    """e = 0: every channel scores 0, a = 1/C everywhere, and Att^s = 0."""
    h = np.random.default_rng(2).normal(size=(1, 2, 2, 5)).astype(np.float32)
    att, a = exercises.sentence_attention(h, np.zeros((1, 5), np.float32), np.eye(5, dtype=np.float32))
    check_close(a, np.full((1, 2, 2, 5), 0.2), "sentence_attention's a when the sentence is zero "
                "(expected 1/C in every channel)", atol=1e-6)
    check_close(att, np.zeros((1, 2, 2, 5)), "sentence_attention's Att^s when the sentence is zero", atol=1e-6)


# ---------------------------------------------------------------------------
# 2. caption_cross_entropy (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(2)
def test_caption_cross_entropy_mean_over_real_words(exercises):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 2
    targets = np.array([[3, 4, 2, 6, 1], [5, 1, 0, 0, 0], [2, 2, 6, 0, 0]], np.int32)
    mask = (targets > 0).astype(np.float32)
    out = exercises.caption_cross_entropy(logits, targets, mask)
    check_close(out, caption_ce_ref(logits, targets, mask), "caption_cross_entropy: the mean over the 10 real "
                "words (mask 1) of -log softmax(logits)[target]", atol=1e-5)
    check_float32(out, "caption_cross_entropy")


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_caption_cross_entropy_ignores_padding_and_empty_mask(exercises):
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
    targets = np.array([[1, 5, 0, 0], [2, 0, 0, 0]], np.int32)
    mask = (targets > 0).astype(np.float32)
    changed = logits.copy()
    changed[0, 2:] = 50.0 * rng.normal(size=(2, 6))      # padding with wild scores must not matter
    changed[1, 1:] = -changed[1, 1:]
    check_close(exercises.caption_cross_entropy(changed, targets, mask), caption_ce_ref(logits, targets, mask),
                "caption_cross_entropy when the padding positions hold large scores (they must not count)",
                atol=1e-5)
    check_close(exercises.caption_cross_entropy(logits, targets, np.zeros((2, 4), np.float32)), 0.0,
                "caption_cross_entropy with an all-zero mask (no word counts: expected 0, not NaN)", atol=1e-7)


# ---------------------------------------------------------------------------
# 3. greedy_decode (3 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_greedy_decode_matches_the_lstm_loop(exercises):
    weights = decoder_weights(seed=5)
    features = np.random.default_rng(5).normal(size=(3, 4)).astype(np.float32)
    ids = exercises.greedy_decode(features, *weights, 6)
    expected = greedy_ref(features, *weights, 6)
    got = check_close(ids, expected, "greedy_decode's word ids (B, steps): LSTM step from h = c = 0 on the image "
                      "feature, argmax of h W_out + b_out, its embedding as the next input", check_dtype=True)
    if got.dtype != np.int32:
        raise AssertionError(f"greedy_decode returned dtype {got.dtype}, expected int32")


@pytest.mark.points(1)
@pytest.mark.exercise(3)
def test_greedy_decode_of_a_hand_set_successor_model(exercises):
    """Word k's embedding is 10 e_k; the LSTM copies its input (g = x, input and output gates open,
    forget gate shut); the output layer maps e_k to word k + 1 (mod 4). The image feature 10 e_1
    starts the caption: greedy decoding writes 2, 3, 0, 1, 2 (it runs all the steps, past the end 0)."""
    w = np.zeros((4, 16), np.float32)
    w[:, 8:12] = np.eye(4)
    bias = np.concatenate([np.full(4, 10.0), np.full(4, -10.0), np.zeros(4), np.full(4, 10.0)]).astype(np.float32)
    out_kernel = (np.roll(np.eye(4), 1, axis=1) * 10.0).astype(np.float32)
    ids = exercises.greedy_decode(np.array([[0.0, 10.0, 0.0, 0.0]], np.float32), (10 * np.eye(4)).astype(np.float32),
                                  w, np.zeros((4, 16), np.float32), bias, out_kernel, np.zeros(4, np.float32), 5)
    check_close(ids, np.array([[2, 3, 0, 1, 2]], np.int32), "greedy_decode of the successor model "
                "(expected [[2, 3, 0, 1, 2]])")


# ---------------------------------------------------------------------------
# 4. corpus_bleu (4 points)
# ---------------------------------------------------------------------------

@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_bleu_known_answers(exercises):
    check_bleu(exercises.corpus_bleu([["the cat is on the mat"]], ["the cat is on the mat"]),
               {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0}, "corpus_bleu of a caption equal to its reference")
    check_bleu(exercises.corpus_bleu([["a b c d"]], ["e f g h"], max_n=2), {"bleu1": 0.0, "bleu2": 0.0},
               "corpus_bleu with no word in common (max_n=2)")


@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_bleu_clips_repeated_words(exercises):
    """Papineni et al.'s example: 'the the the the the the the' against two references holding 'the'
    at most twice: clipped unigram precision 2/7 (the hypothesis is long enough: BP = 1)."""
    refs = [["the cat is on the mat", "there is a cat on the mat"]]
    got = exercises.corpus_bleu(refs, ["the the the the the the the"], max_n=1)
    check_bleu(got, {"bleu1": 2 / 7}, "corpus_bleu of 'the' x 7 (clipped unigram precision)")


@pytest.mark.points(2)
@pytest.mark.exercise(4)
def test_bleu_corpus_level_with_brevity_penalty(exercises):
    refs = [["this bird has a red crown and blue wings", "a small bird with a red crown"],
            ["the bird is yellow with a white belly", "yellow bird white belly and black tail"],
            ["a bird with green wings"]]
    hyps = ["this bird has a red crown", "a yellow bird with a white belly", "bird with green wings"]
    expected = bleu_ref(refs, hyps)
    assert expected["bleu1"] < 1 and 0 < expected["bleu4"]          # the references' own sanity check
    check_bleu(exercises.corpus_bleu(refs, hyps), expected,
               "corpus_bleu of 3 short captions (n-grams counted over the corpus; brevity penalty with c = 17 "
               "hypothesis words and r = 7 + 7 + 5 = 19, the closest reference lengths)")
