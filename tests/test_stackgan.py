"""StackGAN (`ganlib.models.stackgan`): F_ca, the losses with their KL weight, the lr
schedule, the frozen Stage-I, presets, learning on SynthBirds, `.keras` round trip, resume."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from ganlib import callbacks as cb
from ganlib import losses, runs
from ganlib import analysis
from ganlib.models import stackgan
from ganlib.training import enable_determinism
from network_refs import layer_sequence, numpy_conv_same, randomize_weights

# One network shape for every test (JAX compiles each new shape once, so it pays to share it).
TINY = stackgan.Config.fast().replace(stage1_size=16, stage2_size=32, z_dim=16, ca_dim=16, ngf=16, ndf=16,
                                      res_blocks=1, batch_size=32, lr=1e-3, eval_samples=100, ema_decay=0.0,
                                      stage1_lr_decay_every=0, stage2_lr_decay_every=0)
CAPTIONS = ["this bird has a red crown, blue wings and a white belly", "a small yellow bird with black wings"]


@pytest.fixture(scope="module")
def birds(tiny_birds_root, birds):   # conftest's birds, with the root for `ganlib train --root`
    return (tiny_birds_root, *birds)


def fixed_batch(model, size, n=32, seed=0):
    """One batch like `pipeline()`'s (images, tokens, wrong tokens), as numpy (`tensors()` converts)."""
    rng = np.random.default_rng(seed)
    tokens = model.tokenizer.encode_checked([CAPTIONS[i % 2] for i in range(n)])
    return {"image": rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
            "tokens": np.asarray(tokens, "int32"), "wrong_tokens": np.asarray(tokens[::-1], "int32")}


def tensors(values):
    return {k: ops.convert_to_tensor(v) for k, v in values.items()}


def num(x):
    return float(ops.convert_to_numpy(x))


def repeat(batch):
    return tf.data.Dataset.from_tensors(batch).repeat()


def numpy_weights(network):
    return [np.array(w) for w in network.get_weights()]


# ---------------------------------------------------------------------------- equations
def test_reparameterisation_and_kl_are_the_papers():
    mu = np.array([[0.5, -1.0, 0.0]], "float32")
    logvar = np.array([[0.2, -0.3, 0.0]], "float32")
    eps = np.array([[1.5, -0.5, 2.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(stackgan.reparameterize(mu, logvar, eps)),
                               mu + np.exp(0.5 * logvar) * eps, rtol=1e-6)
    kl = -0.5 * np.mean(1 + logvar - mu**2 - np.exp(logvar))
    np.testing.assert_allclose(float(losses.kl_divergence(mu, logvar)), kl, rtol=1e-6)
    # The reference's KL with log(sigma) = logvar / 2 (stageI/trainer.py) is the same number.
    log_sigma = logvar / 2
    np.testing.assert_allclose(kl, np.mean(-log_sigma + 0.5 * (-1 + np.exp(2 * log_sigma) + mu**2)), rtol=1e-6)


def test_generator_is_conditioned_through_f_ca_and_epsilon():
    """G_0's mu, logvar are F_ca(phi_t); eps = 0 gives c_hat = mu; eps moves the image;
    without CA the image ignores eps (there is none) and the KL is not in L_G."""
    model = stackgan.StageIGAN(TINY)
    e = model.encode_text(CAPTIONS)
    noise = model.draw_noise(2, seed=1)
    ca = next(layer for layer in model.generator.layers if isinstance(layer, stackgan.ConditioningAugmentation))
    _, mu, logvar = ca(e)
    image, g_mu, g_logvar = model.generator([noise["z"], e, noise["eps0"]])
    np.testing.assert_allclose(ops.convert_to_numpy(g_mu), ops.convert_to_numpy(mu), atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(g_logvar), ops.convert_to_numpy(logvar), atol=1e-6)
    other = model.generate_from_embeddings(e, noise={**noise, "eps0": noise["eps0"] + 1.0})
    assert np.abs(other - model.generate_from_embeddings(e, noise=noise)).max() > 1e-4
    plain = stackgan.StageIGAN(TINY.replace(conditioning_augmentation=False))
    assert set(plain.draw_noise(2)) == {"z"} and len(plain.generator.inputs) == 2


def test_generator_loss_adds_kl_times_its_weight():
    model = stackgan.StageIGAN(TINY.replace(kl_weight=2.0))
    batch = tensors(fixed_batch(model, 16))
    noise = model.draw_noise(32, seed=2)
    noise["eps0"] *= 0.5
    noise = tensors(noise)
    fakes = model.generator_outputs(batch, noise, training=False)
    loss, logs = model.generator_loss(batch, fakes, training=False)
    s_f = model.discriminator([fakes["fake"], fakes["e"]], training=False)
    kl = num(losses.kl_divergence(fakes["mu"], fakes["logvar"]))
    assert kl > 0.01
    np.testing.assert_allclose(num(loss), num(losses.generator_loss(s_f)) + 2.0 * kl, rtol=1e-5)
    np.testing.assert_allclose(num(logs["kl"]), kl, rtol=1e-6)
    # Without CA there is no KL term (the paper's ablation).
    model.config = model.config.replace(conditioning_augmentation=False)
    loss, _ = model.generator_loss(batch, fakes, training=False)
    np.testing.assert_allclose(num(loss), num(losses.generator_loss(s_f)), rtol=1e-5)
    # D's loss is the matching-aware one on (real, right), (real, wrong caption), (fake, right).
    d_loss, _ = model.discriminator_loss(batch, fakes, training=False)
    D, e = model.discriminator, fakes["e"]
    expected = losses.matching_aware_d_loss(D([batch["image"], e]), D([batch["image"], model.embed(batch["wrong_tokens"])]),
                                            D([fakes["fake"], e]))
    np.testing.assert_allclose(num(d_loss), num(expected), rtol=1e-5)


def test_presets_hold_the_reference_settings():
    paper = stackgan.Config.paper()
    assert (paper.stage1_size, paper.stage2_size, paper.z_dim, paper.ca_dim, paper.ngf, paper.ndf) == \
        (64, 256, 100, 128, 128, 64)
    assert (paper.res_blocks, paper.kl_weight, paper.batch_size, paper.lr, paper.beta1) == (4, 2.0, 64, 2e-4, 0.5)
    epoch = 8855 // 64
    assert (paper.stage1_steps, paper.stage2_steps) == (600 * epoch, 600 * epoch)
    assert (paper.stage1_lr_decay_every, paper.stage2_lr_decay_every) == (50 * epoch, 100 * epoch)
    assert (paper.image_size, paper.steps, paper.lr_decay_every) == (64, 600 * epoch, 50 * epoch)
    two = paper.replace(stage=2)
    assert (two.image_size, two.lr_decay_every) == (256, 100 * epoch)
    assert two.replace(steps=7).stage2_steps == 7 and two.replace(steps=7).stage1_steps == 600 * epoch
    assert stackgan.build_stage1_generator(paper).output_shape[0] == (None, 64, 64, 3)
    assert (paper.bottleneck_blocks, paper.init, paper.conv_biases, paper.ca_log_sigma, paper.ca_noise) == \
        (True, "reference", False, True, "truncated_normal")
    assert (paper.captions_per_embedding, paper.wrong, paper.stage1_epochs, paper.stage2_epochs) == \
        (4, "image", 600, 600)
    fast = stackgan.Config.fast()
    assert (fast.stage1_size, fast.stage2_size, fast.ema_decay) == (32, 64, 0.995)
    assert (fast.bottleneck_blocks, fast.init, fast.conv_biases, fast.ca_log_sigma, fast.ca_noise) == \
        (False, "keras", True, False, "normal")
    assert (fast.captions_per_embedding, fast.wrong, fast.stage1_epochs) == (1, "caption", 0)
    with pytest.raises(ValueError, match="stage"):
        stackgan.Config(stage=3)
    with pytest.raises(ValueError, match="stage2_size"):
        stackgan.Config(stage1_size=64, stage2_size=96)


def stackgan_counts(gf, df, z, ef, txt, res=4):
    """Trainable parameters of hanzhanggit/StackGAN's default networks, by hand from
    stageI/model.py and stageII/model.py (convs without bias: in*out*k*k; FC: in*out + out;
    BN: 2 per channel, G_0's `fc_batch_norm` 2 per FC output)."""
    def conv(i, o, k):
        return i * o * k * k

    def bottleneck(c):
        return conv(c, c // 4, 1) + conv(c // 4, c // 4, 3) + conv(c // 4, c, 3) + 2 * (c // 4 + c // 4 + c)

    ca = txt * 2 * ef + 2 * ef
    head = txt * ef + ef + conv(8 * df + ef, 8 * df, 1) + 2 * 8 * df + conv(8 * df, 1, 4)
    g0 = ca + (ef + z) * 16 * 8 * gf + 16 * 8 * gf + 2 * 16 * 8 * gf + bottleneck(8 * gf) \
        + conv(8 * gf, 4 * gf, 3) + 2 * 4 * gf + bottleneck(4 * gf) \
        + conv(4 * gf, 2 * gf, 3) + 2 * 2 * gf + conv(2 * gf, gf, 3) + 2 * gf + conv(gf, 3, 3)
    d0 = conv(3, df, 4) + sum(conv(df * m // 2, df * m, 4) + 2 * df * m for m in (2, 4, 8)) \
        + bottleneck(8 * df) + head
    g = ca + conv(3, gf, 3) + conv(gf, 2 * gf, 4) + 2 * 2 * gf + conv(2 * gf, 4 * gf, 4) + 2 * 4 * gf \
        + conv(4 * gf + ef, 4 * gf, 3) + 2 * 4 * gf + res * (2 * conv(4 * gf, 4 * gf, 3) + 4 * 4 * gf) \
        + sum(conv(i, o, 3) + 2 * o for i, o in ((4 * gf, 2 * gf), (2 * gf, gf), (gf, gf // 2), (gf // 2, gf // 4))) \
        + conv(gf // 4, 3, 3)
    d = conv(3, df, 4) + sum(conv(df * m // 2, df * m, 4) + 2 * df * m for m in (2, 4, 8, 16, 32)) \
        + conv(32 * df, 16 * df, 1) + 2 * 16 * df + conv(16 * df, 8 * df, 1) + 2 * 8 * df + bottleneck(8 * df) + head
    return {"G_0": g0, "D_0": d0, "G": g, "D": d, "F_ca": ca}


def test_paper_networks_have_the_reference_parameter_counts():
    """The reference at its birds width (gf 128, df 64, z 100, N_g 128, 1024-d char-CNN-RNN text):
    G_0 14,264,192, D_0 4,029,824, G 26,290,080, D 48,603,520 (each F_ca 262,400). The paper
    preset with 1024-d text has the same structure: checked at 1/8 width (fast on every backend)."""
    assert stackgan_counts(128, 64, 100, 128, 1024) == {"G_0": 14_264_192, "D_0": 4_029_824, "G": 26_290_080,
                                                        "D": 48_603_520, "F_ca": 262_400}
    small = stackgan.Config.paper().replace(ngf=16, ndf=8, z_dim=20, ca_dim=16, embed_dim=1024)
    assert stackgan.param_counts(small) == stackgan_counts(16, 8, 20, 16, 1024)



def test_paper_networks_place_blocks_and_activations_as_the_reference():
    """stageI/model.py: G_0's FC -> BN (per feature) -> 4x4 and its 8x8 conv have no ReLU before a
    bottleneck block; D_0's 4 ndf and 8 ndf convs and Stage-II D's last 1x1 conv have BN but no
    LeakyReLU before the block at 4x4 (stageII/model.py)."""
    cfg = stackgan.Config.paper().replace(ngf=8, ndf=8, ca_dim=8)
    assert layer_sequence(stackgan.build_stage1_generator(cfg)) == (
        "InputLayer ConditioningAugmentation Rescaling InputLayer Reparameterize InputLayer Concatenate Dense BN "
        "Reshape Conv2D16 BN ReLU Conv2D16 BN ReLU Conv2D64 BN Add ReLU UpSampling2D Conv2D32 BN "
        "Conv2D8 BN ReLU Conv2D8 BN ReLU Conv2D32 BN Add ReLU UpSampling2D Conv2D16 BN ReLU "
        "UpSampling2D Conv2D8 BN ReLU UpSampling2D Conv2D3")
    block_and_head = ("Conv2D16 BN LR Conv2D16 BN LR Conv2D64 BN InputLayer Add Dense LR LR ReplicateConcat "
                      "Conv2D64 BN LR Conv2D1 Reshape")
    assert layer_sequence(stackgan.build_discriminator(cfg, 64, "D_0")) == (
        "InputLayer Conv2D8 LR Conv2D16 BN LR Conv2D32 BN Conv2D64 BN " + block_and_head)
    assert layer_sequence(stackgan.build_discriminator(cfg, 256, "D")) == (
        "InputLayer Conv2D8 LR Conv2D16 BN LR Conv2D32 BN LR Conv2D64 BN LR Conv2D128 BN LR Conv2D256 BN LR "
        "Conv2D128 BN LR Conv2D64 BN " + block_and_head)

def test_bottleneck_block_computes_x_plus_f_of_x():
    """G_0's block (stageI/model.py): ReLU(h + BN(conv3(ReLU(BN(conv3(ReLU(BN(conv1(h))))))))), inference mode."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((4, 4, 8))
    block = keras.Model(inputs, stackgan.bottleneck_block(inputs, stackgan.Config.paper(), keras.layers.ReLU))
    randomize_weights(block, rng)
    convs = [layer for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in block.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [c.kernel.shape for c in convs] == [(1, 1, 8, 2), (3, 3, 2, 2), (3, 3, 2, 8)]
    assert all(c.bias is None for c in convs) and all((n.momentum, n.epsilon) == (0.9, 1e-5) for n in norms)

    def bn(x, layer):
        gamma, beta, mean, var = (np.asarray(w) for w in layer.weights)
        return gamma * (x - mean) / np.sqrt(var + layer.epsilon) + beta

    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    r = np.maximum(bn(numpy_conv_same(x, np.asarray(convs[0].kernel)), norms[0]), 0)
    r = np.maximum(bn(numpy_conv_same(r, np.asarray(convs[1].kernel)), norms[1]), 0)
    r = bn(numpy_conv_same(r, np.asarray(convs[2].kernel)), norms[2])
    np.testing.assert_allclose(ops.convert_to_numpy(block(x, training=False)), np.maximum(x + r, 0),
                               rtol=1e-4, atol=1e-4)


def test_f_ca_outputs_log_sigma_as_the_reference():
    """With `ca_log_sigma` F_ca's FC gives [mu ; log sigma] = LeakyReLU(W phi + b) (stageI/model.py):
    the generator passes on logvar = 2 log sigma, so sigma = exp(log sigma) and the KL is the
    reference's -log sigma + (exp(2 log sigma) + mu^2 - 1) / 2, averaged."""
    cfg = TINY.replace(ca_log_sigma=True, init="reference")
    g0 = stackgan.build_stage1_generator(cfg)
    ca = next(layer for layer in g0.layers if isinstance(layer, stackgan.ConditioningAugmentation))
    kernel, bias = (np.asarray(w) for w in ca.fc.weights)
    assert abs(kernel.std() - 0.02) < 2e-3 and not bias.any()   # FC: N(0, 0.02), bias 0
    rng = np.random.default_rng(1)
    e = rng.normal(size=(4, cfg.embed_dim)).astype("float32")
    z = rng.normal(size=(4, cfg.z_dim)).astype("float32")
    eps = rng.normal(size=(4, cfg.ca_dim)).astype("float32")
    _, mu, logvar = (ops.convert_to_numpy(t) for t in g0([z, e, eps], training=False))
    o = e @ kernel + bias
    o = np.where(o > 0, o, 0.2 * o)
    mu_ref, log_sigma = o[:, :cfg.ca_dim], o[:, cfg.ca_dim:]
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logvar, 2 * log_sigma, rtol=1e-4, atol=1e-5)
    reference_kl = np.mean(-log_sigma + 0.5 * (-1 + np.exp(2 * log_sigma) + mu_ref**2))
    np.testing.assert_allclose(float(losses.kl_divergence(mu, logvar)), reference_kl, rtol=1e-4)
    c_hat = next(layer for layer in g0.layers if isinstance(layer, stackgan.Reparameterize))
    np.testing.assert_allclose(ops.convert_to_numpy(c_hat([mu, logvar, eps])), mu_ref + np.exp(log_sigma) * eps,
                               rtol=1e-4, atol=1e-5)


def test_reference_initialisers():
    """misc/custom_ops.py: convs truncated N(0, 0.02) (cut at 2 sd), FCs N(0, 0.02) with zero bias,
    BN gamma N(1, 0.02), beta 0."""
    cfg = stackgan.Config.paper().replace(ngf=16, ndf=16, stage1_size=32, stage2_size=64)
    d, g0 = stackgan.build_discriminator(cfg, 64, "D"), stackgan.build_stage1_generator(cfg)
    convs = np.concatenate([np.ravel(layer.kernel) for net in (d, g0) for layer in net.layers
                            if isinstance(layer, keras.layers.Conv2D)])
    # Keras' torch backend redraws at most 4 times, so ~0.0455**4 of its values stay untruncated.
    assert np.mean(np.abs(convs) > 0.04 + 1e-6) < 1e-4 and abs(convs.std() - 0.02 * 0.8796) < 1e-3
    dense = np.concatenate([np.ravel(layer.kernel) for net in (d, g0) for layer in net.layers
                            if isinstance(layer, keras.layers.Dense)])
    assert np.abs(dense).max() > 0.045 and abs(dense.std() - 0.02) < 1e-3   # not truncated
    gammas = np.concatenate([np.ravel(w) for w in d.weights + g0.weights if w.path.endswith("gamma")])
    assert abs(gammas.mean() - 1) < 2e-3 and abs(gammas.std() - 0.02) < 2e-3


def test_epochs_become_steps_as_the_reference_counts_them():
    """An epoch is floor(N / batch) steps (`int(num_examples / batch_size)`): CUB's 8855 -> 138."""
    paper = stackgan.Config.paper()
    assert paper.steps_per_epoch(8855) == 138
    assert paper.for_dataset(8855) == paper
    cfg = paper.for_dataset(1000)
    assert (cfg.stage1_steps, cfg.stage2_steps, cfg.stage1_lr_decay_every, cfg.stage2_lr_decay_every) == \
        (600 * 15, 600 * 15, 50 * 15, 100 * 15)
    fast = stackgan.Config.fast()
    assert fast.for_dataset(1000) == fast
    with pytest.raises(ValueError, match="num_train_images"):
        paper.steps_per_epoch(10)
    for field in ("init", "ca_noise", "wrong"):
        with pytest.raises(ValueError, match=field):
            stackgan.Config(**{field: "nonsense"})


def test_learning_rate_halves_every_lr_decay_every_steps():
    """The reference's "halve every N epochs" as a Keras schedule of each optimizer's step
    (the value after training and after a resume is checked in the round-trip test)."""
    model = stackgan.StageIGAN(TINY.replace(stage1_lr_decay_every=3))
    model.compile()
    for opt in (model.g_optimizer, *model.d_optimizers):
        config = keras.optimizers.schedules.serialize(opt._learning_rate)["config"]
        assert (config["initial_learning_rate"], config["decay_steps"], config["decay_rate"], config["staircase"]) \
            == (1e-3, 3, 0.5, True)
    schedule = model.g_optimizer._learning_rate
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 2, 3, 5, 6, 12)],
                               [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 6.25e-5], rtol=1e-6)
    constant = stackgan.StageIGAN(TINY)
    constant.compile()
    assert float(constant.g_optimizer.get_config()["learning_rate"]) == pytest.approx(1e-3)


# ---------------------------------------------------------------------------- Stage-II
def test_stage2_on_a_frozen_stage1_round_trip_and_resume(tmp_path):
    """Stage-II copies Stage-I's EMA generator and never changes it; saved after 2 steps and
    loaded, it gives the same images, and 2 more steps after loading == 4 steps straight
    (optimizer, noise and learning-rate state saved)."""
    cfg = TINY.replace(ema_decay=0.9, stage2_lr_decay_every=3)
    enable_determinism(0)
    stage1 = stackgan.StageIGAN(cfg)
    stage1.generator_ema.set_weights([w + 0.01 for w in stage1.generator.get_weights()])  # as if trained
    model = stackgan.StageIIGAN(cfg, stage1=stage1)
    model.compile()
    for a, b in zip(numpy_weights(model.stage1_generator), numpy_weights(stage1.generator_ema)):
        np.testing.assert_array_equal(a, b)
    low, high = model.generate(CAPTIONS, seed=5, return_stage1=True)
    np.testing.assert_allclose(low, stage1.generate(CAPTIONS, seed=5), atol=1e-6)  # same noise, same s_0
    assert low.shape == (2, 16, 16, 3) and high.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(high, model.generate(CAPTIONS, seed=5))

    data = repeat(fixed_batch(model, 32))
    frozen, g, d = (numpy_weights(n) for n in (model.stage1_generator, model.generator, model.discriminator))
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(frozen, numpy_weights(model.stage1_generator)):
        np.testing.assert_array_equal(a, b)   # weights and BN statistics
    assert any(np.abs(a - b).max() > 0 for a, b in zip(g, numpy_weights(model.generator)))
    assert any(np.abs(a - b).max() > 0 for a, b in zip(d, numpy_weights(model.discriminator)))

    path = tmp_path / "stage2.keras"
    model.save(path)
    loaded = runs.load_checkpoint(path)
    assert isinstance(loaded, stackgan.StageIIGAN) and loaded.config == model.config
    for a, b in zip(model.generate(CAPTIONS, seed=3, return_stage1=True),
                    loaded.generate(CAPTIONS, seed=3, return_stage1=True)):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.g_optimizer.iterations) == 2
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)    # 4 steps straight
    loaded.fit(data, steps_per_epoch=2, epochs=1, verbose=0)   # 2 + 2 across the save
    assert int(loaded.g_optimizer.iterations) == 4
    np.testing.assert_allclose(float(ops.convert_to_numpy(loaded.g_optimizer.learning_rate)), 5e-4, rtol=1e-6)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    assert stackgan.build(cfg.replace(stage=2), previous=stage1).config.stage == 2
    with pytest.raises(ValueError, match="ngf"):
        stackgan.StageIIGAN(cfg.replace(ngf=4), stage1=stage1)
    with pytest.raises(ValueError, match="previous"):
        stackgan.build(cfg.replace(stage=2))
    with pytest.raises(FileNotFoundError, match="Stage-I"):
        stackgan.StageIIGAN(cfg, stage1=tmp_path / "missing.keras")


# ---------------------------------------------------------------------------- on SynthBirds
@pytest.mark.end_to_end
def test_ganlib_train_learns_stage1_then_stage2_and_resumes(birds, tmp_path):
    """`runs.train("stackgan")` on SynthBirds: RUN/stage1, then RUN/stage2 built on Stage-I's
    checkpoint, each with a checkpoint, sample grids and metrics.json, and each lowering the
    FID analogue of its own images. The first call stops after Stage-I (Stage-II has 0 steps,
    as if interrupted between the stages); `resume` skips the finished Stage-I and trains
    Stage-II on its checkpoint."""
    root, _, _ = birds
    out = tmp_path / "run"
    tiny = {f: getattr(TINY, f) for f in ("stage1_size", "stage2_size", "z_dim", "ca_dim", "ngf", "ndf",
                                           "res_blocks", "batch_size", "lr", "stage1_lr_decay_every",
                                           "stage2_lr_decay_every")}
    tiny.update(ema_decay=0.95, eval_samples=100, eval_every=10**6, sample_every=10**6, checkpoint_every=10**6,
                stage1_steps=300)
    kwargs = dict(root=root, out=out, verbose=0)
    enable_determinism(0)
    runs.train("stackgan", config_overrides={**tiny, "stage2_steps": 0}, **kwargs)
    first, last = json.loads((out / "stage1" / "metrics.json").read_text())
    assert (first["step"], last["step"]) == (0, 300)
    assert last["fid"] < 0.7 * first["fid"], (first, last)
    assert last["inception_score"] > 2 * first["inception_score"], (first, last)
    assert cb.latest_checkpoint(out / "stage1").name == "ckpt-0000300.keras"
    assert list((out / "stage1" / "samples").glob("*.png"))
    assert cb.latest_checkpoint(out / "stage2") is None
    assert json.loads((out / "config.json").read_text())["stages"] == ["stage1", "stage2"]
    stage1_weights = numpy_weights(runs.load_run(out / "stage1").generator_ema)

    model = runs.train("stackgan", resume=True, config_overrides={**tiny, "stage2_steps": 200}, **kwargs)
    assert isinstance(model, stackgan.StageIIGAN) and cb.global_step(model) == 200
    for a, b in zip(numpy_weights(model.stage1_generator), stage1_weights):
        np.testing.assert_array_equal(a, b)   # Stage-I's checkpoint, frozen through Stage-II
    assert len(json.loads((out / "stage1" / "metrics.json").read_text())) == 2
    first, last = json.loads((out / "stage2" / "metrics.json").read_text())
    assert (first["step"], last["step"]) == (0, 200)
    assert last["fid"] < 0.7 * first["fid"], (first, last)
    assert list((out / "stage2" / "samples").glob("*.png"))
    loaded = runs.load_run(out)   # the run folder resolves to its last stage
    assert isinstance(loaded, stackgan.StageIIGAN) and cb.global_step(loaded) == 200
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        runs.train("stackgan", steps=2, resume=True, **{**kwargs, "out": tmp_path / "empty"})


def test_param_counts_and_diversity():
    counts = stackgan.param_counts(TINY)
    assert set(counts) == {"G_0", "D_0", "G", "D", "F_ca"}
    assert counts["F_ca"] == (TINY.embed_dim + 1) * 2 * TINY.ca_dim
    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])
    assert analysis.mean_pairwise_distance(f) == pytest.approx((5 + 8 + 5) / 3)
    model = stackgan.StageIGAN(TINY)
    assert analysis.sample_diversity(model, CAPTIONS[:1], n=3) > 0


def test_ca_noise_is_the_references_truncated_normal():
    """`ca_noise="truncated_normal"` (TF's tf.truncated_normal in the reference): every CA noise
    value within (-2, 2) in training and at inference; z stays N(0, 1)."""
    model = stackgan.StageIGAN(TINY.replace(ca_noise="truncated_normal"))
    noise = model.draw_noise(4000, seed=3)
    assert np.abs(noise["eps0"]).max() < 2 and np.abs(noise["z"]).max() > 2.5
    drawn = model.sample_noise({"image": np.zeros((4000, 16, 16, 3), "float32")})
    # (Keras' torch backend redraws 4 times, then keeps the value: a few per million stay outside)
    assert np.mean(np.abs(ops.convert_to_numpy(drawn["eps0"])) > 2.0 + 1e-6) < 1e-3
    assert np.abs(ops.convert_to_numpy(drawn["z"])).max() > 2.5
    assert np.std(noise["eps0"]) == pytest.approx(0.88, abs=0.03)   # the N(0, 1) truncated at 2 sd
