"""A tiny GAN on 2-D points, used to test `ganlib.training` on every backend."""

import keras
import numpy as np
from keras import layers, ops

from ganlib.losses import bce
from ganlib.training import AdversarialModel


@keras.saving.register_keras_serializable("ganlib_tests")
class ToyGAN(AdversarialModel):
    """G: z (4) -> Dense-BN-ReLU -> point (2); D_k: point -> Dense-ReLU-Dense -> logit."""

    def __init__(self, num_discriminators=2, ema_decay=None, seed=0, lr=1e-2, **kwargs):
        z = keras.Input((4,))
        h = layers.Dense(16)(z)
        h = layers.BatchNormalization(momentum=0.9)(h)
        x = layers.Dense(2)(layers.ReLU()(h))
        generator = keras.Model(z, x, name="G")
        discriminators = []
        for k in range(num_discriminators):
            p = keras.Input((2,))
            logit = layers.Dense(1)(layers.Dense(16, activation="relu")(p))
            discriminators.append(keras.Model(p, logit, name=f"D{k}"))
        super().__init__(generator, discriminators, ema_decay=ema_decay, seed=seed, **kwargs)
        self.num_discriminators = num_discriminators
        self.lr = lr
        self.seed = seed

    def sample_noise(self, batch):
        return {"z": keras.random.normal((ops.shape(batch["x"])[0], 4), seed=self.noise_seed)}

    def generator_outputs(self, batch, noise, training=False):
        return {"fake": self.generator(noise["z"], training=training)}

    def discriminator_loss(self, batch, fakes, training=True):
        losses = [bce(d(batch["x"], training=training), 1.0) + bce(d(fakes["fake"], training=training), 0.0)
                  for d in self.discriminators]
        return sum(losses), {"d0_loss": losses[0]}

    def generator_loss(self, batch, fakes, training=True):
        return sum(bce(d(fakes["fake"], training=training), 1.0) for d in self.discriminators), {}

    def default_optimizers(self):
        adam = lambda: keras.optimizers.Adam(self.lr, beta_1=0.5)
        return adam(), [adam() for _ in self.discriminators]

    def get_config(self):
        return {"num_discriminators": self.num_discriminators, "ema_decay": self.ema_decay,
                "seed": self.seed, "lr": self.lr}


DATA_MEAN, DATA_STD = np.array([2.0, -1.0]), np.array([0.5, 0.25])


def toy_data(n=256, batch_size=32, seed=0):
    """Points from N(DATA_MEAN, diag(DATA_STD^2)), as a repeating tf.data pipeline."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = (DATA_MEAN + DATA_STD * rng.standard_normal((n, 2))).astype("float32")
    return tf.data.Dataset.from_tensor_slices({"x": x}).batch(batch_size, drop_remainder=True).repeat(), x
