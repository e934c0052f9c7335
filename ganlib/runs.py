"""Training runs: what `ganlib train | evaluate | sample` do, callable from Python too.

A run folder holds:

    config.json              model name, preset, config, data, backend
    checkpoints/ckpt-*.keras the whole model (weights, optimizers, noise state)
    samples/step_*.png       sample grids for fixed captions
    metrics.json             [{"step", "fid", "inception_score", "caption_consistency",
                               "chance_consistency", ...}, ...]  (real data: fid and
                             inception_score from InceptionV3, no caption consistency)
    inception_statistics.npz real data: FID statistics of the real test images
    logs/                    TensorBoard logs (with tensorboard=True)
"""

import dataclasses
import importlib
import importlib.util
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

# FID statistics of the real test images, kept in the run folder (real data only).
REAL_STATISTICS_FILE = "inception_statistics.npz"


def evaluate_model(model, dataset, n=500, seed=0, batch_size=250, statistics_path=None):
    """FID analogue, Inception-Score analogue and caption consistency of `model` on `dataset`.

    Generates one image for each of `n` fixed captions of `dataset` and compares it
    with the real images of those items (SynthBirds evaluation net, DESIGN.md).

    On real data (``dataset.name`` other than ``"synthbirds"``: CUB, ...) the
    metrics are the papers' FID and Inception Score with Keras' InceptionV3
    (ImageNet weights, :mod:`ganlib.inception`); caption consistency needs
    SynthBirds' ground truth and is not computed. The real images' FID statistics
    are computed once per process and, with `statistics_path`, kept in that
    ``.npz`` and reused while its metadata (dataset, split, count, size, seed) match.
    Raises ``ganlib.inception.InceptionWeightsUnavailable`` when the ImageNet
    weights are not available offline.
    """
    from ganlib import metrics

    if model.config.conditioning == "class":
        raise ValueError("evaluate_model needs a text-conditional model (it generates from captions).")
    if getattr(dataset, "name", "synthbirds") != "synthbirds":
        return _evaluate_model_inception(model, dataset, n, seed, batch_size, statistics_path)
    size = model.config.image_size
    key = (id(dataset), n, size, seed)
    if key not in _REAL_STATS:
        real, captions = _real_images_and_captions(dataset, n, size, seed)
        _REAL_STATS[key] = (metrics.real_statistics(real), captions)
    stats, captions = _REAL_STATS[key]
    fakes = _generate_for(model, captions, seed, batch_size)
    return {k: float(v) for k, v in metrics.evaluate_images(fakes, captions, stats).items()}


def _generate_for(model, captions, seed, batch_size):
    """One generated image per caption, in batches; batch k drawn from seed + k * batch_size."""
    return np.concatenate([model.generate(captions[i:i + batch_size], seed=seed + i)
                           for i in range(0, len(captions), batch_size)])


def _evaluate_model_inception(model, dataset, n, seed, batch_size, statistics_path):
    """Real data: FID and Inception Score (10 splits) with InceptionV3, as the papers report."""
    from ganlib import metrics

    network = metrics.default_inception()   # InceptionWeightsUnavailable offline, before any work
    size = model.config.image_size
    key = ("inception", id(dataset), n, size, seed)
    if key not in _REAL_STATS:
        real, captions = _real_images_and_captions(dataset, n, size, seed)
        meta = {"network": "keras.applications.InceptionV3", "weights": str(getattr(network, "weights", None)),
                "dataset": str(dataset.name), "split": str(getattr(dataset, "split", "")),
                "count": int(len(real)), "image_size": int(size), "seed": int(seed)}
        stats = _stored_statistics(statistics_path, meta)
        if stats is None:
            stats = metrics.inception_statistics(real, network=network)
            if statistics_path is not None:
                metrics.save_statistics(statistics_path, *stats, **meta)
        _REAL_STATS[key] = (stats, captions)
    stats, captions = _REAL_STATS[key]
    fakes = _generate_for(model, captions, seed, batch_size)
    return {k: float(v) for k, v in metrics.inception_metrics(fakes, stats, network=network).items()}


def _stored_statistics(path, meta):
    """(mu, sigma) from the .npz at `path` if it exists and was made for `meta`, else None."""
    from ganlib import metrics

    if path is None or not pathlib.Path(path).is_file():
        return None
    try:
        mu, sigma, stored = metrics.load_statistics(path, with_metadata=True)
    except ValueError as error:
        print(f"ganlib: ignoring {path} ({error}); computing the real statistics again.")
        return None
    if any(stored.get(k) != v for k, v in meta.items()):
        return None
    return mu, sigma


def train(name="cgan", preset="fast", data="synthbirds", root=None, steps=None, out="runs/cgan",
          resume=False, tensorboard=False, verbose=1, config_overrides=None, callbacks=(), _stage=None):
    """Train a model and write checkpoints, sample grids and metrics.json into `out`.

    A model trained in stages (its module has `stages(config)` -> `[(folder, config), ...]`,
    e.g. StackGAN's Stage-I then Stage-II) trains each stage in its own sub-run
    `out/<folder>`, built by `module.build(config, previous=<the previous stage's model>)`;
    `steps` then counts per stage, and `resume` continues the first unfinished stage.

    Returns the trained model (the last stage's).
    """
    from ganlib.data import open_dataset

    out = pathlib.Path(out)
    module = model_module(name)
    if _stage is None and hasattr(module, "stages"):
        return _train_stages(module, name, preset, data, root, steps, out, resume, tensorboard, verbose,
                             config_overrides, callbacks)
    latest = cb.latest_checkpoint(out) if resume else None
    if resume and latest is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out / 'checkpoints'}; start without --resume.")
    if latest is not None:
        model = load_checkpoint(latest)
        cfg = model.config
        print(f"ganlib: resuming from {latest} (step {cb.global_step(model)})")
    elif _stage is not None:
        cfg, previous = _stage
        model = module.build(cfg, previous=previous)
        model.compile()
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
    if getattr(cfg, "conditioning", "text") == "class" and not train_set.has_classes:
        raise ValueError(f"--conditioning class needs class ids, and the {data!r} dataset has none "
                         f"(every class_id is -1); train the text-conditional model instead.")
    tokenizer = getattr(model, "tokenizer", None)
    captions = min(getattr(cfg, "captions_per_embedding", 1), train_set.captions_per_image)
    pipeline = train_set.pipeline(batch_size=cfg.batch_size, image_size=cfg.image_size,
                                  tokenizer=tokenizer, max_words=cfg.max_words,
                                  seed=cfg.seed + cb.global_step(model), captions=captions)
    done = cb.global_step(model)
    remaining = cfg.steps - done
    if remaining <= 0:
        print(f"ganlib: already trained for {done} steps (target {cfg.steps}).")
        return model
    every = [cb.Checkpoint(out, every=cfg.checkpoint_every), cb.StopOnNonFinite(out)]
    if cfg.conditioning == "text":
        every.append(cb.SampleGrid(SAMPLE_CAPTIONS, every=cfg.sample_every, out_dir=out))
        # Metrics chosen by dataset (runs.evaluate_model): SynthBirds -> its evaluation net and
        # caption consistency; real data -> InceptionV3 FID / IS (ganlib.metrics), skipped with
        # one message when the ImageNet weights are not available offline.
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


def _train_stages(module, name, preset, data, root, steps, out, resume, tensorboard, verbose,
                  config_overrides, callbacks):
    """`train` for a model trained in stages: one sub-run per stage, each on the previous one's model."""
    plan = module.stages(make_config(name, preset, **(config_overrides or {})))
    started = [folder for folder, _ in plan if cb.latest_checkpoint(out / folder) is not None]
    if resume and not started:
        raise FileNotFoundError(f"--resume: no checkpoint in {out}/{{{','.join(f for f, _ in plan)}}}/checkpoints; "
                                "start without --resume.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({
        "model": name, "preset": preset, "data": data, "root": str(root) if root else None,
        "backend": keras.backend.backend(), "stages": [folder for folder, _ in plan]}, indent=1))
    model = None
    for folder, cfg in plan:
        print(f"ganlib: {name} {folder} -> {out / folder}")
        model = train(name, preset, data, root, steps, out / folder, resume=resume and folder in started,
                      tensorboard=tensorboard, verbose=verbose, callbacks=callbacks, _stage=(cfg, model))
    return model


def resolve_run(run_dir):
    """The folder holding a run's newest model: `run_dir`, or for a run trained in stages
    (its config.json lists "stages") the last stage with a checkpoint."""
    run_dir = pathlib.Path(run_dir)
    info = run_dir / "config.json"
    if cb.latest_checkpoint(run_dir) is None and info.is_file():
        for folder in reversed(json.loads(info.read_text()).get("stages", [])):
            if cb.latest_checkpoint(run_dir / folder) is not None:
                return run_dir / folder
    return run_dir


def load_run(run_dir):
    """The newest checkpoint's model of a run folder (of its last stage, for a staged run)."""
    run_dir = resolve_run(run_dir)
    latest = cb.latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {pathlib.Path(run_dir) / 'checkpoints'}: "
                                "is this a run folder written by `ganlib train`?")
    return load_checkpoint(latest)


def load_checkpoint(path):
    """`keras.saving.load_model` for a ganlib model: its paper's module is imported first,
    so that the model class is registered (a fresh process has not imported it)."""
    for name in MODELS:
        if importlib.util.find_spec(f"ganlib.models.{name}") is not None:
            importlib.import_module(f"ganlib.models.{name}")
    return keras.saving.load_model(path)


def evaluate_run(run_dir, n=None, root=None):
    """Evaluate a run's newest checkpoint on its dataset's test split; appends to metrics.json.

    The metrics are chosen by dataset as in training (:func:`evaluate_model`): on
    real data, FID and Inception Score with InceptionV3, reusing the run's
    ``inception_statistics.npz``; without the ImageNet weights this raises
    ``ganlib.inception.InceptionWeightsUnavailable`` (a ``FileNotFoundError``
    whose message says where to put the weights file).
    """
    from ganlib.data import open_dataset

    run_dir = resolve_run(run_dir)
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
