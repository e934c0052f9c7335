"""Oxford-102 flowers with Reed et al.'s captions, in the StackGAN layout.

Layout (``root/``, as StackGAN's ``Data/flowers``)::

    jpg/image_00001.jpg ... image_08189.jpg      the Oxford-102 images (102flowers.tgz)
    text_c10/class_00001/image_06734.txt         10 captions per image (Reed et al.),
                                                 one folder per class (.h5/.t7 files ignored)
    train/filenames.pickle, test/filenames.pickle   ["jpg/image_06734", ...]
                                                 (bare "image_06734" is accepted too)
    train/class_info.pickle, test/class_info.pickle (optional, checked) class per file
    train/char-CNN-RNN-embeddings.pickle, test/...  (optional) StackGAN's precomputed
                                                 text embeddings, (10, 1024) per image

Rules:

* **Crop**: none; flowers have no bounding boxes, an item is the whole image
  (``ds[i]["image"]`` keeps its aspect ratio; a square ``image_size`` and the
  pipeline squash it to a square, as StackGAN's preprocessing does).
* **Class ids**: the number of the ``text_c10/class_NNNNN`` folder holding the
  image's captions, minus one (0..101); ``class_info.pickle``, when present,
  must group the files the same way.
* **Split**: StackGAN's split is by class: 82 train (Reed's train + val) and
  20 test classes, 7034 / 1155 images.
* **Embeddings**: as for CUB (:func:`ganlib.data.captioned.load_embeddings`):
  row ``j`` of an image's array embeds caption ``j`` of its
  ``text_c10/class_NNNNN/image_NNNNN.txt`` (StackGAN pairs them so), in the
  order of ``filenames.pickle``.

Bad input follows :class:`ganlib.data.captioned.CaptionedDataset`: an error
naming the file (``strict=True``) or a skipped item counted in one warning
(``strict=False``).
"""

from __future__ import annotations

import re

import numpy as np

from ganlib.data.captioned import (CaptionedDataset, check_class_info, load_class_info,
                                   load_name_list, read_caption_file)

_CLASS_DIR = re.compile(r"^class_(\d+)$")
NAMES_WHAT = "a pickled list of \"jpg/image_NNNNN\""


class FlowersDataset(CaptionedDataset):
    """Oxford-102 flowers in the StackGAN layout (see the module docstring).

    Same arguments and attributes as :class:`CaptionedDataset` (``name`` is
    ``"flowers"``); ``class_names[k]`` is ``"class_NNNNN"`` of class id ``k``.
    """

    layout = ("a folder with jpg/, text_c10/class_NNNNN/, train/ and test/ in the "
              "StackGAN flowers layout")

    def __init__(self, root, split: str = "train", name: str = "flowers",
                 image_size: int | None = None, captions_per_image: int | None = None,
                 strict: bool = True):
        super().__init__(root, split=split, name=name, image_size=image_size,
                         captions_per_image=captions_per_image, strict=strict)

    def _caption_index(self):
        """``{"image_NNNNN": (class number, caption path)}`` from ``text_c10/``."""
        if getattr(self, "_index", None) is not None:
            return self._index
        index, self._empty_dirs = {}, []
        for folder in sorted(self.root.joinpath("text_c10").iterdir()):
            match = _CLASS_DIR.match(folder.name)
            if not folder.is_dir() or not match:
                continue
            files = sorted(folder.glob("*.txt"))
            if not files:
                self._empty_dirs.append(folder)
            for path in files:
                if path.stem in index:
                    raise ValueError(f"caption file {path} duplicates {index[path.stem][1]} "
                                     f"(expected each image's captions in one class folder)")
                index[path.stem] = (int(match.group(1)), path)
        self._index = index
        return index

    def _read(self) -> None:
        root, split = self.root, self.split
        split_file = root / split / "filenames.pickle"
        self._require({
            root / "jpg": "the Oxford-102 images jpg/image_NNNNN.jpg",
            root / "text_c10": "Reed et al.'s captions text_c10/class_NNNNN/image_NNNNN.txt",
            split_file: f"the {split} split ({NAMES_WHAT})",
        })
        names = load_name_list(split_file, NAMES_WHAT)
        index = self._caption_index()
        if not index:
            raise FileNotFoundError(f"{root / 'text_c10'} holds no caption files (expected "
                                    f"class_NNNNN/image_NNNNN.txt)")
        info_file = root / split / "class_info.pickle"
        info = load_class_info(info_file, len(names))
        info_of = dict(zip(names, info)) if info is not None else {}

        def make(key):
            stem = key.rsplit("/", 1)[-1]
            path = root / f"{key}.jpg" if "/" in key else root / "jpg" / f"{stem}.jpg"
            if not path.is_file():
                raise self._missing_image(path, split_file, key)
            if stem not in index:
                where = (f"text_c10/class_{info_of[key]:05d}/{stem}.txt" if key in info_of
                         else f"text_c10/class_NNNNN/{stem}.txt")
                raise FileNotFoundError(f"caption file {root / where} is missing (expected "
                                        f"{self.captions_per_image} captions for {key!r}, "
                                        f"one per line)")
            number, caption_path = index[stem]
            return path, None, number - 1, read_caption_file(caption_path,
                                                             self.captions_per_image)

        self._gather(names, make)
        if info is not None:
            check_class_info([info_of[fn] for fn in self.filenames], self.class_ids,
                             self.filenames, info_file)
        top = max(number for number, _ in index.values())
        self.class_names = [f"class_{k + 1:05d}" for k in range(top)]
        self._warn_shared_classes()

    def _other_split_class_ids(self) -> np.ndarray | None:
        other = "test" if self.split == "train" else "train"
        path = self.root / other / "filenames.pickle"
        if not path.is_file():
            return None
        try:
            names = load_name_list(path, NAMES_WHAT)
        except ValueError:
            return None
        index = self._caption_index()
        stems = [n.rsplit("/", 1)[-1] for n in names]
        return np.array([index[s][0] - 1 for s in stems if s in index])

    def empty_class_folders(self):
        """Caption class folders ``text_c10/class_NNNNN`` that hold no caption file."""
        self._caption_index()
        return list(self._empty_dirs)
