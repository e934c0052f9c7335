"""Layers shared by several papers (each paper's own blocks live in its model file).

Every layer here uses `keras.ops` only, serialises with `get_config()`, and runs on
TensorFlow, JAX and PyTorch.
"""

import keras
from keras import layers, ops

from ganlib.backend import conv_transpose_by_phases, upconv_mode


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

    (the reparameterisation trick, so gradients reach $W$: `reparameterize`), regularised
    towards $\mathcal{N}(0, I)$ by `ganlib.losses.kl_divergence(mu, logvar)` (paper, "Conditioning Augmentation").
    $\epsilon$ is an argument, drawn by the model with the rest of its noise, so a
    sample repeats with its seed.

    Args:
        units: size of $\hat c$ ($N_g$: 128 in StackGAN and StackGAN++).
        activation: the nonlinearity after the fully connected layer, as the
            reference code has it: `"leaky_relu"` (StackGAN's TensorFlow code,
            slope 0.2), `"glu"` (StackGAN++: the layer outputs `4 * units` and a
            gated linear unit halves them), `"relu"` or `None`.
        kernel_initializer: of the fully connected layer (Keras' default glorot_uniform).

    Call arguments:
        embedding: `(B, D)` sentence embeddings.
        eps: `(B, units)` standard normal noise; None returns $\hat c = \mu$.

    Returns:
        `(c_hat, mu, logvar)`, each `(B, units)`.

    Example:
        >>> ca = ConditioningAugmentation(4)
        >>> c_hat, mu, logvar = ca(keras.ops.ones((2, 8)), keras.ops.zeros((2, 4)))
        >>> tuple(c_hat.shape), tuple(mu.shape)
        ((2, 4), (2, 4))
    """

    ACTIVATIONS = ("leaky_relu", "glu", "relu", None)

    def __init__(self, units, activation="leaky_relu", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation must be one of {self.ACTIVATIONS}, got {activation!r}")
        self.units, self.activation = int(units), activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        width = 4 * self.units if activation == "glu" else 2 * self.units
        self.fc = layers.Dense(width, kernel_initializer=self.kernel_initializer, name="fc")

    def build(self, input_shape):
        self.fc.build(input_shape)

    def call(self, embedding, eps=None):
        h = self.fc(embedding)
        if self.activation == "glu":
            h = h[:, : 2 * self.units] * ops.sigmoid(h[:, 2 * self.units:])
        elif self.activation == "leaky_relu":
            h = ops.leaky_relu(h, 0.2)
        elif self.activation == "relu":
            h = ops.relu(h)
        mu, logvar = h[:, : self.units], h[:, self.units:]
        return (mu if eps is None else reparameterize(mu, logvar, eps)), mu, logvar

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.units)
        return shape, shape, shape

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


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


@keras.saving.register_keras_serializable("ganlib")
class UpConv(layers.Layer):
    r"""DCGAN's up-sampling step: a 4x4 transposed convolution of stride 2, 'same' padding.

    The same function, kernel layout `(4, 4, filters, in)`, initialisation and
    saved weights as `keras.layers.Conv2DTranspose(filters, 4, strides=2,
    padding="same")` (Radford et al.; Reed et al.'s G), computed one of two ways:

    * `"transpose"`: the backend's transposed convolution;
    * `"phases"`: `ganlib.backend.conv_transpose_by_phases`, one ordinary 2x2
      convolution with `4 * filters` outputs (each output pixel $(2m + a, 2n + b)$
      takes four of the 16 kernel taps), interleaved (depth-to-space).

    Both give the same numbers within float round-off (tests/test_shared_layers.py).
    `mode="auto"` asks `ganlib.backend.upconv_mode()`: XLA's CPU transposed
    convolution (JAX) runs ~9x slower than its ordinary one, the other backends'
    are faster than the phases (`tests/benchmarks/upconv.py`). (On JAX's CPU,
    ganlib's backend patch computes `"transpose"` by the phases too.)

    Input shape:
        `(B, H, W, C)`.

    Output shape:
        `(B, 2H, 2W, filters)`.
    """

    def __init__(self, filters, activation=None, use_bias=True, mode="auto", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("auto", "transpose", "phases"):
            raise ValueError(f"mode must be 'auto', 'transpose' or 'phases', got {mode!r}")
        self.filters = int(filters)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.mode = mode

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(4, 4, self.filters, input_shape[-1]),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = (self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
                     if self.use_bias else None)

    def call(self, x):
        mode = upconv_mode() if self.mode == "auto" else self.mode
        y = (ops.conv_transpose(x, self.kernel, strides=2, padding="same") if mode == "transpose"
             else self._by_phases(x))
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)

    def _by_phases(self, x):
        return conv_transpose_by_phases(x, self.kernel, 2, "same")

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation), "mode": self.mode}


def word_attention(query, words, mask):
    r"""The word contexts of sub-regions (AttnGAN, section *Attentional Generative Network*).

    $$\beta_{j,i} = \frac{\exp(s_{j,i})}{\sum_k \exp(s_{j,k})},\quad s_{j,i} = q_j^\top e_i,
    \qquad c_j = \sum_i \beta_{j,i}\, e_i,$$

    the softmax over the real words only (`mask` 1; padding gets weight 0).

    Args:
        query: `(B, N, C)` sub-region features $q_j$ (the hidden state, one row per pixel).
        words: `(B, T, C)` word features $e_i$ already projected into the sub-regions' space.
        mask: `(B, T)`, 1 for a real word, 0 for padding.

    Returns:
        `(context (B, N, C), beta (B, N, T))`.
    """
    s = ops.matmul(query, ops.swapaxes(words, 1, 2))                            # (B, N, T)
    real = ops.cast(mask, "bool")[:, None, :]
    beta = ops.cast(ops.softmax(ops.where(real, ops.cast(s, "float32"), -1e9), axis=-1), query.dtype)
    return ops.matmul(beta, words), beta


@keras.saving.register_keras_serializable("ganlib")
class WordAttention(layers.Layer):
    r"""AttnGAN's attention model $F^{attn}_i$: a word-context vector for every image sub-region
    (Xu et al. 2018, section *Attentional Generative Network*).

    The word features $e \in \mathbb{R}^{D \times T}$ are projected into the image
    features' space by $U_i$ (a 1x1 convolution without bias, $e' = U_i e$); each
    sub-region $j$ of the hidden state $h$ (one pixel of the feature map) attends
    over the caption's real words (`word_attention`),

    $$\beta_{j,i} = \frac{\exp(s'_{j,i})}{\sum_{k} \exp(s'_{j,k})},\quad s'_{j,i} = h_j^\top e'_i,
    \qquad c_j = \sum_{i} \beta_{j,i}\, e'_i,$$

    the sums over the real words only (`mask` 1; padding gets weight 0). The reference
    (`GlobalAttentionGeneral`) fills the padding's logits with $-\infty$ before its softmax;
    a caption without any real word would give NaN there and a uniform weight here.

    Args:
        kernel_initializer: of $U_i$ (Keras' default glorot_uniform; AttnGAN: orthogonal).
        fn: `(query (B, N, C), words (B, T, C), mask (B, T)) -> (context, beta)` replaces
            `word_attention` (lesson 04 plugs the student's function in); not serialised.

    Input shape:
        `[h, words, mask]`: h `(B, H, W, C)`, words `(B, T, D)`, mask `(B, T)` (1 = real word).

    Output shape:
        `[context, attention]`: context `(B, H, W, C)` (the word contexts $c_j$),
        attention `(B, H, W, T)` ($\beta$: over T it sums to 1 at every sub-region).

    Example:
        >>> h, words = keras.ops.ones((2, 4, 4, 8)), keras.ops.ones((2, 5, 6))
        >>> c, beta = WordAttention()([h, words, keras.ops.ones((2, 5))])
        >>> tuple(c.shape), tuple(beta.shape)
        ((2, 4, 4, 8), (2, 4, 4, 5))
    """

    def __init__(self, kernel_initializer="glorot_uniform", fn=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.fn = fn

    def build(self, input_shape):
        h_shape, words_shape, _ = input_shape
        self.U = self.add_weight(shape=(words_shape[-1], h_shape[-1]), initializer=self.kernel_initializer,
                                 name="U")

    def call(self, inputs):
        h, words, mask = inputs
        shape = ops.shape(h)
        e = ops.matmul(ops.cast(words, h.dtype), ops.cast(self.U, h.dtype))          # (B, T, C): e' = U e
        query = ops.reshape(h, (shape[0], shape[1] * shape[2], shape[3]))          # (B, HW, C)
        context, beta = (self.fn or word_attention)(query, e, ops.cast(mask, h.dtype))
        return (ops.reshape(context, shape),
                ops.reshape(beta, (shape[0], shape[1], shape[2], ops.shape(words)[1])))

    def compute_output_shape(self, input_shape):
        h_shape, words_shape, _ = input_shape
        return tuple(h_shape), (*h_shape[:-1], words_shape[1])

    def get_config(self):
        return {**super().get_config(),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def sentence_attention(h, e, kernel):
    r"""MirrorGAN's sentence-level attention (GLAM, Qiao et al. 2019), as the reference computes it.

    With $f$ the visual features of a stage and $e = V \hat s_{ca}$ the sentence
    condition projected to $f$'s channels, the paper's
    $\mathrm{Att}^s = (V \hat s_{ca}) \circ \mathrm{softmax}(f \circ (V \hat s_{ca}))$
    (paper, Eq. (5), the number the reference's ``GLAttention.py`` gives it);
    the reference (``GLAttention.py``) puts a 1x1 convolution $U$ (no bias) between
    the product and the softmax, and its ``nn.Softmax()`` on a 4-D tensor runs over
    the channels:

    $$a = \mathrm{softmax}_{\mathrm{channels}}\big(U (f \circ e)\big),\qquad
    \mathrm{Att}^s = e \circ a$$

    Args:
        h: visual features $f$ ``(B, H, W, C)``.
        e: the projected sentence $V \hat s_{ca}$ ``(B, C)`` (the same at every pixel).
        kernel: $U$ as a matrix ``(C, C)`` (input channels x output channels).

    Returns:
        ``(Att^s, a)``, both ``(B, H, W, C)``.
    """
    e = ops.cast(e, h.dtype)[:, None, None, :]
    a = ops.softmax(ops.matmul(h * e, ops.cast(kernel, h.dtype)), axis=-1)
    return e * a, a


@keras.saving.register_keras_serializable("ganlib")
class SentenceAttention(layers.Layer):
    r"""GLAM's sentence-level attention (MirrorGAN, Qiao et al. 2019): :func:`sentence_attention`.

    Holds $V$ (a dense layer with bias, the reference's ``nn.Linear(100, idf)``
    on the CA condition) and $U$ (the 1x1 convolution without bias,
    ``conv_sentence_vis``). ``fn(h, e, kernel)`` replaces the computation (lesson 06
    plugs the student's function in); it is not serialised. ``kernel_initializer`` is that of
    $V$ and $U$ (Keras' default glorot_uniform; the MirrorGAN reference: orthogonal).

    Input shape:
        ``[h, s_ca]``: h ``(B, H, W, C)``, s_ca ``(B, N_c)``.

    Output shape:
        ``(Att^s, a)``, both ``(B, H, W, C)``.

    Example:
        >>> att, a = SentenceAttention()([keras.ops.ones((2, 4, 4, 8)), keras.ops.ones((2, 5))])
        >>> tuple(att.shape), float(keras.ops.sum(a[0, 0, 0]))
        ((2, 4, 4, 8), 1.0)
    """

    def __init__(self, kernel_initializer="glorot_uniform", fn=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.fn = fn

    def build(self, input_shape):
        h_shape, c_shape = input_shape
        channels = int(h_shape[-1])
        self.linear = layers.Dense(channels, kernel_initializer=self.kernel_initializer, name="linear")
        self.linear.build(c_shape)
        self.kernel = self.add_weight(shape=(channels, channels), initializer=self.kernel_initializer, name="kernel")

    def call(self, inputs):
        h, c = inputs
        return (self.fn or sentence_attention)(h, self.linear(c), self.kernel)

    def compute_output_shape(self, input_shape):
        return input_shape[0], input_shape[0]

    def get_config(self):
        return {**super().get_config(),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable("ganlib")
class ReflectionPadding2D(layers.Layer):
    r"""Pad the two spatial axes by mirroring, without repeating the edge (PyTorch's
    `nn.ReflectionPad2d`; pix2pix and pix2pixHD pad this way before their 7x7 and 3x3
    convolutions so that borders look like the image, not like zeros; HDGAN's generator
    before every 3x3 convolution).

    Args:
        padding: pixels added on each side of both spatial axes.

    Input shape:
        `(B, H, W, C)` with H, W > padding.

    Output shape:
        `(B, H + 2 * padding, W + 2 * padding, C)`.

    Example:
        >>> x = keras.ops.reshape(keras.ops.arange(3.0), (1, 1, 3, 1))
        >>> keras.ops.convert_to_numpy(ReflectionPadding2D(1)(keras.ops.tile(x, (1, 2, 1, 1))))[0, 0, :, 0]
        array([1., 0., 1., 2., 1.], dtype=float32)
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        grow = lambda n: None if n is None else n + 2 * self.padding  # noqa: E731
        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
