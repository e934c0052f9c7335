"""One data-parallel training run of the toy GAN, in its own process (tests/test_data_parallel.py).

The device count has to be fixed before the backend starts (XLA's host devices, TensorFlow's
logical CPU devices), so each run is a fresh process:

    KERAS_BACKEND=jax python tests/data_parallel_worker.py --host-devices 2 --devices 2 --steps 3

prints one JSON line: the per-step logs, the step count, and the final weights' checksum.
`--save FILE` writes the model after the steps; `--load FILE` resumes from one first.
`--coordinator HOST:PORT --num-processes P --process-id I` joins P processes (JAX).
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host-devices", type=int, default=1, help="CPU devices this process creates")
    parser.add_argument("--devices", type=int, default=None, help="devices to train on (per process)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--save", default=None)
    parser.add_argument("--load", default=None)
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--process-id", type=int, default=None)
    args = parser.parse_args()

    backend = os.environ["KERAS_BACKEND"]
    if backend == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.host_devices}"
    import tensorflow as tf

    if backend == "tensorflow":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.host_devices)
    else:
        tf.config.set_visible_devices([], "GPU")

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import keras
    import numpy as np

    from ganlib import training
    from tests.toy_gan import ToyGAN, toy_data

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.logs = []

        def on_train_batch_end(self, batch, logs=None):
            self.logs.append({k: float(v) for k, v in logs.items()})

    with training.data_parallel(args.devices, args.coordinator, args.num_processes, args.process_id):
        if args.load:
            model = keras.saving.load_model(args.load)
        else:
            keras.utils.set_random_seed(0)
            model = ToyGAN(num_discriminators=2, ema_decay=0.9, seed=3)
            model.compile()
        pipeline, _ = toy_data(n=args.batch * 8, batch_size=args.batch, seed=1)
        record = Record()
        model.fit(pipeline, steps_per_epoch=args.steps, epochs=1, verbose=0, callbacks=[record])
        replicas = training.replica_count()
    if args.save and training.is_chief():
        model.save(args.save)
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.generator_ema.weights]
    print("RESULT " + json.dumps({"logs": record.logs, "replicas": replicas,
                                  "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                                  "ema_sum": float(sum(np.abs(w).sum() for w in weights))}))


if __name__ == "__main__":
    main()
