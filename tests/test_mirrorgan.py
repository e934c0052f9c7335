"""MirrorGAN (`ganlib.models.mirrorgan`): the reference's parameter counts and outputs, the STREAM
loss against numpy, the exercise hooks, and a short training run that learns."""

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import convert, losses
from ganlib.layers import sentence_attention
from ganlib.models import damsm as damsm_lib
from ganlib.models import mirrorgan as M
from ganlib.models import stream as stream_lib
from ganlib.training import enable_determinism

# A CPU-sized MirrorGAN (16 and 32 px) with the shipped SynthBirds DAMSM and STREAM (their widths).
TINY = M.Config.fast().replace(image_size=32, branches=2, z_dim=16, ca_dim=16, ngf=16, ndf=8, num_residual=1,
                               batch_size=16, lr=1e-3, ema_decay=0.0, eval_samples=100)


@pytest.fixture(scope="module")
def helpers():
    return damsm_lib.load_pretrained(), stream_lib.load_pretrained()


def bce_np(x, z):
    x = np.asarray(x, np.float64)
    return np.mean(z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x))


def caption_ce_np(logits, targets, mask):
    """Cross-entropy of the unmasked targets, averaged over them (nn.CrossEntropyLoss on packed sequences)."""
    z = np.asarray(logits, np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, np.asarray(targets)[..., None], -1)[..., 0]
    return -(picked * mask).sum() / mask.sum()


def test_presets_hold_the_reference_settings():
    paper = M.Config.paper()   # cfg/train_bird.yml (+ cfg/config.py defaults)
    assert paper.branch_sizes == (64, 128, 256)
    assert (paper.ngf, paper.ndf, paper.z_dim, paper.ca_dim, paper.embed_dim, paper.num_residual,
            paper.max_words, paper.batch_size) == (32, 64, 100, 100, 256, 2, 18, 12)
    assert (paper.lr, paper.beta1, paper.beta2, paper.caption_weight, paper.damsm_weight, paper.kl_weight) == \
        (2e-4, 0.5, 0.999, 10.0, 0.0, 1.0)
    assert (paper.epochs, paper.steps, paper.ema_decay) == (650, 650 * (8855 // 12), 0.999)
    fast = M.Config.fast()
    assert fast.branch_sizes == (16, 32, 64) and (fast.caption_weight, fast.damsm_weight) == (10.0, 0.0)
    spec = M.SPEC   # the command line's ablations: lambda 0, and AttnGAN's DAMSM term added
    assert spec.make_config("fast", "no-stream").caption_weight == 0.0
    both = spec.make_config("fast", "with-damsm")
    assert (both.caption_weight, both.damsm_weight) == (10.0, 5.0)


def test_networks_have_the_reference_parameter_counts():
    """Counted on the reference's modules (qiaott/MirrorGAN model.py, G_NET and D_NET64/128/256 built
    with cfg/train_bird.yml): G 7,105,392 = AttnGAN's 7,084,592 + 2 x 10,400 (GLAM's V 100x32 + 32,
    its 1x1 U 32x32 and the joining 1x1 convolution 96x64 at both later stages); the D_NETs are
    AttnGAN's. The STREAM's counts are test_stream's."""
    assert M.param_counts(M.Config.paper()) == {"G": 7_105_392, "F_ca": 102_800, "D_64": 6_313_730,
                                                "D_128": 19_424_002, "D_256": 71_858_946}


def test_caption_cross_entropy_against_numpy_with_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype("float32") * 3
    targets = rng.integers(2, 7, size=(3, 5)).astype("int32")
    targets[0, 3:] = 0
    targets[2, 1:] = 0
    mask = ops.convert_to_numpy(stream_lib.caption_mask(targets))
    np.testing.assert_array_equal(mask.sum(-1), [3, 5, 1])            # the real words only
    got = float(losses.caption_cross_entropy(logits, targets, mask))
    np.testing.assert_allclose(got, caption_ce_np(logits, targets, mask), rtol=1e-6)
    logits[0, 4] += 100.0                                             # a padded position's scores do not count
    assert float(losses.caption_cross_entropy(logits, targets, mask)) == pytest.approx(got, rel=1e-6)
    uniform = np.zeros((3, 5, 7), "float32")                          # a known answer: log V
    assert float(losses.caption_cross_entropy(uniform, targets, mask)) == pytest.approx(np.log(7), rel=1e-6)


def _batch(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, model.config.max_words), "int32")
    for i in range(n):
        tokens[i, : 4 + i] = rng.integers(2, model.tokenizer.vocabulary_size, 4 + i)
    image = rng.uniform(-1, 1, (n, model.config.image_size, model.config.image_size, 3)).astype("float32")
    return {"image": image, "tokens": tokens, "class_id": np.arange(n, dtype="int32")}


def test_generator_loss_is_adversarial_plus_kl_plus_lambda_times_the_stream_loss(helpers):
    keras.utils.set_random_seed(0)
    calls = []

    def caption_loss_fn(logits, targets, mask):
        calls.append(tuple(logits.shape))
        return losses.caption_cross_entropy(logits, targets, mask)

    model = M.MirrorGAN(TINY, damsm=helpers[0], stream=helpers[1], caption_loss_fn=caption_loss_fn)
    batch = _batch(model)
    noise = {k: ops.convert_to_tensor(v) for k, v in model.draw_noise(4, seed=1).items()}
    fakes = model.generator_outputs(batch, noise, training=False)
    total, logs = model.generator_loss(batch, fakes, training=False)
    adversarial = 0.0
    for D, f in zip(model.discriminators, fakes["images"]):
        f_c, f_u = (ops.convert_to_numpy(t) for t in D([f, fakes["c"]], training=False))
        adversarial += bce_np(f_u, 1) + bce_np(f_c, 1)
    mu, logvar = (ops.convert_to_numpy(fakes[k]).astype(np.float64) for k in ("mu", "logvar"))
    kl = -0.5 * np.mean(1 + logvar - mu ** 2 - np.exp(logvar))
    captioner = model.helper("stream")                      # the shipped STREAM takes 64 px: G's 32 px resized
    image = ops.image.resize(fakes["images"][-1], (64, 64), interpolation="bilinear")
    logits = ops.convert_to_numpy(captioner.decoder(captioner.encoder(image, training=False), batch["tokens"]))
    mask = (batch["tokens"] > 0).astype("float64")
    cap = caption_ce_np(logits, batch["tokens"], mask)
    assert calls and calls[-1] == (4, TINY.max_words, model.tokenizer.vocabulary_size)
    assert "w_loss" not in logs                                # the reference's G loss has no DAMSM term
    np.testing.assert_allclose(float(logs["cap_loss"]), cap, rtol=1e-5)
    np.testing.assert_allclose(float(total), adversarial + kl + 10.0 * cap, rtol=1e-5)


def test_sentence_attention_hook_replaces_every_stage_computation(helpers):
    """`sentence_attention_fn` is SentenceAttention's `fn` at every later stage: the library's own
    function gives the default G's outputs; a different one changes the later stages only."""
    calls = []

    def same(h, e, kernel):
        calls.append(tuple(h.shape[1:]))
        return sentence_attention(h, e, kernel)

    def zero(h, e, kernel):
        att, a = sentence_attention(h, e, kernel)
        return att * 0.0, a

    cfg = TINY.replace(branches=3, image_size=64)
    outs = []
    for fn in (None, same, zero):
        keras.utils.set_random_seed(0)
        model = M.MirrorGAN(cfg, damsm=helpers[0], stream=helpers[1], sentence_attention_fn=fn)
        outs.append([ops.convert_to_numpy(x) for x in model.generate_branches(["a bird with a red crown"], seed=0)])
    assert {(16, 16, 16), (32, 32, 16)} <= set(calls)              # h_{i-1} of both attention stages
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(outs[2][0], outs[0][0], atol=1e-6)           # stage 0 has no attention
    assert np.abs(outs[2][-1] - outs[0][-1]).max() > 1e-3


# --------------------------------------------------------------------------- the reference's outputs
# tests/fixtures/mirrorgan_reference.npz: qiaott/MirrorGAN's model.py G_NET run outside this repository
# (PyTorch, eval mode, orthogonal weights, random BatchNorm statistics and biases, fixed seed) at a
# reduced width: three stages (64, 128, 256 px), GF_DIM 2, Z_DIM 8, CONDITION_DIM 6 (GLAttention's
# hard-coded nn.Linear(100, idf) made nn.Linear(CONDITION_DIM, idf) for it), EMBEDDING_DIM 10, R_NUM 1,
# 6 words (4 real in both captions); CA's noise given (eps); its state dict, inputs and outputs
# (images and attention maps subsampled).
FIXTURE_CFG = M.Config.paper().replace(image_size=256, branches=3, ngf=2, ndf=2, z_dim=8, ca_dim=6, embed_dim=10,
                                       num_residual=1, max_words=6)


def test_converted_reference_generator_gives_the_reference_outputs():
    with np.load(Path(__file__).parent / "fixtures" / "mirrorgan_reference.npz") as f:
        ref = {k: f[k] for k in f.files}
    generator = M.build_generator(FIXTURE_CFG)
    convert.load_mirrorgan(generator, {k[2:]: v for k, v in ref.items() if k.startswith("G/")})
    outs = [ops.convert_to_numpy(o) for o in generator(
        [ref["G_in/z"], ref["G_in/sentence"], ref["G_in/words"].transpose(0, 2, 1), ref["G_in/mask"], ref["G_in/eps"]],
        training=False)]
    for k, (size, step) in enumerate(((64, 4), (128, 8), (256, 16))):
        want = ref[f"G_out/image_{size}"].transpose(0, 2, 3, 1)
        np.testing.assert_allclose(outs[k][:, ::step, ::step], want, atol=1e-4)
        assert np.abs(want).max() > 0.1                                # the images are not blank
    np.testing.assert_allclose(outs[3], ref["G_out/mu"], atol=1e-5)
    np.testing.assert_allclose(outs[4], ref["G_out/logvar"], atol=1e-5)
    np.testing.assert_allclose(outs[5][:, ::4, ::4], ref["G_out/attention_1"].transpose(0, 2, 3, 1), atol=1e-4)
    np.testing.assert_allclose(outs[6][:, ::4, ::4], ref["G_out/attention_2"].transpose(0, 2, 3, 1), atol=1e-4)
    with pytest.raises(ValueError, match="missing keys.*att.linear"):
        convert.load_mirrorgan(generator, {k[2:]: v for k, v in ref.items()
                                           if k.startswith("G/") and "att.linear" not in k})


def test_short_training_lowers_the_fid_analogue(birds, helpers):
    """100 steps of a tiny MirrorGAN (16/32 px, lr 1e-3) on SynthBirds, with the shipped DAMSM and
    STREAM in the loss at the reference's lambda = 10, lower the FID analogue of its 32 px images,
    scored with the averaged generator (EMA 0.95; the raw one's FID swings from one checkpoint to
    the next at this size). Measured (TensorFlow, AMD EPYC AVX2, seed 0, every 20 steps):
    826 -> 643, 527, 234, 191, 263. This shows the objective with the STREAM term trains, not that
    redescription helps (lesson 06 compares lambda = 10 with 0)."""
    from ganlib.evaluation import evaluate_model

    train, test = birds
    enable_determinism(0)
    config = TINY.replace(caption_weight=10.0, ema_decay=0.95)
    model = M.MirrorGAN(config, damsm=helpers[0], stream=helpers[1])
    model.compile()
    before = evaluate_model(model, test, n=100)["fid"]
    pipeline = M.SPEC.batch(config).pipeline(train, config.batch_size, tokenizer=model.tokenizer)
    history = model.fit(pipeline, steps_per_epoch=100, epochs=1, verbose=0).history
    after = evaluate_model(model, test, n=100)["fid"]
    print(f"FID analogue {before:.1f} -> {after:.1f}, last STREAM loss {history['cap_loss'][-1]:.3f}")
    assert np.isfinite(history["cap_loss"][-1])
    assert after < 0.6 * before, (before, after)
