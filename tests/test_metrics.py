"""Metrics against known answers: IS, FID, R-precision, caption consistency."""

import os

import numpy as np
import pytest

from ganlib import metrics

ASSETS = metrics.ASSETS
HAVE_EVALUATOR = os.path.exists(os.path.join(ASSETS, "evaluator.weights.h5"))


# ----------------------------- Inception score ----------------------------- #
def test_inception_score_uniform_is_one():
    mean, std = metrics.inception_score(np.full((100, 7), 1 / 7), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_inception_score_confident_balanced_is_k(k):
    probs = np.eye(k)[np.arange(20 * k) % k]           # each split holds every class equally
    mean, std = metrics.inception_score(probs, splits=10 if k != 5 else 4)
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_matches_definition():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6) * 0.5, size=40)
    # hand computation with 2 splits
    vals = []
    for part in (p[:20], p[20:]):
        py = part.mean(0)
        vals.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), 1))))
    mean, std = metrics.inception_score(p, splits=2)
    assert mean == pytest.approx(np.mean(vals)) and std == pytest.approx(np.std(vals))


def test_inception_score_bad_input():
    with pytest.raises(ValueError, match="probs"):
        metrics.inception_score(np.ones((4, 3)))        # rows do not sum to 1
    with pytest.raises(ValueError, match="probs"):
        metrics.inception_score(np.ones(3) / 3)
    with pytest.raises(ValueError, match="splits"):
        metrics.inception_score(np.full((4, 2), 0.5), splits=10)


# ----------------------------- Frechet distance ---------------------------- #
def test_frechet_identical_is_zero():
    rng = np.random.default_rng(1)
    mu, sigma = metrics.feature_statistics(rng.normal(size=(500, 16)))
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_feature_statistics_is_np_cov():
    f = np.random.default_rng(2).normal(size=(50, 4))
    mu, sigma = metrics.feature_statistics(f)
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(sigma, np.cov(f, rowvar=False))


@pytest.mark.parametrize("m1,s1,m2,s2", [(0.0, 1.0, 3.0, 2.0), (-1.5, 0.3, 2.0, 0.3), (1.0, 4.0, 1.0, 0.5)])
def test_frechet_1d_closed_form(m1, s1, m2, s2):
    # 1-D Gaussians: (mu1 - mu2)^2 + (s1 - s2)^2 with s the standard deviations
    d = metrics.frechet_distance([m1], [[s1 ** 2]], [m2], [[s2 ** 2]])
    assert d == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-9, abs=1e-9)


def test_frechet_commuting_covariances_closed_form():
    # covariances sharing eigenvectors commute: Tr((S1 S2)^1/2) = sum sqrt(l1 * l2)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    l1, l2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_general_spd_against_sqrtm_by_eigendecomposition():
    # general (non-commuting) SPD pair: (S1 S2)^{1/2} = S1^{1/2} (S1^{1/2} S2 S1^{1/2})^{1/2} S1^{-1/2}
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(w)) @ v.T
    w2, v2 = np.linalg.eigh(r1 @ s2 @ r1)
    covmean = r1 @ ((v2 * np.sqrt(w2)) @ v2.T) @ np.linalg.inv(r1)
    np.testing.assert_allclose(covmean @ covmean, s1 @ s2, rtol=1e-8, atol=1e-8)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert metrics.frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_singular_covariance_is_finite():
    f = np.random.default_rng(5).normal(size=(10, 32))   # N < F: rank-deficient covariance
    mu, sigma = metrics.feature_statistics(f)
    d = metrics.frechet_distance(mu, sigma, mu + 1.0, sigma)
    assert np.isfinite(d) and d == pytest.approx(32.0, rel=1e-6)


def test_frechet_bad_shapes():
    with pytest.raises(ValueError, match="sigma2"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu2"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(3))


# ------------------------------- R-precision ------------------------------- #
def test_r_precision_perfect_codes():
    codes = np.random.default_rng(6).normal(size=(300, 256))
    assert metrics.r_precision(codes, codes.copy(), candidates=100) == 1.0


def test_r_precision_random_codes_near_chance():
    rng = np.random.default_rng(7)
    n = 3000
    r = metrics.r_precision(rng.normal(size=(n, 32)), rng.normal(size=(n, 32)), candidates=100, seed=1)
    # Binomial(n, 0.01): sd = sqrt(0.01 * 0.99 / 3000) ~ 0.0018; 5 sd bound
    assert abs(r - 0.01) < 0.01


def test_r_precision_counts_rank_one_exactly():
    # candidates=2: image i vs its caption and one other; codes built so half rank first
    im = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    tx = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    # rows 0 and 3 have cos(true) = 1 but an equally good wrong caption; rows 1 and 2 are beaten
    r = metrics.r_precision(im, tx, candidates=4)       # every other row is a candidate
    assert r == pytest.approx(0.0)                       # ties with an equal wrong caption are not "first"
    tx2 = np.array([[1.0, 0.0], [0.7, 0.7], [0.7, 0.7], [0.0, 1.0]])
    assert metrics.r_precision(im, tx2, candidates=4) == pytest.approx(0.5)


def test_r_precision_too_few_rows():
    with pytest.raises(ValueError, match="candidates"):
        metrics.r_precision(np.ones((50, 4)), np.ones((50, 4)), candidates=100)
    with pytest.raises(ValueError, match="text_codes"):
        metrics.r_precision(np.ones((200, 4)), np.ones((200, 5)))


# --------------------------- Caption consistency --------------------------- #
class FakeEvaluator:
    """Duck-typed evaluator: fixed per-part colour predictions."""

    def __init__(self, predictions):
        from ganlib.data import synthbirds as sb
        self.probs = {}
        for part, colours in predictions.items():
            names = list(sb.PART_COLOURS[part])
            self.probs[part] = np.eye(len(names))[[names.index(c) for c in colours]]

    def predict(self, images, batch_size=256):
        n = images.shape[0]
        return {"attributes": {p: v[:n] for p, v in self.probs.items()}}


def test_caption_consistency_exact_on_hand_made_example():
    sb = pytest.importorskip("ganlib.data.synthbirds")
    # pick two colours allowed for crown and wing
    crown = list(sb.PART_COLOURS["crown"])[:2]
    wing = list(sb.PART_COLOURS["wing"])[:2]
    # captions built by parse-checked search would be slow; use the grammar's words directly
    caps = [f"this bird has a {crown[0]} crown and {wing[0]} wings",
            f"a bird with a {crown[1]} crown",
            f"this bird has {wing[1]} wings",
            f"a small bird with a {crown[0]} crown"]
    parsed = [sb.parse_caption(c) for c in caps]
    assert parsed == [{"crown": crown[0], "wing": wing[0]}, {"crown": crown[1]},
                      {"wing": wing[1]}, {"crown": crown[0]}], parsed
    other = list(sb.PART_COLOURS)
    preds = {p: [list(sb.PART_COLOURS[p])[0]] * 4 for p in other}
    preds["crown"] = [crown[0], crown[0], crown[1], crown[1]]   # image 1 wrong, image 3 wrong
    preds["wing"] = [wing[0], wing[0], wing[1], wing[0]]        # both wing mentions right
    fake = FakeEvaluator(preds)
    images = np.zeros((4, 16, 16, 3), np.float32)
    score, chance = metrics.caption_consistency(images, caps, evaluator=fake)
    # mentions: crown x3 (img0 ok, img1 wrong, img3 wrong), wing x2 (img0 ok, img2 ok) -> 3/5
    assert score == pytest.approx(3 / 5)
    # crown: q = {c0: .5, c1: .5}, r = {c0: 2/3, c1: 1/3} -> 0.5;  wing: q = {w0: .75, w1: .25},
    # r = {w0: .5, w1: .5} -> 0.5;  weighted by mentions (3, 2): (3*0.5 + 2*0.5) / 5 = 0.5
    assert chance == pytest.approx(0.5)


def test_caption_consistency_bad_input():
    pytest.importorskip("ganlib.data.synthbirds")
    fake = FakeEvaluator({})
    with pytest.raises(ValueError, match="captions"):
        metrics.caption_consistency(np.zeros((3, 8, 8, 3), np.float32), ["a", "b"], evaluator=fake)
    with pytest.raises(ValueError, match="images"):
        metrics.caption_consistency(np.zeros((3, 8, 8), np.float32), ["a"] * 3, evaluator=fake)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        metrics.caption_consistency(np.full((1, 8, 8, 3), 3.0, np.float32), ["a"], evaluator=fake)


# ------------------------- the shipped evaluator --------------------------- #
needs_evaluator = pytest.mark.skipif(not HAVE_EVALUATOR, reason="run `python -m ganlib.pretrain evaluator`")


@pytest.fixture(scope="module")
def fresh_birds():
    from ganlib.pretrain import render_set
    # 2 birds of every species, a seed the evaluator never trained on
    return render_set(range(200), 2, seed=12345, captions=10)


@needs_evaluator
def test_evaluator_held_out_accuracy(fresh_birds):
    out = metrics.default_evaluator().predict(fresh_birds["images"])
    assert out["features"].shape == (400, 256)
    np.testing.assert_allclose(out["species_probs"].sum(1), 1.0, atol=1e-4)
    species_acc = np.mean(out["species_probs"].argmax(1) == fresh_birds["species"])
    assert species_acc > 0.85, species_acc                     # chance 0.005; shipped: ~0.95
    for part, probs in out["attributes"].items():
        acc = np.mean(probs.argmax(1) == fresh_birds["attributes"][part])
        assert acc > 0.8, (part, acc)                          # shipped: 0.87 (beak) .. 0.99


@needs_evaluator
def test_caption_consistency_real_images(fresh_birds):
    imgs = fresh_birds["images"].astype(np.float32) / 127.5 - 1
    caps = [c[0] for c in fresh_birds["captions"]]
    score, chance = metrics.caption_consistency(imgs, caps)
    assert score > 0.8 and chance < 0.5 and score - chance > 0.4, (score, chance)
    # shuffled captions: near chance
    perm = np.random.default_rng(0).permutation(len(caps))
    s_shuf, c_shuf = metrics.caption_consistency(imgs, [caps[i] for i in perm])
    assert c_shuf == pytest.approx(chance)                     # chance ignores the pairing
    assert abs(s_shuf - chance) < 0.1, (s_shuf, chance)
    # any resolution is accepted (resized to 64)
    big = np.repeat(np.repeat(imgs[:50], 2, axis=1), 2, axis=2)
    s_big, _ = metrics.caption_consistency(big, caps[:50])
    assert s_big > 0.7


@needs_evaluator
def test_evaluate_images_and_real_statistics(fresh_birds):
    imgs = fresh_birds["images"]
    stats = metrics.real_statistics(imgs[:200])                # uint8 accepted
    caps = [c[1] for c in fresh_birds["captions"]]
    real = metrics.evaluate_images(imgs[200:].astype(np.float32) / 127.5 - 1, caps[200:], stats)
    noise = np.random.default_rng(0).uniform(-1, 1, (200, 64, 64, 3)).astype(np.float32)
    fake = metrics.evaluate_images(noise, caps[200:], stats)
    assert set(real) == {"fid", "inception_score", "inception_score_std",
                         "caption_consistency", "chance_consistency"}
    assert real["fid"] < fake["fid"]
    assert real["inception_score"] > fake["inception_score"]
    assert real["caption_consistency"] > fake["caption_consistency"]


def test_evaluator_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ganlib.pretrain evaluator"):
        metrics.Evaluator.load(str(tmp_path / "nope.weights.h5"))
