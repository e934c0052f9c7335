"""Hidden graded tests of lesson 06 (run by the autograder only): 4 points.

Other values than the visible tests; the sentence attention and the caption loss run inside the
backend's compiled step with their gradients checked (`check_backend`), greedy decoding inside the
compiled step (its word ids have no gradient)."""

import pathlib

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close, load_tests

VISIBLE = load_tests(pathlib.Path(__file__).resolve().parents[1] / "test_06_mirrorgan.py")

ALLOWED_GANLIB = {}

# For the instructor: what a full answer to Exercise 5 (3 points) says.
RUBRIC = """
1 point: the conditional D losses judge the image against the sentence through a D that learns as it
  goes; the STREAM loss asks a frozen captioner, pretrained on real images, to read every real word of
  the caption back from the generated image (teacher-forced cross-entropy): a word-level, fixed signal
  that nothing in the adversarial game can move.
1 point: BLEU of STREAM's captions of the generated images is measured with the very captioner that gives
  the loss (the generator is trained on it and can learn the captioner's blind spots, even adversarial
  details a human would not read as the words), so it favours lambda = 10 by construction; R-precision
  uses DAMSM, which MirrorGAN does not train on (its reference has no DAMSM term), so it is the more
  independent text-image check of the two, though DAMSM and STREAM saw the same real data.
1 point: caption consistency asks a separate evaluation net whether each named colour is visible, and the
  FID analogue measures image realism; a generator can please the captioner's features without drawing
  the colours the evaluator checks (or at a cost in realism), so they can move apart, and the notebook's
  numbers show by how much (at FAST lengths the differences are within noise). Trust the independent
  ones (caption consistency, R-precision with DAMSM, FID analogue) at several seeds and the same steps;
  ideally a second captioner trained from another seed for BLEU.
"""


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_sentence_attention_in_the_training_step(exercises):
    rng = np.random.default_rng(601)
    h = rng.normal(size=(2, 2, 2, 3)).astype(np.float32)
    e = rng.normal(size=(2, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3)).astype(np.float32)
    # (Att^s, a) together: the values of both, and the gradient of sum(Att^s) + sum(a).
    check_backend(exercises.sentence_attention, (h, e, kernel),
                  lambda *a: np.stack(VISIBLE.sentence_attention_ref(*a)), "sentence_attention")


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_caption_cross_entropy_in_the_training_step(exercises):
    rng = np.random.default_rng(602)
    logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
    targets = np.array([[2, 1, 0], [3, 3, 1]], np.int32)
    mask = (targets > 0).astype(np.int32)       # integer mask: the gradient is checked for the logits
    check_backend(exercises.caption_cross_entropy, (logits, targets, mask), VISIBLE.caption_ce_ref,
                  "caption_cross_entropy")


@pytest.mark.points(1)
@pytest.mark.exercise(3)
def test_greedy_decode_in_the_training_step(exercises):
    weights = VISIBLE.decoder_weights(v=7, e=3, units=4, seed=603)
    features = np.random.default_rng(603).normal(size=(4, 3)).astype(np.float32)
    ids = exercises.greedy_decode.compiled(features, *weights, 5)
    check_close(ids, VISIBLE.greedy_ref(features, *weights, 5),
                "greedy_decode inside the compiled step (on tensors): the word ids")


@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_bleu_token_lists_and_ties(exercises):
    """Token lists instead of strings; a hypothesis of 3 words between references of 2 and 4: the shorter
    reference length (2) is the closest on the tie, so c = 3 > r = 2 and BP = 1."""
    refs = [[["a", "red", "bird", "flies"], ["red", "bird"]], [["blue", "wings", "and", "a", "tail"]]]
    hyps = [["a", "red", "bird"], ["blue", "wings", "tail", "and"]]
    expected = VISIBLE.bleu_ref(refs, hyps, max_n=3)
    VISIBLE.check_bleu(exercises.corpus_bleu(refs, hyps, max_n=3), expected,
                       "corpus_bleu on token lists (max_n=3; the shorter reference wins a length tie)")
