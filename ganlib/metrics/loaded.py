"""The pretrained helper networks the metrics score with, each folder loaded once per process."""

import importlib
import os

_LOADED = {}


def pretrained(kind, path=None):
    """``(model, tokenizer)`` of the folder ``path`` of helper ``kind`` ("damsm", "vs", ...:
    ``ganlib.models.<kind>.load_pretrained``; None: the shipped SynthBirds one), loaded once."""
    key = (kind, None if path is None else os.path.abspath(os.fspath(path)))
    if key not in _LOADED:
        _LOADED[key] = importlib.import_module(f"ganlib.models.{kind}").load_pretrained(path)
    return _LOADED[key]
