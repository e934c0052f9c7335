"""The pretrained helper networks the metrics score with, each folder loaded once per process."""

import importlib
import os

_LOADED = {}


def pretrained(kind, path=None):
    """``(model, tokenizer)`` of the folder ``path`` of helper ``kind`` ("damsm", "vs", ...:
    ``ganlib.models.<kind>.load_pretrained``; None: the shipped SynthBirds one), loaded once per
    folder: each kind's ``folder(path)`` resolves None and shipped names first, so ``None`` and the
    shipped name of the same folder, or a relative path after a change of directory, share one load."""
    module = importlib.import_module(f"ganlib.models.{kind}")
    key = (kind, os.path.abspath(module.folder(path)))
    if key not in _LOADED:
        _LOADED[key] = module.load_pretrained(path)
    return _LOADED[key]
