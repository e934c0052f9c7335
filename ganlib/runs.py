"""Training runs: what `ganlib train | evaluate | sample` do, callable from Python too.

A run folder holds:

    config.json              model name, preset, config, data, backend
    checkpoints/ckpt-*.keras the whole model (weights, optimizers, noise state)
    samples/step_*.png       sample grids for fixed captions
    metrics.json             [{"step", "fid", "inception_score", "caption_consistency",
                               "chance_consistency", ...}, ...]
    logs/                    TensorBoard logs (with tensorboard=True)
"""

import dataclasses
import importlib
import json
import pathlib
import time

import keras
import numpy as np

from ganlib import callbacks as cb

from ganlib.models import MODELS

# Captions shown in every sample grid: test-class colour combinations.
SAMPLE_CAPTIONS = (
    "this bird has a red crown, blue wings and a white belly",
    "a small yellow bird with black wings and a black tail",
    "this bird has a green head, green wings and an orange belly",
    "a bird with purple wings, a yellow breast and a grey bill",
    "this large bird is brown with a white belly and an orange beak",
    "a blue bird with a blue head, white wings and a red tail",
    "this bird has black wings, a red belly and a black crown",
    "a little bird with grey wings, a yellow crown and a white tail",
)


def model_module(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return importlib.import_module(f"ganlib.models.{name}")


def make_config(name, preset="fast", **overrides):
    module = model_module(name)
    if preset not in ("fast", "paper"):
        raise ValueError(f"preset must be 'fast' or 'paper', got {preset!r}")
    cfg = getattr(module.Config, preset)()
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)} for {name}; fields: {sorted(fields)}")
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None})


def _real_images_and_captions(dataset, n, image_size, seed=0):
    """n (image, caption) pairs of `dataset`, the i-th caption of item i (fixed, seeded)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(dataset))
    index = np.sort(rng.choice(len(dataset), n, replace=False))
    images, captions = [], []
    for i in index:
        item = dataset[int(i)]
        images.append(np.asarray(_resize(item["image"], image_size)))
        captions.append(item["captions"][int(rng.integers(len(item["captions"])))])
    return np.stack(images), captions


def _resize(image, size):
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


_REAL_STATS = {}


def evaluate_model(model, dataset, n=500, seed=0, batch_size=250):
    """FID analogue, Inception-Score analogue and caption consistency of `model` on `dataset`.

    Generates one image for each of `n` fixed captions of `dataset` and compares it
    with the real images of those items (SynthBirds evaluation net, DESIGN.md).
    """
    from ganlib import metrics

    size = model.config.image_size
    key = (id(dataset), n, size, seed)
    if key not in _REAL_STATS:
        real, captions = _real_images_and_captions(dataset, n, size, seed)
        _REAL_STATS[key] = (metrics.real_statistics(real), captions)
    stats, captions = _REAL_STATS[key]
    if model.config.conditioning == "class":
        raise ValueError("evaluate_model needs a text-conditional model (caption consistency).")
    fakes = np.concatenate([model.generate(captions[i:i + batch_size], seed=seed + i)
                            for i in range(0, len(captions), batch_size)])
    return {k: float(v) for k, v in metrics.evaluate_images(fakes, captions, stats).items()}


def train(name="cgan", preset="fast", data="synthbirds", root=None, steps=None, out="runs/cgan",
          resume=False, tensorboard=False, verbose=1, config_overrides=None, callbacks=()):
    """Train a model and write checkpoints, sample grids and metrics.json into `out`.

    Returns the trained model.
    """
    from ganlib.data import open_dataset

    out = pathlib.Path(out)
    module = model_module(name)
    latest = cb.latest_checkpoint(out) if resume else None
    if resume and latest is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out / 'checkpoints'}; start without --resume.")
    if latest is not None:
        model = keras.saving.load_model(latest)
        cfg = model.config
        print(f"ganlib: resuming from {latest} (step {cb.global_step(model)})")
    else:
        cfg = make_config(name, preset, **(config_overrides or {}))
        model = module.build(cfg)
        model.compile()
    if steps is not None:
        cfg = cfg.replace(steps=steps)
        model.config = cfg
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({
        "model": name, "preset": preset, "data": data, "root": str(root) if root else None,
        "backend": keras.backend.backend(), "config": dataclasses.asdict(cfg)}, indent=1))

    train_set = open_dataset(data, root=root, split="train")
    test_set = open_dataset(data, root=root, split="test")
    tokenizer = getattr(model, "tokenizer", None)
    pipeline = train_set.pipeline(batch_size=cfg.batch_size, image_size=cfg.image_size,
                                  tokenizer=tokenizer, max_words=cfg.max_words, seed=cfg.seed + cb.global_step(model))
    done = cb.global_step(model)
    remaining = cfg.steps - done
    if remaining <= 0:
        print(f"ganlib: already trained for {done} steps (target {cfg.steps}).")
        return model
    every = [cb.Checkpoint(out, every=cfg.checkpoint_every), cb.StopOnNonFinite(out)]
    if cfg.conditioning == "text":
        every.append(cb.SampleGrid(SAMPLE_CAPTIONS, every=cfg.sample_every, out_dir=out))
        every.append(cb.Evaluate(test_set, every=cfg.eval_every, n=cfg.eval_samples, out_dir=out))
    if tensorboard:
        every.append(keras.callbacks.TensorBoard(out / "logs", update_freq=50))
    chunk = min(remaining, max(cfg.sample_every, 1))
    epochs = -(-remaining // chunk)
    start = time.time()
    model.fit(pipeline, steps_per_epoch=chunk, epochs=epochs, verbose=verbose,
              callbacks=[*every, *callbacks])
    print(f"ganlib: trained {cb.global_step(model) - done} steps in {time.time() - start:.0f} s "
          f"({keras.backend.backend()}); run folder {out}")
    return model


def load_run(run_dir):
    """The newest checkpoint's model of a run folder."""
    latest = cb.latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {pathlib.Path(run_dir) / 'checkpoints'}: "
                                "is this a run folder written by `ganlib train`?")
    return keras.saving.load_model(latest)


def evaluate_run(run_dir, n=None, root=None):
    """Evaluate a run's newest checkpoint on its dataset's test split; appends to metrics.json."""
    from ganlib.data import open_dataset

    run_dir = pathlib.Path(run_dir)
    model = load_run(run_dir)
    info = json.loads((run_dir / "config.json").read_text())
    test_set = open_dataset(info["data"], root=root or info.get("root"), split="test")
    evaluator = cb.Evaluate(test_set, n=n or model.config.eval_samples, out_dir=run_dir, verbose=False)
    evaluator.set_model(model)
    return evaluator.evaluate()


def sample_run(run_dir, captions, out, seed=0):
    """Generate one image per caption with a run's newest checkpoint and save a grid PNG."""
    model = load_run(run_dir)
    images = model.generate(list(captions), seed=seed)
    return cb.save_grid(images, out, columns=min(8, len(images)), scale=4)
