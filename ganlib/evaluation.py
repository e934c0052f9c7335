"""Evaluate a generator on a dataset: what `ganlib evaluate`, the training callback and the
leaderboard compute (DESIGN.md's `metrics.json` records).

For `n` fixed items of a dataset (the test split: unseen classes, as the papers
evaluate; the training split for a class-conditional model, which knows only those
classes), the model generates one image per item from the item's condition (a
caption, its class, or nothing) and the images are compared with the items' real
images:

* SynthBirds: FID and Inception-Score analogues with the shipped evaluation net, and
  caption consistency against chance (`ganlib.metrics`), where the model is conditioned;
  for text-conditioned models also AttnGAN's R-precision (`r_precision`, `r_precision_std`:
  each image's caption against 99 mismatched ones, mean and std over 10 folds) with the
  shipped 5-epoch SynthBirds DAMSM (`ganlib.metrics.damsm_r_precision`; not the 30-epoch one AttnGAN's fast
  preset trains against), and HDGAN's visual-semantic
  similarity (`vs_similarity`, `vs_similarity_std`: mean and std of the cosine of each image and its caption) with the
  shipped SynthBirds VS model (`ganlib.metrics.vs_similarity`), and for a model with a STREAM
  captioner (MirrorGAN) `bleu4`: corpus BLEU-4 of the captioner's greedy captions of the images
  against the captions they were generated from (`stream_bleu4`);
* street scenes (SynthStreets, Cityscapes; label-map models): pixel accuracy and mean IoU of a
  segmentation network on the generated images against their input label maps, and an FID
  analogue on its features (`evaluate_label_maps`);
* real data (CUB, Oxford-102, COCO): FID and Inception Score with Keras' InceptionV3
  (ImageNet weights, when the user has them), the real images' statistics kept in
  the run folder's `inception_statistics.npz`.
"""

import pathlib

import numpy as np

from ganlib import metrics

# FID statistics of the real test images, kept in the run folder (real data only).
REAL_STATISTICS_FILE = "inception_statistics.npz"

_SAMPLES = {}


def _resize(image, size):
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def real_sample(dataset, n, image_size, seed=0):
    """n fixed items of `dataset` (seeded): `images` (n, S, S, 3) uint8, `captions` (one per item,
    drawn), `class_ids`, and `embeddings` (that caption's precomputed embedding) where the data has them."""
    key = (id(dataset), n, image_size, seed)
    if key in _SAMPLES:
        return _SAMPLES[key]
    rng = np.random.default_rng(seed)
    n = min(n, len(dataset))
    index = np.sort(rng.choice(len(dataset), n, replace=False))
    sample = {"images": [], "captions": [], "class_ids": [], "embeddings": []}
    for i in index:
        item = dataset[int(i)]
        k = int(rng.integers(len(item["captions"])))
        sample["images"].append(np.asarray(_resize(item["image"], image_size)))
        sample["captions"].append(item["captions"][k])
        sample["class_ids"].append(int(item["class_id"]))
        if "embeddings" in item:
            sample["embeddings"].append(np.asarray(item["embeddings"][k], "float32"))
    sample = {k: (np.stack(v) if k != "captions" and len(v) else v) for k, v in sample.items()}
    _SAMPLES[key] = sample
    return sample


def generate_for(model, conditions, seed=0, batch_size=250):
    """One generated image per condition, in batches; batch k drawn from seed + k * batch_size."""
    return np.concatenate([model.generate(conditions[i:i + batch_size], seed=seed + i)
                           for i in range(0, len(conditions), batch_size)])


def evaluate_model(model, dataset, n=500, seed=0, batch_size=250, statistics_path=None):
    """FID, Inception Score and (SynthBirds, conditioned models) caption consistency of `model`
    on `n` items of `dataset`, as a dict of floats (see the module docstring).

    Raises ``ganlib.metrics.inception.InceptionWeightsUnavailable`` on real data when
    the ImageNet weights are not available offline.
    """
    if model.condition.kind == "label_map":
        return evaluate_label_maps(model, dataset, n=n, seed=seed, batch_size=batch_size)
    size = model.config.image_size
    synthetic = getattr(dataset, "name", "synthbirds") == "synthbirds"
    network = None if synthetic else metrics.default_inception()   # fails early, before any work
    sample = real_sample(dataset, n, size, seed)
    fakes = generate_for(model, model.condition.of_sample(sample), seed, batch_size)
    if not synthetic:
        stats = _inception_statistics(sample, dataset, size, seed, network, statistics_path)
        return {k: float(v) for k, v in metrics.inception_metrics(fakes, stats, network=network).items()}
    stats_key = ("synthbirds", id(dataset), n, size, seed)
    if stats_key not in _SAMPLES:
        _SAMPLES[stats_key] = metrics.real_statistics(sample["images"])
    record = metrics.evaluate_images(fakes, sample["captions"], _SAMPLES[stats_key])
    if model.condition.kind == "none":   # nothing asked for, so nothing to be consistent with
        record = {k: v for k, v in record.items() if k not in ("caption_consistency", "chance_consistency")}
    if model.condition.kind in ("text", "words"):
        record.update(text_metrics(fakes, sample["captions"], seed))
        captioner = next((h for h in getattr(model, "auxiliaries", ()) if h.name == "stream"), None)
        if captioner is not None:
            record["bleu4"] = stream_bleu4(fakes, sample["captions"], captioner, model.tokenizer)
    return {k: float(v) for k, v in record.items()}


def text_metrics(images, captions, seed=0):
    """The text-image metrics of images generated for `captions`: R-precision with the shipped
    SynthBirds DAMSM and VS similarity with the shipped VS model, each with its std."""
    record = {}
    record["r_precision"], record["r_precision_std"] = metrics.damsm_r_precision(images, captions, seed=seed)
    record["vs_similarity"], record["vs_similarity_std"] = metrics.vs_similarity(images, captions)
    return record


def stream_bleu4(images, captions, captioner, tokenizer, batch_size=128):
    """BLEU-4 of a STREAM captioner's greedy captions of `images` ([-1, 1], resized bilinearly to its
    input as MirrorGAN's STREAM loss does) against `captions` (one reference each); both sides pass
    through `tokenizer` (`ganlib.metrics.corpus_bleu`'s cumulative BLEU-4)."""
    from keras import ops

    size = int(captioner.config.image_size)
    images = np.asarray(images, "float32")
    if images.shape[1:3] != (size, size):
        images = ops.convert_to_numpy(ops.image.resize(images, (size, size), interpolation="bilinear"))
    hypotheses = tokenizer.decode(captioner.caption(images, batch_size=batch_size))
    references = [[r] for r in tokenizer.decode(tokenizer(list(captions)))]
    return metrics.corpus_bleu(references, hypotheses)["bleu4"]


def label_map_sample(dataset, n, size, seed=0):
    """n fixed items of a street-scene dataset (seeded): `images` uint8 (n, H, W, 3) and their
    `label`, `instance` maps, all resized to `size` (H, W) (nearest neighbour for the maps)."""
    key = ("label_maps", id(dataset), n, tuple(size), seed)
    if key in _SAMPLES:
        return _SAMPLES[key]
    from ganlib.data.cityscapes import resize_frame

    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(dataset), min(n, len(dataset)), replace=False))
    sample = {"images": [], "label": [], "instance": []}
    for i in index:
        item = dataset[int(i)]
        for key, value in zip(sample, resize_frame(item["image"], item["label"], item["instance"], size)):
            sample[key].append(value)
    sample = {k: np.stack(v) for k, v in sample.items()}
    _SAMPLES[key] = sample
    return sample


def evaluate_label_maps(model, dataset, n=500, seed=0, batch_size=16):
    """pix2pixHD's protocol (its Table 1): a segmentation network run on the images generated
    from `n` test label maps, pixel accuracy and mean IoU against those label maps
    (`ganlib.metrics.segmentation`), and an FID analogue on the segmenter's features; with the
    maps' instance ids, the accuracy on the boundaries between touching objects of one class and
    the colour step G draws across them (`segmentation.boundary_scores`)."""
    from ganlib.metrics import segmentation

    size = tuple(model.config.image_size)
    sample = label_map_sample(dataset, n, size, seed)
    fakes = np.concatenate([model.generate({"label": sample["label"][i:i + batch_size],
                                            "instance": sample["instance"][i:i + batch_size]}, seed=seed + i)
                            for i in range(0, len(sample["label"]), batch_size)])
    record = {k: float(v) for k, v in segmentation.segmentation_scores(fakes, sample["label"],
                                                                        instances=sample["instance"]).items()}
    stats_key = ("segmentation_statistics", id(dataset), n, size, seed)
    if stats_key not in _SAMPLES:
        real = sample["images"].astype("float32") / 127.5 - 1.0
        _SAMPLES[stats_key] = metrics.feature_statistics(segmentation.segmentation_features(real))
    fid = metrics.frechet_distance(*_SAMPLES[stats_key],
                                   *metrics.feature_statistics(segmentation.segmentation_features(fakes)))
    return {**record, "fid": float(fid)}


def _inception_statistics(sample, dataset, size, seed, network, path):
    """InceptionV3 (mu, sigma) of the sample's real images, reused from `path` when it was made for them."""
    key = ("inception", id(dataset), len(sample["images"]), size, seed)
    if key in _SAMPLES:
        return _SAMPLES[key]
    meta = {"network": "keras.applications.InceptionV3", "weights": str(getattr(network, "weights", None)),
            "dataset": str(dataset.name), "split": str(getattr(dataset, "split", "")),
            "count": int(len(sample["images"])), "image_size": int(size), "seed": int(seed)}
    stats = _stored_statistics(path, meta)
    if stats is None:
        stats = metrics.inception_statistics(sample["images"], network=network)
        if path is not None:
            metrics.save_statistics(path, *stats, **meta)
    _SAMPLES[key] = stats
    return stats


def _stored_statistics(path, meta):
    """(mu, sigma) from the .npz at `path` if it exists and was made for `meta`, else None."""
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
