"""ganlib.text: tokenizer and vocabulary."""

import warnings

import numpy as np
import pytest

from ganlib.data import synthbirds
from ganlib.text import OOV, PAD, Tokenizer

# Backend-neutral (the tokenizer: numpy and TensorFlow's text ops, whatever the Keras backend): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default(max_words=8)


def test_default_vocabulary_is_the_synthbirds_grammar(tok):
    assert tok.vocabulary == synthbirds.vocabulary()
    assert tok.vocabulary_size == len(synthbirds.vocabulary()) + 2
    assert (PAD, OOV) == (0, 1)


def test_ids_round_trip_and_padding(tok):
    text = "this small bird has red wings"
    ids = tok(text)
    assert ids.shape == (1, 8) and ids.dtype == np.int32
    expected = [2 + tok.vocabulary.index(w) for w in text.split()]
    assert ids[0, :6].tolist() == expected
    assert ids[0, 6:].tolist() == [PAD, PAD]
    assert tok.decode(ids) == [text]
    assert tok.decode(ids[0]) == [text]
    assert tok.lengths(ids).tolist() == [6]


def test_case_punctuation_oov_and_truncation(tok):
    ids = tok(["A RED crown; zebra wings!", "a bird " * 10, ""])
    assert tok.decode(ids[:1]) == ["a red crown <unk> wings"]
    assert ids[0, 3] == OOV
    assert (ids[1] != PAD).all()  # 20 words truncated to 8
    assert tok.decode(ids[1:2]) == [" ".join(["a", "bird"] * 4)]
    assert (ids[2] == PAD).all()


def test_tf_tokenize_matches_eager_in_tf_data(tok):
    import tensorflow as tf

    caps = ["this bird has blue wings", "a big bird with a grey bill and black wings xyz"]
    fresh = Tokenizer.default(max_words=8)  # first used inside a tf.data graph
    ds = tf.data.Dataset.from_tensor_slices(caps).map(fresh.tf_tokenize).batch(2)
    graph = next(ds.as_numpy_iterator())
    assert graph.dtype == np.int32
    np.testing.assert_array_equal(graph, tok(caps))
    np.testing.assert_array_equal(tok.tf_tokenize(tf.constant(caps[0])).numpy(), tok(caps[0])[0])


def test_from_texts_save_and_load(tmp_path):
    t = Tokenizer.from_texts(["b a a", "c a b", "d"], min_count=2, max_words=4)
    assert t.vocabulary == ["a", "b"]  # by count, then alphabetically; "c", "d" rare
    assert t("a b c").tolist() == [[2, 3, OOV, PAD]]
    t.save(tmp_path / "vocab.txt")
    loaded = Tokenizer.load(tmp_path / "vocab.txt", max_words=4)
    assert loaded.vocabulary == t.vocabulary
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Tokenizer.load(tmp_path / "missing.txt")


def test_bad_vocabularies_are_refused():
    with pytest.raises(ValueError, match="repeated"):
        Tokenizer(["a", "a"])
    with pytest.raises(ValueError, match="<pad>"):
        Tokenizer(["<pad>", "a"])
    with pytest.raises(ValueError, match="max_words"):
        Tokenizer(["a"], max_words=0)
    with pytest.raises(ValueError, match="empty"):
        Tokenizer([])


def test_encode_checked_errors_name_the_caption(tok):
    with pytest.raises(ValueError, match=r"caption 1 is empty"):
        tok.encode_checked(["a red bird", "   "])
    with pytest.raises(ValueError, match=r"caption 0: every word is unknown: 'zebra quokka'"):
        tok.encode_checked(["zebra quokka"])
    with pytest.warns(UserWarning, match="zebra"):
        ids = tok.encode_checked(["a zebra bird"])
    assert ids.tolist()[0][:3] == [tok("a")[0, 0], OOV, tok("bird")[0, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok.encode_checked("a red bird")  # all known: no warning
