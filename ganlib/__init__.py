"""ganlib: text-to-image GANs, paper by paper, in Keras 3 (TensorFlow, JAX, PyTorch).

    >>> import ganlib
    >>> from ganlib.models import cgan
    >>> model = cgan.GANINTCLS(cgan.Config.fast())

Submodules are imported lazily so that `import ganlib` stays cheap.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "analysis", "backend", "callbacks", "conditioning", "convert", "course", "data", "encoders",
    "evaluation", "layers", "losses", "metrics", "models", "runs", "text", "training",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"ganlib.{name}")
    raise AttributeError(f"module 'ganlib' has no attribute {name!r}")
