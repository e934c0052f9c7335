"""SynthBirds: species table, renderer, caption grammar and the written layout."""

import json
import pickle
import re

import numpy as np
import pytest
from PIL import Image

from ganlib.data import synthbirds as sb

# Backend-neutral (the SynthBirds generator: numpy only): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral


@pytest.fixture(scope="session")
def birds_root(tmp_path_factory):
    """A tiny SynthBirds (one image per species, 32 px) shared by this file."""
    return sb.generate(tmp_path_factory.mktemp("sb") / "synthbirds", n=200, size=32,
                       seed=0, verbose=False)


def _nearest_colour(rgb):
    names = list(sb.PALETTE)
    dist = [np.sum((np.asarray(rgb, float) - sb.PALETTE[c]) ** 2) for c in names]
    return names[int(np.argmin(dist))]


# ---------------------------------------------------------------- species

def test_species_table_is_fixed_and_distinct():
    table = sb.species_table()
    assert len(table) == sb.NUM_SPECIES == 200
    assert table == sb.species_table()  # independent of any seed / call
    assert len({s["name"] for s in table}) == 200
    assert len({tuple(s[p] for p in sb.PARTS) + (s["size"],) for s in table}) == 200
    for s in table:
        assert s["size"] in ("small", "medium", "large")
        for p in sb.PARTS:
            assert s[p] in sb.PART_COLOURS[p]
    assert set(sb.PART_COLOURS["beak"]) == {"black", "orange", "yellow", "grey"}
    assert sb.class_dir(0).startswith("001.Synth_")


def test_sample_bird_variation_is_rare_and_deterministic():
    rng = np.random.default_rng(1)
    birds = [sb.sample_bird(k % 200, rng) for k in range(600)]
    table = sb.species_table()
    differing = [b for b in birds if any(b[p] != table[b["species"]][p] for p in sb.PARTS)]
    assert 0.04 < len(differing) / len(birds) < 0.18
    for b in differing:  # exactly one part differs
        assert sum(b[p] != table[b["species"]][p] for p in sb.PARTS) == 1
    assert {b["pose"] for b in birds} == {"left", "right"}
    assert {b["background"] for b in birds} == {"sky", "foliage", "dusk", "plain"}
    a = sb.sample_bird(5, np.random.default_rng(3))
    assert a == sb.sample_bird(5, np.random.default_rng(3))
    with pytest.raises(ValueError, match="species_id"):
        sb.sample_bird(200, rng)


# ---------------------------------------------------------------- rendering

@pytest.mark.parametrize("size", [32, 64, 100, 512])
def test_render_shapes_and_determinism(size):
    bird = sb.sample_bird(7, np.random.default_rng(0))
    image, mask = sb.render(bird, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= set(range(8))
    for label in (1, 2, 3, 4, 6):  # crown, wing, belly, tail, eye are visible
        assert (mask == label).any(), label
    image2, mask2 = sb.render(bird, size)
    assert np.array_equal(image, image2) and np.array_equal(mask, mask2)


def test_pose_mirrors_the_bird():
    bird = sb.sample_bird(9, np.random.default_rng(0))
    bird.update(pose="right", cx=0.5, tilt=0.0, perch=False)
    _, right = sb.render(bird, 64)
    bird["pose"] = "left"
    _, left = sb.render(bird, 64)
    beak_x = lambda m: np.nonzero(m == 5)[1].mean()  # noqa: E731
    assert beak_x(right) > 32 > beak_x(left)
    assert np.mean(right[:, ::-1] == left) > 0.97


def test_renderer_paints_the_named_colours():
    """The mean colour of each part's mask region is nearest its attribute colour."""
    rng = np.random.default_rng(0)
    for k in range(40):
        bird = sb.sample_bird(int(rng.integers(200)), rng)
        image, mask = sb.render(bird, 64)
        for label, part in ((1, "crown"), (2, "wing"), (3, "belly"), (4, "tail")):
            region = image[mask == label]
            assert len(region) > 10
            assert _nearest_colour(region.mean(axis=0)) == bird[part], (k, part)


def test_written_images_show_their_attributes(birds_root):
    attributes = json.loads((birds_root / "attributes.json").read_text())
    keys = sorted(attributes)[::7]
    for key in keys:
        image = np.asarray(Image.open(birds_root / "CUB_200_2011" / "images" / f"{key}.jpg"))
        mask = np.asarray(Image.open(birds_root / "masks" / f"{key}.png"))
        assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
        wing = image[mask == 2]
        assert _nearest_colour(wing.mean(axis=0)) == attributes[key]["wing"], key


# ---------------------------------------------------------------- captions

def test_captions_grammar_and_round_trip():
    rng = np.random.default_rng(0)
    vocab = set(sb.vocabulary())
    assert sb.vocabulary() == sorted(vocab)
    seen_counts = set()
    for k in range(300):
        bird = sb.sample_bird(k % 200, rng)
        caps = sb.make_captions(bird, rng)
        assert len(caps) == 10 and len(set(caps)) >= 8
        for cap in caps:
            assert re.fullmatch(r"[a-z]+( [a-z]+|,)*", cap), cap
            assert len(cap.split()) <= sb.MAX_CAPTION_WORDS == 18, cap
            assert set(cap.replace(",", " ").split()) <= vocab, cap
            parsed = sb.parse_caption(cap)
            assert 2 <= len(parsed) <= 5, cap
            assert all(bird[p] == c for p, c in parsed.items()), cap
            seen_counts.add(len(parsed))
    assert seen_counts == {2, 3, 4, 5}


def test_parse_caption_synonyms():
    assert sb.parse_caption("this small bird has a red crown, blue wings and a white belly") \
        == {"crown": "red", "wing": "blue", "belly": "white"}
    assert sb.parse_caption("a bird with a grey head and a yellow breast, and its bill is black") \
        == {"crown": "grey", "belly": "yellow", "beak": "black"}
    assert sb.parse_caption("a tiny green crowned bird with brown tail feathers") \
        == {"crown": "green", "tail": "brown"}
    assert sb.parse_caption("this bird is small") == {}


def test_captions_use_synonyms_and_sizes():
    rng = np.random.default_rng(0)
    words = set()
    for k in range(100):
        bird = sb.sample_bird(k, rng)
        for cap in sb.make_captions(bird, rng):
            words.update(cap.replace(",", " ").split())
    for w in ("crown", "head", "wings", "belly", "breast", "beak", "bill", "small", "large"):
        assert w in words, w


# ---------------------------------------------------------------- the written dataset

def test_generate_is_deterministic(tmp_path):
    a = sb.generate(tmp_path / "a", n=20, size=32, seed=3, verbose=False)
    b = sb.generate(tmp_path / "b", n=20, size=32, seed=3, verbose=False)
    c = sb.generate(tmp_path / "c", n=20, size=32, seed=4, verbose=False)
    names = pickle.loads((a / "train" / "filenames.pickle").read_bytes())
    files = ["CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt",
             "attributes.json", "train/filenames.pickle", "test/class_info.pickle",
             f"CUB_200_2011/images/{names[0]}.jpg", f"masks/{names[1]}.png",
             f"text/{names[2]}.txt"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "attributes.json").read_bytes() != (c / "attributes.json").read_bytes()
    assert (a / f"CUB_200_2011/images/{names[0]}.jpg").read_bytes() != \
        (c / f"CUB_200_2011/images/{names[0]}.jpg").read_bytes()


def test_layout_and_class_disjoint_splits(birds_root):
    cub = birds_root / "CUB_200_2011"
    train = pickle.loads((birds_root / "train" / "filenames.pickle").read_bytes())
    test = pickle.loads((birds_root / "test" / "filenames.pickle").read_bytes())
    train_cls = pickle.loads((birds_root / "train" / "class_info.pickle").read_bytes())
    test_cls = pickle.loads((birds_root / "test" / "class_info.pickle").read_bytes())
    assert len(train) + len(test) == 200
    assert set(train_cls) == set(range(1, 151)) and set(test_cls) == set(range(151, 201))
    assert not {f.split("/")[0] for f in train} & {f.split("/")[0] for f in test}
    for names, classes in ((train, train_cls), (test, test_cls)):
        for name, cls in zip(names, classes):
            assert int(name.split(".")[0]) == cls
    images = dict(line.split() for line in (cub / "images.txt").read_text().splitlines())
    boxes = {line.split()[0]: [float(v) for v in line.split()[1:]]
             for line in (cub / "bounding_boxes.txt").read_text().splitlines()}
    labels = dict(line.split() for line in (cub / "image_class_labels.txt").read_text().splitlines())
    assert len(images) == len(boxes) == len(labels) == 200
    for image_id, rel in list(images.items())[:40]:
        assert (cub / "images" / rel).is_file()
        assert int(labels[image_id]) == int(rel.split(".")[0])
        x, y, w, h = boxes[image_id]
        assert 0 <= x and 0 <= y and x + w <= 32 and y + h <= 32 and w > 4 and h > 4
        mask = np.asarray(Image.open(birds_root / "masks" / rel.replace(".jpg", ".png")))
        ys, xs = np.nonzero((mask >= 1) & (mask <= 6))
        assert xs.min() == x and ys.min() == y and xs.max() == x + w - 1


def test_captions_on_disk_agree_with_attributes(birds_root):
    attributes = json.loads((birds_root / "attributes.json").read_text())
    assert len(attributes) == 200
    for key, attrs in attributes.items():
        assert set(attrs) == set(sb.PARTS) | {"size", "species"}
        lines = (birds_root / "text" / f"{key}.txt").read_text().splitlines()
        assert len(lines) == 10
        for line in lines:
            parsed = sb.parse_caption(line)
            assert len(parsed) >= 2
            assert all(attrs[p] == c for p, c in parsed.items()), (key, line)


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n must be"):
        sb.generate(tmp_path, n=0, verbose=False)
    with pytest.raises(ValueError, match="size"):
        sb.generate(tmp_path, n=5, size=4, verbose=False)
