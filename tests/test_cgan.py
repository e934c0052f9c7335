"""CGAN / GAN-INT-CLS (`ganlib.models.cgan`), shared layers and the run callbacks."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import callbacks as cb
from ganlib import losses
from ganlib.layers import ReplicateConcat
from ganlib.models import cgan
from ganlib.training import enable_determinism
from network_refs import layer_sequence, numpy_conv_same, randomize_weights

TINY = cgan.Config.fast().replace(image_size=16, z_dim=16, proj_dim=32, ngf=16, ndf=16, batch_size=32,
                                  lr=1e-3, lr_decay_every=0, eval_samples=100, ema_decay=0.0)


def test_replicate_concat_values_and_serialisation():
    h = np.arange(2 * 2 * 3 * 4, dtype="float32").reshape(2, 2, 3, 4)
    c = np.array([[10.0, 20.0], [30.0, 40.0]], "float32")
    out = ops.convert_to_numpy(ReplicateConcat()([h, c]))
    assert out.shape == (2, 2, 3, 6)
    np.testing.assert_array_equal(out[..., :4], h)
    for b in range(2):
        np.testing.assert_array_equal(out[b, :, :, 4:], np.broadcast_to(c[b], (2, 3, 2)))
    layer = ReplicateConcat.from_config(ReplicateConcat().get_config())
    np.testing.assert_array_equal(ops.convert_to_numpy(layer([h, c])), out)


def test_loss_functions_match_their_equations():
    s_r, s_w, s_f = np.array([2.0, -1.0]), np.array([0.5, 3.0]), np.array([-2.0, 100.0])
    bce = lambda x, z: np.mean(np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x))))
    expected = bce(s_r, 1) + 0.5 * (bce(s_w, 0) + bce(s_f, 0))
    np.testing.assert_allclose(float(losses.matching_aware_d_loss(s_r, s_w, s_f)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(losses.generator_loss(s_f)), bce(s_f, 1), rtol=1e-6)
    mu, logvar = np.array([[0.5, -1.0]]), np.array([[0.2, -0.3]])
    kl = -0.5 * np.mean(1 + logvar - mu**2 - np.exp(logvar))
    np.testing.assert_allclose(float(losses.kl_divergence(mu, logvar)), kl, rtol=1e-6)


def test_interpolation_is_eq5():
    t1, t2 = np.ones((1, 3), "float32"), np.zeros((1, 3), "float32")
    np.testing.assert_allclose(cgan.interpolate_embeddings(t1, t2, 0.25), 0.25 * t1)


def test_presets_hold_the_papers_settings():
    paper = cgan.Config.paper()
    assert (paper.image_size, paper.z_dim, paper.proj_dim, paper.ngf, paper.ndf, paper.batch_size) == \
        (64, 100, 128, 128, 64, 64)
    assert (paper.lr, paper.beta1, paper.int_beta, paper.captions_per_embedding) == (2e-4, 0.5, 0.5, 4)
    assert (paper.bottleneck_blocks, paper.d_text_bn, paper.init, paper.conv_biases) == (True, True, "reference", False)
    assert (paper.bn_momentum, paper.bn_epsilon, paper.wrong) == (0.9, 1e-5, "image")
    assert (paper.int_weight, paper.int_pairs, paper.int_reduction) == (1.0, "halves", "pooled")
    fast = cgan.Config.fast()
    assert (fast.bottleneck_blocks, fast.d_text_bn, fast.init, fast.conv_biases, fast.wrong) == \
        (False, False, "keras", True, "caption")
    assert (fast.int_pairs, fast.int_reduction, fast.epochs) == ("roll", "separate", 0)
    model = cgan.GANINTCLS(paper)
    assert model.generator.output_shape == (None, 64, 64, 3)
    assert model.discriminator.output_shape == (None,)
    with pytest.raises(ValueError, match="image_size"):
        cgan.GANINTCLS(TINY.replace(image_size=48))


def reed_counts(ngf, ndf, nz, nt, txt, conv_bias=False):
    """Trainable parameters of reedscot/icml2016's main_cls_int.lua networks, by hand from
    its layer shapes (conv k x k: in*out*k*k (+ out bias); BN: 2 per channel; Linear: in*out + out).
    The Lua code zeroes every conv bias before each pass, so `conv_bias=False` is its function."""
    def conv(i, o, k):
        return i * o * k * k + (o if conv_bias else 0)

    def bottleneck(c):
        return conv(c, c // 4, 1) + conv(c // 4, c // 4, 3) + conv(c // 4, c, 3) + 2 * (c // 4 + c // 4 + c)

    g = txt * nt + nt + conv(nz + nt, 8 * ngf, 4) + 2 * 8 * ngf + bottleneck(8 * ngf) \
        + conv(8 * ngf, 4 * ngf, 4) + 2 * 4 * ngf + bottleneck(4 * ngf) \
        + conv(4 * ngf, 2 * ngf, 4) + 2 * 2 * ngf + conv(2 * ngf, ngf, 4) + 2 * ngf + conv(ngf, 3, 4)
    d = conv(3, ndf, 4) + conv(ndf, 2 * ndf, 4) + 2 * 2 * ndf + conv(2 * ndf, 4 * ndf, 4) + 2 * 4 * ndf \
        + conv(4 * ndf, 8 * ndf, 4) + 2 * 8 * ndf + bottleneck(8 * ndf) \
        + txt * nt + nt + 2 * nt + conv(8 * ndf + nt, 8 * ndf, 1) + 2 * 8 * ndf + conv(8 * ndf, 1, 4)
    return {"G": g, "D": d}


def test_paper_networks_have_the_reference_parameter_counts():
    """main_cls_int.lua at CUB width (ngf 128, ndf 64, z 100, text 1024 -> 128): G 18,905,472,
    D 4,030,080 (18,909,699 and 4,032,321 counting the conv biases it zeroes). The paper preset
    with 1024-d text has the same structure: checked at 1/8 width (fast on every backend)."""
    assert reed_counts(128, 64, 100, 128, 1024) == {"G": 18_905_472, "D": 4_030_080}
    assert reed_counts(128, 64, 100, 128, 1024, conv_bias=True) == {"G": 18_909_699, "D": 4_032_321}
    small = cgan.Config.paper().replace(ngf=16, ndf=8, embed_dim=1024)
    assert cgan.param_counts(small) == reed_counts(16, 8, 100, 128, 1024)
    # conv_biases puts biases on D's first conv, G's output and D's logit only.
    with_biases = cgan.param_counts(small.replace(conv_biases=True))
    assert with_biases == {"G": reed_counts(16, 8, 100, 128, 1024)["G"] + 3,
                           "D": reed_counts(16, 8, 100, 128, 1024)["D"] + 8 + 1}



def test_paper_networks_place_blocks_and_activations_as_the_reference():
    """main_cls_int.lua: G's 4x4 and 8x8 layers have BN but no ReLU before a bottleneck block
    (ReLU after the sum); D's 4 ndf and 8 ndf convs have BN but no LeakyReLU before its block;
    D's text path is FC -> BN -> LeakyReLU."""
    cfg = cgan.Config.paper().replace(ngf=8, ndf=8)
    assert layer_sequence(cgan.build_generator(cfg, 256)) == (
        "InputLayer Dense InputLayer LR Concatenate Dense Reshape BN "
        "Conv2D16 BN ReLU Conv2D16 BN ReLU Conv2D64 BN Add ReLU UpConv32 BN "
        "Conv2D8 BN ReLU Conv2D8 BN ReLU Conv2D32 BN Add ReLU UpConv16 BN ReLU UpConv8 BN ReLU UpConv3")
    assert layer_sequence(cgan.build_discriminator(cfg, 256)) == (
        "InputLayer Conv2D8 LR Conv2D16 BN LR Conv2D32 BN Conv2D64 BN "
        "Conv2D16 BN LR Conv2D16 BN LR Conv2D64 InputLayer BN Dense Add BN LR LR ReplicateConcat Conv2D64 BN LR "
        "Conv2D1 Reshape")

def test_bottleneck_residual_block_computes_x_plus_f_of_x():
    """h + BN(conv3(a(BN(conv3(a(BN(conv1(h)))))))), then a (main_cls_int.lua's block), in inference mode."""
    rng = np.random.default_rng(0)
    cfg = cgan.Config.paper()
    inputs = keras.Input((4, 4, 8))
    block = keras.Model(inputs, cgan.residual_block(inputs, cfg, lambda: keras.layers.LeakyReLU(0.2)))
    randomize_weights(block, rng)
    convs = [layer for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in block.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [c.kernel.shape for c in convs] == [(1, 1, 8, 2), (3, 3, 2, 2), (3, 3, 2, 8)]
    assert all(c.bias is None for c in convs) and all(n.epsilon == 1e-5 for n in norms)

    def bn(x, layer):
        gamma, beta, mean, var = (np.asarray(w) for w in layer.weights)
        return gamma * (x - mean) / np.sqrt(var + layer.epsilon) + beta

    leaky = lambda v: np.where(v > 0, v, 0.2 * v)  # noqa: E731
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    r = leaky(bn(numpy_conv_same(x, np.asarray(convs[0].kernel)), norms[0]))
    r = leaky(bn(numpy_conv_same(r, np.asarray(convs[1].kernel)), norms[1]))
    r = bn(numpy_conv_same(r, np.asarray(convs[2].kernel)), norms[2])
    np.testing.assert_allclose(ops.convert_to_numpy(block(x, training=False)), leaky(x + r), rtol=1e-4, atol=1e-4)


def test_reference_initialisers():
    """main_cls_int.lua's weights_init: convs N(0, 0.02), BN gamma N(1, 0.02), beta 0; Linear
    layers keep torch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias."""
    cfg = cgan.Config.paper().replace(ngf=16, ndf=16)
    g, d = cgan.build_generator(cfg, cfg.embed_dim), cgan.build_discriminator(cfg, cfg.embed_dim)
    kernels = np.concatenate([np.ravel(w) for w in g.weights + d.weights if w.path.endswith("kernel")
                              and "compress" not in w.path])
    assert abs(kernels.mean()) < 1e-3 and abs(kernels.std() - 0.02) < 1e-3
    gammas = np.concatenate([np.ravel(w) for w in g.weights + d.weights if w.path.endswith("gamma")])
    assert abs(gammas.mean() - 1) < 5e-3 and abs(gammas.std() - 0.02) < 5e-3
    assert all(not np.any(np.asarray(w)) for w in g.weights + d.weights if w.path.endswith("beta"))
    bound = 1 / np.sqrt(cfg.embed_dim)
    for net, name in ((g, "g_compress"), (d, "d_compress")):
        kernel, bias = (np.asarray(w) for w in net.get_layer(name).weights)
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        assert abs(kernel.std() - bound / np.sqrt(3)) < 0.05 * bound
    # fast() keeps Keras' defaults (glorot kernels, gamma 1).
    fast = cgan.build_generator(cgan.Config.fast(), 256)
    assert all(np.all(np.asarray(w) == 1) for w in fast.weights if w.path.endswith("gamma"))


def test_epochs_become_steps_as_the_reference_counts_them():
    """An epoch is ceil(N / batch) steps (`for i = 1, N, batchSize`): CUB's 8855 -> 139."""
    paper = cgan.Config.paper()
    assert (paper.epochs, paper.lr_decay_epochs, paper.steps_per_epoch(8855)) == (600, 100, 139)
    assert (paper.steps, paper.lr_decay_every) == (600 * 139, 100 * 139)
    cfg = paper.for_dataset(1000)
    assert (cfg.steps, cfg.lr_decay_every, cfg.steps_for(1000)) == (600 * 16, 100 * 16, 600 * 16)
    fast = cgan.Config.fast()
    assert fast.for_dataset(1000) == fast and fast.steps_for(1000) == fast.steps == 3600
    with pytest.raises(ValueError, match="num_train_images"):
        paper.steps_for(0)
    for field in ("init", "int_pairs", "int_reduction", "wrong"):
        with pytest.raises(ValueError, match=field):
            cgan.Config(**{field: "nonsense"})


def test_several_captions_give_their_mean_embedding():
    """Tokens (B, k, words) -> sqrt(d) * normalize(mean of the k caption embeddings)."""
    model = cgan.GANINTCLS(TINY)
    captions = ["this bird has a red crown and blue wings", "a bird with a yellow belly and a grey tail",
                "the bird has a black beak", "a small bird with white wings"]
    single = model.encode_text(captions)
    mean = single.reshape(2, 2, -1).mean(axis=1)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True) * np.sqrt(TINY.embed_dim)
    tokens = model.tokenizer.encode_checked(captions).reshape(2, 2, -1)
    np.testing.assert_allclose(ops.convert_to_numpy(model.embed(tokens)), expected, rtol=1e-5, atol=1e-5)


def _bce_np(logits, target):
    logits = np.asarray(logits, np.float64)
    return float(np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))))


@pytest.mark.parametrize("pairs,reduction", [("halves", "pooled"), ("roll", "separate")])
def test_int_term_pairs_and_weighs_as_configured(pairs, reduction):
    """GAN-INT (Reed et al., "Learning with manifold interpolation"). The reference
    (`main_cls_int.lua`) interpolates the first half of the batch with the second (B/2
    pairs) and pools all fakes in one weighted BCE: L_G = (B mean_f + w n mean_int) / (B + n);
    "roll"/"separate" (the fast preset): B pairs (t_i, t_{i-1}), L_G = mean_f + w mean_int."""
    cfg = TINY.replace(int_pairs=pairs, int_reduction=reduction, int_weight=0.7, batch_size=8)
    model = cgan.GANINTCLS(cfg)
    rng = np.random.default_rng(0)
    e = rng.normal(size=(8, cfg.embed_dim)).astype("float32")
    t1, t2 = (ops.convert_to_numpy(t) for t in model.interpolation_pairs(ops.convert_to_tensor(e)))
    if pairs == "halves":
        np.testing.assert_array_equal(t1, e[:4]), np.testing.assert_array_equal(t2, e[4:])
    else:
        np.testing.assert_array_equal(t1, e), np.testing.assert_array_equal(t2, np.roll(e, 1, axis=0))
    n_int = 4 if pairs == "halves" else 8
    assert model.noise_shapes(8, training=True)["z_int"] == (n_int, cfg.z_dim)
    tokens = model.tokenizer.encode_checked(["a red bird with blue wings", "a small yellow bird"] * 4)
    batch = {"image": rng.uniform(-1, 1, (8, 16, 16, 3)).astype("float32"), "tokens": ops.convert_to_tensor(tokens)}
    fakes = model.generator_outputs(batch, model.sample_noise(batch), training=False)
    assert tuple(ops.shape(fakes["fake_int"])) == (n_int, 16, 16, 3)
    loss, _ = model.generator_loss(batch, fakes, training=False)
    D = model.discriminator
    f = _bce_np(ops.convert_to_numpy(D([fakes["fake"], fakes["e"]], training=False)), 1.0)
    f_int = _bce_np(ops.convert_to_numpy(D([fakes["fake_int"], fakes["e_int"]], training=False)), 1.0)
    expected = (8 * f + 0.7 * n_int * f_int) / (8 + n_int) if reduction == "pooled" else f + 0.7 * f_int
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), expected, rtol=1e-5)


def test_discriminator_sees_the_text():
    """Changing only the caption changes D's score: the condition reaches the logit."""
    model = cgan.GANINTCLS(TINY)
    image = np.zeros((2, 16, 16, 3), "float32")
    e = model.encode_text(["this bird has a red crown and blue wings", "a bird with a yellow belly and a grey tail"])
    s = ops.convert_to_numpy(model.discriminator([image, e]))
    assert abs(s[0] - s[1]) > 1e-4


def test_generate_rejects_bad_captions_and_class_ids():
    model = cgan.GANINTCLS(TINY)
    images = model.generate(["a bird with a red crown and blue wings"] * 2, seed=1)
    assert images.shape == (2, 16, 16, 3) and images.min() >= -1 and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate(["a bird with a red crown and blue wings"] * 2, seed=1))
    with pytest.raises(ValueError, match="empty"):
        model.generate(["   "])
    with pytest.raises(ValueError, match="unknown"):
        model.generate(["zebra quantum xylophone"])
    with pytest.raises(ValueError, match="embeddings"):
        model.generate_from_embeddings(np.zeros((2, 5)))
    class_model = cgan.CGAN(TINY)
    assert class_model.generate([0, 199]).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match=r"\[200\] out of range"):
        class_model.generate([3, 200])


def test_keras_round_trip_gives_the_same_images(tmp_path):
    model = cgan.GANINTCLS(TINY)
    model.compile()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    caption = ["this bird has black wings and a white belly"]
    np.testing.assert_allclose(loaded.generate(caption, seed=4), model.generate(caption, seed=4), atol=1e-6)
    assert loaded.config == model.config


def test_gan_int_cls_learns_on_synthbirds(birds, tmp_path):
    """A short run lowers the FID analogue and raises the IS analogue (caption
    consistency needs longer runs: `ganlib train cgan --preset fast`, see README).
    Judged on the mean of the evaluations at steps 300, 400 and 500: a GAN oscillates, and one
    evaluation of 100 images moves with float round-off (at step 250 it read 466 on PyTorch
    and 953 with the fused BatchNorm kernel, the two runs equal to 5 digits after 3 steps)."""
    train, test = birds
    enable_determinism(0)
    model = cgan.GANINTCLS(TINY)
    model.compile()
    pipe = train.pipeline(batch_size=TINY.batch_size, image_size=16, tokenizer=model.tokenizer)
    evaluate = cb.Evaluate(test, every=100, n=100, out_dir=tmp_path, verbose=False)
    model.fit(pipe, steps_per_epoch=500, epochs=1, verbose=0, callbacks=[evaluate])
    first, last = evaluate.records[0], evaluate.records[-3:]
    assert first["step"] == 0 and [r["step"] for r in last] == [300, 400, 500]
    fid, score = (np.mean([r[k] for r in last]) for k in ("fid", "inception_score"))
    assert fid < 0.7 * first["fid"], (first, last)
    assert score > 2 * first["inception_score"], (first, last)
    assert json.loads((tmp_path / "metrics.json").read_text()) == evaluate.records


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    from test_training import build_linear, linear_setup, one_batch

    weights, batch = linear_setup(0)
    model = build_linear(weights, lr_d=1e30, lr_g=1e30)  # diverges within a few steps
    guard = cb.StopOnNonFinite(tmp_path)
    with pytest.raises(cb.NonFiniteLossError, match="not finite") as error:
        model.fit(one_batch(batch), steps_per_epoch=20, epochs=1, verbose=0,
                  callbacks=[cb.Checkpoint(tmp_path, every=1, keep=3), guard])
    stopped_at = cb.global_step(model)
    assert stopped_at < 20
    latest = cb.latest_checkpoint(tmp_path)
    assert latest is not None and str(latest) in str(error.value)
    restored = keras.saving.load_model(latest)
    assert all(np.all(np.isfinite(w)) for w in restored.get_weights())
    assert cb.global_step(restored) < stopped_at
