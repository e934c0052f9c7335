"""Street-scene datasets in the Cityscapes layout: Cityscapes and SynthStreets.

:class:`StreetsDataset` reads the layout of the official Cityscapes
``leftImg8bit_trainvaltest.zip`` / ``gtFine_trainvaltest.zip`` (and written
by :func:`ganlib.data.synthstreets.generate`)::

    root/
      leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png          RGB photo
      gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png           8-bit label ids 0..33
      gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png        instance ids

Splits are ``train``, ``val`` and ``test`` for Cityscapes (pix2pixHD trains on
``train`` and evaluates on ``val``; the public ``test`` labels are blank),
``train`` and ``test`` for SynthStreets.

Rules, as the Cityscapes scripts define the files:

* label ids are the official ``labelIds`` (:data:`ganlib.data.synthstreets.LABELS`,
  0..33); any other value is an error naming the file (a ``*_color.png`` or a
  ``trainIds`` file given by mistake is recognised and named as such);
* an instance id is ``label_id * 1000 + k`` for the k-th object of a class
  with instances (car, person...), or the label id itself (stuff, and groups
  of objects not told apart); an instance map that disagrees with its label
  map is an error naming both files;
* photo, label and instance map of a frame must have the same size.

Items: ``ds[i]`` -> ``{"image": uint8 (H, W, 3), "label": uint8 (H, W),
"instance": int32 (H, W), "filename": "city/city_000000_000019"}``;
:meth:`StreetsDataset.pipeline` gives batched ``tf.data`` for training.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
from PIL import Image

from ganlib.data.captioned import decode_image
from ganlib.data.synthstreets import NUM_LABEL_IDS

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
SPLITS = {"cityscapes": ("train", "val", "test"), "synthstreets": ("train", "test")}


def _read_map(path: pathlib.Path, what: str) -> np.ndarray:
    """A single-channel PNG map as an integer array; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} is missing")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            array = np.asarray(im)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read {what} file {path}: {err} (expected a complete PNG)") from err
    if array.ndim != 2:
        hint = " (a *_gtFine_color.png given instead?)" if what == "label" else ""
        raise ValueError(f"{what} file {path} has {array.shape[-1]} channels (mode {mode}); expected a "
                         f"single-channel map of Cityscapes {what} ids{hint}")
    return array.astype(np.int32)


def check_maps(label: np.ndarray, instance: np.ndarray, label_path, instance_path) -> None:
    """Raise ValueError (naming the files) if ``label`` holds ids outside 0..33 or
    ``instance`` disagrees with it."""
    bad = np.unique(label[(label < 0) | (label >= NUM_LABEL_IDS)])
    if bad.size:
        present = np.unique(label)
        hint = (" (these look like trainIds, 0..18 and 255; expected the *_gtFine_labelIds.png file)"
                if set(present.tolist()) <= set(range(19)) | {255} else "")
        raise ValueError(f"label file {label_path} holds unknown label ids {bad[:10].tolist()}; "
                         f"expected Cityscapes label ids 0..{NUM_LABEL_IDS - 1}{hint}")
    owner = np.where(instance >= 1000, instance // 1000, instance)
    wrong = owner != label
    if wrong.any():
        y, x = (int(v[0]) for v in np.nonzero(wrong))
        raise ValueError(f"instance file {instance_path} disagrees with label file {label_path} at "
                         f"{int(wrong.sum())} pixels (e.g. instance id {int(instance[y, x])} over label "
                         f"{int(label[y, x])} at row {y}, column {x}); expected label_id * 1000 + k or "
                         f"the label id")


class StreetsDataset:
    """A split of a street-scene dataset in the Cityscapes layout.

    Args:
        root: dataset folder (holding ``leftImg8bit/`` and ``gtFine/``).
        split: ``"train"``, ``"val"`` or ``"test"`` (SynthStreets: ``"train"``
            or ``"test"``).
        name: ``"cityscapes"`` or ``"synthstreets"`` (used in messages).
        size: optional ``(H, W)`` of ``ds[i]`` (image bicubic as pix2pixHD,
            maps nearest-neighbour).
        strict: ``True``: a missing or unmatched file raises an error naming
            it; ``False``: the frame is skipped, with one warning giving the
            count (``ds.problems`` lists them).

    Attributes:
        filenames: ``"city/city_seq_frame"`` of every frame, sorted.
        problems: messages of the frames skipped at opening.

    Raises:
        FileNotFoundError: the root, its split folders or a frame's map is missing.
        ValueError: a bad split or size; a map without its photo.
    """

    def __init__(self, root, split: str = "train", name: str = "cityscapes", size=None,
                 strict: bool = True):
        self.root, self.split, self.name = pathlib.Path(root), split, name
        splits = SPLITS.get(name, SPLITS["cityscapes"])
        if split not in splits:
            raise ValueError(f"split must be one of {splits} for {name}, got {split!r}")
        self.size = None if size is None else _check_hw(size, "size")
        layout = (f"expected the Cityscapes layout leftImg8bit/{split}/<city>/*{IMAGE_SUFFIX} and "
                  f"gtFine/{split}/<city>/*{LABEL_SUFFIX}, *{INSTANCE_SUFFIX} (see datasets/cards/{name}.md)")
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder {self.root} does not exist; {layout}")
        image_dir, gt_dir = self.root / "leftImg8bit" / split, self.root / "gtFine" / split
        for folder in (image_dir, gt_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"folder {folder} is missing; {layout}")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise FileNotFoundError(f"{image_dir} holds no <city>/*{IMAGE_SUFFIX} files; {layout}")
        self.filenames, self._paths, self.problems = [], [], []
        keys = set()
        for path in images:
            key = f"{path.parent.name}/{path.name[:-len(IMAGE_SUFFIX)]}"
            keys.add(key)
            label, instance = gt_dir / f"{key}{LABEL_SUFFIX}", gt_dir / f"{key}{INSTANCE_SUFFIX}"
            missing = [p for p in (label, instance) if not p.is_file()]
            if missing:
                self._problem(FileNotFoundError(f"{missing[0]} is missing (expected for the image "
                                                f"{path})"), strict)
                continue
            self.filenames.append(key)
            self._paths.append((path, label, instance))
        for label in sorted(gt_dir.glob(f"*/*{LABEL_SUFFIX}")):
            key = f"{label.parent.name}/{label.name[:-len(LABEL_SUFFIX)]}"
            if key not in keys:
                self._problem(ValueError(f"label file {label} has no image (expected "
                                         f"{image_dir / key}{IMAGE_SUFFIX})"), strict)
        if self.problems:
            warnings.warn(f"{name} {split}: {len(self.problems)} frames skipped (see ds.problems), "
                          f"e.g. {self.problems[0]}", stacklevel=2)
        if not self.filenames:
            raise FileNotFoundError(f"no complete frame (photo, label and instance map) in {self.root} "
                                    f"for split {split!r}; {layout}")
        self._cache: dict = {}

    def _problem(self, error: Exception, strict: bool) -> None:
        if strict:
            raise error
        self.problems.append(str(error))

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        return (f"StreetsDataset(name={self.name!r}, split={self.split!r}, {len(self)} frames, "
                f"root={str(self.root)!r})")

    def load(self, i: int, size=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``i`` as ``(image uint8 (H, W, 3), label uint8 (H, W), instance int32 (H, W))``,
        checked (ids, agreement, sizes) and optionally resized to ``size = (H, W)``.

        Raises:
            FileNotFoundError / ValueError naming the file and what was expected.
        """
        image_path, label_path, instance_path = self._paths[i]
        image = decode_image(image_path)
        label = _read_map(label_path, "label")
        instance = _read_map(instance_path, "instance")
        for array, path in ((label, label_path), (instance, instance_path)):
            if array.shape != (image.height, image.width):
                raise ValueError(f"{path} is {array.shape[1]}x{array.shape[0]} but its image {image_path} "
                                 f"is {image.width}x{image.height} (expected the same size)")
        check_maps(label, instance, label_path, instance_path)
        return resize_frame(np.asarray(image, dtype=np.uint8), label, instance, size)

    def __getitem__(self, i: int) -> dict:
        """Frame ``i``: ``{"image", "label", "instance", "filename"}``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} frames")
        i = int(i) % len(self)
        image, label, instance = self.load(i, self.size)
        return {"image": image, "label": label, "instance": instance, "filename": self.filenames[i]}

    def arrays(self, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every frame at ``size = (H, W)``: images uint8 (N, H, W, 3), labels uint8
        (N, H, W), instances uint16 (N, H, W) (memoised)."""
        size = _check_hw(size, "size")
        if size not in self._cache:
            n, (h, w) = len(self), size
            images = np.empty((n, h, w, 3), np.uint8)
            labels = np.empty((n, h, w), np.uint8)
            instances = np.empty((n, h, w), np.uint16)
            for i in range(n):
                images[i], labels[i], instances[i] = self.load(i, size)
            self._cache[size] = images, labels, instances
        return self._cache[size]

    def check(self, decode: bool = True) -> list[str]:
        """Problems of this split, one message per problem, each naming its file: the
        frames skipped at opening and (``decode``) every frame that fails :meth:`load`."""
        found = list(self.problems)
        if decode:
            for i in range(len(self)):
                try:
                    self.load(i)
                except (FileNotFoundError, ValueError) as err:
                    found.append(str(err))
        return found

    def pipeline(self, batch_size: int = 1, size=None, seed: int = 0, repeat: bool = True,
                 shuffle: bool = True, flip: bool = True, cache: bool = True):
        """The batched training pipeline.

        Per epoch (seeded by ``(seed, epoch)``) the frames are shuffled and
        each is flipped left-right with probability 1/2 (pix2pixHD's default
        augmentation), photo and maps together.

        Args:
            batch_size: frames per batch (incomplete batches are dropped).
            size: ``(H, W)`` of the batches (default: the dataset's ``size``,
                else the first frame's size); photos bicubic, maps nearest.
            seed: the one source of randomness.
            repeat: repeat forever (otherwise one epoch).
            shuffle, flip: as above.
            cache: decode every frame once into memory (``N * H * W * 6``
                bytes); ``False`` reads from disk at every step.

        Returns:
            ``tf.data.Dataset`` of dicts: ``image`` float32 ``(B, H, W, 3)`` in
            [-1, 1], ``label`` int32 ``(B, H, W)`` label ids, ``instance``
            int32 ``(B, H, W)`` instance ids.
        """
        import tensorflow as tf

        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > len(self):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(self)} frames of the "
                             f"{self.split} split (incomplete batches are dropped)")
        if size is None:
            size = self.size or self.load(0)[1].shape
        h, w = _check_hw(size, "size")
        n, b = len(self), int(batch_size)
        if cache:
            images, labels, instances = self.arrays((h, w))

            def frames(idx):
                return images[idx], labels[idx], instances[idx]
        else:
            def frames(idx):
                out = [self.load(int(i), (h, w)) for i in idx]
                return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]),
                        np.stack([o[2] for o in out]).astype(np.uint16))

        def batch(epoch, step):
            rng = np.random.default_rng([int(seed), int(epoch)])
            order = rng.permutation(n) if shuffle else np.arange(n)
            flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
            idx = order[step * b:(step + 1) * b]
            image, label, instance = frames(idx)
            f = flips[step * b:(step + 1) * b]
            image[f], label[f], instance[f] = image[f, :, ::-1], label[f, :, ::-1], instance[f, :, ::-1]
            return image, label, instance

        def to_batch(epoch, step):
            image, label, instance = tf.numpy_function(batch, [epoch, step],
                                                       [tf.uint8, tf.uint8, tf.uint16], stateful=False)
            return {"image": tf.ensure_shape(tf.cast(image, tf.float32) / 127.5 - 1.0, (b, h, w, 3)),
                    "label": tf.ensure_shape(tf.cast(label, tf.int32), (b, h, w)),
                    "instance": tf.ensure_shape(tf.cast(instance, tf.int32), (b, h, w))}

        steps = n // b
        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        ds = epochs.flat_map(lambda e: tf.data.Dataset.range(steps).map(lambda s: (e, s)))
        ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if not repeat:
            ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
        return ds.prefetch(tf.data.AUTOTUNE)


def resize_frame(image, label, instance, size=None):
    """A frame resized to ``size = (H, W)`` (photo bicubic, as pix2pixHD; maps by `resize_map`):
    ``(uint8 (H, W, 3), uint8 (H, W), int32 (H, W))``."""
    if size is not None and tuple(size) != label.shape:
        h, w = size
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC))
        label, instance = resize_map(label, size), resize_map(instance, size)
    return image.astype(np.uint8), label.astype(np.uint8), instance.astype(np.int32)


def resize_map(m, size):
    """Nearest-neighbour resize of an integer map (H, W) to ``size`` (H, W): output pixel i takes
    input pixel floor((i + 1/2) * H_in / H_out), the pixel under its centre (PIL's NEAREST rule,
    in integers, for ids of any width)."""
    m = np.asarray(m)
    if m.shape == tuple(size):
        return m
    rows = (2 * np.arange(size[0]) + 1) * m.shape[0] // (2 * size[0])
    cols = (2 * np.arange(size[1]) + 1) * m.shape[1] // (2 * size[1])
    return m[rows][:, cols]


def _check_hw(size, what: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (H, W) of positive integers, got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{what} must be a pair (H, W) of positive integers, got {size!r}")
    return h, w
