"""Captioned image datasets in the CUB / AttnGAN layout, and their tf.data pipeline.

The reader understands the folder layout used by StackGAN and AttnGAN for
CUB-200-2011 birds (and written by :func:`ganlib.data.synthbirds.generate`)::

    root/
      CUB_200_2011/images/<class_dir>/<img>.jpg    e.g. 001.Black_footed_Albatross/...
      CUB_200_2011/images.txt                      "<id> <class_dir>/<img>.jpg"
      CUB_200_2011/bounding_boxes.txt              "<id> x y w h"
      text/<class_dir>/<img>.txt                   >= 10 captions, one per line
      train/filenames.pickle, test/filenames.pickle   lists of "<class_dir>/<img>"
      attributes.json                              (SynthBirds only) ground truth

An item is cropped as AttnGAN does: a square of side 1.5 x max(w, h) centred
on the bounding box, clipped to the image. The class id of an item is its CUB
class number minus one (the ``NNN.`` prefix of its class folder), so ids agree
across splits.

:meth:`CaptionedDataset.pipeline` returns a batched ``tf.data.Dataset`` of
dicts ``{"image", "tokens", "wrong_tokens", "class_id"}`` (+ ``"wrong_image"``)
ready for ``keras.Model.fit`` on any backend. Its randomness (shuffling,
caption choice, mismatched pairs, crops and flips) comes from the ``seed``
argument only, so two pipelines with the same arguments give the same batches.
"""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
from PIL import Image

SPLITS = ("train", "test")


def _check_image_size(image_size, name="image_size"):
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or image_size <= 0 or image_size % 4:
        raise ValueError(f"{name} must be a positive multiple of 4, got {image_size!r}")
    return int(image_size)


def crop_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """AttnGAN's crop around a CUB bounding box.

    Args:
        box: ``(x, y, w, h)`` of the bird.
        width, height: image size.

    Returns:
        ``(x1, y1, x2, y2)``: a square of half-side ``0.75 * max(w, h)``
        centred on the box, clipped to the image.
    """
    x, y, w, h = box
    r = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    x1, y1 = max(0, cx - r), max(0, cy - r)
    x2, y2 = min(width, cx + r), min(height, cy + r)
    if x2 <= x1 or y2 <= y1:  # degenerate box: keep the whole image
        return 0, 0, width, height
    return x1, y1, x2, y2


class CaptionedDataset:
    """Images with captions, read from a CUB / AttnGAN-layout folder.

    Args:
        root: dataset folder (holds ``CUB_200_2011/``, ``text/``, ``train/``, ``test/``).
        split: ``"train"`` or ``"test"``.
        name: dataset name (``"cub"`` or ``"synthbirds"``).
        image_size: if given, ``ds[i]["image"]`` is resized to this square
            size, and it is the default ``image_size`` of :meth:`pipeline`.
        captions_per_image: how many captions every image must have (10 for
            birds; extra lines are ignored, as AttnGAN does).

    Attributes:
        name, root, split, image_size.
        filenames: ``"<class_dir>/<img>"`` of every item, in split order.
        class_names: class folder names; ``class_names[k]`` is class id ``k``.
        class_ids: int array, the class id of every item.
        captions: list (one per item) of lists of ``captions_per_image`` str.
        attributes: list of dicts (SynthBirds ground truth) or ``None``.

    Raises:
        ValueError: bad ``split`` / ``image_size``; an empty caption file or
            one with too few captions (the message names the file).
        FileNotFoundError: ``root`` or one of its expected files is missing
            (the message names the path and what was expected).
    """

    def __init__(self, root, split: str = "train", name: str = "cub",
                 image_size: int | None = None, captions_per_image: int = 10):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if image_size is not None:
            image_size = _check_image_size(image_size)
        self.name, self.split, self.image_size = name, split, image_size
        self.captions_per_image = int(captions_per_image)
        self.root = root = pathlib.Path(root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"{name} dataset folder {root} does not exist (expected a folder with "
                f"CUB_200_2011/, text/, train/ and test/ in the AttnGAN layout)")
        cub = root / "CUB_200_2011"
        needed = {
            cub / "images.txt": "the list of images (\"<id> <class_dir>/<img>.jpg\")",
            cub / "bounding_boxes.txt": "bird boxes (\"<id> x y w h\")",
            root / split / "filenames.pickle": f"the {split} split (a pickled list of "
                                               f"\"<class_dir>/<img>\")",
            root / "text": "a folder of captions text/<class_dir>/<img>.txt",
        }
        for path, what in needed.items():
            if not path.exists():
                raise FileNotFoundError(f"{name} dataset at {root} is incomplete: {path} is "
                                        f"missing (expected {what})")

        with open(root / split / "filenames.pickle", "rb") as f:
            try:
                names = pickle.load(f, encoding="latin1")
            except Exception as err:  # noqa: BLE001 - re-raised with the file name
                raise ValueError(f"cannot read {root / split / 'filenames.pickle'}: {err} "
                                 f"(expected a pickled list of str)") from err
        self.filenames = [str(n) for n in names]
        if not self.filenames:
            raise ValueError(f"{root / split / 'filenames.pickle'} lists no images")

        ids = {}
        for line_no, line in enumerate(_lines(cub / "images.txt"), 1):
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{cub / 'images.txt'} line {line_no}: expected "
                                 f"\"<id> <class_dir>/<img>.jpg\", got {line!r}")
            ids[parts[1].rsplit(".", 1)[0]] = (parts[0], parts[1])
        boxes = {}
        for line_no, line in enumerate(_lines(cub / "bounding_boxes.txt"), 1):
            parts = line.split()
            try:
                boxes[parts[0]] = tuple(float(v) for v in parts[1:5])
                assert len(parts) == 5
            except (ValueError, AssertionError, IndexError):
                raise ValueError(f"{cub / 'bounding_boxes.txt'} line {line_no}: expected "
                                 f"\"<id> x y w h\", got {line!r}") from None
        self._paths, self._boxes = [], []
        for fn in self.filenames:
            if fn not in ids:
                raise ValueError(f"{fn!r} (from {root / split / 'filenames.pickle'}) is not "
                                 f"listed in {cub / 'images.txt'}")
            image_id, rel = ids[fn]
            if image_id not in boxes:
                raise ValueError(f"image id {image_id} ({fn}) has no line in "
                                 f"{cub / 'bounding_boxes.txt'}")
            self._paths.append(cub / "images" / rel)
            self._boxes.append(boxes[image_id])

        if (cub / "classes.txt").is_file():  # "<class> <class_dir>", all classes
            class_dirs = [line.split(maxsplit=1)[1] for line in _lines(cub / "classes.txt")]
        else:
            class_dirs = sorted({rel.split("/", 1)[0] for _, rel in ids.values()},
                                key=_class_number)
        self.class_names = [""] * (max(_class_number(c) for c in class_dirs))
        for c in class_dirs:
            self.class_names[_class_number(c) - 1] = c
        self.class_ids = np.array([_class_number(fn.split("/", 1)[0]) - 1
                                   for fn in self.filenames], dtype=np.int32)

        self.captions = [self._read_captions(fn) for fn in self.filenames]
        self.attributes = None
        if (root / "attributes.json").is_file():
            table = json.loads((root / "attributes.json").read_text())
            self.attributes = [table.get(fn) for fn in self.filenames]
        self._cache: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ items
    def _read_captions(self, filename: str) -> list[str]:
        path = self.root / "text" / f"{filename}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"caption file {path} is missing (expected "
                                    f"{self.captions_per_image} captions, one per line)")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise ValueError(f"cannot read caption file {path}: {err}") from err
        caps = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
        if len(caps) < self.captions_per_image:
            what = "is empty" if not caps else f"has only {len(caps)} captions"
            raise ValueError(f"caption file {path} {what} (expected "
                             f"{self.captions_per_image}, one per line)")
        return caps[: self.captions_per_image]

    def __len__(self) -> int:
        return len(self.filenames)

    def load_image(self, i: int, size: int | None = None) -> np.ndarray:
        """Item ``i``'s image, bounding-box cropped, optionally resized to ``size``.

        Raises:
            FileNotFoundError / ValueError naming the image file.
        """
        path = self._paths[i]
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} is missing (listed for "
                                    f"{self.filenames[i]!r})")
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.load()
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f"cannot read image file {path}: {err} "
                             f"(expected a JPEG/PNG image)") from err
        im = im.crop(crop_box(self._boxes[i], im.width, im.height))
        if size is not None:
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)

    def __getitem__(self, i: int) -> dict:
        """Item ``i``: ``{"image", "captions", "class_id", "filename"}`` (+ ``"attributes"``)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        i = int(i) % len(self)
        item = {
            "image": self.load_image(i, self.image_size),
            "captions": list(self.captions[i]),
            "class_id": int(self.class_ids[i]),
            "filename": self.filenames[i],
        }
        if self.attributes is not None:
            item["attributes"] = dict(self.attributes[i] or {})
        return item

    def images(self, size: int) -> np.ndarray:
        """All images, cropped and resized to ``size``, as uint8 ``(N, size, size, 3)`` (memoised)."""
        if size not in self._cache:
            out = np.empty((len(self), size, size, 3), dtype=np.uint8)
            for i in range(len(self)):
                out[i] = self.load_image(i, size)
            self._cache[size] = out
        return self._cache[size]

    def __repr__(self) -> str:
        return (f"CaptionedDataset(name={self.name!r}, split={self.split!r}, "
                f"{len(self)} images, {len(set(self.class_ids.tolist()))} classes, root={str(self.root)!r})")

    # ------------------------------------------------------------------ pipeline
    def _mismatched(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        """For each index, a random index of an item of a different class."""
        order = np.argsort(self.class_ids, kind="stable")
        classes, start, count = np.unique(self.class_ids[order], return_index=True,
                                          return_counts=True)
        pos = np.searchsorted(classes, self.class_ids[idx])
        s, c = start[pos], count[pos]
        r = rng.integers(0, len(self) - c)
        r = r + c * (r >= s)
        return order[r]

    def pipeline(self, batch_size: int = 64, image_size: int | None = None, tokenizer=None,
                 max_words: int = 18, wrong: str | None = "caption", shuffle: bool = True,
                 seed: int = 0, repeat: bool = True, cache: bool = True,
                 augment: bool = True, with_index: bool = False):
        """The batched training pipeline.

        Per example and epoch: one of its captions at random; a mismatched
        caption (and image, with ``wrong="image"``) of an item of a different
        class; the image resized to ``image_size * 76 / 64`` then randomly
        cropped to ``image_size`` and randomly flipped (StackGAN / AttnGAN
        augmentation; ``augment=False`` resizes straight to ``image_size``).

        Args:
            batch_size: examples per batch (incomplete batches are dropped).
            image_size: side of the output images, a positive multiple of 4
                (default: the dataset's ``image_size``, else 64).
            tokenizer: a :class:`ganlib.text.Tokenizer`; default: the shipped
                SynthBirds vocabulary for ``synthbirds``, else one built from
                this split's captions (pass the train tokenizer to a test pipeline).
            max_words: token sequence length (padded / truncated).
            wrong: ``"caption"`` -> ``wrong_tokens``; ``"image"`` -> ``wrong_tokens``
                and ``wrong_image``; ``None`` -> neither.
            shuffle: shuffle the examples every epoch.
            seed: the one source of randomness.
            repeat: repeat forever (otherwise one epoch).
            cache: decode every image once into memory (fast; needs
                ``N * (image_size*76/64)**2 * 3`` bytes); ``False`` decodes from
                disk with ``tf.io`` on every step.
            augment: random crop and flip.
            with_index: also return ``index`` and ``wrong_index`` (item indices,
                for checks and debugging).

        Returns:
            ``tf.data.Dataset`` of dicts: ``image`` float32 ``(B, S, S, 3)`` in
            [-1, 1], ``tokens`` / ``wrong_tokens`` int32 ``(B, max_words)``,
            ``class_id`` int32 ``(B,)`` (+ ``wrong_image``, ``index``, ``wrong_index``).

        Raises:
            ValueError: bad ``batch_size``, ``image_size``, ``max_words`` or
                ``wrong``; an unreadable image (named).
        """
        import tensorflow as tf

        from ganlib.text import Tokenizer

        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > len(self):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(self)} "
                             f"images of the {self.split} split (incomplete batches are dropped)")
        image_size = _check_image_size(image_size if image_size is not None
                                       else (self.image_size or 64))
        if isinstance(max_words, bool) or not isinstance(max_words, (int, np.integer)) \
                or max_words <= 0:
            raise ValueError(f"max_words must be a positive integer, got {max_words!r}")
        if wrong not in ("caption", "image", None):
            raise ValueError(f"wrong must be 'caption', 'image' or None, got {wrong!r}")
        if wrong is not None and len(set(self.class_ids.tolist())) < 2:
            raise ValueError("mismatched (wrong) pairs need at least 2 classes in the split; "
                             "pass wrong=None")
        if tokenizer is None:
            tokenizer = (Tokenizer.default(max_words) if self.name == "synthbirds"
                         else Tokenizer.from_texts([c for cs in self.captions for c in cs],
                                                   max_words=max_words))
        n, c, b = len(self), self.captions_per_image, int(batch_size)
        load = image_size * 76 // 64 if augment else image_size

        flat = [cap for caps in self.captions for cap in caps]
        tok = np.asarray(tokenizer(flat), dtype=np.int32)[:, :max_words]
        tok = np.pad(tok, ((0, 0), (0, max_words - tok.shape[1])))
        tokens = tf.constant(tok.reshape(n, c, max_words))
        class_ids = tf.constant(self.class_ids)

        if cache:
            cached = self.images(load)  # decode now: errors name the file here

            def crop_cached(idx, offsets, flips):
                out = np.empty((len(idx), image_size, image_size, 3), dtype=np.uint8)
                for k, (i, (oy, ox), flip) in enumerate(zip(idx, offsets, flips)):
                    im = cached[i, oy:oy + image_size, ox:ox + image_size]
                    out[k] = im[:, ::-1] if flip else im
                return out

            def fetch_cropped(idx, offsets, flips):
                out = tf.numpy_function(crop_cached, [idx, offsets, flips], tf.uint8,
                                        stateful=False)
                return tf.ensure_shape(out, (b, image_size, image_size, 3))
        else:
            missing = [p for p in self._paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"image file {missing[0]} is missing "
                                        f"({len(missing)} missing in all)")
            paths = tf.constant([str(p) for p in self._paths])
            boxes = tf.constant(np.asarray(self._boxes, dtype=np.float32))

            def fetch_one(i):
                img = tf.io.decode_image(tf.io.read_file(paths[i]), channels=3,
                                         expand_animations=False)
                h = tf.cast(tf.shape(img)[0], tf.float32)
                w = tf.cast(tf.shape(img)[1], tf.float32)
                x, y, bw, bh = tf.unstack(boxes[i])
                r = tf.floor(tf.maximum(bw, bh) * 0.75)
                cx, cy = tf.floor((2 * x + bw) / 2), tf.floor((2 * y + bh) / 2)
                x1, y1 = tf.maximum(0.0, cx - r), tf.maximum(0.0, cy - r)
                x2, y2 = tf.minimum(w, cx + r), tf.minimum(h, cy + r)
                img = img[tf.cast(y1, tf.int32):tf.cast(y2, tf.int32),
                          tf.cast(x1, tf.int32):tf.cast(x2, tf.int32)]
                img = tf.image.resize(img, (load, load), antialias=True)
                return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)

            def fetch_cropped(idx, offsets, flips):
                images = tf.map_fn(fetch_one, idx, fn_output_signature=tf.TensorSpec(
                    (load, load, 3), tf.uint8))
                rows = offsets[:, :1] + tf.range(image_size)[None]
                cols = offsets[:, 1:] + tf.range(image_size)[None]
                images = tf.gather(images, rows, axis=1, batch_dims=1)
                images = tf.gather(images, cols, axis=2, batch_dims=1)
                return tf.where(flips[:, None, None, None], tf.reverse(images, [2]), images)

        batches_per_epoch = n // b

        def plan_epoch(epoch):
            """Shuffled indices, caption choices and mismatched pairs of one epoch."""
            rng = np.random.default_rng([int(seed), int(epoch)])
            idx = rng.permutation(n) if shuffle else np.arange(n)
            cap = rng.integers(0, c, n)
            widx = self._mismatched(rng, idx) if wrong is not None else idx
            wcap = rng.integers(0, c, n)
            usable = batches_per_epoch * b
            return tuple(a[:usable].reshape(batches_per_epoch, b).astype(np.int64)
                         for a in (idx, cap, widx, wcap))

        def epoch_batches(epoch):
            arrays = tf.numpy_function(plan_epoch, [epoch], [tf.int64] * 4, stateful=False)
            arrays = [tf.ensure_shape(a, (batches_per_epoch, b)) for a in arrays]
            steps = tf.range(batches_per_epoch, dtype=tf.int64) + epoch * batches_per_epoch
            keys = ("index", "caption", "wrong_index", "wrong_caption")
            return tf.data.Dataset.from_tensor_slices({**dict(zip(keys, arrays)), "step": steps})

        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        ds = epochs.flat_map(epoch_batches)

        def augmented(idx, key):
            """Images of items ``idx``: random crop + flip (from ``key``), in [-1, 1]."""
            if augment:
                offsets = tf.random.stateless_uniform((b, 2), key, 0, load - image_size + 1,
                                                      dtype=tf.int32)
                flips = tf.random.stateless_uniform((b,), key + [0, 7]) < 0.5
            else:
                offsets, flips = tf.zeros((b, 2), tf.int32), tf.zeros((b,), tf.bool)
            images = fetch_cropped(idx, offsets, flips)
            return tf.cast(images, tf.float32) / 127.5 - 1.0

        def to_batch(p):
            key = tf.stack([tf.constant(int(seed), tf.int64), p["step"]])
            key = tf.cast(key, tf.int32)
            idx = tf.cast(p["index"], tf.int32)
            out = {
                "image": augmented(idx, key),
                "tokens": tf.gather_nd(tokens, tf.stack(
                    [idx, tf.cast(p["caption"], tf.int32)], axis=1)),
                "class_id": tf.gather(class_ids, idx),
            }
            widx = tf.cast(p["wrong_index"], tf.int32)
            if wrong is not None:
                out["wrong_tokens"] = tf.gather_nd(tokens, tf.stack(
                    [widx, tf.cast(p["wrong_caption"], tf.int32)], axis=1))
            if wrong == "image":
                out["wrong_image"] = augmented(widx, key + [0, 13])
            if with_index:
                out["index"], out["wrong_index"] = idx, widx
            return out

        ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if not repeat:
            ds = ds.apply(tf.data.experimental.assert_cardinality(n // b))
        return ds.prefetch(tf.data.AUTOTUNE)


def _lines(path: pathlib.Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _class_number(class_dir: str) -> int:
    head = class_dir.split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"class folder {class_dir!r} does not start with a CUB class number "
                         f"(expected e.g. '001.Black_footed_Albatross')")
    return int(head)
