r"""Keras' InceptionV3 as the evaluation network on real data.

The Inception Score (Salimans et al., 2016, "Improved Techniques for Training
GANs") and the FID (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium") are defined on an ImageNet Inception
network: the IS on its 1000-class softmax $p(y|x)$, the FID on its 2048-d pool
features (the global average pool before the classifier). StackGAN, AttnGAN,
DM-GAN and the other papers of this course report both on CUB, Oxford-102 and
COCO, resizing every image (64, 128 or 256 px) to 299x299 with bilinear
interpolation before the network.

Here the network is ``keras.applications.InceptionV3`` with ImageNet weights,
wrapped as ONE Keras model with two outputs, so one forward pass gives both:

    images (N, S, S, 3) in [-1, 1]
      -> Resizing(299, 299, "bilinear")
      -> InceptionV3 -> {"features": (N, 2048) avg_pool, "probs": (N, 1000) softmax}

Keras' InceptionV3 expects inputs in [-1, 1] (its ``preprocess_input`` is
``x / 127.5 - 1``), which is ganlib's image convention, so no other scaling is
needed. uint8 images in [0, 255] are accepted too.

Note: the papers' numbers come from the original TF "2015" Inception graph
(IS; StackGAN's ``inception_score.py``) or pytorch-fid's port of it (FID). Keras'
InceptionV3 is a different training of the same architecture, so absolute values
are close to, not identical with, the published ones: compare models with the
same network.

Weights. Nothing downloads at import time. ``weights="imagenet"`` (the default)
asks Keras for ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` (about
92 MB), fetched on first use into ``~/.keras/models/`` (``$KERAS_HOME/models/``
when ``KERAS_HOME`` is set) and read from there afterwards. Without network
access the download fails and :class:`InceptionWeightsUnavailable` says what
to do. ``weights=PATH`` loads a weights file you have; ``weights=None`` keeps the
random initialisation (tests, smoke runs: the numbers mean nothing).

    >>> net = InceptionNetwork.load()                    # doctest: +SKIP
    >>> out = net.predict(images)                        # (N, S, S, 3) in [-1, 1]
    >>> out["probs"].shape, out["features"].shape        # (N, 1000), (N, 2048)
"""

from __future__ import annotations

import os

import numpy as np

from ganlib.metrics.images import as_model_images
from ganlib.metrics.scores import feature_statistics, frechet_distance, inception_score, statistics_pair

INPUT_SIZE = 299
NUM_CLASSES = 1000
FEATURE_DIM = 2048
WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
               + WEIGHTS_FILE)
WEIGHTS_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"   # the hash Keras checks for this file


class InceptionWeightsUnavailable(FileNotFoundError):
    """The ImageNet weights of InceptionV3 are not on this machine and could not be fetched."""


def keras_models_dir() -> str:
    """Folder where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _unavailable_message(reason) -> str:
    target = os.path.join(keras_models_dir(), WEIGHTS_FILE)
    return (f"the ImageNet weights of InceptionV3 (needed for FID / Inception Score on real data) "
            f"are not available: {reason}. Either connect to the internet once (Keras fetches them "
            f"into {keras_models_dir()}), or download {WEIGHTS_URL} on another machine and put it "
            f"at {target}, or pass weights=PATH to a copy of that file.")


def imagenet_weights_path() -> str:
    """Path of the ImageNet weights file, fetched by Keras (``keras.utils.get_file``) if not cached.

    Raises:
        InceptionWeightsUnavailable: the file is not cached and the download failed
            (the message says where to put the file).
    """
    import keras

    try:
        return keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models",
                                    file_hash=WEIGHTS_MD5,
                                    cache_dir=os.path.dirname(keras_models_dir()))
    except Exception as error:  # URL fetch failure, hash mismatch, unwritable cache...
        raise InceptionWeightsUnavailable(_unavailable_message(f"download failed ({error})")) from error


def _resolve_weights(weights):
    """``"imagenet"`` -> cached/fetched file; a path -> checked to exist; ``None`` -> None."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"InceptionV3 `weights` must be 'imagenet', None or a path to a weights "
                         f"file, got {type(weights).__name__}")
    if str(weights) == "imagenet":
        return imagenet_weights_path()
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise InceptionWeightsUnavailable(_unavailable_message(f"weights file {path} does not exist"))
    return path


def build_inception_network(weights="imagenet"):
    """The two-output evaluation model: images in [-1, 1] -> features and class probabilities.

    Args:
        weights: ``"imagenet"`` (fetched by Keras on first use), a path to an
            InceptionV3 weights file with the top (1000-class) layer, or ``None``
            (random initialisation).

    Returns:
        A functional ``keras.Model`` taking ``(B, S, S, 3)`` float images in
        [-1, 1] of any size S, resizing them to 299x299 (bilinear, as the papers'
        evaluation code) and returning ``{"features": (B, 2048), "probs": (B, 1000)}``.

    Raises:
        InceptionWeightsUnavailable: ImageNet weights requested but not available
            offline, or the weights path does not exist.
    """
    import keras

    path = _resolve_weights(weights)
    # Build in float32 whatever the global dtype policy (evaluation, not training).
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        base = keras.applications.InceptionV3(include_top=True, weights=None,
                                              classifier_activation="softmax")
        if path is not None:
            base.load_weights(path)
    finally:
        keras.config.set_dtype_policy(policy)
    two_outputs = keras.Model(base.inputs, [base.get_layer("avg_pool").output, base.output],
                              name="inception_v3_two_outputs")
    images = keras.Input((None, None, 3), name="image", dtype="float32")
    x = keras.layers.Resizing(INPUT_SIZE, INPUT_SIZE, interpolation="bilinear", dtype="float32",
                              name=f"resize_{INPUT_SIZE}")(images)
    features, probs = two_outputs(x)
    return keras.Model(images, {"features": features, "probs": probs}, name="inception_evaluator")


class InceptionNetwork:
    """InceptionV3 features and class probabilities of images (the real-data evaluation net).

    Plays the same role as :class:`ganlib.metrics.Evaluator` does on SynthBirds:
    ``probs`` feed the Inception Score, ``features`` the FID.
    """

    def __init__(self, model, weights="custom"):
        self.model, self.weights = model, weights

    @classmethod
    def load(cls, weights="imagenet"):
        """Build the network with ``weights`` (see :func:`build_inception_network`)."""
        return cls(build_inception_network(weights), weights=str(weights) if weights is not None else None)

    def predict(self, images, batch_size=50):
        """Run the net in batches of ``batch_size`` (50, as StackGAN's evaluation code).

        Args:
            images: (N, S, S, 3) floats in [-1, 1] or uint8 in [0, 255].

        Returns:
            ``{"features": (N, 2048), "probs": (N, 1000)}`` float32 numpy arrays.
        """
        x = as_model_images(images)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"InceptionNetwork.predict: `batch_size` must be >= 1, got {batch_size}")
        out = self.model.predict(x, batch_size=batch_size, verbose=0)
        return {k: np.asarray(out[k], dtype=np.float32) for k in ("features", "probs")}


_NETWORKS = {}


def default_inception(weights="imagenet"):
    """An :class:`InceptionNetwork` with ``weights``, built once per process and cached.

    Raises:
        InceptionWeightsUnavailable: see :func:`build_inception_network` (not cached,
            so a later call retries, e.g. once the file has been put in place).
    """
    key = None if weights is None else os.fspath(weights)
    if key not in _NETWORKS:
        _NETWORKS[key] = InceptionNetwork.load(weights)
    return _NETWORKS[key]


# --------------------------------------------------------------------------- #
# Real data: InceptionV3 (ganlib.metrics.inception)
# --------------------------------------------------------------------------- #
def inception_statistics(images, network=None, batch_size=50):
    """FID statistics (mu, sigma) of the InceptionV3 2048-d pool features of ``images``.

    This is what FID code precomputes once for the real set (Heusel et al.'s
    ``fid_stats_*.npz``); keep it with :func:`save_statistics`.

    Args:
        images: (N >= 2, S, S, 3) floats in [-1, 1] or uint8 in [0, 255].
        network: an :class:`ganlib.metrics.inception.InceptionNetwork` (default: ImageNet
            weights, :func:`ganlib.metrics.inception.default_inception`).
        batch_size: images per forward pass.

    Raises:
        InceptionWeightsUnavailable: no network given and the ImageNet weights are
            not available offline.
    """
    network = network if network is not None else default_inception()
    return feature_statistics(network.predict(images, batch_size=batch_size)["features"])


def inception_metrics(images, real_statistics, network=None, splits=10, batch_size=50):
    """FID and Inception Score of generated images with InceptionV3 (one forward pass).

    Args:
        images: (N, S, S, 3) generated images in [-1, 1] (or uint8).
        real_statistics: (mu, sigma) of the real set, from :func:`inception_statistics`
            or :func:`load_statistics`.
        network: default :func:`ganlib.metrics.inception.default_inception` (ImageNet weights).
        splits: Inception Score splits (10 as in the papers; reduced to N when N < 10).

    Returns:
        dict with ``fid``, ``inception_score``, ``inception_score_std`` (Python floats).
    """
    mu, sigma = statistics_pair(real_statistics, "inception_metrics",
                                "ganlib.metrics.inception_statistics or load_statistics")
    network = network if network is not None else default_inception()
    out = network.predict(images, batch_size=batch_size)
    n = out["probs"].shape[0]
    fid = frechet_distance(*feature_statistics(out["features"]), mu, sigma) if n >= 2 else float("nan")
    is_mean, is_std = inception_score(out["probs"], splits=min(int(splits), n))
    return {"fid": fid, "inception_score": is_mean, "inception_score_std": is_std}


_STATISTICS_KEYS = ("mu", "sigma")


def save_statistics(path, mu, sigma, **metadata):
    """Write FID statistics to an ``.npz`` file: arrays ``mu`` (F,), ``sigma`` (F, F), plus metadata.

    Metadata (e.g. ``count=N``, ``dataset="cub"``, ``split="test"``,
    ``image_size=256``, ``weights="imagenet"``) is stored as scalar entries and
    returned by ``load_statistics(path, with_metadata=True)``. The file is written
    to exactly ``path`` (no suffix added), atomically (temporary file + rename).
    """
    import pathlib

    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"save_statistics: expected mu (F,) and sigma (F, F), got {mu.shape} and {sigma.shape}")
    extra = {}
    for key, value in metadata.items():
        if key in _STATISTICS_KEYS:
            raise ValueError(f"save_statistics: metadata key {key!r} is reserved")
        if isinstance(value, (np.generic,)):
            value = value.item()
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"save_statistics: metadata {key}={value!r} must be a str, int, float or bool")
        extra[key] = np.asarray(value)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma, **extra)
    os.replace(tmp, path)
    return path


def load_statistics(path, with_metadata=False):
    """Read FID statistics written by :func:`save_statistics` (or any ``.npz`` with ``mu``, ``sigma``).

    Returns:
        ``(mu, sigma)``, or ``(mu, sigma, metadata)`` with ``with_metadata=True``
        (metadata: dict of Python scalars).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not an ``.npz`` file, ``mu`` / ``sigma`` missing, of the wrong
            shapes, or not finite (the message names the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FID statistics file {path} does not exist (write one with "
                                "ganlib.metrics.save_statistics(path, *inception_statistics(real_images)))")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npz file of FID statistics "
                         f"(expected arrays 'mu' and 'sigma'): {error}") from None
    if not hasattr(data, "files"):
        raise ValueError(f"{path} holds a single array, not an .npz file of FID statistics "
                         "(expected arrays 'mu' and 'sigma')")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except Exception as error:
        raise ValueError(f"{path}: cannot read the FID statistics in it: {error}") from None
    missing = [k for k in _STATISTICS_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: FID statistics file lacks {missing}; it holds {sorted(arrays)} "
                         "(expected 'mu' (F,) and 'sigma' (F, F))")
    mu, sigma = arrays.pop("mu"), arrays.pop("sigma")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: expected 'mu' of shape (F,) and 'sigma' of shape (F, F), "
                         f"got {mu.shape} and {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"{path}: 'mu' / 'sigma' have non-finite entries")
    if not with_metadata:
        return mu, sigma
    return mu, sigma, {k: (v.item() if v.ndim == 0 else v) for k, v in arrays.items()}
