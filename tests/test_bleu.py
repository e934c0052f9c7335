"""Corpus BLEU against values computed by hand from the definition (Papineni et al., 2002)."""

import math

import pytest

from ganlib.metrics import corpus_bleu
from ganlib.metrics.bleu import bleu_statistics, closest_reference_length

# Backend-neutral (BLEU: numpy only): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral


def test_papineni_modified_unigram_precision():
    # The BLEU paper's example of clipping: the candidate's 7 "the" count at most
    # twice (reference 1 holds "the" twice): p_1 = 2 / 7.
    refs = [["the cat is on the mat", "there is a cat on the mat"]]
    matches, totals, c, r = bleu_statistics(refs, ["the the the the the the the"], max_n=1)
    assert (matches, totals) == ([2], [7])
    # c = 7, closest reference length 6 or 7 -> 7; c > r is false -> BP = exp(1 - 7/7) = 1
    assert (c, r) == (7, 7)
    assert corpus_bleu(refs, ["the the the the the the the"], max_n=1)["bleu1"] == pytest.approx(2 / 7)


def test_corpus_bleu_by_hand():
    # candidate 1 "the the cat", refs "the cat is here" (4 words), "a cat" (2 words):
    #   unigrams the x2, cat x1: "the" clipped to 1 -> 2 / 3; bigrams (the the), (the cat): 1 / 2;
    #   trigram (the the cat): 0 / 1; closest ref length to 3: 4 and 2 tie -> the shorter, 2.
    # candidate 2 "a cat sat", ref "a cat sat down": 3 / 3, 2 / 2, 1 / 1; r = 4.
    # corpus: p1 = 5/6, p2 = 3/4, p3 = 1/2, no 4-grams -> BLEU-4 = 0; c = 6, r = 6 -> BP = 1.
    refs = [["the cat is here", "a cat"], ["a cat sat down"]]
    hyps = ["the the cat", "a cat sat"]
    assert bleu_statistics(refs, hyps) == ([5, 3, 1, 0], [6, 4, 2, 0], 6, 6)
    s = corpus_bleu(refs, hyps)
    assert s["bleu1"] == pytest.approx(5 / 6)
    assert s["bleu2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 4))          # 0.790569
    assert s["bleu3"] == pytest.approx((5 / 6 * 3 / 4 * 1 / 2) ** (1 / 3))  # 0.678604
    assert s["bleu4"] == 0.0
    # corpus level, not a mean of sentence scores: candidate 2 alone has BLEU-3 = 1, candidate 1 has 0
    assert s["bleu3"] != pytest.approx(0.5)


def test_brevity_penalty_and_tokens():
    # "a cat" vs "a cat sat down": p1 = p2 = 1, c = 2 < r = 4 -> BP = exp(1 - 4/2) = e^-1
    s = corpus_bleu([["a cat sat down"]], ["a cat"], max_n=2)
    assert s["bleu1"] == pytest.approx(math.exp(-1)) and s["bleu2"] == pytest.approx(math.exp(-1))
    # token lists (e.g. ids) work as strings do; strings are lower-cased
    assert corpus_bleu([[[1, 2, 3, 4]]], [[1, 2, 3, 4]])["bleu4"] == 1.0
    assert corpus_bleu([["A Red Bird"]], ["a red bird"], max_n=3)["bleu3"] == 1.0
    assert closest_reference_length(5, [3, 7, 4]) == 4 and closest_reference_length(5, [6, 4]) == 4


def test_bleu_bad_input():
    with pytest.raises(ValueError, match="one list of references per hypothesis"):
        corpus_bleu([["a b"]], ["a b", "c d"])
    with pytest.raises(ValueError, match=r"references\[0\]"):
        corpus_bleu(["a b"], ["a b"])
