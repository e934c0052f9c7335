"""MS-COCO 2014 with its captions, in the AttnGAN layout or from the official annotations.

Layout (``root/``, as AttnGAN's ``data/coco``)::

    images/COCO_train2014_000000000009.jpg ...   train2014 and val2014 images in one folder,
      or train2014/COCO_train2014_*.jpg and val2014/COCO_val2014_*.jpg (the official archives)
    text/COCO_train2014_000000000009.txt         5 captions per image (AttnGAN's coco text)
    train/filenames.pickle, test/filenames.pickle   ["COCO_train2014_000000000009", ...]

or, when there is no ``text/`` folder, the captions come from the official
annotations::

    annotations/captions_train2014.json          the train split (82783 images)
    annotations/captions_val2014.json            the test split (40504 images, as AttnGAN)

(``train|test/filenames.pickle``, when present, still choose and order the
items; otherwise every image of the split's JSON file is an item, sorted by
file name.)

Rules:

* **Crop**: none (the whole image; a square ``image_size`` squashes it).
* **Captions**: 5 per image (AttnGAN's ``CAPTIONS_PER_IMAGE`` for COCO); an
  image with more keeps the first 5 (file / annotation order), one with fewer
  is an error (``strict=True``) or skipped (``strict=False``).
* **Class ids**: COCO has no class split; every item has ``class_id == -1``
  and ``class_names == []`` (``ds.has_classes`` is False). The mismatched
  ("wrong") caption or image of the pipeline is then drawn from a *different
  image* instead of a different class. Pass ``class_ids=None`` to losses
  that exclude same-class negatives (e.g. ``damsm_loss``).
"""

from __future__ import annotations

import json
import pathlib

from ganlib.data.captioned import CaptionedDataset, load_name_list, read_caption_file

NAMES_WHAT = "a pickled list of \"COCO_train2014_NNNNNNNNNNNN\" image names"
JSON_OF = {"train": "captions_train2014.json", "test": "captions_val2014.json"}


class COCODataset(CaptionedDataset):
    """MS-COCO 2014 captions (see the module docstring); 5 captions per image, no classes."""

    layout = ("a folder with images/ (or train2014/ + val2014/), text/ or "
              "annotations/captions_*2014.json, and train/, test/ filenames.pickle, "
              "in the AttnGAN coco layout")
    default_captions_per_image = 5

    def __init__(self, root, split: str = "train", name: str = "coco",
                 image_size: int | None = None, captions_per_image: int | None = None,
                 strict: bool = True):
        super().__init__(root, split=split, name=name, image_size=image_size,
                         captions_per_image=captions_per_image, strict=strict)

    def _image_path(self, key: str) -> pathlib.Path:
        """Where image ``key`` is (or, if nowhere, where it was expected first)."""
        folders = [self.root / "images", self.root / "train2014", self.root / "val2014"]
        if "val2014" in key:
            folders[1], folders[2] = folders[2], folders[1]
        candidates = [f / f"{key}.jpg" for f in folders]
        found = next((p for p in candidates if p.is_file()), None)
        if found is not None:
            return found
        return next((p for p, f in zip(candidates, folders) if f.is_dir()), candidates[0])

    def _annotations(self, which: str) -> dict[str, list[str]]:
        """``{image name: [captions...]}`` of ``annotations/captions_<which>2014.json``."""
        cache = self.__dict__.setdefault("_json_cache", {})
        if which in cache:
            return cache[which]
        path = self.root / "annotations" / f"captions_{which}2014.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.name} dataset at {self.root} is incomplete: "
                                    f"{path} is missing (expected the official COCO "
                                    f"captions, or AttnGAN's text/ folder)")
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
            names = {im["id"]: im["file_name"].rsplit(".", 1)[0] for im in table["images"]}
            captions = {name: [] for name in names.values()}
            for ann in table["annotations"]:
                captions[names[ann["image_id"]]].append(" ".join(str(ann["caption"]).split()))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"cannot read {path}: {type(err).__name__} {err} (expected "
                             f"COCO captions JSON with \"images\" [{{id, file_name}}] and "
                             f"\"annotations\" [{{image_id, caption}}])") from err
        cache[which] = captions
        return captions

    def _read(self) -> None:
        root, split = self.root, self.split
        split_file = root / split / "filenames.pickle"
        text_dir = root / "text"
        if not any((root / d).is_dir() for d in ("images", "train2014", "val2014")):
            self._require({root / "images": "the COCO images images/COCO_*2014_*.jpg "
                                            "(or train2014/ and val2014/)"})
        if text_dir.is_dir():
            self._require({split_file: f"the {split} split ({NAMES_WHAT})"})
        if split_file.is_file():
            names = [n[:-4] if n.endswith(".jpg") else n
                     for n in load_name_list(split_file, NAMES_WHAT)]
            listed_in = split_file
        else:
            which = "train" if split == "train" else "val"
            names = sorted(self._annotations(which))
            listed_in = root / "annotations" / JSON_OF[split]
            if not names:
                raise ValueError(f"{listed_in} lists no images")
        if not text_dir.is_dir():  # a missing or broken JSON file is a layout error: raise now
            for which in sorted({"val" if "val2014" in k else "train" for k in names}):
                self._annotations(which)
        expected = self.captions_per_image

        def captions_of(key):
            if text_dir.is_dir():
                return read_caption_file(text_dir / f"{key}.txt", expected)
            which = "val" if "val2014" in key else "train"
            table = self._annotations(which)
            source = root / "annotations" / f"captions_{which}2014.json"
            if key not in table:
                raise ValueError(f"image {key!r} (from {listed_in}) has no entry in {source}")
            caps = [c for c in table[key] if c]
            if len(caps) < expected:
                raise ValueError(f"image {key!r} has only {len(caps)} captions in {source} "
                                 f"(expected {expected})")
            return caps[:expected]

        def make(key):
            path = self._image_path(key)
            if not path.is_file():
                raise self._missing_image(path, listed_in, key)
            return path, None, -1, captions_of(key)

        self._gather(names, make)
        self.class_names = []
        self.__dict__.pop("_json_cache", None)  # the tables are large; items hold what is needed
