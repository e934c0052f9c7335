"""HDGAN (`ganlib.models.hdgan`): the reference architecture and losses, and a short run that learns."""

import numpy as np
import pytest
from keras import ops

from ganlib import losses
from ganlib.models import hdgan
from ganlib.training import enable_determinism

# Side outputs 16 and 32 px, narrow: a CPU-sized HDGAN.
TINY = hdgan.Config.fast().replace(side_outputs=(16, 32), z_dim=16, ca_dim=32, gf_dim=8, df_dim=8,
                                   reduce_at=(8, 16, 32), batch_size=32, lr=1e-3, ema_decay=0.0,
                                   eval_samples=100)

# Trainable parameters of the reference networks (ypxie/HDGan, `hd_networks.py`), counted with
# PyTorch's `parameters()` on `Generator(sent_dim=1024, noise_dim=100, emb_dim=128, hid_dim=128,
# num_resblock=1)` and `Discriminator(num_chan=3, hid_dim=128, sent_dim=1024, emb_dim=128)` (the
# birds HDGAN_256 script), D split by the modules of each scale (`*_64`, `*_128`, `*_256` and
# `pre_encode`; 25,693,606 in all).
REFERENCE_COUNTS = {"G": 41_378_496, "F_ca": 262_400, "D_64": 8_510_466, "D_128": 8_582_722, "D_256": 8_600_418}


def mse_np(x, t):
    return np.mean((np.asarray(x, np.float64) - t) ** 2)


def test_presets_hold_the_reference_settings():
    paper = hdgan.Config.paper()
    assert paper.side_outputs == (64, 128, 256) and paper.branch_sizes == (64, 128, 256)
    assert (paper.embed_dim, paper.z_dim, paper.ca_dim, paper.gf_dim, paper.df_dim, paper.num_resblock) == \
        (1024, 100, 128, 128, 128, 1)
    assert (paper.lr, paper.beta1, paper.beta2, paper.kl_weight, paper.batch_size) == (2e-4, 0.5, 0.999, 4.0, 10)
    assert (paper.epochs, paper.lr_decay_epochs, paper.captions_per_embedding, paper.wrong) == (600, 100, 4, "image")
    assert paper.for_dataset(8855).lr_decay_every == 100 * 885
    fast = hdgan.Config.fast()
    assert fast.side_outputs == (16, 32, 64) and fast.embed_dim == 256
    assert hdgan.SPEC.batch(paper).captions == 4 and hdgan.SPEC.batch(paper).text == "embeddings"
    assert hdgan.SPEC.batch(paper).pyramid == (64, 128)


@pytest.mark.backend_neutral   # what Keras builds is the same on every backend (shapes, dtypes, counts)
def test_paper_networks_have_the_reference_parameter_counts():
    assert hdgan.param_counts() == REFERENCE_COUNTS


def test_losses_against_numpy():
    rng = np.random.default_rng(0)
    r, w, f = (rng.normal(size=(6,)) for _ in range(3))
    rl, wl, fl = (rng.normal(size=(6, 5, 5, 1)) for _ in range(3))
    pair = float(hdgan.pair_d_loss(*(ops.convert_to_tensor(x, "float32") for x in (r, w, f))))
    assert pair == pytest.approx(mse_np(r, 1) + (mse_np(w, 0) + mse_np(f, 0)) / 2, rel=1e-5)
    local = float(hdgan.local_d_loss(*(ops.convert_to_tensor(x, "float32") for x in (rl, wl, fl))))
    assert local == pytest.approx(mse_np(fl, 0) + (mse_np(wl, 1) + mse_np(rl, 1)) / 2, rel=1e-5)
    g = float(hdgan.g_adversarial_loss(ops.convert_to_tensor(f, "float32"), ops.convert_to_tensor(fl, "float32")))
    assert g == pytest.approx(mse_np(f, 1) + mse_np(fl, 1), rel=1e-5)
    # The reference's KL with log sigma equals kl_divergence(mu, 2 log sigma).
    mu, log_sigma = rng.normal(size=(2, 4, 3))
    reference = np.mean(-log_sigma + 0.5 * (-1 + np.exp(2 * log_sigma) + mu ** 2))
    assert float(losses.kl_divergence(mu, 2 * log_sigma)) == pytest.approx(reference, rel=1e-5)


def ranking_loss_np(v, t, margin):
    """Loop version of the reference's PairwiseRankingLoss (cosines), divided by the batch."""
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    n, total = len(v), 0.0
    for k in range(n):
        for j in range(n):
            if j != k:
                total += max(0.0, margin - v[k] @ t[k] + v[k] @ t[j])
                total += max(0.0, margin - v[k] @ t[k] + v[j] @ t[k])
    return total / n


def test_bidirectional_ranking_loss_against_numpy():
    rng = np.random.default_rng(1)
    v, t = rng.normal(size=(2, 7, 5))
    for margin in (0.2, 1.5):
        got = float(losses.bidirectional_ranking_loss(v, t, margin=margin))
        assert got == pytest.approx(ranking_loss_np(v, t, margin), rel=1e-5)
    # Matching pairs far apart from the others cost nothing.
    eye = np.eye(4, dtype="float32")
    assert float(losses.bidirectional_ranking_loss(eye, 3 * eye)) == 0.0


def test_side_outputs_and_patch_maps_follow_the_config():
    cfg = TINY.replace(side_outputs=(16, 32, 64), reduce_at=(8, 16, 32, 64))
    model = hdgan.HDGAN(cfg)
    images = model.generate_branches(["a bird with a red crown", "a small blue bird"], seed=0)
    assert [x.shape for x in images] == [(2, 16, 16, 3), (2, 32, 32, 3), (2, 64, 64, 3)]
    assert all(np.abs(x).max() <= 1 for x in images)
    maps = {d.name: tuple(d.output[1].shape[1:]) for d in model.discriminators}
    assert maps == {"D_16": (1, 1, 1), "D_32": (1, 1, 1), "D_64": (5, 5, 1)}   # 5x5 patches at the top
    top_only = hdgan.SPEC.make_config("fast", variant="top-only")
    assert top_only.branch_sizes == (64,) and hdgan.SPEC.batch(top_only).pyramid == ()
    no_local = hdgan.HDGAN(TINY.replace(local_branch=False))
    assert [len(d.outputs) for d in no_local.discriminators] == [1, 1]


def test_discriminator_loss_is_the_sum_of_pair_and_local_losses_over_scales():
    model = hdgan.HDGAN(TINY)
    rng = np.random.default_rng(2)
    batch = {"image": rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
             "wrong_image": rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")}
    e = ops.convert_to_tensor(rng.normal(size=(4, TINY.embed_dim)).astype("float32"))
    fakes = {"images": [ops.convert_to_tensor(rng.uniform(-1, 1, (4, s, s, 3)).astype("float32"))
                        for s in (16, 32)], "c": e}
    total, _ = model.discriminator_loss(batch, fakes, training=False)
    expected = 0.0
    for D, fake, s in zip(model.discriminators, fakes["images"], (16, 32)):
        real, wrong = (model.pyramid_fn(ops.convert_to_tensor(batch[k]), s) for k in ("image", "wrong_image"))
        (rp, rl), (wp, wl), (fp, fl) = (ops.convert_to_numpy(o) for o in D([real, e])), \
            (ops.convert_to_numpy(o) for o in D([wrong, e])), (ops.convert_to_numpy(o) for o in D([fake, e]))
        expected += mse_np(rp, 1) + (mse_np(wp, 0) + mse_np(fp, 0)) / 2
        expected += mse_np(fl, 0) + (mse_np(wl, 1) + mse_np(rl, 1)) / 2
    assert float(total) == pytest.approx(expected, rel=1e-4)


def test_hooks_replace_the_side_output_head_and_the_branch_losses():
    """Lesson 05 builds G with the student's side-output head and scores D with the student's
    pair and local losses: the model calls what it is given, at every side output."""
    from keras import layers
    sizes = []

    def head(h, size):       # a head with a bias and no tanh: its outputs leave [-1, 1]
        sizes.append(size)
        return layers.Conv2D(3, 1, bias_initializer="ones", name=f"student_img_{size}")(h)

    model = hdgan.HDGAN(TINY, side_output_fn=head, pair_loss_fn=lambda r, w, f: ops.mean(r) * 0 + 7.0,
                        local_loss_fn=lambda r, w, f: ops.mean(r) * 0 + 0.5)
    assert sizes == [16, 32] and model.generator.get_layer("student_img_32") is not None
    rng = np.random.default_rng(3)
    batch = {"image": rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
             "wrong_image": rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")}
    e = ops.convert_to_tensor(rng.normal(size=(2, TINY.embed_dim)).astype("float32"))
    fakes = {"images": [ops.convert_to_tensor(rng.uniform(-1, 1, (2, s, s, 3)).astype("float32"))
                        for s in (16, 32)], "c": e}
    total, _ = model.discriminator_loss(batch, fakes, training=False)
    assert float(total) == pytest.approx(2 * (7.0 + 0.5))
    noise = {"z": np.zeros((2, TINY.z_dim), "float32"), "eps": np.zeros((2, TINY.ca_dim), "float32")}
    images = model.generator([noise["z"], ops.convert_to_numpy(e), noise["eps"]])
    assert float(ops.max(images[1])) > 1.0   # no tanh: the student's head, not the library's


def test_short_training_lowers_the_fid_analogue(birds):
    """100 steps of the tiny HDGAN (side outputs 16 and 32 px) on SynthBirds lower the FID analogue
    of its 32 px images on 100 test captions, scored with the averaged generator (EMA 0.95). The raw
    generator's FID swings from one checkpoint to the next at this size (TensorFlow, AMD EPYC AVX2,
    seed 0, every 20 steps: 914 -> 691, 410, 457, 1212, 645, 194), the averaged one's does not
    (914 -> 837, 627, 356, 324, 231, 218). The VS similarity of the images with their captions needs
    longer runs: -0.03 untrained, 0.08 after 300 steps."""
    from ganlib.evaluation import evaluate_model

    train, test = birds
    enable_determinism(0)
    config = TINY.replace(ema_decay=0.95)
    model = hdgan.HDGAN(config)
    model.compile()
    before = evaluate_model(model, test, n=100)
    model.fit(hdgan.SPEC.batch(config).pipeline(train, config.batch_size, tokenizer=model.tokenizer),
              steps_per_epoch=100, epochs=1, verbose=0)
    after = evaluate_model(model, test, n=100)
    print(f"FID analogue {before['fid']:.1f} -> {after['fid']:.1f}; "
          f"VS {before['vs_similarity']:.3f} -> {after['vs_similarity']:.3f}")
    assert after["fid"] < 0.5 * before["fid"], (before, after)
