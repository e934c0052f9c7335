"""Mixed precision: every model trains under Keras' "mixed_bfloat16" policy with losses close to float32's.

Both runs start from the same weights (each model seeds its initialisers) and draw the
same noise, on the same synthetic batch (`ganlib.bench.synthetic_batch`); only the
computation dtype differs. Measured on CPU (2 shared cores), 3 steps at batch 16 (these
configs), the largest relative difference of a logged d_loss / g_loss (printed with -s) was
0.78% (TensorFlow), 0.94% (JAX), 0.52% (PyTorch), each from StackGAN Stage-II; bfloat16
keeps 8 significant bits (~0.4% per rounding). At batch 8 they grow (up to 1.8%, PyTorch):
BatchNorm over fewer images amplifies the rounding. On a CPU with native bfloat16
(AVX512_BF16), TensorFlow's oneDNN kernels differ more: AttnGAN's g_loss by 6.7% (3.217 vs
3.450 at the first step; 0.2% with TF_ENABLE_ONEDNN_OPTS=0 on the same machine), since Adam's
first update moves every weight by about the learning rate whatever the gradient's size, so a
gradient near zero that changes sign under rounding moves its weight the other way. RTOL = 10%
leaves room for such machines while a NaN/overflow or a dtype bug (a loss off by a factor) fails.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ganlib import bench
from ganlib.models import MODELS

RTOL = 0.10
STEPS = 3

# Small configs of every model (the shapes tests/test_<model>.py use, at batch 16).
TINY = {
    "cgan": dict(image_size=16, z_dim=16, proj_dim=32, ngf=16, ndf=16, batch_size=16, ema_decay=0.0,
                 lr_decay_every=0),
    "stackgan": dict(stage1_size=16, stage2_size=32, z_dim=16, ca_dim=16, ngf=16, ndf=16, res_blocks=1,
                     batch_size=16, ema_decay=0.0),
    "stackganpp": dict(image_size=32, branches=2, z_dim=16, ca_dim=32, ngf=16, ndf=16, num_residual=1,
                       batch_size=16, ema_decay=0.0),
    "attngan": dict(image_size=32, branches=2, z_dim=16, ca_dim=16, ngf=16, ndf=8, num_residual=1,
                    batch_size=16, ema_decay=0.0),    # with the shipped DAMSM (its text width)
    "hdgan": dict(side_outputs=(16, 32), z_dim=16, ca_dim=32, gf_dim=8, df_dim=8, reduce_at=(8, 16, 32),
                  batch_size=16, ema_decay=0.0),
    "mirrorgan": dict(image_size=32, branches=2, z_dim=16, ca_dim=16, ngf=16, ndf=8, num_residual=1,
                      batch_size=16, ema_decay=0.0),  # with the shipped DAMSM and STREAM
    "pix2pixhd": dict(netG="global", image_size=(16, 32), ngf=8, n_downsample_global=2, n_blocks_global=1,
                      ndf=8, num_D=2, batch_size=4),
}


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def train_losses(name, policy):
    """d_loss and g_loss of each of STEPS training steps of `name`'s tiny model under `policy`."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)   # the same initial weights under both policies
        model = bench.build_model(name, "fast", overrides=TINY[name])
        model.compile()
        batch = bench.synthetic_batch(model, model.config.batch_size)
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, epochs=STEPS,
                            verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model, {key: np.asarray(history[key], np.float64) for key in ("d_loss", "g_loss")}


def test_every_model_has_a_small_config():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_bfloat16_training_losses_are_finite_and_close_to_float32(name):
    _, full = train_losses(name, "float32")
    model, mixed = train_losses(name, "mixed_bfloat16")
    networks = [model.generator, *model.discriminators]
    assert all(net.dtype_policy.name == "mixed_bfloat16" for net in networks)
    assert all(w.dtype == "float32" for net in networks for w in net.weights)   # float32 master weights
    assert keras.mixed_precision.global_policy().name == "float32"
    for key in ("d_loss", "g_loss"):
        print(f"{name} {key}: largest relative difference {np.max(np.abs(mixed[key] / full[key] - 1)):.4f}")
        assert np.all(np.isfinite(mixed[key])), (key, mixed[key])
        np.testing.assert_allclose(mixed[key], full[key], rtol=RTOL, err_msg=key)
    # bfloat16 did run: the losses are not float32's to float32 precision.
    assert max(np.max(np.abs(mixed[k] - full[k])) for k in mixed) > 1e-5
