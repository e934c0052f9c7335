"""Layers shared by several papers (each paper's own blocks live in its model file).

Every layer here uses `keras.ops` only, serialises with `get_config()`, and runs on
TensorFlow, JAX and PyTorch.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable("ganlib")
class ReplicateConcat(layers.Layer):
    r"""Condition a feature map on a vector by spatial replication and concatenation.

    Reed et al. (2016, Sec. 4.1): "we replicate [the compressed text embedding]
    spatially and perform a depth concatenation" with the discriminator's 4x4
    feature map; StackGAN does the same in D and in Stage-II's G.

    $$\mathrm{out}[b, i, j] = [\,h[b, i, j] \,;\, c[b]\,]$$

    Input shape:
        `[h, c]`: h `(B, H, W, C)`, c `(B, D)`.

    Output shape:
        `(B, H, W, C + D)`.

    Example:
        >>> out = ReplicateConcat()([keras.ops.zeros((2, 4, 4, 8)), keras.ops.ones((2, 3))])
        >>> tuple(out.shape)
        (2, 4, 4, 11)
    """

    def call(self, inputs):
        h, c = inputs
        shape = ops.shape(h)
        c = ops.cast(c, h.dtype)
        tiled = ops.broadcast_to(c[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(c)[-1]))
        return ops.concatenate([h, tiled], axis=-1)

    def compute_output_shape(self, input_shape):
        h, c = input_shape
        channels = None if h[-1] is None or c[-1] is None else h[-1] + c[-1]
        return (*h[:-1], channels)


@keras.saving.register_keras_serializable("ganlib")
class ConditioningAugmentation(layers.Layer):
    r"""Conditioning augmentation $F_{ca}$ (StackGAN, Zhang et al. 2017, Sec. 3.2).

    A sentence embedding $\varphi_t$ is high-dimensional and the training set has
    few captions, so the map text -> condition is discontinuous where G needs it
    smooth. StackGAN instead draws the condition from a Gaussian whose mean and
    diagonal covariance are functions of the embedding:

    $$[\mu(\varphi_t) ; \log\sigma^2(\varphi_t)] = \mathrm{act}(W \varphi_t + b),\qquad
    \hat c = \mu + \sigma \odot \epsilon,\quad \epsilon \sim \mathcal{N}(0, I)$$

    (the reparameterisation trick, so gradients reach $W$), regularised towards
    $\mathcal{N}(0, I)$ by `ganlib.losses.kl_divergence(mu, logvar)` (paper Eq. 2).

    Args:
        units: size of $\hat c$ ($N_g$: 128 in StackGAN and StackGAN++).
        activation: the nonlinearity after the fully connected layer, as the
            reference code has it: `"leaky_relu"` (StackGAN's TensorFlow code,
            slope 0.2), `"glu"` (StackGAN++: the layer outputs `4 * units` and a
            gated linear unit halves them), `"relu"` or `None`.
        seed: seed of $\epsilon$'s generator.

    Call arguments:
        embedding: `(B, D)` sentence embeddings.
        sample: draw $\epsilon$ (default); `False` returns $\hat c = \mu$.

    Returns:
        `(c_hat, mu, logvar)`, each `(B, units)`.

    Example:
        >>> ca = ConditioningAugmentation(4, seed=0)
        >>> c_hat, mu, logvar = ca(keras.ops.ones((2, 8)))
        >>> tuple(c_hat.shape), tuple(mu.shape)
        ((2, 4), (2, 4))
    """

    ACTIVATIONS = ("leaky_relu", "glu", "relu", None)

    def __init__(self, units, activation="leaky_relu", seed=None, **kwargs):
        super().__init__(**kwargs)
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation must be one of {self.ACTIVATIONS}, got {activation!r}")
        self.units, self.activation, self.seed = int(units), activation, seed
        width = 4 * self.units if activation == "glu" else 2 * self.units
        self.fc = layers.Dense(width, name="fc")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.fc.build(input_shape)

    def call(self, embedding, sample=True):
        h = self.fc(embedding)
        if self.activation == "glu":
            h = h[:, : 2 * self.units] * ops.sigmoid(h[:, 2 * self.units:])
        elif self.activation == "leaky_relu":
            h = ops.leaky_relu(h, 0.2)
        elif self.activation == "relu":
            h = ops.relu(h)
        mu, logvar = h[:, : self.units], h[:, self.units:]
        if not sample:
            return mu, mu, logvar
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + ops.exp(0.5 * logvar) * eps, mu, logvar

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.units)
        return shape, shape, shape

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "seed": self.seed}


@keras.saving.register_keras_serializable("ganlib")
class GLU(layers.Layer):
    r"""Gated linear unit over the channels (Dauphin et al. 2017), as StackGAN++ and AttnGAN use it.

    $$\mathrm{GLU}([a ; b]) = a \odot \sigma(b)$$

    with $a$ the first and $b$ the second half of the last axis: the output has half
    the channels. StackGAN++'s generator uses it after every convolution and after
    conditioning augmentation's fully connected layer.

    Input shape:
        `(..., 2C)`.

    Output shape:
        `(..., C)`.

    Example:
        >>> tuple(GLU()(keras.ops.zeros((2, 4, 4, 6))).shape)
        (2, 4, 4, 3)
    """

    def call(self, x):
        a, b = ops.split(x, 2, axis=-1)
        return a * ops.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] // 2)


def reparameterize(mu, logvar, eps):
    r"""$\hat c = \mu + \sigma \odot \epsilon$ with $\sigma = \exp(\tfrac12 \log\sigma^2)$ (StackGAN, Sec. 3.2)."""
    mu, logvar, eps = (ops.convert_to_tensor(x) for x in (mu, logvar, eps))
    return mu + ops.exp(0.5 * logvar) * eps


@keras.saving.register_keras_serializable("ganlib")
class Reparameterize(layers.Layer):
    r"""The sampling step of $F_{ca}$: $\hat c = \mu + \sigma \odot \epsilon$ (StackGAN, Sec. 3.2).

    $\epsilon$ is an input (drawn by the model's `sample_noise`, or from a seed by
    `generate`), so generation is reproducible. `fn(mu, logvar, eps)` replaces the
    computation (lesson 02 plugs the student's function in); it is not serialised.

    Input shape:
        `[mu, logvar, eps]`, each `(B, N_g)`.

    Output shape:
        `(B, N_g)`.
    """

    def __init__(self, fn=None, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def call(self, inputs):
        mu, logvar, eps = inputs
        return (self.fn or reparameterize)(mu, logvar, eps)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
