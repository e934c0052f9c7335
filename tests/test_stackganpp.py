"""StackGAN++ (`ganlib.models.stackganpp`): the reference architecture and losses, learning, saving."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import callbacks as cb
from ganlib import analysis
from ganlib.models import stackganpp as sgpp
from ganlib.training import enable_determinism

# Two branches, 16 and 32 px, narrow: a CPU-sized tree.
TINY = sgpp.Config.fast().replace(image_size=32, branches=2, z_dim=16, ca_dim=32, ngf=16, ndf=16,
                                  num_residual=1, batch_size=32, lr=1e-3, ema_decay=0.0, eval_samples=100)


@pytest.fixture(scope="module")
def birds(tiny_birds_root, birds):   # conftest's birds, with the root for `ganlib train --root`
    return (tiny_birds_root, *birds)


@pytest.fixture(scope="module")
def tree3():
    """A three-branch tree (16, 32, 64 px), narrow."""
    return sgpp.StackGANpp(TINY.replace(image_size=64, branches=3, ngf=8, ndf=8))


def bce_np(x, z):
    x = np.asarray(x, np.float64)
    return np.mean(z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x))


def colour_stats_np(x):
    x = np.asarray(x, np.float64).reshape(len(x), -1, 3)
    mu = x.mean(1)
    c = x - mu[:, None]
    return mu, np.einsum("bni,bnj->bij", c, c) / x.shape[1]


def test_presets_hold_the_reference_settings():
    paper = sgpp.Config.paper()
    assert paper.branch_sizes == (64, 128, 256) and paper.image_size == 256
    assert (paper.ngf, paper.ndf, paper.z_dim, paper.ca_dim, paper.num_residual, paper.batch_size) == \
        (64, 64, 100, 128, 2, 24)
    assert (paper.lr, paper.beta1, paper.beta2, paper.kl_weight, paper.uncond_weight, paper.color_weight) == \
        (2e-4, 0.5, 0.999, 2.0, 1.0, 0.0)
    assert (paper.color_mean, paper.color_cov, paper.ema_decay, paper.conditioning) == (1.0, 5.0, 0.999, "text")
    unconditional = sgpp.Config.paper(unconditional=True)
    assert (unconditional.conditioning, unconditional.color_weight) == ("none", 50.0)
    fast = sgpp.Config.fast()
    assert fast.branch_sizes == (32, 64) and fast.embed_dim == 256
    assert sgpp.Config.fast(unconditional=True).color_weight == 50.0


def reference_counts(ngf, ndf, z, ef, text_dim, res=2):
    """Trainable parameters of the reference's G_NET (3 branches, CA included) and D_NET64/128/256,
    counted layer by layer from its model.py (convolutions without bias except the logits;
    BatchNorm: 2 per channel; GLU halves the channels)."""
    def up(i, o):                      # upBlock: conv3x3 i -> 2o, BN(2o), GLU
        return i * 2 * o * 9 + 4 * o

    def next_stage(g):                 # NEXT_STAGE_G(g): jointConv (g + ef -> g), R ResBlocks, upBlock
        joint = (g + ef) * 2 * g * 9 + 4 * g
        resblock = g * 2 * g * 9 + 4 * g + g * g * 9 + 2 * g
        return joint + res * resblock + up(g, g // 2)

    g16 = 16 * ngf
    f0 = (z + ef) * g16 * 16 * 2 + 2 * g16 * 16 * 2 + up(g16, g16 // 2) + up(g16 // 2, g16 // 4) \
        + up(g16 // 4, g16 // 8) + up(g16 // 8, ngf)
    images = 9 * 3 * (ngf + ngf // 2 + ngf // 4)
    g = text_dim * 4 * ef + 4 * ef + f0 + next_stage(ngf) + next_stage(ngf // 2) + images
    d = ndf
    encode = 3 * d * 16 + d * 2 * d * 16 + 4 * d + 2 * d * 4 * d * 16 + 8 * d + 4 * d * 8 * d * 16 + 16 * d
    heads = 2 * (8 * d * 16 + 1) + (8 * d + ef) * 8 * d * 9 + 16 * d
    d64 = encode + heads
    d128 = d64 + 8 * d * 16 * d * 16 + 32 * d + 16 * d * 8 * d * 9 + 16 * d
    d256 = d64 + 8 * d * 16 * d * 16 + 32 * d + 16 * d * 32 * d * 16 + 64 * d \
        + 32 * d * 16 * d * 9 + 32 * d + 16 * d * 8 * d * 9 + 16 * d
    return {"G": g, "D_64": d64, "D_128": d128, "D_256": d256}


def test_networks_have_the_reference_parameter_counts():
    """The paper preset's counts, by hand from the reference's model.py (ngf = ndf = 64, CA 128,
    z 100, its 1024-d char-CNN-RNN text): G 21,239,696 (20,714,896 without CA), D_NET64
    5,723,906, D_NET128 18,834,178, D_NET256 71,269,122. Ours differ only in CA's input
    (256-d): checked by building the same structure at 1/8 width (fast on every backend)."""
    paper = reference_counts(64, 64, 100, 128, 1024)
    assert paper == {"G": 21_239_696, "D_64": 5_723_906, "D_128": 18_834_178, "D_256": 71_269_122}
    small = sgpp.Config.paper().replace(ngf=8, ndf=8, z_dim=20, ca_dim=16)
    assert sgpp.param_counts(small) == {**reference_counts(8, 8, 20, 16, small.embed_dim),
                                        "F_ca": small.embed_dim * 4 * 16 + 4 * 16}


def test_tree_branch_sizes_follow_the_config(tree3):
    cfg = tree3.config
    assert cfg.branch_sizes == (16, 32, 64)
    assert [tuple(o.shape) for o in tree3.generator.outputs] == \
        [(None, 16, 16, 3), (None, 32, 32, 3), (None, 64, 64, 3), (None, cfg.ca_dim), (None, cfg.ca_dim)]
    assert [d.inputs[0].shape[1] for d in tree3.discriminators] == [16, 32, 64]
    model = sgpp.StackGANpp(TINY)
    images = model.generate_branches(["a red bird with blue wings", "a small yellow bird"], seed=2)
    assert [im.shape for im in images] == [(2, 16, 16, 3), (2, 32, 32, 3)]
    assert all(im.min() >= -1 and im.max() <= 1 for im in images)
    np.testing.assert_allclose(model.generate(["a red bird with blue wings"], seed=2), images[-1][:1], atol=1e-5)
    with pytest.raises(ValueError, match="image_size=48"):
        sgpp.StackGANpp(TINY.replace(image_size=48))
    with pytest.raises(ValueError, match="conditioning"):
        sgpp.StackGANpp(TINY.replace(conditioning="class"))


def test_joint_d_loss_against_hand_computed_values():
    zero = np.zeros(4, "float32")
    ln2 = np.log(2.0)
    # Every logit 0: each of the six bce terms is ln 2.
    np.testing.assert_allclose(float(sgpp.joint_d_loss(*[zero] * 6, uncond_weight=1.0)), 6 * ln2, rtol=1e-6)
    np.testing.assert_allclose(float(sgpp.joint_d_loss(*[zero] * 6, uncond_weight=2.0)), 9 * ln2, rtol=1e-6)
    # uncond_weight 0: the reference falls back to GAN-CLS, real + (wrong + fake) / 2.
    np.testing.assert_allclose(float(sgpp.joint_d_loss(*[zero] * 6, uncond_weight=0.0)), 2 * ln2, rtol=1e-6)
    # Hand-made logits; targets: real 1, wrong 0 (cond) / 1 (uncond: a real image), fake 0.
    rc, ru, wc, wu, fc, fu = (np.array(v, "float32") for v in
                              ([2.0, -1.0], [0.5, 1.5], [1.0, -3.0], [-0.5, 2.0], [-2.0, 0.3], [0.1, -4.0]))
    expected = (bce_np(rc, 1) + bce_np(wc, 0) + bce_np(fc, 0)
                + 0.5 * (bce_np(ru, 1) + bce_np(wu, 1) + bce_np(fu, 0)))
    np.testing.assert_allclose(float(sgpp.joint_d_loss(rc, ru, wc, wu, fc, fu, 0.5)), expected, rtol=1e-5)
    # softplus(-2) + softplus(1) with rc=[2,-1]: a number checked by hand, 0.1269 + 1.3133.
    np.testing.assert_allclose(bce_np(rc, 1), (0.126928 + 1.313262) / 2, rtol=1e-5)
    np.testing.assert_allclose(float(sgpp.joint_g_loss(fc, fu, 0.5)), bce_np(fc, 1) + 0.5 * bce_np(fu, 1),
                               rtol=1e-5)


def test_glu_halves_the_channels():
    from ganlib.layers import GLU

    x = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(GLU()(x)), x[..., :4] / (1 + np.exp(-x[..., 4:])), atol=1e-6)
    assert GLU().compute_output_shape((None, 3, 3, 8)) == (None, 3, 3, 4)


def test_downsample_is_the_area_average():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    small = ops.convert_to_numpy(sgpp.downsample(x, 2))
    np.testing.assert_allclose(small, x.reshape(2, 2, 4, 2, 4, 3).mean((2, 4)), atol=1e-6)
    model = sgpp.StackGANpp(TINY)
    pyramid = model.real_images({"image": x.repeat(4, 1).repeat(4, 2)})
    assert [tuple(p.shape) for p in pyramid] == [(2, 16, 16, 3), (2, 32, 32, 3)]
    given = np.zeros((2, 16, 16, 3), "float32")   # a pipeline pyramid level is used as is
    assert np.all(ops.convert_to_numpy(model.real_images({"image": np.ones((2, 32, 32, 3), "float32"),
                                                          "image_16": given})[0]) == 0)


def _batch(model, n=8, seed=0):
    rng = np.random.default_rng(seed)
    tokens = model.tokenizer.encode_checked(["this bird has a red crown and blue wings"] * n)
    wrong = model.tokenizer.encode_checked(["a small yellow bird with black wings"] * n)
    return {"image": rng.uniform(-1, 1, (n, model.config.image_size, model.config.image_size, 3)).astype("float32"),
            "tokens": ops.convert_to_tensor(tokens), "wrong_tokens": ops.convert_to_tensor(wrong)}


def test_generator_loss_adds_the_colour_term_with_its_weight_and_the_kl(tree3):
    model = tree3
    batch = _batch(model)
    fakes = model.generator_outputs(batch, model.sample_noise(batch), training=False)
    s = [ops.convert_to_numpy(fakes["images"][i]) for i in range(3)]
    colour = 0.0
    for hi, lo in ((s[1], s[0]), (s[2], s[1])):
        (mu_h, cov_h), (mu_l, cov_l) = colour_stats_np(hi), colour_stats_np(lo)
        colour += 1.0 * np.mean((mu_h - mu_l) ** 2) + 5.0 * np.mean((cov_h - cov_l) ** 2)
    mu, logvar = (ops.convert_to_numpy(fakes[k]).astype(np.float64) for k in ("mu", "logvar"))
    kl = -0.5 * np.mean(1 + logvar - mu**2 - np.exp(logvar))

    original = model.config

    def g_loss(**changes):
        model.config = original.replace(**changes)
        try:
            loss, logs = model.generator_loss(batch, fakes, training=False)
        finally:
            model.config = original
        return float(ops.convert_to_numpy(loss)), logs

    base, logs = g_loss(color_weight=0.0, kl_weight=0.0)
    np.testing.assert_allclose(float(ops.convert_to_numpy(logs["color"])), colour, rtol=1e-4)
    np.testing.assert_allclose(float(ops.convert_to_numpy(logs["kl"])), kl, rtol=1e-4, atol=1e-7)
    with_colour, _ = g_loss(color_weight=50.0, kl_weight=0.0)
    np.testing.assert_allclose(with_colour - base, 50.0 * colour, rtol=1e-3, atol=1e-5)
    with_kl, _ = g_loss(color_weight=0.0, kl_weight=2.0)
    np.testing.assert_allclose(with_kl - base, 2.0 * kl, rtol=1e-3, atol=1e-5)
    # The branch terms: sum over D_i of bce(cond, 1) + uncond_weight * bce(uncond, 1).
    expected = 0.0
    for i, D in enumerate(model.discriminators):
        fc, fu = (ops.convert_to_numpy(v) for v in D([s[i], ops.convert_to_numpy(fakes["mu"])], training=False))
        expected += bce_np(fc, 1) + bce_np(fu, 1)
    np.testing.assert_allclose(base, expected, rtol=1e-4)


def test_discriminator_loss_matches_the_reference_combination():
    model = sgpp.StackGANpp(TINY)
    batch = _batch(model)
    fakes = model.generator_outputs(batch, model.sample_noise(batch), training=False)
    loss, _ = model.discriminator_loss(batch, fakes, training=False)
    reals = model.real_images(batch)
    expected = 0.0
    for i, D in enumerate(model.discriminators):
        rc, ru = (ops.convert_to_numpy(v) for v in D([reals[i], fakes["mu"]], training=False))
        wc, wu = (ops.convert_to_numpy(v) for v in D([reals[i], fakes["c_wrong"]], training=False))
        fc, fu = (ops.convert_to_numpy(v) for v in D([fakes["images"][i], fakes["mu"]], training=False))
        np.testing.assert_allclose(wu, ru, rtol=1e-5, atol=1e-6)  # the wrong pair's image is the real one
        expected += bce_np(rc, 1) + bce_np(wc, 0) + bce_np(fc, 0) + bce_np(ru, 1) + bce_np(wu, 1) + bce_np(fu, 0)
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), expected, rtol=1e-4)


def test_wrong_images_are_scored_with_the_right_condition_at_every_scale():
    """The reference's mismatched pair (`pipeline(wrong="image")`): D_i(wrong_image_i, mu) with the
    batch's own pyramid levels, both logits; the paper preset asks the pipeline for exactly this."""
    model = sgpp.StackGANpp(TINY)
    batch = _batch(model)
    rng = np.random.default_rng(5)
    batch["wrong_image"] = rng.uniform(-1, 1, batch["image"].shape).astype("float32")
    batch["wrong_image_16"] = rng.uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    fakes = model.generator_outputs(batch, model.sample_noise(batch), training=False)
    assert "c_wrong" not in fakes    # no mismatched caption is encoded
    loss, _ = model.discriminator_loss(batch, fakes, training=False)
    reals, wrongs = model.real_images(batch), [batch["wrong_image_16"], batch["wrong_image"]]
    expected, mu = 0.0, ops.convert_to_numpy(fakes["mu"])
    for D, x, w, s in zip(model.discriminators, reals, wrongs, fakes["images"]):
        rc, ru = (ops.convert_to_numpy(v) for v in D([ops.convert_to_numpy(x), mu], training=False))
        wc, wu = (ops.convert_to_numpy(v) for v in D([w, mu], training=False))
        fc, fu = (ops.convert_to_numpy(v) for v in D([ops.convert_to_numpy(s), mu], training=False))
        expected += bce_np(rc, 1) + bce_np(wc, 0) + bce_np(fc, 0) + bce_np(ru, 1) + bce_np(wu, 1) + bce_np(fu, 0)
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), expected, rtol=1e-4)
    spec = sgpp.SPEC.batch(sgpp.Config.paper())
    assert (spec.image_size, spec.pyramid, spec.wrong) == (256, (64, 128), "image")


def test_keras_round_trip_gives_the_same_images(tmp_path):
    rng = np.random.default_rng(0)
    for cfg in (TINY.replace(ema_decay=0.9), TINY.unconditional().replace(ema_decay=0.9)):
        model = sgpp.StackGANpp(cfg)
        model.compile()
        # As after training: every weight moved (EMA copy and BatchNorm statistics included).
        model.set_weights([w + rng.uniform(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])
        path = tmp_path / f"m_{cfg.conditioning}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.config == model.config
        captions = ["this bird has black wings and a white belly", "a red bird"]
        for a, b in zip(loaded.generate_branches(captions, seed=4), model.generate_branches(captions, seed=4)):
            np.testing.assert_array_equal(a, b)


def test_resume_continues_at_the_same_step(tmp_path, birds):
    """2 steps, save, 2 more == load, 2 more: same optimizer steps, same weights."""
    import tensorflow as tf

    from ganlib.text import Tokenizer

    _, train, _ = birds
    tokenizer = Tokenizer.default(max_words=TINY.max_words)
    one = next(iter(train.pipeline(batch_size=8, image_size=32, tokenizer=tokenizer, seed=1)))
    data = tf.data.Dataset.from_tensors(one).repeat()  # the same batch every step: order plays no part
    enable_determinism(0)
    straight = sgpp.StackGANpp(TINY.replace(ema_decay=0.9))
    straight.compile()
    straight.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    straight.save(tmp_path / "r.keras")
    straight.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    resumed = keras.saving.load_model(tmp_path / "r.keras")
    assert cb.global_step(resumed) == 2
    assert [int(o.iterations) for o in resumed.d_optimizers] == [2, 2]
    resumed.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    assert int(resumed.g_optimizer.iterations) == 4
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_colour_regulariser_reduces_the_branch_mismatch(birds):
    """Unconditional tree, same start: 40 steps with alpha = 50 leave the 16 px and 32 px
    images with closer colour means and covariances than 40 steps with alpha = 0."""
    _, train, _ = birds
    mismatch = {}
    for alpha in (0.0, 50.0):
        enable_determinism(0)
        model = sgpp.StackGANpp(TINY.unconditional().replace(color_weight=alpha))
        model.compile()
        model.fit(train.pipeline(batch_size=TINY.batch_size, image_size=32, tokenizer=model.tokenizer, seed=0),
                  steps_per_epoch=40, epochs=1, verbose=0)
        (m,) = analysis.color_mismatch(model.generate_branches(64, seed=0))
        mismatch[alpha] = m["mean"] + 5 * m["cov"]
    assert mismatch[50.0] < 0.5 * mismatch[0.0], mismatch


@pytest.mark.end_to_end
def test_train_command_learns_on_synthbirds(birds, tmp_path):
    """`ganlib train stackganpp` (runs.train) on a tiny tree writes a run folder, and its
    short run lowers the FID analogue of the last branch's images (caption consistency
    needs longer runs: `ganlib train stackganpp --preset fast`, see README)."""
    from ganlib import runs

    root, _, _ = birds
    tiny = {f: getattr(TINY, f) for f in ("image_size", "z_dim", "ca_dim", "ngf", "ndf", "num_residual",
                                          "batch_size", "lr", "ema_decay")}
    run = tmp_path / "run"
    enable_determinism(0)
    model = runs.train("stackganpp", preset="fast", root=root, steps=200, out=run, verbose=0,
                       config_overrides={**tiny, "eval_samples": 100, "eval_every": 200,
                                         "sample_every": 100, "checkpoint_every": 200})
    assert isinstance(model, sgpp.StackGANpp) and cb.global_step(model) == 200
    records = json.loads((run / "metrics.json").read_text())
    assert [r["step"] for r in records] == [0, 200]
    first, last = records
    assert {"fid", "caption_consistency", "chance_consistency"} <= set(last)
    assert last["fid"] < 0.7 * first["fid"], (first, last)
    assert cb.latest_checkpoint(run).name == "ckpt-0000200.keras"
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step_0000100.png", "step_0000200.png"]
