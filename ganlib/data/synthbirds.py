"""SynthBirds: a procedural, CUB-like text-to-image dataset.

Every image is a bird drawn from parts (crown/head, wings, belly/breast, tail,
beak, eye), each part painted with a named palette colour, on a textured
background (sky, foliage, dusk or plain), optionally standing on a perch.
200 fixed "species" (attribute combinations) play the role of CUB's classes;
like CUB, the first 150 classes are the training split and the last 50 the
test split, so train and test share no class.

Each image comes with 10 captions from a small grammar with synonyms, varied
order and varied subsets of attributes, e.g.::

    this small bird has a red crown, blue wings and a white belly

and with its ground truth (the attributes it was drawn with, its species and a
part mask), so that a generated image can be checked against its caption.

Layout of this module:

* palette and species: :data:`COLOURS`, :data:`PALETTE`, :data:`PARTS`,
  :data:`PART_COLOURS`, :func:`species_table`, :func:`sample_bird`;
* drawing: :func:`render` (vectorised numpy, 2x supersampled);
* language: :func:`make_captions`, :func:`parse_caption`, :func:`vocabulary`;
* writing: :func:`generate` writes the CUB / AttnGAN on-disk layout that
  :mod:`ganlib.data.captioned` reads (see ``datasets/cards/synthbirds.md``).

Everything is deterministic: the species table is fixed, and every image is a
function of ``(seed, image index)``.
"""

from __future__ import annotations

import functools
import io
import json
import pathlib
import pickle
import re
import time

import numpy as np
from PIL import Image

VERSION = 1

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "brown",
           "black", "white", "grey")

#: RGB value of every colour name (chosen far apart so that they stay
#: distinguishable after shading, jitter and JPEG compression).
PALETTE = {
    "red": (205, 35, 35),
    "orange": (245, 140, 25),
    "yellow": (245, 220, 45),
    "green": (45, 160, 60),
    "blue": (40, 85, 215),
    "purple": (135, 55, 175),
    "brown": (120, 75, 35),
    "black": (25, 25, 25),
    "white": (240, 240, 240),
    "grey": (130, 130, 130),
}

PARTS = ("crown", "wing", "belly", "tail", "beak")

PART_COLOURS = {
    "crown": COLOURS,
    "wing": COLOURS,
    "belly": COLOURS,
    "tail": COLOURS,
    "beak": ("black", "orange", "yellow", "grey"),
}

SIZES = ("small", "medium", "large")
POSES = ("left", "right")
BACKGROUNDS = ("sky", "foliage", "dusk", "plain")

NUM_SPECIES = 200
NUM_TRAIN_CLASSES = 150
CAPTIONS_PER_IMAGE = 10
MAX_CAPTION_WORDS = 18  # AttnGAN keeps 18 words: captions never need truncating

#: Label values of the part mask returned by :func:`render`.
MASK_LABELS = {"background": 0, "crown": 1, "wing": 2, "belly": 3, "tail": 4,
               "beak": 5, "eye": 6, "perch": 7}

# --------------------------------------------------------------------------
# Species
# --------------------------------------------------------------------------

_NOUNS = {
    "small": ("Finch", "Warbler", "Sparrow", "Wren", "Tit", "Siskin"),
    "medium": ("Thrush", "Tanager", "Oriole", "Starling", "Bunting", "Shrike"),
    "large": ("Jay", "Crow", "Grosbeak", "Kingfisher", "Cuckoo", "Magpie"),
}

_SPECIES_CACHE: list[dict] | None = None


def species_table() -> list[dict]:
    """The 200 fixed SynthBirds species.

    The table never depends on a user seed: species ``k`` is the same bird in
    every generated copy of the dataset.

    Returns:
        A list of 200 dicts ``{"name", "crown", "wing", "belly", "tail",
        "beak", "size"}``; no two species share all their attributes, and
        names are unique (``"Synth_Red_Crowned_Finch"``-like).
    """
    global _SPECIES_CACHE
    if _SPECIES_CACHE is None:
        rng = np.random.default_rng(2011)  # fixed: the year CUB-200-2011 came out
        seen, names, table = set(), set(), []
        while len(table) < NUM_SPECIES:
            attrs = {p: str(rng.choice(PART_COLOURS[p])) for p in PARTS}
            attrs["size"] = str(rng.choice(SIZES))
            # Species must differ in a way that shows: crown/wing/belly unique.
            key = (attrs["crown"], attrs["wing"], attrs["belly"])
            if key in seen:
                continue
            noun = str(rng.choice(_NOUNS[attrs["size"]]))
            name = f"Synth_{attrs['crown'].title()}_Crowned_{noun}"
            if name in names:
                name = (f"Synth_{attrs['crown'].title()}_Crowned_"
                        f"{attrs['wing'].title()}_Winged_{noun}")
            if name in names:
                name = (f"Synth_{attrs['crown'].title()}_Crowned_"
                        f"{attrs['belly'].title()}_Bellied_{noun}")
            if name in names:
                continue
            seen.add(key)
            names.add(name)
            table.append({"name": name, **attrs})
        _SPECIES_CACHE = table
    return [dict(s) for s in _SPECIES_CACHE]


def class_dir(species_id: int) -> str:
    """CUB-style class folder name of a species, e.g. ``"001.Synth_Red_Crowned_Finch"``."""
    species_table()  # fills the cache
    return f"{species_id + 1:03d}.{_SPECIES_CACHE[species_id]['name']}"


def _pick(rng: np.random.Generator, options):
    """One element of a sequence (faster than ``rng.choice`` on small tuples)."""
    return options[int(rng.integers(len(options)))]


def sample_bird(species_id: int, rng: np.random.Generator) -> dict:
    """Draw one individual of a species.

    Args:
        species_id: 0..199.
        rng: numpy random generator (all per-image randomness comes from it).

    Returns:
        A dict holding the species attributes (``crown``, ``wing``, ``belly``,
        ``tail``, ``beak``, ``size``; with a 10% chance one part colour differs
        from the species', as CUB's within-class variation: the dict is the
        ground truth), ``species``, ``pose``, ``background``, ``perch``,
        ``scale``, ``cx``, ``cy``, ``tilt``, ``jitter`` (per-part RGB offsets)
        and ``texture_seed``; :func:`render` is a pure function of it.
    """
    if not 0 <= int(species_id) < NUM_SPECIES:
        raise ValueError(f"species_id must be in 0..{NUM_SPECIES - 1}, got {species_id}")
    species_table()  # fills the cache
    sp = _SPECIES_CACHE[int(species_id)]
    bird = {p: sp[p] for p in PARTS}
    bird["size"] = sp["size"]
    bird["species"] = int(species_id)
    if rng.random() < 0.1:  # one part of this individual differs from its species
        part = _pick(rng, PARTS)
        bird[part] = _pick(rng, [c for c in PART_COLOURS[part] if c != sp[part]])
    base_scale = {"small": 0.52, "medium": 0.63, "large": 0.74}[bird["size"]]
    bird.update(
        pose=_pick(rng, POSES),
        background=_pick(rng, BACKGROUNDS),
        perch=bool(rng.random() < 0.6),
        scale=float(base_scale * rng.uniform(0.93, 1.07)),
        cx=float(0.5 + rng.uniform(-0.07, 0.07)),
        cy=float(0.47 + rng.uniform(-0.05, 0.05)),
        tilt=float(rng.uniform(-0.15, 0.15)),
        jitter={p: [int(v) for v in rng.integers(-10, 11, size=3)] for p in PARTS},
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
    return bird


def attributes_of(bird: dict) -> dict:
    """The ground-truth record stored in ``attributes.json`` for a bird."""
    out = {p: bird[p] for p in PARTS}
    out["size"] = bird["size"]
    out["species"] = int(bird["species"])
    return out


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

# Internal paint labels: 1..7 as MASK_LABELS, 8 = eye ring (mask: eye),
# 9 = back of the body (mask: wing, painted in a darker wing colour).
_MASK_OF_PAINT = np.array([0, 1, 2, 3, 4, 5, 6, 7, 6, 2], dtype=np.uint8)


@functools.lru_cache(maxsize=64)
def _interp_weights(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Left grid index and smoothstep weight of n samples spread over ``cells`` cells."""
    t = (np.arange(n) + 0.5) * cells / n
    i0 = np.minimum(t.astype(int), cells - 1)
    f = t - i0
    return i0, (f * f * (3 - 2 * f)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid smoothly upsampled to (h, w)."""
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    iy, fy = _interp_weights(h, cells)
    ix, fx = _interp_weights(w, cells)
    rows = grid[iy] * (1 - fy[:, None]) + grid[iy + 1] * fy[:, None]  # (h, cells + 1)
    return rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Float RGB background (h, w, 3) in 0..255."""
    v = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    n1 = _smooth_noise(rng, h, w, 4)[..., None]
    n2 = _smooth_noise(rng, h, w, 12)[..., None]
    if kind == "sky":
        top, bottom = np.float32([95, 160, 230.0]), np.float32([185, 215, 245.0])
        img = top * (1 - v) + bottom * v
        cloud = np.clip((n1 - 0.55) * 3.0, 0, 1) * (0.6 + 0.4 * n2)
        img = img * (1 - cloud) + np.float32(245.0) * cloud
    elif kind == "foliage":
        dark, light = np.float32([35, 80, 35.0]), np.float32([115, 165, 75.0])
        t = np.clip(0.6 * n1 + 0.6 * n2 - 0.1, 0, 1)
        img = dark * (1 - t) + light * t
    elif kind == "dusk":
        top, bottom = np.float32([80, 60, 130.0]), np.float32([250, 165, 95.0])
        img = top * (1 - v) + bottom * v
        img = img * (0.9 + 0.2 * n1)
    else:  # plain
        base = np.float32([[225, 215, 195.0], [205, 205, 205.0], [215, 225, 230.0]])
        img = np.broadcast_to(base[rng.integers(0, 3)], (h, w, 3)) * (0.95 + 0.08 * n2)
    return img


def _ellipse(x, y, cx, cy, rx, ry, angle=0.0):
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    u = (dx * c + dy * s) / rx
    v = (-dx * s + dy * c) / ry
    return u * u + v * v <= 1.0


def _polygon(x, y, points):
    """Inside test for a convex polygon given counter- or clockwise."""
    pts = np.asarray(points, dtype=float)
    inside = np.ones(np.broadcast(x, y).shape, dtype=bool)
    area = 0.0
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0)):
        area += x0 * y1 - x1 * y0
    sign = 1.0 if area > 0 else -1.0
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0)):
        inside &= sign * ((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) >= 0
    return inside


def render(bird: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw a bird.

    Args:
        bird: a dict from :func:`sample_bird` (the drawing is a pure function
            of it).
        size: image side in pixels (works from 16 to 1024; 32..512 typical).

    Returns:
        ``(image, mask)``: ``image`` uint8 (size, size, 3); ``mask`` uint8
        (size, size) with 0 background, 1..5 the parts in :data:`PARTS` order
        (crown, wing, belly, tail, beak; the back of the body counts as wing),
        6 eye, 7 perch.
    """
    size = int(size)
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    ss = 2  # supersampling factor (anti-aliasing)
    n = size * ss
    rng = np.random.default_rng(bird["texture_seed"])
    bg = _background(bird["background"], n, n, rng)

    coords = ((np.arange(n) + 0.5) / n).astype(np.float32)
    direction = 1.0 if bird["pose"] == "right" else -1.0
    scale, cx, cy = bird["scale"], bird["cx"], bird["cy"]

    paint = np.zeros((n, n), dtype=np.uint8)
    if bird["perch"]:
        py = cy + 0.27 * scale
        slope = 0.08 * np.sin(bird["texture_seed"] % 7)
        perch = (np.abs(coords[:, None] - (py + slope * (coords[None, :] - 0.5)))
                 <= 0.022 + 0.004 * scale)
        paint[perch] = 7

    # The bird is drawn inside a window around it (saves work at large sizes).
    r0, r1 = np.searchsorted(coords, [cy - 0.42 * scale, cy + 0.40 * scale])
    c0, c1 = np.searchsorted(coords, [cx - 0.66 * scale, cx + 0.66 * scale])
    gy, gx = coords[r0:r1, None], coords[None, c0:c1]
    # Bird-local coordinates: facing +x, y down, bird about 1 unit long.
    lx = (gx - cx) * direction / scale
    ly = (gy - cy) / scale
    ct, st = np.cos(bird["tilt"] * 0.5), np.sin(bird["tilt"] * 0.5)
    x = lx * ct + ly * st
    y = -lx * st + ly * ct

    win = np.zeros(np.broadcast(x, y).shape, dtype=np.uint8)
    win[_polygon(x, y, [(-0.20, -0.02), (-0.58, 0.14), (-0.55, 0.26), (-0.18, 0.12)])] = 4
    body = _ellipse(x, y, 0.0, 0.04, 0.31, 0.20, angle=-0.15)
    lower = y >= 0.05 - 0.20 * x
    win[body & ~lower] = 9
    win[body & lower] = 3
    win[_ellipse(x, y, -0.07, 0.0, 0.25, 0.105, angle=0.30)] = 2
    head = _ellipse(x, y, 0.27, -0.15, 0.135, 0.13)
    win[head] = 1
    beak_len = {"small": 0.13, "medium": 0.15, "large": 0.18}[bird["size"]]
    beak = _polygon(x, y, [(0.37, -0.19), (0.37 + beak_len, -0.135), (0.37, -0.10)])
    win[beak & ~head] = 5
    win[_ellipse(x, y, 0.315, -0.175, 0.036, 0.036)] = 8
    win[_ellipse(x, y, 0.322, -0.177, 0.022, 0.022)] = 6
    region = paint[r0:r1, c0:c1]
    paint[r0:r1, c0:c1] = np.where(win > 0, win, region)

    lut = np.zeros((10, 3), dtype=np.float32)
    for label, part in ((1, "crown"), (2, "wing"), (3, "belly"), (4, "tail"), (5, "beak")):
        lut[label] = np.clip(np.add(PALETTE[bird[part]], bird["jitter"][part]), 0, 255)
    lut[9] = lut[2] * 0.9
    lut[6] = (15, 15, 15)
    lut[8] = (235, 235, 225)
    lut[7] = (95, 65, 35)
    # Gentle shading of the bird: lit from above, darker towards the belly.
    shade = np.ones((n, n), dtype=np.float32)
    shade[r0:r1, c0:c1] = np.where(win > 0, 1.04 - 0.12 * np.clip(y / 0.25, -1, 1), 1.0)
    if bird["perch"]:
        grain = 0.85 + 0.3 * _smooth_noise(rng, n, n, 24)
        shade = np.where(paint == 7, grain, shade)
    img = np.where((paint > 0)[..., None], lut[paint] * shade[..., None], bg)
    img = img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    image = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    mask = _MASK_OF_PAINT[paint[ss // 2::ss, ss // 2::ss]]
    return image, mask


def bounding_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """CUB-style box ``(x, y, width, height)`` of the bird (mask labels 1..6)."""
    bird = (mask >= 1) & (mask <= 6)
    if not bird.any():
        h, w = mask.shape
        return 0.0, 0.0, float(w), float(h)
    rows = np.flatnonzero(bird.any(axis=1))
    cols = np.flatnonzero(bird.any(axis=0))
    x0, y0 = cols[0], rows[0]
    return float(x0), float(y0), float(cols[-1] - x0 + 1), float(rows[-1] - y0 + 1)


# --------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------

SIZE_WORDS = {
    "small": ("small", "tiny", "little"),
    "medium": ("medium sized", "average sized"),
    "large": ("large", "big"),
}

# Noun phrases used inside a list ("a red crown, blue wings and ...").
_PHRASES = {
    "crown": ("a {c} crown", "a {c} head"),
    "wing": ("{c} wings", "{c} wing feathers"),
    "belly": ("a {c} belly", "a {c} breast"),
    "tail": ("a {c} tail", "{c} tail feathers"),
    "beak": ("a {c} beak", "a {c} bill"),
}
# Closing clauses (", and its wings are blue").
_CLAUSES = {
    "crown": ("its crown is {c}", "its head is {c}"),
    "wing": ("its wings are {c}",),
    "belly": ("its belly is {c}", "its breast is {c}"),
    "tail": ("its tail is {c}",),
    "beak": ("its beak is {c}", "its bill is {c}"),
}
# Adjective forms placed before "bird" ("a red crowned bird with ...").
_ADJECTIVES = {"crown": ("{c} crowned", "{c} headed")}
_OPENINGS_SIZED = ("this {s} bird has", "a {s} bird with", "this is a {s} bird with",
                   "the {s} bird has", "a {s} bird that has")
_OPENINGS = ("this bird has", "a bird with", "this is a bird with", "the bird has",
             "a bird that has")
_OPENINGS_ADJ = ("this {s} {a} bird has", "a {s} {a} bird with", "this {a} bird has",
                 "a {a} bird with")
_SIZE_TAILS = ("it is {s}",)

#: Words that name a part (synonyms included), used by :func:`parse_caption`.
PART_WORDS = {
    "crown": "crown", "head": "crown", "crowned": "crown", "headed": "crown",
    "wing": "wing", "wings": "wing",
    "belly": "belly", "breast": "belly",
    "tail": "tail",
    "beak": "beak", "bill": "beak",
}
_BOUNDARIES = {"and", "with", "has"}
_VOWEL_ARTICLE = re.compile(r"\ba (?=[aeiou])")  # "a orange crown" -> "an orange crown"


def _join(items: list[str], rng: np.random.Generator, oxford: bool = True) -> str:
    if len(items) == 1:
        return items[0]
    sep = ", and " if (oxford and len(items) > 2 and rng.random() < 0.3) else " and "
    return ", ".join(items[:-1]) + sep + items[-1]


def _one_caption(bird: dict, rng: np.random.Generator) -> str:
    k = int(rng.integers(2, len(PARTS) + 1))
    parts = [PARTS[i] for i in rng.permutation(len(PARTS))[:k]]
    size = _pick(rng, SIZE_WORDS[bird["size"]])
    size_mode = _pick(rng, ("front", "front", "tail", "none"))

    adjective = None
    if parts[0] in _ADJECTIVES and rng.random() < 0.35:
        adjective = _pick(rng, _ADJECTIVES[parts[0]]).format(c=bird[parts[0]])
        parts = parts[1:]
    clause = None
    if len(parts) >= 2 and rng.random() < 0.3:
        p = parts.pop()
        clause = _pick(rng, _CLAUSES[p]).format(c=bird[p])

    if adjective is not None:
        opening = _pick(rng, _OPENINGS_ADJ if size_mode == "front" else _OPENINGS_ADJ[2:])
        opening = opening.format(s=size, a=adjective)
    elif size_mode == "front":
        opening = _pick(rng, _OPENINGS_SIZED).format(s=size)
    else:
        opening = _pick(rng, _OPENINGS)
    items = [_pick(rng, _PHRASES[p]).format(c=bird[p]) for p in parts]
    text = opening + " " + _join(items, rng, oxford=clause is None)
    if clause is not None:
        text += ", and " + clause
    if size_mode == "tail":
        text += ", " + _pick(rng, _SIZE_TAILS).format(s=size)
    return _VOWEL_ARTICLE.sub("an ", text)


def make_captions(bird: dict, rng: np.random.Generator, n: int = CAPTIONS_PER_IMAGE) -> list[str]:
    """Describe a bird in ``n`` captions.

    Each caption mentions between 2 and 5 of the bird's part colours (always at
    least 2), in a random order and with random synonyms (crown/head,
    wings/wing feathers, belly/breast, beak/bill), and often its size.
    Captions are lower-case, with words and commas only.

    Args:
        bird: a dict from :func:`sample_bird` (only part colours and size are read).
        rng: numpy random generator.
        n: number of captions.

    Returns:
        ``n`` strings, distinct whenever the grammar allows.
    """
    out: list[str] = []
    for _ in range(n):
        attempt = 0
        while True:  # resample overlong captions; avoid repeats for a while
            cap = _one_caption(bird, rng)
            attempt += 1
            if len(cap.split()) <= MAX_CAPTION_WORDS and (cap not in out or attempt > 20):
                break
        out.append(cap)
    return out


def _words(text: str) -> list[str]:
    return text.lower().replace(",", " , ").split()


def parse_caption(text: str) -> dict[str, str]:
    """Read the part colours a caption mentions (inverse of :func:`make_captions`).

    The caption is cut into phrases at commas and at "and", "with", "has";
    a phrase holding one colour word and one part word (synonyms included)
    gives one attribute.

    Args:
        text: a caption.

    Returns:
        ``{part: colour}`` for every colour attribute the caption mentions.
    """
    found: dict[str, str] = {}
    colour = part = None
    for word in _words(text) + [","]:
        if word == "," or word in _BOUNDARIES:
            if colour is not None and part is not None:
                found[part] = colour
            colour = part = None
        elif word in PALETTE:
            colour = word
        elif word in PART_WORDS:
            part = PART_WORDS[word]
    return found


def vocabulary() -> list[str]:
    """Every word the caption grammar can produce, sorted."""
    fragments = [*_OPENINGS_SIZED, *_OPENINGS, *_OPENINGS_ADJ, *_SIZE_TAILS, "and"]
    for table in (_PHRASES, _CLAUSES, _ADJECTIVES, SIZE_WORDS):
        for options in table.values():
            fragments.extend(options)
    words = set(COLOURS) | {"an"}
    for frag in fragments:
        for w in frag.replace(",", " ").split():
            if not w.startswith("{"):
                words.add(w)
    return sorted(words)


# --------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------

def species_of_image(i: int, n: int) -> int:
    """Species of image ``i`` of ``n``: images spread evenly over the 200 species."""
    return (i * NUM_SPECIES) // n


def _jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


def _png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def generate(out_dir, n: int = 6000, size: int = 64, seed: int = 0,
             verbose: bool = True) -> pathlib.Path:
    """Write a SynthBirds dataset in the CUB / AttnGAN layout.

    Layout (``out_dir/``)::

        CUB_200_2011/images/<class_dir>/<img>.jpg   JPEG quality 95
        CUB_200_2011/images.txt                     "<id> <class_dir>/<img>.jpg"
        CUB_200_2011/bounding_boxes.txt             "<id> x y w h" (bird box)
        CUB_200_2011/image_class_labels.txt         "<id> <class 1..200>"
        CUB_200_2011/classes.txt                    "<class> <class_dir>"
        text/<class_dir>/<img>.txt                  10 captions, one per line
        train/filenames.pickle, test/filenames.pickle      "<class_dir>/<img>"
        train/class_info.pickle, test/class_info.pickle    1-based class ids
        attributes.json                             ground truth per image
        masks/<class_dir>/<img>.png                 part masks (see render)
        synthbirds.json                             generation parameters

    Args:
        out_dir: destination folder (created; existing files are overwritten).
        n: number of images, spread evenly over the 200 species (classes
            1..150 train, 151..200 test).
        size: image side in pixels.
        seed: random seed; the same seed gives the same bytes.
        verbose: print a progress line and a summary.

    Returns:
        The path of ``out_dir``.
    """
    n, size = int(n), int(size)
    if n <= 0:
        raise ValueError(f"n must be a positive number of images, got {n}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    out = pathlib.Path(out_dir)
    cub = out / "CUB_200_2011"
    start = time.perf_counter()
    per_class: dict[int, int] = {}
    images_txt, boxes_txt, labels_txt = [], [], []
    attributes: dict[str, dict] = {}
    splits: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    made_dirs: set[str] = set()
    for i in range(n):
        sid = species_of_image(i, n)
        cdir = class_dir(sid)
        per_class[sid] = per_class.get(sid, 0) + 1
        stem = f"{cdir.split('.', 1)[1]}_{per_class[sid]:04d}_{i + 1}"
        key = f"{cdir}/{stem}"
        rng = np.random.default_rng([int(seed), i])
        bird = sample_bird(sid, rng)
        image, mask = render(bird, size)
        captions = make_captions(bird, rng)
        if cdir not in made_dirs:
            for top in (cub / "images", out / "text", out / "masks"):
                (top / cdir).mkdir(parents=True, exist_ok=True)
            made_dirs.add(cdir)
        (cub / "images" / f"{key}.jpg").write_bytes(_jpeg_bytes(image))
        (out / "masks" / f"{key}.png").write_bytes(_png_bytes(mask))
        (out / "text" / f"{key}.txt").write_text("\n".join(captions) + "\n")
        x, y, w, h = bounding_box(mask)
        images_txt.append(f"{i + 1} {key}.jpg")
        boxes_txt.append(f"{i + 1} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
        labels_txt.append(f"{i + 1} {sid + 1}")
        attributes[key] = attributes_of(bird)
        split = "train" if sid < NUM_TRAIN_CLASSES else "test"
        splits[split][0].append(key)
        splits[split][1].append(sid + 1)
        if verbose and (i + 1) % 1000 == 0:
            print(f"  synthbirds: {i + 1}/{n} images", flush=True)
    cub.mkdir(parents=True, exist_ok=True)
    (cub / "images.txt").write_text("\n".join(images_txt) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes_txt) + "\n")
    (cub / "image_class_labels.txt").write_text("\n".join(labels_txt) + "\n")
    (cub / "classes.txt").write_text(
        "".join(f"{k + 1} {class_dir(k)}\n" for k in range(NUM_SPECIES)))
    for split, (names, classes) in splits.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        with open(out / split / "filenames.pickle", "wb") as f:
            pickle.dump(names, f, protocol=2)
        with open(out / split / "class_info.pickle", "wb") as f:
            pickle.dump(classes, f, protocol=2)
    (out / "attributes.json").write_text(json.dumps(attributes, indent=0, sort_keys=True))
    meta = {"dataset": "synthbirds", "version": VERSION, "n": n, "size": size,
            "seed": int(seed), "num_train": len(splits["train"][0]),
            "num_test": len(splits["test"][0])}
    (out / "synthbirds.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if verbose:
        print(f"synthbirds: wrote {n} images of {size}x{size} px to {out} "
              f"({len(splits['train'][0])} train / {len(splits['test'][0])} test) "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
    return out
