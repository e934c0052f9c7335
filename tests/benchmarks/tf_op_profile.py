"""Where a TensorFlow training step spends its time: one step under `tf.profiler`, its ops' time
summed by op type (and the slowest single ops), read from the profile's XSpace protobuf.

Run:  python tests/benchmarks/tf_op_profile.py MODEL [--preset fast|paper] [--batch N] [--top 25]
      python tests/benchmarks/tf_op_profile.py pix2pixhd --reference   # reference_step.py's build

`--reference` builds the model as `tests/benchmarks/reference_step.py` does (attngan, mirrorgan:
the reference's DAMSM and STREAM sizes; pix2pixhd: its global stage at 1024x512). The times are
each op's execution summed over the threads that ran it, so with two threads they add up to
about twice the step's wall time. Not collected by pytest.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from ganlib import bench  # noqa: E402


def op_times(logdir):
    """{op name: seconds} of the TensorFlow ops ("scope/op:OpType" events) in the profile at `logdir`."""
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "/" in name.rsplit(":", 1)[0]:
                    times[name] += event.duration_ps / 1e12
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--preset", default="fast", choices=("fast", "paper"))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--reference", action="store_true", help="reference_step.py's build (paper sizes)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.reference:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import reference_step

        model, batch = reference_step.build(args.model, args.batch)
    else:
        model = bench.build_model(args.model, args.preset, args.batch)
        model.compile()
        batch = bench.synthetic_batch(model, model.config.batch_size)
    bench.time_steps(model, batch, steps=0, warmup=1)   # build and trace outside the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        (step,) = bench.time_steps(model, batch, steps=1, warmup=0)
        tf.profiler.experimental.stop()
        times = op_times(logdir)
    by_type = collections.Counter()
    for name, seconds in times.items():
        by_type[name.rsplit(":", 1)[1]] += seconds
    total = sum(times.values())
    print(f"{args.model}: step {step:.2f} s wall, {total:.2f} s of op time; "
          f"calibration {bench.calibration_gflops():.1f} GFLOP/s")
    print("op time by type:")
    for kind, seconds in by_type.most_common(args.top):
        print(f"  {seconds:8.3f} s  {100 * seconds / total:5.1f}%  {kind}")
    print("slowest ops:")
    for name, seconds in times.most_common(args.top):
        print(f"  {seconds:8.3f} s  {name[:140]}")


if __name__ == "__main__":
    main()
