"""SynthStreets (procedural Cityscapes-like scenes) and the Cityscapes layout reader."""

import shutil

import numpy as np
import pytest
from PIL import Image

from ganlib.cli import main
from ganlib.data import open_dataset, synthstreets
from ganlib.data.check import check_dataset
from ganlib.data.synthstreets import ID, LABELS, USED_IDS, parse_size, render, sample_scene

# Backend-neutral (the SynthStreets generator and Cityscapes reader: numpy only): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral

SIZE = (64, 32)


@pytest.fixture(scope="module")
def streets(tmp_path_factory):
    root = tmp_path_factory.mktemp("streets") / "synthstreets"
    synthstreets.generate(root, n=8, size=SIZE, seed=5, verbose=False)
    return root


def _copy(streets, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(streets, root)
    return root


def _frame(root, k):
    """Photo, label and instance paths of the k-th training frame (sorted by name)."""
    image = sorted((root / "leftImg8bit" / "train").glob("*/*_leftImg8bit.png"))[k]
    stem = image.name[:-len("_leftImg8bit.png")]
    gt = root / "gtFine" / "train" / image.parent.name
    return image, gt / f"{stem}_gtFine_labelIds.png", gt / f"{stem}_gtFine_instanceIds.png"


def test_label_table_is_cityscapes():
    assert [lab.id for lab in LABELS] == list(range(34))
    evaluated = [lab for lab in LABELS if lab.train_id != 255]
    assert [lab.train_id for lab in evaluated] == list(range(19))  # the 19 evaluated classes, in order
    assert {lab.name for lab in LABELS if lab.has_instances} == {
        "person", "rider", "car", "truck", "bus", "caravan", "trailer", "train", "motorcycle", "bicycle"}
    assert (ID["road"], ID["sidewalk"], ID["building"], ID["sky"], ID["person"], ID["car"]) == (7, 8, 11, 23, 24, 26)
    assert LABELS[7].colour == (128, 64, 128) and LABELS[26].colour == (0, 0, 142)


def test_layout_and_determinism(streets, tmp_path):
    files = sorted(p.relative_to(streets).as_posix() for p in streets.rglob("*.png"))
    assert len(files) == 8 * 3
    assert "leftImg8bit/train/ashford/ashford_000000_000019_leftImg8bit.png" in files
    assert "gtFine/test/fenwick/fenwick_000000_000019_gtFine_labelIds.png" in files
    assert "gtFine/test/fenwick/fenwick_000000_000019_gtFine_instanceIds.png" in files
    again = synthstreets.generate(tmp_path / "again", n=8, size=SIZE, seed=5, verbose=False)
    other = synthstreets.generate(tmp_path / "other", n=8, size=SIZE, seed=6, verbose=False)
    name = "leftImg8bit/train/ashford/ashford_000000_000019_leftImg8bit.png"
    for f in files:
        assert (again / f).read_bytes() == (streets / f).read_bytes(), f
    assert (other / name).read_bytes() != (streets / name).read_bytes()
    with Image.open(streets / name) as im:
        assert im.size == SIZE and im.mode == "RGB"


def test_maps_are_consistent_and_objects_adjacent():
    adjacent = {ID["car"]: 0, ID["person"]: 0}
    seen = set()
    for i in range(24):
        image, label, instance = render(sample_scene(np.random.default_rng([0, i])), 256, 128)
        assert image.shape == (128, 256, 3) and label.shape == instance.shape == (128, 256)
        seen |= set(np.unique(label).tolist())
        # instance ids: label * 1000 + k for cars and persons, the label id elsewhere
        things = np.isin(label, [ID["car"], ID["person"]])
        assert np.array_equal(instance[things] // 1000, label[things])
        assert np.array_equal(instance[~things], label[~things])
        for a, b in ((instance[:, 1:], instance[:, :-1]), (instance[1:], instance[:-1])):
            boundary = (a != b) & (a // 1000 == b // 1000) & (a >= 1000)
            for cls in adjacent:
                adjacent[cls] += int((boundary & (a // 1000 == cls)).sum())
    assert seen <= set(USED_IDS) and {7, 8, 11, 21, 23, 24, 26} <= seen
    assert adjacent[ID["car"]] > 0 and adjacent[ID["person"]] > 0  # touching instances of one class


def test_sizes():
    assert parse_size("256x128") == (256, 128) and parse_size(512) == (512, 256)
    image, label, _ = render(sample_scene(np.random.default_rng(1)), 512, 256)
    assert image.shape == (256, 512, 3) and label.shape == (256, 512)
    for bad in ("4096x2048", "12x6", "wide"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_reader_items_and_pipeline(streets):
    ds = open_dataset("synthstreets", root=streets, split="train")
    assert len(ds) == 7 and len(open_dataset("synthstreets", root=streets, split="test")) == 1
    item = ds[0]
    assert item["image"].dtype == np.uint8 and item["image"].shape == (32, 64, 3)
    assert item["label"].dtype == np.uint8 and item["instance"].dtype == np.int32
    assert item["filename"] == "ashford/ashford_000000_000019"
    image, label, instance = render(sample_scene(np.random.default_rng([5, 0])), *SIZE)
    assert np.array_equal(item["image"], image) and np.array_equal(item["label"], label)
    assert np.array_equal(item["instance"], instance)

    batches = list(ds.pipeline(batch_size=3, size=(16, 32), seed=2, repeat=False))
    assert len(batches) == 2
    b = batches[0]
    assert b["image"].shape == (3, 16, 32, 3) and b["label"].shape == b["instance"].shape == (3, 16, 32)
    images, labels, instances = ds.arrays((16, 32))
    # each example is a frame, flipped or not, with photo and maps flipped together
    for k in range(3):
        lab = b["label"][k].numpy()
        matches = [(i, f) for i in range(len(ds)) for f in (False, True)
                   if np.array_equal(labels[i][:, ::-1] if f else labels[i], lab)]
        i, f = matches[0]
        img = images[i][:, ::-1] if f else images[i]
        np.testing.assert_allclose(b["image"][k].numpy(), img / 127.5 - 1.0, atol=1e-6)
        assert np.array_equal(b["instance"][k].numpy(), instances[i][:, ::-1] if f else instances[i])
    again = next(iter(ds.pipeline(batch_size=3, size=(16, 32), seed=2)))
    assert all(np.array_equal(again[k], b[k]) for k in b)


def test_reader_errors(streets, tmp_path):
    root = _copy(streets, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset("cityscapes", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        open_dataset("synthstreets", root=root, split="val")
    image0, label0, instance0 = _frame(root, 0)
    image1, label1, instance1 = _frame(root, 1)
    image2, label2, instance2 = _frame(root, 2)
    image3, label3, _ = _frame(root, 3)
    instance0.unlink()                                               # a missing map
    with pytest.raises(FileNotFoundError, match=f"{instance0.name} is missing"):
        open_dataset("cityscapes", root=root)
    image1.unlink()                                                  # a map without a photo
    Image.fromarray(np.full((32, 64), 40, np.uint8)).save(label2)    # unknown label id
    Image.fromarray(np.zeros((16, 64), np.uint8)).save(label3)       # wrong size
    with pytest.warns(UserWarning, match="2 frames skipped"):
        ds = open_dataset("cityscapes", root=root, strict=False)
    assert len(ds) == 5 and len(ds.problems) == 2
    assert any(instance0.name in p for p in ds.problems)
    assert any(label1.name in p and "has no image" in p for p in ds.problems)
    key = {p: f"{p.parent.name}/{p.name[:-len('_leftImg8bit.png')]}" for p in (image2, image3)}
    with pytest.raises(ValueError, match=r"unknown label ids \[40\]"):
        ds.load(ds.filenames.index(key[image2]))
    with pytest.raises(ValueError, match=r"64x16 but its image .* is 64x32 \(expected the same size\)"):
        ds.load(ds.filenames.index(key[image3]))
    report = check_dataset("synthstreets", root=root, out=None)
    assert not report["ok"] and len(report["problems"]) == 4 and report["splits"]["train"] == {"frames": 5}
    assert main(["data", "check", "synthstreets", "--root", str(root)]) == 1


def test_reader_errors_in_maps(streets, tmp_path):
    root = _copy(streets, tmp_path)
    _, label0, instance0 = _frame(root, 0)
    _, label1, instance1 = _frame(root, 1)
    _, label2, _ = _frame(root, 2)
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(label0)    # a colour image
    inst = np.asarray(Image.open(instance1)).astype(np.int32)
    inst[0, 0] = 26005                                               # a car over the sky
    Image.fromarray(inst.astype(np.uint16)).save(instance1)
    Image.fromarray(np.full((32, 64), 255, np.uint8)).save(label2)   # trainIds given by mistake
    ds = open_dataset("synthstreets", root=root)
    with pytest.raises(ValueError, match=r"has 3 channels .*_color\.png"):
        ds.load(0)
    with pytest.raises(ValueError, match=r"disagrees with label file .* instance id 26005 over label 23"):
        ds.load(1)
    with pytest.raises(ValueError, match="look like trainIds"):
        ds[2]
    assert main(["data", "check", "synthstreets", "--root", str(root), "--no-decode"]) == 0
    assert main(["data", "check", "synthstreets", "--root", str(root)]) == 1


def test_cli_generates(tmp_path, capsys):
    assert main(["data", "synthstreets", "--out", str(tmp_path / "s"), "--n", "2", "--size", "32x16"]) == 0
    assert "SynthStreets written" in capsys.readouterr().out
    assert len(list((tmp_path / "s").rglob("*.png"))) == 6
    assert main(["data", "synthstreets", "--out", str(tmp_path / "t"), "--size", "8000"]) == 2


@pytest.mark.parametrize("shape,size", [((128, 256), (64, 128)), ((100, 77), (33, 50)), ((32, 64), (128, 256)),
                                        ((37, 91), (64, 13))])
def test_maps_resize_as_pil_nearest_for_any_id_width(shape, size):
    """One nearest-neighbour rule for training frames, evaluation samples and user label maps:
    PIL's (the pixel under each output pixel's centre), also for instance ids beyond uint8."""
    from ganlib.data.cityscapes import resize_frame, resize_map

    rng = np.random.default_rng(0)
    instance = rng.integers(0, 34000, shape).astype(np.int32)
    label = (instance % 34).astype(np.uint8)
    image = rng.integers(0, 256, shape + (3,)).astype(np.uint8)
    pil = lambda m: np.asarray(Image.fromarray(m).resize(size[::-1], Image.NEAREST))
    np.testing.assert_array_equal(resize_map(instance, size), pil(instance))
    _, small_label, small_instance = resize_frame(image, label, instance, size)
    np.testing.assert_array_equal(small_label, pil(label))
    np.testing.assert_array_equal(small_instance, pil(instance))
