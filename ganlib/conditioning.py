r"""What a model is conditioned on: one named component per kind of condition.

A paper's model does not read captions, class ids or embeddings itself; it asks
its `Conditioning` component, chosen by the config's `conditioning` field:

| kind | config | training batches hold | `generate(...)` takes |
|---|---|---|---|
| `"text"` | sentence embedding $\varphi(t)$ from `text_encoder` | `tokens` (or `embeddings`), `wrong_*` | captions, or an embeddings array |
| `"class"` | one-hot class id (Mirza & Osindero's CGAN) | `class_id` | class ids |
| `"none"` | nothing (StackGAN++'s unconditional setting) | `image` only | a number of images |

Text encoders (`Config.text_encoder`):

* `"synthbirds"`: the shipped SynthBirds sentence encoder (256-d, frozen), a stand-in
  for Reed et al.'s char-CNN-RNN; its output is rescaled to norm $\sqrt{d}$
  (`SentenceConditioning.embed_tokens`);
* `"char-cnn-rnn"`: the 1024-d char-CNN-RNN embeddings that the reference
  datasets ship (`char-CNN-RNN-embeddings.pickle`, 10 per image), read by the
  data pipeline and used as they are, as the reference code does. New captions
  cannot be encoded offline: `generate` then takes an embeddings array;
* `"damsm"` (the shipped SynthBirds DAMSM, `ganlib/assets/damsm_synthbirds`, 5 epochs),
  `"damsm:synthbirds-30ep"` (the shipped 30-epoch one) or `"damsm:DIR"` (one trained by
  `ganlib pretrain damsm --data cub|coco --out DIR`):
  AttnGAN's DAMSM text encoder (frozen), its sentence feature $\bar e$ used as it is
  (AttnGAN feeds it to conditioning augmentation unscaled), with the DAMSM's own
  vocabulary: the real-data text encoder of lessons 01-03's models
  (`ganlib train cgan --text-encoder damsm:DIR`). `use_text_encoder` sets a config's
  `embed_dim` to the DAMSM's width.

| `"label_map"` | a semantic label map and its instance map (pix2pixHD) | `label`, `instance` (B, H, W) | a dict of `label`, `instance` arrays, or dataset items |

Word features + mask (AttnGAN's DAMSM) are a further kind that joins with its paper. Frozen helper networks (the sentence encoder) are
provided by the component under a name (`helpers()`), and models find them by that
name (`PaperGAN.helper(name)`), never by position.
"""

import numpy as np
from keras import ops

#: text encoders and the width of their sentence embedding (None: the data's precomputed width,
#: 1024 in the reference datasets' char-CNN-RNN pickles)
TEXT_ENCODERS = {"synthbirds": 256, "char-cnn-rnn": None, "damsm": None}
KINDS = ("text", "words", "class", "none", "label_map")
SENTENCE_ENCODER = "sentence_encoder"


def damsm_folder(text_encoder):
    """The DAMSM folder of a `"damsm"` / `"damsm:DIR"` text encoder name (None: the shipped one that
    scores R-precision; `"damsm:synthbirds-30ep"`: the shipped 30-epoch one); ValueError for any
    other name."""
    if text_encoder == "damsm":
        return None
    if isinstance(text_encoder, str) and text_encoder.startswith("damsm:") and len(text_encoder) > 6:
        from ganlib.models.damsm import folder

        return folder(text_encoder[6:])
    raise ValueError(f"not a DAMSM text encoder: {text_encoder!r} (expected 'damsm' or 'damsm:DIR')")


def is_damsm(text_encoder):
    return isinstance(text_encoder, str) and (text_encoder == "damsm" or text_encoder.startswith("damsm:"))


def text_encoder_width(text_encoder):
    """Width of a text encoder's sentence embedding (None: the data's precomputed width)."""
    if is_damsm(text_encoder):
        from ganlib.models.damsm import read_config

        return int(read_config(damsm_folder(text_encoder))["config"]["embed_dim"])
    if text_encoder not in TEXT_ENCODERS:
        raise ValueError(f"text_encoder must be one of {sorted(TEXT_ENCODERS)} or 'damsm:DIR', got {text_encoder!r}.")
    return TEXT_ENCODERS[text_encoder]


def use_text_encoder(config, text_encoder):
    """`config` conditioned by `text_encoder` ("synthbirds", "char-cnn-rnn", "damsm", "damsm:DIR"):
    `embed_dim` (and for a DAMSM `max_words`) follow the encoder; a DAMSM folder is made absolute,
    so that checkpoints load from anywhere."""
    if config.conditioning != "text":
        raise ValueError(f"a text encoder conditions text models; this config's conditioning is "
                         f"{config.conditioning!r}.")
    from ganlib.models.damsm import SHIPPED_NAMES

    if is_damsm(text_encoder) and text_encoder != "damsm" and text_encoder[6:] not in SHIPPED_NAMES:
        import os

        text_encoder = "damsm:" + os.path.abspath(damsm_folder(text_encoder))
    width = text_encoder_width(text_encoder)
    changes = {"text_encoder": text_encoder}
    if width is not None:
        changes["embed_dim"] = width
    if is_damsm(text_encoder):
        from ganlib.models.damsm import read_config

        changes["max_words"] = int(read_config(damsm_folder(text_encoder))["config"]["max_words"])
    return config.replace(**changes)


class SentenceConditioning:
    """A sentence embedding per image: the mean embedding of the batch's k captions.

    Args:
        embed_dim: width of the embedding the networks take.
        text_encoder: a key of `TEXT_ENCODERS`.
        max_words: token sequence length (SynthBirds encoder).
    """

    kind = "text"

    def __init__(self, embed_dim, text_encoder="synthbirds", max_words=18):
        width = text_encoder_width(text_encoder)
        if width not in (None, embed_dim):
            raise ValueError(f"embed_dim={embed_dim} does not match the {text_encoder!r} text encoder, "
                             f"whose embeddings have {width} dimensions.")
        self.embed_dim, self.text_encoder, self.max_words = int(embed_dim), text_encoder, int(max_words)
        self.damsm = is_damsm(text_encoder)
        self.precomputed = text_encoder == "char-cnn-rnn"
        self._tokenizer = None

    def helpers(self):
        """The frozen networks this component needs, by name."""
        if self.precomputed:
            return {}
        if self.damsm:
            return {SENTENCE_ENCODER: self._damsm_sentence_encoder()}
        from ganlib.encoders import load_sentence_encoder

        return {SENTENCE_ENCODER: load_sentence_encoder()}

    def _damsm_sentence_encoder(self):
        """tokens (B, T) -> the DAMSM's sentence feature (B, D), frozen; keeps the DAMSM's tokenizer."""
        import keras

        from ganlib.models.damsm import load_pretrained

        damsm, self._tokenizer = load_pretrained(damsm_folder(self.text_encoder))
        self._tokenizer.max_words = self.max_words
        encoder = damsm.text_encoder
        encoder.trainable = False
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        return keras.Model(tokens, encoder(tokens)[1], name=SENTENCE_ENCODER)

    @property
    def batch_key(self):
        return "embeddings" if self.precomputed else "tokens"

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from ganlib.text import Tokenizer

            if self.damsm:
                from ganlib.models.damsm import folder as resolve   # None: the shipped scoring DAMSM

                folder = resolve(damsm_folder(self.text_encoder))
                self._tokenizer = Tokenizer.load(f"{folder}/vocab.txt", max_words=self.max_words)
            else:
                self._tokenizer = Tokenizer.default(max_words=self.max_words)
        return self._tokenizer

    def embed_tokens(self, model, tokens):
        r"""$\varphi(t)$ of tokens (B, T), or the mean over k captions of tokens (B, k, T).

        The SynthBirds encoder was trained with cosine similarities, so only the
        direction of its output means anything, and its raw norm is small (about 0.2
        for 256 dimensions): fed as is, the text would reach G and D about a hundred
        times weaker than the noise. $\varphi(t) = \sqrt{d}\, e / \lVert e \rVert$;
        with k captions per image (Reed et al.'s and StackGAN's code average k = 4),
        the mean of the k embeddings, rescaled the same way.

        A DAMSM's sentence feature $\bar e$ (the last states of its LSTM) is used as it
        is, as AttnGAN feeds it to conditioning augmentation (k captions: their mean).
        """
        shape = ops.shape(tokens)
        if len(shape) == 3:
            e = self.embed_tokens(model, ops.reshape(tokens, (-1, shape[2])))
            e = ops.mean(ops.reshape(e, (shape[0], shape[1], -1)), axis=1)
            return e if self.damsm else ops.normalize(e, axis=-1) * float(self.embed_dim) ** 0.5
        e = ops.stop_gradient(model.helper(SENTENCE_ENCODER)(tokens, training=False))
        return e if self.damsm else ops.normalize(e, axis=-1) * float(self.embed_dim) ** 0.5

    def from_batch(self, model, batch, wrong=False):
        """The condition of a training batch (B, embed_dim); `wrong=True`: of its mismatched captions."""
        key = ("wrong_" if wrong else "") + self.batch_key
        if key not in batch:
            raise KeyError(f"the batch has no {key!r}: this model's text encoder is {self.text_encoder!r} "
                           f"(batch keys: {sorted(batch)}).")
        value = batch[key]
        if not self.precomputed:
            return self.embed_tokens(model, value)
        value = ops.convert_to_tensor(value, "float32")
        return ops.mean(value, axis=1) if len(ops.shape(value)) == 3 else value

    def check_embeddings(self, embeddings):
        embeddings = np.asarray(embeddings, "float32")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embed_dim:
            raise ValueError(f"embeddings: expected shape (B, {self.embed_dim}), got {embeddings.shape}.")
        return embeddings

    def encode(self, model, conditions):
        """Embeddings (n, embed_dim), numpy, of captions (a str or a list of str) or of an embeddings array."""
        if isinstance(conditions, str):
            conditions = [conditions]
        if isinstance(conditions, np.ndarray) and conditions.dtype.kind == "f":
            return self.check_embeddings(conditions)
        if self.precomputed:
            raise ValueError(f"this model takes precomputed {self.text_encoder} embeddings, which cannot be "
                             f"computed offline for new captions: pass an embeddings array of shape "
                             f"(B, {self.embed_dim}) (e.g. a dataset item's 'embeddings').")
        tokens = self.tokenizer.encode_checked(list(conditions))
        return ops.convert_to_numpy(self.embed_tokens(model, ops.convert_to_tensor(tokens)))

    def count(self, conditions):
        return 1 if isinstance(conditions, str) else len(conditions)

    def of_sample(self, sample):
        """The conditions of an evaluation sample (`ganlib.evaluation.real_sample`): its captions,
        or their precomputed embeddings."""
        return sample["embeddings"] if self.precomputed else sample["captions"]

    def grid(self, datasets, n=8, seed=0):
        """Conditions and labels for sample grids: the captions (or embeddings) of `n` test items."""
        test = datasets["test"]
        index = np.linspace(0, len(test) - 1, n).astype(int)
        items = [test[int(i)] for i in index]
        labels = [item["captions"][0] for item in items]
        if self.precomputed:
            return np.stack([np.asarray(item["embeddings"][0], "float32") for item in items]), labels
        return labels, labels


class ClassConditioning:
    """A class id, one-hot (Mirza & Osindero 2014)."""

    kind = "class"

    def __init__(self, num_classes, one_hot_fn=None):
        self.num_classes = int(num_classes)
        self.one_hot_fn = one_hot_fn   # (class_ids, num_classes) -> one-hot rows, for `encode`

    def helpers(self):
        return {}

    def from_batch(self, model, batch, wrong=False):
        return ops.one_hot(ops.cast(batch["class_id"], "int32"), self.num_classes)

    def encode(self, model, class_ids):
        """One-hot rows (n, num_classes) for 0-based class ids; out-of-range ids raise ValueError."""
        class_ids = np.atleast_1d(np.asarray(class_ids))
        if class_ids.ndim != 1 or not np.issubdtype(class_ids.dtype, np.integer):
            raise ValueError(f"class_ids: expected a 1-D list of integer class ids, got {class_ids!r}.")
        bad = class_ids[(class_ids < 0) | (class_ids >= self.num_classes)]
        if bad.size:
            raise ValueError(f"class_ids: {bad.tolist()} out of range [0, {self.num_classes}).")
        if self.one_hot_fn is not None:
            return np.asarray(ops.convert_to_numpy(self.one_hot_fn(class_ids, self.num_classes)), "float32")
        return np.eye(self.num_classes, dtype="float32")[class_ids]

    def count(self, class_ids):
        return int(np.atleast_1d(np.asarray(class_ids)).shape[0])

    def of_sample(self, sample):
        return sample["class_ids"]

    def grid(self, datasets, n=8, seed=0):
        """`n` classes of the training split (a class model knows only those)."""
        ids = np.unique(np.asarray(datasets["train"].class_ids))
        ids = ids[ids >= 0][np.linspace(0, max(len(ids) - 1, 0), n).astype(int)]
        return ids.astype("int64"), [f"class {i}" for i in ids]


class NoConditioning:
    """No condition: `generate(n)` makes n images (a list's length counts too)."""

    kind = "none"

    def helpers(self):
        return {}

    def from_batch(self, model, batch, wrong=False):
        return None

    def encode(self, model, conditions):
        return None

    def count(self, conditions):
        if isinstance(conditions, (int, np.integer)) and not isinstance(conditions, bool):
            return int(conditions)
        return 1 if isinstance(conditions, str) else len(conditions)

    def of_sample(self, sample):
        return [None] * len(sample["images"])

    def grid(self, datasets, n=8, seed=0):
        return n, [""] * n


class WordConditioning(SentenceConditioning):
    r"""Word features, their mask and the sentence feature of a frozen DAMSM text encoder
    (AttnGAN, MirrorGAN): $e$ (B, T, D), the real words, and $\bar e$ (B, D).

    The condition of a caption is its tokens; the model runs the text encoder (its helper
    `text_encoder`, inference mode, no gradient), as the reference feeds G and D the
    encoder's detached outputs. The DAMSM image encoder is the helper `image_encoder`.

    Args:
        damsm: `(model, tokenizer)` of a built `ganlib.models.damsm.DAMSM`, or None for
            `ganlib.models.damsm.load_pretrained(path)`.
        path: a `ganlib pretrain damsm --out DIR` folder (None: the shipped SynthBirds DAMSM).
    """

    kind = "words"

    def __init__(self, damsm=None, path=None):
        if damsm is None:
            from ganlib.models import damsm as damsm_lib

            damsm = damsm_lib.load_pretrained(path)
        self.damsm, self._tokenizer = damsm
        self.embed_dim = int(self.damsm.config.embed_dim)
        self.max_words = int(self.damsm.config.max_words)
        self.text_encoder, self.precomputed = "damsm", False

    def helpers(self):
        return {"text_encoder": self.damsm.text_encoder, "image_encoder": self.damsm.image_encoder}

    @property
    def tokenizer(self):
        return self._tokenizer

    def embed_tokens(self, model, tokens):
        """`{"words", "sentence", "mask", "lengths"}` of tokens (B, T) (0 = padding)."""
        tokens = ops.cast(tokens, "int32")
        words, sentence = model.helper("text_encoder")(tokens, training=False)
        mask = ops.cast(ops.not_equal(tokens, 0), "float32")
        return {"words": ops.stop_gradient(words), "sentence": ops.stop_gradient(sentence), "mask": mask,
                "lengths": ops.cast(ops.sum(mask, axis=-1), "int32")}

    def from_batch(self, model, batch, wrong=False):
        if "tokens" not in batch:
            raise KeyError(f"the batch has no 'tokens' (batch keys: {sorted(batch)}).")
        tokens = batch["tokens"]
        if len(ops.shape(tokens)) != 2:
            raise ValueError(f"batch['tokens']: expected (B, T) tokens (one caption per image), got shape "
                             f"{tuple(ops.shape(tokens))}.")
        return self.embed_tokens(model, tokens)

    def check_embeddings(self, embeddings):
        raise ValueError("this model is conditioned on words: pass captions (or tokens), not sentence embeddings.")

    def encode(self, model, conditions):
        """Tokens (n, T), numpy int32, of captions (a str or a list of str); bad captions raise ValueError."""
        if isinstance(conditions, str):
            conditions = [conditions]
        if isinstance(conditions, np.ndarray) and conditions.dtype.kind in "iu":
            if conditions.ndim != 2:
                raise ValueError(f"tokens: expected shape (n, T), got {conditions.shape}.")
            return conditions.astype("int32")
        return np.asarray(self.tokenizer.encode_checked(list(conditions)), "int32")


class LabelMapConditioning:
    """A semantic label map with its instance map (pix2pixHD): `label` (B, H, W) label ids and
    `instance` (B, H, W) instance ids (label_id * 1000 + k for countable objects, the label id
    elsewhere, as Cityscapes' `*_instanceIds.png`). The model encodes them (one-hot, boundaries)."""

    kind = "label_map"

    def __init__(self, image_size, label_nc):
        self.image_size, self.label_nc = tuple(image_size), int(label_nc)

    def helpers(self):
        return {}

    def from_batch(self, model, batch, wrong=False):
        return batch["label"], batch["instance"]

    def encode(self, model, conditions):
        """`{"label", "instance"}` int arrays (B, H, W) at the model's size (nearest-neighbour
        resize): from such a dict or a list of dataset items; bad maps raise ValueError."""
        from ganlib.data.cityscapes import resize_map

        if isinstance(conditions, dict):
            label, instance = conditions.get("label"), conditions.get("instance")
        else:
            items = list(conditions)
            if not all(isinstance(c, dict) for c in items):
                raise ValueError("conditions: expected a dict with 'label' and 'instance' arrays (B, H, W) or a "
                                 "list of dataset items (dicts with 'label' and 'instance').")
            label = np.stack([resize_map(c["label"], self.image_size) for c in items])
            instance = np.stack([resize_map(c["instance"], self.image_size) for c in items])
        if label is None or instance is None:
            raise ValueError("conditions: both 'label' and 'instance' maps are needed (instance: the label map "
                             "itself where there are no instances).")
        label, instance = np.asarray(label), np.asarray(instance)
        if label.ndim == 2:
            label, instance = label[None], instance[None]
        if label.ndim != 3 or label.shape != instance.shape:
            raise ValueError(f"conditions: 'label' and 'instance' must be (B, H, W) of one shape, got "
                             f"{label.shape} and {instance.shape}.")
        if label.min() < 0 or label.max() >= self.label_nc:
            raise ValueError(f"conditions['label']: ids must be in [0, {self.label_nc}), got "
                             f"[{label.min()}, {label.max()}].")
        if label.shape[1:] != self.image_size:
            label = np.stack([resize_map(m, self.image_size) for m in label])
            instance = np.stack([resize_map(m, self.image_size) for m in instance])
        return {"label": label.astype("int32"), "instance": instance.astype("int32")}

    def count(self, conditions):
        return len(conditions["label"]) if isinstance(conditions, dict) else len(conditions)

    def of_sample(self, sample):
        return {"label": sample["label"], "instance": sample["instance"]}

    def grid(self, datasets, n=8, seed=0):
        """The label maps of `n` test items and their file names."""
        test = datasets["test"]
        items = [test[int(i)] for i in np.linspace(0, len(test) - 1, n).astype(int)]
        return items, [str(item.get("filename", "")) for item in items]


def from_config(config):
    """The component of a paper `Config` (its `conditioning`, `text_encoder`, `embed_dim`, ...)."""
    kind = config.conditioning
    if kind == "text":
        return SentenceConditioning(config.embed_dim, config.text_encoder, config.max_words)
    if kind == "class":
        return ClassConditioning(config.num_classes)
    if kind == "none":
        return NoConditioning()
    if kind == "words":
        return WordConditioning(path=getattr(config, "damsm", None))
    if kind == "label_map":
        return LabelMapConditioning(config.image_size, config.label_nc)
    raise ValueError(f"conditioning must be one of {KINDS}, got {kind!r}.")


def for_dataset(config, dataset):
    """`config` made to fit a training set, and a note saying what changed (or None).

    A text model whose `text_encoder` is the reference datasets' "char-cnn-rnn" trains on
    those embeddings when the data has them; on data without them (SynthBirds, COCO) it
    uses the shipped SynthBirds sentence encoder instead, and says so. A class model needs
    class ids."""
    if config.conditioning == "class" and not dataset.has_classes:
        raise ValueError(f"class conditioning needs class ids, and the {dataset.name!r} dataset has none "
                         f"(every class_id is -1); train a text-conditional model instead.")
    if config.conditioning != "text" or config.text_encoder == "synthbirds" or is_damsm(config.text_encoder):
        return config, None
    if not getattr(dataset, "has_embeddings", False):
        note = (f"the {dataset.name} data has no precomputed {config.text_encoder} embeddings; the text "
                f"encoder is the shipped SynthBirds sentence encoder ({TEXT_ENCODERS['synthbirds']}-d) instead")
        return config.replace(text_encoder="synthbirds", embed_dim=TEXT_ENCODERS["synthbirds"]), note
    if dataset.embedding_dim != config.embed_dim:
        raise ValueError(f"embed_dim={config.embed_dim}, but the {dataset.name} data's precomputed embeddings have "
                         f"{dataset.embedding_dim} dimensions ({dataset.embeddings_path}).")
    return config, None
