"""Using a pretrained DAMSM: `load_pretrained`, the `damsm:DIR` text encoder of lessons 01-03's
models, and AttnGAN's R-precision of generated images in `ganlib.evaluation`."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import conditioning, evaluation, metrics, pretrain
from ganlib.models import cgan, damsm
from ganlib.text import Tokenizer
from test_training import one_batch

TINY_DAMSM = damsm.Config(embed_dim=16, word_dim=8, backbone="small", image_size=16, small_filters=(4, 8),
                          max_words=18, batch_size=4)


@pytest.fixture(scope="module")
def damsm_dir(tmp_path_factory):
    """A (random) tiny DAMSM folder as `ganlib pretrain damsm --out DIR` writes it."""
    keras.utils.set_random_seed(1)
    tokenizer = Tokenizer.default(18)
    model = damsm.DAMSM(TINY_DAMSM, vocabulary_size=tokenizer.vocabulary_size)
    model.build()
    out = tmp_path_factory.mktemp("damsm")
    pretrain.save_damsm(model, tokenizer, str(out), "synthbirds")
    return out, model, tokenizer


CAPTIONS = ["this bird has a red crown and blue wings", "a small bird with a yellow belly and a grey tail",
            "the bird has a black beak", "a bird with white wings and an orange crown"]


def test_load_pretrained_gives_the_saved_encoders_and_vocabulary(damsm_dir):
    out, saved, tokenizer = damsm_dir
    model, loaded_tokenizer = damsm.load_pretrained(out)
    assert model.config == TINY_DAMSM and loaded_tokenizer.vocabulary == tokenizer.vocabulary
    tokens = loaded_tokenizer(CAPTIONS)
    assert tokens.shape == (4, 18) and tokens.dtype.kind == "i" and np.all(tokens[:, -1] == 0)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    for a, b in zip(model.text_encoder(tokens), saved.text_encoder(tokens)):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(model.image_encoder(images), saved.image_encoder(images)):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


def test_load_pretrained_names_what_is_missing(tmp_path, damsm_dir):
    with pytest.raises(FileNotFoundError, match="missing damsm.weights.h5, config.json, vocab.txt"):
        damsm.load_pretrained(tmp_path)
    out = damsm_dir[0]
    for name in ("damsm.weights.h5", "vocab.txt"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    info = json.loads((out / "config.json").read_text())
    info["config"]["embed_dim"] = 32
    (tmp_path / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="does not fit"):
        damsm.load_pretrained(tmp_path)


def test_cgan_conditioned_on_a_damsm_uses_its_sentence_features_and_trains(damsm_dir):
    out, saved, tokenizer = damsm_dir
    base = cgan.Config.fast().replace(image_size=16, z_dim=8, proj_dim=8, ngf=8, ndf=8, batch_size=4,
                                      lr_decay_every=0, ema_decay=0.0)
    with pytest.raises(ValueError, match="damsm"):
        conditioning.use_text_encoder(base, "bert")
    cfg = conditioning.use_text_encoder(base, f"damsm:{out}")
    assert (cfg.text_encoder, cfg.embed_dim, cfg.max_words) == (f"damsm:{out}", 16, 18)
    assert cgan.SPEC.batch(cfg).text == "tokens"
    keras.utils.set_random_seed(0)
    model = cgan.GANINTCLS(cfg)
    model.compile()
    assert model.tokenizer.vocabulary == tokenizer.vocabulary
    tokens = model.tokenizer(CAPTIONS)
    expected = ops.convert_to_numpy(saved.text_encoder(tokens)[1])
    np.testing.assert_allclose(ops.convert_to_numpy(model.embed(tokens)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.encode_text(CAPTIONS), expected, rtol=1e-5, atol=1e-6)
    # one training step moves G and D, not the frozen DAMSM text encoder
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32"), "tokens": tokens,
             "wrong_tokens": np.roll(tokens, 1, axis=0)}
    encoder = model.helper(conditioning.SENTENCE_ENCODER)
    before_text = [ops.convert_to_numpy(w).copy() for w in encoder.weights]
    before_g = [ops.convert_to_numpy(w).copy() for w in model.generator.trainable_weights]
    logs = model.fit(one_batch(batch), steps_per_epoch=1, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert all(np.array_equal(a, ops.convert_to_numpy(w)) for a, w in zip(before_text, encoder.weights))
    assert any(not np.array_equal(a, ops.convert_to_numpy(w)) for a, w in zip(before_g, model.generator.trainable_weights))


# --------------------------------------------------------------------------- #
# R-precision with the shipped SynthBirds DAMSM
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def birds_test(tmp_path_factory):
    from ganlib.data import open_dataset, synthbirds

    root = tmp_path_factory.mktemp("birds")
    synthbirds.generate(root, n=2000, size=64, seed=5, verbose=False)
    return open_dataset("synthbirds", root=root, split="test")


class _Replay:
    """A stand-in text model for `evaluate_model` whose `generate` returns given images in order."""

    class condition:
        kind = "text"

        @staticmethod
        def of_sample(sample):
            return sample["captions"]

    def __init__(self, images, size=64):
        self.images, self.config = images, type("C", (), {"image_size": size})()

    def generate(self, captions, seed=0):
        start = seed - self.seed0
        return self.images[start:start + len(captions)].astype("float32") / 127.5 - 1.0


def test_shipped_damsm_r_precision_of_real_and_mismatched_images(birds_test):
    """The shipped DAMSM ranks real test images' captions far above chance; evaluation's
    `r_precision` of a 'generator' that returns the real images is the same number, and one
    that returns them shuffled scores about chance (1 / 100). Measured (TensorFlow, the 5-epoch
    shipped DAMSM): 0.060 +- 0.036, shuffled 0.006."""
    model, tokenizer = damsm.load_pretrained()
    assert model.config.image_size == 64 and tokenizer.vocabulary == Tokenizer.default().vocabulary
    sample = evaluation.real_sample(birds_test, 500, 64, seed=0)
    mean, std = metrics.damsm_r_precision(sample["images"], sample["captions"], seed=0)
    assert mean > 0.025 and 0 < std < 0.2     # chance: 0.01 (see pretrained.json for the measured value)
    replay = _Replay(sample["images"])
    replay.seed0 = 0
    record = evaluation.evaluate_model(replay, birds_test, n=500, seed=0)
    assert (record["r_precision"], record["r_precision_std"]) == (mean, std)
    shuffled = _Replay(sample["images"][np.random.default_rng(0).permutation(500)])
    shuffled.seed0 = 0
    low = evaluation.evaluate_model(shuffled, birds_test, n=500, seed=0)["r_precision"]
    assert low < 0.025 and mean > 2 * low
    print(f"R-precision (500 real test images, 100 candidates, 10 folds): {mean:.3f} +- {std:.3f}; "
          f"shuffled {low:.3f}")


def test_attngan_fast_trains_with_the_30_epoch_damsm_not_the_one_that_scores_it(birds_test):
    """Two SynthBirds DAMSMs ship: the 5-epoch one (`None`) scores R-precision, the 30-epoch one
    (`"synthbirds-30ep"`) is AttnGAN's fast preset's text encoder and DAMSM loss. They are different
    networks with the same vocabulary and widths, and the 30-epoch one ranks real test images'
    captions better by its own codes: its `pretrained.json` entry says 30 epochs and a test
    R-precision above the 5-epoch one's, and on these 500 images (another SynthBirds draw) it
    scores above 0.1 and 1.5x the 5-epoch one. Measured (TensorFlow): 0.162 against 0.060."""
    assert damsm.folder(None) == damsm.SHIPPED == damsm.SHIPPED_NAMES["synthbirds"]
    assert damsm.folder("synthbirds-30ep") == damsm.SHIPPED_NAMES["synthbirds-30ep"] != damsm.SHIPPED
    assert damsm.folder("runs/damsm") == "runs/damsm"
    from ganlib.models import attngan, mirrorgan

    assert attngan.Config.fast().damsm == "synthbirds-30ep" and attngan.Config.paper().damsm is None
    assert mirrorgan.Config.fast().damsm == "synthbirds-30ep"   # STEM as AttnGAN's; STREAM keeps its own CNN
    cfg = conditioning.use_text_encoder(cgan.Config.fast(), "damsm:synthbirds-30ep")   # lessons 01-03's models
    assert (cfg.text_encoder, cfg.embed_dim) == ("damsm:synthbirds-30ep", 64)
    strong, tokenizer = damsm.load_pretrained("synthbirds-30ep")
    weak, weak_tokenizer = damsm.load_pretrained()
    assert tokenizer.vocabulary == weak_tokenizer.vocabulary
    assert (strong.config.embed_dim, strong.config.max_words) == (weak.config.embed_dim, weak.config.max_words)
    assert not np.allclose(strong.text_encoder.get_weights()[0], weak.text_encoder.get_weights()[0])
    with open(f"{pretrain.ASSETS}/pretrained.json") as f:
        shipped = json.load(f)
    assert shipped["damsm_synthbirds_30ep"]["settings"]["epochs"] == 30
    assert shipped["damsm_synthbirds_30ep"]["command"].endswith("--out ganlib/assets/damsm_synthbirds_30ep --epochs 30")
    assert (shipped["damsm_synthbirds_30ep"]["test_classes"]["r_precision"]
            > shipped["damsm_synthbirds"]["test_classes"]["r_precision"])
    sample = evaluation.real_sample(birds_test, 500, 64, seed=0)
    r30, _ = metrics.damsm_r_precision(sample["images"], sample["captions"], path="synthbirds-30ep", seed=0)
    r5, _ = metrics.damsm_r_precision(sample["images"], sample["captions"], seed=0)
    print(f"R-precision of 500 real test images: 30-epoch DAMSM {r30:.3f}, 5-epoch {r5:.3f} (chance 0.01)")
    assert r30 > 0.1 and r30 > 1.5 * r5


def test_a_helper_folder_is_loaded_once_whatever_names_it(damsm_dir, tmp_path, monkeypatch):
    """`ganlib.metrics.loaded.pretrained` keys its cache by the folder each kind's `folder` resolves:
    None and the shipped name of the same folder share one load, a relative path is the same folder
    after a change of directory, and the two shipped DAMSMs stay apart."""
    from ganlib.metrics import loaded
    from ganlib.models import vs

    out = damsm_dir[0]
    monkeypatch.chdir(out.parent)
    relative = loaded.pretrained("damsm", out.name)
    monkeypatch.chdir(tmp_path)
    assert loaded.pretrained("damsm", out) is relative
    assert damsm.folder(None) == damsm.folder("synthbirds") != damsm.folder("synthbirds-30ep")
    assert loaded.pretrained("damsm", None) is loaded.pretrained("damsm", "synthbirds")
    assert loaded.pretrained("damsm", "synthbirds-30ep") is not loaded.pretrained("damsm", None)
    assert loaded.pretrained("vs") is loaded.pretrained("vs", vs.SHIPPED)
