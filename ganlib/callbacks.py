"""Keras callbacks for GAN runs: sample grids, metrics, checkpoints, a NaN guard.

They count training by the model's optimizer step (`model.optimizer.iterations`),
so a resumed run carries on numbering where it stopped. None of them is
backend-specific.
"""

import json
import math
import pathlib
import re
import textwrap
import time

import keras
import numpy as np

from ganlib.evaluation import REAL_STATISTICS_FILE, evaluate_model
from ganlib.metrics.inception import InceptionWeightsUnavailable
from ganlib.training import all_finite


def global_step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def to_uint8(images):
    """[-1, 1] floats -> uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(images, "float32") + 1.0) * 127.5), 0, 255).astype("uint8")


def image_grid(images, columns=8, pad=2):
    """A (rows*H, columns*W, 3) uint8 mosaic of images in [-1, 1]."""
    images = to_uint8(images)
    n, h, w, _ = images.shape
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, "uint8")
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = image
    return grid


def labelled_grid(images, labels=None, columns=8, cell=128, lines=4):
    """A PIL image: each image enlarged (nearest) to at least `cell` pixels, its label (a caption,
    a class) wrapped under it in up to `lines` lines; a readable sample sheet."""
    from PIL import Image, ImageDraw, ImageFont

    images = to_uint8(images)
    n, h, w, _ = images.shape
    scale = max(1, -(-cell // max(h, w)))
    width, height = w * scale, h * scale
    labels = list(labels) if labels is not None and any(labels) else None
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:   # Pillow < 10.1: the small bitmap font
        font = ImageFont.load_default()
    text_h = 13 * lines + 4 if labels else 0
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    pad = 4
    sheet = Image.new("RGB", (columns * (width + pad) + pad, rows * (height + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    chars = max(8, width // 6)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        x, y = pad + c * (width + pad), pad + r * (height + text_h + pad)
        sheet.paste(Image.fromarray(image).resize((width, height), Image.NEAREST), (x, y))
        if labels:
            wrapped = textwrap.wrap(str(labels[i]), chars)
            if len(wrapped) > lines:
                wrapped = wrapped[:lines - 1] + [wrapped[lines - 1][: chars - 3] + "..."]
            draw.multiline_text((x, y + height + 2), "\n".join(wrapped), fill="black", font=font, spacing=2)
    return sheet


def save_grid(images, path, columns=8, labels=None, cell=128):
    """Save `labelled_grid(images, labels, columns, cell)` as a PNG file."""
    grid = labelled_grid(images, labels, columns, cell)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


class SampleGrid(keras.callbacks.Callback):
    """Every `every` steps, generate images for fixed conditions with fixed noise.

    Args:
        conditions: what `model.generate` takes (captions for text models, class ids for
            CGAN, a number of images for an unconditional model).
        labels: the text under each image (e.g. the captions); None: none.
        every: steps between grids (also one at the end of training).
        out_dir: where `samples/step_NNNNNNN.png` go (None: not saved).
        live: show the grid in a notebook, replacing the previous one.
        seed: noise seed (the same for every grid, so they are comparable).
    """

    def __init__(self, conditions, every=200, out_dir=None, live=False, seed=0, columns=8, labels=None):
        super().__init__()
        self.conditions, self.every, self.live, self.seed, self.columns = conditions, every, live, seed, columns
        self.labels = labels
        self.out_dir = pathlib.Path(out_dir) if out_dir else None
        self.last_path = None
        self._handle = None
        self._last_step = None

    def on_train_batch_end(self, batch, logs=None):
        if self.every and global_step(self.model) % self.every == 0:
            self.render()

    def on_train_end(self, logs=None):
        if self._last_step != global_step(self.model):
            self.render()

    def render(self):
        step = global_step(self.model)
        self._last_step = step
        images = self.model.generate(self.conditions, seed=self.seed)
        if self.out_dir is not None:
            self.last_path = save_grid(images, self.out_dir / "samples" / f"step_{step:07d}.png", self.columns,
                                       labels=self.labels)
        if self.live:
            self._show(images, step)
        return images

    def _show(self, images, step):
        from IPython.display import display

        grid = labelled_grid(images, self.labels, self.columns, cell=96)
        if self._handle is None:
            self._handle = display(grid, display_id=True)
        else:
            self._handle.update(grid)
        print(f"samples at step {step}")


class Evaluate(keras.callbacks.Callback):
    """Evaluate the generator every `every` steps and append a record to `metrics.json`.

    Records: `{"step", "fid", "inception_score", "inception_score_std",
    "caption_consistency", "chance_consistency", "seconds"}` (DESIGN.md's
    `metrics.json`), computed by `ganlib.evaluation.evaluate_model` on `n` captions
    of `dataset` (the test split: unseen classes, as the papers evaluate).

    The metrics follow `dataset.name`: SynthBirds uses the shipped evaluation
    net (FID / IS analogues and caption consistency); real data (CUB, ...) uses
    InceptionV3 with ImageNet weights (FID and IS as the papers report them, no
    caption consistency), with the real images' statistics computed once and kept
    in `out_dir/inception_statistics.npz`. If the ImageNet weights are not
    available offline, training goes on: the callback prints one message saying
    what to do and writes no metrics (`evaluate()` called directly raises
    `ganlib.metrics.inception.InceptionWeightsUnavailable`).
    """

    def __init__(self, dataset, every=500, n=500, out_dir=None, verbose=True, at_start=True, seed=0):
        super().__init__()
        self.dataset, self.every, self.n, self.verbose, self.at_start, self.seed = \
            dataset, every, n, verbose, at_start, seed
        self.out_dir = pathlib.Path(out_dir) if out_dir else None
        self.records = []
        self.unavailable = None   # why the metrics cannot be computed (set once, then skipped)
        self._start = time.time()
        self._last_step = None
        if self.out_dir is not None and (self.out_dir / "metrics.json").is_file():
            self.records = json.loads((self.out_dir / "metrics.json").read_text())

    def on_train_begin(self, logs=None):
        self._start = time.time()
        if self.at_start and not any(r["step"] == global_step(self.model) for r in self.records):
            self._evaluate_in_training()

    def on_train_batch_end(self, batch, logs=None):
        if self.every and global_step(self.model) % self.every == 0:
            self._evaluate_in_training()

    def on_train_end(self, logs=None):
        if global_step(self.model) != self._last_step:
            self._evaluate_in_training()

    def _evaluate_in_training(self):
        """`evaluate()`, except that missing InceptionV3 weights stop the metrics, not training."""
        if self.unavailable is not None:
            return None
        try:
            return self.evaluate()
        except InceptionWeightsUnavailable as error:
            self.unavailable = str(error)
            print(f"\nganlib: no FID / Inception Score for this run (training continues): {error}", flush=True)
            return None

    def evaluate(self):
        step = global_step(self.model)
        stats_path = self.out_dir / REAL_STATISTICS_FILE if self.out_dir is not None else None
        record = {"step": step, **evaluate_model(self.model, self.dataset, n=self.n, seed=self.seed,
                                                 statistics_path=stats_path),
                  "seconds": round(time.time() - self._start, 1)}
        self.records = [r for r in self.records if r["step"] != step] + [record]
        self._last_step = step
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "metrics.json").write_text(json.dumps(self.records, indent=1))
        if self.verbose:
            print("\n" + format_record(record), flush=True)
        return record


def format_record(record):
    parts = [f"step {record['step']}"]
    for key, label in (("fid", "FID"), ("inception_score", "IS"), ("caption_consistency", "consistency"),
                       ("chance_consistency", "chance"), ("r_precision", "R-precision"),
                       ("vs_similarity", "VS"), ("pixel_accuracy", "pixel accuracy"),
                       ("miou", "mIoU"), ("boundary_accuracy", "boundary accuracy"), ("touching_step", "touching step")):
        if key in record:
            parts.append(f"{label} {record[key]:.3f}")
    return " | ".join(parts)


CHECKPOINT = re.compile(r"ckpt-(\d+)\.keras$")


def latest_checkpoint(run_dir):
    """Path of the newest `checkpoints/ckpt-NNNNNNN.keras` in a run folder, or None."""
    folder = pathlib.Path(run_dir) / "checkpoints"
    found = sorted((int(m.group(1)), p) for p in folder.glob("ckpt-*.keras") if (m := CHECKPOINT.search(p.name)))
    return found[-1][1] if found else None


class Checkpoint(keras.callbacks.Callback):
    """Save the whole model (weights, optimizer state, noise state) as `.keras` every `every` steps.

    A checkpoint is written only when every weight is finite, so the newest
    checkpoint is always a good one. The `keep` newest are kept.
    """

    def __init__(self, out_dir, every=500, keep=2):
        super().__init__()
        self.folder = pathlib.Path(out_dir) / "checkpoints"
        self.every, self.keep = every, keep
        self.saved = []

    def on_train_batch_end(self, batch, logs=None):
        if self.every and global_step(self.model) % self.every == 0:
            self.save()

    def on_train_end(self, logs=None):
        if not self.model.stop_training or getattr(self.model, "_nonfinite", None) is None:
            self.save()

    def save(self):
        model = self.model
        step = global_step(model)
        if not all_finite(model.weights):
            print(f"ganlib: weights are not finite at step {step}; checkpoint not written.")
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"ckpt-{step:07d}.keras"
        model.save(path)
        self.saved.append(path)
        old = sorted(self.folder.glob("ckpt-*.keras"))[:-self.keep] if self.keep else []
        for p in old:
            p.unlink()
        return path


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training was stopped."""


class StopAtStep(keras.callbacks.Callback):
    """Stop `fit()` once the model's global step reaches `steps`: `fit()` runs whole epochs of
    `steps_per_epoch`, so a target that is not a multiple of it would otherwise overshoot."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if global_step(self.model) >= self.steps:
            self.model.stop_training = True


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop training as soon as a logged loss is NaN or infinite, with a clear message.

    The last good checkpoint (if `run_dir` is given) is named in the message;
    `raise_error=True` raises `NonFiniteLossError` after `fit()` has stopped.
    """

    def __init__(self, run_dir=None, raise_error=True):
        super().__init__()
        self.run_dir, self.raise_error = run_dir, raise_error
        self.message = None

    def on_train_begin(self, logs=None):
        self.message = None
        self.model._nonfinite = None

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if not np.all(np.isfinite(np.asarray(v, "float64")))}
        if not bad:
            return
        step = global_step(self.model)
        where = latest_checkpoint(self.run_dir) if self.run_dir else None
        self.message = (f"training stopped at step {step}: {', '.join(f'{k}={float(np.asarray(v)):.4g}' for k, v in bad.items())} "
                        f"is not finite (try a lower learning rate). "
                        + (f"Last good checkpoint: {where}" if where else "No checkpoint was written before it."))
        self.model._nonfinite = self.message
        self.model.stop_training = True
        print("\nganlib: " + self.message, flush=True)

    def on_train_end(self, logs=None):
        if self.message and self.raise_error:
            raise NonFiniteLossError(self.message)
