"""The model protocol: registry entries, the conditioning components, the noise convention,
named helper networks, and the runner reading only the registry."""

import json
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import fixtures_real as fx
from ganlib import conditioning, models, runs
from ganlib.models import cgan, stackgan, stackganpp
from ganlib.models.registry import BatchSpec, PaperSpec

TINY_PP = stackganpp.Config.fast().replace(image_size=32, branches=2, z_dim=8, ca_dim=8, ngf=8, ndf=8,
                                           batch_size=8, ema_decay=0.0)


def test_every_paper_has_one_registry_entry_under_its_name():
    for name in models.MODELS:
        spec = models.get(name)
        assert isinstance(spec, PaperSpec) and spec.name == name
        for preset in ("fast", "paper"):
            cfg = spec.make_config(preset)
            assert isinstance(cfg, spec.config)
            assert isinstance(spec.batch(cfg), BatchSpec)
            assert set(spec.conditions) >= {cfg.conditioning}
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.get("nope")


def test_make_config_names_unknown_variants_fields_and_presets():
    spec = models.get("cgan")
    assert spec.make_config("fast", "class").conditioning == "class"
    assert spec.make_config("fast", steps=7, lr=None).steps == 7       # None: not overridden
    with pytest.raises(ValueError, match="no variant 'unconditional'.*class"):
        spec.make_config("fast", "unconditional")
    with pytest.raises(ValueError, match=r"unknown config fields \['bogus'\]"):
        spec.make_config("fast", bogus=1)
    with pytest.raises(ValueError, match="preset must be one of"):
        spec.make_config("huge")
    assert models.get("stackganpp").make_config("fast", "unconditional").conditioning == "none"
    assert models.get("stackgan").make_config("fast", "no-ca").conditioning_augmentation is False


def test_batch_specs_ask_for_what_each_reference_trains_on():
    """The paper presets: GAN-INT-CLS and StackGAN average 4 caption embeddings (the reference data's
    char-CNN-RNN embeddings); all three pair the right text with a wrong *image* (a real image of
    another class), as their reference code does; StackGAN++ gets the image pyramid."""
    b = models.get("cgan").batch(cgan.Config.paper())
    assert (b.image_size, b.captions, b.wrong, b.text, b.pyramid) == (64, 4, "image", "embeddings", ())
    b = models.get("cgan").batch(cgan.Config.fast())
    assert (b.captions, b.wrong, b.text) == (1, "caption", "tokens")
    b = models.get("stackgan").batch(stackgan.Config.paper(stage=2))
    assert (b.image_size, b.captions, b.wrong) == (256, 4, "image")
    b = models.get("stackganpp").batch(stackganpp.Config.paper())
    assert (b.image_size, b.pyramid, b.wrong, b.captions) == (256, (64, 128), "image", 1)
    b = models.get("stackganpp").batch(stackganpp.Config.paper(unconditional=True))
    assert (b.text, b.wrong) == (None, None)
    b = models.get("stackganpp").batch(stackganpp.Config.paper())
    assert b.text == "embeddings"
    assert models.get("stackganpp").batch(stackganpp.Config.fast()).text == "tokens"
    assert models.get("cgan").batch(cgan.Config.fast().replace(conditioning="class")).text is None


def test_noise_convention_is_one_for_training_and_inference():
    """draw_noise: every input of noise_shapes, z from default_rng(seed), the k-th from
    default_rng([seed, k]); given entries are used (shape-checked); sample_noise draws the
    same names (plus training-only ones) in the same shapes."""
    model = stackganpp.StackGANpp(TINY_PP)
    noise = model.draw_noise(3, seed=7)
    assert list(noise) == ["z", "eps"]
    np.testing.assert_array_equal(noise["z"], np.random.default_rng(7).standard_normal((3, 8)).astype("float32"))
    np.testing.assert_array_equal(noise["eps"], np.random.default_rng([7, 1]).standard_normal((3, 8)).astype("float32"))
    np.testing.assert_array_equal(model.draw_noise(5, seed=7)["eps"][:3], noise["eps"])   # sample i: same noise
    given = np.ones((3, 8), "float32")
    assert np.all(model.draw_noise(3, seed=7, z=given)["z"] == 1)
    with pytest.raises(ValueError, match=r"noise\['z'\]: expected shape \(3, 8\)"):
        model.draw_noise(3, z=np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"noise\['eps0'\]"):
        model.draw_noise(3, noise={"eps0": given})
    batch = {"image": np.zeros((4, 32, 32, 3), "float32")}
    drawn = model.sample_noise(batch)
    assert {k: tuple(ops.shape(v)) for k, v in drawn.items()} == {"z": (4, 8), "eps": (4, 8)}
    gan = cgan.GANINTCLS(cgan.Config.fast().replace(image_size=16, ngf=8, ndf=8, z_dim=4))
    assert set(gan.sample_noise(batch)) == {"z", "z_int"} and set(gan.draw_noise(2)) == {"z"}


def test_constructors_do_not_reseed_the_global_random_state():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    stackganpp.StackGANpp(TINY_PP)
    assert np.random.rand() == expected


def test_helper_networks_are_found_by_name():
    tiny = stackgan.Config.fast().replace(stage1_size=16, stage2_size=32, z_dim=4, ca_dim=4, ngf=8, ndf=8)
    stage2 = stackgan.StageIIGAN(tiny)
    assert stage2.helper("G_0") is stage2.stage1_generator
    assert stage2.helper("sentence_encoder") is stage2.auxiliaries[0]
    with pytest.raises(KeyError, match="no helper network 'captioner'.*G_0"):
        stage2.helper("captioner")


def test_sentence_conditioning_from_precomputed_embeddings():
    """char-CNN-RNN embeddings (B, k, 1024) are averaged over the k captions, used as they are
    (no rescaling, as the references); new captions cannot be encoded offline."""
    component = conditioning.SentenceConditioning(1024, "char-cnn-rnn")
    e = np.random.default_rng(0).normal(size=(2, 4, 1024)).astype("float32")
    batch = {"embeddings": e, "wrong_embeddings": e[::-1]}
    np.testing.assert_allclose(ops.convert_to_numpy(component.from_batch(None, batch)), e.mean(1), atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(component.from_batch(None, batch, wrong=True)),
                               e[::-1].mean(1), atol=1e-6)
    assert component.helpers() == {}
    with pytest.raises(ValueError, match="cannot be computed offline"):
        component.encode(None, ["a red bird"])
    np.testing.assert_array_equal(component.encode(None, e[:, 0]), e[:, 0])
    with pytest.raises(ValueError, match="does not match"):
        conditioning.SentenceConditioning(1024, "synthbirds")


def test_text_encoder_falls_back_on_data_without_embeddings():
    class NoEmbeddings:
        name, has_classes, has_embeddings = "synthbirds", True, False

    cfg, note = conditioning.for_dataset(stackganpp.Config.paper().replace(text_encoder="char-cnn-rnn",
                                                                           embed_dim=1024), NoEmbeddings())
    assert (cfg.text_encoder, cfg.embed_dim) == ("synthbirds", 256) and "sentence encoder" in note
    with pytest.raises(ValueError, match="class ids"):
        conditioning.for_dataset(cgan.Config.fast().replace(conditioning="class"),
                                 type("NoClasses", (), {"name": "coco", "has_classes": False})())
    narrow = type("Narrow", (), {"name": "cub", "has_classes": True, "has_embeddings": True, "embedding_dim": 16,
                                 "embeddings_path": "birds/train/char-CNN-RNN-embeddings.pickle"})()
    with pytest.raises(ValueError, match="embed_dim=1024.*16 dimensions.*char-CNN-RNN-embeddings.pickle"):
        conditioning.for_dataset(stackganpp.Config.paper(), narrow)


def test_train_reads_the_reference_embeddings_of_a_cub_folder(tmp_path):
    """`ganlib train stackganpp` with the char-CNN-RNN text encoder on a CUB folder that has
    the embeddings pickle: the pipeline gives `embeddings`, G's text input is 1024-d, and the
    sample sheet is made from the test split's embeddings."""
    root = fx.write_cub(tmp_path / "cub", per_class=(12, 12, 3, 3), size=(40, 32))
    overrides = {k: getattr(TINY_PP, k) for k in ("image_size", "branches", "z_dim", "ca_dim", "ngf", "ndf",
                                                   "batch_size", "ema_decay")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = runs.train("stackganpp", data="cub", root=root, steps=3, out=tmp_path / "run", verbose=0,
                           config_overrides={**overrides, "text_encoder": "char-cnn-rnn", "embed_dim": 1024,
                                             "sample_every": 2, "eval_every": 0})
    assert model.generator.get_layer("F_ca").input.shape[-1] == 1024
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["config"]["text_encoder"] == "char-cnn-rnn"
    assert list((tmp_path / "run" / "samples").glob("*.png"))
    # 3 steps, not the 4 of two whole sample_every-sized epochs (callbacks.StopAtStep)
    assert keras.ops.convert_to_numpy(model.optimizer.iterations) == 3
