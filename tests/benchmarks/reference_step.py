"""Step time of a paper preset as its reference code runs it, for the current Keras backend:
the frozen helper networks at the reference's sizes, random weights (nothing downloaded),
random data. `ganlib bench MODEL --preset paper` times the same generator and discriminators
with the small shipped SynthBirds helpers (DAMSM, STREAM) and, for pix2pixHD, its last stage
only; this script times what the reference's iteration computes:

    attngan     cfg/bird_attn2.yml: 64/128/256 px, batch 20, the DAMSM at the reference's
                size (InceptionV3 image encoder at 299 px, 256-d, the birds' 5,450 words);
    mirrorgan   cfg/train_bird.yml: batch 12, that DAMSM, and STREAM at its size (ResNet-152
                at 224 px, embedding 256, LSTM 512) on the last stage's images;
    pix2pixhd   label2city, batch 1: `--stage global` (scripts/train_512p.sh, 1024x512, G_1
                ngf 64, num_D 2) or `--stage local` (train_1024p_24G.sh, 2048x1024, G_2 ngf 32,
                num_D 3, G_1 trained); the VGG19 loss with random weights (`--no-vgg`: without it).

    KERAS_BACKEND=tensorflow python tests/benchmarks/reference_step.py attngan [--steps 3] [--batch 20]

Prints the median step time, images/s and the machine's calibration figure (GFLOP/s of a
numpy matmul, `ganlib bench`'s), so that times from different machines compare.
"""

import argparse
import dataclasses
import time

import keras
import numpy as np

from ganlib import bench
from ganlib.text import Tokenizer

BIRDS_WORDS = 5450   # the reference's CUB vocabulary size


def reference_damsm(max_words):
    from ganlib.models import damsm

    encoders = damsm.DAMSM(dataclasses.replace(damsm.Config.paper(), inception_weights=None),
                           vocabulary_size=BIRDS_WORDS)
    encoders.build()
    return encoders, Tokenizer.default(max_words)


def text_batch(cfg, batch):
    """Images of every stage and captions of 12 words padded to `max_words` (ids < 5,450)."""
    rng = np.random.default_rng(0)
    data = {"image": rng.uniform(-1, 1, (batch, 256, 256, 3)).astype("float32"),
            "tokens": rng.integers(2, BIRDS_WORDS, (batch, cfg.max_words)).astype("int32"),
            "class_id": rng.integers(0, 150, batch).astype("int32")}
    data["tokens"][:, 12:] = 0
    for s in cfg.branch_sizes[:-1]:
        data[f"image_{s}"] = rng.uniform(-1, 1, (batch, s, s, 3)).astype("float32")
    return data


def build(name, batch, stage="global", vgg=True):
    """(model, batch of data) for `name`'s paper preset with the reference's helper networks."""
    if name == "attngan":
        from ganlib.models import attngan

        cfg = attngan.Config.paper().replace(batch_size=batch or 20)
        model = attngan.AttnGAN(cfg, damsm=reference_damsm(cfg.max_words))
    elif name == "mirrorgan":
        from ganlib.models import mirrorgan, stream

        cfg = mirrorgan.Config.paper().replace(batch_size=batch or 12)
        encoders, tokenizer = reference_damsm(cfg.max_words)
        captioner = stream.Stream(dataclasses.replace(stream.Config.paper(), backbone_weights=None),
                                  vocabulary_size=BIRDS_WORDS, name="stream")
        captioner.build()
        captioner.trainable = False
        model = mirrorgan.MirrorGAN(cfg, damsm=(encoders, tokenizer), stream=(captioner, tokenizer))
    elif name == "pix2pixhd":
        from ganlib.models import pix2pixhd

        cfg = pix2pixhd.Config.paper().replace(batch_size=batch or 1, vgg_weights=None, vgg_loss=vgg)
        if stage == "global":
            model = pix2pixhd.build(cfg.global_stage())
        else:
            model = pix2pixhd.build(cfg.stage_plan()[-1][1])
        model.compile()
        return model, bench.synthetic_batch(model, model.config.batch_size)
    else:
        raise ValueError(f"model: expected attngan, mirrorgan or pix2pixhd, got {name!r}")
    model.compile()
    return model, text_batch(cfg, cfg.batch_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=("attngan", "mirrorgan", "pix2pixhd"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="default: the reference's")
    parser.add_argument("--stage", choices=("global", "local"), default="global", help="pix2pixhd's stage")
    parser.add_argument("--no-vgg", action="store_true", help="pix2pixhd without the VGG loss")
    args = parser.parse_args(argv)
    calibration = bench.calibration_gflops()
    start = time.perf_counter()
    model, data = build(args.model, args.batch, args.stage, not args.no_vgg)
    built = time.perf_counter() - start
    times = bench.time_steps(model, data, args.steps, args.warmup)
    step = float(np.median(times))
    b = model.config.batch_size
    what = f"{args.model} paper preset" + (f" ({args.stage} stage{', no VGG' if args.no_vgg else ''})"
                                           if args.model == "pix2pixhd" else "")
    print(f"{what}, batch {b}, backend {keras.backend.backend()}: {step:.2f} s/step (median of "
          f"{len(times)}: {', '.join(f'{t:.2f}' for t in times)}), {b / step:.2f} images/s; "
          f"build + compile {built:.0f} s; calibration {calibration:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
