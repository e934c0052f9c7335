"""Speed of a convolution whose output is smaller than its kernel, on JAX's CPU: XLA's own
convolution against `ganlib.backend.conv_by_patches`, which ganlib's JAX backend patch uses
for such convolutions (`ganlib.backend.small_output_conv`).

Run:  python tests/benchmarks/small_conv.py [--batch 2] [--repeats 5]

Times the gradient of sum(conv(x, w)^2) with respect to x and w, jitted, for HDGAN's
discriminator convolution (5x5, 512 -> 512 channels, 8x8 -> 4x4) and a 4x4 one from 5x5 to
2x2, and for the same 5x5 convolution from 9x9 (5x5 outputs: XLA's own, the control), and
prints milliseconds, GFLOP/s of the gradient (2x the forward's FLOPs) and the ratio.
Not collected by pytest.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ganlib.backend import conv_by_patches  # noqa: E402


def xla_conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def ms(fn, x, w, repeats):
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(fn(x, w) ** 2), argnums=(0, 1)))
    jax.block_until_ready(grad(x, w))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(grad(x, w))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__}, {jax.default_backend()}, batch {args.batch}")
    for size, k, c in ((8, 5, 512), (5, 4, 512), (9, 5, 512)):
        x = jnp.asarray(rng.standard_normal((args.batch, size, size, c)), "float32")
        w = jnp.asarray(rng.standard_normal((k, k, c, c)) * 0.01, "float32")
        out = size - k + 1
        gflop = 2 * 2 * args.batch * out * out * k * k * c * c / 1e9
        native, patches = ms(xla_conv, x, w, args.repeats), ms(conv_by_patches, x, w, args.repeats)
        print(f"  {size}x{size}x{c} -> {out}x{out}x{c}, {k}x{k}: XLA {native:8.1f} ms ({gflop / native * 1e3:5.1f} "
              f"GFLOP/s), patches {patches:7.1f} ms ({gflop / patches * 1e3:5.1f} GFLOP/s), {native / patches:5.1f}x")


if __name__ == "__main__":
    main()
