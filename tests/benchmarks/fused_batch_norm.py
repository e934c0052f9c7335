"""Speed of ganlib's fused BatchNorm kernel (`ganlib.backend`, TensorFlow and PyTorch) against
Keras' own `BatchNormalization`, measured in one process so that a machine whose speed drifts
hits both alike: two copies of a model's preset, one built (and on TensorFlow traced) with the
fused training path and one with Keras' call, stepped in turn, A B then B A, for `--rounds`
rounds of `--steps` steps on the same synthetic batch (`ganlib.bench.synthetic_batch`).

Run:  KERAS_BACKEND=tensorflow python tests/benchmarks/fused_batch_norm.py cgan [--preset fast]
      [--batch N] [--rounds 6] [--steps 5]

Prints the median step of each, their ratio and the median, min and max of the per-round ratios,
with the matmul calibration before and after. Not collected by pytest.
"""

import argparse

import keras
import numpy as np
from keras.src.layers.normalization.batch_normalization import BatchNormalization

import ganlib.backend  # noqa: F401  (installs the fused training path)
from ganlib import bench


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--preset", default="fast", choices=("fast", "paper"))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    fused = BatchNormalization.call
    if not getattr(fused, "ganlib_fused", False):
        raise SystemExit(f"no fused BatchNorm on {keras.backend.backend()} (or GANLIB_FUSED_BATCH_NORM=0)")
    calls = {"fused": fused, "keras": fused.keras_call}

    models, batches = {}, {}
    for mode, call in calls.items():
        BatchNormalization.call = call
        model = bench.build_model(args.model, args.preset, args.batch)
        model.compile()
        batches[mode] = bench.synthetic_batch(model, model.config.batch_size)
        bench.time_steps(model, batches[mode], steps=0, warmup=2)   # build, trace, warm up
        models[mode] = model
    print(f"calibration {bench.calibration_gflops():.1f} GFLOP/s")
    times = {mode: [] for mode in calls}
    for r in range(args.rounds):
        for mode in (("fused", "keras") if r % 2 == 0 else ("keras", "fused")):
            BatchNormalization.call = calls[mode]
            times[mode].append(bench.time_steps(models[mode], batches[mode], args.steps, warmup=0))
    BatchNormalization.call = fused
    f, k = (np.array(times[mode]) for mode in ("fused", "keras"))
    rounds = f.mean(1) / k.mean(1)
    print(f"{args.model} {args.preset} batch {models['fused'].config.batch_size}, {keras.backend.backend()}: "
          f"fused {np.median(f) * 1e3:.1f} ms, Keras' {np.median(k) * 1e3:.1f} ms per step (medians of "
          f"{f.size}), ratio {np.median(f) / np.median(k):.3f}; per-round ratios median {np.median(rounds):.3f}, "
          f"min {rounds.min():.3f}, max {rounds.max():.3f}")
    print(f"calibration {bench.calibration_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
