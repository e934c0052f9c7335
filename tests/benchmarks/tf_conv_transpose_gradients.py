"""A check of TensorFlow, not of ganlib: does a `tf.function` that takes a Conv2DTranspose layer's
gradients with `tf.GradientTape` and applies them with a Keras optimizer return the same gradients
on every call from the same state? (TensorFlow 2.21 without XLA, one thread: it did not on 15-57
of 90 calls; see the README's `ganlib.training` entry. ganlib's trainer switches grappler's
dependency optimisation off on TensorFlow, after which 0 of 540 calls differed;
`tests/test_training.py` runs `wrong_calls` with ganlib's setting.)

Run:  OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \\
      python tests/benchmarks/tf_conv_transpose_gradients.py [--batch 2 --size 8 --channels 32
      --filters 16 --kernel 4 --padding same] [--models 30] [--no-optimizer]
      [--no-dependency-optimization]   (without it: TensorFlow's default setting)

Builds `--models` fresh Conv2D(1x1) -> Conv2DTranspose(stride 2) models from one seed, calls each
one's step three times from the same weights and counts the calls whose gradients differ (by more
than 1e-3 relative) from the first model's first call. Not collected by pytest.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def wrong_calls(models=30, batch=2, size=8, channels=32, filters=16, kernel=4, padding="same",
                optimizer=True):
    """How many of the `3 * models` calls gave other gradients than the first model's first call
    (TensorFlow's current grappler settings; Keras on the TensorFlow backend)."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((batch, size, size, channels)).astype("float32"))

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input(x.shape[1:])
        h = keras.layers.Conv2D(channels, 1)(inputs)
        return keras.Model(inputs, keras.layers.Conv2DTranspose(filters, kernel, strides=2, padding=padding)(h))

    first = build()
    g = tf.constant(rng.standard_normal((batch,) + first.output_shape[1:]).astype("float32"))

    def step_of(model):
        adam = keras.optimizers.Adam(1e-3)
        adam.build(model.trainable_variables)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(x, training=True) * g)
            grads = tape.gradient(loss, model.trainable_variables)
            if optimizer:
                adam.apply(grads, model.trainable_variables)
            return [tf.identity(grad) for grad in grads]
        return step

    weights = first.get_weights()
    reference = [grad.numpy() for grad in step_of(first)()]
    wrong = 0
    for _ in range(models):
        model = build()
        step = step_of(model)
        for _ in range(3):
            model.set_weights(weights)
            grads = [grad.numpy() for grad in step()]
            wrong += any(np.abs(a - b).max() > 1e-3 * np.abs(b).max() for a, b in zip(grads, reference))
    return wrong


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("batch", 2), ("size", 8), ("channels", 32), ("filters", 16), ("kernel", 4),
                          ("models", 30)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--padding", default="same", choices=("same", "valid"))
    parser.add_argument("--no-optimizer", action="store_true", help="take the gradients only")
    parser.add_argument("--no-dependency-optimization", action="store_true",
                        help="switch grappler's dependency optimiser off (as ganlib's trainer does)")
    args = parser.parse_args()
    if args.no_dependency_optimization:
        tf.config.optimizer.set_experimental_options({"dependency_optimization": False})
    wrong = wrong_calls(args.models, args.batch, args.size, args.channels, args.filters, args.kernel,
                        args.padding, optimizer=not args.no_optimizer)
    print(f"tensorflow {tf.__version__}: {wrong} of {3 * args.models} calls gave other gradients than the first")


if __name__ == "__main__":
    main()
