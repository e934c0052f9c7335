"""What every paper's model shares: the config fields common to all papers, Adam from
the config, the conditioning component, named frozen helpers, and one convention for
the noise at training and at inference.

A paper's file subclasses `PaperConfig` and `PaperGAN`, builds its networks and
writes its losses and `generate_from(condition, noise)`; everything else is here once.
"""

import dataclasses
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from ganlib import conditioning as conditioning_lib
from ganlib.training import AdversarialModel


@dataclass
class PaperConfig:
    """Fields every paper's `Config` has (each paper's `Config` subclasses this).

    Conditioning: `conditioning` ("text", "class", "none"; `ganlib.conditioning`),
    `text_encoder` and its `embed_dim`, `max_words`, `captions_per_embedding` (the
    mean embedding of k captions of the image, as the references train) and `wrong`
    (the mismatched pair of a matching-aware D: "caption" = the real image with
    another item's caption, "image" = a real image of another class with this
    caption, as the StackGAN reference code; None: no mismatched pairs).
    Optimisation: Adam(`lr`, `beta1`, `beta2`) for G and each D, `ema_decay`
    (0: no EMA generator), `epochs` (> 0: the run's steps are `epochs` passes over
    the training set, computed from its size by `for_dataset`; 0: `steps`).
    Bookkeeping: how often to evaluate, sample and checkpoint, and the seed.
    """

    conditioning: str = "text"
    text_encoder: str = "synthbirds"
    embed_dim: int = 256
    max_words: int = 18
    captions_per_embedding: int = 1
    wrong: str | None = "caption"
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.0
    epochs: int = 0
    lr_decay_epochs: int = 0
    eval_every: int = 2000
    sample_every: int = 1000
    checkpoint_every: int = 2000
    eval_samples: int = 2000
    seed: int = 0

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def for_dataset(self, num_train_images):
        """This config with `steps` (and `lr_decay_every`) counted in epochs of a training set
        of `num_train_images` (the reference's `int(num_examples / batch_size)` steps per
        epoch); unchanged when `epochs` is 0."""
        if not self.epochs:
            return self
        per_epoch = max(1, int(num_train_images) // self.batch_size)
        changes = {"steps": self.epochs * per_epoch}
        if self.lr_decay_epochs:
            changes["lr_decay_every"] = self.lr_decay_epochs * per_epoch
        return self.replace(**changes)


class PaperGAN(AdversarialModel):
    """An `AdversarialModel` configured by a paper's `Config`.

    Args:
        config: the paper's `Config` (a `PaperConfig`).
        generator, discriminators: as `AdversarialModel`.
        helpers: frozen helper networks by name (e.g. ``{"G_0": stage1_generator}``), added
            to those of the conditioning component (e.g. the sentence encoder); each
            network's Keras name must be its key. `helper(name)` finds them.
        condition: the conditioning component (default: `ganlib.conditioning.from_config(config)`).

    Subclasses set `config_class`, and implement `noise_shapes(n, training)` (every
    random input of G) and `generate_from(condition, noise)`.
    """

    config_class = None

    def __init__(self, config, generator, discriminators, helpers=None, condition=None, **kwargs):
        condition = condition or conditioning_lib.from_config(config)
        helpers = {**condition.helpers(), **(helpers or {})}
        for name, network in helpers.items():
            if network.name != name:
                raise ValueError(f"helper {name!r}: the network is named {network.name!r}; build it with name={name!r}.")
        super().__init__(generator, discriminators, auxiliaries=list(helpers.values()),
                         ema_decay=config.ema_decay or None, seed=config.seed, **kwargs)
        self.config = config
        self.condition = condition

    @classmethod
    def resolve_config(cls, config):
        """A `Config` from a `Config`, a dict of its fields or None (the paper preset)."""
        if isinstance(config, cls.config_class):
            return config
        return cls.config_class(**config) if config else cls.config_class.paper()

    def helper(self, name):
        """The frozen helper network called `name`."""
        for network in self.auxiliaries:
            if network.name == name:
                return network
        raise KeyError(f"{type(self).__name__} has no helper network {name!r} "
                       f"(it has {[n.name for n in self.auxiliaries]}).")

    def learning_rate(self):
        """The config's `lr`, halved every `lr_decay_every` steps when that field is > 0
        (the reference codes' "halve the learning rate every N epochs")."""
        every = self.config.lr_decay_every
        if every:
            return keras.optimizers.schedules.ExponentialDecay(self.config.lr, every, 0.5, staircase=True)
        return self.config.lr

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

    # ------------------------------------------------------------------ noise
    def noise_shapes(self, n, training=False):
        """Every random input of the generator for `n` samples, by name (N(0, I) each);
        `training=True` adds the ones only training draws."""
        return {"z": (n, self.config.z_dim)}

    #: names of noise inputs drawn from N(0, 1) truncated to (-2, 2) (as TensorFlow's
    #: `truncated_normal`) instead of N(0, 1)
    truncated_noise = ()

    def sample_noise(self, batch):
        n = ops.shape(batch["image"])[0]
        draw = lambda k: keras.random.truncated_normal if k in self.truncated_noise else keras.random.normal  # noqa: E731
        return {k: draw(k)(shape, seed=self.noise_seed) for k, shape in self.noise_shapes(n, training=True).items()}

    def draw_noise(self, n, seed=0, noise=None, z=None):
        """The generator's noise for `n` samples at inference, numpy, by name: the given
        `noise` entries (and `z`), shape-checked; the others N(0, I), the k-th of `noise_shapes`
        drawn from its own stream `np.random.default_rng([seed, k])` (`z`, first: from
        `default_rng(seed)`), so that sample i does not depend on how many are drawn."""
        shapes = self.noise_shapes(n)
        streams = [np.random.default_rng(seed if k == 0 else [seed, k]) for k in range(len(shapes))]
        out = {name: _standard_normal(rng, shape, name in self.truncated_noise)
               for rng, (name, shape) in zip(streams, shapes.items())}
        given = dict(noise or {})
        if z is not None:
            given["z"] = z
        for key, value in given.items():
            if key not in shapes:
                raise ValueError(f"noise[{key!r}]: this model's noise is {sorted(shapes)}.")
            value = np.asarray(value, "float32")
            if value.shape != shapes[key]:
                raise ValueError(f"noise[{key!r}]: expected shape {shapes[key]}, got {value.shape}.")
            out[key] = value
        return out

    # ------------------------------------------------------------------ conditions
    @property
    def tokenizer(self):
        """The tokenizer of the text encoder; None for a model that reads no text."""
        return getattr(self.condition, "tokenizer", None)

    def embed(self, tokens):
        r"""$\varphi(t)$ of tokens (B, T) or the mean of k captions (B, k, T) (`ganlib.conditioning`)."""
        return self.condition.embed_tokens(self, tokens)

    def encode_text(self, captions):
        """Sentence embeddings (B, embed_dim), numpy, of a list of captions; bad captions raise ValueError."""
        return self.condition.encode(self, captions)

    def check_embeddings(self, embeddings):
        return self.condition.check_embeddings(embeddings)

    def matching_aware_logits(self, D, batch, condition, fake, training=True):
        """D's logits of (real, right), the mismatched pair and (fake, right) (GAN-CLS): the
        mismatched pair is the batch's `wrong_image` with the right condition when the
        pipeline gives one (`wrong="image"`, the StackGAN reference), else the real image
        with the condition of the mismatched caption."""
        s_r = D([batch["image"], condition], training=training)
        if "wrong_image" in batch:
            s_w = D([batch["wrong_image"], condition], training=training)
        else:
            s_w = D([batch["image"], self.condition.from_batch(self, batch, wrong=True)], training=training)
        return s_r, s_w, D([fake, condition], training=training)

    # ------------------------------------------------------------------ generation
    def generate_from(self, condition, noise):
        """Images (numpy, [-1, 1]) from an encoded condition (or None) and a noise dict."""
        raise NotImplementedError

    def inference_inputs(self, conditions, seed=0, z=None, noise=None, encoded=False):
        """`(condition, noise)` as tensors for `generate_from`: the encoded conditions (or the
        given embeddings, `encoded=True`) and `draw_noise(n, seed, noise, z)`."""
        if encoded:
            condition = self.check_embeddings(conditions)
            n = len(condition)
        else:
            n = self.condition.count(conditions)
            condition = self.condition.encode(self, conditions)
        noise = {k: ops.convert_to_tensor(v) for k, v in self.draw_noise(n, seed, noise, z).items()}
        return (None if condition is None else ops.convert_to_tensor(condition)), noise

    def generate(self, conditions, seed=0, z=None, noise=None):
        """Images in [-1, 1], numpy (B, H, W, 3), one per condition: captions (str or list) or
        an embeddings array for text models, class ids for class models, a number of
        images for unconditional ones. Noise: as `draw_noise(n, seed, noise, z)`."""
        return self.generate_from(*self.inference_inputs(conditions, seed, z, noise))

    def generate_from_embeddings(self, embeddings, z=None, seed=0, noise=None):
        """Images in [-1, 1] (numpy) for sentence embeddings (B, embed_dim)."""
        return self.generate_from(*self.inference_inputs(embeddings, seed, z, noise, encoded=True))


def _standard_normal(rng, shape, truncated=False):
    """N(0, 1) samples, float32; `truncated`: values outside (-2, 2) drawn again."""
    x = rng.standard_normal(shape)
    while truncated and np.any(np.abs(x) >= 2):
        bad = np.abs(x) >= 2
        x[bad] = rng.standard_normal(int(bad.sum()))
    return x.astype("float32")


def score_logs(s_r, s_w, s_f):
    """Mean D(x) of the real, mismatched and fake pairs, for the progress bar."""
    return {"d_real": ops.mean(ops.sigmoid(s_r)), "d_wrong": ops.mean(ops.sigmoid(s_w)),
            "d_fake": ops.mean(ops.sigmoid(s_f))}


def num_upsamplings(image_size, name="image_size"):
    """k for an image of 4 * 2**k pixels (>= 16), the number of x2 steps from 4x4; ValueError otherwise."""
    n = int(np.log2(max(image_size, 4) // 4))
    if image_size < 16 or 4 * 2**n != image_size:
        raise ValueError(f"{name} must be 4 * 2**k and >= 16 (16, 32, 64, 128, 256...), got {image_size}.")
    return n


def to_numpy_images(images):
    return np.asarray(ops.convert_to_numpy(images), "float32")
