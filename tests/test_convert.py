"""`ganlib.convert`: ganlib's StackGAN++ networks compute the reference's function at its weights.

`fixtures/stackganv2_reference.npz` was made by running hanzhanggit/StackGAN-v2's
`code/model.py` (commit 6228e34) on PyTorch 2.13 in a scratch folder, at a reduced width
(GF_DIM 4, DF_DIM 2, Z_DIM 8, EMBEDDING_DIM 8, TEXT.DIMENSION 16, R_NUM 2, 3 branches
64/128/256; its `config` entry): the state dicts of G_NET and D_NET64/128/256 under `G/`,
`D64/`, ... (initialised by the reference's `weights_init`, BatchNorm running statistics from
one calibration pass and then perturbed, every weight rounded to float16 and stored as such),
G's inputs `z`, `phi_t` and the CA noise `eps` (the reference's reparametrisation patched to
take it), every branch's image (all of the 64-px one; a fixed sample of 1024 pixels and the
per-channel means of the others), mu, logvar, and each D's logits (before its sigmoid) for
the images `hash_images` makes and the condition mu, all in eval mode. `unconditional_shapes`
lists the keys and shapes of the unconditional networks at the same width.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from ganlib import convert
from ganlib.models import stackganpp as sgpp

FIXTURE = Path(__file__).parent / "fixtures" / "stackganv2_reference.npz"
SIZES = (64, 128, 256)


def hash_images(batch, size):
    """The D inputs of the fixture: integer-hash pixels k / 127.5 - 1, k in 0..255 (exact in float32),
    (B, S, S, 3)."""
    b, c, y, x = np.meshgrid(np.arange(batch), np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    h = (b * 7919 + c * 104729 + y * 1299709 + x * 15485863 + size) % 2147483647
    h = (h * 48271) % 2147483647
    return ((h % 256).astype(np.float32) / 127.5 - 1.0).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as f:
        data = {k: f[k] for k in f.files}
    ref = json.loads(str(data["config"]))
    cfg = sgpp.Config.paper().replace(image_size=64 * 2 ** (ref["BRANCH_NUM"] - 1), branches=ref["BRANCH_NUM"],
                                      ngf=ref["GF_DIM"], ndf=ref["DF_DIM"], z_dim=ref["Z_DIM"],
                                      ca_dim=ref["EMBEDDING_DIM"], embed_dim=ref["TEXT_DIMENSION"],
                                      num_residual=ref["R_NUM"], text_encoder="char-cnn-rnn")

    def state(prefix):
        return {k[len(prefix) + 1:]: v for k, v in data.items() if k.startswith(prefix + "/")}

    return {"cfg": cfg, "data": data, "G": state("G"), "D": [state(f"D{s}") for s in SIZES],
            "unconditional": json.loads(str(data["unconditional_shapes"]))}


@pytest.fixture(scope="module")
def loaded(reference):
    cfg = reference["cfg"]
    networks = (sgpp.build_generator(cfg), sgpp.build_discriminators(cfg))
    convert.load_stackganv2(networks, reference["G"], reference["D"])
    return networks


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def test_generator_reproduces_every_branch_mu_and_logvar(reference, loaded):
    G, _ = loaded
    d = reference["data"]
    outs = [ops.convert_to_numpy(o) for o in G([d["input/z"], d["input/phi_t"], d["input/eps"]], training=False)]
    images, mu, logvar = outs[:3], outs[3], outs[4]
    assert max_abs(mu, d["output/mu"]) < 1e-4 and max_abs(logvar, d["output/logvar"]) < 1e-4
    assert float(np.std(d["output/image_64"])) > 0.1   # the check is not between near-constant images
    for size, image in zip(SIZES, images):
        assert image.shape == (2, size, size, 3)
        expected = d[f"output/image_{size}"]
        if size == 64:
            got = image
        else:
            got = image.reshape(2, size * size, 3)[:, d[f"output/image_{size}_pixels"]]
        assert max_abs(got, expected) < 1e-4, size
        assert max_abs(image.astype(np.float64).mean(axis=(1, 2)), d[f"output/image_{size}_mean"]) < 1e-5, size


def test_each_discriminator_reproduces_both_logits(reference, loaded):
    _, Ds = loaded
    d = reference["data"]
    for size, D in zip(SIZES, Ds):
        cond, uncond = (ops.convert_to_numpy(o) for o in D([hash_images(2, size), d["output/d_condition"]],
                                                           training=False))
        assert max_abs(cond, d[f"output/D{size}_cond_logit"]) < 1e-4, size
        assert max_abs(uncond, d[f"output/D{size}_uncond_logit"]) < 1e-4, size
        # the reference's outputs are these logits through its sigmoid
        np.testing.assert_allclose(1 / (1 + np.exp(-d[f"output/D{size}_cond_logit"])), d[f"output/D{size}_cond_prob"],
                                   atol=1e-6)


def test_every_weight_is_the_reference_array_rearranged(reference, loaded):
    G, Ds = loaded
    g = reference["G"]
    np.testing.assert_array_equal(ops.convert_to_numpy(G.get_layer("G0_conv").kernel),
                                  g["img_net1.img.0.weight"].astype(np.float32).transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(ops.convert_to_numpy(G.get_layer("F_ca").fc.kernel), g["ca_net.fc.weight"].T)
    # F_0: ganlib's output (half, y, x, c) is the reference's (half, c, y, x)
    ours = ops.convert_to_numpy(G.get_layer("F0_fc_bn").moving_mean).reshape(2, 4, 4, -1)
    np.testing.assert_array_equal(ours, g["h_net1.fc.1.running_mean"].reshape(2, -1, 4, 4).transpose(0, 2, 3, 1))
    # joining convolutions: the reference's input channels are [c (8), h], ganlib's [h, c]
    joint = ops.convert_to_numpy(Ds[0].get_layer("joint_conv").kernel)
    theirs = reference["D"][0]["jointConv.0.weight"].astype(np.float32).transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(joint[:, :, -8:], theirs[:, :, :8])
    np.testing.assert_array_equal(joint[:, :, :-8], theirs[:, :, 8:])


def test_paper_networks_with_1024d_text_have_the_reference_parameter_counts():
    """G_NET 21,239,696 (F_ca 524,800) and D_NET64/128/256 as PyTorch counts them (birds_3stages.yml)."""
    counts = sgpp.param_counts(sgpp.Config.paper())
    assert counts == {"G": 21_239_696, "F_ca": 524_800, "D_64": 5_723_906, "D_128": 18_834_178,
                      "D_256": 71_269_122}


def test_unconditional_networks_take_every_reference_key(reference):
    cfg = reference["cfg"].unconditional()
    G, Ds = sgpp.build_generator(cfg), sgpp.build_discriminators(cfg)
    rng = np.random.default_rng(0)
    shapes = reference["unconditional"]
    states = {name: {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes[name].items()}
              for name in ("G", "D64", "D128", "D256")}
    convert.load_stackganv2((G, Ds), states["G"], [states[f"D{s}"] for s in SIZES])
    # the unconditional D's one head is the reference's `logits`, on the image code
    np.testing.assert_array_equal(ops.convert_to_numpy(Ds[2].get_layer("uncond_conv").bias), states["D256"]["logits.0.bias"])
    # its F_i join z (8) before h in the reference
    joint = ops.convert_to_numpy(G.get_layer("F1_joint_conv").kernel)
    np.testing.assert_array_equal(joint[:, :, -8:], states["G"]["h_net2.jointConv.0.weight"][:, :8].transpose(2, 3, 1, 0))


def test_checkpoint_files_with_the_data_parallel_prefix_load(reference, tmp_path):
    import torch   # a dependency of ganlib[torch]; .pth files need it

    cfg = reference["cfg"]
    path = tmp_path / "netG_1.pth"
    torch.save({f"module.{k}": torch.from_numpy(np.asarray(v, np.float32 if v.dtype == np.float16 else v.dtype))
                for k, v in reference["G"].items()}, path)
    G = sgpp.build_generator(cfg)
    convert.load_stackganv2((G, None), str(path))
    np.testing.assert_array_equal(ops.convert_to_numpy(G.get_layer("F1_up_conv").kernel),
                                  reference["G"]["h_net2.upsample.1.weight"].astype(np.float32).transpose(2, 3, 1, 0))
    npz = tmp_path / "netD0.npz"
    np.savez(npz, **reference["D"][0])
    D = sgpp.build_discriminator(cfg, 64)
    convert.load_stackganv2((None, [D]), discriminator_states=[npz])
    np.testing.assert_array_equal(ops.convert_to_numpy(D.get_layer("cond_conv").bias), reference["D"][0]["logits.0.bias"])


def test_mismatches_raise_errors_naming_the_key_and_shapes(reference):
    cfg = reference["cfg"]
    D = sgpp.build_discriminator(cfg, 64)
    before = ops.convert_to_numpy(D.get_layer("down0").kernel).copy()
    bad = dict(reference["D"][0], **{"jointConv.0.weight": np.zeros((16, 20, 3, 3), "float32")})
    with pytest.raises(ValueError, match=r"jointConv\.0\.weight: expected shape \(16, 24, 3, 3\).*got \(16, 20, 3, 3\)"):
        convert.load_stackganv2((None, [D]), discriminator_states=[bad])
    np.testing.assert_array_equal(ops.convert_to_numpy(D.get_layer("down0").kernel), before)   # nothing assigned
    extra = dict(reference["D"][0], **{"logits.1.weight": np.zeros(1, "float32")})
    with pytest.raises(ValueError, match=r"unexpected keys \['logits\.1\.weight'\]"):
        convert.load_stackganv2((None, [D]), discriminator_states=[extra])
    missing = {k: v for k, v in reference["D"][0].items() if k != "uncond_logits.0.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['uncond_logits\.0\.bias'\]"):
        convert.load_stackganv2((None, [D]), discriminator_states=[missing])
    with pytest.raises(ValueError, match="discriminator_states: one per discriminator"):
        convert.load_stackganv2((None, [D]), discriminator_states=[None, None])
    with pytest.raises(ValueError, match="D_NET64 is its smallest"):
        convert.load_stackganv2((None, [sgpp.build_discriminator(cfg, 32)]), discriminator_states=[{}])
    with pytest.raises(FileNotFoundError, match="generator_state: no file"):
        convert.load_stackganv2((sgpp.build_generator(cfg), None), "/nonexistent/netG.pth")


def test_initialisers_are_the_references(reference):
    """weights_init: orthogonal kernels (gain 1), BatchNorm scale ~ N(1, 0.02) and offset 0; the logit
    convolutions' biases are PyTorch's default U(+-1/sqrt(fan_in))."""
    keras.utils.set_random_seed(0)
    cfg = reference["cfg"].replace(ngf=8, ndf=8)
    G, D = sgpp.build_generator(cfg), sgpp.build_discriminator(cfg, 64)
    for kernel in (G.get_layer("F0_up0_conv").kernel, G.get_layer("F0_fc").kernel, G.get_layer("F_ca").fc.kernel,
                   D.get_layer("down3").kernel, D.get_layer("joint_conv").kernel):
        w = ops.convert_to_numpy(kernel).reshape(-1, kernel.shape[-1])
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-4, err_msg=kernel.path)
    gammas = np.concatenate([ops.convert_to_numpy(l.gamma) for l in G.layers + D.layers
                             if isinstance(l, keras.layers.BatchNormalization)])
    assert abs(gammas.mean() - 1) < 0.005 and 0.015 < gammas.std() < 0.025, (gammas.mean(), gammas.std())
    assert all(np.all(ops.convert_to_numpy(l.beta) == 0) for l in G.layers if isinstance(l, keras.layers.BatchNormalization))
    bias = ops.convert_to_numpy(D.get_layer("cond_conv").bias)
    assert bias.shape == (1,) and abs(bias[0]) <= 1 / np.sqrt(16 * 8 * cfg.ndf)
    np.testing.assert_array_equal(ops.convert_to_numpy(G.get_layer("F_ca").fc.bias), 0)


def test_a_model_gets_the_weights_in_its_generator_and_its_average(reference):
    cfg = reference["cfg"].replace(ema_decay=0.999)
    model = sgpp.StackGANpp(cfg)
    assert convert.load_stackganv2(model, reference["G"], reference["D"]) is model
    expected = reference["G"]["h_net1.upsample1.1.weight"].astype(np.float32).transpose(2, 3, 1, 0)
    for G in (model.generator, model.inference_generator()):   # the reference's netG is its averaged G
        np.testing.assert_array_equal(ops.convert_to_numpy(G.get_layer("F0_up0_conv").kernel), expected)
    np.testing.assert_array_equal(ops.convert_to_numpy(model.discriminators[1].get_layer("reduce0_bn").moving_variance),
                                  reference["D"][1]["img_code_s32_1.1.running_var"].astype(np.float32))
