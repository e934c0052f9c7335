r"""BLEU (Papineni et al., 2002), corpus level: how well machine captions match references.

MirrorGAN reports BLEU of the captions its captioner (STREAM) writes; this module
computes it as the paper defining BLEU does (Sec. 2, "Modified n-gram precision"
and "Sentence brevity penalty"), over a whole corpus, not averaged per sentence:

* **modified (clipped) n-gram precision** -- every n-gram of a candidate counts at
  most as often as it occurs in the one reference where it occurs most:

  $$p_n = \frac{\sum_{C}\sum_{g \in C} \min\big(\mathrm{count}_C(g),
  \max_{R \in \mathrm{refs}(C)} \mathrm{count}_R(g)\big)}{\sum_{C}\sum_{g \in C} \mathrm{count}_C(g)}$$

  (sums over the corpus' candidates $C$ and their n-grams $g$);
* **brevity penalty** -- with $c$ the total candidate length and $r$ the sum over
  candidates of the reference length closest to the candidate's (the shorter one on
  a tie), $\mathrm{BP} = 1$ if $c > r$ else $e^{1 - r/c}$;
* $\mathrm{BLEU\text{-}N} = \mathrm{BP} \cdot \exp\big(\sum_{n=1}^{N} \tfrac{1}{N} \log p_n\big)$,
  the cumulative score with uniform weights (what captioning papers call BLEU-1..4).

No smoothing: if some $p_n$ is 0 the score is 0 (as ``nltk.translate.bleu_score.corpus_bleu``
without a smoothing function returns). Tokens are compared as given; strings are
lower-cased and split on whitespace.
"""

from __future__ import annotations

import math
from collections import Counter


def _tokens(sentence, what):
    if isinstance(sentence, str):
        return sentence.lower().split()
    try:
        return list(sentence)
    except TypeError:
        raise TypeError(f"bleu: each {what} must be a string or a sequence of tokens, "
                        f"got {type(sentence).__name__}") from None


def ngrams(tokens, n):
    """Counter of the n-grams (tuples) of a token list."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def closest_reference_length(candidate_length, reference_lengths):
    """The reference length closest to the candidate's; the shorter one on a tie."""
    return min(reference_lengths, key=lambda r: (abs(r - candidate_length), r))


def bleu_statistics(references, hypotheses, max_n=4):
    """The sufficient statistics of corpus BLEU.

    Args:
        references: one list of reference sentences per hypothesis.
        hypotheses: candidate sentences (strings or token lists).
        max_n: the longest n-gram.

    Returns:
        ``(matches, totals, c, r)``: per n (index n - 1) the clipped n-gram matches
        and the candidate n-gram counts, summed over the corpus; the total
        candidate length and the total closest-reference length.
    """
    hypotheses = list(hypotheses)
    references = list(references)
    if len(references) != len(hypotheses):
        raise ValueError(f"bleu: {len(hypotheses)} hypotheses but {len(references)} reference lists; "
                         f"expected one list of references per hypothesis")
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for k, (refs, hyp) in enumerate(zip(references, hypotheses)):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"bleu: references[{k}] must be a non-empty list of reference sentences, "
                             f"got {refs!r}")
        hyp = _tokens(hyp, "hypothesis")
        refs = [_tokens(s, "reference") for s in refs]
        c += len(hyp)
        r += closest_reference_length(len(hyp), [len(s) for s in refs])
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            best = Counter()
            for s in refs:
                best |= ngrams(s, n)                  # elementwise max over references
            matches[n - 1] += sum(min(v, best[g]) for g, v in counts.items())
            totals[n - 1] += sum(counts.values())
    return matches, totals, c, r


def corpus_bleu(references, hypotheses, max_n=4):
    """Cumulative corpus BLEU-1..``max_n`` (uniform weights, brevity penalty, no smoothing).

    Args:
        references: one list of reference sentences per hypothesis (each a string
            or a token list), e.g. a generated image's 10 captions.
        hypotheses: candidate sentences, e.g. the captions STREAM wrote.
        max_n: the largest N reported.

    Returns:
        ``{"bleu1": ..., "bleu2": ..., ..., f"bleu{max_n}": ...}`` floats in [0, 1].

    Example:
        >>> corpus_bleu([["the cat is on the mat"]], ["the cat is on the mat"])["bleu4"]
        1.0
    """
    if int(max_n) < 1:
        raise ValueError(f"bleu: max_n must be >= 1, got {max_n}")
    matches, totals, c, r = bleu_statistics(references, hypotheses, int(max_n))
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1.0 - r / c))
    scores, log_sum = {}, 0.0
    for n in range(1, int(max_n) + 1):
        if matches[n - 1] == 0 or totals[n - 1] == 0:
            log_sum = -math.inf
        else:
            log_sum += math.log(matches[n - 1] / totals[n - 1])
        scores[f"bleu{n}"] = 0.0 if log_sum == -math.inf else bp * math.exp(log_sum / n)
    return scores
