"""SynthStreets: a procedural, Cityscapes-like label-map-to-image dataset.

Every scene is a street seen from a car (a pinhole camera over a flat ground
plane, one vanishing point): road with lane markings, sidewalks, an optional
grass strip, building facades with windows (some stretches are walls or
hedges), the sky, a far cross-street of buildings, and objects in front:
cars driving in the lanes, rows of parked cars touching one another,
pedestrians walking side by side, poles with traffic signs or lights, and
street trees. Objects are painted far to near, so nearer ones occlude.

Each scene comes as three maps of the same size, in the Cityscapes formats:

* ``label``: Cityscapes label ids (:data:`LABELS`, the official ``labelIds``:
  7 road, 8 sidewalk, 11 building, 12 wall, 17 pole, 19 traffic light,
  20 traffic sign, 21 vegetation, 22 terrain, 23 sky, 24 person, 26 car);
* ``instance``: Cityscapes ``instanceIds``: ``label_id * 1000 + k`` for the
  k-th car / person of the scene (classes with ``has_instances``), the label
  id elsewhere. Parked cars and walking groups give adjacent instances of
  one class, whose shared boundary only the instance map shows;
* ``image``: the rendered photo (textures from value noise, facade windows,
  lane and tile lines, per-object colours, side lighting, shading of car
  bodies, haze with distance, sensor noise).

Layout of this module: :data:`LABELS` (the Cityscapes table), :func:`sample_scene`
(all randomness), :func:`render` (vectorised numpy, a pure function of the
scene), :func:`generate` (writes the Cityscapes folder layout that
:class:`ganlib.data.cityscapes.StreetsDataset` reads; see
``datasets/cards/synthstreets.md``). Everything is deterministic: scene ``i``
is a function of ``(seed, i)``.
"""

from __future__ import annotations

import io
import json
import pathlib
import time
from typing import NamedTuple

import numpy as np
from PIL import Image

from ganlib.data.synthbirds import _smooth_noise

VERSION = 1


class Label(NamedTuple):
    """One row of the Cityscapes label table (``cityscapesscripts/helpers/labels.py``)."""

    id: int
    name: str
    train_id: int          # 255: ignored in evaluation
    category: str
    has_instances: bool
    ignore_in_eval: bool
    colour: tuple


#: The official Cityscapes labels 0..33 (``license plate``, id -1, never appears
#: in a ``labelIds`` file and is left out).
LABELS = (
    Label(0, "unlabeled", 255, "void", False, True, (0, 0, 0)),
    Label(1, "ego vehicle", 255, "void", False, True, (0, 0, 0)),
    Label(2, "rectification border", 255, "void", False, True, (0, 0, 0)),
    Label(3, "out of roi", 255, "void", False, True, (0, 0, 0)),
    Label(4, "static", 255, "void", False, True, (0, 0, 0)),
    Label(5, "dynamic", 255, "void", False, True, (111, 74, 0)),
    Label(6, "ground", 255, "void", False, True, (81, 0, 81)),
    Label(7, "road", 0, "flat", False, False, (128, 64, 128)),
    Label(8, "sidewalk", 1, "flat", False, False, (244, 35, 232)),
    Label(9, "parking", 255, "flat", False, True, (250, 170, 160)),
    Label(10, "rail track", 255, "flat", False, True, (230, 150, 140)),
    Label(11, "building", 2, "construction", False, False, (70, 70, 70)),
    Label(12, "wall", 3, "construction", False, False, (102, 102, 156)),
    Label(13, "fence", 4, "construction", False, False, (190, 153, 153)),
    Label(14, "guard rail", 255, "construction", False, True, (180, 165, 180)),
    Label(15, "bridge", 255, "construction", False, True, (150, 100, 100)),
    Label(16, "tunnel", 255, "construction", False, True, (150, 120, 90)),
    Label(17, "pole", 5, "object", False, False, (153, 153, 153)),
    Label(18, "polegroup", 255, "object", False, True, (153, 153, 153)),
    Label(19, "traffic light", 6, "object", False, False, (250, 170, 30)),
    Label(20, "traffic sign", 7, "object", False, False, (220, 220, 0)),
    Label(21, "vegetation", 8, "nature", False, False, (107, 142, 35)),
    Label(22, "terrain", 9, "nature", False, False, (152, 251, 152)),
    Label(23, "sky", 10, "sky", False, False, (70, 130, 180)),
    Label(24, "person", 11, "human", True, False, (220, 20, 60)),
    Label(25, "rider", 12, "human", True, False, (255, 0, 0)),
    Label(26, "car", 13, "vehicle", True, False, (0, 0, 142)),
    Label(27, "truck", 14, "vehicle", True, False, (0, 0, 70)),
    Label(28, "bus", 15, "vehicle", True, False, (0, 60, 100)),
    Label(29, "caravan", 255, "vehicle", True, True, (0, 0, 90)),
    Label(30, "trailer", 255, "vehicle", True, True, (0, 0, 110)),
    Label(31, "train", 16, "vehicle", True, False, (0, 80, 100)),
    Label(32, "motorcycle", 17, "vehicle", True, False, (0, 0, 230)),
    Label(33, "bicycle", 18, "vehicle", True, False, (119, 11, 32)),
)
NUM_LABEL_IDS = len(LABELS)  # 34: ids 0..33
ID = {lab.name: lab.id for lab in LABELS}
#: label id -> train id (255 = ignored), as a lookup array of 256 entries
TRAIN_ID = np.full(256, 255, dtype=np.uint8)
TRAIN_ID[:NUM_LABEL_IDS] = [lab.train_id for lab in LABELS]
#: label id -> colour of the Cityscapes colour maps
COLOURS = np.array([lab.colour for lab in LABELS], dtype=np.uint8)
#: label ids SynthStreets draws
USED_IDS = tuple(ID[n] for n in ("road", "sidewalk", "building", "wall", "pole", "traffic light",
                                 "traffic sign", "vegetation", "terrain", "sky", "person", "car"))

TRAIN_CITIES = ("ashford", "bramley", "corwen", "dunmore", "elgin")
TEST_CITIES = ("fenwick", "garton")
MAX_SIZE = (2048, 1024)

_CAR_COLOURS = np.float32([[225, 225, 222], [175, 178, 182], [30, 30, 34], [150, 25, 25],
                           [30, 55, 120], [85, 88, 92], [200, 170, 40], [40, 90, 60],
                           [120, 30, 60], [210, 210, 200]])
_FACADES = np.float32([[200, 185, 160], [160, 85, 65], [150, 150, 150], [225, 215, 190],
                       [130, 100, 80], [185, 170, 150], [110, 115, 125], [205, 160, 120]])
_CLOTHES = np.float32([[35, 40, 60], [140, 30, 35], [220, 220, 215], [60, 90, 50], [95, 70, 45],
                       [40, 40, 40], [200, 150, 40], [70, 110, 170], [150, 150, 155]])
_SKIN = np.float32([[235, 195, 165], [200, 150, 110], [140, 95, 65], [95, 65, 45]])


# --------------------------------------------------------------------------
# Scene sampling
# --------------------------------------------------------------------------

def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _segments(rng, zfar):
    """Facade stretches along one side: ``(z_end, kind, height, colour, window spacing)``."""
    out, z = [], 0.0
    while z < zfar:
        z += _u(rng, 2.5, 9.0)
        r = rng.random()
        kind = "building" if r < 0.7 else "vegetation" if r < 0.85 else "wall"
        height = {"building": _u(rng, 4.0, 14.0), "vegetation": _u(rng, 2.0, 5.0),
                  "wall": _u(rng, 0.6, 1.3)}[kind]
        out.append((min(z, zfar), kind, height, int(rng.integers(len(_FACADES))), _u(rng, 1.4, 2.4)))
    return out


def sample_scene(rng: np.random.Generator) -> dict:
    """Draw a street scene: geometry, facades, objects and lighting.

    Units are camera heights (the camera is 1 unit above a flat ground, focal
    length 1 image height); ``X`` is the lateral position, ``Z`` the depth.

    Returns:
        A dict; :func:`render` is a pure function of it.
    """
    road = _u(rng, 2.2, 3.2)
    walk = _u(rng, 0.9, 1.6)
    grass = _u(rng, 0.4, 1.4) if rng.random() < 0.35 else 0.0
    zfar = _u(rng, 25.0, 45.0)
    scene = dict(horizon=_u(rng, 0.40, 0.48), vx=_u(rng, 0.44, 0.56), road=road, walk=walk,
                 grass=grass, facade=road + walk + grass, zfar=zfar,
                 far=(_u(rng, 5.0, 12.0), int(rng.integers(len(_FACADES))), _u(rng, 1.4, 2.4)),
                 sides={s: _segments(rng, zfar) for s in (-1, 1)},
                 road_grey=_u(rng, 65, 105), walk_grey=_u(rng, 145, 190),
                 light=_u(rng, 0.8, 1.15), sun=(_u(rng, 0.8, 1.1), _u(rng, 0.8, 1.1)),
                 tint=[_u(rng, 0.94, 1.06) for _ in range(3)], haze=_u(rng, 40.0, 90.0),
                 clouds=_u(rng, 0.3, 0.75), texture_seed=int(rng.integers(0, 2**31 - 1)))
    objects = []
    for _ in range(int(rng.integers(0, 4))):  # cars driving in the lanes
        lane = float(rng.choice([-0.5, 0.5])) * road
        objects.append(dict(kind="car", X=lane + _u(rng, -0.2, 0.2), Z=_u(rng, 4.0, 0.7 * zfar),
                            length=_u(rng, 2.6, 3.2), colour=int(rng.integers(len(_CAR_COLOURS)))))
    for side in (-1, 1):  # rows of parked cars, bumper to bumper
        if rng.random() < 0.75:
            z = _u(rng, 2.5, 10.0)
            for _ in range(int(rng.integers(2, 5))):
                length = _u(rng, 2.6, 3.2)
                objects.append(dict(kind="car", X=side * (road - 0.75), Z=z, length=length,
                                    colour=int(rng.integers(len(_CAR_COLOURS)))))
                z += length + _u(rng, 0.0, 0.5)
    for _ in range(int(rng.integers(1, 5))):  # pedestrians, alone or side by side
        side = int(rng.choice([-1, 1]))
        x0, z = side * (road + _u(rng, 0.3, max(0.35, walk - 0.4))), _u(rng, 2.5, 18.0)
        for k in range(int(rng.integers(1, 4))):
            objects.append(dict(kind="person", X=x0 - side * 0.32 * k, Z=z + _u(rng, -0.05, 0.05),
                                height=_u(rng, 1.0, 1.25), phase=_u(rng, -1, 1),
                                shirt=int(rng.integers(len(_CLOTHES))),
                                trousers=int(rng.integers(len(_CLOTHES))),
                                skin=int(rng.integers(len(_SKIN)))))
    for _ in range(int(rng.integers(1, 5))):  # poles with a sign or a traffic light
        side = int(rng.choice([-1, 1]))
        top = "sign" if rng.random() < 0.6 else "light" if rng.random() < 0.6 else "none"
        objects.append(dict(kind="pole", X=side * (road + walk - 0.2), Z=_u(rng, 3.0, 0.8 * zfar),
                            height=_u(rng, 2.6, 3.6), top=top, round=bool(rng.random() < 0.5)))
    for _ in range(int(rng.integers(0, 3))):  # street trees
        side = int(rng.choice([-1, 1]))
        objects.append(dict(kind="tree", X=side * (road + walk - 0.3), Z=_u(rng, 4.0, 0.8 * zfar),
                            crown=_u(rng, 0.8, 1.5), height=_u(rng, 2.5, 3.5)))
    objects.sort(key=lambda o: -o["Z"])  # painted far to near
    scene["objects"] = objects
    return scene


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

class _Canvas:
    """The maps being painted, and the pixel grid in scene units."""

    def __init__(self, width, height, scene):
        self.w, self.h = width, height
        self.xs = ((np.arange(width) + 0.5) / height - scene["vx"] * width / height).astype(np.float32)
        self.ys = ((np.arange(height) + 0.5) / height - scene["horizon"]).astype(np.float32)
        self.label = np.full((height, width), ID["sky"], dtype=np.uint8)
        self.instance = np.zeros((height, width), dtype=np.int32)
        self.image = np.zeros((3, height, width), dtype=np.float32)   # channels first: fast
        self.depth = np.full((height, width), np.inf, dtype=np.float32)

    def window(self, x0, x1, y0, y1):
        """Pixel slices covering scene-unit box ``[x0, x1] x [y0, y1]`` (relative to
        the vanishing point), at least one pixel wide; None when off the image."""
        c0, c1 = np.searchsorted(self.xs, [x0, x1])
        r0, r1 = np.searchsorted(self.ys, [y0, y1])
        if c1 <= c0 and 0 < c0 < self.w:
            c0, c1 = c0 - 1, c0
        if r1 <= r0 and 0 < r0 < self.h:
            r0, r1 = r0 - 1, r0
        if c1 <= c0 or r1 <= r0:
            return None
        return slice(r0, r1), slice(c0, c1)

    def grid(self, win):
        """Full ``(x, y)`` coordinate arrays of a window."""
        return np.meshgrid(self.xs[win[1]], self.ys[win[0]])

    def paint(self, win, mask, label, instance, colour, z):
        rows, cols = win
        self.label[rows, cols][mask] = label
        self.instance[rows, cols][mask] = instance
        self.image[:, rows, cols][:, mask] = colour[mask].T if colour.ndim == 3 else np.asarray(colour)[:, None]
        self.depth[rows, cols][mask] = z


def _rgb(r, g, b):
    """A colour shaped (3, 1, 1), to broadcast over channel-first images."""
    return np.array([r, g, b], dtype=np.float32).reshape(3, 1, 1)


def _frac(a):
    """Fractional part (faster than ``a % 1.0``); inf and nan give nan."""
    with np.errstate(invalid="ignore"):
        return a - np.floor(a)


def _stuff(c: _Canvas, scene, noise, fine):
    """Ground, facades, far buildings and sky over the whole image."""
    x, y = c.xs[None, :], c.ys[:, None]
    ax = np.abs(x) + 1e-6
    B, zfar = scene["facade"], scene["zfar"]
    zcol = np.minimum(B / ax, zfar)                       # depth of the facade seen in each column
    ground = y > 0
    zg = np.broadcast_to(np.where(ground, 1.0 / np.maximum(y, 1e-6), np.inf), (c.h, c.w))
    with np.errstate(invalid="ignore"):
        X = x * zg                                        # lateral position on the ground
    onground = ground & (zg < zcol)                       # in front of the facades
    # facades: along-street stretches per side, and the far cross-street
    side = np.where(x >= 0, 1, -1)[0]
    kind = np.zeros(c.w, dtype=np.int8)                   # 0 building, 1 vegetation, 2 wall
    height = np.zeros(c.w, dtype=np.float32)
    colour = np.zeros((c.w, 3), dtype=np.float32)
    spacing = np.zeros(c.w, dtype=np.float32)
    kinds = {"building": 0, "vegetation": 1, "wall": 2}
    for s in (-1, 1):
        seg = scene["sides"][s]
        ends = np.array([e[0] for e in seg])
        cols = np.flatnonzero((side == s) & (zcol[0] < zfar))
        k = np.minimum(np.searchsorted(ends, zcol[0, cols]), len(seg) - 1)
        kind[cols] = [kinds[seg[j][1]] for j in k]
        height[cols] = [seg[j][2] for j in k]
        colour[cols] = _FACADES[[seg[j][3] for j in k]] * scene["sun"][(s + 1) // 2]
        spacing[cols] = [seg[j][4] for j in k]
    far = zcol[0] >= zfar
    kind[far], height[far] = 0, scene["far"][0]
    colour[far], spacing[far] = _FACADES[scene["far"][1]], scene["far"][2]
    # tree lines get an irregular top
    top_h = height[None, :] * np.where(kind == 1, 0.8 + 0.4 * noise[0], 1.0)[None, :]
    hwall = 1.0 - y * zcol                                # height above ground on the facade
    facade = ~onground & (hwall <= top_h) & (hwall >= 0)
    # labels
    absx = np.abs(X)
    walk_edge = scene["road"] + scene["walk"]
    ground_id = np.where(absx < scene["road"], ID["road"],
                         np.where(absx < walk_edge, ID["sidewalk"], ID["terrain"]))
    kind_id = np.array([ID["building"], ID["vegetation"], ID["wall"]], dtype=np.uint8)
    lab = np.where(onground, ground_id, np.where(facade, kind_id[kind][None, :], ID["sky"])).astype(np.uint8)
    c.label[:] = lab
    c.instance[:] = lab
    c.depth[:] = np.where(onground, zg, np.where(facade, zcol, np.inf))
    # textures: a base colour per pixel times a tone, then the details
    f32 = np.float32
    lut = np.zeros((256, 3), f32)
    lut[ID["road"]] = scene["road_grey"] * f32([1.0, 1.0, 1.03])
    lut[ID["sidewalk"]] = scene["walk_grey"] * f32([1.0, 0.97, 0.92])
    lut[ID["terrain"]], lut[ID["vegetation"]] = (95, 130, 55), (60, 105, 40)
    lut[ID["wall"]] = (150, 145, 135)
    bld = lab == ID["building"]
    base = np.where(bld, colour.T[:, None, :], lut.T[:, lab])                      # (3, H, W)
    zz = np.where(onground, zg, f32(1.0))
    tone = f32(0.9) + f32(0.2) * fine
    tiles = (_frac(absx * 1.5) < 0.07) | (_frac(zz * 1.5) < 0.07)
    curb = absx < scene["road"] + 0.12
    walk = lab == ID["sidewalk"]
    tone *= np.where(walk & tiles & (zz < 12), f32(0.82), f32(1.0))
    tone *= np.where(walk & curb, f32(1.12), f32(1.0))
    tone *= np.where(lab == ID["terrain"], f32(0.7) + f32(0.5) * noise, f32(1.0))
    tone = np.where(lab == ID["vegetation"], f32(0.5) + f32(0.7) * fine * noise + f32(0.2) * fine, tone)
    tone *= np.where((lab == ID["wall"]) & (hwall > top_h - 0.1), f32(1.15), f32(1.0))
    tone *= np.where(bld & (hwall < 0.9), f32(0.6), f32(1.0))
    img = base * tone
    marks = (lab == ID["road"]) & (((absx < 0.05) & (_frac(zz / 3.0) < 0.5))
                                   | (np.abs(absx - scene["road"] + 0.12) < 0.04))
    img = np.where(marks, _rgb(215, 215, 205) * (f32(0.9) + f32(0.2) * fine), img)
    v = np.clip((c.ys + scene["horizon"])[:, None], 0, 1)
    along = np.where(far[None, :], x * zfar, zcol) / spacing[None, :]   # facade coordinate
    wy, wx = _frac(hwall / 2.2), _frac(along)
    glass = bld & (hwall > 1.6) & (wy > 0.35) & (wy < 0.8) & (wx > 0.2) & (wx < 0.75)
    img = np.where(glass, _rgb(45, 55, 70) + f32(60) * v * fine, img)
    sky = _rgb(70, 130, 205) * (1 - v) + _rgb(195, 212, 232) * v
    cloud = np.clip((noise - (1 - scene["clouds"])) * 2.5, 0, 1) * (f32(0.7) + f32(0.3) * fine)
    sky = sky * (1 - cloud) + f32(240) * cloud
    c.image[:] = np.where(lab == ID["sky"], sky, img)


def _car(c: _Canvas, o, instance):
    X, Z, L, w, hc = o["X"], o["Z"], o["length"], 1.25, 1.0
    s = 1.0 if X >= 0 else -1.0
    near = X - s * w / 2                                  # the side facing the street centre
    show_side = abs(X) > w / 2
    x0 = min((X - w / 2) / Z, near / (Z + L) if show_side else np.inf)
    x1 = max((X + w / 2) / Z, near / (Z + L) if show_side else -np.inf)
    win = c.window(x0, x1, -hc / Z, 1.0 / Z)
    if win is None:
        return
    x, y = c.grid(win)
    # rear face: body up to 0.55, cabin narrower above; u across (-0.5..0.5), t up (0..1)
    u, t = (x * Z - X) / w, (1.0 - y * Z) / hc
    rear = (t >= 0) & (t <= 1) & (np.abs(u) <= np.where(t < 0.55, 0.5, 0.5 - 0.25 * (t - 0.55)))
    colour = np.empty(rear.shape + (3,), np.float32)
    body = _CAR_COLOURS[o["colour"]]
    shade = (0.75 + 0.35 * np.clip(t, 0, 1))[..., None]
    colour[:] = body * shade
    rglass = rear & (t > 0.62) & (t < 0.93) & (np.abs(u) < 0.4 - 0.25 * (t - 0.55))
    colour[rglass] = (40, 45, 55)
    lamps = rear & (t > 0.35) & (t < 0.45) & (np.abs(u) > 0.36)
    colour[lamps] = (200, 30, 25)
    wheels = rear & (t < 0.18) & (np.abs(u) > 0.3)
    colour[wheels] = (20, 20, 20)
    mask = rear
    if show_side:
        zs = near / np.where(np.abs(x) > 1e-6, x, 1e-6)  # depth of the side plane per column
        a = (zs - Z) / L                                  # 0 rear .. 1 front
        ts = (1.0 - y * zs) / hc
        cabin = (a > 0.1) & (a < 0.75)
        side = (zs > 0) & (a >= 0) & (a <= 1) & (ts >= 0) & (ts <= np.where(cabin, 1.0, 0.55))
        side &= ~rear
        colour[side] = (body * 0.8 * (0.75 + 0.35 * np.clip(ts, 0, 1))[..., None])[side]
        sglass = side & cabin & (ts > 0.6) & (ts < 0.92) & (a > 0.15) & (a < 0.7)
        colour[sglass] = (45, 50, 62)
        wheel = side & (ts < 0.3) & ((np.abs(a - 0.17) < 0.07) | (np.abs(a - 0.83) < 0.07))
        colour[wheel] = (18, 18, 18)
        mask = rear | side
    c.paint(win, mask, ID["car"], ID["car"] * 1000 + instance, colour, Z)


def _person(c: _Canvas, o, instance):
    X, Z, hp, wp = o["X"], o["Z"], o["height"], 0.38
    win = c.window((X - wp / 2) / Z, (X + wp / 2) / Z, (1.0 - hp) / Z, 1.0 / Z)
    if win is None:
        return
    x, y = c.grid(win)
    u, t = (x * Z - X) / wp, (1.0 - y * Z) / hp
    stride = 0.1 * o["phase"] * (0.48 - np.clip(t, 0, 0.48)) / 0.48
    legs = (t >= 0) & (t < 0.5) & ((np.abs(u - 0.14 - stride) < 0.11) | (np.abs(u + 0.14 + stride) < 0.11))
    torso = (t >= 0.46) & (t < 0.83) & (np.abs(u) < 0.36 - 0.1 * (0.83 - t))
    arms = (t > 0.5) & (t < 0.81) & (np.abs(u) >= 0.3) & (np.abs(u) < 0.47)
    head = (u / 0.2) ** 2 + ((t - 0.91) / 0.085) ** 2 <= 1.0
    colour = np.empty(u.shape + (3,), np.float32)
    colour[:] = _CLOTHES[o["trousers"]]
    colour[torso | arms] = _CLOTHES[o["shirt"]]
    colour[head] = _SKIN[o["skin"]]
    colour[head & (t > 0.95)] = (50, 35, 25)
    colour *= (0.8 + 0.3 * np.clip(t, 0, 1))[..., None]
    c.paint(win, legs | torso | arms | head, ID["person"], ID["person"] * 1000 + instance, colour, Z)


def _pole(c: _Canvas, o):
    X, Z, hp = o["X"], o["Z"], o["height"]
    win = c.window((X - 0.35) / Z, (X + 0.35) / Z, (1.0 - hp - 0.3) / Z, 1.0 / Z)
    if win is None:
        return
    x, y = c.grid(win)
    u, t = x * Z - X, 1.0 - y * Z
    half = max(0.04, 0.5 * Z / c.h)                          # at least one pixel wide
    pole = (np.abs(u) <= half) & (t >= 0) & (t <= hp)
    colour = np.empty(u.shape + (3,), np.float32)
    colour[:] = np.float32([120, 122, 125]) * (0.85 + 0.25 * (u > 0))[..., None]
    c.paint(win, pole, ID["pole"], ID["pole"], colour, Z)
    toward = -np.sign(X) * 0.15                              # the sign hangs towards the street
    if o["top"] == "sign":
        uc, tc = u - toward, t - (hp - 0.2)
        sign = (uc ** 2 + tc ** 2 <= 0.2 ** 2) if o["round"] else ((np.abs(uc) < 0.2) & (np.abs(tc) < 0.15))
        colour[:] = (30, 70, 160) if o["round"] else (215, 215, 215)
        colour[sign & ((uc ** 2 + tc ** 2 > 0.15 ** 2) if o["round"] else
                       ((np.abs(uc) > 0.16) | (np.abs(tc) > 0.11)))] = (200, 30, 30)
        c.paint(win, sign, ID["traffic sign"], ID["traffic sign"], colour, Z - 0.01)
    elif o["top"] == "light":
        uc, tc = u - toward, t - (hp - 0.3)
        box = (np.abs(uc) < 0.09) & (np.abs(tc) < 0.25)
        colour[:] = (35, 35, 30)
        for k, lamp in enumerate(((220, 40, 30), (230, 170, 30), (40, 200, 80))):
            colour[(uc ** 2 + (tc - 0.15 + 0.15 * k) ** 2) < 0.06 ** 2] = lamp
        c.paint(win, box, ID["traffic light"], ID["traffic light"], colour, Z - 0.01)


def _tree(c: _Canvas, o, rng):
    X, Z, r, hc = o["X"], o["Z"], o["crown"], o["height"]
    win = c.window((X - r) / Z, (X + r) / Z, (1.0 - hc - r) / Z, 1.0 / Z)
    if win is None:
        return
    x, y = c.grid(win)
    u, t = x * Z - X, 1.0 - y * Z
    leaf = _smooth_noise(rng, u.shape[0], u.shape[1], 6)
    crown = (u / r) ** 2 + ((t - hc) / (0.8 * r)) ** 2 <= 0.75 + 0.45 * leaf
    trunk = (np.abs(u) < 0.07) & (t >= 0) & (t < hc)
    colour = np.empty(crown.shape + (3,), np.float32)
    colour[:] = np.float32([55, 100, 35])[None, None] * (0.55 + 0.8 * leaf)[..., None]
    colour[trunk & ~crown] = (85, 65, 45)
    c.paint(win, crown | trunk, ID["vegetation"], ID["vegetation"], colour, Z)


def render(scene: dict, width: int = 256, height: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a street scene.

    Args:
        scene: a dict from :func:`sample_scene`.
        width, height: image size in pixels, from 16x8 up to 2048x1024.

    Returns:
        ``(image, label, instance)``: uint8 ``(H, W, 3)``; uint8 ``(H, W)``
        Cityscapes label ids; int32 ``(H, W)`` Cityscapes instance ids.
    """
    width, height = _check_size(width, height)
    rng = np.random.default_rng(scene["texture_seed"])
    c = _Canvas(width, height, scene)
    noise = _smooth_noise(rng, height, width, 6)
    fine = _smooth_noise(rng, height, width, max(8, width // 6))
    _stuff(c, scene, noise, fine)
    count = {"car": 0, "person": 0}
    for o in scene["objects"]:
        if o["kind"] in count:
            (_car if o["kind"] == "car" else _person)(c, o, count[o["kind"]])
            count[o["kind"]] += 1
        elif o["kind"] == "pole":
            _pole(c, o)
        else:
            _tree(c, o, rng)
    # haze towards the horizon sky colour, lighting, sensor noise, a slight blur
    f32 = np.float32
    fog = 1 - np.exp(-np.where(np.isfinite(c.depth), c.depth, f32(0)) / f32(scene["haze"]))  # not the sky
    img = (c.image * (1 - fog) + _rgb(190, 205, 220) * fog) * (f32(scene["light"]) * _rgb(*scene["tint"]))
    img[:, 1:-1] = f32(0.25) * (img[:, :-2] + img[:, 2:]) + f32(0.5) * img[:, 1:-1]
    img[:, :, 1:-1] = f32(0.25) * (img[:, :, :-2] + img[:, :, 2:]) + f32(0.5) * img[:, :, 1:-1]
    img += rng.standard_normal(img.shape, dtype=f32) * f32(2.5)
    image = np.ascontiguousarray(np.clip(img + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    return image, c.label, c.instance


def _check_size(width, height):
    try:
        width, height = int(width), int(height)
    except (TypeError, ValueError):
        raise ValueError(f"size must be two integers (width, height), got {width!r}, {height!r}") from None
    if not (16 <= width <= MAX_SIZE[0] and 8 <= height <= MAX_SIZE[1]):
        raise ValueError(f"size must be between 16x8 and {MAX_SIZE[0]}x{MAX_SIZE[1]} pixels "
                         f"(width x height), got {width}x{height}")
    return width, height


def parse_size(size) -> tuple[int, int]:
    """``(width, height)`` from ``"256x128"``, ``"256"`` (height = width / 2, the
    Cityscapes aspect), an int or a pair."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        if len(parts) == 1:
            parts = [parts[0], None]
        if len(parts) != 2 or not parts[0].strip().isdigit() or (
                parts[1] is not None and not parts[1].strip().isdigit()):
            raise ValueError(f"size must look like 256x128 (width x height) or 256, got {size!r}")
        w = int(parts[0])
        return _check_size(w, int(parts[1]) if parts[1] is not None else w // 2)
    if isinstance(size, (int, np.integer)):
        return _check_size(size, int(size) // 2)
    try:
        w, h = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be 'WxH', an int width or a (width, height) pair, got {size!r}") from None
    return _check_size(w, h)


# --------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------

def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def scene_names(n: int) -> list[tuple[str, str, str]]:
    """``(split, city, stem)`` of the ``n`` scenes: the last ``n // 6`` (at least 1 when
    ``n >= 2``) are the test split; each split's scenes are spread over its cities, in
    blocks, and numbered within their city (``city_000000_000019``, ...)."""
    n_test = max(1, n // 6) if n >= 2 else 0
    out, per_city = [], {}
    for i in range(n):
        split, j, m, cities = (("train", i, n - n_test, TRAIN_CITIES) if i < n - n_test
                               else ("test", i - (n - n_test), n_test, TEST_CITIES))
        city = cities[j * len(cities) // m]
        k = per_city[city] = per_city.get(city, -1) + 1
        out.append((split, city, f"{city}_{k:06d}_000019"))
    return out


def generate(out_dir, n: int = 3000, size=(256, 128), seed: int = 0,
             verbose: bool = True) -> pathlib.Path:
    """Write a SynthStreets dataset in the Cityscapes layout.

    Layout (``out_dir/``)::

        leftImg8bit/{split}/{city}/{city}_{NNNNNN}_000019_leftImg8bit.png        RGB photo
        gtFine/{split}/{city}/{city}_{NNNNNN}_000019_gtFine_labelIds.png         uint8 label ids
        gtFine/{split}/{city}/{city}_{NNNNNN}_000019_gtFine_instanceIds.png      uint16 instance ids
        synthstreets.json                                                        generation parameters

    ``split`` is ``train`` (cities :data:`TRAIN_CITIES`) or ``test`` (the last
    ``n // 6`` scenes, cities :data:`TEST_CITIES`).

    Args:
        out_dir: destination folder (created; existing files are overwritten).
        n: number of scenes.
        size: ``(width, height)``, ``"WxH"`` or a width (height = width / 2).
        seed: random seed; the same seed gives the same bytes.
        verbose: print progress and a summary.

    Returns:
        The path of ``out_dir``.
    """
    n = int(n)
    if n <= 0:
        raise ValueError(f"n must be a positive number of scenes, got {n}")
    width, height = parse_size(size)
    out = pathlib.Path(out_dir)
    start = time.perf_counter()
    made: set[pathlib.Path] = set()
    counts = {"train": 0, "test": 0}
    for i, (split, city, stem) in enumerate(scene_names(n)):
        scene = sample_scene(np.random.default_rng([int(seed), i]))
        image, label, instance = render(scene, width, height)
        img_dir, gt_dir = out / "leftImg8bit" / split / city, out / "gtFine" / split / city
        if img_dir not in made:
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            made.add(img_dir)
        (img_dir / f"{stem}_leftImg8bit.png").write_bytes(_png(image))
        (gt_dir / f"{stem}_gtFine_labelIds.png").write_bytes(_png(label))
        (gt_dir / f"{stem}_gtFine_instanceIds.png").write_bytes(_png(instance.astype(np.uint16)))
        counts[split] += 1
        if verbose and (i + 1) % 1000 == 0:
            print(f"  synthstreets: {i + 1}/{n} scenes", flush=True)
    meta = {"dataset": "synthstreets", "version": VERSION, "n": n, "width": width, "height": height,
            "seed": int(seed), "num_train": counts["train"], "num_test": counts["test"]}
    (out / "synthstreets.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if verbose:
        print(f"synthstreets: wrote {n} scenes of {width}x{height} px to {out} ({counts['train']} train / "
              f"{counts['test']} test) in {time.perf_counter() - start:.1f} s", flush=True)
    return out
