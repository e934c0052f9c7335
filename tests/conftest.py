"""Fixtures shared by the library tests."""

import pytest


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
