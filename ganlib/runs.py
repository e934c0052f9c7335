"""Training runs: what `ganlib train | evaluate | sample` do, callable from Python too.

Everything model-specific comes from the paper's registry entry
(`ganlib.models.get(name)`, a `PaperSpec`): its presets and variants, how it is built
and staged, what its batches hold, its conditions for sample grids.

A run folder holds:

    config.json              model name, preset, variant, config, data, backend
    checkpoints/ckpt-*.keras the whole model (weights, optimizers, noise state)
    samples/step_*.png       sample grids for fixed conditions, each labelled
    metrics.json             [{"step", "fid", "inception_score", "caption_consistency",
                               "chance_consistency", ...}, ...]  (real data: fid and
                             inception_score from InceptionV3, no caption consistency)
    inception_statistics.npz real data: FID statistics of the real test images
    logs/                    TensorBoard logs (with tensorboard=True)

A model trained in stages (StackGAN: Stage-I, then Stage-II) has one such folder per
stage (`RUN/stage1`, `RUN/stage2`) and a `config.json` naming them.
"""

import dataclasses
import json
import pathlib
import time

import keras

from ganlib import callbacks as cb
from ganlib import conditioning, models, training
from ganlib.evaluation import REAL_STATISTICS_FILE, evaluate_model  # noqa: F401  (lessons import them from here)


def make_config(name, preset="fast", variant=None, **overrides):
    """The config of a paper's preset (and variant), with fields overridden."""
    return models.get(name).make_config(preset, variant, **overrides)


def _write_info(out, **info):
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**info, "backend": keras.backend.backend()}, indent=1))


def train(name="cgan", preset="fast", data=None, root=None, steps=None, out="runs/cgan",
          resume=False, tensorboard=False, verbose=1, config_overrides=None, callbacks=(), variant=None,
          text_encoder=None,
          devices=None, coordinator=None, num_processes=None, process_id=None):
    """Train a model and write checkpoints, sample grids and metrics.json into `out`.

    `data`: a dataset name (`ganlib.data.open_dataset`); None: the model's default
    (`PaperSpec.default_data`: SynthStreets for pix2pixHD, SynthBirds for the text models).

    `text_encoder` (text models): "synthbirds", "char-cnn-rnn", "damsm" (the shipped
    SynthBirds DAMSM) or "damsm:DIR" (a DAMSM from `ganlib pretrain damsm --out DIR`,
    e.g. trained on CUB's real captions); the config's `embed_dim` follows it
    (`ganlib.conditioning.use_text_encoder`).

    A model trained in stages (its registry entry has `stages`) trains each stage in
    its own sub-run `out/<folder>`, built on the previous stage's model; `steps` then
    counts per stage, and `resume` continues the first unfinished stage.

    `devices` (and `coordinator`, `num_processes`, `process_id` for several processes)
    train data-parallel (`ganlib.training.data_parallel`): the config's batch size is the
    global batch, split over the devices. Every process runs the same steps; process 0
    writes `out`, process i > 0 its identical copy in `out/process-i`.

    Returns the trained model (the last stage's).
    """
    with training.data_parallel(devices, coordinator, num_processes, process_id):
        rank = training.process_index()
        out = pathlib.Path(out) / (f"process-{rank}" if rank else "")
        return _train(name, preset, data, root, steps, out, resume, tensorboard, verbose, config_overrides,
                      callbacks, variant, text_encoder)


def _train(name, preset, data, root, steps, out, resume, tensorboard, verbose, config_overrides, callbacks,
           variant, text_encoder):
    from ganlib.data import open_dataset

    spec = models.get(name)
    data = data or spec.default_data
    train_set = open_dataset(data, root=root, split="train")
    test_set = open_dataset(data, root=root, split="test")
    cfg = spec.make_config(preset, variant, **(config_overrides or {}))
    if text_encoder is not None:
        cfg = conditioning.use_text_encoder(cfg, text_encoder)
    cfg, note = conditioning.for_dataset(cfg, train_set)
    if note:
        print(f"ganlib: {note}.")
    cfg = cfg.for_dataset(len(train_set))
    plan = spec.plan(cfg)
    started = [folder for folder, _ in plan if cb.latest_checkpoint(out / folder) is not None]
    if resume and not started:
        where = out / "checkpoints" if len(plan) == 1 else f"{out}/{{{','.join(f for f, _ in plan)}}}/checkpoints"
        raise FileNotFoundError(f"--resume: no checkpoint in {where}; start without --resume.")
    info = {"model": name, "preset": preset, "variant": variant, "data": data,
            "root": str(root) if root else None}
    if len(plan) > 1:
        _write_info(out, **info, stages=[folder for folder, _ in plan])
    model = None
    for folder, stage_cfg in plan:
        if len(plan) > 1:
            print(f"ganlib: {name} {folder} -> {out / folder}")
        model = _train_one(spec, stage_cfg, out / folder, info, train_set, test_set, steps,
                           resume and folder in started, tensorboard, verbose, callbacks, previous=model)
    return model


def _train_one(spec, cfg, out, info, train_set, test_set, steps, resume, tensorboard, verbose, callbacks,
               previous=None):
    """One run folder: build (or resume) the model, then fit it with the run's callbacks."""
    latest = cb.latest_checkpoint(out) if resume else None
    if latest is not None:
        model = load_checkpoint(latest)
        cfg = model.config
        print(f"ganlib: resuming from {latest} (step {cb.global_step(model)})")
    else:
        keras.utils.set_random_seed(cfg.seed)   # the weights' initialisation repeats with the seed
        model = spec.build(cfg, previous=previous)
        model.compile()
    if steps is not None:
        cfg = cfg.replace(steps=steps)
        model.config = cfg
    replicas = training.replica_count()
    if cfg.batch_size % replicas:
        raise ValueError(f"devices: the batch size {cfg.batch_size} (the global batch) must be divisible "
                         f"by the number of devices ({replicas}).")
    _write_info(out, **info, config=dataclasses.asdict(cfg))
    done = cb.global_step(model)
    remaining = cfg.steps - done
    if remaining <= 0:
        print(f"ganlib: already trained for {done} steps (target {cfg.steps}).")
        return model
    pipeline = spec.batch(cfg).pipeline(train_set, cfg.batch_size, tokenizer=model.tokenizer,
                                        seed=cfg.seed + done)
    datasets = {"train": train_set, "test": test_set}
    conditions, labels = model.condition.grid(datasets)
    every = [cb.Checkpoint(out, every=cfg.checkpoint_every), cb.StopOnNonFinite(out), cb.StopAtStep(cfg.steps),
             cb.SampleGrid(conditions, every=cfg.sample_every, out_dir=out, labels=labels),
             cb.Evaluate(evaluation_split(model, datasets), every=cfg.eval_every, n=cfg.eval_samples, out_dir=out)]
    if tensorboard:
        every.append(keras.callbacks.TensorBoard(out / "logs", update_freq=50))
    chunk = min(remaining, max(cfg.sample_every, 1))
    start = time.time()
    model.fit(pipeline, steps_per_epoch=chunk, epochs=-(-remaining // chunk), verbose=verbose,
              callbacks=[*every, *callbacks])
    on = f", {replicas} devices" if replicas > 1 else ""
    print(f"ganlib: trained {cb.global_step(model) - done} steps in {time.time() - start:.0f} s "
          f"({keras.backend.backend()}{on}); run folder {out}")
    return model


def evaluation_split(model, datasets):
    """The split a model is evaluated on: the test split (unseen classes, as the papers do), or
    the training split for a class-conditional model (it knows only those classes)."""
    return datasets["train"] if model.condition.kind == "class" else datasets["test"]


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
    """`keras.saving.load_model` for a ganlib model: the papers' modules are imported first,
    so that the model classes are registered (a fresh process has not imported them)."""
    models.import_all()
    return keras.saving.load_model(path)


def evaluate_run(run_dir, n=None, root=None):
    """Evaluate a run's newest checkpoint on its dataset (`evaluation_split`); appends to metrics.json.

    The metrics are chosen by dataset as in training (`ganlib.evaluation`): on real
    data, FID and Inception Score with InceptionV3, reusing the run's
    ``inception_statistics.npz``; without the ImageNet weights this raises
    ``ganlib.metrics.inception.InceptionWeightsUnavailable`` (a ``FileNotFoundError``
    whose message says where to put the weights file).
    """
    from ganlib.data import open_dataset

    run_dir = resolve_run(run_dir)
    model = load_run(run_dir)
    info = json.loads((run_dir / "config.json").read_text())
    root = root or info.get("root")
    datasets = {split: open_dataset(info["data"], root=root, split=split) for split in ("train", "test")}
    evaluator = cb.Evaluate(evaluation_split(model, datasets), n=n or model.config.eval_samples, out_dir=run_dir,
                            verbose=False)
    evaluator.set_model(model)
    return evaluator.evaluate()


def sample_run(run_dir, conditions, out, seed=0):
    """Generate one image per condition (captions; class ids or a count for other models) with a
    run's newest checkpoint and save a labelled grid PNG."""
    model = load_run(run_dir)
    images = model.generate(conditions, seed=seed)
    labels = [str(c) for c in conditions] if model.condition.kind != "none" else None
    return cb.save_grid(images, out, columns=min(8, len(images)), labels=labels)
