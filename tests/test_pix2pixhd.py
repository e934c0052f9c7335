"""pix2pixHD: the reference's parameter counts, its operations against independent numpy,
the feature-matching loss, the learning-rate schedule, k-means features, and a learning test
on synthetic label maps."""

import numpy as np
import pytest
from keras import ops

from ganlib import losses
from ganlib.models import pix2pixhd as P

# NVIDIA/pix2pixHD's modules counted with PyTorch's `parameters()` (models/networks.py, label2city:
# input 35 labels + 1 boundary channel, D input + 3 image channels, E nef 16 / feat_num 3)
REFERENCE_COUNTS = {"G_global": 182_546_755, "G": 182_857_059, "D": 2_801_601, "E": 788_803}


def test_paper_parameter_counts_equal_the_reference():
    counts = P.param_counts(P.Config.paper())   # builds the networks (constant initialisers)
    assert counts["G_global"] == REFERENCE_COUNTS["G_global"]
    assert counts["G"] == REFERENCE_COUNTS["G"]
    assert [counts[f"D_{k}"] for k in (1, 2, 3)] == [REFERENCE_COUNTS["D"]] * 3
    encoder = P.build_encoder(P.Config.paper().replace(instance_feat=True))
    assert sum(int(np.prod(w.shape)) for w in encoder.trainable_weights) == REFERENCE_COUNTS["E"]


def _numpy_feature_matching(real, fake):
    num_d = len(real)
    return sum((4.0 / len(r)) / num_d * np.mean(np.abs(a - b)) for r, f in zip(real, fake) for a, b in zip(r, f))


def test_feature_matching_matches_numpy():
    rng = np.random.default_rng(0)
    shapes = [[(2, 8, 8, 4), (2, 4, 4, 8), (2, 2, 2, 16), (2, 3, 3, 16)],
              [(2, 4, 4, 4), (2, 2, 2, 8), (2, 1, 1, 16), (2, 2, 2, 16)]]
    real = [[rng.normal(size=s).astype("float32") for s in scale] for scale in shapes]
    fake = [[rng.normal(size=s).astype("float32") for s in scale] for scale in shapes]
    value = losses.feature_matching([[ops.convert_to_tensor(a) for a in s] for s in real],
                                    [[ops.convert_to_tensor(a) for a in s] for s in fake])
    np.testing.assert_allclose(float(ops.convert_to_numpy(value)), _numpy_feature_matching(real, fake), rtol=1e-5)
    # n_layers_D = 3: 4 maps per scale, the reference's 4 / (n_layers_D + 1) = 1 per layer and 1 / num_D
    one = [[np.ones((1, 2, 2, 1), "float32")] * 4] * 2
    zero = [[np.zeros((1, 2, 2, 1), "float32")] * 4] * 2
    assert float(ops.convert_to_numpy(losses.feature_matching(one, zero))) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="scales"):
        losses.feature_matching(one, zero[:1])


def test_instance_edges_match_a_numpy_loop():
    rng = np.random.default_rng(1)
    inst = rng.integers(0, 3, size=(2, 5, 6)).astype("int32")
    expected = np.zeros(inst.shape, "float32")
    for b, i, j in np.ndindex(*inst.shape):
        for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            if 0 <= i + di < 5 and 0 <= j + dj < 6 and inst[b, i + di, j + dj] != inst[b, i, j]:
                expected[b, i, j] = 1
    np.testing.assert_array_equal(ops.convert_to_numpy(P.instance_edges(inst))[..., 0], expected)


def test_downsample_is_the_reference_average_pool():
    """AvgPool2d(3, stride 2, padding 1, count_include_pad=False), by a loop over windows."""
    x = np.random.default_rng(2).normal(size=(1, 6, 8, 2)).astype("float32")
    out = ops.convert_to_numpy(P.downsample(ops.convert_to_tensor(x)))
    expected = np.zeros((1, 3, 4, 2), "float32")
    for i, j in np.ndindex(3, 4):
        rows = [r for r in range(2 * i - 1, 2 * i + 2) if 0 <= r < 6]
        cols = [c for c in range(2 * j - 1, 2 * j + 2) if 0 <= c < 8]
        expected[0, i, j] = x[0][np.ix_(rows, cols)].mean(axis=(0, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    pyramid = P.image_pyramid(ops.convert_to_tensor(x), 3)
    assert [tuple(p.shape) for p in pyramid] == [(1, 6, 8, 2), (1, 3, 4, 2), (1, 2, 2, 2)]


def test_instance_average_pool_matches_numpy():
    rng = np.random.default_rng(3)
    feat = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    inst = rng.choice([7, 26000, 26001, 33999], size=(2, 4, 5)).astype("int32")
    expected = feat.copy()
    for b in range(2):
        for i in np.unique(inst[b]):
            expected[b][inst[b] == i] = feat[b][inst[b] == i].mean(axis=0)
    out = ops.convert_to_numpy(P.instance_average_pool(ops.convert_to_tensor(feat), ops.convert_to_tensor(inst)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_linear_decay_is_the_reference_schedule():
    """niter 2, niter_decay 4 epochs of 10 steps: lr for 2 epochs, then lr - lr/4 after each epoch."""
    schedule = P.LinearDecay(2e-4, steps=60, decay_steps=40, every=10)
    values = [float(ops.convert_to_numpy(schedule(s))) for s in (0, 19, 20, 29, 30, 45, 59)]
    np.testing.assert_allclose(values, [2e-4, 2e-4, 2e-4, 2e-4, 1.5e-4, 1e-4, 0.5e-4], rtol=1e-6)


def test_kmeans_finds_separated_clusters_and_features_are_drawn_from_them():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0, 0], [5, 5, 5], [-5, 5, 0]], "float32")
    points = np.concatenate([c + 0.01 * rng.normal(size=(20, 3)) for c in centres])
    found = P.kmeans(points, 3)
    assert np.allclose(np.sort(found, axis=0), np.sort(centres, axis=0), atol=0.02)
    model = P.Pix2PixHD(_tiny().replace(instance_feat=True, nef=4, n_downsample_E=1))
    model.cluster_centres = {26: found}
    inst = np.array([[[7, 26000], [26001, 26001]]], "int32")
    feat = model.sample_features(inst, seed=0, choices={26001: 1})
    assert np.allclose(feat[0, 1, 0], found[1]) and np.allclose(feat[0, 1, 1], found[1])
    assert np.any(np.all(np.isclose(found, feat[0, 0, 1]), axis=1))
    assert np.all(feat[0, 0, 0] == 0)   # label 7 has no clusters


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="multiples of"):
        P.Config.fast().replace(image_size=(100, 256)).validate()
    with pytest.raises(ValueError, match="netG"):
        P.Config.fast().replace(netG="resnet").validate()
    with pytest.raises(ValueError, match="niter_fix_global"):
        P.Config.paper().replace(niter_fix_global=60).stage_plan()
    plan = P.Config.paper().stage_plan()
    assert [f for f, _ in plan] == ["global", "local_fixed", "local"]
    assert plan[0][1].image_size == (512, 1024) and plan[0][1].ngf == 64 and plan[0][1].num_D == 2
    assert plan[1][1].freeze_global and plan[2][1].niter == 40 and plan[2][1].niter_decay == 50


# --------------------------------------------------------------------------- learning
COLOURS = {23: (0.2, 0.5, 0.9), 11: (0.6, 0.6, 0.6), 7: (0.3, 0.3, 0.3), 26: (0.9, 0.1, 0.1)}


def street_batch(n, h, w, seed=0):
    """Synthetic label maps: sky, building, road, and two adjacent cars (two instances of one class)."""
    rng = np.random.default_rng(seed)
    label = np.zeros((n, h, w), "int32")
    inst = np.zeros((n, h, w), "int32")
    image = np.zeros((n, h, w, 3), "float32")
    for b in range(n):
        sky, road = int(rng.integers(h // 5, h // 3)), int(rng.integers(h // 2, 2 * h // 3))
        label[b, :sky], label[b, sky:road], label[b, road:] = 23, 11, 7
        inst[b] = label[b]
        x0, width = int(rng.integers(0, w // 3)), w // 4
        for k in range(2):
            rows, cols = slice(road - h // 6, road + h // 8), slice(x0 + k * width, x0 + (k + 1) * width)
            label[b, rows, cols], inst[b, rows, cols] = 26, 26000 + k
        for k, c in COLOURS.items():
            image[b][label[b] == k] = c
    return {"image": image * 2 - 1, "label": label, "instance": inst}


def colour_accuracy(images, label):
    """Fraction of pixels whose nearest class colour is their label's."""
    ids = np.array(sorted(COLOURS))
    palette = np.array([COLOURS[k] for k in ids]) * 2 - 1
    nearest = ids[np.argmin(((images[..., None, :] - palette) ** 2).sum(-1), axis=-1)]
    return float(np.mean(nearest == label))


def _tiny():
    return P.Config.fast().replace(netG="global", image_size=(32, 64), ngf=8, n_downsample_global=2,
                                   n_blocks_global=1, num_D=2, ndf=8, batch_size=4, lr=2e-3, steps=60,
                                   decay_steps=0)


def test_learns_label_to_image_on_synthetic_streets():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    cfg = _tiny()
    model = P.build(cfg)
    model.compile()
    test = street_batch(8, *cfg.image_size, seed=99)
    before = colour_accuracy(model.generate(test), test["label"])
    train = street_batch(32, *cfg.image_size, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(train).repeat().batch(cfg.batch_size)
    model.fit(ds, steps_per_epoch=cfg.steps, epochs=1, verbose=0)
    after = colour_accuracy(model.generate(test), test["label"])
    print(f"colour accuracy of generated test scenes: {before:.3f} untrained -> {after:.3f} after {cfg.steps} steps")
    assert after > 0.8 and after > before + 0.3, (before, after)


def test_stages_carry_g1_and_the_discriminators_by_scale_and_freeze_g1():
    cfg = P.Config.fast().replace(image_size=(32, 64), ngf=4, n_downsample_global=2, n_blocks_global=1,
                                  n_blocks_local=1, ndf=4, num_D=2, global_num_D=1, niter_fix_global=1)
    (_, g_cfg), (_, fixed_cfg), (_, joint_cfg) = cfg.stage_plan()
    coarse = P.build(g_cfg)
    fixed = P.build(fixed_cfg, previous=coarse)
    for name in ("G1_front", "G1_res0_a", "G1_up1"):
        np.testing.assert_array_equal(fixed.G.get_layer(name).get_weights()[0], coarse.G.get_layer(name).get_weights()[0])
    for a, b in zip(fixed.discriminators[1].get_weights(), coarse.discriminators[0].get_weights()):
        np.testing.assert_array_equal(a, b)   # the reference's scale0 (the coarse stage's only D) -> D_2
    frozen = {v.path for v in fixed.G.weights} - {v.path for v in fixed.G.trainable_weights}
    assert frozen and all(path.startswith("G1_") for path in frozen)
    joint = P.build(joint_cfg, previous=fixed)
    assert len(joint.G.trainable_weights) == len(joint.G.weights)


@pytest.mark.end_to_end
def test_train_without_a_dataset_trains_on_synthstreets(tmp_path):
    """`ganlib train pix2pixhd --preset fast` (the README's command) needs no --data: a label-map
    model's default dataset is SynthStreets (SynthBirds has no label maps). One step of a small
    global generator; config.json names the dataset and the evaluation scores the generated
    scenes with the segmenter."""
    import json

    from ganlib import models, runs

    assert models.get("pix2pixhd").default_data == "synthstreets"
    assert {models.get(name).default_data for name in models.TEXT_MODELS} == {"synthbirds"}
    small = dict(netG="global", image_size=(32, 64), ngf=4, n_downsample_global=2, n_blocks_global=1, ndf=4,
                 num_D=1, eval_samples=4)
    runs.train("pix2pixhd", out=tmp_path, steps=1, verbose=0, config_overrides=small)
    assert json.loads((tmp_path / "config.json").read_text())["data"] == "synthstreets"
    record = json.loads((tmp_path / "metrics.json").read_text())[-1]
    assert record["step"] == 1 and 0.0 <= record["pixel_accuracy"] <= 1.0 and 0.0 <= record["miou"] <= 1.0
    assert {"boundary_accuracy", "touching_step"} <= set(record)   # NaN where the 4 maps have no touching cars
