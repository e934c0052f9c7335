"""AttnGAN (`ganlib.models.attngan`): the reference's networks and losses, the word attention
against numpy, and a short training run that learns."""

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import losses
from ganlib.layers import WordAttention
from ganlib.models import attngan as A
from ganlib.models import damsm as damsm_lib
from ganlib.text import Tokenizer
from ganlib.training import enable_determinism

# A CPU-sized DAMSM (untrained) and AttnGAN: 16 and 32 px, narrow.
TINY_DAMSM = dataclasses.replace(damsm_lib.Config.fast(), embed_dim=16, word_dim=16, image_size=32,
                                 small_filters=(8, 16, 32))
TINY = A.Config.fast().replace(embed_dim=16, image_size=32, branches=2, z_dim=16, ca_dim=16, ngf=16, ndf=8,
                               num_residual=1, batch_size=16, lr=1e-3, ema_decay=0.0, eval_samples=100)


def tiny_damsm():
    tokenizer = Tokenizer.default(TINY_DAMSM.max_words)
    model = damsm_lib.DAMSM(TINY_DAMSM, vocabulary_size=tokenizer.vocabulary_size)
    model.build()
    return model, tokenizer


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return A.AttnGAN(TINY, damsm=tiny_damsm())


def bce_np(x, z):
    x = np.asarray(x, np.float64)
    return np.mean(z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x))


def softmax_np(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_presets_hold_the_reference_settings():
    paper = A.Config.paper()   # cfg/bird_attn2.yml
    assert paper.branch_sizes == (64, 128, 256)
    assert (paper.ngf, paper.ndf, paper.z_dim, paper.ca_dim, paper.embed_dim, paper.num_residual,
            paper.max_words, paper.batch_size) == (32, 64, 100, 100, 256, 2, 18, 20)
    assert (paper.lr, paper.beta1, paper.beta2, paper.damsm_weight, paper.kl_weight, paper.epochs) == \
        (2e-4, 0.5, 0.999, 5.0, 1.0, 600)
    assert (paper.gamma1, paper.gamma2, paper.gamma3, paper.ema_decay) == (4.0, 5.0, 10.0, 0.999)
    coco = A.Config.coco()     # cfg/coco_attn2.yml
    assert (coco.ngf, coco.ndf, coco.num_residual, coco.max_words, coco.batch_size, coco.damsm_weight,
            coco.epochs) == (48, 96, 3, 12, 14, 50.0, 120)
    assert A.Config.fast().branch_sizes == (16, 32, 64)
    with pytest.raises(ValueError, match="image_size"):
        A.Config.fast().replace(image_size=48).validate()


def test_networks_have_the_reference_parameter_counts():
    """Counted on the reference's modules (taoxugit/AttnGAN code/model.py, run on bird_attn2.yml /
    coco_attn2.yml): G_NET, D_NET64/128/256, RNN_ENCODER with the birds' 5,450 words. The COCO
    preset's (G 13,811,456; D 13,304,450 / 42,800,258 / 160,774,274) are printed by
    tests/benchmarks/param_counts.py; the image encoder's head (721,152) is test_damsm's."""
    assert A.param_counts(A.Config.paper()) == {"G": 7_084_592, "F_ca": 102_800, "D_64": 6_313_730,
                                                "D_128": 19_424_002, "D_256": 71_858_946}
    text = damsm_lib.TextEncoder(5450, embed_dim=256, word_dim=300)
    text.build((None, 18))
    assert text.count_params() == 2_075_320


def test_word_attention_against_numpy():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    words = rng.normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    layer = WordAttention()
    context, beta = layer([h, words, mask])
    U = ops.convert_to_numpy(layer.U)
    e = words.astype(np.float64) @ U                               # (B, T, C)
    q = h.reshape(2, 9, 4).astype(np.float64)
    s = np.einsum("bnc,btc->bnt", q, e)
    s[mask[:, None, :].repeat(9, 1) == 0] = -np.inf
    b_np = softmax_np(s, -1)
    np.testing.assert_allclose(ops.convert_to_numpy(beta).reshape(2, 9, 5), b_np, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(context).reshape(2, 9, 4), b_np @ e, atol=1e-5)
    assert np.all(ops.convert_to_numpy(beta)[0, ..., 3:] == 0)   # padding gets no attention
    clone = WordAttention.from_config(layer.get_config())
    clone([h, words, mask])
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(clone([h, words, mask])[0]), ops.convert_to_numpy(context))


def _batch(model, n=6, seed=0):
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, model.config.max_words), "int32")
    for i in range(n):
        tokens[i, : 4 + i % 5] = rng.integers(2, 30, 4 + i % 5)
    image = rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32")
    return {"image": image, "tokens": tokens, "class_id": np.array([0, 0, 1, 2, 3, -1][:n], "int32")}


def noise(model, n=6):
    return {k: ops.convert_to_tensor(v) for k, v in model.draw_noise(n, seed=1).items()}


def test_discriminator_loss_is_the_reference_combination_with_shifted_wrong_pairs(tiny):
    batch = _batch(tiny)
    fakes = tiny.generator_outputs(batch, noise(tiny), training=False)
    loss, _ = tiny.discriminator_loss(batch, fakes, training=False)
    e_bar = fakes["c"]
    reals = tiny.real_images(batch)
    expected = 0.0
    for D, x, f in zip(tiny.discriminators, reals, fakes["images"]):
        r_c, r_u = (ops.convert_to_numpy(t) for t in D([x, e_bar], training=False))
        w_c, _ = (ops.convert_to_numpy(t) for t in D([x[:-1], e_bar[1:]], training=False))  # image k, caption k+1
        f_c, f_u = (ops.convert_to_numpy(t) for t in D([f, e_bar], training=False))
        expected += (bce_np(r_u, 1) + bce_np(r_c, 1)) / 2 + (bce_np(f_u, 0) + bce_np(f_c, 0) + bce_np(w_c, 0)) / 3
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_generator_loss_adds_kl_and_lambda_times_the_damsm_loss_of_the_last_image(tiny):
    batch = _batch(tiny)
    fakes = tiny.generator_outputs(batch, noise(tiny), training=False)
    total, logs = tiny.generator_loss(batch, fakes, training=False)
    e_bar = fakes["c"]
    adversarial = 0.0
    for D, f in zip(tiny.discriminators, fakes["images"]):
        f_c, f_u = (ops.convert_to_numpy(t) for t in D([f, e_bar], training=False))
        adversarial += bce_np(f_u, 1) + bce_np(f_c, 1)
    mu, logvar = (ops.convert_to_numpy(fakes[k]).astype(np.float64) for k in ("mu", "logvar"))
    kl = -0.5 * np.mean(1 + logvar - mu ** 2 - np.exp(logvar))
    regions, code = tiny.helper("image_encoder")(fakes["images"][-1], training=False)
    words, sentence = tiny.helper("text_encoder")(batch["tokens"], training=False)
    lengths = (batch["tokens"] > 0).sum(-1)
    classes = np.array([0, 0, 1, 2, 3, -7])       # the class-less item is no one's same-class item
    w, s = losses.damsm_loss(regions, code, words, sentence, lengths, class_ids=classes)
    np.testing.assert_allclose(float(logs["w_loss"]), float(w), rtol=1e-5)
    np.testing.assert_allclose(float(total), adversarial + kl + 5.0 * (float(w) + float(s)), rtol=1e-5)


def test_generated_attention_covers_the_real_words_only(tiny):
    captions = ["this bird has a red crown", "a small bird with blue wings and a white belly"]
    images, attention, tokens = tiny.generate_with_attention(captions, seed=0)
    assert [x.shape for x in images] == [(2, 16, 16, 3), (2, 32, 32, 3)] and attention[0].shape == (2, 16, 16, 18)
    np.testing.assert_allclose(attention[0].sum(-1), 1.0, atol=1e-5)
    assert np.all(attention[0][tokens[:, None, None, :].repeat(16, 1).repeat(16, 2) == 0] == 0)
    np.testing.assert_array_equal(images[-1], tiny.generate(captions, seed=0))


def test_short_training_lowers_the_fid_analogue(birds):
    """150 steps of a tiny AttnGAN (16/32 px) on SynthBirds lower the FID analogue of its 32 px
    images. At this size the raw generator's FID of 100 samples swings from one checkpoint to the
    next, and with the CPU: without an EMA generator (TensorFlow, seed 0, every 50 steps) 688 ->
    320, 556, 262 on a 2-core AMD EPYC (AVX2) but 688 -> 436, 619, 598 on a 2-core Intel Xeon
    (AVX-512), which failed this test. So the samples come from an EMA generator (decay 0.9, a
    ~10-step average, as the fast preset's 0.995 steadies its longer runs); on the Xeon: TensorFlow
    688 -> 332, 201, 192, JAX 745 -> 352, 286, 373, PyTorch 1099 -> 335, 259, 198. The test
    averages three checkpoints and asks for the best one to halve the untrained score. The DAMSM
    term is off here: the tiny DAMSM is untrained, its loss noise (lambda's effect with the
    shipped DAMSM: README)."""
    from ganlib.evaluation import evaluate_model

    train, test = birds
    enable_determinism(0)
    config = TINY.replace(damsm_weight=0.0, ema_decay=0.9)
    model = A.AttnGAN(config, damsm=tiny_damsm())
    model.compile()
    before = evaluate_model(model, test, n=100)["fid"]
    pipeline = A.SPEC.batch(config).pipeline(train, config.batch_size, tokenizer=model.tokenizer)
    after = []
    for _ in range(3):
        model.fit(pipeline, steps_per_epoch=50, epochs=1, verbose=0)
        after.append(evaluate_model(model, test, n=100)["fid"])
    assert np.mean(after) < 0.7 * before and min(after) < 0.5 * before, (before, after)


# --------------------------------------------------------------------------- the reference's outputs
# tests/fixtures/attngan_reference.npz: taoxugit/AttnGAN's code/model.py run outside this repository
# (PyTorch, eval mode, fixed seed) at a reduced width: two stages (64, 128 px), GF_DIM 4, DF_DIM 4,
# Z_DIM 8, CONDITION_DIM 6, EMBEDDING_DIM 10, R_NUM 1, WORDS_NUM 6, an RNN_ENCODER of 20 words with
# 12-d embeddings; its state dicts, inputs and outputs (images and attention subsampled).
FIXTURE_CFG = A.Config.paper().replace(image_size=128, branches=2, ngf=4, ndf=4, z_dim=8, ca_dim=6, embed_dim=10,
                                       num_residual=1, max_words=6)


@pytest.fixture(scope="module")
def reference():
    from pathlib import Path

    with np.load(Path(__file__).parent / "fixtures" / "attngan_reference.npz") as f:
        return {k: f[k] for k in f.files}


def _part(reference, prefix):
    return {k[len(prefix) + 1:]: v for k, v in reference.items() if k.startswith(prefix + "/")}


def test_converted_reference_networks_give_the_reference_outputs(reference):
    from ganlib import convert

    text = damsm_lib.TextEncoder(21, embed_dim=10, word_dim=12, dropout=0.5)
    text.build((None, 6))
    convert.load_damsm_text_encoder(text, _part(reference, "T"))
    tokens = reference["T_in/tokens"]
    words, sentence = text(np.where(tokens > 0, tokens + 1, 0))          # reference id k -> ganlib id k + 1
    np.testing.assert_allclose(ops.convert_to_numpy(words), reference["T_out/words"].transpose(0, 2, 1), atol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(sentence), reference["T_out/sentence"], atol=1e-4)

    generator, discriminators = A.build_generator(FIXTURE_CFG), A.build_discriminators(FIXTURE_CFG)
    convert.load_attngan((generator, discriminators), _part(reference, "G"),
                         [_part(reference, "D0"), _part(reference, "D1")])
    g = _part(reference, "G_in")
    outs = [ops.convert_to_numpy(o) for o in generator(
        [g["z"], g["sentence"], g["words"].transpose(0, 2, 1), np.ones((2, 6), "float32"), g["eps"]], training=False)]
    np.testing.assert_allclose(outs[0][:, ::2, ::2], reference["G_out/image_64"].transpose(0, 2, 3, 1), atol=1e-4)
    np.testing.assert_allclose(outs[1][:, ::4, ::4], reference["G_out/image_128"].transpose(0, 2, 3, 1), atol=1e-4)
    np.testing.assert_allclose(outs[2], reference["G_out/mu"], atol=1e-4)
    np.testing.assert_allclose(outs[4][:, ::4, ::4], reference["G_out/attention"].transpose(0, 2, 3, 1), atol=1e-4)
    for i, D in enumerate(discriminators):
        cond, uncond = D([reference[f"D{i}_in/image"].transpose(0, 2, 3, 1), reference["D_in/sentence"]],
                         training=False)
        np.testing.assert_allclose(ops.convert_to_numpy(cond), reference[f"D{i}_out/cond"], atol=1e-4)
        np.testing.assert_allclose(ops.convert_to_numpy(uncond), reference[f"D{i}_out/uncond"], atol=1e-4)
