"""Tiny copies of the real datasets' on-disk layouts, written with PIL for the tests.

* :func:`write_cub` -- CUB-200-2011 + Reed et al. captions, AttnGAN layout;
* :func:`write_flowers` -- Oxford-102 + Reed et al. captions, StackGAN layout;
* :func:`write_coco` -- COCO-2014, AttnGAN layout (``text/``) or the official
  ``annotations/captions_*2014.json``.

Every image is a gradient whose pixel at column x, row y is
``(4 * x, 6 * y, base)``, so a test can read a crop's position back from its
pixels (:func:`gradient_pixel`). Captions are predictable strings
(:func:`caption`). CUB and flowers also get StackGAN's
``<split>/char-CNN-RNN-embeddings.pickle`` whose rows encode which image and
caption they stand for (:func:`embedding_row`).
"""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 60, 40


def gradient_pixel(x, y, base=0):
    """The RGB value the fixtures draw at column ``x``, row ``y``."""
    return np.array([4 * x, 6 * y, base], dtype=np.float32)


def gradient(width=WIDTH, height=HEIGHT, base=0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([4 * x, 6 * y, np.full_like(x, base)], -1).clip(0, 255).astype(np.uint8)


def save_jpeg(path, array, mode="RGB"):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path, "JPEG", quality=100, subsampling=0)


def caption(name, j):
    return f"caption {j} of {name}"


def _dump(path, obj):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


EMBEDDING_DIM = 1024  # char-CNN-RNN's
SPLIT_CODE = {"train": 1, "test": 2}


def embedding_row(i, j, split="train", dim=EMBEDDING_DIM):
    """The embedding the fixtures write for caption ``j`` of image ``i`` (its position in
    the split's ``filenames.pickle``): ``[i, j, 1 (train) or 2 (test), 0, 0, ...]``."""
    row = np.zeros(dim, dtype=np.float32)
    row[:3] = i, j, SPLIT_CODE[split]
    return row


def write_embeddings(root, split, count, rows=10, dim=EMBEDDING_DIM, as_array=False):
    """``<split>/char-CNN-RNN-embeddings.pickle`` in StackGAN's format: one
    ``(rows, dim)`` float32 array per image of ``filenames.pickle`` (``count`` of
    them), pickled as a list, or as one ``(count, rows, dim)`` array."""
    table = [np.stack([embedding_row(i, j, split, dim) for j in range(rows)])
             for i in range(count)]
    _dump(pathlib.Path(root) / split / "char-CNN-RNN-embeddings.pickle",
          np.stack(table) if as_array else table)


# Boxes by image number (1-based, CUB's image id); others get DEFAULT_BOX.
BOXES = {1: (10.7, 8.2, 20.9, 14.6),   # truncated to (10, 8, 20, 14): crop (5, 0, 35, 30)
         2: (45.0, 25.0, 12.0, 14.0)}  # clipped right and bottom: crop (41, 22, 60, 40)
DEFAULT_BOX = (15.0, 10.0, 24.0, 20.0)  # crop (9, 2, 45, 38)


def write_cub(root, per_class=(3, 3, 2, 2), train_classes=2, size=(WIDTH, HEIGHT),
              captions=10, embeddings=True) -> pathlib.Path:
    """CUB-200-2011 in the AttnGAN layout: ``len(per_class)`` classes, the first
    ``train_classes`` in train, the rest in test (a split by class); with
    ``embeddings``, StackGAN's embeddings pickled as a list of arrays.

    Class k (1-based) is ``"00k.Bird_k"``; its images ``Bird_k_000j_<id>``
    have base colour ``20 * k``. Image ids count from 1 over all classes.
    """
    root = pathlib.Path(root)
    cub = root / "CUB_200_2011"
    images, boxes, labels, classes = [], [], [], []
    splits = {"train": ([], []), "test": ([], [])}
    image_id = 0
    for k, count in enumerate(per_class, 1):
        cdir = f"{k:03d}.Bird_{k}"
        classes.append(f"{k} {cdir}")
        (cub / "images" / cdir).mkdir(parents=True, exist_ok=True)
        for j in range(1, count + 1):
            image_id += 1
            key = f"{cdir}/Bird_{k}_{j:04d}_{image_id}"
            save_jpeg(cub / "images" / f"{key}.jpg", gradient(*size, base=20 * k))
            x, y, w, h = BOXES.get(image_id, DEFAULT_BOX)
            images.append(f"{image_id} {key}.jpg")
            boxes.append(f"{image_id} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
            labels.append(f"{image_id} {k}")
            text = root / "text" / f"{key}.txt"
            text.parent.mkdir(parents=True, exist_ok=True)
            text.write_text("\n".join(caption(key, c) for c in range(captions)) + "\n")
            split = "train" if k <= train_classes else "test"
            splits[split][0].append(key)
            splits[split][1].append(k)
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    (cub / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (cub / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, (names, ids) in splits.items():
        _dump(root / split / "filenames.pickle", names)
        _dump(root / split / "class_info.pickle", ids)
        if embeddings:
            write_embeddings(root, split, len(names), rows=captions)
    return root


def write_flowers(root, per_class=(3, 3, 2, 2), train_classes=2, size=(48, 36),
                  prefix="jpg/", embeddings=True) -> pathlib.Path:
    """Oxford-102 in the StackGAN layout: images ``jpg/image_NNNNN.jpg`` numbered
    from 1 over all classes, captions ``text_c10/class_0000k/image_NNNNN.txt``
    (plus the .h5 files Reed's archive holds), split by class; with
    ``embeddings``, StackGAN's embeddings pickled as one ``(N, 10, 1024)`` array."""
    root = pathlib.Path(root)
    splits = {"train": ([], []), "test": ([], [])}
    number = 0
    for k, count in enumerate(per_class, 1):
        folder = root / "text_c10" / f"class_{k:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            number += 1
            stem = f"image_{number:05d}"
            save_jpeg(root / "jpg" / f"{stem}.jpg", gradient(*size, base=20 * k))
            (folder / f"{stem}.txt").write_text(
                "\n".join(caption(stem, c) for c in range(10)) + "\n")
            (folder / f"{stem}.h5").write_bytes(b"\x89HDF not read")
            split = "train" if k <= train_classes else "test"
            splits[split][0].append(prefix + stem)
            splits[split][1].append(k)
    for split, (names, ids) in splits.items():
        _dump(root / split / "filenames.pickle", names)
        _dump(root / split / "class_info.pickle", ids)
        if embeddings:
            write_embeddings(root, split, len(names), as_array=True)
    return root


def coco_name(split, image_id):
    year = "train2014" if split == "train" else "val2014"
    return f"COCO_{year}_{image_id:012d}"


def write_coco(root, n_train=6, n_test=4, layout="attngan", folders="images",
               size=(40, 32)) -> pathlib.Path:
    """COCO-2014 with 5 captions per image (image id 1 of train has 6).

    Args:
        layout: ``"attngan"`` (``text/<name>.txt`` + ``train|test/filenames.pickle``)
            or ``"official"`` (``annotations/captions_train2014.json`` and
            ``captions_val2014.json``, no pickles).
        folders: ``"images"`` (one folder) or ``"split"`` (``train2014/`` + ``val2014/``).
    """
    root = pathlib.Path(root)
    names = {"train": [coco_name("train", 10 * i + 9) for i in range(n_train)],
             "test": [coco_name("test", 10 * i + 42) for i in range(n_test)]}
    for split, keys in names.items():
        folder = "images" if folders == "images" else \
            ("train2014" if split == "train" else "val2014")
        anns, ims = [], []
        for i, key in enumerate(keys):
            save_jpeg(root / folder / f"{key}.jpg", gradient(*size, base=10 + 30 * i))
            caps = [caption(key, c) for c in range(6 if i == 0 else 5)]
            image_id = int(key.rsplit("_", 1)[1])
            if layout == "attngan":
                path = root / "text" / f"{key}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(caps) + "\n")
            else:
                ims.append({"id": image_id, "file_name": f"{key}.jpg", "width": size[0],
                            "height": size[1]})
                anns += [{"id": 1000 * image_id + c, "image_id": image_id,
                          "caption": text + " \n"} for c, text in enumerate(caps)]
        if layout == "attngan":
            _dump(root / split / "filenames.pickle", keys)
        else:
            which = "train" if split == "train" else "val"
            path = root / "annotations" / f"captions_{which}2014.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"info": {}, "images": ims[::-1], "annotations": anns}))
    return root
