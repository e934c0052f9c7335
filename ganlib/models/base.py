"""What every paper's model shares: a dataclass config, Adam from the config, and
text conditioning by the frozen sentence encoder.

Each paper's file subclasses `PaperGAN`, sets `config_class` to its `Config`,
builds its networks and writes its losses; the text side (tokeniser, phi(t),
`generate(captions)`) is here once.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from ganlib.training import AdversarialModel


class PaperGAN(AdversarialModel):
    """An `AdversarialModel` configured by a paper's `Config` dataclass.

    Args:
        config: the paper's `Config` (its `lr`, `beta1`, `beta2`, `ema_decay`,
            `seed`, `max_words`, `embed_dim` are used here).
        generator, discriminators, auxiliaries: as `AdversarialModel`.
        text: prepend the frozen SynthBirds sentence encoder to the auxiliaries
            (`self.sentence_encoder`), for `embed`, `encode_text` and `generate`.

    Subclasses implement `generate_from_embeddings(embeddings, z=None, seed=0)`.
    """

    config_class = None

    def __init__(self, config, generator, discriminators, auxiliaries=(), text=True, **kwargs):
        auxiliaries = list(auxiliaries)
        if text:
            from ganlib.encoders import load_sentence_encoder

            auxiliaries.insert(0, load_sentence_encoder())
        super().__init__(generator, discriminators, auxiliaries=auxiliaries,
                         ema_decay=config.ema_decay or None, seed=config.seed, **kwargs)
        self.config = config
        self.text = text
        self._tokenizer = None

    @classmethod
    def resolve_config(cls, config):
        """A `Config` from a `Config`, a dict of its fields or None (the paper preset)."""
        if isinstance(config, cls.config_class):
            return config
        return cls.config_class(**config) if config else cls.config_class.paper()

    def learning_rate(self):
        """The config's `lr`, halved every `lr_decay_every` steps when that field is > 0
        (the reference codes' "halve the learning rate every N epochs")."""
        cfg = self.config
        every = getattr(cfg, "lr_decay_every", 0)
        if every:
            return keras.optimizers.schedules.ExponentialDecay(cfg.lr, every, 0.5, staircase=True)
        return cfg.lr

    def default_optimizers(self):
        """Adam(learning_rate(), beta1, beta2) for G and for each discriminator."""
        cfg = self.config
        adam = lambda: keras.optimizers.Adam(self.learning_rate(), beta_1=cfg.beta1, beta_2=cfg.beta2)  # noqa: E731
        return adam(), [adam() for _ in self.discriminators]

    def get_config(self):
        return {"config": dataclasses.asdict(self.config)}

    @classmethod
    def from_config(cls, config):
        return cls(cls.config_class(**config["config"]))

    # ------------------------------------------------------------------ text
    @property
    def sentence_encoder(self):
        if not self.text:
            raise AttributeError(f"{type(self).__name__} is not text-conditional")
        return self.auxiliaries[0]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from ganlib.text import Tokenizer

            self._tokenizer = Tokenizer.default(max_words=self.config.max_words)
        return self._tokenizer

    def embed(self, tokens):
        r"""phi(t): the frozen sentence encoder's embedding, rescaled to unit RMS per dimension.

        The encoder was trained with cosine similarities, so only the direction of
        its output means anything, and its raw norm is small (about 0.2 for 256
        dimensions): fed as is, the text would reach G and D about a hundred times
        weaker than the noise. $\varphi(t) = \sqrt{d}\, e / \lVert e \rVert$.

        Tokens of shape (B, k, words), k captions of each image (the pipeline's
        ``captions=k``), give the mean of their k embeddings, rescaled the same way:
        Reed et al.'s and StackGAN's reference code train on such averages (k = 4).
        """
        shape = ops.shape(tokens)
        if len(shape) == 3:
            e = self.embed(ops.reshape(tokens, (-1, shape[2])))
            e = ops.mean(ops.reshape(e, (shape[0], shape[1], -1)), axis=1)
        else:
            e = ops.stop_gradient(self.sentence_encoder(tokens, training=False))
        return ops.normalize(e, axis=-1) * float(self.config.embed_dim) ** 0.5

    def encode_text(self, captions):
        """Sentence embeddings (B, embed_dim) of a list of captions; bad captions raise ValueError."""
        tokens = self.tokenizer.encode_checked(captions)
        return ops.convert_to_numpy(self.embed(ops.convert_to_tensor(tokens)))

    def check_embeddings(self, embeddings):
        embeddings = np.asarray(embeddings, "float32")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.config.embed_dim:
            raise ValueError(f"embeddings: expected shape (B, {self.config.embed_dim}), got {embeddings.shape}.")
        return embeddings

    def noise(self, n, z=None, seed=0):
        """z (n, z_dim) float32: the given one (shape-checked) or drawn from `seed`."""
        if z is None:
            z = np.random.default_rng(seed).standard_normal((n, self.config.z_dim))
        z = np.asarray(z, "float32")
        if z.shape != (n, self.config.z_dim):
            raise ValueError(f"z: expected shape ({n}, {self.config.z_dim}), got {z.shape}.")
        return z

    def generate_from_embeddings(self, embeddings, z=None, seed=0):
        raise NotImplementedError

    def generate(self, captions, seed=0, z=None):
        """Images in [-1, 1], numpy (B, H, W, 3), one per caption."""
        if isinstance(captions, str):
            captions = [captions]
        return self.generate_from_embeddings(self.encode_text(captions), z=z, seed=seed)
