"""`ganlib bench` and the FLOP counter: hand counts, the step estimate's equation, the JSON record."""

import json

import keras
import numpy as np
import pytest

from ganlib import bench, cli, flops, models
from ganlib.layers import ConditioningAugmentation, UpConv
from ganlib.models import MODELS

TINY_CGAN = dict(image_size=16, z_dim=16, proj_dim=32, ngf=16, ndf=16, ema_decay=0.0)
RECORD_FIELDS = ("model", "preset", "backend", "batch", "precision", "steps", "warmup", "median_step_s",
                 "min_step_s", "max_step_s", "images_per_s", "peak_rss_mb", "device_peak_mb", "flops_per_step",
                 "forward_flops", "network_calls", "uncounted_layers", "achieved_gflops", "calibration_gflops",
                 "jit_compile", "machine", "versions", "time")


def test_flops_of_dense_and_conv_equal_the_hand_count():
    a, b = keras.Input((10,)), keras.Input((8, 8, 3))
    net = keras.Model([a, b], [keras.layers.Dense(20)(a), keras.layers.Conv2D(8, 3, padding="same")(b)])
    dense = 2 * 10 * 20                      # 2 x MACs: 10 inputs x 20 units
    conv = 2 * (8 * 8) * (3 * 3 * 3) * 8     # per output pixel: 3x3 taps x 3 channels, for 8 filters
    assert dense + conv == 28048
    x = [np.zeros((3, 10), "float32"), np.zeros((3, 8, 8, 3), "float32")]
    assert flops.forward_flops(net, x) == 28048   # per example: the batch of 3 divided out


def test_transposed_convolutions_count_every_input_pixel_through_the_whole_kernel():
    x = keras.Input((4, 4, 6))
    net = keras.Model(x, [UpConv(5)(x), keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same")(x)])
    one = 2 * (4 * 4) * (4 * 4) * 6 * 5      # 16 input pixels x 16 taps x 6 -> 5 channels
    assert flops.forward_flops(net, np.zeros((2, 4, 4, 6), "float32")) == 2 * one


def test_composite_layers_are_counted_through_their_sublayers():
    e = keras.Input((12,))
    net = keras.Model(e, ConditioningAugmentation(4, activation="glu")(e))
    assert flops.forward_flops(net, np.zeros((1, 12), "float32")) == 2 * 12 * (4 * 4)   # FC 12 -> 4 * units


def test_a_weighted_layer_without_a_rule_is_reported_not_dropped():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.kernel = self.add_weight(shape=(shape[-1],), name="kernel")

        def call(self, x):
            return x * self.kernel

    x = keras.Input((3,))
    with pytest.raises(ValueError, match="scale"):
        flops.forward_flops(keras.Model(x, Scale(name="scale")(x)), np.zeros((1, 3), "float32"))


def test_train_step_flops_follow_the_step_equation_for_gan_int_cls():
    """GAN-INT-CLS's step: G twice (fake, interpolated), D three times in the D update
    (real, wrong, fake) and twice in the G update, the frozen text encoder twice
    (tokens, wrong_tokens): 3 (2 F_G + 5 F_D) + 2 F_E per image."""
    model = bench.build_model("cgan", "fast", batch=4, overrides=TINY_CGAN)
    batch = bench.synthetic_batch(model, 4)
    counted = flops.train_step_flops(model, batch)
    cfg = model.config
    f_g = flops.forward_flops(model.generator, [np.zeros((2, cfg.z_dim), "float32"),
                                                np.zeros((2, cfg.embed_dim), "float32")])
    f_d = flops.forward_flops(model.discriminator, [batch["image"][:2], np.zeros((2, cfg.embed_dim), "float32")])
    f_e = flops.forward_flops(model.helper("sentence_encoder"), batch["tokens"][:2])
    assert counted["calls"] == {"G": 2, "D": 5, "sentence_encoder": 2}
    assert counted["forward"] == {"G": f_g, "D": f_d, "sentence_encoder": f_e}
    assert counted["train_per_image"] == 3 * (2 * f_g + 5 * f_d) + 2 * f_e
    assert counted["uncounted"] == []


@pytest.mark.backend_neutral   # what Keras builds is the same on every backend (shapes, dtypes, counts)
@pytest.mark.parametrize("name", MODELS)
def test_synthetic_batches_hold_what_the_pipeline_gives(name):
    model = bench.build_model(name, "fast")
    cfg = model.config
    batch = bench.synthetic_batch(model, 3)
    if name == "pix2pixhd":   # label maps, not text
        h, w = cfg.image_size
        assert batch["image"].shape == (3, h, w, 3) and batch["image"].dtype == np.float32
        assert batch["label"].shape == batch["instance"].shape == (3, h, w) and batch["label"].dtype == np.int32
        assert 0 <= batch["label"].min() and batch["label"].max() < cfg.label_nc
        return
    assert batch["image"].shape == (3, cfg.image_size, cfg.image_size, 3) and batch["image"].dtype == np.float32
    assert -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["class_id"].dtype == np.int32 and batch["class_id"].min() >= 0
    wrong = models.get(name).batch(cfg).wrong     # AttnGAN: wrong pairs shifted within the batch
    assert ("wrong_tokens" in batch) == (wrong == "caption")
    for key in ("tokens", "wrong_tokens")[:2 if wrong == "caption" else 1]:
        assert batch[key].shape == (3, cfg.max_words) and batch[key].dtype == np.int32
        assert 2 <= batch[key].min() and batch[key].max() < model.tokenizer.vocabulary_size


@pytest.mark.backend_neutral   # what Keras builds is the same on every backend (shapes, dtypes, counts)
def test_several_captions_per_embedding_give_token_blocks():
    """The paper preset averages 4 captions: 4 precomputed char-CNN-RNN embeddings per image (its
    text encoder), or 4 token rows with the SynthBirds encoder; wrong pairs are images."""
    model = bench.build_model("cgan", "paper", overrides=TINY_CGAN)
    batch = bench.synthetic_batch(model, 2)
    assert batch["embeddings"].shape == batch["wrong_embeddings"].shape == (2, 4, 1024)
    assert batch["wrong_image"].shape == batch["image"].shape
    model = bench.build_model("cgan", "paper", overrides={**TINY_CGAN, "text_encoder": "synthbirds", "embed_dim": 256})
    assert bench.synthetic_batch(model, 2)["tokens"].shape == (2, 4, model.config.max_words)
    assert bench.synthetic_batch(model, 2)["class_id"].max() < model.config.num_classes


def test_calibration_figure_is_positive_and_finite():
    figure = bench.calibration_gflops(n=256, repeats=3)
    assert np.isfinite(figure) and figure > 0


def test_bench_command_writes_a_complete_json_record(tmp_path, capsys):
    path = tmp_path / "bench.jsonl"
    status = cli.main(["bench", "cgan", "--batch", "4", "--steps", "2", "--warmup", "1", "--json", str(path)])
    assert status == 0
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert set(RECORD_FIELDS) <= set(record)
    assert (record["model"], record["preset"], record["batch"], record["steps"]) == ("cgan", "fast", 4, 2)
    assert record["backend"] == keras.backend.backend() and record["precision"] == "fp32"
    for key in ("median_step_s", "min_step_s", "max_step_s", "images_per_s", "peak_rss_mb", "flops_per_step",
                "achieved_gflops", "calibration_gflops"):
        assert record[key] > 0, key
    assert record["min_step_s"] <= record["median_step_s"] <= record["max_step_s"]
    assert record["images_per_s"] == pytest.approx(4 / record["median_step_s"])
    assert record["achieved_gflops"] == pytest.approx(record["flops_per_step"] / record["median_step_s"] / 1e9)
    f, n = record["forward_flops"], record["network_calls"]
    assert record["flops_per_step"] == 4 * (3 * (n["G"] * f["G"] + n["D"] * f["D"])
                                            + n["sentence_encoder"] * f["sentence_encoder"])
    assert record["machine"]["cores"] >= 1 and record["machine"]["cpu"] and record["machine"]["load_average"] >= 0
    assert record["versions"]["keras"] == keras.__version__
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == record


def test_bf16_precision_is_recorded_and_the_policy_restored():
    record = bench.bench("cgan", batch=4, steps=1, warmup=1, precision="bf16", overrides=TINY_CGAN)
    assert record["precision"] == "bf16" and record["median_step_s"] > 0
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("kwargs, message", [({"steps": 0}, "--steps"), ({"warmup": -1}, "--warmup"),
                                             ({"batch": 0}, "--batch"), ({"precision": "fp16"}, "--precision")])
def test_bad_arguments_raise_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.bench("cgan", **kwargs)


def test_build_model_batch_and_overrides():
    assert bench.build_model("cgan", "fast", overrides={**TINY_CGAN, "batch_size": 8}).config.batch_size == 8
    model = bench.build_model("cgan", "fast", batch=4, overrides={**TINY_CGAN, "batch_size": 8})
    assert (model.config.batch_size, model.config.image_size) == (4, 16)
    stage2 = bench.build_model("stackgan", "fast")
    assert stage2.config.stage == 2 and stage2.stage1_generator.name == "G_0"
