"""Readers of the real datasets (CUB, Oxford-102, COCO), the pyramid pipeline, `ganlib data check`.

Nothing is downloaded: tests/fixtures_real.py writes tiny copies of each
dataset's documented on-disk layout. Run with KERAS_BACKEND=tensorflow, jax and
torch: the pipeline is tf.data on every backend, its batches numpy.
"""

import json
import pickle
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

import fixtures_real as fx
from ganlib.cli import main
from ganlib.data import COCODataset, FlowersDataset, open_dataset
from ganlib.data.captioned import crop_box
from ganlib.text import Tokenizer


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("real")
    return {"cub": fx.write_cub(base / "cub"), "flowers": fx.write_flowers(base / "flowers"),
            "coco": fx.write_coco(base / "coco"),
            "coco_official": fx.write_coco(base / "coco_official", layout="official",
                                           folders="split")}


@pytest.fixture
def copy(roots, tmp_path):
    """A private copy of a fixture dataset that a test may break."""
    return lambda name: shutil.copytree(roots[name], tmp_path / name)


def _names(root, split="train"):
    return pickle.loads((root / split / "filenames.pickle").read_bytes())


# ---------------------------------------------------------------- CUB

def test_cub_items_classes_and_split(roots):
    train = open_dataset("cub", root=roots["cub"], split="train")
    test = open_dataset("cub", root=roots["cub"], split="test")
    assert type(train) is not FlowersDataset and train.name == "cub"
    assert (len(train), len(test)) == (6, 4)
    # class ids: CUB class number - 1, the same in both splits; split by class
    assert train.class_ids.tolist() == [0, 0, 0, 1, 1, 1]
    assert test.class_ids.tolist() == [2, 2, 3, 3]
    assert train.class_names == ["001.Bird_1", "002.Bird_2", "003.Bird_3", "004.Bird_4"]
    assert train.shared_classes() == [] and test.shared_classes() == []
    item = test[1]
    assert item["filename"] == "003.Bird_3/Bird_3_0002_8"
    assert item["class_id"] == 2
    assert item["captions"] == [fx.caption("003.Bird_3/Bird_3_0002_8", j) for j in range(10)]
    # DEFAULT_BOX (15, 10, 24, 20): half-side 18, centre (27, 20) -> crop (9, 2, 45, 38)
    assert item["image"].dtype == np.uint8 and item["image"].shape == (36, 36, 3)
    np.testing.assert_allclose(item["image"][0, 0], fx.gradient_pixel(9, 2, 60), atol=3)
    np.testing.assert_allclose(item["image"][-1, -1], fx.gradient_pixel(44, 37, 60), atol=3)


def test_cub_crop_follows_attngan_by_hand(roots):
    # box (x, y, w, h) -> square of half-side int(0.75 max(w, h)) around the centre, clipped
    assert crop_box((10, 20, 30, 40), 100, 80) == (0, 10, 55, 70)
    # the references read the boxes with astype(int): (10.7, 8.2, 20.9, 14.6) -> (10, 8, 20, 14):
    # r = int(15.0) = 15, centre (int(40 / 2), int(30 / 2)) = (20, 15) -> (5, 0, 35, 30)
    # (without truncation the centre would be (21, 15) and the crop (6, 0, 36, 30))
    assert crop_box((10.7, 8.2, 20.9, 14.6), 60, 40) == (5, 0, 35, 30)
    # (45, 25, 12, 14): r = 10, centre (51, 32) -> (41, 22, 61, 42) clipped to (41, 22, 60, 40)
    assert crop_box((45, 25, 12, 14), 60, 40) == (41, 22, 60, 40)
    ds = open_dataset("cub", root=roots["cub"])
    assert ds.crop(0, 60, 40) == (5, 0, 35, 30) and ds.crop(1, 60, 40) == (41, 22, 60, 40)
    first, second = ds.load_image(0), ds.load_image(1)
    assert first.shape == (30, 30, 3) and second.shape == (18, 19, 3)
    np.testing.assert_allclose(first[0, 0], fx.gradient_pixel(5, 0, 20), atol=3)
    np.testing.assert_allclose(first[-1, -1], fx.gradient_pixel(34, 29, 20), atol=3)
    np.testing.assert_allclose(second[0, 0], fx.gradient_pixel(41, 22, 20), atol=3)
    sized = open_dataset("cub", root=roots["cub"], image_size=12)
    assert sized[0]["image"].shape == (12, 12, 3)


def test_grayscale_and_cmyk_jpegs_become_rgb(copy):
    root = copy("cub")
    names = _names(root)
    images = root / "CUB_200_2011" / "images"
    Image.new("L", (60, 40), 77).save(images / f"{names[0]}.jpg", "JPEG", quality=100)
    Image.new("CMYK", (60, 40), (0, 128, 0, 64)).save(images / f"{names[1]}.jpg", "JPEG",
                                                        quality=100)
    assert Image.open(images / f"{names[1]}.jpg").mode == "CMYK"
    ds = open_dataset("cub", root=root)
    gray, cmyk = ds[0]["image"], ds[1]["image"]
    assert gray.shape[2] == 3 and np.abs(gray.astype(int) - 77).max() <= 1
    # CMYK -> RGB: channel = (255 - C) * (255 - K) / 255 -> (191, 95.1, 191)
    np.testing.assert_allclose(cmyk.reshape(-1, 3).mean(0), [191, 95.1, 191], atol=2)
    (batch,) = _take(ds.pipeline(batch_size=2, image_size=16, shuffle=False, augment=False,
                                 wrong=None, cache=False), 1)
    np.testing.assert_allclose(batch["image"][0], 77 / 127.5 - 1, atol=0.02)


def test_cub_class_files_must_agree(copy):
    root = copy("cub")
    labels = root / "CUB_200_2011" / "image_class_labels.txt"
    labels.write_text(labels.read_text().replace("2 1\n", "2 3\n", 1))
    with pytest.raises(ValueError, match=r"image_class_labels.txt gives image id 2 .*class 3"):
        open_dataset("cub", root=root)
    labels.unlink()
    ds = open_dataset("cub", root=root)  # optional file
    assert ds.class_ids.tolist() == [0, 0, 0, 1, 1, 1]
    info = root / "train" / "class_info.pickle"
    info.write_bytes(pickle.dumps([0, 0, 0, 1, 1, 1]))  # another numbering base is fine
    assert open_dataset("cub", root=root).class_ids.tolist() == [0, 0, 0, 1, 1, 1]
    info.write_bytes(pickle.dumps([1, 1, 2, 2, 2, 2]))
    with pytest.raises(ValueError, match=r"class_info.pickle gives class 2 to '001.Bird_1/"):
        open_dataset("cub", root=root)
    info.write_bytes(pickle.dumps([1, 1]))
    with pytest.raises(ValueError, match=r"class_info.pickle holds 2 class numbers .* 6 files"):
        open_dataset("cub", root=root)


def test_split_sharing_a_class_warns_and_is_a_problem(copy, capsys):
    root = copy("cub")
    train, test = _names(root), _names(root, "test")
    (root / "test" / "filenames.pickle").write_bytes(pickle.dumps(test + train[:1]))
    (root / "test" / "class_info.pickle").unlink()
    with pytest.warns(UserWarning, match=r"1 classes are in both train/ and test/ .*001.Bird_1"):
        ds = open_dataset("cub", root=root, split="test")
    assert ds.shared_classes() == [0] and len(ds) == 5
    assert main(["data", "check", "cub", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert out.count("share 1 classes (class ids [0])") == 1


# ---------------------------------------------------------------- Oxford-102

def test_flowers_items_and_classes(roots, copy):
    train = open_dataset("flowers", root=roots["flowers"])
    test = open_dataset("flowers", root=roots["flowers"], split="test")
    assert isinstance(train, FlowersDataset) and train.name == "flowers"
    assert (len(train), len(test)) == (6, 4)
    assert train.class_ids.tolist() == [0, 0, 0, 1, 1, 1] and test.class_ids.tolist() == [2, 2, 3, 3]
    assert train.class_names == ["class_00001", "class_00002", "class_00003", "class_00004"]
    item = test[0]
    assert item["filename"] == "jpg/image_00007"
    assert item["captions"] == [fx.caption("image_00007", j) for j in range(10)]
    # no bounding box: the whole image
    assert item["image"].shape == (36, 48, 3)
    np.testing.assert_allclose(item["image"][-1, -1], fx.gradient_pixel(47, 35, 60), atol=3)
    assert open_dataset("flowers", root=roots["flowers"], image_size=16)[0]["image"].shape == \
        (16, 16, 3)
    # bare names ("image_00001") and no class_info.pickle are accepted
    root = copy("flowers")
    (root / "train" / "filenames.pickle").write_bytes(pickle.dumps(
        [n.split("/")[1] for n in _names(root)]))
    (root / "train" / "class_info.pickle").unlink()
    bare = open_dataset("flowers", root=root)
    assert bare.filenames[0] == "image_00001" and bare.class_ids.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(bare[2]["image"], train[2]["image"])


def test_flowers_missing_captions_name_the_expected_file(copy):
    root = copy("flowers")
    (root / "text_c10" / "class_00002" / "image_00005.txt").unlink()
    with pytest.raises(FileNotFoundError,
                       match=r"caption file .*text_c10[/\\]class_00002[/\\]image_00005.txt is "
                             r"missing \(expected 10 captions for 'jpg/image_00005'"):
        open_dataset("flowers", root=root)
    with pytest.warns(UserWarning, match="skipped 1 of 6 items"):
        lenient = open_dataset("flowers", root=root, strict=False)
    assert len(lenient) == 5 and "jpg/image_00005" not in lenient.filenames
    assert "image_00005.txt" in lenient.problems[0]


# ---------------------------------------------------------------- COCO

@pytest.mark.parametrize("fixture", ["coco", "coco_official"])
def test_coco_items_have_five_captions_and_no_class(roots, fixture):
    train = open_dataset("coco", root=roots[fixture])
    test = open_dataset("coco", root=roots[fixture], split="test")
    assert isinstance(train, COCODataset) and (len(train), len(test)) == (6, 4)
    assert train.filenames[:2] == ["COCO_train2014_000000000009", "COCO_train2014_000000000019"]
    assert test.filenames[0] == "COCO_val2014_000000000042"
    assert not train.has_classes and train.class_names == []
    assert train.class_ids.tolist() == [-1] * 6
    item = train[0]  # six captions on disk: the first five are kept
    assert item["captions"] == [fx.caption("COCO_train2014_000000000009", j) for j in range(5)]
    assert item["class_id"] == -1 and item["image"].shape == (32, 40, 3)
    np.testing.assert_allclose(test[1]["image"][0, -1], fx.gradient_pixel(39, 0, 40), atol=3)


def test_coco_official_annotations_need_enough_captions(copy):
    root = copy("coco_official")
    path = root / "annotations" / "captions_val2014.json"
    table = json.loads(path.read_text())
    table["annotations"] = [a for a in table["annotations"] if a["id"] != 52 * 1000 + 4]
    path.write_text(json.dumps(table))
    with pytest.raises(ValueError, match=r"'COCO_val2014_000000000052' has only 4 captions in "
                                         r".*captions_val2014.json \(expected 5\)"):
        open_dataset("coco", root=root, split="test")
    (root / "val2014" / "COCO_val2014_000000000042.jpg").unlink()
    assert main(["data", "check", "coco", "--root", str(root)]) == 1
    (root / "annotations" / "captions_train2014.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"captions_train2014.json is missing \(expected "
                                                r"the official COCO captions, or AttnGAN's text/"):
        open_dataset("coco", root=root, strict=False)


# ---------------------------------------------------------------- bad input

def test_corrupt_and_truncated_jpegs_are_named(copy, capsys):
    root = copy("cub")
    names = _names(root)
    corrupt = root / "CUB_200_2011" / "images" / f"{names[0]}.jpg"
    corrupt.write_bytes(b"this is not a JPEG")
    truncated = root / "CUB_200_2011" / "images" / f"{names[1]}.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    ds = open_dataset("cub", root=root)  # opening does not decode
    with pytest.raises(ValueError, match=rf"cannot read image file .*{corrupt.name}"):
        ds[0]
    with pytest.raises(ValueError, match=rf"(?i)cannot read image file .*{truncated.name}.*truncated"):
        ds[1]
    assert main(["data", "check", "cub", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "2 problems:" in out and str(corrupt) in out and str(truncated) in out
    assert "train: 6 images, 60 captions (10 per image), 2 classes" in out


def test_caption_files_rules(copy):
    root = copy("cub")
    names = _names(root)
    text = root / "text"
    # empty lines are ignored and non-ASCII text is kept (read as UTF-8)
    caps = [f"ein Vogel {j} mit grünen Flügeln, café" for j in range(10)]
    (text / f"{names[0]}.txt").write_bytes(
        ("\n\n" + "\n\n".join(caps[:5]) + "\r\n  \r\n" + "\n".join(caps[5:]) + "\n").encode())
    ds = open_dataset("cub", root=root)
    assert ds[0]["captions"] == caps
    # fewer captions than expected
    (text / f"{names[1]}.txt").write_text("one\n\ntwo\n")
    with pytest.raises(ValueError, match=rf"{names[1].split('/')[1]}.txt has only 2 captions "
                                         r"\(expected 10"):
        open_dataset("cub", root=root)
    # missing caption file
    (text / f"{names[1]}.txt").unlink()
    with pytest.raises(FileNotFoundError, match=rf"caption file .*{names[1].split('/')[1]}.txt "
                                                r"is missing \(expected 10 captions"):
        open_dataset("cub", root=root)
    with pytest.warns(UserWarning, match="skipped 1 of 6 items"):
        lenient = open_dataset("cub", root=root, strict=False)
    assert names[1] not in lenient.filenames and len(lenient) == 5
    # bytes that are not UTF-8: replaced, with a warning naming the file
    (text / f"{names[1]}.txt").write_text("\n".join(caps))
    (text / f"{names[2]}.txt").write_bytes(b"caf\xe9 bird\n" * 10)
    with pytest.warns(UserWarning, match=rf"{names[2].split('/')[1]}.txt is not valid UTF-8"):
        bad = open_dataset("cub", root=root)
    assert bad.captions[bad.filenames.index(names[2])][0] == "caf\ufffd bird"


def test_class_folder_without_images(copy, capsys):
    root = copy("cub")
    folder = root / "CUB_200_2011" / "images" / "002.Bird_2"
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"Bird_2_0001_4.jpg is missing \(listed in "
                                                r".*filenames.pickle .*holds no images"):
        open_dataset("cub", root=root)
    assert main(["data", "check", "cub", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"class folder {folder} holds no images" in out
    assert "train: 3 images, 30 captions" in out  # the other items still count


def test_split_pickle_naming_a_missing_file(copy, roots):
    root = copy("cub")
    (root / "train" / "filenames.pickle").write_bytes(pickle.dumps(_names(root) + ["001.Bird_1/Nope"]))
    (root / "train" / "class_info.pickle").unlink()
    with pytest.raises(ValueError, match=r"'001.Bird_1/Nope' \(from .*filenames.pickle\) is not "
                                         r"listed in .*images.txt"):
        open_dataset("cub", root=root)
    flowers = shutil.copytree(roots["flowers"], root.parent / "fl")
    (flowers / "jpg" / "image_00002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image_00002.jpg is missing \(listed in "
                                                r".*train[/\\]filenames.pickle as 'jpg/image_00002'"):
        open_dataset("flowers", root=flowers)
    coco = shutil.copytree(roots["coco"], root.parent / "co")
    (coco / "images" / "COCO_train2014_000000000019.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"images[/\\]COCO_train2014_000000000019.jpg is "
                                                r"missing \(listed in .*filenames.pickle"):
        open_dataset("coco", root=coco)


# ---------------------------------------------------------------- pipeline

def _take(ds, k):
    it = ds.as_numpy_iterator()
    return [next(it) for _ in range(k)]


def _resize(image, size):
    """PIL's antialiased bilinear resize of a [-1, 1] float image."""
    u8 = np.round((image + 1) * 127.5).clip(0, 255).astype(np.uint8)
    small = np.asarray(Image.fromarray(u8).resize((size, size), Image.BILINEAR), np.float32)
    return small / 127.5 - 1


@pytest.mark.parametrize("name", ["cub", "flowers", "coco"])
def test_pipeline_on_each_reader(roots, name):
    ds = open_dataset(name, root=roots[name])
    tok = Tokenizer.from_texts([c for cs in ds.captions for c in cs])
    batches = _take(ds.pipeline(batch_size=3, image_size=16, tokenizer=tok, wrong="image",
                                with_index=True, seed=3), 4)
    for batch in batches:
        idx, widx = batch["index"], batch["wrong_index"]
        np.testing.assert_array_equal(batch["class_id"], ds.class_ids[idx])
        if name == "coco":  # no classes: the mismatched pair is another image
            assert (batch["class_id"] == -1).all() and (widx != idx).all()
        else:
            assert (ds.class_ids[widx] != ds.class_ids[idx]).all()
        for row in range(3):
            (text,) = tok.decode(batch["tokens"][row])
            assert text in tok.decode(tok(ds.captions[idx[row]]))
            (wrong_text,) = tok.decode(batch["wrong_tokens"][row])
            assert wrong_text in tok.decode(tok(ds.captions[widx[row]]))
        assert batch["image"].shape == batch["wrong_image"].shape == (3, 16, 16, 3)
        assert -1 <= batch["image"].min() and batch["image"].max() <= 1
    plain = _take(ds.pipeline(batch_size=2, image_size=16, tokenizer=tok, augment=False,
                              shuffle=False, wrong=None), 1)[0]
    for row in range(2):
        expected = ds.load_image(row, 16).astype(np.float32) / 127.5 - 1
        np.testing.assert_allclose(plain["image"][row], expected, atol=1e-6)


@pytest.mark.parametrize("cache", [True, False])
def test_pyramid_levels_are_the_same_crop_downsampled(roots, cache):
    ds = open_dataset("cub", root=roots["cub"])
    kwargs = dict(batch_size=3, image_size=32, wrong="image", seed=7, pyramid=(8, 16, 32),
                  with_index=True)
    batches = _take(ds.pipeline(cache=cache, **kwargs), 4)
    flips = set()
    for batch in batches:
        assert {"image_8", "image_16", "image_32", "wrong_image_8", "wrong_image_16"} <= set(batch)
        np.testing.assert_array_equal(batch["image_32"], batch["image"])
        for prefix in ("image", "wrong_image"):
            for row in range(3):
                big = batch[prefix][row]
                for s in (8, 16):
                    small = batch[f"{prefix}_{s}"][row]
                    assert small.shape == (s, s, 3)
                    np.testing.assert_allclose(small, _resize(big, s), atol=4 / 127.5)
        # same crop and flip: the level matches the (un)flipped downsampled image, not the other
        for row in range(3):
            straight = _resize(batch["image"][row], 16)
            flipped = straight[:, ::-1]
            d_straight = np.abs(batch["image_16"][row] - straight).mean()
            d_flipped = np.abs(batch["image_16"][row] - flipped).mean()
            assert d_straight < 0.01 and d_straight < d_flipped
            # recover the flip from the gradient: red grows left to right unless flipped
            red = batch["image"][row][..., 0]
            flips.add(bool(red[:, 0].mean() > red[:, -1].mean()))
    assert flips == {True, False}
    if not cache:  # the disk path gives exactly the cached path's batches
        for x, y in zip(batches, _take(ds.pipeline(cache=True, **kwargs), 4)):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])


def test_pyramid_arguments_are_checked(roots):
    ds = open_dataset("cub", root=roots["cub"])
    with pytest.raises(ValueError, match="at most image_size=16"):
        ds.pipeline(batch_size=2, image_size=16, pyramid=(8, 32))
    with pytest.raises(ValueError, match="pyramid sizes must be a positive multiple of 4"):
        ds.pipeline(batch_size=2, image_size=16, pyramid=(6,))


# ---------------------------------------------------------------- precomputed text embeddings

def _expected_embeddings(i, split="train"):
    return np.stack([fx.embedding_row(i, j, split) for j in range(10)])


@pytest.mark.parametrize("name", ["cub", "flowers"])  # pickled as a list / as one array
def test_embeddings_are_the_pickle_rows_in_filenames_order(roots, copy, name):
    for split, count in (("train", 6), ("test", 4)):
        ds = open_dataset(name, root=roots[name], split=split)
        assert ds.has_embeddings and ds.embedding_dim == 1024
        assert ds.embeddings.dtype == np.float32 and ds.embeddings.shape == (count, 10, 1024)
        for i in range(count):
            item = ds[i]
            assert item["embeddings"].dtype == np.float32
            np.testing.assert_array_equal(item["embeddings"], _expected_embeddings(i, split))
    # row j stands for caption j of the text file: item i's captions are caption(name, j)
    ds = open_dataset(name, root=roots[name])
    assert ds[4]["captions"][7].startswith("caption 7 of ")
    assert ds[4]["embeddings"][7, :3].tolist() == [4, 7, 1]
    # items skipped with strict=False drop their rows: the others keep theirs
    root = copy(name)
    stem = ds.filenames[1].split("/")[-1]
    (next(root.rglob(f"{stem}.txt"))).unlink()
    with pytest.warns(UserWarning, match="skipped 1 of 6 items"):
        lenient = open_dataset(name, root=root, strict=False)
    assert lenient.embeddings.shape == (5, 10, 1024)
    np.testing.assert_array_equal(lenient.embeddings[:, 0, 0], [0, 2, 3, 4, 5])
    np.testing.assert_array_equal(lenient[1]["embeddings"], _expected_embeddings(2))


def test_without_the_pickle_nothing_changes(roots, copy):
    root = copy("cub")
    (root / "train" / "char-CNN-RNN-embeddings.pickle").unlink()
    ds, full = open_dataset("cub", root=root), open_dataset("cub", root=roots["cub"])
    assert not ds.has_embeddings and ds.embedding_dim is None
    assert set(ds[0]) == {"image", "captions", "class_id", "filename"}
    assert set(full[0]) == set(ds[0]) | {"embeddings"}
    np.testing.assert_array_equal(ds[0]["image"], full[0]["image"])
    with pytest.raises(FileNotFoundError, match=r"train[/\\]char-CNN-RNN-embeddings.pickle is "
                                                r"missing \(expected StackGAN's"):
        ds.embeddings
    with pytest.raises(ValueError, match=r"embeddings=True needs precomputed text embeddings, "
                                         r"and .*train[/\\]char-CNN-RNN-embeddings.pickle is "
                                         r"missing .*datasets/cards/cub.md"):
        ds.pipeline(batch_size=2, embeddings=True)
    with pytest.raises(ValueError, match="embeddings must be True or False"):
        full.pipeline(batch_size=2, embeddings="yes")
    # the test split still has its pickle; the check reports what it read
    assert main(["data", "check", "cub", "--root", str(root), "--no-decode"]) == 0


def _write(path, obj):
    path.write_bytes(pickle.dumps(obj, protocol=2))


def test_bad_embedding_pickles_are_named(copy, capsys):
    root = copy("cub")
    path = root / "train" / "char-CNN-RNN-embeddings.pickle"
    names = _names(root)
    good = [_expected_embeddings(i) for i in range(6)]
    cases = [
        (b"not a pickle", r"cannot read .*train[/\\]char-CNN-RNN-embeddings.pickle: .*\(expected "
                          r"a pickle of one float array of shape \(10, D\) per image, in the "
                          r"order of filenames.pickle\)"),
        ({"a": 1}, r"char-CNN-RNN-embeddings.pickle holds a dict; expected a list of one float "
                   r"array of shape \(10, D\) per image"),
        (good[:5], r"char-CNN-RNN-embeddings.pickle holds 5 embedding arrays but "
                   r".*train[/\\]filenames.pickle lists 6 images"),
        (good[:3] + [good[3][:, :512]] + good[4:],
         rf"char-CNN-RNN-embeddings.pickle: the embeddings of image 3 \('{names[3]}'\) are "
         r"shape \(10, 512\); expected a float array of shape \(10, 1024\), one row per caption"),
        ([good[0][0]] + good[1:],
         rf"the embeddings of image 0 \('{names[0]}'\) are shape \(1024,\); expected a float "
         r"array of shape \(10, D\)"),
        (good[:1] + ["ten captions"] + good[2:],
         rf"the embeddings of image 1 \('{names[1]}'\) are a str that is not a float array"),
        (good[:2] + [good[2][:9]] + good[3:],
         rf"char-CNN-RNN-embeddings.pickle: image 2 \('{names[2]}'\) has 9 embedding rows; "
         r"expected 10, one per caption kept \(row j is caption j of its text file\)"),
        (np.stack(good)[:, :5], rf"image 0 \('{names[0]}'\) has 5 embedding rows; expected 10"),
    ]
    for content, message in cases:
        path.write_bytes(content) if isinstance(content, bytes) else _write(path, content)
        ds = open_dataset("cub", root=root)  # read on first use
        assert ds.has_embeddings
        with pytest.raises(ValueError, match=message):
            ds.embeddings
        with pytest.raises(ValueError, match=message):
            ds.pipeline(batch_size=2, embeddings=True)
        with pytest.raises(ValueError, match=message):
            open_dataset("cub", root=root)[0]
    assert main(["data", "check", "cub", "--root", str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "1 problem:" in out and "has 5 embedding rows; expected 10" in out
    assert "train: 6 images, 60 captions (10 per image), 2 classes\n" in out  # nothing read
    assert "test : 4 images, 40 captions (10 per image), 2 classes, 1024-d text embeddings" in out


@pytest.mark.parametrize("name,captions", [("cub", 1), ("cub", 4), ("flowers", 4)])
def test_pipeline_embeddings_are_the_rows_of_the_chosen_captions(roots, name, captions):
    ds = open_dataset(name, root=roots[name])
    tok = Tokenizer.from_texts([c for cs in ds.captions for c in cs])
    kwargs = dict(batch_size=3, image_size=16, tokenizer=tok, seed=4, captions=captions,
                  with_index=True)
    batches = _take(ds.pipeline(embeddings=True, **kwargs), 6)  # 3 epochs
    plain = _take(ds.pipeline(**kwargs), 6)
    for batch, same in zip(batches, plain):
        assert set(batch) == set(same) | {"embeddings", "wrong_embeddings"}
        for key in same:  # the embeddings change nothing else
            np.testing.assert_array_equal(batch[key], same[key])
        e, we = batch["embeddings"], batch["wrong_embeddings"]
        assert e.dtype == we.dtype == np.float32 and e.shape == we.shape == (3, captions, 1024)
        tokens = batch["tokens"].reshape(3, captions, -1)
        wrong_tokens = batch["wrong_tokens"].reshape(3, captions, -1)
        for r in range(3):
            i, w = batch["index"][r], batch["wrong_index"][r]
            assert ds.class_ids[w] != ds.class_ids[i]
            for rows, toks, item in ((e[r], tokens[r], i), (we[r], wrong_tokens[r], w)):
                picked = rows[:, 1].astype(int)
                assert len(set(picked.tolist())) == captions  # distinct captions
                for j in range(captions):
                    # the row is [item, caption, 1, 0...] and the tokens are that caption's
                    np.testing.assert_array_equal(rows[j], fx.embedding_row(item, picked[j]))
                    np.testing.assert_array_equal(
                        toks[j], tok([ds.captions[item][picked[j]]])[0])
    chosen = {(int(b["index"][r]), int(b["embeddings"][r, 0, 1]))
              for b in batches for r in range(3)}
    assert len(chosen) > 6  # items come with varying captions


# ---------------------------------------------------------------- command line

@pytest.mark.parametrize("name", ["cub", "flowers", "coco", "coco_official"])
def test_data_check_clean_datasets(roots, name, capsys):
    reader = name.split("_")[0]
    assert main(["data", "check", reader, "--root", str(roots[name])]) == 0
    out = capsys.readouterr().out
    per = 5 if reader == "coco" else 10
    assert f"train: 6 images, {6 * per} captions ({per} per image)" in out
    assert f"test : 4 images, {4 * per} captions" in out
    assert out.count("classes, 1024-d text embeddings") == (2 if reader != "coco" else 0)
    assert "no problems found (every image decoded)" in out


def test_data_check_missing_folder_and_synthbirds(tmp_path, capsys):
    assert main(["data", "check", "cub", "--root", str(tmp_path / "nowhere")]) == 1
    assert f"{tmp_path / 'nowhere'}: dataset folder does not exist" in capsys.readouterr().out
    root = tmp_path / "sb"
    assert main(["data", "synthbirds", "--out", str(root), "--n", "20", "--size", "16"]) == 0
    capsys.readouterr()
    assert main(["data", "check", "synthbirds", "--root", str(root), "--no-decode"]) == 0
    assert "train: 15 images, 150 captions" in capsys.readouterr().out


def test_train_cgan_on_cub_layout(tmp_path):
    root = fx.write_cub(tmp_path / "cub", per_class=(33, 33, 2, 2), size=(40, 32))
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # real captions hold words outside the SynthBirds vocabulary
        assert main(["train", "cgan", "--data", "cub", "--root", str(root), "--steps", "2",
                     "--out", str(run)]) == 0
    assert (run / "checkpoints" / "ckpt-0000002.keras").is_file()
    assert list((run / "samples").glob("*.png"))
    info = json.loads((run / "config.json").read_text())
    assert info["data"] == "cub" and info["root"] == str(root)


def test_class_conditioning_refuses_a_dataset_without_classes(tmp_path, capsys):
    root = fx.write_coco(tmp_path / "coco")
    code = main(["train", "cgan", "--variant", "class", "--data", "coco", "--root", str(root),
                 "--steps", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "class ids" in capsys.readouterr().err
