"""`ganlib.convert.load_hdgan`: ganlib's HDGAN networks compute the reference's function at its weights.

`fixtures/hdgan_reference.npz` was made by running ypxie/HDGan's `HDGan/models/hd_networks.py`
on PyTorch 2.13 (CPU) in a scratch folder, at a reduced width: `Generator(sent_dim=24,
noise_dim=8, emb_dim=6, hid_dim=4, num_resblock=1)` and `Discriminator(num_chan=3, hid_dim=4,
sent_dim=24, emb_dim=6)`, side outputs 64/128/256, seeded with `torch.manual_seed(0)` and
initialised by the reference's `weights_init`, BatchNorm running statistics and offsets set at
random, both in eval mode. Two patches, for the CPU and the width: the CA's noise `eps` is
given (the reference draws it on CUDA), and `ImageDown`'s first widths, fixed at 128 / 64 / 32
(64 / 128 / 256 px) in the reference, are its `out_dim` / 4, / 8, / 16 (the same numbers at the
paper's out_dim 512; the patched module still has the paper's 25,693,606 parameters). Stored:
both state dicts (`G.*`, `D.*`), the inputs `e`, `z`, `eps`, G's side outputs (64 and 128 px
whole; the 256 px one as its 96x96 corner and its channel means), mu and log sigma, and each
scale's pair score and local patch map for G's side output of that scale.
"""

from pathlib import Path

import numpy as np
import pytest
from keras import ops

from ganlib import convert
from ganlib.models import hdgan

FIXTURE = Path(__file__).parent / "fixtures" / "hdgan_reference.npz"
CONFIG = hdgan.Config.paper().replace(embed_dim=24, z_dim=8, ca_dim=6, gf_dim=4, df_dim=4)


@pytest.fixture(scope="module")
def loaded():
    f = dict(np.load(FIXTURE))
    model = hdgan.HDGAN(CONFIG)
    convert.load_hdgan(model, {k[2:]: v for k, v in f.items() if k.startswith("G.")},
                       {k[2:]: v for k, v in f.items() if k.startswith("D.")})
    return model, f


def test_generator_side_outputs_equal_the_reference(loaded):
    model, f = loaded
    outs = [ops.convert_to_numpy(o) for o in model.generator([f["z"], f["e"], f["eps"]], training=False)]
    nchw = lambda x: x.transpose(0, 3, 1, 2)  # noqa: E731
    np.testing.assert_allclose(nchw(outs[0]), f["g_64"], atol=1e-4)
    np.testing.assert_allclose(nchw(outs[1]), f["g_128"], atol=1e-4)
    np.testing.assert_allclose(nchw(outs[2])[:, :, :96, :96], f["g_256_corner"], atol=1e-4)
    np.testing.assert_allclose(outs[2].mean(axis=(1, 2)), f["g_256_mean"], atol=1e-4)
    np.testing.assert_allclose(outs[3], f["g_mu"], atol=1e-4)
    np.testing.assert_allclose(outs[4], 2 * f["g_log_sigma"], atol=1e-4)   # logvar = 2 log sigma


def test_discriminator_branches_equal_the_reference(loaded):
    model, f = loaded
    images = model.generator([f["z"], f["e"], f["eps"]], training=False)[:3]
    for D, x, s in zip(model.discriminators, images, (64, 128, 256)):
        pair, local = (ops.convert_to_numpy(o) for o in D([x, ops.convert_to_tensor(f["e"])], training=False))
        np.testing.assert_allclose(pair, f[f"d_{s}_pair"][:, 0], atol=1e-4)
        np.testing.assert_allclose(local.transpose(0, 3, 1, 2), f[f"d_{s}_local"], atol=1e-4)


def test_a_state_dict_of_another_width_is_refused_naming_the_keys():
    f = dict(np.load(FIXTURE))
    state = {k[2:]: v for k, v in f.items() if k.startswith("G.")}
    model = hdgan.HDGAN(CONFIG.replace(gf_dim=8, adversarial_at=(256,)))
    with pytest.raises(ValueError, match=r"vec_to_tensor.out.0.weight: expected shape \(1024, 14\).*got \(512, 14\)"):
        convert.load_hdgan(model, state)
    with pytest.raises(ValueError, match=r"keys for no discriminator .*\(256,\).*_128"):
        convert.load_hdgan(model, None, {k[2:]: v for k, v in f.items() if k.startswith("D.")})
