"""Fixtures shared by the library tests, and the compiler setting they run under.

XLA (JAX, and TensorFlow where it compiles with XLA) optimises each compiled step at its
backend's optimisation level 1 here: the tests compile many small steps, so compiling
dominates most of them, and level 1 compiles about as fast as level 0 while its code runs
as fast as the default level's. Measured on JAX, 2-core AMD EPYC (AVX2), the tiny HDGAN of
tests/test_hdgan.py: first step (compile) 41 s at the default level, 21 s at level 0, 22 s at
level 1; each later step 0.5 s at the default level and at level 1, 4.4 s at level 0 (whose
unoptimised fused loops made that file's 100-step learning test take 458 s). A level given
in XLA_FLAGS wins; the other flags there (CI's thread settings, say) are kept beside level 1.
"""

import os

_xla_flags = os.environ.get("XLA_FLAGS", "")
if "--xla_backend_optimization_level" not in _xla_flags:   # before jax / tensorflow load
    os.environ["XLA_FLAGS"] = f"{_xla_flags} --xla_backend_optimization_level=1".strip()

# JAX draws each weight initialiser's values with a compiled `jax.random` call per new shape.
# With JAX's default partitionable threefry those compiles took 0.4-12 s each on CPU (jax 0.10.2,
# one thread), 0.4-0.7 s with the non-partitionable one, which the tests use (their thresholds
# are measured with it on JAX; the library leaves JAX's setting to the user). Measured, 2-core
# AMD EPYC, the JAX suite without the model files, two paired runs one per core: 1005 -> 861 s CPU.
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "false")

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
