"""One registry entry per paper: everything the runner, the command line, evaluation,
sampling and benchmarks know of a model (as timm's `register_model` entries).

Each paper module ends with ``SPEC = PaperSpec(...)``: its `Config` and presets, how
to build the model (and its stages), what its training batches must hold
(`BatchSpec`, asked of the dataset pipeline as is), the conditions it supports, the
metrics that apply, and its command-line variants. Nothing outside a paper's module
reads its config fields; adding a paper is one module and one name in
`ganlib.models.MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

PRESETS = ("fast", "paper")
LABEL_MAP_DATASETS = ("synthstreets", "cityscapes")


@dataclass(frozen=True)
class BatchSpec:
    """What a model's training batches must hold.

    Attributes:
        image_size: side of `image`.
        pyramid: smaller sizes s with their own `image_<s>` (same crop), for
            multi-scale discriminators.
        wrong: mismatched pairs: "caption" (`wrong_tokens`), "image" (also
            `wrong_image`), or None.
        captions: captions per image (k > 1: `tokens` of shape (B, k, T), averaged).
        text: "tokens", "embeddings" (the dataset's precomputed text embeddings) or None.
        max_words: token sequence length.
        label_maps: label-map models (pix2pixHD): batches of `image`, `label` and `instance`
            maps of `image_size` = (H, W), from `dataset.pipeline(batch_size, size=...)`.
    """

    image_size: int
    pyramid: tuple = ()
    wrong: str | None = "caption"
    captions: int = 1
    text: str | None = "tokens"
    max_words: int = 18
    label_maps: bool = False

    def pipeline(self, dataset, batch_size, tokenizer=None, seed=0):
        """`dataset.pipeline(...)` giving batches of this spec."""
        if self.label_maps:
            if getattr(dataset, "name", None) not in LABEL_MAP_DATASETS:
                raise ValueError(f"this model maps label maps to images and the {dataset.name!r} dataset has "
                                 f"none: train it on one of {LABEL_MAP_DATASETS}.")
            return dataset.pipeline(batch_size=batch_size, size=tuple(self.image_size), seed=seed)
        if self.captions > dataset.captions_per_image:
            raise ValueError(f"this model averages {self.captions} captions per image and the {dataset.name} "
                             f"dataset has {dataset.captions_per_image}: set captions_per_embedding <= "
                             f"{dataset.captions_per_image}.")
        extra = {"embeddings": True} if self.text == "embeddings" else {}
        return dataset.pipeline(batch_size=batch_size, image_size=self.image_size, pyramid=self.pyramid,
                                wrong=self.wrong, captions=self.captions, tokenizer=tokenizer,
                                max_words=self.max_words, seed=seed, **extra)


def batch_for(config, image_size, pyramid=()):
    """The batch of a `PaperConfig` whose model sees images of `image_size` (and a pyramid)."""
    text = config.conditioning in ("text", "words")
    return BatchSpec(image_size=image_size, pyramid=tuple(pyramid),
                     wrong=config.wrong if text else None,
                     captions=config.captions_per_embedding if text else 1,
                     text=("embeddings" if config.text_encoder == "char-cnn-rnn" else "tokens") if text else None,
                     max_words=config.max_words)


@dataclass(frozen=True)
class Variant:
    """A command-line variant of a paper (`ganlib train MODEL --variant NAME`)."""

    help: str
    apply: Callable   # config -> config


@dataclass(frozen=True)
class PaperSpec:
    """A paper's registry entry.

    Attributes:
        name: the command-line name (`ganlib train NAME`).
        title: the paper, for listings.
        config: the `Config` dataclass (with `fast()` and `paper()` presets).
        build: `(config, previous=None) -> model` (`previous`: the previous stage's model).
        batch: `config -> BatchSpec`.
        conditions: the conditioning kinds the paper supports (`ganlib.conditioning`).
        metrics: the `metrics.json` keys that apply (where the data has them).
        stages: `config -> [(folder, config), ...]` for a model trained in stages, else None.
        variants: command-line variants by name.
    """

    name: str
    title: str
    config: type
    build: Callable
    batch: Callable
    conditions: tuple = ("text",)
    metrics: tuple = ("fid", "inception_score", "caption_consistency", "chance_consistency", "r_precision",
                      "r_precision_std")
    stages: Callable | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)

    def make_config(self, preset="fast", variant=None, **overrides):
        """The `preset`'s config, with a variant applied and fields overridden (None values ignored)."""
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}.")
        cfg = getattr(self.config, preset)()
        if variant is not None:
            if variant not in self.variants:
                raise ValueError(f"{self.name} has no variant {variant!r}; variants: "
                                 f"{', '.join(self.variants) or 'none'}.")
            cfg = self.variants[variant].apply(cfg)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        known = set(self.config.__dataclass_fields__) | {"steps", "image_size", "lr_decay_every"}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)} for {self.name}; fields: "
                             f"{sorted(self.config.__dataclass_fields__)}.")
        return cfg.replace(**overrides)

    @property
    def default_data(self):
        """The dataset `ganlib train NAME` trains on without `--data`: SynthStreets for a
        label-map model, SynthBirds for the others."""
        return LABEL_MAP_DATASETS[0] if "label_map" in self.conditions else "synthbirds"

    def plan(self, config):
        """The runs of a training: `[(folder, config)]`, one per stage ("" for a single-stage model)."""
        return self.stages(config) if self.stages else [("", config)]
