"""The course's leaderboard: every model's fast preset, trained the same way, judged by the
same SynthBirds evaluation.

    ganlib leaderboard --out runs/leaderboard [--models cgan stackgan stackganpp] [--n 500]

Each model trains its `fast()` preset with `ganlib train` (a run folder per model under
`--out`; a finished run is reused, an unfinished one resumed), then its final generator
makes one image for each of `n` fixed test captions (unseen species), and every model's
images are scored against the same real images at one size (`--size`, 64 px: smaller
outputs are enlarged to it, bicubic), so that a 32-px GAN-INT-CLS and a 64-px StackGAN++
are compared as images of the same size. The table gives the FID and Inception-Score
analogues, caption consistency against chance, AttnGAN's R-precision with the shipped
SynthBirds DAMSM (each image's caption against 99 mismatched ones; chance 0.01), HDGAN's
VS similarity with the shipped VS model, the steps, the output size and the wall
time of training (periodic evaluations included), with the machine's calibration
figure (`ganlib.bench.calibration_gflops`) so that minutes from different machines can
be compared. Results go to `OUT/leaderboard.json` and a markdown table to stdout.
"""

import argparse
import json
import pathlib
import time

import numpy as np

from ganlib import models

def enlarge(images, size):
    """Images (N, S, S, 3) in [-1, 1] resized (bicubic) to `size`, as float32."""
    from PIL import Image

    if images.shape[1] == size:
        return images
    out = [np.asarray(Image.fromarray(np.uint8(np.clip((im + 1) * 127.5, 0, 255).round()))
                      .resize((size, size), Image.BICUBIC)) for im in images]
    return np.stack(out).astype("float32") / 127.5 - 1.0


def score(model, test_set, n=500, size=64, seed=0):
    """The leaderboard's metrics of a trained text model: its images for `n` test captions,
    enlarged to `size`, against the same `n` real test images at `size` (FID and IS analogues,
    caption consistency), and with their captions (R-precision, VS similarity)."""
    from ganlib import evaluation

    sample = evaluation.real_sample(test_set, n, size, seed)
    fakes = enlarge(evaluation.generate_for(model, model.condition.of_sample(sample), seed), size)
    return {k: float(v) for k, v in scores(fakes, sample, seed).items()}


def scores(fakes, sample, seed=0):
    """The leaderboard's metrics of `fakes` (N, size, size, 3) in [-1, 1], generated for the
    captions of `sample` (`ganlib.evaluation.real_sample`)."""
    from ganlib import evaluation, metrics

    record = metrics.evaluate_images(fakes, sample["captions"], metrics.real_statistics(sample["images"]))
    return {**record, **evaluation.text_metrics(fakes, sample["captions"], seed)}


def run(names=models.TEXT_MODELS, out="runs/leaderboard", n=500, size=64, verbose=0):
    """Train (or reuse) each model's fast preset under `out` and score it; returns the rows."""
    from ganlib import runs
    from ganlib.callbacks import global_step
    from ganlib.data import open_dataset

    out = pathlib.Path(out)
    test_set = open_dataset("synthbirds", split="test")
    rows = []
    for name in names:
        start = time.time()
        resume = any((out / name).rglob("ckpt-*.keras"))
        model = runs.train(name, preset="fast", out=out / name, resume=resume, verbose=verbose)
        minutes = (time.time() - start) / 60
        previous = _previous_row(out, name)
        if previous and minutes < 0.5:   # reused a finished run: keep the time it took then
            minutes = previous["minutes"]
        steps = global_step(model)
        row = {"model": name, "steps": steps, "image_size": int(model.config.image_size),
               "minutes": round(minutes, 1), **score(model, test_set, n, size)}
        rows.append(row)
        _save(out, rows, size, n)
        print(format_row(row), flush=True)
    return rows


def _previous_row(out, name):
    path = pathlib.Path(out) / "leaderboard.json"
    if not path.is_file():
        return None
    return next((r for r in json.loads(path.read_text())["rows"] if r["model"] == name), None)


def _save(out, rows, size, n):
    import keras

    from ganlib.bench import calibration_gflops, machine

    path = pathlib.Path(out) / "leaderboard.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    merged = {r["model"]: r for r in old}
    merged.update({r["model"]: r for r in rows})
    path.write_text(json.dumps({"backend": keras.backend.backend(), "evaluation_size": size, "n": n,
                                "calibration_gflops": round(calibration_gflops(), 1), "machine": machine(),
                                "rows": list(merged.values())}, indent=1))


def format_row(row):
    """One markdown row; a metric the row lacks (a row saved before it was measured) is "-"."""
    ratio = row["caption_consistency"] / row["chance_consistency"]
    optional = [f"{row[key]:.3f}" if key in row else "-" for key in ("r_precision", "vs_similarity")]
    return (f"| {row['model']} | {row['steps']} | {row['image_size']} | {row['minutes']:.1f} | {row['fid']:.1f} "
            f"| {row['inception_score']:.2f} | {row['caption_consistency']:.3f} ({row['chance_consistency']:.3f}) "
            f"| {ratio:.1f}x | {' | '.join(optional)} |")


def table(rows):
    head = ("| model | steps | output px | minutes | FID analogue | IS analogue | consistency (chance) | ratio "
            "| R-precision | VS |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([head, *(format_row(r) for r in rows)])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ganlib leaderboard", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser):
    parser.add_argument("--out", default="runs/leaderboard", help="folder of the runs and leaderboard.json")
    parser.add_argument("--models", nargs="+", default=list(models.TEXT_MODELS), choices=models.TEXT_MODELS)
    parser.add_argument("--n", type=int, default=500, help="test captions per model (default 500)")
    parser.add_argument("--size", type=int, default=64, help="evaluation image size (default 64)")


def run_from_args(args):
    rows = run(args.models, args.out, args.n, args.size)
    print(table(rows))
    return 0
