"""`ganlib.convert.load_pix2pixhd`: ganlib's pix2pixHD networks compute the reference's function.

`fixtures/pix2pixhd_reference.npz` was made by running NVIDIA/pix2pixHD's `models/networks.py`
(its mirror's HEAD, exported to a scratch folder; torchvision stubbed, as VGG19 is not used) on
PyTorch 2.13 CPU, at a reduced width, PyTorch's default initialisation, eval mode:

* `G_global/`: GlobalGenerator(input_nc 6, output_nc 3, ngf 4, n_downsampling 2, n_blocks 2);
* `G_local/`: LocalEnhancer(6, 3, ngf 2, n_downsample_global 2, n_blocks_global 1,
  n_local_enhancers 1, n_blocks_local 1);
* `D/`: MultiscaleDiscriminator(input_nc 9, ndf 4, n_layers 3, num_D 2, getIntermFeat=True);
* `E/`: Encoder(3, 3, ngf 4, n_downsampling 2) with its instance-wise average pooling;

with their inputs (`input/label`: 5 one-hot labels + a boundary channel, 2 x 16 x 32;
`input/pair`: that and an image; `input/image`, `input/instance`) and outputs (`output/D/i/j`:
the j-th block output of the discriminator that sees the input pooled i times).
"""

from pathlib import Path

import numpy as np
import pytest
from keras import ops

from ganlib import convert
from ganlib.models import pix2pixhd as P

FIXTURE = Path(__file__).parent / "fixtures" / "pix2pixhd_reference.npz"


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


def _part(ref, prefix):
    return {k[len(prefix) + 1:]: v for k, v in ref.items() if k.startswith(prefix + "/")}


def _config(**changes):
    base = dict(label_nc=5, instance_map=True, ngf=4, n_downsample_global=2, n_blocks_global=2, ndf=4, num_D=2,
                vgg_loss=False, image_size=(16, 32), nef=4, n_downsample_E=2, netG="global")
    return P.Config.fast().replace(**{**base, **changes})


def test_global_and_local_generators_match_the_reference(ref):
    model = convert.load_pix2pixhd(P.Pix2PixHD(_config()), generator_state=_part(ref, "G_global"))
    # predict: one compiled graph (JAX compiles every op of an eager call separately)
    np.testing.assert_allclose(model.G.predict(ref["input/label"], verbose=0), ref["output/G_global"], atol=1e-4)
    local = P.Pix2PixHD(_config(netG="local", ngf=2, n_blocks_global=1, n_blocks_local=1))
    convert.load_pix2pixhd(local, generator_state=_part(ref, "G_local"))
    np.testing.assert_allclose(local.G.predict(ref["input/label"], verbose=0), ref["output/G_local"], atol=1e-4)


def test_each_scale_discriminator_features_match_the_reference(ref):
    model = convert.load_pix2pixhd(P.Pix2PixHD(_config()), discriminator_state=_part(ref, "D"))
    pyramid = P.image_pyramid(ops.convert_to_tensor(ref["input/pair"]), 2)
    for i, (D, pair) in enumerate(zip(model.discriminators, pyramid)):
        outs = D.predict(ops.convert_to_numpy(pair), verbose=0)
        assert len(outs) == 5
        for j, o in enumerate(outs):
            np.testing.assert_allclose(ops.convert_to_numpy(o), ref[f"output/D/{i}/{j}"], atol=1e-4)


def test_encoder_with_instance_pooling_matches_the_reference(ref):
    model = convert.load_pix2pixhd(P.Pix2PixHD(_config(instance_feat=True)), encoder_state=_part(ref, "E"))
    feat = model.encode_features(ref["input/image"], ref["input/instance"])
    np.testing.assert_allclose(feat, ref["output/E"], atol=1e-4)


def test_mismatched_state_dicts_are_refused_by_name(ref):
    model = P.Pix2PixHD(_config(n_blocks_global=3))
    with pytest.raises(ValueError, match="missing keys"):
        convert.load_pix2pixhd(model, generator_state=_part(ref, "G_global"))
    with pytest.raises(ValueError, match="no encoder"):
        convert.load_pix2pixhd(model, encoder_state=_part(ref, "E"))
