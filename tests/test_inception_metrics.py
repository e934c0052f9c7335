"""Real-data metrics against known answers: InceptionV3 network, FID statistics, IS, R-precision folds.

Every InceptionV3 here is randomly initialised (``weights=None``) and built once;
nothing is downloaded (the offline test makes the download fail on purpose).
"""

import json
import os

import keras
import numpy as np
import pytest

from ganlib import evaluation, metrics
from ganlib.metrics import inception
from ganlib.metrics.inception import InceptionNetwork, InceptionWeightsUnavailable


@pytest.fixture(scope="module")
def net():
    return inception.default_inception(weights=None)


@pytest.fixture(scope="module")
def uint8_images():
    return np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3)).astype("uint8")


@pytest.fixture(scope="module")
def images(uint8_images):
    return uint8_images.astype("float32") / 127.5 - 1.0      # the same images in [-1, 1]


@pytest.fixture(scope="module")
def outputs(net, images):
    return net.predict(images, batch_size=2)                 # two batches: 2 + 1


class FakeNetwork:
    """Duck-typed InceptionNetwork with given features / probabilities."""

    def __init__(self, features, probs):
        self.out = {"features": np.asarray(features, "float32"), "probs": np.asarray(probs, "float32")}

    def predict(self, images, batch_size=50):
        assert len(images) == len(self.out["probs"])
        return self.out


# ------------------------------ the network -------------------------------- #
def test_network_gives_probabilities_and_pool_features(net, outputs, uint8_images):
    assert outputs["probs"].shape == (3, 1000) and outputs["features"].shape == (3, 2048)
    assert np.all(np.isfinite(outputs["probs"])) and np.all(np.isfinite(outputs["features"]))
    np.testing.assert_allclose(outputs["probs"].sum(1), 1.0, atol=1e-5)
    assert outputs["probs"].min() >= 0 and outputs["features"].min() >= 0   # softmax; average of ReLUs
    # uint8 input in [0, 255] is read as the same images as their [-1, 1] float version
    np.testing.assert_allclose(net.predict(uint8_images, batch_size=3)["features"], outputs["features"],
                               rtol=1e-4, atol=1e-5)


def test_one_model_two_outputs_and_bilinear_resize_to_299(net):
    model = net.model
    assert set(model.output.keys()) == {"features", "probs"}
    resize = model.get_layer(f"resize_{inception.INPUT_SIZE}")
    assert resize.interpolation == "bilinear"
    to_299 = keras.Model(model.input, resize.output)
    constant = np.full((1, 16, 16, 3), 0.3, "float32")
    out = keras.ops.convert_to_numpy(to_299(constant))
    assert out.shape == (1, 299, 299, 3)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)                   # a constant image stays constant
    # bilinear: a 2x2 checkerboard becomes a smooth ramp (values between the two levels)
    board = np.array([[-1.0, 1.0], [1.0, -1.0]], "float32")[None, :, :, None].repeat(3, -1)
    out = keras.ops.convert_to_numpy(to_299(board))
    expected = keras.ops.convert_to_numpy(keras.ops.image.resize(board, (299, 299), interpolation="bilinear"))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    middle = out[0, 149, :, 0]
    assert middle.min() > -0.1 and middle.max() < 0.1                # the centre row blends both levels
    assert len(np.unique(np.round(out[0, 0, :, 0], 4))) > 10          # not nearest-neighbour


def test_bad_images_are_rejected(net):
    with pytest.raises(ValueError, match="images"):
        net.predict(np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        net.predict(np.full((1, 8, 8, 3), 3.0, "float32"))


# ------------------------------- weights ----------------------------------- #
def test_offline_imagenet_weights_give_a_clear_error(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with pytest.raises(InceptionWeightsUnavailable) as info:
        InceptionNetwork.load("imagenet")
    message = str(info.value)
    assert inception.WEIGHTS_FILE in message
    assert os.path.join(str(tmp_path / "keras_home"), "models") in message
    assert "weights=PATH" in message and "name resolution" in message
    assert isinstance(info.value, FileNotFoundError)            # the CLI reports it as a missing file
    with pytest.raises(InceptionWeightsUnavailable):
        inception.default_inception("imagenet")                 # not cached: retried next time
    assert "imagenet" not in inception._NETWORKS


def test_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "inception.h5"
    with pytest.raises(InceptionWeightsUnavailable, match="nowhere"):
        InceptionNetwork.load(missing)
    with pytest.raises(ValueError, match="weights"):
        InceptionNetwork.load(3)


# ---------------------------- FID statistics ------------------------------- #
def test_fid_of_a_set_against_itself_is_zero(net, images, outputs):
    mu, sigma = metrics.inception_statistics(images, network=net)      # the real net's 2048-d features
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048)
    feats = outputs["features"]
    np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(feats.astype("float64"), rowvar=False), rtol=1e-5, atol=1e-9)
    # the distance of a set to itself (64-d features: a 2048-d eigendecomposition is slow on a CPU)
    f = (np.random.default_rng(6).normal(size=(20, 64)) ** 2).astype("float32")   # rank 19 < 64
    stats = metrics.feature_statistics(f)
    out = metrics.inception_metrics(np.zeros((20, 2, 2, 3), "float32"), stats,
                                    network=FakeNetwork(f, np.full((20, 10), 0.1)))
    assert abs(out["fid"]) < 1e-6 * np.trace(stats[1])   # round-off only (sqrt of ~0 eigenvalues)


def test_fid_of_two_gaussians_matches_the_closed_form():
    # N(m1, diag(s1^2)) vs N(m2, diag(s2^2)): FID = |m1 - m2|^2 + sum (s1 - s2)^2
    rng = np.random.default_rng(1)
    d, n = 8, 200_000
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    closed = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    assert metrics.frechet_distance(m1, np.diag(s1 ** 2), m2, np.diag(s2 ** 2)) == pytest.approx(closed, rel=1e-9)
    fake = m1 + s1 * rng.normal(size=(n, d))
    real = m2 + s2 * rng.normal(size=(n, d))
    out = metrics.inception_metrics(np.zeros((n, 2, 2, 3), "float32"), metrics.feature_statistics(real),
                                    network=FakeNetwork(fake, np.full((n, 4), 0.25)))
    assert out["fid"] == pytest.approx(closed, rel=0.02)


def test_inception_score_of_uniform_is_one_and_of_confident_balanced_is_k():
    n = 40
    images = np.zeros((n, 2, 2, 3), "float32")
    feats = np.random.default_rng(2).normal(size=(n, 3))
    stats = metrics.feature_statistics(feats)
    uniform = metrics.inception_metrics(images, stats, network=FakeNetwork(feats, np.full((n, 1000), 1e-3)))
    assert uniform["inception_score"] == pytest.approx(1.0, abs=1e-5)
    assert uniform["inception_score_std"] == pytest.approx(0.0, abs=1e-5)
    for k in (1, 2, 4):
        probs = np.eye(1000)[np.arange(n) % k]                # every split of 4 holds each class equally
        out = metrics.inception_metrics(images, stats, network=FakeNetwork(feats, probs), splits=10)
        assert out["inception_score"] == pytest.approx(k, rel=1e-6)
        assert out["inception_score_std"] == pytest.approx(0.0, abs=1e-6)


def test_statistics_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    mu, sigma = metrics.feature_statistics(rng.normal(size=(50, 16)))
    path = metrics.save_statistics(tmp_path / "sub" / "real_stats.npz", mu, sigma, count=50,
                                   dataset="cub", split="test", image_size=256)
    assert path == tmp_path / "sub" / "real_stats.npz" and path.is_file()
    mu2, sigma2 = metrics.load_statistics(path)
    assert mu2.dtype == mu.dtype and np.array_equal(mu2, mu) and np.array_equal(sigma2, sigma)
    mu3, sigma3, meta = metrics.load_statistics(path, with_metadata=True)
    assert np.array_equal(sigma3, sigma)
    assert meta == {"count": 50, "dataset": "cub", "split": "test", "image_size": 256}
    assert metrics.frechet_distance(mu2, sigma2, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_statistics_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        metrics.load_statistics(tmp_path / "missing.npz")
    text = tmp_path / "notes.npz"
    text.write_text("not numpy")
    with pytest.raises(ValueError, match="notes.npz"):
        metrics.load_statistics(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        metrics.load_statistics(single)
    partial = tmp_path / "partial.npz"
    np.savez(partial, mu=np.zeros(3))
    with pytest.raises(ValueError, match="sigma"):
        metrics.load_statistics(partial)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(ValueError, match="shape"):
        metrics.load_statistics(wrong)
    with pytest.raises(ValueError, match="sigma"):
        metrics.save_statistics(tmp_path / "x.npz", np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="metadata"):
        metrics.save_statistics(tmp_path / "x.npz", np.zeros(3), np.eye(3), note=[1, 2])


# --------------------------- R-precision (folds) --------------------------- #
def test_r_precision_folds_perfect_codes():
    codes = np.random.default_rng(4).normal(size=(300, 64))
    assert metrics.r_precision_folds(codes, codes.copy(), candidates=100, folds=10) == (1.0, 0.0)


def test_r_precision_folds_random_codes_near_chance():
    rng = np.random.default_rng(5)
    n = 3000
    im, tx = rng.normal(size=(n, 32)), rng.normal(size=(n, 32))
    mean, std = metrics.r_precision_folds(im, tx, candidates=100, folds=10, seed=1)
    assert abs(mean - 0.01) < 0.01
    assert 0 <= std < 0.02           # fold rates of 300 Bernoulli(0.01): sd ~ 0.006
    # the folds reuse r_precision's hits: one fold is r_precision itself
    assert metrics.r_precision_folds(im, tx, folds=1, seed=1) == (metrics.r_precision(im, tx, seed=1), 0.0)


def test_r_precision_folds_bad_input():
    codes = np.ones((150, 4))
    with pytest.raises(ValueError, match="folds"):
        metrics.r_precision_folds(codes, codes, folds=0)
    with pytest.raises(ValueError, match="candidates"):
        metrics.r_precision_folds(np.ones((50, 4)), np.ones((50, 4)))


# --------------------- runs and callbacks on real data --------------------- #
class TinyNetwork:
    """Stand-in for InceptionV3 in run tests: colour mean/std features, a softmax over 10 classes."""

    weights = "tiny-test-network"

    def predict(self, images, batch_size=50):
        x = metrics.as_model_images(images)
        features = np.concatenate([x.mean((1, 2)), x.std((1, 2))], 1).astype("float64")
        logits = features @ np.linspace(-3, 3, 60).reshape(6, 10)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return {"features": features, "probs": e / e.sum(1, keepdims=True)}


def _offline(mp, home):
    """Make the ImageNet weights unavailable: empty Keras cache, failing download."""
    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: no network in this test")

    mp.setenv("KERAS_HOME", str(home))
    mp.setattr(keras.utils, "get_file", no_network)
    mp.setattr(inception, "_NETWORKS", {})


@pytest.fixture(scope="module")
def offline_cub_run(tmp_path_factory):
    """2 training steps of GAN-INT-CLS on data read as 'cub' (SynthBirds in the CUB layout), offline."""
    import contextlib
    import io

    from ganlib import runs
    from ganlib.data import synthbirds

    root = tmp_path_factory.mktemp("cub_like")
    synthbirds.generate(root, n=120, size=32, seed=1, verbose=False)
    run = tmp_path_factory.mktemp("cub_run")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        _offline(mp, tmp_path_factory.mktemp("keras_home"))
        model = runs.train("cgan", data="cub", root=root, steps=2, out=run, verbose=0,
                           config_overrides={"eval_samples": 6})
    return run, model, printed.getvalue()


def test_training_on_real_data_without_imagenet_weights_goes_on(offline_cub_run, tmp_path, monkeypatch, capsys):
    from ganlib import callbacks as cb
    from ganlib.cli import main

    run, model, printed = offline_cub_run
    assert cb.global_step(model) == 2 and cb.latest_checkpoint(run).name == "ckpt-0000002.keras"
    assert printed.count("no FID / Inception Score for this run") == 1      # one message, not one per eval
    assert inception.WEIGHTS_FILE in printed
    assert not (run / "metrics.json").exists()                             # no metric written
    assert "caption_consistency" not in printed and "consistency" not in printed
    _offline(monkeypatch, tmp_path / "keras_home")
    assert main(["evaluate", str(run)]) == 2                               # evaluate: a clear error
    assert inception.WEIGHTS_FILE in capsys.readouterr().err


def test_real_data_evaluation_uses_inception_metrics_and_caches_statistics(offline_cub_run, monkeypatch):
    from ganlib import callbacks as cb
    from ganlib import runs

    run, model, _ = offline_cub_run
    tiny = TinyNetwork()
    monkeypatch.setattr(metrics, "default_inception", lambda weights="imagenet": tiny)
    monkeypatch.setattr(evaluation, "_SAMPLES", {})
    record = runs.evaluate_run(run, n=6)
    assert record["step"] == 2
    assert {"fid", "inception_score", "inception_score_std"} <= set(record)
    assert "caption_consistency" not in record and "chance_consistency" not in record
    assert np.isfinite(record["fid"]) and 1.0 <= record["inception_score"] <= 10.0
    mu, sigma, meta = metrics.load_statistics(run / runs.REAL_STATISTICS_FILE, with_metadata=True)
    assert mu.shape == (6,) and meta["count"] == 6 and meta["dataset"] == "cub" and meta["split"] == "test"
    assert meta["weights"] == "tiny-test-network"

    # a new process (empty memory cache) reuses the run's .npz instead of recomputing
    def no_recompute(*args, **kwargs):
        raise AssertionError("real statistics recomputed although the run folder has them")

    monkeypatch.setattr(evaluation, "_SAMPLES", {})
    monkeypatch.setattr(metrics, "inception_statistics", no_recompute)
    evaluator = cb.Evaluate(_test_set(run), n=6, out_dir=run, verbose=False)
    evaluator.set_model(model)
    again = evaluator.evaluate()
    assert again["fid"] == pytest.approx(record["fid"], rel=1e-4, abs=1e-6)
    assert [r["step"] for r in json.loads((run / "metrics.json").read_text())] == [2]


def _test_set(run):
    from ganlib.data import open_dataset

    info = json.loads((run / "config.json").read_text())
    return open_dataset(info["data"], root=info["root"], split="test")
