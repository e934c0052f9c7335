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

TINY = cgan.Config.fast().replace(image_size=16, z_dim=16, proj_dim=32, ngf=16, ndf=16, batch_size=32,
                                  lr=1e-3, lr_decay_every=0, eval_samples=100, ema_decay=0.0)


@pytest.fixture(scope="module")
def birds(tmp_path_factory):
    from ganlib.data import open_dataset, synthbirds

    root = tmp_path_factory.mktemp("birds")
    synthbirds.generate(root, n=400, size=32, seed=3, verbose=False)
    return open_dataset("synthbirds", root=root, split="train"), open_dataset("synthbirds", root=root, split="test")


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
    model = cgan.GANINTCLS(paper)
    assert model.generator.output_shape == (None, 64, 64, 3)
    assert model.discriminator.output_shape == (None,)
    with pytest.raises(ValueError, match="image_size"):
        cgan.GANINTCLS(TINY.replace(image_size=48))


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
    consistency needs longer runs: `ganlib train cgan --preset fast`, see README)."""
    train, test = birds
    enable_determinism(0)
    model = cgan.GANINTCLS(TINY)
    model.compile()
    pipe = train.pipeline(batch_size=TINY.batch_size, image_size=16, tokenizer=model.tokenizer)
    evaluate = cb.Evaluate(test, every=0, n=100, out_dir=tmp_path, verbose=False)
    model.fit(pipe, steps_per_epoch=250, epochs=1, verbose=0, callbacks=[evaluate])
    first, last = evaluate.records[0], evaluate.records[-1]
    assert first["step"] == 0 and last["step"] == 250
    assert last["fid"] < 0.7 * first["fid"], (first, last)
    assert last["inception_score"] > 2 * first["inception_score"], (first, last)
    assert json.loads((tmp_path / "metrics.json").read_text()) == evaluate.records


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    from test_training import LinearGAN, build_linear, linear_setup, one_batch

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
