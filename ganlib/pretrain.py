"""Train the shipped SynthBirds networks: the sentence encoder, the evaluator and the DAMSM.

    python -m ganlib.pretrain encoder   [--out ganlib/assets] [--epochs N] [--seed S]
    python -m ganlib.pretrain evaluator [--out ganlib/assets] [--epochs N] [--seed S]
    python -m ganlib.pretrain segmenter [--out ganlib/assets] [--epochs N] [--seed S]
    python -m ganlib.pretrain all
    python -m ganlib pretrain damsm --data synthbirds --out ganlib/assets/damsm_synthbirds   # train_damsm
    python -m ganlib pretrain damsm --data synthbirds --out ganlib/assets/damsm_synthbirds_30ep --epochs 30
    python -m ganlib pretrain vs --data synthbirds --out ganlib/assets/vs_synthbirds         # train_vs (HDGAN)

Both render their SynthBirds training images in memory (no files), train on a CPU
in a few minutes (TensorFlow backend recommended: ``KERAS_BACKEND=tensorflow``),
write ``*.weights.h5`` files that load on every backend, and record held-out
accuracies and the settings in ``pretrained.json``.

* ``encoder`` -- Reed et al. (2016)'s joint embedding in ranking form: a
  :class:`~ganlib.encoders.SentenceEncoder` and an
  :class:`~ganlib.encoders.ImageEncoder` trained on the 150 train classes with a
  symmetric hinge ranking loss over cosine similarities, every other batch item of a
  different class as a negative. Reported on the 50 held-out test classes:
  zero-shot top-1 (nearest class-mean caption embedding) and caption->image R@1
  among 100 candidates. Only the sentence encoder is saved.
* ``evaluator`` -- the :class:`~ganlib.metrics.Evaluator` CNN on all 200 species,
  species + per-part colour heads, with light augmentation (noise, blur, brightness
  and contrast jitter) so it judges imperfect GAN samples too. Reported on freshly
  rendered images from another seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def _log(msg):
    print(f"[pretrain {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- #
# Data (rendered in memory)
# --------------------------------------------------------------------------- #
def render_set(species_ids, per_species, seed, size=64, captions=10):
    """Render ``per_species`` birds of each species: images uint8, labels, captions."""
    from ganlib.data import synthbirds as sb

    rng = np.random.default_rng(seed)
    images, species, attrs, caps = [], [], {p: [] for p in sb.PARTS}, []
    for sid in species_ids:
        for _ in range(per_species):
            bird = sb.sample_bird(int(sid), rng)
            img, _ = sb.render(bird, size)
            images.append(img)
            species.append(int(sid))
            for p in sb.PARTS:
                attrs[p].append(list(sb.PART_COLOURS[p]).index(bird[p]))
            if captions:
                caps.append(sb.make_captions(bird, rng, n=captions))
    return {"images": np.stack(images), "species": np.asarray(species, np.int32),
            "attributes": {p: np.asarray(v, np.int32) for p, v in attrs.items()},
            "captions": caps}


def augment(images_uint8, rng):
    """Light photometric augmentation -> float32 in [-1, 1].

    Per image: brightness +-0.08, contrast x[0.85, 1.15], with prob 0.3 a 3x3
    box blur, gaussian noise with sigma in [0, 0.06]. Hues are left alone: they
    are the labels.
    """
    x = images_uint8.astype(np.float32) / 127.5 - 1.0
    n = x.shape[0]
    blur = rng.random(n) < 0.3
    if blur.any():
        xb = x[blur]
        p = np.pad(xb, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        h, w = xb.shape[1:3]
        acc = np.zeros_like(xb)
        for dy in range(3):
            for dx in range(3):
                acc += p[:, dy:dy + h, dx:dx + w]
        x[blur] = acc / 9.0
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.85, 1.15, (n, 1, 1, 1)).astype(np.float32)
    bright = rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32)
    x = (x - mean) * contrast + mean + bright
    x += rng.normal(0, 1, x.shape).astype(np.float32) * rng.uniform(0, 0.06, (n, 1, 1, 1)).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


# --------------------------------------------------------------------------- #
# Evaluator
# --------------------------------------------------------------------------- #
def train_evaluator(out=ASSETS, epochs=5, seed=0, per_species=50, eval_per_species=15,
                    batch_size=64, learning_rate=2e-3):
    import keras
    from ganlib import metrics
    from ganlib.data import synthbirds as sb

    keras.utils.set_random_seed(seed)
    t0 = time.time()
    _log(f"evaluator: rendering {sb.NUM_SPECIES} species x {per_species} images (seed {seed})")
    data = render_set(range(sb.NUM_SPECIES), per_species, seed=seed, captions=0)
    held = render_set(range(sb.NUM_SPECIES), eval_per_species, seed=seed + 1000, captions=0)
    t_render = time.time() - t0
    _log(f"rendered {len(data['images'])} train + {len(held['images'])} held-out images in {t_render:.0f}s")

    net = metrics.build_evaluator_network()
    losses = {"species": "sparse_categorical_crossentropy"}
    weights = {"species": 1.0}
    for p in sb.PARTS:
        losses[f"attr_{p}"] = "sparse_categorical_crossentropy"
        weights[f"attr_{p}"] = 1.0
    steps = epochs * int(np.ceil(len(data["images"]) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss=losses, loss_weights=weights)
    # the "features" output gets no loss
    rng = np.random.default_rng(seed)
    y = {"species": data["species"], **{f"attr_{p}": data["attributes"][p] for p in sb.PARTS}}
    t1 = time.time()
    for ep in range(epochs):
        x = augment(data["images"], rng)
        perm = rng.permutation(len(x))
        hist = net.fit(x[perm], {k: v[perm] for k, v in y.items()}, batch_size=batch_size,
                       epochs=ep + 1, initial_epoch=ep, verbose=0)
        _log(f"evaluator epoch {ep + 1}/{epochs}: loss {hist.history['loss'][-1]:.3f} "
             f"({time.time() - t1:.0f}s)")
    t_train = time.time() - t1

    ev = metrics.Evaluator(net)
    res = ev.predict(held["images"])
    acc = {"species_top1": float(np.mean(res["species_probs"].argmax(1) == held["species"]))}
    for p in sb.PARTS:
        acc[f"{p}_colour"] = float(np.mean(res["attributes"][p].argmax(1) == held["attributes"][p]))
    acc["mean_part_colour"] = float(np.mean([acc[f"{p}_colour"] for p in sb.PARTS]))
    # the same on augmented (degraded) held-out images
    res_aug = ev.predict(augment(held["images"], np.random.default_rng(seed + 7)))
    acc["augmented_species_top1"] = float(np.mean(res_aug["species_probs"].argmax(1) == held["species"]))
    acc["augmented_mean_part_colour"] = float(np.mean(
        [np.mean(res_aug["attributes"][p].argmax(1) == held["attributes"][p]) for p in sb.PARTS]))
    _log("evaluator held-out: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "evaluator.weights.h5")
    ev.save(path)
    record = {
        "file": "evaluator.weights.h5",
        "held_out": acc,
        "settings": {"species": sb.NUM_SPECIES, "train_images_per_species": per_species,
                     "held_out_images_per_species": eval_per_species, "image_size": 64,
                     "epochs": epochs, "batch_size": batch_size, "optimizer": "Adam",
                     "learning_rate": learning_rate, "schedule": "cosine decay to 5%",
                     "augmentation": "brightness +-0.08, contrast x0.85-1.15, p=0.3 3x3 blur, noise sigma<=0.06",
                     "seed": seed, "held_out_seed": seed + 1000,
                     "backend": keras.backend.backend()},
        "time_s": {"render": round(t_render, 1), "train": round(t_train, 1)},
    }
    _update_json(out, "evaluator", record)
    _log(f"saved {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return record


# --------------------------------------------------------------------------- #
# Street-scene segmenter (pix2pixHD's evaluation network)
# --------------------------------------------------------------------------- #
def street_set(data="synthstreets", root=None, split="train", n=None, size=None, seed=0):
    """Real street scenes at the segmenter's input size: ``images`` uint8 (N, H, W, 3),
    ``labels`` uint8 label ids (N, H, W).

    ``data="synthstreets"`` without ``root``: the scenes of the default SynthStreets
    (:data:`ganlib.data.SYNTHSTREETS_DEFAULT`) rendered in memory, the same pixels
    as its files (train: its first scenes, test: its test scenes); otherwise the
    dataset at ``root`` (Cityscapes: ``split="val"`` for the evaluation split).
    ``n`` frames at most (the first ones).
    """
    from ganlib.data import SYNTHSTREETS_DEFAULT, open_dataset, synthstreets
    from ganlib.data.cityscapes import resize_frame
    from ganlib.metrics.segmentation import INPUT_SIZE

    size = tuple(size or INPUT_SIZE)
    if data == "synthstreets" and root is None:
        d = SYNTHSTREETS_DEFAULT
        names = synthstreets.scene_names(d["n"])
        index = [i for i, (s, _, _) in enumerate(names) if s == split][:n]
        images, labels = [], []
        for i in index:
            scene = synthstreets.sample_scene(np.random.default_rng([d["seed"], i]))
            image, label, instance = resize_frame(*synthstreets.render(scene, *d["size"]), size)
            images.append(image)
            labels.append(label)
        return {"images": np.stack(images), "labels": np.stack(labels)}
    ds = open_dataset(data, root=root, split=split)
    images, labels, _ = ds.arrays(size)
    return {"images": images[:n], "labels": labels[:n]}


def train_segmenter(out=ASSETS, data="synthstreets", root=None, epochs=10, seed=0, n_train=1500,
                    n_test=500, batch_size=32, learning_rate=2e-3):
    """Train :func:`ganlib.metrics.segmentation.build_segmenter` on real street scenes.

    Per-pixel cross-entropy over the 19 Cityscapes train ids (void pixels
    ignored), Adam with cosine decay, random left-right flips and the light
    photometric :func:`augment` (blur, noise, brightness, contrast) so that
    it also reads imperfect generated images. Writes ``segmenter.weights.h5``
    and records in ``pretrained.json`` (``"segmenter"``) the pixel accuracy and
    mean IoU on ``n_test`` real test images (the ceiling for generated ones),
    per-class IoU, and the same scores of an untrained network.
    """
    import keras

    from ganlib.metrics import segmentation as seg

    keras.utils.set_random_seed(seed)
    t0 = time.time()
    test_split = "val" if data == "cityscapes" else "test"
    train = street_set(data, root, "train", n_train)
    test = street_set(data, root, test_split, n_test)
    t_data = time.time() - t0
    _log(f"segmenter: {len(train['images'])} train / {len(test['images'])} {test_split} frames of "
         f"{seg.INPUT_SIZE[0]}x{seg.INPUT_SIZE[1]} ({t_data:.0f}s)")
    untrained = seg.Segmenter()
    baseline = seg.segmentation_scores(test["images"], test["labels"], segmenter=untrained)
    net = seg.build_segmenter()
    steps = epochs * (len(train["images"]) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=seg.IGNORE)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss={"logits": loss})
    rng = np.random.default_rng(seed)
    y = seg.train_ids(train["labels"]).astype(np.int32)
    t1 = time.time()
    for ep in range(epochs):
        x = augment(train["images"], rng)
        flip = rng.random(len(x)) < 0.5
        x[flip], yy = x[flip, :, ::-1], y.copy()
        yy[flip] = y[flip, :, ::-1]
        perm = rng.permutation(len(x))
        hist = net.fit(x[perm], {"logits": yy[perm]}, batch_size=batch_size, epochs=ep + 1,
                       initial_epoch=ep, verbose=0)
        _log(f"segmenter epoch {ep + 1}/{epochs}: loss {hist.history['loss'][-1]:.3f} "
             f"({time.time() - t1:.0f}s)")
    t_train = time.time() - t1
    trained = seg.Segmenter(net)
    pred = trained.predict(test["images"])["train_ids"]
    scores = seg.scores_from_confusion(seg.confusion_matrix(pred, seg.train_ids(test["labels"])))
    from ganlib.data.synthstreets import LABELS

    names = {lab.train_id: lab.name for lab in LABELS if lab.train_id != 255}
    iou = {names[c]: round(float(v), 4) for c, v in enumerate(scores["iou"]) if np.isfinite(v)}
    _log(f"segmenter on real {test_split} images: pixel accuracy {scores['pixel_accuracy']:.3f}, "
         f"mIoU {scores['miou']:.3f} (untrained: {baseline['pixel_accuracy']:.3f}, {baseline['miou']:.3f})")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "segmenter.weights.h5")
    fresh = seg.build_segmenter()
    fresh.set_weights(net.get_weights())
    fresh.save_weights(path)
    record = {
        "file": "segmenter.weights.h5",
        "real_test": {"pixel_accuracy": scores["pixel_accuracy"], "miou": scores["miou"], "iou": iou,
                      "images": len(test["images"]), "split": test_split},
        "untrained": baseline,
        "settings": {"data": data, "root": None if root is None else str(root), "input_size": list(seg.INPUT_SIZE),
                     "train_frames": len(train["images"]), "epochs": epochs, "batch_size": batch_size,
                     "optimizer": "Adam", "learning_rate": learning_rate, "schedule": "cosine decay to 5%",
                     "augmentation": "left-right flip; brightness +-0.08, contrast x0.85-1.15, p=0.3 3x3 blur, "
                                     "noise sigma<=0.06",
                     "seed": seed, "backend": keras.backend.backend(),
                     "parameters": int(net.count_params())},
        "time_s": {"data": round(t_data, 1), "train": round(t_train, 1)},
    }
    _update_json(out, "segmenter", record)
    _log(f"saved {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return record


# --------------------------------------------------------------------------- #
# Sentence encoder (joint embedding)
# --------------------------------------------------------------------------- #
def _ranking_loss(class_ids, emb, margin):
    """Symmetric hinge ranking loss over cosine similarities; same-class pairs masked."""
    from keras import ops

    d = ops.shape(emb)[-1] // 2
    v = emb[:, :d]
    t = emb[:, d:]
    v = v / ops.maximum(ops.norm(v, axis=1, keepdims=True), 1e-8)
    t = t / ops.maximum(ops.norm(t, axis=1, keepdims=True), 1e-8)
    s = ops.matmul(v, ops.transpose(t))                    # s[i, j] = cos(image i, caption j)
    pos = ops.diagonal(s)
    c = ops.reshape(ops.cast(class_ids, "int32"), (-1,))
    neg = ops.cast(ops.not_equal(c[:, None], c[None, :]), s.dtype)
    cost_v = ops.relu(margin - pos[:, None] + s) * neg     # image i vs wrong captions j
    cost_t = ops.relu(margin - pos[None, :] + s) * neg     # caption j vs wrong images i
    b = ops.cast(ops.shape(s)[0], s.dtype)
    return (ops.sum(cost_v) + ops.sum(cost_t)) / b


def _joint_model(vocabulary_size, embed_dim=256, margin=0.2):
    import keras
    from ganlib.encoders import ImageEncoder, SentenceEncoder

    img = keras.Input((64, 64, 3), name="image")
    tok = keras.Input((None,), dtype="int32", name="tokens")
    phi = SentenceEncoder(vocabulary_size, embed_dim=embed_dim, name="phi")
    theta = ImageEncoder(embed_dim=embed_dim, name="theta")
    out = keras.layers.Concatenate(name="joint")([theta(img), phi(tok)])
    model = keras.Model([img, tok], out, name="joint_embedding")

    def loss(y_true, y_pred):
        return _ranking_loss(y_true, y_pred, margin)

    return model, phi, theta, loss


def train_encoder(out=ASSETS, epochs=20, seed=0, per_species=50, test_per_species=20,
                  batch_size=64, learning_rate=1e-3, margin=0.2):
    import keras
    from ganlib import metrics
    from ganlib.data import synthbirds as sb
    from ganlib.encoders import build_sentence_encoder
    from ganlib.text import Tokenizer

    keras.utils.set_random_seed(seed)
    tokenizer = Tokenizer.default()
    train_ids = range(150)
    test_ids = range(150, sb.NUM_SPECIES)
    t0 = time.time()
    _log(f"encoder: rendering 150 train species x {per_species} images, 10 captions each (seed {seed})")
    data = render_set(train_ids, per_species, seed=seed)
    proto = render_set(test_ids, test_per_species, seed=seed + 2000)
    test = render_set(test_ids, test_per_species, seed=seed + 3000)
    t_render = time.time() - t0
    n, ncap = len(data["images"]), len(data["captions"][0])
    tokens = tokenizer([c for cs in data["captions"] for c in cs]).reshape(n, ncap, -1)   # (N, 10, T)
    x_img = data["images"].astype(np.float32) / 127.5 - 1.0
    _log(f"rendered {n} train images ({n * ncap} captions) + 2 x {len(test['images'])} test in {t_render:.0f}s")

    model, phi, theta, loss = _joint_model(tokenizer.vocabulary_size, margin=margin)
    steps = epochs * (n // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    rng = np.random.default_rng(seed)
    t1 = time.time()
    for ep in range(epochs):
        pick = rng.integers(0, ncap, n)                                     # one caption per image per epoch
        perm = rng.permutation(n)
        flip = rng.random(n) < 0.5                                          # pose-free: random mirror
        xi = np.where(flip[:, None, None, None], x_img[:, :, ::-1], x_img)
        hist = model.fit([xi[perm], tokens[perm, pick[perm]]], data["species"][perm],
                         batch_size=batch_size, epochs=ep + 1, initial_epoch=ep, verbose=0)
        _log(f"encoder epoch {ep + 1}/{epochs}: loss {hist.history['loss'][-1]:.3f} ({time.time() - t1:.0f}s)")
    t_train = time.time() - t1

    # ---- held-out test classes ----
    def embed_text(caps):
        return keras.ops.convert_to_numpy(phi(tokenizer(caps)))

    def embed_images(imgs):
        x = imgs.astype(np.float32) / 127.5 - 1.0
        return np.concatenate([keras.ops.convert_to_numpy(theta(x[s:s + 256], training=False))
                               for s in range(0, len(x), 256)])

    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)

    nt = len(proto["captions"])
    proto_emb = unit(embed_text([c for cs in proto["captions"] for c in cs])).reshape(nt, ncap, -1)
    classes = np.asarray(list(test_ids))
    protos = unit(np.stack([proto_emb[proto["species"] == k].reshape(-1, proto_emb.shape[-1]).mean(0)
                            for k in classes]))
    img_emb = unit(embed_images(test["images"]))
    zs = float(np.mean(classes[np.argmax(img_emb @ protos.T, axis=1)] == test["species"]))
    cap_rng = np.random.default_rng(seed + 4000)
    one_cap = [cs[cap_rng.integers(ncap)] for cs in test["captions"]]
    txt_emb = embed_text(one_cap)
    r1 = metrics.r_precision(txt_emb, img_emb, candidates=100, seed=seed)   # caption -> image
    r1_i2t = metrics.r_precision(img_emb, txt_emb, candidates=100, seed=seed)
    acc = {"zero_shot_top1": zs, "caption_to_image_R@1_of_100": r1, "image_to_caption_R@1_of_100": r1_i2t,
           "chance_zero_shot": 1.0 / len(classes), "chance_R@1": 0.01}
    _log("encoder test classes: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "sentence_encoder.weights.h5")
    enc = build_sentence_encoder(tokenizer.vocabulary_size)
    enc.get_layer("phi").set_weights(phi.get_weights())
    enc.save_weights(path)
    record = {
        "file": "sentence_encoder.weights.h5",
        "test_classes": acc,
        "settings": {"train_species": 150, "test_species": 50, "train_images_per_species": per_species,
                     "captions_per_image": ncap, "test_images_per_species": test_per_species,
                     "prototype_images_per_species": test_per_species,
                     "epochs": epochs, "batch_size": batch_size, "optimizer": "Adam",
                     "learning_rate": learning_rate, "schedule": "cosine decay to 5%", "margin": margin,
                     "loss": "symmetric hinge ranking over cosine, same-class pairs masked",
                     "vocabulary_size": tokenizer.vocabulary_size, "max_words": int(tokens.shape[-1]),
                     "vocabulary": list(tokenizer.vocabulary),
                     "seed": seed, "backend": keras.backend.backend()},
        "time_s": {"render": round(t_render, 1), "train": round(t_train, 1)},
    }
    _update_json(out, "sentence_encoder", record)
    _log(f"saved {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return record


# --------------------------------------------------------------------------- #
# DAMSM (AttnGAN's text and image encoders)
# --------------------------------------------------------------------------- #
DAMSM_PRESETS = ("fast", "paper", "coco")


def damsm_tokenizer(dataset, max_words):
    """The shipped vocabulary for SynthBirds, else one built from the split's captions."""
    from ganlib.text import Tokenizer

    if dataset.name == "synthbirds":
        return Tokenizer.default(max_words)
    return Tokenizer.from_texts([c for cs in dataset.captions for c in cs], max_words=max_words)


def save_damsm(model, tokenizer, out, data, weights=True):
    """Write a DAMSM folder as ``ganlib.models.damsm.load_pretrained`` reads it: ``config.json``
    (the config, the data's name, the number of token ids), ``vocab.txt`` and ``damsm.weights.h5``."""
    os.makedirs(out, exist_ok=True)
    tokenizer.save(os.path.join(out, "vocab.txt"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"config": model.config.to_dict(), "data": data, "vocabulary_size": tokenizer.vocabulary_size},
                  f, indent=1)
    if weights:
        model.save_weights(os.path.join(out, "damsm.weights.h5"))


def damsm_r_precision(model, dataset, tokenizer, candidates=100, seed=0, folds=None):
    """R-precision of a DAMSM on a split: every image against its caption and 99 others.

    One caption per image (drawn with ``seed``); images uncropped by augmentation,
    resized to the model's input; cosine of the global image code and the sentence
    feature (:func:`ganlib.metrics.r_precision`). With fewer than ``candidates``
    images, all of them are the candidates. ``folds``: return ``(mean, std)`` over
    that many folds (:func:`ganlib.metrics.r_precision_folds`) instead of one number.
    """
    from ganlib import metrics

    images = dataset.images(model.config.image_size)
    rng = np.random.default_rng(seed)
    captions = [caps[rng.integers(len(caps))] for caps in dataset.captions]
    image_codes, text_codes = metrics.damsm_codes(images, captions, model, tokenizer)
    candidates = min(candidates, len(images))
    if folds:
        return metrics.r_precision_folds(image_codes, text_codes, candidates=candidates, folds=folds, seed=seed)
    return metrics.r_precision(image_codes, text_codes, candidates=candidates, seed=seed)


def _splits(data, root, max_words):
    """The train and test splits of a dataset and the tokenizer (:func:`damsm_tokenizer`)."""
    from ganlib.data import open_dataset

    train = open_dataset(data, root=root, split="train")
    return train, open_dataset(data, root=root, split="test"), damsm_tokenizer(train, max_words)


def _preset_config(module, preset, presets, config, **overrides):
    """``config`` if given, else ``module.Config.<preset>()`` (checked against ``presets``), with the
    ``overrides`` that are not None."""
    if config is None:
        if preset not in presets:
            raise ValueError(f"preset must be one of {presets}, got {preset!r}")
        config = getattr(module.Config, preset)()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **overrides) if overrides else config


def _resume_point(out, resume, what, model, weights_path):
    """``(first epoch, history)`` of the run in ``out``: ``(0, [])`` for a new one; a run there
    without ``resume`` is an error; with it, its weights are loaded into ``model``."""
    state_path = os.path.join(out, "state.json")
    if not os.path.exists(state_path):
        return 0, []
    if not resume:
        raise ValueError(f"{out} already holds a {what} run ({state_path}); pass resume=True (--resume) "
                         f"to continue it, or choose another folder")
    with open(state_path) as f:
        start = int(json.load(f)["epoch"])
    with open(os.path.join(out, "metrics.json")) as f:
        history = json.load(f)
    model.load_weights(weights_path)
    return start, history


def _start_run(out, what, resume, seed, data, root, max_words, weights_path, make_model, tokenizer=None):
    """The set-up every resumable pretraining run shares: refuse a folder holding a run unless
    ``resume``, seed, open the train and test splits (and the tokenizer, :func:`damsm_tokenizer`
    unless one is given), build ``make_model(tokenizer)`` and load the run's weights when resuming.

    Returns ``(model, train, test, tokenizer, first epoch, history)``.
    """
    import keras

    os.makedirs(out, exist_ok=True)
    if not resume:
        _resume_point(out, resume, what, None, weights_path)   # refuses a folder holding a run
    keras.utils.set_random_seed(seed)
    train, test, default_tokenizer = _splits(data, root, max_words)
    tokenizer = tokenizer or default_tokenizer
    model = make_model(tokenizer)
    model.build()
    start, history = _resume_point(out, resume, what, model, weights_path)
    return model, train, test, tokenizer, start, history


def _steps(train, batch_size, steps_per_epoch):
    """Steps of an epoch: one pass over ``train``, capped at ``steps_per_epoch``."""
    batches = len(train) // batch_size
    return batches if steps_per_epoch is None else min(batches, int(steps_per_epoch))


def _end_epoch(out, history, record, epoch):
    """Append ``record`` to the run's ``metrics.json`` and mark ``epoch + 1`` done in ``state.json``."""
    history.append(record)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=1)
    with open(os.path.join(out, "state.json"), "w") as f:
        json.dump({"epoch": epoch + 1}, f)


def train_damsm(out, data="synthbirds", root=None, preset="fast", epochs=None, resume=False,
                steps_per_epoch=None, seed=0, config=None, inception_weights=None, verbose=True):
    """Pretrain DAMSM as ``pretrain_DAMSM.py`` does, resumably.

    Each epoch: a fresh Adam at the epoch's learning rate (the reference builds a
    new optimiser every epoch, so no optimiser state carries over; lr x 0.98 per
    epoch down to a tenth), one pass over the train split (random crop + flip,
    one random caption per image), then R-precision (100 candidates) on the test
    split. After each epoch ``out`` holds ``damsm.weights.h5``, ``config.json``,
    ``vocab.txt``, ``state.json`` (the next epoch) and ``metrics.json`` (a list of
    records ``{"epoch", "step", "learning_rate", "loss", "word_loss",
    "sentence_loss", "r_precision"}``); ``resume=True`` continues from there.

    Args:
        out: run folder.
        data, root: dataset name and folder (``ganlib.data.open_dataset``).
        preset: ``"fast"`` (SynthBirds, small CNN), ``"paper"`` (bird.yml) or ``"coco"``.
        epochs: total epochs (default: the config's).
        steps_per_epoch: cap on the steps of an epoch (default: one pass).
        config: a :class:`ganlib.models.damsm.Config`, instead of ``preset``.
        inception_weights: overrides the config's (a path to InceptionV3 weights).

    Returns:
        The list of metric records.
    """
    from ganlib.models import damsm

    config = _preset_config(damsm, preset, DAMSM_PRESETS, config, inception_weights=inception_weights)
    epochs = config.epochs if epochs is None else int(epochs)
    model, train, test, tokenizer, start, history = _start_run(
        out, "DAMSM", resume, seed, data, root, config.max_words, os.path.join(out, "damsm.weights.h5"),
        lambda tok: damsm.DAMSM(config, vocabulary_size=tok.vocabulary_size))
    if verbose and start:
        _log(f"damsm: resuming {out} at epoch {start}")
    save_damsm(model, tokenizer, out, data, weights=False)
    steps = _steps(train, config.batch_size, steps_per_epoch)
    step = start * steps
    for epoch in range(start, epochs):
        lr = config.learning_rate_at(epoch)
        model.compile(learning_rate=lr)                       # a fresh Adam, as the reference
        pipe = train.pipeline(batch_size=config.batch_size, image_size=config.image_size, tokenizer=tokenizer,
                              max_words=config.max_words, wrong=None, seed=seed * 100003 + epoch,
                              repeat=False)
        t0 = time.time()
        hist = model.fit(pipe.take(steps), epochs=1, verbose=0)
        step += steps
        record = {"epoch": epoch + 1, "step": step, "learning_rate": lr,
                  **{k: float(v[-1]) for k, v in hist.history.items()},
                  "time_s": round(time.time() - t0, 1)}
        record["r_precision"], record["r_precision_std"] = damsm_r_precision(model, test, tokenizer, seed=seed,
                                                                             folds=10)
        save_damsm(model, tokenizer, out, data)
        _end_epoch(out, history, record, epoch)
        if os.path.abspath(os.path.dirname(os.path.abspath(out))) == os.path.abspath(ASSETS):
            _record_shipped_damsm(out, test, config, tokenizer, history, data, seed, len(train))
        if verbose:
            _log(f"damsm epoch {epoch + 1}/{epochs}: loss {record['loss']:.3f} (words {record['word_loss']:.3f}, "
                 f"sentence {record['sentence_loss']:.3f}), test R-precision {record['r_precision']:.3f}, "
                 f"lr {lr:.5f} ({time.time() - t0:.0f}s)")
    return history


def _record_shipped_damsm(out, test, config, tokenizer, history, data, seed, train_images):
    """A shipped DAMSM's entry of ``pretrained.json`` (under its folder's name, e.g.
    ``damsm_synthbirds``): test R-precision (mean +- std over 10 folds)."""
    import keras

    name = os.path.basename(os.path.abspath(out))
    mean, std = history[-1]["r_precision"], history[-1]["r_precision_std"]
    record = {
        "folder": name,
        "files": ["damsm.weights.h5", "config.json", "vocab.txt", "metrics.json"],
        "test_classes": {"r_precision": mean, "r_precision_std": std, "candidates": 100, "folds": 10,
                         "chance": 0.01, "images": len(test),
                         "r_precision_by_epoch": [round(r["r_precision"], 4) for r in history]},
        "settings": {"data": data, "train_images": int(train_images),
                     "epochs": int(history[-1]["epoch"]), "steps": int(history[-1]["step"]),
                     "config": config.to_dict(), "vocabulary_size": tokenizer.vocabulary_size, "seed": seed,
                     "backend": keras.backend.backend()},
        "time_s": {"train": round(sum(r.get("time_s", 0.0) for r in history), 1)},
        "command": f"python -m ganlib pretrain damsm --data {data} --out ganlib/assets/{name} "
                   f"--epochs {history[-1]['epoch']}",
    }
    _update_json(ASSETS, name, record)
    _log(f"damsm: recorded test R-precision {mean:.3f} +- {std:.3f} in {os.path.join(ASSETS, 'pretrained.json')}")


# --------------------------------------------------------------------------- #
# STREAM (MirrorGAN's captioner)
# --------------------------------------------------------------------------- #
STREAM_PRESETS = ("fast", "paper")


def stream_bleu(model, dataset, tokenizer, batch_size=128):
    """Corpus BLEU-1..4 of the greedy captions of a split's images against all their captions.

    Images resized to the model's input without augmentation; references and
    hypotheses both pass through ``tokenizer`` (lower case, no punctuation, the
    vocabulary's words, ``max_words`` long).
    """
    from ganlib.metrics import corpus_bleu

    images = dataset.images(model.config.image_size).astype("float32") / 127.5 - 1.0
    hypotheses = tokenizer.decode(model.caption(images, batch_size=batch_size))
    references = [tokenizer.decode(tokenizer(list(caps))) for caps in dataset.captions]
    return corpus_bleu(references, hypotheses)


def train_stream(out, data="synthbirds", root=None, preset="fast", epochs=None, resume=False,
                 steps_per_epoch=None, seed=0, config=None, backbone_weights=None, verbose=True):
    """Pretrain MirrorGAN's captioner (STREAM) as the captioning tutorial the reference used, resumably.

    Each epoch: one pass over the train split (random crop + flip, one random
    caption per image) with Adam on the masked caption cross-entropy, then BLEU-1..4
    of the greedy captions of the test split's images (:func:`stream_bleu`). After
    each epoch ``out`` holds ``stream.weights.h5``, ``config.json``, ``vocab.txt``
    (what :func:`ganlib.models.stream.load_pretrained` reads), ``state.json`` and
    ``metrics.json`` (records ``{"epoch", "step", "loss", "bleu1", ..., "bleu4"}``).

    Args:
        out: run folder.
        data, root: dataset name and folder (``ganlib.data.open_dataset``).
        preset: ``"fast"`` (SynthBirds, small CNN) or ``"paper"`` (ResNet-152).
        epochs: total epochs (default: the config's).
        steps_per_epoch: cap on the steps of an epoch (default: one pass).
        config: a :class:`ganlib.models.stream.Config`, instead of ``preset``.
        backbone_weights: overrides the config's (a path to ResNet-152 weights).

    Returns:
        The list of metric records.
    """
    from ganlib.models import stream

    config = _preset_config(stream, preset, STREAM_PRESETS, config, backbone_weights=backbone_weights)
    epochs = config.epochs if epochs is None else int(epochs)
    model, train, test, tokenizer, start, history = _start_run(
        out, "STREAM", resume, seed, data, root, config.max_words, os.path.join(out, stream.WEIGHTS_FILE),
        lambda tok: stream.Stream(config, vocabulary_size=tok.vocabulary_size))
    model.compile()
    steps = _steps(train, config.batch_size, steps_per_epoch)
    for epoch in range(start, epochs):
        pipe = train.pipeline(batch_size=config.batch_size, image_size=config.image_size, tokenizer=tokenizer,
                              max_words=config.max_words, wrong=None, seed=seed * 100003 + epoch, repeat=False)
        t0 = time.time()
        hist = model.fit(pipe.take(steps), epochs=1, verbose=0)
        record = {"epoch": epoch + 1, "step": (epoch + 1) * steps, "loss": float(hist.history["loss"][-1]),
                  **stream_bleu(model, test, tokenizer)}
        stream.save(model, tokenizer, out, extra={"data": data})
        _end_epoch(out, history, record, epoch)
        if verbose:
            _log(f"stream epoch {epoch + 1}/{epochs}: loss {record['loss']:.3f}, test BLEU-1..4 "
                 + " / ".join(f"{record[f'bleu{n}']:.3f}" for n in range(1, 5)) + f" ({time.time() - t0:.0f}s)")
    return history


# --------------------------------------------------------------------------- #
# VS (HDGAN's visual-semantic similarity model)
# --------------------------------------------------------------------------- #
VS_PRESETS = ("fast", "paper")


def mismatched_index(class_ids, rng):
    """For each item, a random other item of another class (any other item where the class is -1)."""
    c = np.asarray(class_ids)
    index = np.arange(len(c))
    return np.array([rng.choice(np.flatnonzero((c != c[i]) if c[i] >= 0 else (index != i)))
                     for i in range(len(c))])


def vs_scores(model, dataset, tokenizer, seed=0):
    """The VS similarity (:func:`ganlib.metrics.vs_similarity`) of a split's real images with one
    of their captions (drawn with ``seed``), and with a mismatched one (each image against the caption
    of a random image of another class, or of any other image when the data has no classes):
    ``{"vs", "vs_std", "vs_mismatched", "vs_mismatched_std"}``."""
    from ganlib.metrics import vs_similarity

    images = dataset.images(model.config.image_size)
    rng = np.random.default_rng(seed)
    if model.config.text == "embeddings":
        captions = np.stack([e[rng.integers(len(e))] for e in dataset.embeddings]).astype("float32")
    else:
        captions = tokenizer([caps[rng.integers(len(caps))] for caps in dataset.captions])
    matched = vs_similarity(images, captions, model=model)
    mismatched = vs_similarity(images, captions[mismatched_index(dataset.class_ids, rng)], model=model)
    return {"vs": matched[0], "vs_std": matched[1], "vs_mismatched": mismatched[0],
            "vs_mismatched_std": mismatched[1]}


def train_vs(out, data="synthbirds", root=None, preset="fast", epochs=None, resume=False,
             steps_per_epoch=None, seed=0, config=None, backbone_weights=None, verbose=True):
    """Pretrain HDGAN's VS model as ``trainNeuralDist.py`` does, resumably.

    Each epoch: Adam (0.5, 0.999) at the epoch's learning rate (halved every
    ``epoch_decay`` epochs), one pass over the train split (random crop + flip, one random
    caption per image) with the bidirectional ranking loss, then the VS similarity of the
    test split's real images with their captions and with mismatched ones
    (:func:`vs_scores`). After each epoch ``out`` holds ``vs.weights.h5``, ``config.json``,
    ``vocab.txt`` (what :func:`ganlib.models.vs.load_pretrained` reads), ``state.json`` and
    ``metrics.json`` (records ``{"epoch", "step", "learning_rate", "loss", "vs", "vs_std",
    "vs_mismatched", "vs_mismatched_std", "time_s"}``); ``resume=True`` continues from there.

    Args:
        out: run folder.
        data, root: dataset name and folder (``ganlib.data.open_dataset``).
        preset: ``"fast"`` (SynthBirds: small CNN, the shipped sentence encoder) or ``"paper"``
            (InceptionResNetV2, precomputed 1024-d sentence embeddings).
        epochs: total epochs (default: the config's).
        steps_per_epoch: cap on the steps of an epoch (default: one pass).
        config: a :class:`ganlib.models.vs.Config`, instead of ``preset``.
        backbone_weights: overrides the config's (a path to InceptionResNetV2 weights).

    Returns:
        The list of metric records.
    """
    from ganlib.models import vs

    config = _preset_config(vs, preset, VS_PRESETS, config, backbone_weights=backbone_weights)
    epochs = config.epochs if epochs is None else int(epochs)
    model, train, test, tokenizer, start, history = _start_run(
        out, "VS", resume, seed, data, root, config.max_words, os.path.join(out, vs.WEIGHTS_FILE),
        lambda tok: vs.VS(config))
    if verbose and start:
        _log(f"vs: resuming {out} at epoch {start}")
    steps = _steps(train, config.batch_size, steps_per_epoch)
    for epoch in range(start, epochs):
        lr = config.learning_rate_at(epoch)
        if epoch == start:
            model.compile(learning_rate=lr)
        else:
            model.optimizer.learning_rate.assign(lr)           # the reference's set_lr: Adam's state carries over
        pipe = train.pipeline(batch_size=config.batch_size, image_size=config.image_size, tokenizer=tokenizer,
                              max_words=config.max_words, wrong=None, seed=seed * 100003 + epoch, repeat=False,
                              embeddings=config.text == "embeddings")
        t0 = time.time()
        hist = model.fit(pipe.take(steps), epochs=1, verbose=0)
        record = {"epoch": epoch + 1, "step": (epoch + 1) * steps, "learning_rate": lr,
                  "loss": float(hist.history["loss"][-1]), "time_s": round(time.time() - t0, 1),
                  **vs_scores(model, test, tokenizer, seed=seed)}
        vs.save(model, tokenizer, out, extra={"data": data})
        _end_epoch(out, history, record, epoch)
        if os.path.abspath(out) == os.path.abspath(vs.SHIPPED):
            record_shipped_vs(history, len(train), len(test))
        if verbose:
            _log(f"vs epoch {epoch + 1}/{epochs}: loss {record['loss']:.3f}, test VS {record['vs']:.3f} "
                 f"+- {record['vs_std']:.3f} (mismatched {record['vs_mismatched']:.3f}), lr {lr:.5f} "
                 f"({time.time() - t0:.0f}s)")
    return history


def record_shipped_vs(history, train_images, test_images, folder=None):
    """The shipped VS model's entry of ``pretrained.json``: the test VS similarity of real images with
    their captions and with other species' captions, per epoch, and the settings."""
    import keras

    from ganlib.models import vs

    folder = folder or vs.SHIPPED
    with open(os.path.join(folder, "config.json")) as f:
        info = json.load(f)
    last = history[-1]
    record = {
        "folder": os.path.basename(vs.SHIPPED),
        "files": [vs.WEIGHTS_FILE, "config.json", "vocab.txt", "metrics.json"],
        "test_split": {"vs": last["vs"], "vs_std": last["vs_std"], "vs_mismatched": last["vs_mismatched"],
                       "vs_mismatched_std": last["vs_mismatched_std"], "images": int(test_images),
                       "mismatched": "each image with the caption of a random image of another species",
                       "vs_by_epoch": [round(r["vs"], 4) for r in history],
                       "vs_mismatched_by_epoch": [round(r["vs_mismatched"], 4) for r in history]},
        "settings": {"data": info.get("data", "synthbirds"), "train_images": int(train_images),
                     "epochs": int(last["epoch"]), "steps": int(last["step"]), "config": info["config"],
                     "vocabulary_size": info["vocabulary_size"], "backend": keras.backend.backend()},
        "time_s": {"train": round(sum(r.get("time_s", 0.0) for r in history), 1)},
        "command": "python -m ganlib pretrain vs --data synthbirds --out ganlib/assets/vs_synthbirds",
    }
    _update_json(ASSETS, "vs_synthbirds", record)
    _log(f"vs: recorded test VS {last['vs']:.3f} (mismatched {last['vs_mismatched']:.3f}) in "
         f"{os.path.join(ASSETS, 'pretrained.json')}")


def _update_json(out, key, record):
    path = os.path.join(out, "pretrained.json")
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data[key] = record
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ganlib.pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["encoder", "evaluator", "segmenter", "all"])
    ap.add_argument("--out", default=ASSETS, help="output folder (default: ganlib/assets)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-species", type=int, default=None, help="training images per species")
    args = ap.parse_args(argv)
    kw = {"out": args.out, "seed": args.seed}
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    if args.per_species is not None:
        kw["per_species"] = args.per_species
    if args.what in ("evaluator", "all"):
        train_evaluator(**kw)
    if args.what in ("encoder", "all"):
        train_encoder(**kw)
    if args.what in ("segmenter", "all"):
        train_segmenter(**{k: v for k, v in kw.items() if k != "per_species"})


if __name__ == "__main__":
    main()
