"""Speed of ganlib's fused normalisation (`ganlib.backend`, TensorFlow and PyTorch: the batch-norm
kernel for `BatchNormalization` in training and for `GroupNormalization` with one group per
channel, i.e. instance norm) against Keras' own layers, measured in one process so that a machine
whose speed drifts hits both alike: two copies of a model's preset, one built (and on TensorFlow
traced) with the fused paths and one with Keras' calls, stepped in turn, A B then B A, for `--rounds`
rounds of `--steps` steps on the same synthetic batch (`ganlib.bench.synthetic_batch`).

Run:  KERAS_BACKEND=tensorflow python tests/benchmarks/fused_batch_norm.py cgan [--preset fast]
      [--batch N] [--rounds 6] [--steps 5]
      KERAS_BACKEND=torch python tests/benchmarks/fused_batch_norm.py --layer instance
      [--shape 1,512,1024,64]

`--layer batch|instance` times one normalisation layer alone instead (training-mode
`BatchNormalization`, or `GroupNormalization(groups=-1)`, both with gamma and beta): a per-channel
1x1 depthwise convolution (so that the input's gradient is needed, as inside a network), the
layer, and one SGD step on sum(y * g) for a random input `x` and `g` of `--shape`.

Prints the median step of each, their ratio and the median, min and max of the per-round ratios,
with the matmul calibration before and after. Not collected by pytest.
"""

import argparse

import keras
import numpy as np
from keras.src.layers.normalization.batch_normalization import BatchNormalization
from keras.src.layers.normalization.group_normalization import GroupNormalization

import ganlib.backend  # noqa: F401  (installs the fused training path)
from ganlib import bench


def build(args):
    model = bench.build_model(args.model, args.preset, args.batch)
    model.compile()
    return model, bench.synthetic_batch(model, model.config.batch_size)


def build_layer(kind, shape):
    shape = tuple(int(n) for n in shape.split(","))
    norm = (keras.layers.BatchNormalization() if kind == "batch" else keras.layers.GroupNormalization(groups=-1))
    model = keras.Sequential([keras.Input(shape[1:]), keras.layers.DepthwiseConv2D(1, use_bias=False), norm])
    model.compile(keras.optimizers.SGD(1e-3), loss=lambda g, y: keras.ops.sum(g * y))
    rng = np.random.default_rng(0)
    return model, tuple(rng.standard_normal(shape).astype("float32") for _ in range(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a model's preset, or --layer")
    parser.add_argument("--layer", choices=("batch", "instance"), default=None)
    parser.add_argument("--shape", default="1,512,1024,64", help="--layer's input, N,H,W,C")
    parser.add_argument("--preset", default="fast", choices=("fast", "paper"))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    fused = (BatchNormalization.call, GroupNormalization.call)
    if not any(getattr(call, "ganlib_fused", False) for call in fused):
        raise SystemExit(f"nothing fused on {keras.backend.backend()} (JAX, or GANLIB_FUSED_BATCH_NORM=0)")
    calls = {"fused": fused, "keras": tuple(getattr(call, "keras_call", call) for call in fused)}

    if (args.model is None) == (args.layer is None):
        parser.error("give a model or --layer, not both")
    models, batches = {}, {}
    for mode, call in calls.items():
        BatchNormalization.call, GroupNormalization.call = call
        models[mode], batches[mode] = build_layer(args.layer, args.shape) if args.layer else build(args)
        bench.time_steps(models[mode], batches[mode], steps=0, warmup=2)   # build, trace, warm up
    print(f"calibration {bench.calibration_gflops():.1f} GFLOP/s")
    times = {mode: [] for mode in calls}
    for r in range(args.rounds):
        for mode in (("fused", "keras") if r % 2 == 0 else ("keras", "fused")):
            BatchNormalization.call, GroupNormalization.call = calls[mode]
            times[mode].append(bench.time_steps(models[mode], batches[mode], args.steps, warmup=0))
    BatchNormalization.call, GroupNormalization.call = fused
    f, k = (np.array(times[mode]) for mode in ("fused", "keras"))
    rounds = f.mean(1) / k.mean(1)
    what = (f"{args.layer} norm {args.shape}" if args.layer else
            f"{args.model} {args.preset} batch {models['fused'].config.batch_size}")
    print(f"{what}, {keras.backend.backend()}: "
          f"fused {np.median(f) * 1e3:.1f} ms, Keras' {np.median(k) * 1e3:.1f} ms per step (medians of "
          f"{f.size}), ratio {np.median(f) / np.median(k):.3f}; per-round ratios median {np.median(rounds):.3f}, "
          f"min {rounds.min():.3f}, max {rounds.max():.3f}")
    print(f"calibration {bench.calibration_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
