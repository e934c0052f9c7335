"""Fixtures shared by the library tests, and the compiler setting they run under.

XLA (JAX, and TensorFlow where it compiles with XLA) optimises each compiled step at its
backend's optimisation level 0 here: the tests compile many small steps and run each a few
times, so compiling dominates (tests/test_cgan.py on JAX: 296 s -> 151 s on 2 cores, the same
17 tests passing). Set XLA_FLAGS yourself to test under other settings.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")   # before jax / tensorflow load

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_birds_root(tmp_path_factory):
    """A small SynthBirds (400 images, 32 px, seed 3), generated once per test session."""
    from ganlib.data import synthbirds

    root = tmp_path_factory.mktemp("birds")
    synthbirds.generate(root, n=400, size=32, seed=3, verbose=False)
    return root


@pytest.fixture(scope="session")
def birds(tiny_birds_root):
    """`(train, test)` splits of the small SynthBirds."""
    from ganlib.data import open_dataset

    return tuple(open_dataset("synthbirds", root=tiny_birds_root, split=s) for s in ("train", "test"))
