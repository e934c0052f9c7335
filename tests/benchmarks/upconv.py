"""Speed of `ganlib.layers.UpConv`'s two ways to compute a transposed convolution.

Run:  KERAS_BACKEND=jax python tests/benchmarks/upconv.py [--steps 30]

Times one training step (forward + backward + Adam, via `fit`) of the fast
GAN-INT-CLS generator's up-sampling stack (4x4x256 -> 32x32x3, batch 32) with
`mode="transpose"` (the backend's transposed convolution) and `mode="phases"`
(one ordinary convolution per layer, interleaved), and prints ms per step.
`ganlib.backend.upconv_mode()` picks the faster one per backend. On JAX's CPU
ganlib's backend patch computes `mode="transpose"` by the phases as well, so the two
lines there time the same computation; `tests/benchmarks/conv_transpose.py` times
XLA's own transposed convolution. Not collected by pytest.
"""

import argparse
import time

import keras
import numpy as np

from ganlib.layers import UpConv
from ganlib.backend import upconv_mode


def generator_stack(mode):
    x = keras.Input((4, 4, 256))
    h = x
    for filters in (128, 64):
        h = UpConv(filters, use_bias=False, mode=mode)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    return keras.Model(x, UpConv(3, activation="tanh", mode=mode)(h))


def ms_per_step(mode, steps, batch=32):
    model = generator_stack(mode)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, 4, 4, 256)).astype("float32")
    y = rng.uniform(-1, 1, (batch * steps, 32, 32, 3)).astype("float32")
    model.fit(x[:batch * 3], y[:batch * 3], batch_size=batch, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, verbose=0)
    return (time.perf_counter() - start) / steps * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    print(f"backend {keras.backend.backend()}; upconv_mode() = {upconv_mode()!r}")
    for mode in ("transpose", "phases"):
        print(f"  {mode:9s}: {ms_per_step(mode, args.steps):7.1f} ms per training step")


if __name__ == "__main__":
    main()
