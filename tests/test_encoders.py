"""Sentence encoder: masking, serialisation, and the shipped weights' quality."""

import os

import keras
import numpy as np
import pytest

from ganlib import encoders

HAVE_WEIGHTS = os.path.exists(encoders.SENTENCE_ENCODER_WEIGHTS)


def _tokens():
    return np.array([[5, 9, 3, 7, 0, 0, 0], [4, 4, 8, 0, 0, 0, 0], [2, 3, 4, 5, 6, 7, 8]], dtype="int32")


def test_sentence_encoder_output_and_padding_invariance():
    keras.utils.set_random_seed(0)
    enc = encoders.SentenceEncoder(vocabulary_size=12)
    tok = _tokens()
    out = keras.ops.convert_to_numpy(enc(tok))
    assert out.shape == (3, 256) and out.dtype == np.float32
    # more PAD at the end changes nothing: PAD is masked by hand (embedding rows zeroed, masked mean)
    longer = np.concatenate([tok, np.zeros((3, 5), "int32")], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(enc(longer)), out, rtol=1e-5, atol=1e-5)
    # an all-PAD caption: masked mean of nothing is 0, so the output is the projection's bias
    all_pad = keras.ops.convert_to_numpy(enc(np.zeros((1, 7), "int32")))
    np.testing.assert_allclose(all_pad[0], keras.ops.convert_to_numpy(enc.proj.bias), atol=1e-6)


def test_sentence_encoder_get_config_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    model = encoders.build_sentence_encoder(vocabulary_size=12)
    tok = _tokens()
    ref = keras.ops.convert_to_numpy(model(tok))
    # from_config + weights
    layer = model.get_layer("phi")
    clone = encoders.SentenceEncoder.from_config(layer.get_config())
    clone(tok)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(tok)), ref, rtol=1e-6, atol=1e-6)
    # .keras file
    path = str(tmp_path / "phi.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(tok)), ref, rtol=1e-6, atol=1e-6)


def test_image_encoder_shape_and_config():
    enc = encoders.ImageEncoder(embed_dim=32, filters=(8, 16))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert tuple(enc(x).shape) == (2, 32)
    assert encoders.ImageEncoder.from_config(enc.get_config()).filters == (8, 16)


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ganlib.pretrain encoder"):
        encoders.load_sentence_encoder(str(tmp_path / "none.weights.h5"))


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="run `python -m ganlib.pretrain encoder`")
def test_shipped_sentence_encoder_separates_classes():
    """Captions of the same bird are closer than captions of other-class birds (test classes)."""
    from ganlib.pretrain import render_set
    from ganlib.text import Tokenizer

    tok = Tokenizer.default()
    enc = encoders.load_sentence_encoder()
    assert not enc.trainable
    birds = render_set(range(150, 200), 1, seed=777, captions=10)       # held-out classes
    caps = [c for cs in birds["captions"] for c in cs]
    e = keras.ops.convert_to_numpy(enc(tok(caps)))
    assert e.shape == (500, 256)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    sim = (e @ e.T).reshape(50, 10, 50, 10)
    same = np.array([sim[i, :, i][~np.eye(10, dtype=bool)].mean() for i in range(50)])
    other = np.array([np.delete(sim[i, :, :, :], i, axis=1).mean() for i in range(50)])
    assert np.mean(same > other) > 0.95, np.mean(same > other)
    assert same.mean() - other.mean() > 0.2, (same.mean(), other.mean())
    # nearest other caption (by cosine) comes from the same bird for most captions
    flat = (e @ e.T)
    np.fill_diagonal(flat, -np.inf)
    nn_same = np.mean(flat.argmax(1) // 10 == np.arange(500) // 10)
    assert nn_same > 0.6, nn_same


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="run `python -m ganlib.pretrain encoder`")
def test_shipped_weights_load_is_deterministic():
    from ganlib.text import Tokenizer

    tok = Tokenizer.default()(["this small bird has a red crown and blue wings",
                               "a large bird with a black belly and a yellow beak"])
    a = keras.ops.convert_to_numpy(encoders.load_sentence_encoder()(tok))
    b = keras.ops.convert_to_numpy(encoders.load_sentence_encoder()(tok))
    np.testing.assert_allclose(a, b)
    assert np.all(np.isfinite(a)) and np.linalg.norm(a[0] - a[1]) > 1e-3


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="run `python -m ganlib.pretrain encoder`")
def test_shipped_weights_match_shipped_vocabulary():
    """The encoder was trained on token ids of the vocabulary shipped today (else: retrain)."""
    import json

    from ganlib.text import Tokenizer

    with open(os.path.join(encoders.ASSETS, "pretrained.json")) as f:
        trained = json.load(f)["sentence_encoder"]["settings"]["vocabulary"]
    assert Tokenizer.default().vocabulary == trained, \
        "ganlib/assets/synthbirds_vocab.txt changed: re-run `python -m ganlib.pretrain encoder`"


def test_wrong_vocabulary_size_message():
    if not HAVE_WEIGHTS:
        pytest.skip("no shipped weights")
    with pytest.raises(ValueError, match="python -m ganlib.pretrain encoder"):
        encoders.load_sentence_encoder(vocabulary_size=7)
