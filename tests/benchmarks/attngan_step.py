"""Step time of AttnGAN's paper preset (`cfg/bird_attn2.yml`: 64/128/256 px, batch 20) on this
machine, with the reference's DAMSM (InceptionV3 image encoder at 299 px, random frozen weights,
256-d, the birds' 5,450-word vocabulary size), for the current Keras backend:

    KERAS_BACKEND=tensorflow python tests/benchmarks/attngan_step.py [--steps 3] [--batch 20]

Prints the median step time, images/s and the machine's calibration figure (GFLOP/s of a
numpy matmul, `ganlib bench`'s), so that times from different machines compare. The step
has no per-caption Python loop (the DAMSM loss is one batched computation) and no host
synchronisation (no `.item()`/`float()` of a tensor inside it).
"""

import argparse
import dataclasses
import time

import keras
import numpy as np

from ganlib import bench
from ganlib.models import attngan, damsm
from ganlib.text import Tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args(argv)
    calibration = bench.calibration_gflops()
    cfg = attngan.Config.paper().replace(batch_size=args.batch)
    encoders = damsm.DAMSM(dataclasses.replace(damsm.Config.paper(), inception_weights=None), vocabulary_size=5450)
    encoders.build()
    start = time.perf_counter()
    model = attngan.AttnGAN(cfg, damsm=(encoders, Tokenizer.default(cfg.max_words)))
    model.compile()
    built = time.perf_counter() - start
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (args.batch, 256, 256, 3)).astype("float32"),
             "tokens": rng.integers(2, 5450, (args.batch, cfg.max_words)).astype("int32"),
             "class_id": rng.integers(0, 150, args.batch).astype("int32")}
    batch["tokens"][:, 12:] = 0
    for s in cfg.branch_sizes[:-1]:
        batch[f"image_{s}"] = rng.uniform(-1, 1, (args.batch, s, s, 3)).astype("float32")
    times = bench.time_steps(model, batch, args.steps, args.warmup)
    step = float(np.median(times))
    print(f"attngan paper preset, batch {args.batch}, backend {keras.backend.backend()}: "
          f"{step:.2f} s/step (median of {len(times)}), {args.batch / step:.2f} images/s; "
          f"build + compile {built:.0f} s; calibration {calibration:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
