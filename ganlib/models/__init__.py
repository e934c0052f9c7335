"""One module per paper: `ganlib.models.<paper>` holds `Config`, the model and its registry
entry `SPEC` (`ganlib.models.registry.PaperSpec`), read with `get(name)`."""

import importlib

# The models `ganlib train MODEL` knows, in course order.
MODELS = ("cgan", "stackgan", "stackganpp", "attngan", "hdgan", "mirrorgan", "pix2pixhd")


# The text-to-image papers (the SynthBirds leaderboard scores these); pix2pixHD maps label maps.
TEXT_MODELS = tuple(m for m in MODELS if m != "pix2pixhd")


def get(name):
    """The registry entry (`PaperSpec`) of a paper by name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return importlib.import_module(f"ganlib.models.{name}").SPEC


def import_all():
    """Import every paper's module (registers their Keras classes, e.g. before loading a checkpoint)."""
    return [get(name) for name in MODELS]
