"""Speed of a stride-2 transposed convolution on JAX's CPU: XLA's own (`jax.lax.conv_transpose`,
as Keras calls it) against `ganlib.backend.conv_transpose_by_phases`, which ganlib's JAX backend
patch uses on the CPU (`ganlib.backend.phase_conv_transpose`).

Run:  python tests/benchmarks/conv_transpose.py [--batch 1] [--repeats 3]

Times the gradient of sum(conv_transpose(x, w)^2) with respect to x and w, jitted, for
pix2pixHD's up-sampling steps (3x3, stride 2, 'valid' then cropped: the paper preset's four at
1024x512 output, 1024 -> 512 channels down to 128 -> 64) and DCGAN's / pix2pix's (4x4, stride 2,
'same'), and prints milliseconds, GFLOP/s of the gradient (3x the transposed convolution's
multiply-adds x 2) and the ratio. Not collected by pytest.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend.common.backend_utils import compute_conv_transpose_padding_args_for_jax  # noqa: E402

from ganlib.backend import conv_transpose_by_phases  # noqa: E402
from small_conv import ms  # noqa: E402  (this folder: the script's own)


def xla_conv_transpose(x, w, padding):
    pads = compute_conv_transpose_padding_args_for_jax(x.shape, w.shape, 2, padding, None, 1)
    return jax.lax.conv_transpose(x, w, (2, 2), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  transpose_kernel=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__}, {jax.default_backend()}, batch {args.batch}")
    cases = [(32, 64, 1024, 512, 3, "valid"), (64, 128, 512, 256, 3, "valid"), (128, 256, 256, 128, 3, "valid"),
             (256, 512, 128, 64, 3, "valid"), (16, 16, 512, 256, 4, "same"), (64, 64, 128, 3, 4, "same")]
    for h, w_, cin, cout, k, padding in cases:
        x = jnp.asarray(rng.standard_normal((args.batch, h, w_, cin)), "float32")
        w = jnp.asarray(rng.standard_normal((k, k, cout, cin)) * 0.01, "float32")
        gflop = 3 * 2 * args.batch * h * w_ * k * k * cin * cout / 1e9
        native = ms(lambda x, w: xla_conv_transpose(x, w, padding), x, w, args.repeats)
        phases = ms(lambda x, w: conv_transpose_by_phases(x, w, 2, padding), x, w, args.repeats)
        print(f"  {h}x{w_}x{cin} -> x2 x{cout}, {k}x{k} {padding}: XLA {native:8.1f} ms "
              f"({gflop / native * 1e3:5.1f} GFLOP/s), phases {phases:8.1f} ms ({gflop / phases * 1e3:5.1f} "
              f"GFLOP/s), {native / phases:5.1f}x", flush=True)


if __name__ == "__main__":
    main()
