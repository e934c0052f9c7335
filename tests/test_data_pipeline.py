"""ganlib.data: the CUB-layout reader, open_dataset and the tf.data pipeline."""

import pathlib
import pickle
import shutil

import numpy as np
import pytest

from ganlib import data
from ganlib.data import CaptionedDataset, open_dataset, synthbirds
from ganlib.text import Tokenizer


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """60 SynthBirds images at 32 px, one per species: 45 train and 15 test images."""
    return synthbirds.generate(tmp_path_factory.mktemp("data") / "synthbirds", n=60, size=32,
                               seed=0, verbose=False)


@pytest.fixture(scope="module")
def train(tiny_root):
    return open_dataset("synthbirds", root=tiny_root, split="train")


@pytest.fixture
def broken_root(tiny_root, tmp_path):
    """A private copy of the tiny dataset that a test may break."""
    return pathlib.Path(shutil.copytree(tiny_root, tmp_path / "copy"))


def _first_train_file(root):
    return pickle.loads((root / "train" / "filenames.pickle").read_bytes())[0]


# ---------------------------------------------------------------- reader

def test_items(train, tiny_root):
    test = open_dataset("synthbirds", root=tiny_root, split="test")
    assert len(train) == 45 and len(test) == 15
    assert train.name == "synthbirds" and train.split == "train"
    assert not set(train.class_ids.tolist()) & set(test.class_ids.tolist())
    assert max(train.class_ids) < 150 <= min(test.class_ids)
    item = train[3]
    assert set(item) == {"image", "captions", "class_id", "filename", "attributes"}
    assert item["image"].dtype == np.uint8 and item["image"].ndim == 3
    assert item["image"].shape[2] == 3 and item["image"].shape[0] >= 16
    assert len(item["captions"]) == 10
    assert item["filename"] == train.filenames[3]
    assert train.class_names[item["class_id"]] == item["filename"].split("/")[0]
    assert item["class_id"] == item["attributes"]["species"]
    for cap in item["captions"]:
        assert all(item["attributes"][p] == c for p, c in synthbirds.parse_caption(cap).items())
    assert train[-1]["filename"] == train.filenames[-1]
    with pytest.raises(IndexError):
        train[45]


def test_bounding_box_crop_follows_attngan(train):
    from ganlib.data.captioned import crop_box

    assert crop_box((10, 10, 20, 10), 100, 100) == (5, 0, 35, 30)
    assert crop_box((0, 0, 100, 100), 100, 100) == (0, 0, 100, 100)
    i = 0
    x, y, w, h = train._boxes[i]
    x1, y1, x2, y2 = crop_box(train._boxes[i], 32, 32)
    assert train[i]["image"].shape == (y2 - y1, x2 - x1, 3)
    sized = CaptionedDataset(train.root, "train", name="synthbirds", image_size=24)
    assert sized[i]["image"].shape == (24, 24, 3)


def test_default_root_and_auto_generation(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANLIB_DATA_ROOT", str(tmp_path))
    assert data.default_root() == tmp_path
    real_generate = synthbirds.generate
    monkeypatch.setattr(synthbirds, "generate",
                        lambda out, **kw: real_generate(out, n=20, size=32, verbose=False))
    ds = open_dataset("synthbirds", split="test")
    assert "generating" in capsys.readouterr().out
    assert ds.root == tmp_path / "synthbirds" and len(ds) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["synthbirds"]  # no temporary left
    monkeypatch.delenv("GANLIB_DATA_ROOT")
    assert data.default_root().name == "datasets"


def test_unknown_names_and_splits(tiny_root):
    with pytest.raises(ValueError, match="unknown dataset name 'birds'"):
        open_dataset("birds", root=tiny_root)
    with pytest.raises(ValueError, match="split"):
        open_dataset("synthbirds", root=tiny_root, split="val")
    cub = open_dataset("cub", root=tiny_root, split="test")  # the same reader reads it
    assert cub.name == "cub" and len(cub) == 15 and cub.attributes is not None


# ---------------------------------------------------------------- bad input

def test_missing_root_and_files(tmp_path, broken_root):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_dataset("cub", root=tmp_path / "nowhere")
    (broken_root / "test" / "filenames.pickle").unlink()
    with pytest.raises(FileNotFoundError, match=r"test[/\\]filenames.pickle"):
        open_dataset("synthbirds", root=broken_root, split="test")


def test_corrupt_image_is_named(broken_root):
    name = _first_train_file(broken_root)
    path = broken_root / "CUB_200_2011" / "images" / f"{name}.jpg"
    path.write_bytes(b"not a jpeg at all")
    ds = open_dataset("synthbirds", root=broken_root)
    with pytest.raises(ValueError, match=f"cannot read image file .*{path.name}"):
        ds[0]
    with pytest.raises(ValueError, match=path.name):
        ds.pipeline(batch_size=4, image_size=32)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=path.name):
        ds[0]


def test_missing_caption_file_is_named(broken_root):
    name = _first_train_file(broken_root)
    (broken_root / "text" / f"{name}.txt").unlink()
    with pytest.raises(FileNotFoundError, match=f"caption file .*{name.split('/')[1]}.txt"):
        open_dataset("synthbirds", root=broken_root)


@pytest.mark.parametrize("content,message", [("", "is empty"),
                                             ("a red bird\n" * 9, "has only 9 captions")])
def test_short_caption_file_is_named(broken_root, content, message):
    name = _first_train_file(broken_root)
    (broken_root / "text" / f"{name}.txt").write_text(content)
    with pytest.raises(ValueError, match=f"{name.split('/')[1]}.txt {message}"):
        open_dataset("synthbirds", root=broken_root)


@pytest.mark.parametrize("kwargs,argument", [
    ({"image_size": 30}, "image_size"), ({"image_size": 0}, "image_size"),
    ({"image_size": -8}, "image_size"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -1}, "batch_size"), ({"batch_size": 1000}, "batch_size"),
    ({"wrong": "both"}, "wrong"), ({"max_words": 0}, "max_words"),
    ({"captions": 0}, "captions"), ({"captions": 11}, "captions"), ({"captions": 2.0}, "captions"),
    ({"embeddings": 1}, "embeddings must be True or False"),
    ({"embeddings": True}, "embeddings=True needs precomputed text embeddings")])
def test_bad_pipeline_arguments(train, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        train.pipeline(**{"batch_size": 8, **kwargs})


def test_synthbirds_has_no_precomputed_embeddings(train):
    assert not train.has_embeddings and train.embedding_dim is None
    assert "embeddings" not in train[0]
    assert train.embeddings_path.parts[-2:] == ("train", "char-CNN-RNN-embeddings.pickle")


def test_bad_image_size_at_open(tiny_root):
    with pytest.raises(ValueError, match="image_size"):
        open_dataset("synthbirds", root=tiny_root, image_size=33)


# ---------------------------------------------------------------- pipeline

def _batches(ds, k, **kwargs):
    it = ds.pipeline(**kwargs).as_numpy_iterator()
    return [next(it) for _ in range(k)]


def test_batch_values(train):
    tok = Tokenizer.default(max_words=18)
    (batch,) = _batches(train, 1, batch_size=8, image_size=32, with_index=True)
    assert set(batch) == {"image", "tokens", "wrong_tokens", "class_id", "index", "wrong_index"}
    img = batch["image"]
    assert img.dtype == np.float32 and img.shape == (8, 32, 32, 3)
    assert -1.0 <= img.min() < -0.3 and 0.3 < img.max() <= 1.0
    assert batch["tokens"].dtype == np.int32 and batch["tokens"].shape == (8, 18)
    assert batch["class_id"].dtype == np.int32
    idx, widx = batch["index"], batch["wrong_index"]
    np.testing.assert_array_equal(batch["class_id"], train.class_ids[idx])
    assert (train.class_ids[widx] != train.class_ids[idx]).all()
    for row in range(8):
        (text,) = tok.decode(batch["tokens"][row])
        assert text in [c.replace(",", "") for c in train.captions[idx[row]]]
        (wrong_text,) = tok.decode(batch["wrong_tokens"][row])
        assert wrong_text in [c.replace(",", "") for c in train.captions[widx[row]]]
        attrs, wrong_attrs = train.attributes[idx[row]], train.attributes[widx[row]]
        assert all(attrs[p] == c for p, c in synthbirds.parse_caption(text).items())
        assert wrong_attrs["species"] != attrs["species"]


def test_several_captions_per_example(train):
    """captions=4: four distinct captions of the item (and of the wrong item)."""
    tok = Tokenizer.default(max_words=18)
    (batch,) = _batches(train, 1, batch_size=8, image_size=32, with_index=True, captions=4)
    assert batch["tokens"].shape == batch["wrong_tokens"].shape == (8, 4, 18)
    for key, items in (("tokens", batch["index"]), ("wrong_tokens", batch["wrong_index"])):
        for row in range(8):
            texts = tok.decode(batch[key][row])
            assert len(set(texts)) == 4
            assert set(texts) <= {c.replace(",", "") for c in train.captions[items[row]]}


def test_images_are_the_dataset_images(train):
    (batch,) = _batches(train, 1, batch_size=4, image_size=32, augment=False,
                        shuffle=False, wrong=None)
    assert "wrong_tokens" not in batch
    for row in range(4):
        expected = train.load_image(row, 32).astype(np.float32) / 127.5 - 1
        np.testing.assert_allclose(batch["image"][row], expected, atol=1e-5)


def test_pipeline_is_deterministic(train):
    a = _batches(train, 3, batch_size=8, image_size=32, seed=5, wrong="image")
    b = _batches(train, 3, batch_size=8, image_size=32, seed=5, wrong="image")
    c = _batches(train, 3, batch_size=8, image_size=32, seed=6, wrong="image")
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
    assert a[0]["wrong_image"].shape == (8, 32, 32, 3)


def test_epochs_reshuffle_and_pick_captions(train):
    batches = _batches(train, 10, batch_size=5, image_size=32, with_index=True)
    first = np.concatenate([b["index"] for b in batches[:9]])
    assert sorted(first.tolist()) == list(range(45))  # one epoch = every item once
    picked = {(int(b["index"][r]), tuple(b["tokens"][r])) for b in batches for r in range(5)}
    assert len(picked) > 45  # items come with varying captions


def test_one_epoch_without_repeat_and_no_cache(train):
    ds = train.pipeline(batch_size=8, image_size=32, repeat=False, cache=False, seed=1)
    assert ds.cardinality().numpy() == 45 // 8
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 45 // 8
    cached = train.pipeline(batch_size=8, image_size=32, repeat=False, seed=1)
    ref = list(cached.as_numpy_iterator())
    np.testing.assert_array_equal(batches[0]["tokens"], ref[0]["tokens"])
    assert np.abs(batches[0]["image"] - ref[0]["image"]).mean() < 0.05


def test_pipeline_trains_a_keras_model(train):
    import keras

    ds = train.pipeline(batch_size=8, image_size=32).map(
        lambda b: (b["image"], b["class_id"]))
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(200)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_class_names_cover_all_classes(train):
    assert len(train.class_names) == 200
    assert train.class_names[0] == synthbirds.class_dir(0)
    assert train.class_names[199] == synthbirds.class_dir(199)
