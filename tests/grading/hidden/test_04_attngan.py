"""Hidden graded tests of lesson 04 (run by the autograder only): 5 points.

Other values than the visible tests; the attention pieces run inside the backend's
compiled step with their gradients checked (`check_backend`)."""

import numpy as np
import pytest

from ganlib.course.grading import check_backend, check_close

ALLOWED_GANLIB = {}

# For the instructor: what a full answer to Exercise 5 (3 points) says.
RUBRIC = """
1 point: the conditional D losses judge the whole image against the sentence, through a D that
  learns as it goes; lambda * L_DAMSM asks every real word to find matching regions of the final
  image under a fixed, pretrained encoder pair, a word-level and stable signal.
1 point: R-precision ranks the true caption against 99 others by DAMSM's own similarity, while caption
  consistency asks the evaluation net whether each named colour is visible; a generator can satisfy
  DAMSM's features without drawing every colour the evaluator checks (or draw colours DAMSM weighs
  little), so the two can move apart, and the notebook's numbers show by how much.
1 point: with lambda > 0 the generator is trained against a DAMSM that shares the scorer's
  architecture, data and vocabulary (only the weights and epochs differ), so features both DAMSMs
  rely on can be pleased without more faithful images and R-precision still leans towards
  lambda = 5 (in the paper, and in ganlib before the 30-epoch DAMSM, it was the very same network);
  an independent check is needed: caption consistency with the separate evaluation net, the VS
  similarity of HDGAN's independently trained model, or the FID analogue, at the same steps and seed.
"""


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def alpha_ref(words, regions, mask, gamma1=4.0):
    s = np.einsum("btd,bnd->btn", np.asarray(words, np.float64), np.asarray(regions, np.float64))
    s = np.where(np.asarray(mask)[:, :, None] > 0, s, -np.inf)
    return softmax(gamma1 * softmax(s, 1), -1)


def score_ref(words, context, mask, gamma2=5.0):
    w, c = np.asarray(words, np.float64), np.asarray(context, np.float64)
    cos = (w * c).sum(-1) / np.maximum(np.linalg.norm(w, axis=-1) * np.linalg.norm(c, axis=-1), 1e-8)
    return np.log(np.sum(np.asarray(mask) * np.exp(gamma2 * cos), -1))


@pytest.mark.points(1)
@pytest.mark.exercise(1)
def test_word_region_attention_in_the_training_step(exercises):
    rng = np.random.default_rng(401)
    words, regions = rng.normal(size=(2, 3, 4)).astype(np.float32), rng.normal(size=(2, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    words[1, 2] = 0.0
    check_backend(exercises.word_region_attention, (words, regions, mask), alpha_ref, "word_region_attention",
                  kwargs={"gamma1": 4.0}, gradient=False)


@pytest.mark.points(1)
@pytest.mark.exercise(2)
def test_matching_score_in_the_training_step(exercises):
    rng = np.random.default_rng(402)
    words, context = rng.normal(size=(2, 4, 3)).astype(np.float32), rng.normal(size=(2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], np.float32)
    check_backend(exercises.matching_score, (words, context, mask), score_ref, "matching_score",
                  kwargs={"gamma2": 5.0})


@pytest.mark.points(1)
@pytest.mark.exercise(4)
def test_word_attention_with_one_real_word(exercises):
    rng = np.random.default_rng(403)
    query, words = rng.normal(size=(1, 3, 2)).astype(np.float32), rng.normal(size=(1, 4, 2)).astype(np.float32)
    context, beta = exercises.word_attention(query, words, np.array([[1, 0, 0, 0]], np.float32))
    check_close(beta, np.tile([1.0, 0.0, 0.0, 0.0], (1, 3, 1)), "word_attention with one real word (beta)", atol=1e-6)
    check_close(context, np.tile(words[:, :1], (1, 3, 1)), "word_attention with one real word (context)", atol=1e-5)


@pytest.mark.points(2)
@pytest.mark.exercise(3)
def test_damsm_loss_of_perfectly_matched_codes(exercises):
    """Sentence codes equal to the image codes, far apart: the sentence loss is ~0."""
    b, d = 4, 4
    code = np.eye(b, d, dtype=np.float32) * 3.0
    rng = np.random.default_rng(404)
    regions = rng.normal(size=(b, 3, d)).astype(np.float32)
    words = rng.normal(size=(b, 2, d)).astype(np.float32)
    _, s = exercises.damsm_loss(regions, code, words, code, np.array([2, 2, 1, 2], np.int32), gamma3=10.0)
    expected = 2 * np.log(1 + 3 * np.exp(-10.0))
    check_close(s, expected, "damsm_loss's sentence loss when every image code equals its sentence code and "
                "the codes are orthogonal (expected 2 log(1 + 3 e^-10))", atol=1e-5)
