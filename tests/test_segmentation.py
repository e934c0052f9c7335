"""Segmentation scores (pix2pixHD's evaluation): known answers and the shipped network."""

import numpy as np
import pytest

from ganlib.metrics import segmentation as seg


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 19, (3, 8, 8))
    s = seg.scores_from_confusion(seg.confusion_matrix(target, target))
    assert s["pixel_accuracy"] == 1.0 and s["miou"] == 1.0


def test_hand_made_confusion():
    # 10 pixels: 6 road (train id 0), 4 car (13); 2 road pixels predicted car, 1 car predicted road,
    # and 2 void pixels (255) that are not evaluated whatever the prediction.
    target = np.array([0, 0, 0, 0, 0, 0, 13, 13, 13, 13, 255, 255])
    pred = np.array([0, 0, 0, 0, 13, 13, 13, 13, 13, 0, 5, 0])
    cm = seg.confusion_matrix(pred, target)
    assert cm.sum() == 10 and cm[0, 0] == 4 and cm[0, 13] == 2 and cm[13, 13] == 3 and cm[13, 0] == 1
    s = seg.scores_from_confusion(cm)
    assert s["pixel_accuracy"] == pytest.approx(7 / 10)
    # IoU road = 4 / (4 + 1 + 2), car = 3 / (3 + 2 + 1); other classes absent: left out
    assert s["miou"] == pytest.approx((4 / 7 + 3 / 6) / 2)
    assert np.isnan(s["iou"][5])


def test_label_ids_to_train_ids():
    assert seg.train_ids(np.array([7, 8, 11, 23, 24, 26, 0, 1, 9])).tolist() == [0, 1, 2, 10, 11, 13, 255, 255, 255]
    with pytest.raises(ValueError, match="label ids 0..33"):
        seg.train_ids(np.array([40]))


def test_scores_through_a_network():
    """segmentation_scores = the confusion-matrix scores of the network's argmax, resized to the labels."""
    class Fixed(seg.Segmenter):
        def __init__(self, ids):
            self.ids = ids

        def predict(self, images, batch_size=64, output_size=None):
            return {"train_ids": self.ids, "features": np.zeros((len(images), 4), np.float32)}

    labels = np.full((2, 4, 6), 7, np.uint8)             # road everywhere
    labels[:, :, 3:] = 26                                # car on the right half
    ids = np.zeros((2, 4, 6), np.int32)
    ids[0, :, 3:] = 13                                   # image 0 right, image 1 all road
    out = seg.segmentation_scores(np.zeros((2, 4, 6, 3), np.float32), labels, segmenter=Fixed(ids))
    assert out["pixel_accuracy"] == pytest.approx(36 / 48)
    assert out["miou"] == pytest.approx((24 / 36 + 12 / 24) / 2)


def test_boundary_scores_hand_made():
    """Two cars side by side (ids 26001 | 26002, both label 26 = car, train id 13) on road:
    the touching boundary is the column pair (1, 2) of rows 0-1; the car-road boundary does not count."""
    labels = np.full((1, 3, 4), 26, np.uint8)
    labels[0, 2] = 7                                                 # bottom row: road
    instances = np.array([[[26001, 26001, 26002, 26002]] * 2 + [[7, 7, 7, 7]]], np.int32)
    cols, rows = seg.touching_boundaries(labels, instances)
    assert cols.sum() == 2 and cols[0, 0, 1] and cols[0, 1, 1] and rows.sum() == 0
    images = np.full((1, 3, 4, 3), -1.0, np.float32)
    images[0, :2, :2] = 0.0                                          # car 1 grey
    images[0, :2, 2] = 0.6                                           # car 2: 0.6, then 0.8
    images[0, :2, 3] = 0.8
    pred = np.full((1, 3, 4), 13)
    pred[0, 0, 2] = 0                                                # one boundary pixel read as road
    out = seg.boundary_scores(images, pred, labels, instances)
    assert out["boundary_accuracy"] == pytest.approx(3 / 4)          # pixels (0,1) (1,1) (0,2) (1,2)
    # across: |0 - 0.6| on both pairs; inside the cars: 4 column pairs (0, 0, 0.2, 0.2) and
    # 4 row pairs (all 0) -> mean 0.05
    assert out["touching_step"] == pytest.approx(0.6 - 0.05)
    blank = np.zeros_like(images)
    assert seg.boundary_scores(blank, pred, labels, instances)["touching_step"] == pytest.approx(0.0)
    alone = np.where(instances == 26002, 26001, instances)           # one car: nothing touches
    assert np.isnan(seg.boundary_scores(images, pred, labels, alone)["touching_step"])
    with pytest.raises(ValueError, match="one shape"):
        seg.touching_boundaries(labels, instances[:, :2])


def test_real_scenes_show_their_touching_boundaries():
    """SynthStreets draws each car in its own colour, so real frames have a colour step where two
    parked cars touch; the same frames with each image's cars painted one colour lose most of it."""
    from ganlib.data import open_dataset

    test = open_dataset("synthstreets", split="test")
    items = [test[i] for i in range(24)]
    labels = np.stack([it["label"] for it in items])
    instances = np.stack([it["instance"] for it in items])
    images = np.stack([it["image"] for it in items]).astype(np.float32) / 127.5 - 1.0
    cols, rows = seg.touching_boundaries(labels, instances)
    assert cols.sum() + rows.sum() > 100
    pred = seg.train_ids(labels)
    real = seg.boundary_scores(images, pred, labels, instances)
    flat = images.copy()
    for n in range(len(items)):                                     # every car painted one colour
        cars = labels[n] == 26
        if cars.any():
            flat[n][cars] = images[n][cars].mean(0)
    merged = seg.boundary_scores(flat, pred, labels, instances)
    assert real["boundary_accuracy"] == 1.0 and real["touching_step"] > 0.05     # 0.103 on these 24 frames
    assert merged["touching_step"] < 0.2 * real["touching_step"]                 # 0.008


def test_label_map_metrics():
    """label_map_metrics: the scores above, and an FID analogue of 0 for features equal to the real ones."""
    feats = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)

    class Fixed(seg.Segmenter):
        def __init__(self):
            pass

        def predict(self, images, batch_size=64, output_size=None):
            return {"train_ids": np.zeros((len(images), *output_size), np.int32), "features": feats}

    labels = np.full((40, 4, 6), 7, np.uint8)
    labels[:, 0] = 23                                    # top row sky, predicted road
    out = seg.label_map_metrics(np.zeros((40, 4, 6, 3), np.float32), labels, np.zeros((40, 8, 8, 3), np.uint8),
                                segmenter=Fixed())
    assert out["pixel_accuracy"] == pytest.approx(18 / 24)
    assert out["miou"] == pytest.approx((18 / 24 + 0.0) / 2)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="one per image"):
        seg.label_map_metrics(np.zeros((2, 4, 6, 3), np.float32), labels, labels, segmenter=Fixed())


def test_shipped_segmenter_reads_real_scenes():
    """The shipped net reads real test scenes far better than blank images or an untrained net
    (its full-test-set figures, the ceiling for generated images, are in pretrained.json)."""
    from ganlib.pretrain import street_set

    test = street_set("synthstreets", None, "test", 12)
    segmenter = seg.load_segmenter()
    images = test["images"].astype(np.float32) / 127.5 - 1.0
    real = seg.segmentation_scores(images, test["labels"], segmenter=segmenter)
    blank = seg.segmentation_scores(np.zeros_like(images), test["labels"], segmenter=segmenter)
    untrained = seg.segmentation_scores(images, test["labels"], segmenter=seg.Segmenter())
    assert real["pixel_accuracy"] > 0.85 and real["miou"] > 0.5
    assert real["miou"] > 2 * max(blank["miou"], untrained["miou"])
    # A blank image still scores ~0.69 pixel accuracy (12 test frames): road below, sky above and
    # buildings between are where a street's layout puts them. mIoU is the telling score.
    assert real["pixel_accuracy"] > blank["pixel_accuracy"] + 0.2
    feats = seg.segmentation_features(images[:4], segmenter=segmenter)
    assert feats.shape == (4, 128) and np.isfinite(feats).all()
