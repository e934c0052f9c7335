"""One data-parallel training run of the toy GAN, in its own process (tests/test_data_parallel.py).

The device count has to be fixed before the backend starts (XLA's host devices, TensorFlow's
logical CPU devices), so each run is a fresh process:

    KERAS_BACKEND=jax python tests/data_parallel_worker.py --host-devices 2 --devices 2 --steps 3

prints one line "RESULT {json}". `--scenario devices` (default): trains `--steps` steps on 1
device and on `--devices` devices, saves each model and resumes it on the other device count
for one more step (next to one more step of the model that was saved). `--scenario processes
--coordinator HOST:PORT --num-processes P --process-id I`: one of P processes (JAX) training
together; the per-step logs.
"""

import argparse
import json
import os
import sys
import tempfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host-devices", type=int, default=1, help="CPU devices this process creates")
    parser.add_argument("--devices", type=int, default=None, help="devices to train on (per process)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--scenario", choices=["devices", "processes"], default="devices")
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

    def fit(model, steps):
        """`steps` steps on a fresh pipeline (its first batches); returns the per-step logs."""
        pipeline, _ = toy_data(n=args.batch * 8, batch_size=args.batch, seed=1)
        record = Record()
        model.fit(pipeline, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[record])
        return record.logs

    def new_model():
        keras.utils.set_random_seed(0)
        model = ToyGAN(num_discriminators=2, ema_decay=0.9, seed=3)
        model.compile()
        return model

    def summary(model):
        ema = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.generator_ema.weights]
        return {"iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                "ema_sum": float(sum(np.abs(w).sum() for w in ema))}

    result = {}
    if args.scenario == "processes":
        # One member of a multi-process run: `steps` steps on every process's devices.
        with training.data_parallel(args.devices, args.coordinator, args.num_processes, args.process_id):
            model = new_model()
            result["logs"] = fit(model, args.steps)
            result["replicas"] = training.replica_count()
        result.update(summary(model))
    else:
        # One process with `--host-devices` devices: `steps` steps on 1 and on `devices` devices,
        # each saved and resumed for one more step on the other device count.
        folder = tempfile.mkdtemp()
        runs = {}
        for name, devices, other in (("one", 1, args.devices), ("many", args.devices, 1)):
            with training.data_parallel(devices):
                model = new_model()
                logs = fit(model, args.steps)
                path = os.path.join(folder, f"{name}.keras")
                model.save(path)
                runs[name] = {"logs": logs, "replicas": training.replica_count(), **summary(model),
                              "next": fit(model, 1)}
            with training.data_parallel(other):
                resumed = keras.saving.load_model(path)
                runs[name]["resumed_replicas"] = training.replica_count()
                runs[name]["resumed_next"] = fit(resumed, 1)
                runs[name]["resumed_iterations"] = summary(resumed)["iterations"]
        result = runs
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
