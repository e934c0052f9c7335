"""HDGAN's visual-semantic similarity (`ganlib.models.vs`, `ganlib.metrics.vs_similarity`):
the score against numpy, pretraining, the shipped SynthBirds model, and its place in the evaluation."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import evaluation, losses, metrics, pretrain
from ganlib.encoders import build_sentence_encoder
from ganlib.metrics.vs import vs_vectors
from ganlib.models import vs
from ganlib.text import Tokenizer

CAPTIONS = ["this bird has a red crown and blue wings", "a small bird with a yellow belly and a grey tail",
            "the bird has a black beak", "a bird with white wings and an orange crown", "a tiny green bird"]

# A CPU-sized VS model on 32 px images with a random sentence encoder.
TINY = vs.Config(backbone="small", image_size=32, small_filters=(8, 16, 32), text="sentence_encoder",
                 sentence_dim=256, hid_dim=16, batch_size=16, learning_rate=5e-3, epochs=3)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = vs.VS(TINY, sentence_encoder=build_sentence_encoder(Tokenizer.default().vocabulary_size))
    model.build()
    return model


def test_presets_hold_the_reference_settings():
    paper = vs.Config.paper()   # train_nd_worker.py, train_birds.sh, trainNeuralDist.py
    assert (paper.backbone, paper.image_size, paper.sentence_dim, paper.hid_dim) == ("inception_resnet_v2", 299,
                                                                                      1024, 512)
    assert (paper.margin, paper.learning_rate, paper.beta_1, paper.beta_2, paper.batch_size) == (0.2, 2e-4, 0.5,
                                                                                                 0.999, 32)
    assert (paper.epochs, paper.epoch_decay, paper.text) == (600, 100, "embeddings")
    # lr halved at epochs 100, 200, ... (counted from 1, as the reference's loop)
    assert [paper.learning_rate_at(e) for e in (0, 98, 99, 199)] == [2e-4, 2e-4, 1e-4, 5e-5]
    with pytest.raises(ValueError, match="backbone"):
        vs.Config(backbone="resnet")


def test_vs_similarity_is_the_mean_and_std_of_numpy_cosines():
    """Features of the backbone and the sentence encoder, projected and compared in numpy
    (the reference's `l2norm(linear(x))` and `sum(img_emb * sent_emb, 1)`)."""
    model = tiny_model()
    tokenizer = Tokenizer.default()
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3)).astype("uint8")   # resized to 32
    x = ops.convert_to_numpy(ops.image.resize(images.astype("float32") / 127.5 - 1, (32, 32),
                                              interpolation="bilinear", antialias=True))
    feat = ops.convert_to_numpy(model.backbone(np.clip(x, -1, 1), training=False)).astype(np.float64)
    sent = ops.convert_to_numpy(model.sentence_encoder(tokenizer(CAPTIONS))).astype(np.float64)
    w_img, b_img = (np.asarray(ops.convert_to_numpy(w), np.float64) for w in model.linear_img.weights)
    w_sent, b_sent = (np.asarray(ops.convert_to_numpy(w), np.float64) for w in model.linear_sent.weights)
    a, s = feat @ w_img + b_img, sent @ w_sent + b_sent
    cos = np.sum(a * s, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(s, axis=1)
    mean, std = metrics.vs_similarity(images, CAPTIONS, model=model, tokenizer=tokenizer)
    assert (mean, std) == pytest.approx((cos.mean(), cos.std()), abs=1e-5)
    assert metrics.vs_similarity(images, tokenizer(CAPTIONS), model=model) == pytest.approx((mean, std), abs=1e-6)
    with pytest.raises(ValueError, match="one caption .* per image"):
        metrics.vs_similarity(images, CAPTIONS[:3], model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        metrics.vs_similarity(images, CAPTIONS, model=model)


def test_pretraining_lowers_the_ranking_loss_and_the_folder_loads(tmp_path):
    """Tiny VS model on 200 SynthBirds images (150 train / 50 test, 32 px), 3 epochs of 9 steps:
    the ranking loss of the 150 train images with their first captions falls, and their VS score
    with their own captions rises above the score with other species' captions. Measured
    (TensorFlow): loss 71.3 untrained -> 38.4; matched - mismatched VS 0.001 -> 0.120 (JAX: 72.4 -> 39.0,
    -0.031 -> 0.109)."""
    from ganlib.data import open_dataset, synthbirds

    root = synthbirds.generate(tmp_path / "sb", n=200, size=32, seed=0, verbose=False)
    train = open_dataset("synthbirds", root=root, split="train")
    tokenizer = Tokenizer.default()
    images = train.images(32).astype("float32") / 127.5 - 1.0
    tokens = tokenizer([caps[0] for caps in train.captions])

    other = pretrain.mismatched_index(train.class_ids, np.random.default_rng(0))

    def scores(model):
        v, s = vs_vectors(images, tokens, model)
        gap = np.mean(np.sum(v * s, 1)) - np.mean(np.sum(v * s[other], 1))
        return float(losses.bidirectional_ranking_loss(v, s, TINY.margin)), gap

    keras.utils.set_random_seed(0)
    untrained = vs.VS(TINY)        # the shipped sentence encoder, as train_vs starts
    untrained.build()
    before, gap_before = scores(untrained)
    out = tmp_path / "run"
    history = pretrain.train_vs(str(out), root=root, config=TINY, seed=0, verbose=False)
    with pytest.raises(ValueError, match="resume"):
        pretrain.train_vs(str(out), root=root, config=TINY, verbose=False)
    assert pretrain.train_vs(str(out), root=root, config=TINY, resume=True, verbose=False) == history
    assert [r["epoch"] for r in history] == [1, 2, 3] and history[-1]["step"] == 3 * (150 // 16)
    assert {"vs", "vs_std", "vs_mismatched", "vs_mismatched_std", "loss"} <= set(history[-1])
    assert json.loads((out / "metrics.json").read_text()) == history
    model, loaded_tokenizer = vs.load_pretrained(out)
    assert model.config == TINY and loaded_tokenizer.vocabulary == tokenizer.vocabulary
    after, gap_after = scores(model)
    print(f"train images: ranking loss {before:.3f} -> {after:.3f}, VS gap {gap_before:.3f} -> {gap_after:.3f}")
    # the untrained gap is the initialisers' draw: -0.031 on JAX, 0.001 on TensorFlow
    assert after < 0.7 * before and gap_after > 0.06 and gap_after - gap_before > 0.06 and abs(gap_before) < 0.05
    with pytest.raises(FileNotFoundError, match="vs.weights.h5"):
        vs.load_pretrained(tmp_path / "sb")


# --------------------------------------------------------------------------- #
# The shipped SynthBirds VS model
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def birds_test(tmp_path_factory):
    from ganlib.data import open_dataset, synthbirds

    root = tmp_path_factory.mktemp("birds")
    synthbirds.generate(root, n=600, size=64, seed=5, verbose=False)
    return open_dataset("synthbirds", root=root, split="test")


def test_shipped_vs_scores_real_pairs_far_above_mismatched_ones(birds_test):
    """Real test images (unseen species) with their captions against the same images with the
    caption of a bird of another species; `evaluate_model`'s `vs_similarity` / `vs_similarity_std` of a 'generator'
    returning the real images are the same numbers. Measured (TensorFlow, the shipped model):
    0.462 +- 0.137, mismatched -0.001 (150 images; 0.465 vs -0.022 on all 1500 of the default
    test split, pretrained.json)."""
    from test_damsm_use import _Replay

    model, tokenizer = metrics.load_vs()
    assert model.config.image_size == 64 and tokenizer.vocabulary == Tokenizer.default().vocabulary
    sample = evaluation.real_sample(birds_test, 150, 64, seed=0)
    mean, std = metrics.vs_similarity(sample["images"], sample["captions"])
    other = pretrain.mismatched_index(sample["class_ids"], np.random.default_rng(0))
    low, _ = metrics.vs_similarity(sample["images"], [sample["captions"][i] for i in other])
    print(f"VS similarity of {len(other)} real test images: {mean:.3f} +- {std:.3f}; mismatched {low:.3f}")
    assert mean > low + 0.2 and 0 < std < 0.3
    replay = _Replay(sample["images"])
    replay.seed0 = 0
    record = evaluation.evaluate_model(replay, birds_test, n=150, seed=0)
    assert (record["vs_similarity"], record["vs_similarity_std"]) == (mean, std)


def test_vs_model_trains_with_the_given_ranking_loss():
    """Lesson 05 trains the VS model with the student's ranking loss (`ranking_loss_fn`); by default
    it is `ganlib.losses.bidirectional_ranking_loss` with the config's margin."""
    rng = np.random.default_rng(4)
    y = {"image": rng.normal(size=(4, 8)).astype("float32"), "sentence": rng.normal(size=(4, 8)).astype("float32")}
    calls = []

    def mine(v, t, margin):
        calls.append(margin)
        return ops.sum(v * 0.0) + 3.0

    assert float(vs.VS(vs.Config.fast(), ranking_loss_fn=mine).compute_loss(y_pred=y)) == pytest.approx(3.0)
    assert calls == [0.2]
    expected = float(losses.bidirectional_ranking_loss(y["image"], y["sentence"], 0.2))
    assert float(vs.VS(vs.Config.fast()).compute_loss(y_pred=y)) == pytest.approx(expected, rel=1e-6)


def test_cli_pretrain_vs_calls_train_vs(monkeypatch):
    from ganlib import cli

    calls = {}
    monkeypatch.setattr(pretrain, "train_vs", lambda out, **kw: calls.update(out=out, **kw))
    args = cli.build_parser().parse_args(["pretrain", "vs", "--out", "o", "--epochs", "2", "--resume"])
    assert args.run(args) == 0
    assert (calls["out"], calls["data"], calls["preset"], calls["epochs"], calls["resume"]) == \
        ("o", "synthbirds", "fast", 2, True)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="preset must be one of"):
        pretrain.train_vs("unused", preset="coco")
