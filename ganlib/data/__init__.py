"""Datasets: the synthetic defaults and readers of real data.

    >>> from ganlib.data import open_dataset
    >>> ds = open_dataset("synthbirds", split="train")   # generated on first use
    >>> item = ds[0]              # {"image", "captions", "class_id", "filename", "attributes"}
    >>> batches = ds.pipeline(batch_size=64, image_size=64)   # tf.data, for model.fit

Modules:

* :mod:`ganlib.data.synthbirds` -- the procedural CUB-like bird dataset;
* :mod:`ganlib.data.captioned` -- the shared reader machinery and pipeline,
  and the CUB-200-2011 / AttnGAN layout reader (CUB and SynthBirds);
* :mod:`ganlib.data.flowers` -- Oxford-102 flowers in the StackGAN layout;
* :mod:`ganlib.data.coco` -- MS-COCO 2014 in the AttnGAN layout or from the
  official caption annotations;
* :mod:`ganlib.data.synthstreets` -- the procedural Cityscapes-like street
  scenes (label map, instance map, photo);
* :mod:`ganlib.data.cityscapes` -- the Cityscapes layout reader (Cityscapes
  and SynthStreets): ``ds[i]`` -> ``{"image", "label", "instance", "filename"}``;
* :mod:`ganlib.data.check` -- ``ganlib data check``: counts and problems.

Data roots: ``$GANLIB_DATA_ROOT`` if set; otherwise ``<checkout>/datasets``
when ganlib runs from a source checkout that has a ``datasets/`` folder;
otherwise ``~/.cache/ganlib/datasets``. Each dataset lives in a sub-folder
(``synthbirds/``, ``cub/``, ``flowers/``, ``coco/``, ``synthstreets/``,
``cityscapes/``). The expected layouts,
where to get the data and its licence are in ``datasets/cards/``.
"""

from __future__ import annotations

import os
import pathlib
import shutil

from ganlib.data.captioned import CaptionedDataset
from ganlib.data.cityscapes import StreetsDataset
from ganlib.data.coco import COCODataset
from ganlib.data.flowers import FlowersDataset

__all__ = ["CaptionedDataset", "COCODataset", "FlowersDataset", "StreetsDataset", "default_root",
           "open_dataset", "DATASETS", "READERS"]

DATASETS = ("synthbirds", "cub", "flowers", "coco", "synthstreets", "cityscapes")
#: reader class of each available dataset
READERS = {"synthbirds": CaptionedDataset, "cub": CaptionedDataset,
           "flowers": FlowersDataset, "coco": COCODataset,
           "synthstreets": StreetsDataset, "cityscapes": StreetsDataset}
#: the default SynthStreets, generated on first use
SYNTHSTREETS_DEFAULT = {"n": 3000, "size": (256, 128), "seed": 0}


def default_root() -> pathlib.Path:
    """Folder that holds the datasets (see the module docstring for the rule)."""
    env = os.environ.get("GANLIB_DATA_ROOT")
    if env:
        return pathlib.Path(env).expanduser()
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / "datasets").is_dir() and (checkout / "ganlib").is_dir():
        return checkout / "datasets"
    return pathlib.Path.home() / ".cache" / "ganlib" / "datasets"


def open_dataset(name: str, root=None, split: str = "train",
                 image_size: int | None = None, strict: bool = True) -> CaptionedDataset:
    """Open a dataset by name.

    Args:
        name: one of ``"synthbirds"``, ``"cub"`` (CUB-200-2011, AttnGAN
            layout), ``"flowers"`` (Oxford-102, StackGAN layout), ``"coco"``
            (COCO-2014, AttnGAN layout or official annotations),
            ``"synthstreets"`` or ``"cityscapes"`` (Cityscapes layout, read by
            :class:`StreetsDataset`).
        root: dataset folder; default ``default_root() / name``. With the
            default root, a missing SynthBirds is generated there first
            (6000 images, 64 px, seed 0), and a missing SynthStreets too
            (3000 scenes of 256x128, seed 0: 2500 train, 500 test).
        split: ``"train"`` or ``"test"`` (Cityscapes: also ``"val"``).
        image_size: optional square size of ``ds[i]["image"]`` and default
            size of ``ds.pipeline()``; a positive multiple of 4. Street
            scenes: an ``(H, W)`` pair for ``ds[i]``.
        strict: ``True``: a bad item (missing image or caption file, too few
            captions...) raises an error naming the file; ``False``: bad items
            are skipped with one warning giving their count (``ds.problems``).

    Returns:
        A :class:`CaptionedDataset` (:class:`FlowersDataset` for flowers,
        :class:`COCODataset` for coco, :class:`StreetsDataset` for street scenes).

    Raises:
        ValueError: unknown name, bad split or image_size.
        FileNotFoundError: the root or its expected files are missing.
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset name {name!r}; expected one of {DATASETS}")
    name = name.lower()
    if READERS[name] is StreetsDataset:
        if root is None:
            root = default_root() / name
            if name == "synthstreets" and not (root / "synthstreets.json").is_file():
                _generate_default_synthstreets(root)
        return StreetsDataset(root, split=split, name=name, size=image_size, strict=strict)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if root is None:
        root = default_root() / name
        if name == "synthbirds" and not (root / "CUB_200_2011" / "images.txt").is_file():
            _generate_default_synthbirds(root)
    return READERS[name](root, split=split, name=name, image_size=image_size, strict=strict)


def _generate_default_synthbirds(root: pathlib.Path) -> None:
    """Generate the default SynthBirds at ``root``, atomically.

    The data is written to a temporary sibling folder and renamed into place,
    so a concurrent reader never sees a half-written dataset (and two
    processes racing to generate it simply both succeed).
    """
    from ganlib.data import synthbirds

    print(f"ganlib: SynthBirds not found at {root}; generating it there "
          f"(6000 images, 64 px, seed 0)", flush=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    synthbirds.generate(tmp, verbose=False)
    if root.exists() and not (root / "CUB_200_2011" / "images.txt").is_file():
        shutil.rmtree(root)  # an incomplete earlier attempt
    try:
        tmp.rename(root)
    except OSError:  # another process finished first: its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)


def _generate_default_synthstreets(root: pathlib.Path) -> None:
    """Generate the default SynthStreets at ``root``, atomically (as SynthBirds)."""
    from ganlib.data import synthstreets

    d = SYNTHSTREETS_DEFAULT
    print(f"ganlib: SynthStreets not found at {root}; generating it there ({d['n']} scenes, "
          f"{d['size'][0]}x{d['size'][1]} px, seed {d['seed']})", flush=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    synthstreets.generate(tmp, verbose=False, **d)
    if root.exists() and not (root / "synthstreets.json").is_file():
        shutil.rmtree(root)  # an incomplete earlier attempt
    try:
        tmp.rename(root)
    except OSError:  # another process finished first: its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
