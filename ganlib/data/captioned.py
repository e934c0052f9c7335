"""Captioned image datasets: the shared reader machinery, the CUB / AttnGAN layout, the pipeline.

:class:`CaptionedDataset` holds everything the readers share: items
(``filenames``, image paths, optional bounding boxes, ``class_ids``,
``captions``), image decoding and cropping, ``ds[i]``, the batched
``tf.data`` :meth:`~CaptionedDataset.pipeline` and the integrity check used
by ``ganlib data check``. A reader is a subclass that overrides
:meth:`~CaptionedDataset._read`: :class:`ganlib.data.flowers.FlowersDataset`
(Oxford-102) and :class:`ganlib.data.coco.COCODataset` (COCO-2014).
:class:`CaptionedDataset` itself reads the layout used by StackGAN and AttnGAN
for CUB-200-2011 birds (and written by :func:`ganlib.data.synthbirds.generate`)::

    root/
      CUB_200_2011/images/<class_dir>/<img>.jpg    e.g. 001.Black_footed_Albatross/...
      CUB_200_2011/images.txt                      "<id> <class_dir>/<img>.jpg"
      CUB_200_2011/bounding_boxes.txt              "<id> x y w h"
      CUB_200_2011/image_class_labels.txt          "<id> <class 1..200>"  (optional, checked)
      CUB_200_2011/classes.txt                     "<class> <class_dir>"  (optional)
      text/<class_dir>/<img>.txt                   >= 10 captions, one per line
                                                   (Reed et al.'s ``text_c10/`` is accepted too)
      train/filenames.pickle, test/filenames.pickle   lists of "<class_dir>/<img>"
      train/class_info.pickle, test/class_info.pickle (optional, checked) class per file
      train/char-CNN-RNN-embeddings.pickle, test/... (optional) precomputed text
                                                   embeddings (StackGAN's files, see below)
      attributes.json                              (SynthBirds only) ground truth

Rules (as the reference code of AttnGAN / StackGAN applies them):

* **Crop**: a square of side 1.5 x max(w, h) centred on the bounding box,
  clipped to the image (:func:`crop_box`; box values are truncated to
  integers first, as the references read them with ``astype(int)``).
* **Class ids**: the CUB class number minus one (the ``NNN.`` prefix of the
  class folder), so ids agree across splits. ``image_class_labels.txt`` and
  ``class_info.pickle``, when present, must agree with the folders
  (``class_info`` may number classes from any base; it must group the files
  the same way).
* **Split**: AttnGAN's CUB split is by class, 150 train / 50 test classes; a
  class found in both ``train/`` and ``test/`` gives a warning when the
  dataset is opened and a problem in :meth:`CaptionedDataset.check`.
* **Captions**: UTF-8 text, one caption per line; empty lines are ignored
  and the first ``captions_per_image`` kept (as AttnGAN does); non-ASCII
  text is kept; the ``"\\ufffd\\ufffd"`` pairs of Reed et al.'s files become a
  space (as the references do).
* **Images**: any mode PIL reads (grayscale ``L``, ``CMYK``, palette...) is
  converted to RGB.
* **Precomputed text embeddings** (optional): ``<split>/char-CNN-RNN-embeddings.pickle``
  as StackGAN and StackGAN++ ship them for birds and flowers (Reed et al.'s
  char-CNN-RNN sentence encoder): one float array of shape
  ``(captions_per_image, D)`` per image (``D = 1024``), in the order of the
  split's ``filenames.pickle``, pickled as a list of arrays or one
  ``(N, captions_per_image, D)`` array (:func:`load_embeddings`). Row ``j``
  is caption ``j`` of the image's text file (its ``j``-th non-empty line):
  StackGAN's ``misc/datasets.py`` pairs ``embeddings[i, j]`` with line ``j``
  of ``text_c10/<name>.txt`` that way. Read on first use
  (``ds.embeddings``, ``ds[i]["embeddings"]``, ``pipeline(embeddings=True)``);
  ``ds.has_embeddings`` tells whether the file is there.

Bad input: with ``strict=True`` (the default) the first bad item raises an
error naming the file and what was expected. With ``strict=False`` bad items
are skipped instead (as the references skip short caption files) and one
warning at the end of loading gives their count; the messages are kept in
``ds.problems``. Errors about the layout itself (a missing split pickle, a
malformed index file) always raise.

:meth:`CaptionedDataset.pipeline` returns a batched ``tf.data.Dataset`` of
dicts ``{"image", "tokens", "wrong_tokens", "class_id"}`` (+ ``"wrong_image"``,
``"image_<size>"`` pyramid levels, ``"embeddings"`` and ``"wrong_embeddings"``)
ready for ``keras.Model.fit`` on any backend. Its randomness (shuffling,
caption choice, mismatched pairs, crops and flips) comes from the ``seed``
argument only, so two pipelines with the same arguments give the same batches.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import warnings

import numpy as np
from PIL import Image

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: StackGAN's precomputed char-CNN-RNN text embeddings, one file per split folder
EMBEDDINGS_FILE = "char-CNN-RNN-embeddings.pickle"


def _check_image_size(image_size, name="image_size"):
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or image_size <= 0 or image_size % 4:
        raise ValueError(f"{name} must be a positive multiple of 4, got {image_size!r}")
    return int(image_size)


def crop_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """AttnGAN's crop around a CUB bounding box.

    Args:
        box: ``(x, y, w, h)`` of the bird (truncated to integers first, as the
            reference code reads ``bounding_boxes.txt`` with ``astype(int)``).
        width, height: image size.

    Returns:
        ``(x1, y1, x2, y2)``: a square of half-side ``int(0.75 * max(w, h))``
        centred on ``(int((2x + w) / 2), int((2y + h) / 2))``, clipped to the
        image. E.g. box ``(10, 20, 30, 40)`` in a 100 x 80 image: half-side
        30, centre (25, 40), crop ``(0, 10, 55, 70)``.
    """
    x, y, w, h = (int(v) for v in box)
    r = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    x1, y1 = max(0, cx - r), max(0, cy - r)
    x2, y2 = min(width, cx + r), min(height, cy + r)
    if x2 <= x1 or y2 <= y1:  # degenerate box: keep the whole image
        return 0, 0, width, height
    return x1, y1, x2, y2


def decode_image(path) -> Image.Image:
    """Open an image file fully decoded and converted to RGB (grayscale, CMYK, palette...).

    Raises:
        FileNotFoundError: the file is missing (named).
        ValueError: the file is not a readable image, e.g. corrupt or
            truncated (named, with PIL's reason).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} is missing")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read image file {path}: {err} "
                         f"(expected a complete JPEG/PNG image)") from err


def read_caption_file(path, expected: int) -> list[str]:
    """The first ``expected`` captions of a caption file (one per line).

    UTF-8; empty lines are ignored (as the references do); non-ASCII text is
    kept; Reed et al.'s ``"\\ufffd\\ufffd"`` pairs become a space. Bytes that are
    not UTF-8 are replaced by U+FFFD with a warning naming the file.

    Raises:
        FileNotFoundError: the file is missing (named).
        ValueError: it holds fewer than ``expected`` captions (named).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption file {path} is missing (expected {expected} "
                                f"captions, one per line)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read caption file {path}: {err}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        warnings.warn(f"caption file {path} is not valid UTF-8 ({err.reason} at byte "
                      f"{err.start}); the bad bytes are read as U+FFFD", stacklevel=2)
        text = raw.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff").replace("\ufffd\ufffd", " ")
    caps = [" ".join(line.split()) for line in text.splitlines()]
    caps = [c for c in caps if c]
    if len(caps) < expected:
        what = "is empty" if not caps else f"has only {len(caps)} captions"
        raise ValueError(f"caption file {path} {what} (expected {expected}, one per line)")
    return caps[:expected]


def load_name_list(path, what: str) -> list[str]:
    """A pickled list of str (``filenames.pickle``), with errors naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (expected {what})")
    try:
        with open(path, "rb") as f:
            names = pickle.load(f, encoding="latin1")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read {path}: {err} (expected {what})") from err
    if not names:
        raise ValueError(f"{path} lists no images (expected {what})")
    return names


def load_embeddings(path, names, captions_per_image: int) -> np.ndarray:
    """StackGAN's ``char-CNN-RNN-embeddings.pickle``: one ``(captions, D)`` array per image.

    The references (StackGAN ``misc/datasets.py``, StackGAN++ ``code/datasets.py``)
    read it with ``np.array(pickle.load(f))`` and index ``embeddings[i, j]``:
    image ``i`` of ``filenames.pickle``, caption ``j``. Python 2 pickles are
    read with ``encoding="latin1"``.

    Args:
        path: the pickle: a list (or tuple) of float arrays of shape
            ``(captions_per_image, D)``, or one array ``(N, captions_per_image, D)``.
        names: the split's ``filenames.pickle`` list (for the count and messages).
        captions_per_image: rows expected per image.

    Returns:
        float32 ``(len(names), captions_per_image, D)``.

    Raises:
        ValueError naming ``path``: it cannot be unpickled or holds neither a
        list nor an array; it holds a different number of arrays than
        ``names``; an item is not a 2-D float array of width ``D`` (the first
        item's); an item has a number of rows other than ``captions_per_image``.
    """
    path = pathlib.Path(path)
    what = (f"one float array of shape ({captions_per_image}, D) per image, in the order of "
            f"filenames.pickle")
    try:
        with open(path, "rb") as f:
            table = pickle.load(f, encoding="latin1")
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read {path}: {err} (expected a pickle of {what})") from err
    if not isinstance(table, (list, tuple, np.ndarray)) or getattr(table, "ndim", 1) == 0:
        raise ValueError(f"{path} holds a {type(table).__name__}; expected a list of {what}")
    if len(table) != len(names):
        raise ValueError(f"{path} holds {len(table)} embedding arrays but "
                         f"{path.with_name('filenames.pickle')} lists {len(names)} images "
                         f"(expected {what})")
    rows, dim = [], None
    for k, (item, name) in enumerate(zip(table, names)):
        try:
            item = np.asarray(item, dtype=np.float32)
            width = item.shape[1] if item.ndim == 2 else 0
            got = f"shape {item.shape}"
        except (TypeError, ValueError):
            got, width = f"a {type(item).__name__} that is not a float array", 0
        if not width or width != (dim or width):
            raise ValueError(f"{path}: the embeddings of image {k} ({name!r}) are {got}; "
                             f"expected a float array of shape ({captions_per_image}, "
                             f"{dim or 'D'}), one row per caption")
        if item.shape[0] != captions_per_image:
            raise ValueError(f"{path}: image {k} ({name!r}) has {item.shape[0]} embedding rows; "
                             f"expected {captions_per_image}, one per caption kept (row j is "
                             f"caption j of its text file)")
        dim = item.shape[1]
        rows.append(item)
    return np.stack(rows)


def load_class_info(path, count: int) -> list[int] | None:
    """``class_info.pickle`` (one class number per listed file), or None when absent."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            info = pickle.load(f, encoding="latin1")
        info = [int(v) for v in np.asarray(info).ravel()]
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read {path}: {err} (expected a pickled list of "
                         f"class numbers, one per file)") from err
    if len(info) != count:
        raise ValueError(f"{path} holds {len(info)} class numbers but the split lists "
                         f"{count} files (expected one per file)")
    return info


def check_class_info(info, class_ids, filenames, path) -> None:
    """Check that ``class_info.pickle`` groups the files as the folders do (any numbering)."""
    seen, back = {}, {}
    for value, cid, fn in zip(info, class_ids, filenames):
        if seen.setdefault(value, cid) != cid or back.setdefault(cid, value) != value:
            raise ValueError(f"{path} gives class {value} to {fn!r}, which disagrees with its "
                             f"class folder (class id {cid}); expected the class numbers of "
                             f"the files' class folders")


class CaptionedDataset:
    """Images with captions; reads the CUB / AttnGAN layout (subclasses read others).

    Args:
        root: dataset folder (for this class: ``CUB_200_2011/``, ``text/``,
            ``train/``, ``test/``).
        split: ``"train"`` or ``"test"``.
        name: dataset name (``"cub"`` or ``"synthbirds"``; subclasses set theirs).
        image_size: if given, ``ds[i]["image"]`` is resized to this square
            size, and it is the default ``image_size`` of :meth:`pipeline`.
        captions_per_image: how many captions every image must have (10 for
            birds and flowers, 5 for COCO; extra lines are ignored, as AttnGAN does).
        strict: ``True``: the first bad item (missing image or caption file,
            too few captions, inconsistent class) raises. ``False``: bad items
            are skipped, one warning gives their count, ``problems`` lists them.

    Attributes:
        name, root, split, image_size, captions_per_image, strict.
        filenames: item keys in split order (for CUB ``"<class_dir>/<img>"``).
        class_names: class names; ``class_names[k]`` is class id ``k``
            (empty when the dataset has no classes, e.g. COCO).
        class_ids: int32 array, the class id of every item (-1: no class).
        has_classes: False when every ``class_id`` is -1 (mismatched pairs are
            then drawn from different images instead of different classes).
        captions: list (one per item) of lists of ``captions_per_image`` str.
        attributes: list of dicts (SynthBirds ground truth) or ``None``.
        problems: messages of the items skipped with ``strict=False``.
        has_embeddings: whether ``<split>/char-CNN-RNN-embeddings.pickle`` is there.
        embeddings: float32 ``(N, captions_per_image, D)``, row ``j`` of item ``i``
            for caption ``j`` of ``captions[i]`` (read on first use).
        embedding_dim: ``D`` (1024 for StackGAN's files), or ``None`` without embeddings.

    Raises:
        ValueError: bad ``split`` / ``image_size``; a malformed index file; with
            ``strict=True`` an empty caption file or one with too few captions,
            a class that disagrees between index files (the message names the file).
        FileNotFoundError: ``root`` or one of its expected files is missing
            (the message names the path and what was expected).
    """

    #: what the dataset folder should hold (for error messages)
    layout = "a folder with CUB_200_2011/, text/, train/ and test/ in the AttnGAN layout"
    default_captions_per_image = 10

    def __init__(self, root, split: str = "train", name: str = "cub",
                 image_size: int | None = None, captions_per_image: int | None = None,
                 strict: bool = True):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if image_size is not None:
            image_size = _check_image_size(image_size)
        self.name, self.split, self.image_size = name, split, image_size
        self.captions_per_image = int(captions_per_image or self.default_captions_per_image)
        self.strict = bool(strict)
        self.problems: list[str] = []
        self.attributes = None
        self.root = root = pathlib.Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{name} dataset folder {root} does not exist "
                                    f"(expected {self.layout}; see datasets/cards/{name}.md)")
        self._read()
        self._cache: dict[int, np.ndarray] = {}
        self._embeddings: np.ndarray | None = None

    # ------------------------------------------------------------------ reading
    def _require(self, needed: dict) -> None:
        """Raise FileNotFoundError for the first missing ``{path: what}``."""
        for path, what in needed.items():
            if not path.exists():
                raise FileNotFoundError(f"{self.name} dataset at {self.root} is incomplete: "
                                        f"{path} is missing (expected {what})")

    def _gather(self, keys, make) -> None:
        """Build the items: ``make(key) -> (path, box, class_id, captions)`` for every key.

        ``make`` raises FileNotFoundError / ValueError for a bad item: re-raised
        when ``strict``, else recorded in ``problems`` and the item skipped (one
        warning with the count at the end).
        """
        items = []
        for key in keys:
            try:
                items.append((key, *make(key)))
            except (FileNotFoundError, ValueError) as err:
                if self.strict:
                    raise
                self.problems.append(str(err))
        if self.problems:
            warnings.warn(f"{self.name} {self.split}: skipped {len(self.problems)} of "
                          f"{len(items) + len(self.problems)} items with problems (first: "
                          f"{self.problems[0]}); see ds.problems", stacklevel=3)
        if not items:
            raise ValueError(f"{self.name} {self.split} split at {self.root}: no usable "
                             f"items" + (f" (first problem: {self.problems[0]})"
                                         if self.problems else ""))
        self.filenames = [it[0] for it in items]
        self._paths = [pathlib.Path(it[1]) for it in items]
        self._boxes = [it[2] for it in items]
        self.class_ids = np.array([it[3] for it in items], dtype=np.int32)
        self.captions = [it[4] for it in items]

    @staticmethod
    def _missing_image(path, listed_in, key) -> FileNotFoundError:
        path = pathlib.Path(path)
        folder = path.parent
        why = ""
        if not folder.is_dir():
            why = f"; its folder {folder} does not exist"
        elif not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            why = f"; its folder {folder} holds no images"
        return FileNotFoundError(f"image file {path} is missing (listed in {listed_in} as "
                                 f"{key!r}{why})")

    def _read(self) -> None:
        """Read the CUB / AttnGAN layout (subclasses override this for theirs)."""
        root, split, cub = self.root, self.split, self.root / "CUB_200_2011"
        split_file = root / split / "filenames.pickle"
        self._require({
            cub / "images.txt": "the list of images (\"<id> <class_dir>/<img>.jpg\")",
            cub / "bounding_boxes.txt": "bird boxes (\"<id> x y w h\")",
            split_file: f"the {split} split (a pickled list of \"<class_dir>/<img>\")",
        })
        text_dir = next((d for d in (root / "text", root / "text_c10") if d.is_dir()), None)
        if text_dir is None:
            self._require({root / "text": "a folder of captions text/<class_dir>/<img>.txt"})
        names = load_name_list(split_file, "a pickled list of \"<class_dir>/<img>\"")

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
        labels = {}
        labels_file = cub / "image_class_labels.txt"
        if labels_file.is_file():
            for line_no, line in enumerate(_lines(labels_file), 1):
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    raise ValueError(f"{labels_file} line {line_no}: expected "
                                     f"\"<id> <class number>\", got {line!r}")
                labels[parts[0]] = int(parts[1])

        if (cub / "classes.txt").is_file():  # "<class> <class_dir>", all classes
            class_dirs = [line.split(maxsplit=1)[1] for line in _lines(cub / "classes.txt")]
        else:
            class_dirs = sorted({rel.split("/", 1)[0] for _, rel in ids.values()},
                                key=_class_number)
        self.class_names = [""] * (max(_class_number(c) for c in class_dirs))
        for c in class_dirs:
            self.class_names[_class_number(c) - 1] = c

        def make(fn):
            if fn not in ids:
                raise ValueError(f"{fn!r} (from {split_file}) is not listed in "
                                 f"{cub / 'images.txt'}")
            image_id, rel = ids[fn]
            if image_id not in boxes:
                raise ValueError(f"image id {image_id} ({fn}) has no line in "
                                 f"{cub / 'bounding_boxes.txt'}")
            number = _class_number(fn.split("/", 1)[0])
            if labels and labels.get(image_id) != number:
                raise ValueError(f"{labels_file} gives image id {image_id} ({fn}) class "
                                 f"{labels.get(image_id)}, but its folder is class {number} "
                                 f"(expected the same class number)")
            path = cub / "images" / rel
            if not path.is_file():
                raise self._missing_image(path, split_file, fn)
            captions = read_caption_file(text_dir / f"{fn}.txt", self.captions_per_image)
            return path, boxes[image_id], number - 1, captions

        order = {fn: k for k, fn in enumerate(names)}
        self._gather(names, make)
        info_file = root / split / "class_info.pickle"
        info = load_class_info(info_file, len(names))
        if info is not None:
            check_class_info([info[order[fn]] for fn in self.filenames], self.class_ids,
                             self.filenames, info_file)

        if (root / "attributes.json").is_file():
            table = json.loads((root / "attributes.json").read_text())
            self.attributes = [table.get(fn) for fn in self.filenames]
        self._warn_shared_classes()

    def _other_split_class_ids(self) -> np.ndarray | None:
        """Class ids of the other split's files (from its pickle), or None if unavailable."""
        other = "test" if self.split == "train" else "train"
        path = self.root / other / "filenames.pickle"
        if not path.is_file():
            return None
        try:
            names = load_name_list(path, "a pickled list of \"<class_dir>/<img>\"")
            return np.array([_class_number(n.split("/", 1)[0]) - 1 for n in names])
        except ValueError:
            return None

    def shared_classes(self) -> list[int]:
        """Class ids present in both the train and the test split (should be none)."""
        other = self._other_split_class_ids()
        if other is None or not self.has_classes:
            return []
        return sorted(set(self.class_ids.tolist()) & set(other.tolist()))

    def _warn_shared_classes(self) -> None:
        shared = self.shared_classes()
        if shared:
            names = [self.class_names[c] if c < len(self.class_names) else str(c)
                     for c in shared[:3]]
            warnings.warn(f"{self.name} at {self.root}: {len(shared)} classes are in both "
                          f"train/ and test/ (e.g. {names}); the papers' split is by class "
                          f"(CUB: 150 train / 50 test classes), so test scores would "
                          f"measure seen classes", stacklevel=3)

    # ------------------------------------------------------------------ embeddings
    @property
    def embeddings_path(self) -> pathlib.Path:
        """Where this split's precomputed text embeddings are read from."""
        return self.root / self.split / EMBEDDINGS_FILE

    @property
    def has_embeddings(self) -> bool:
        return self.embeddings_path.is_file()

    @property
    def embeddings(self) -> np.ndarray:
        """Precomputed text embeddings, float32 ``(N, captions_per_image, D)``.

        Row ``[i, j]`` embeds ``captions[i][j]``. Read from :attr:`embeddings_path`
        on first use (see :func:`load_embeddings`; the rows of items skipped with
        ``strict=False`` are dropped with them).

        Raises:
            FileNotFoundError: the file is missing (named).
            ValueError: it is unreadable or does not match ``filenames.pickle``
                and the captions (named, with what was expected).
        """
        if self._embeddings is None:
            path = self.embeddings_path
            if not path.is_file():
                raise FileNotFoundError(f"{self.name} {self.split} has no precomputed text "
                                        f"embeddings: {path} is missing (expected StackGAN's "
                                        f"{EMBEDDINGS_FILE}; see datasets/cards/{self.name}.md)")
            names = load_name_list(self.root / self.split / "filenames.pickle",
                                   "the image names the embeddings follow")
            table = load_embeddings(path, names, self.captions_per_image)
            if len(self) < len(names):  # items skipped with strict=False
                table = table[_positions(names, self.filenames)]
            self._embeddings = table
        return self._embeddings

    @property
    def embedding_dim(self) -> int | None:
        return int(self.embeddings.shape[2]) if self.has_embeddings else None

    # ------------------------------------------------------------------ items
    @property
    def has_classes(self) -> bool:
        return bool((self.class_ids >= 0).any())

    def __len__(self) -> int:
        return len(self.filenames)

    def crop(self, i: int, width: int, height: int) -> tuple[int, int, int, int]:
        """The standard crop ``(x1, y1, x2, y2)`` of item ``i`` (whole image without a box)."""
        box = self._boxes[i]
        return (0, 0, width, height) if box is None else crop_box(box, width, height)

    def load_image(self, i: int, size: int | None = None) -> np.ndarray:
        """Item ``i``'s image after the standard crop, optionally resized to ``size``.

        The resize (square, bilinear with antialiasing) squashes a non-square
        crop, as StackGAN does for the whole-image datasets.

        Raises:
            FileNotFoundError / ValueError naming the image file.
        """
        try:
            im = decode_image(self._paths[i])
        except FileNotFoundError:
            raise FileNotFoundError(f"image file {self._paths[i]} is missing (listed for "
                                    f"{self.filenames[i]!r})") from None
        im = im.crop(self.crop(i, im.width, im.height))
        if size is not None:
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)

    def __getitem__(self, i: int) -> dict:
        """Item ``i``: ``{"image", "captions", "class_id", "filename"}`` (+ ``"attributes"``,
        and ``"embeddings"``, float32 ``(captions_per_image, D)``, when the dataset has them)."""
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
        if self.has_embeddings:
            item["embeddings"] = self.embeddings[i].copy()
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
        classes = len(set(self.class_ids.tolist())) if self.has_classes else 0
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
                f"{len(self)} images, {classes} classes, root={str(self.root)!r})")

    # ------------------------------------------------------------------ checking
    def empty_class_folders(self) -> list[pathlib.Path]:
        """Class folders that hold no image (CUB layout: ``CUB_200_2011/images/<class_dir>``)."""
        images = self.root / "CUB_200_2011" / "images"
        if not images.is_dir():
            return []
        return [d for d in sorted(images.iterdir()) if d.is_dir() and not any(
            p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir())]

    def check(self, decode: bool = True) -> list[str]:
        """Problems of this split, one message per problem, each naming its path.

        Lists the items skipped at opening (``problems``; open with
        ``strict=False`` to see them all), images that cannot be decoded
        (every image is decoded when ``decode``), class folders without
        images, classes shared with the other split, and a precomputed
        embeddings file that does not match the split (when there is one).
        """
        found = list(self.problems)
        if self.has_embeddings:
            try:
                self.embeddings
            except (FileNotFoundError, ValueError) as err:
                found.append(str(err))
        if decode:
            for i in range(len(self)):
                try:
                    decode_image(self._paths[i])
                except (FileNotFoundError, ValueError) as err:
                    found.append(str(err))
        for folder in self.empty_class_folders():
            found.append(f"class folder {folder} holds no images (expected the class's "
                         f"image files)")
        shared = self.shared_classes()
        if shared:
            found.append(f"{self.root / 'train' / 'filenames.pickle'} and "
                         f"{self.root / 'test' / 'filenames.pickle'} share {len(shared)} "
                         f"classes (class ids {shared[:10]}); expected a split by class")
        return found

    # ------------------------------------------------------------------ pipeline
    def _mismatched(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        """For each index, a random index of an item of a different class.

        Without classes (every ``class_id`` is -1, e.g. COCO): a random
        *different item* instead.
        """
        n = len(self)
        if not self.has_classes:
            r = rng.integers(0, n - 1, len(idx))
            return r + (r >= idx)
        order = np.argsort(self.class_ids, kind="stable")
        classes, start, count = np.unique(self.class_ids[order], return_index=True,
                                          return_counts=True)
        pos = np.searchsorted(classes, self.class_ids[idx])
        s, c = start[pos], count[pos]
        r = rng.integers(0, n - c)
        r = r + c * (r >= s)
        return order[r]

    def pipeline(self, batch_size: int = 64, image_size: int | None = None, tokenizer=None,
                 max_words: int = 18, wrong: str | None = "caption", shuffle: bool = True,
                 seed: int = 0, repeat: bool = True, cache: bool = True,
                 augment: bool = True, with_index: bool = False, pyramid=(),
                 captions: int = 1, embeddings: bool = False):
        """The batched training pipeline.

        Per example and epoch: one of its captions at random; a mismatched
        caption (and image, with ``wrong="image"``) of an item of a different
        class (of a different item when the dataset has no classes, e.g.
        COCO); the image (after the dataset's standard crop) resized to
        ``image_size * 76 / 64`` then randomly cropped to ``image_size`` and
        randomly flipped (StackGAN / AttnGAN augmentation; ``augment=False``
        resizes straight to ``image_size``); with ``pyramid``, the same crop
        downsampled to smaller sizes (StackGAN++ / AttnGAN feed one image per
        generator stage).

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
                ``N * (image_size*76/64)**2 * 3`` bytes); ``False`` decodes
                from disk on every step (same images, same crops: both paths
                use :meth:`load_image`).
            augment: random crop and flip.
            with_index: also return ``index`` and ``wrong_index`` (item indices,
                for checks and debugging).
            pyramid: sizes ``s`` (multiples of 4, at most ``image_size``) for
                extra keys ``image_<s>`` (and ``wrong_image_<s>``): ``image``
                downsampled with antialiasing (PIL bilinear, as torchvision's
                ``Resize`` in the references), same crop and flip.
                E.g. ``pyramid=(64, 128, 256)`` with ``image_size=256``.
            captions: captions per example. With ``captions > 1``, ``tokens``
                (and ``wrong_tokens``) hold that many distinct captions of the
                item, shape ``(B, captions, max_words)``, for models that average
                their embeddings (Reed et al.'s and StackGAN's reference code
                train on the mean embedding of 4 captions of the image).
            embeddings: also give the precomputed text embeddings
                (:attr:`embeddings`) of the chosen captions: ``embeddings``
                ``(B, captions, D)``, row ``j`` for the caption of ``tokens``
                row ``j`` (the same caption indices), and ``wrong_embeddings``
                for ``wrong_tokens``' captions of the mismatched item. StackGAN
                averages 4 such rows (``captions=4``), StackGAN++ takes one.

        Returns:
            ``tf.data.Dataset`` of dicts: ``image`` float32 ``(B, S, S, 3)`` in
            [-1, 1], ``tokens`` / ``wrong_tokens`` int32 ``(B, max_words)``,
            ``class_id`` int32 ``(B,)`` (-1 without classes), + ``wrong_image``,
            ``image_<s>``, ``wrong_image_<s>``, ``index``, ``wrong_index``,
            float32 ``embeddings`` / ``wrong_embeddings`` ``(B, captions, D)``
            (always 3-D, also for ``captions=1``).

        Raises:
            ValueError: bad ``batch_size``, ``image_size``, ``max_words``,
                ``wrong``, ``pyramid`` or ``embeddings``; ``embeddings=True``
                on a dataset without precomputed embeddings or with a bad
                embeddings file; an unreadable image (named).
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
        if isinstance(captions, bool) or not isinstance(captions, (int, np.integer)) \
                or not 1 <= captions <= self.captions_per_image:
            raise ValueError(f"captions must be an integer in [1, {self.captions_per_image}] "
                             f"(the captions per image of {self.name}), got {captions!r}")
        if wrong is not None and self.has_classes and len(set(self.class_ids.tolist())) < 2:
            raise ValueError("mismatched (wrong) pairs need at least 2 classes in the split; "
                             "pass wrong=None")
        if wrong is not None and len(self) < 2:
            raise ValueError("mismatched (wrong) pairs need at least 2 items; pass wrong=None")
        if isinstance(pyramid, (int, np.integer)):
            pyramid = (pyramid,)
        try:
            pyramid = sorted({_check_image_size(s, "pyramid sizes") for s in pyramid})
        except TypeError:
            raise ValueError(f"pyramid must be a sequence of sizes, got {pyramid!r}") from None
        if pyramid and pyramid[-1] > image_size:
            raise ValueError(f"pyramid sizes must be at most image_size={image_size}, "
                             f"got {pyramid}")
        if not isinstance(embeddings, (bool, np.bool_)):
            raise ValueError(f"embeddings must be True or False, got {embeddings!r}")
        if embeddings and not self.has_embeddings:
            raise ValueError(f"embeddings=True needs precomputed text embeddings, and "
                             f"{self.embeddings_path} is missing (expected StackGAN's "
                             f"{EMBEDDINGS_FILE}; see datasets/cards/{self.name}.md)")
        table = self.embeddings if embeddings else None  # read now: errors name the file
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
            source = cached.__getitem__
        else:
            missing = [p for p in self._paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"image file {missing[0]} is missing "
                                        f"({len(missing)} missing in all)")

            def source(i):
                return self.load_image(int(i), load)

        levels = [s for s in pyramid if s < image_size]

        def crop_batch(idx, offsets, flips):
            """The crops (flipped where asked) and their pyramid levels, uint8."""
            out = [np.empty((len(idx), s, s, 3), dtype=np.uint8) for s in (image_size, *levels)]
            for k, (i, (oy, ox), flip) in enumerate(zip(idx, offsets, flips)):
                im = source(i)[oy:oy + image_size, ox:ox + image_size]
                out[0][k] = im[:, ::-1] if flip else im
                if levels:
                    full = Image.fromarray(out[0][k])
                    for level, s in zip(out[1:], levels):  # antialiased, as torchvision's Resize
                        level[k] = np.asarray(full.resize((s, s), Image.BILINEAR))
            return out

        def fetch_cropped(idx, offsets, flips):
            out = tf.numpy_function(crop_batch, [idx, offsets, flips],
                                    [tf.uint8] * (1 + len(levels)), stateful=False)
            return [tf.ensure_shape(im, (b, s, s, 3))
                    for im, s in zip(out, (image_size, *levels))]

        batches_per_epoch = n // b

        def plan_epoch(epoch):
            """Shuffled indices, caption choices and mismatched pairs of one epoch."""
            rng = np.random.default_rng([int(seed), int(epoch)])
            idx = rng.permutation(n) if shuffle else np.arange(n)
            cap = rng.integers(0, c, n)
            widx = self._mismatched(rng, idx) if wrong is not None else idx
            wcap = rng.integers(0, c, n)
            if captions > 1:  # distinct captions of each item
                cap = np.argsort(rng.random((n, c)), axis=1)[:, :captions]
                wcap = np.argsort(rng.random((n, c)), axis=1)[:, :captions]
            usable = batches_per_epoch * b
            return tuple(a[:usable].reshape(batches_per_epoch, b, *a.shape[1:]).astype(np.int64)
                         for a in (idx, cap, widx, wcap))

        item_shape = (batches_per_epoch, b)
        caption_shape = item_shape + ((captions,) if captions > 1 else ())
        shapes = (item_shape, caption_shape, item_shape, caption_shape)  # as plan_epoch returns

        def epoch_batches(epoch):
            arrays = tf.numpy_function(plan_epoch, [epoch], [tf.int64] * 4, stateful=False)
            arrays = [tf.ensure_shape(a, shape) for a, shape in zip(arrays, shapes)]
            steps = tf.range(batches_per_epoch, dtype=tf.int64) + epoch * batches_per_epoch
            keys = ("index", "caption", "wrong_index", "wrong_caption")
            return tf.data.Dataset.from_tensor_slices({**dict(zip(keys, arrays)), "step": steps})

        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        ds = epochs.flat_map(epoch_batches)

        def augmented(idx, key, prefix, out):
            """Images of items ``idx``: random crop + flip (from ``key``), in [-1, 1],
            and their pyramid levels, written to ``out[prefix]``, ``out[prefix_<s>]``."""
            if augment:
                offsets = tf.random.stateless_uniform((b, 2), key, 0, load - image_size + 1,
                                                      dtype=tf.int32)
                flips = tf.random.stateless_uniform((b,), key + [0, 7]) < 0.5
            else:
                offsets, flips = tf.zeros((b, 2), tf.int32), tf.zeros((b,), tf.bool)
            images = [tf.cast(im, tf.float32) / 127.5 - 1.0
                      for im in fetch_cropped(idx, offsets, flips)]
            out[prefix] = images[0]
            for s, im in zip(levels, images[1:]):
                out[f"{prefix}_{s}"] = im
            if image_size in pyramid:
                out[f"{prefix}_{image_size}"] = images[0]

        def pick_tokens(idx, cap):
            """tokens[idx, cap]: (B, max_words), or (B, captions, max_words)."""
            cap = tf.cast(cap, tf.int32)
            if captions > 1:
                idx = tf.broadcast_to(idx[:, None], tf.shape(cap))
            return tf.gather_nd(tokens, tf.stack([idx, cap], axis=-1))

        def rows(i, cap):
            return table[i[:, None], cap.reshape(len(i), -1)]

        def pick_embeddings(idx, cap):
            """embeddings[idx, cap]: the rows of pick_tokens' captions, (B, captions, D)."""
            out = tf.numpy_function(rows, [idx, cap], tf.float32, stateful=False)
            return tf.ensure_shape(out, (b, captions, table.shape[2]))

        def to_batch(p):
            key = tf.stack([tf.constant(int(seed), tf.int64), p["step"]])
            key = tf.cast(key, tf.int32)
            idx = tf.cast(p["index"], tf.int32)
            out = {}
            augmented(idx, key, "image", out)
            out["tokens"] = pick_tokens(idx, p["caption"])
            out["class_id"] = tf.gather(class_ids, idx)
            widx = tf.cast(p["wrong_index"], tf.int32)
            if wrong is not None:
                out["wrong_tokens"] = pick_tokens(widx, p["wrong_caption"])
            if embeddings:
                out["embeddings"] = pick_embeddings(idx, p["caption"])
            if embeddings and wrong is not None:
                out["wrong_embeddings"] = pick_embeddings(widx, p["wrong_caption"])
            if wrong == "image":
                augmented(widx, key + [0, 13], "wrong_image", out)
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


def _positions(names: list[str], kept: list[str]) -> np.ndarray:
    """Positions in ``names`` of ``kept``, a subsequence of it (the items not skipped)."""
    out, k = [], 0
    for i, name in enumerate(names):
        if k < len(kept) and name == kept[k]:
            out.append(i)
            k += 1
    if k != len(kept):
        raise ValueError(f"item {kept[k]!r} is not in the order of filenames.pickle")
    return np.array(out, dtype=np.int64)
