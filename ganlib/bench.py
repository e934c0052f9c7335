r"""`ganlib bench MODEL`: training speed, memory and FLOP/s of a model preset.

    ganlib bench stackganpp --preset fast [--batch N] [--steps N] [--warmup N]
                            [--precision fp32|bf16] [--json FILE]

Builds the preset's model (a staged model: its last stage, on an untrained
earlier stage), compiles it as `ganlib train` does, and trains it on one
synthetic batch of random numbers with the structure its batches have
(`synthetic_batch`: no dataset, offline), repeated in memory. The first
`warmup` steps (compilation included) are not timed; each of the next `steps`
is timed on its own. One JSON record per run:

    model, preset, backend, batch, precision, steps, warmup,
    median_step_s, min_step_s, max_step_s, images_per_s,
    peak_rss_mb        the process's peak resident memory (host),
    device_peak_mb     the accelerator's peak memory where the backend exposes it, else null,
    flops_per_step     estimated FLOPs of one training step (`ganlib.flops.train_step_flops`:
                       3x forward for trained layers, 1x for frozen ones, per network call),
    forward_flops      {network: forward FLOPs per image of one call}, network_calls {network: calls per step},
    achieved_gflops    flops_per_step / median_step_s / 1e9,
    calibration_gflops GFLOP/s of a fixed float32 numpy matmul on this machine (`calibration_gflops`),
    machine            {cpu, cores, load_average, accelerators}, versions {python, numpy, keras, backend}, jit_compile, time.

`calibration_gflops` makes figures from different machines comparable: the
ratio achieved / calibration is the fraction of the machine's plain matmul speed
the training step reaches. Timings on a shared machine vary with its load.
"""

import json
import os
import platform
import resource
import sys
import time

import keras
import numpy as np

from ganlib import flops as flop_count

PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def build_model(name, preset="fast", batch=None, overrides=None):
    """The (uncompiled) model of `ganlib bench NAME --preset PRESET`, at batch size `batch`
    (default: the preset's), with config fields `overrides`, built from the paper's registry
    entry. A staged model is its last stage, built on the earlier stages' untrained models
    as `ganlib train` chains them."""
    from ganlib import models

    overrides = dict(overrides or {})
    if batch is not None:
        overrides["batch_size"] = batch
    spec = models.get(name)
    model = None
    for _, stage_cfg in spec.plan(spec.make_config(preset, **overrides)):
        model = spec.build(stage_cfg, previous=model)
    return model


def synthetic_batch(model, batch_size, seed=0):
    """A batch of random numbers with the keys, shapes and ranges that `ganlib train`'s pipeline
    gives this model (its registry entry's `BatchSpec`):

    `image` (B, S, S, 3) float32 uniform in [-1, 1], `image_<s>` for the pyramid sizes,
    `wrong_image` (and its pyramid) when the mismatched pairs are images; `class_id` (B,)
    int32 in [0, num_classes); text as `tokens` / `wrong_tokens` int32 word ids in
    [2, vocabulary size) (no padding), (B, T) or (B, k, T) with k captions per image, or as
    precomputed `embeddings` / `wrong_embeddings` (B, k, D) float32. Label-map models (pix2pixHD):
    `image` (B, H, W, 3), `label` ids in [0, label_nc) and `instance` ids (B, H, W) int32.
    """
    from ganlib import models

    cfg = model.config
    name = next(n for n in models.MODELS if isinstance(cfg, models.get(n).config))
    spec = models.get(name).batch(cfg)
    rng = np.random.default_rng(seed)
    if spec.label_maps:   # label-map models: `image` (B, H, W, 3), `label` and `instance` (B, H, W)
        h, w = spec.image_size
        label = rng.integers(0, cfg.label_nc, (batch_size, h, w)).astype("int32")
        instance = np.where(label == 26, 26000 + rng.integers(0, 3, label.shape), label).astype("int32")
        return {"image": rng.uniform(-1, 1, (batch_size, h, w, 3)).astype("float32"), "label": label,
                "instance": instance}
    images = lambda s: rng.uniform(-1, 1, (batch_size, s, s, 3)).astype("float32")  # noqa: E731
    batch = {"image": images(spec.image_size),
             "class_id": rng.integers(0, getattr(cfg, "num_classes", 1), batch_size).astype("int32")}
    batch.update({f"image_{s}": images(s) for s in spec.pyramid})
    prefixes = ("", "wrong_") if spec.wrong else ("",)
    if spec.wrong == "image":
        batch["wrong_image"] = images(spec.image_size)
        batch.update({f"wrong_image_{s}": images(s) for s in spec.pyramid})
    if spec.text == "tokens":
        shape = (batch_size, spec.max_words) if spec.captions == 1 else (batch_size, spec.captions, spec.max_words)
        for prefix in prefixes:
            batch[prefix + "tokens"] = rng.integers(2, model.tokenizer.vocabulary_size, shape).astype("int32")
    elif spec.text == "embeddings":
        for prefix in prefixes:
            batch[prefix + "embeddings"] = rng.standard_normal((batch_size, spec.captions, cfg.embed_dim)).astype("float32")
    return batch


def calibration_gflops(n=1024, repeats=7):
    """GFLOP/s of an (n, n) @ (n, n) float32 numpy matmul (2 n^3 FLOPs), the median of `repeats`."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype("float32") for _ in range(2))
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / float(np.median(times)) / 1e9


def peak_rss_mb():
    """The process's peak resident set size in MB (`getrusage`: kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def device_peak_mb():
    """Peak memory of the first accelerator in MB where the backend reports it; None on CPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
    return None


def accelerators():
    """Names of the backend's accelerators (e.g. "NVIDIA H200"); [] on CPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def machine():
    """CPU model, usable cores, the 1-minute load average (other processes' share of the
    cores: timings on a loaded machine are slower) and the backend's accelerators."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": cores, "load_average": load, "accelerators": accelerators()}


def versions():
    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    return {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
            backend: __import__(module).__version__ if module else None}


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training batch (the step's result fetched, so queued work has run)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        for value in (logs or {}).values():   # bfloat16 scalars have no numpy dtype: cast first
            keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
        self.times.append(time.perf_counter() - self._start)


def time_steps(model, batch, steps, warmup):
    """Seconds of each of `steps` training steps on `batch`, after `warmup` untimed ones."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(batch).repeat()
    timer = StepTimer()
    model.fit(data, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return timer.times[warmup:]


def _check(name, value, minimum):
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"--{name}: expected an integer >= {minimum}, got {value!r}.")


def bench(name, preset="fast", batch=None, steps=10, warmup=3, precision="fp32", overrides=None):
    """Benchmark `name`'s preset; returns the JSON record (see the module docstring).

    `overrides`: config fields to change (e.g. a smaller `image_size` for tests).
    `precision="bf16"` sets Keras' global dtype policy to "mixed_bfloat16" before
    building (float32 weights, bfloat16 computation); the previous policy is
    restored afterwards.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: expected one of {sorted(PRECISIONS)}, got {precision!r}.")
    _check("steps", steps, 1)
    _check("warmup", warmup, 0)
    if batch is not None:
        _check("batch", batch, 1)
    calibration = calibration_gflops()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    try:
        model = build_model(name, preset, batch, overrides)
        model.compile()
        size = model.config.batch_size
        data = synthetic_batch(model, size)
        counted = flop_count.train_step_flops(model, {k: v[:2] for k, v in data.items()})
        times = time_steps(model, data, steps, warmup)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    median = float(np.median(times))
    flops = counted["train_per_image"] * size
    return {
        "model": name, "preset": preset, "backend": keras.backend.backend(), "batch": size,
        "precision": precision, "steps": steps, "warmup": warmup,
        "median_step_s": median, "min_step_s": float(np.min(times)), "max_step_s": float(np.max(times)),
        "images_per_s": size / median,
        "peak_rss_mb": peak_rss_mb(), "device_peak_mb": device_peak_mb(),
        "flops_per_step": int(flops), "forward_flops": counted["forward"], "network_calls": counted["calls"],
        "uncounted_layers": counted["uncounted"],
        "achieved_gflops": flops / median / 1e9, "calibration_gflops": calibration,
        "jit_compile": bool(getattr(model, "jit_compile", False)),
        "machine": machine(), "versions": versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def summary(record):
    """One human-readable line of a record."""
    return (f"{record['model']} {record['preset']} ({record['backend']}, {record['precision']}, batch {record['batch']}): "
            f"{record['median_step_s'] * 1000:.1f} ms/step (min {record['min_step_s'] * 1000:.1f}, "
            f"max {record['max_step_s'] * 1000:.1f}), {record['images_per_s']:.1f} images/s, "
            f"{record['flops_per_step'] / 1e9:.2f} GFLOP/step, {record['achieved_gflops']:.1f} GFLOP/s "
            f"(matmul calibration {record['calibration_gflops']:.1f} GFLOP/s), "
            f"peak RSS {record['peak_rss_mb']:.0f} MB"
            + (f", device peak {record['device_peak_mb']:.0f} MB" if record["device_peak_mb"] is not None else ""))


def run(name, preset="fast", batch=None, steps=10, warmup=3, precision="fp32", json_path=None):
    """`ganlib bench`: print the summary and the JSON record; append the record to `json_path`
    (one JSON object per line) when given."""
    record = bench(name, preset, batch, steps, warmup, precision)
    print(summary(record))
    line = json.dumps(record)
    print(line)
    if json_path:
        with open(json_path, "a") as f:
            f.write(line + "\n")
    return record
