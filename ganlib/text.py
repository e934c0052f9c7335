"""Captions to token ids: the tokenizer and vocabulary shared by every model.

A :class:`Tokenizer` lower-cases a caption, replaces punctuation by spaces,
splits it into words with ``tensorflow_text.WhitespaceTokenizer`` and maps each
word to an id with a ``tf.lookup`` table:

* id 0 (:data:`PAD`, ``"<pad>"``) pads captions to ``max_words``;
* id 1 (:data:`OOV`, ``"<unk>"``) stands for any word not in the vocabulary;
* word ``vocabulary[k]`` has id ``2 + k``.

Captions longer than ``max_words`` words are truncated (AttnGAN keeps 18
words). The same code runs eagerly (``tokenizer(captions)`` -> numpy) and
in-graph (:meth:`Tokenizer.tf_tokenize`, for ``tf.data``).

``Tokenizer.default()`` loads the SynthBirds vocabulary shipped in
``ganlib/assets/synthbirds_vocab.txt`` (one word per line, sorted; it is
:func:`ganlib.data.synthbirds.vocabulary`).
"""

from __future__ import annotations

import collections
import pathlib
import re
import warnings

import numpy as np

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "<pad>", "<unk>"

_ASSET = pathlib.Path(__file__).resolve().parent / "assets" / "synthbirds_vocab.txt"
_PUNCT = r"[^a-z0-9\s]"


def _normalise(text: str) -> list[str]:
    """Python twin of the in-graph normalisation: lower-case, drop punctuation, split."""
    return re.sub(_PUNCT, " ", text.lower()).split()


class Tokenizer:
    """Word-level tokenizer with a fixed vocabulary.

    Args:
        vocabulary: the words, without the reserved ``"<pad>"`` / ``"<unk>"``
            (word ``vocabulary[k]`` gets id ``2 + k``).
        max_words: length every encoded caption is padded or truncated to.
    """

    def __init__(self, vocabulary: list[str], max_words: int = 18):
        words = [str(w) for w in vocabulary]
        if not words:
            raise ValueError("vocabulary must hold at least one word, got an empty list")
        bad = [w for w in words if w in (PAD_TOKEN, OOV_TOKEN) or not w or w != w.strip()
               or _normalise(w) != [w]]
        if bad:
            raise ValueError(f"vocabulary words must be lower-case words without spaces or "
                             f"punctuation (and not {PAD_TOKEN}/{OOV_TOKEN}); got {bad[:5]}")
        dupes = [w for w, c in collections.Counter(words).items() if c > 1]
        if dupes:
            raise ValueError(f"vocabulary has repeated words: {dupes[:5]}")
        if int(max_words) <= 0:
            raise ValueError(f"max_words must be a positive integer, got {max_words}")
        self.vocabulary = words
        self.max_words = int(max_words)
        self._index = {w: i + 2 for i, w in enumerate(words)}
        self._table = None  # built lazily: importing TensorFlow is not free

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_texts(cls, texts, min_count: int = 1, max_words: int = 18) -> "Tokenizer":
        """Build a vocabulary from captions.

        Args:
            texts: iterable of captions.
            min_count: keep words seen at least this many times.
            max_words: as in the constructor.

        Returns:
            A tokenizer whose words are sorted by decreasing count, then
            alphabetically (deterministic).
        """
        if isinstance(texts, str):
            texts = [texts]
        counts = collections.Counter(w for t in texts for w in _normalise(str(t)))
        words = sorted((w for w, c in counts.items() if c >= min_count),
                       key=lambda w: (-counts[w], w))
        if not words:
            raise ValueError(f"no word occurs at least min_count={min_count} times in texts")
        return cls(words, max_words=max_words)

    @classmethod
    def default(cls, max_words: int = 18) -> "Tokenizer":
        """The SynthBirds vocabulary shipped with ganlib."""
        return cls.load(_ASSET, max_words=max_words)

    def save(self, path) -> None:
        """Write the vocabulary, one word per line (reserved tokens excluded)."""
        pathlib.Path(path).write_text("\n".join(self.vocabulary) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path, max_words: int = 18) -> "Tokenizer":
        """Read a vocabulary written by :meth:`save` (one word per line)."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file {path} not found (expected one word per line)")
        words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
        return cls(words, max_words=max_words)

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, reserved ones included: ``len(vocabulary) + 2``."""
        return len(self.vocabulary) + 2

    # ---------------------------------------------------------------- encoding
    def _lookup(self):
        if self._table is None:
            import tensorflow as tf
            with tf.init_scope():  # built eagerly even when first used inside a graph
                init = tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.vocabulary, dtype=tf.string),
                    tf.constant(np.arange(2, len(self.vocabulary) + 2), dtype=tf.int64))
                self._table = tf.lookup.StaticHashTable(init, default_value=OOV)
        return self._table

    def tf_tokenize(self, captions):
        """Tokenize in-graph (usable inside ``tf.data`` maps).

        Args:
            captions: ``tf.string`` tensor, scalar or shape ``(B,)``.

        Returns:
            ``tf.int32`` tensor ``(max_words,)`` or ``(B, max_words)``.
        """
        import tensorflow as tf
        import tensorflow_text as tf_text

        captions = tf.convert_to_tensor(captions, dtype=tf.string)
        scalar = captions.shape.rank == 0
        batch = tf.reshape(captions, [-1])
        batch = tf.strings.regex_replace(tf.strings.lower(batch), _PUNCT, " ")
        words = tf_text.WhitespaceTokenizer().tokenize(batch)
        ids = tf.ragged.map_flat_values(self._lookup().lookup, words)
        dense = ids.to_tensor(default_value=PAD, shape=[None, self.max_words])
        dense = tf.cast(dense, tf.int32)
        return dense[0] if scalar else dense

    def __call__(self, captions) -> np.ndarray:
        """Encode captions.

        Args:
            captions: a string or a list of strings.

        Returns:
            int32 array ``(B, max_words)`` (``B = 1`` for a single string):
            unknown words map to :data:`OOV`, the tail is :data:`PAD`.
        """
        if isinstance(captions, str):
            captions = [captions]
        captions = [str(c) for c in captions]
        if not captions:
            return np.zeros((0, self.max_words), dtype=np.int32)
        return np.asarray(self.tf_tokenize(captions), dtype=np.int32)

    def encode_checked(self, captions) -> np.ndarray:
        """Encode like ``__call__`` but refuse captions that carry no meaning.

        Raises:
            ValueError: naming the caption and its index, when a caption is
                empty / whitespace only, or when every one of its words is
                unknown. Unknown words inside an otherwise known caption are
                allowed (they become ``<unk>``) and reported with
                ``warnings.warn``.
        """
        if isinstance(captions, str):
            captions = [captions]
        captions = list(captions)
        unknown_all = set()
        for i, cap in enumerate(captions):
            if not isinstance(cap, str):
                raise ValueError(f"caption {i} must be a string, got {type(cap).__name__}: {cap!r}")
            words = _normalise(cap)
            if not words:
                raise ValueError(f"caption {i} is empty (or only whitespace/punctuation): {cap!r}")
            unknown = [w for w in words if w not in self._index]
            if len(unknown) == len(words):
                raise ValueError(f"caption {i}: every word is unknown: {cap!r} "
                                 f"(vocabulary of {len(self.vocabulary)} words)")
            unknown_all.update(unknown)
        if unknown_all:
            warnings.warn(f"unknown words mapped to {OOV_TOKEN}: {sorted(unknown_all)}",
                          stacklevel=2)
        return self(captions)

    def decode(self, ids) -> list[str]:
        """Turn ids back into text (padding dropped, unknown words as ``<unk>``).

        Args:
            ids: int array ``(max_words,)`` or ``(B, max_words)``.

        Returns:
            One string per row.
        """
        ids = np.asarray(ids)
        if ids.ndim == 1:
            ids = ids[None]
        out = []
        for row in ids:
            words = []
            for t in row.tolist():
                if t == PAD:
                    continue
                words.append(OOV_TOKEN if t == OOV or not 2 <= t < self.vocabulary_size
                             else self.vocabulary[t - 2])
            out.append(" ".join(words))
        return out

    def lengths(self, ids) -> np.ndarray:
        """Number of non-padding tokens per row (caption lengths for AttnGAN masks)."""
        return (np.asarray(ids) != PAD).sum(axis=-1).astype(np.int32)

    def __repr__(self) -> str:
        return f"Tokenizer({len(self.vocabulary)} words, max_words={self.max_words})"
