"""The adversarial training step: the one backend-specific module of ganlib.

Every paper's model subclasses `AdversarialModel` and writes its losses with
`keras.ops` only; this module runs the alternating update inside `fit()` the way
the reference implementations do, once per batch:

1. draw the noise (`sample_noise`) and run the generator once
   (`generator_outputs`), keeping the graph to the generator's weights;
2. update every discriminator on `discriminator_loss`, the fakes treated as
   constants (each discriminator has its own optimizer);
3. update the generator on `generator_loss`, scored by the *updated*
   discriminators, back-propagating through the fakes of step 1;
4. update the generator's exponential moving average, if any.

How each backend does it:

* TensorFlow: `tf.GradientTape`, the step compiled with `tf.function`
  (XLA with `compile(jit_compile=True)`); `compile` switches grappler's dependency
  optimisation off (a TensorFlow 2.21 bug, `_tensorflow_without_dependency_optimization`).
* PyTorch: `loss.backward()` and `optimizer.apply(...)` under `torch.no_grad()`.
* JAX: stateless and jitted. Every variable travels in the trainer state; the
  generator's forward pass is differentiated with `jax.vjp`, the losses with
  `jax.value_and_grad`; optimizers update with `stateless_apply`. The several
  optimizers live in one `keras.optimizers.MultiOptimizer`, whose `variables`
  hold all of their state, so Keras' JAX trainer threads it through `fit()` and
  `.keras` files save it.

Data parallelism (`data_parallel(n)`, `ganlib train --devices N`): JAX shards each batch over
the devices of `keras.distribution.DataParallel` (one or several processes) and compiles the
same step; TensorFlow runs the step once per `MirroredStrategy` replica on its share, with
the losses scaled by 1/replicas, BatchNorm synchronised and the global batch's noise split.

Subclass contract (all `keras.ops`, no backend code):

* `sample_noise(batch)` -> every random input of the generator (a pytree; on several
  TensorFlow replicas each tensor's first axis is split over them);
* `generator_outputs(batch, noise, training)` -> dict of float tensors: the
  fakes and everything the generator loss needs from G (e.g. CA's mu, logvar);
* `discriminator_loss(batch, fakes, training)` -> `(loss, logs)`;
* `generator_loss(batch, fakes, training)` -> `(loss, logs)`;
* `default_optimizers()` -> `(g_optimizer, [d_optimizer, ...])` from the config.
"""

import contextlib
import math
import os
import warnings

import keras
import numpy as np
from keras import ops

from ganlib.backend import BACKEND

class AdversarialModel(keras.Model):
    """A GAN whose `fit()` alternates discriminator and generator updates.

    Args:
        generator: a built Keras model (functional, so that it can be cloned
            for the EMA copy).
        discriminators: a list of built Keras models, one per scale or stage.
        auxiliaries: frozen helper networks (text/image encoders, captioner);
            they are tracked (saved with the model) but never trained.
        ema_decay: if set, keeps `generator_ema`, an exponential moving average
            of the generator's weights (BatchNorm statistics copied), used by
            `generate()`.
        seed: seed of the noise generator.
    """

    def __init__(self, generator, discriminators, auxiliaries=(), ema_decay=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminators = list(discriminators)
        self.auxiliaries = list(auxiliaries)
        for network in self.auxiliaries:
            network.trainable = False
        self.ema_decay = ema_decay
        self.generator_ema = None
        if ema_decay:
            self.generator_ema = keras.models.clone_model(generator)
            self.generator_ema.set_weights(generator.get_weights())
            self.generator_ema.trainable = False
        self.noise_seed = keras.random.SeedGenerator(seed)
        self._roles = None
        self.built = True

    # ---------------------------------------------------------------- to override
    def sample_noise(self, batch):
        """Every random input of the generator for this batch (default: none)."""
        return {}

    def generator_outputs(self, batch, noise, training=False):
        raise NotImplementedError

    def discriminator_loss(self, batch, fakes, training=True):
        raise NotImplementedError

    def generator_loss(self, batch, fakes, training=True):
        raise NotImplementedError

    def default_optimizers(self):
        raise NotImplementedError("Pass g_optimizer and d_optimizers to compile().")

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; `shuffle` defaults to False (shuffling is the pipeline's job)."""
        kwargs.setdefault("shuffle", False)
        if BACKEND == "torch":
            _limit_torch_cpu_threads()
        return super().fit(*args, **kwargs)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # ---------------------------------------------------------------- compile
    def compile(self, g_optimizer=None, d_optimizers=None, jit_compile="auto", **kwargs):
        """Attach one optimizer to the generator and one to each discriminator.

        With no arguments the config's optimizers are used
        (`default_optimizers()`).
        """
        if g_optimizer is None or d_optimizers is None:
            default_g, default_d = self.default_optimizers()
            g_optimizer = g_optimizer or default_g
            d_optimizers = d_optimizers or default_d
        d_optimizers = list(d_optimizers)
        if len(d_optimizers) != len(self.discriminators):
            raise ValueError(
                f"d_optimizers: expected one optimizer per discriminator "
                f"({len(self.discriminators)}), got {len(d_optimizers)}."
            )
        if self.generator.dtype_policy.name == "mixed_float16":
            raise ValueError("mixed_float16 needs loss scaling, which GAN training here does not do; "
                             "use the 'mixed_bfloat16' policy for mixed precision.")
        owner = {}
        for v in self.generator.trainable_variables:
            owner[id(v)] = g_optimizer
        for d, opt in zip(self.discriminators, d_optimizers):
            for v in d.trainable_variables:
                owner[id(v)] = opt
        stray = [v.path for v in self.trainable_variables if id(v) not in owner]
        if stray:
            raise ValueError(f"Trainable variables outside the generator and discriminators: {stray[:5]}. "
                             "Pass helper networks as `auxiliaries` (they are frozen).")
        self._compile_args = (g_optimizer, d_optimizers)
        if BACKEND == "tensorflow":
            _tensorflow_without_dependency_optimization()
        optimizer = keras.optimizers.MultiOptimizer(lambda v: owner[id(v)], name="adversarial")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, auto_scale_loss=False, **kwargs)
        self.optimizer.build(self.trainable_variables)
        self._roles = _Roles(self, g_optimizer, d_optimizers)
        if _tensorflow_replicas() > 1:
            self._synchronize_batch_norm()

    def _synchronize_batch_norm(self):
        """TensorFlow replicas: BatchNorm statistics over the global batch (as on one device
        and as JAX's data parallelism computes them), not over each replica's share."""
        for network in [self.generator, *self.discriminators]:
            for layer in network._flatten_layers(include_self=False):   # nested blocks included
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True

    @property
    def g_optimizer(self):
        return self._compile_args[0]

    @property
    def d_optimizers(self):
        return list(self._compile_args[1])

    def get_compile_config(self):
        if not getattr(self, "_compile_args", None):
            return {}
        g, ds = self._compile_args
        return {
            "g_optimizer": keras.saving.serialize_keras_object(g),
            "d_optimizers": [keras.saving.serialize_keras_object(d) for d in ds],
        }

    def compile_from_config(self, config):
        config = dict(config or {})
        g = config.get("g_optimizer")
        ds = config.get("d_optimizers")
        self.compile(
            g_optimizer=keras.saving.deserialize_keras_object(g) if g else None,
            d_optimizers=[keras.saving.deserialize_keras_object(d) for d in ds] if ds else None,
        )

    # ---------------------------------------------------------------- the step
    def train_step(self, *args):
        if BACKEND == "jax":
            return self._train_step_jax(*args)
        if BACKEND == "tensorflow":
            return self._train_step_tensorflow(*args)
        if BACKEND == "torch":
            return self._train_step_torch(*args)
        raise NotImplementedError(f"AdversarialModel does not support the {BACKEND!r} backend.")

    def _logs(self, d_loss, g_loss, d_logs, g_logs):
        logs = {"d_loss": d_loss, "g_loss": g_loss}
        logs.update(d_logs or {})
        logs.update(g_logs or {})
        return logs

    def _ema_pairs(self):
        return list(zip(self.generator.weights, self.generator_ema.weights))

    def _update_ema(self):
        decay = self.ema_decay
        for w, w_ema in self._ema_pairs():
            if w.trainable:
                w_ema.assign(decay * w_ema + (1.0 - decay) * ops.cast(w, w_ema.dtype))
            else:
                w_ema.assign(w)

    def _train_step_tensorflow(self, data):
        import tensorflow as tf

        roles = self._roles
        # Under tf.distribute this runs once per replica on its share of the global
        # batch: the losses are means over that share, so they are scaled by
        # 1/replicas before the gradients, which the optimizers sum over replicas;
        # the logs are averaged over replicas by Keras' trainer.
        replicas = _tensorflow_replicas()
        scale = 1.0 / replicas
        noise = self.sample_noise(data) if replicas == 1 else self._replica_noise(data)
        with tf.GradientTape() as g_tape:
            fakes = self.generator_outputs(data, noise, training=True)
            with g_tape.stop_recording():
                constant = tf.nest.map_structure(tf.stop_gradient, fakes)
                with tf.GradientTape() as d_tape:
                    d_loss, d_logs = self.discriminator_loss(data, constant, training=True)
                    d_scaled = d_loss * scale if replicas > 1 else d_loss
                d_grads = d_tape.gradient(d_scaled, roles.d_variables)
                for opt, variables in roles.d_groups:
                    opt.apply([d_grads[roles.d_index[id(v)]] for v in variables], variables)
            g_loss, g_logs = self.generator_loss(data, fakes, training=True)
            g_scaled = g_loss * scale if replicas > 1 else g_loss
        g_grads = g_tape.gradient(g_scaled, roles.g_variables)
        roles.g_optimizer.apply(g_grads, roles.g_variables)
        if self.generator_ema is not None:
            self._update_ema()
        self.optimizer.iterations.assign_add(1)
        return self._logs(d_loss, g_loss, d_logs, g_logs)

    def _replica_noise(self, data):
        """This replica's share of the noise one device would draw for the global batch.

        Every replica draws the global batch's noise from the same seed state and keeps
        its rows (`tf.distribute` gives replica i the i-th slice of each global batch),
        so the noise, and the seed state after it, do not depend on the replica count.
        Each noise tensor's first axis is the batch.
        """
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        n, i = context.num_replicas_in_sync, context.replica_id_in_sync_group
        whole = tf.nest.map_structure(lambda t: tf.concat([t] * n, axis=0) if isinstance(t, tf.Tensor) else t, data)
        state = self.noise_seed.state
        with keras.StatelessScope(state_mapping=[(state, state.value)]) as scope:
            noise = self.sample_noise(whole)
            new_state = scope.get_current_value(state)
        state.assign(new_state)   # the same value on every replica

        def share(t):
            rows = tf.shape(t)[0] // n
            return t[i * rows:(i + 1) * rows]

        return tf.nest.map_structure(share, noise)

    def _train_step_torch(self, data):
        import torch

        roles = self._roles
        noise = self.sample_noise(data)
        fakes = self.generator_outputs(data, noise, training=True)
        constant = keras.tree.map_structure(lambda t: t.detach(), fakes)

        for v in self.trainable_variables:
            v.value.grad = None
        d_loss, d_logs = self.discriminator_loss(data, constant, training=True)
        d_loss.backward()
        with torch.no_grad():
            for opt, variables in roles.d_groups:
                opt.apply([v.value.grad for v in variables], variables)

        for v in self.trainable_variables:
            v.value.grad = None
        g_loss, g_logs = self.generator_loss(data, fakes, training=True)
        g_loss.backward()
        with torch.no_grad():
            roles.g_optimizer.apply([v.value.grad for v in roles.g_variables], roles.g_variables)
            if self.generator_ema is not None:
                self._update_ema()
            self.optimizer.iterations.assign_add(1)
        detach = lambda t: t.detach() if hasattr(t, "detach") else t
        return keras.tree.map_structure(detach, self._logs(d_loss, g_loss, d_logs, g_logs))

    def _train_step_jax(self, state, data):
        import jax

        roles = self._roles
        trainable, non_trainable, opt_values, metric_values = state
        trainable, opt_values = list(trainable), list(opt_values)
        tv_refs, ntv_refs = self.trainable_variables, self.non_trainable_variables

        def stateless(fn, tv, ntv):
            mapping = list(zip(tv_refs, tv)) + list(zip(ntv_refs, ntv))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                out = fn()
            return out, [scope.get_current_value(v) for v in ntv_refs]

        def with_values(positions, values, base):
            tv = list(base)
            for p, value in zip(positions, values):
                tv[p] = value
            return tv

        # 1. noise, then one generator forward pass, differentiable in G's weights.
        noise, non_trainable = stateless(lambda: self.sample_noise(data), trainable, non_trainable)

        def generate(g_values):
            tv = with_values(roles.g_positions, g_values, trainable)
            return stateless(lambda: self.generator_outputs(data, noise, training=True), tv, non_trainable)

        g_values = [trainable[p] for p in roles.g_positions]
        fakes, g_vjp, non_trainable = jax.vjp(generate, g_values, has_aux=True)

        # 2. discriminators, fakes held constant.
        constant = jax.lax.stop_gradient(fakes)

        def d_objective(d_values):
            tv = with_values(roles.d_positions, d_values, trainable)
            (loss, logs), ntv = stateless(lambda: self.discriminator_loss(data, constant, training=True),
                                          tv, non_trainable)
            return loss, (logs, ntv)

        d_values = [trainable[p] for p in roles.d_positions]
        (d_loss, (d_logs, non_trainable)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(d_values)
        grad_at = dict(zip(roles.d_positions, d_grads))
        for opt, positions, opt_positions in roles.d_jax_groups:
            new_tv, new_ov = opt.stateless_apply(
                [opt_values[o] for o in opt_positions],
                [grad_at[p] for p in positions],
                [trainable[p] for p in positions],
            )
            trainable = with_values(positions, new_tv, trainable)
            opt_values = with_values(opt_positions, new_ov, opt_values)

        # 3. generator, scored by the updated discriminators.
        def g_objective(fakes_in):
            (loss, logs), ntv = stateless(lambda: self.generator_loss(data, fakes_in, training=True),
                                          trainable, non_trainable)
            return loss, (logs, ntv)

        (g_loss, (g_logs, non_trainable)), d_fakes = jax.value_and_grad(g_objective, has_aux=True)(fakes)
        (g_grads,) = g_vjp(d_fakes)
        by_position = dict(zip(roles.g_positions, g_grads))
        g_positions, g_opt_positions = roles.g_jax_group
        new_tv, new_ov = roles.g_optimizer.stateless_apply(
            [opt_values[o] for o in g_opt_positions],
            [by_position[p] for p in g_positions],
            [trainable[p] for p in g_positions],
        )
        trainable = with_values(g_positions, new_tv, trainable)
        opt_values = with_values(g_opt_positions, new_ov, opt_values)

        # 4. EMA of the generator (its variables are non-trainable state).
        if self.generator_ema is not None:
            non_trainable = list(non_trainable)
            decay = self.ema_decay
            for kind, src, dst in roles.ema_positions:
                value = trainable[src] if kind == "trainable" else non_trainable[src]
                if kind == "trainable":
                    value = decay * non_trainable[dst] + (1.0 - decay) * value
                non_trainable[dst] = value
        it = roles.iterations_position
        opt_values[it] = opt_values[it] + 1

        logs = self._logs(d_loss, g_loss, d_logs, g_logs)
        return logs, (trainable, non_trainable, opt_values, metric_values)

    # ---------------------------------------------------------------- saving
    # The noise generator's state is not a layer variable, so Keras would not save
    # it; without it a resumed run would replay the noise of its first steps.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["noise_seed_state"] = self.noise_seed.state

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if key != "noise_seed_state"}
        super().load_own_variables(own)
        if "noise_seed_state" in store.keys():
            self.noise_seed.state.assign(store["noise_seed_state"])

    # ---------------------------------------------------------------- inference
    def sync_ema(self):
        """Copy the generator's current weights into the EMA copy (e.g. after loading weights)."""
        if self.generator_ema is not None:
            self.generator_ema.set_weights(self.generator.get_weights())

    def inference_generator(self):
        """The EMA generator when there is one, else the generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator


class _Roles:
    """Which variables each optimizer updates, as objects and as state positions."""

    def __init__(self, model, g_optimizer, d_optimizers):
        self.g_optimizer = g_optimizer
        trainable = model.trainable_variables
        position = {id(v): i for i, v in enumerate(trainable)}
        g_ids = {id(v) for v in model.generator.trainable_variables}
        self.g_variables = [v for v in trainable if id(v) in g_ids]
        self.g_positions = [position[id(v)] for v in self.g_variables]
        self.d_groups = []
        for d, opt in zip(model.discriminators, d_optimizers):
            ids = {id(v) for v in d.trainable_variables}
            self.d_groups.append((opt, [v for v in trainable if id(v) in ids]))
        self.d_variables = [v for _, variables in self.d_groups for v in variables]
        self.d_index = {id(v): i for i, v in enumerate(self.d_variables)}
        self.d_positions = [position[id(v)] for v in self.d_variables]

        # JAX: state positions, each optimizer's variables in its own build order.
        opt_position = {id(v): i for i, v in enumerate(model.optimizer.variables)}

        def jax_group(opt):
            return ([position[id(v)] for v in opt._trainable_variables],
                    [opt_position[id(v)] for v in opt.variables])

        self.g_jax_group = jax_group(g_optimizer)
        self.d_jax_groups = [(opt, *jax_group(opt)) for opt, _ in self.d_groups]
        self.iterations_position = opt_position[id(model.optimizer.iterations)]
        self.ema_positions = []
        if model.generator_ema is not None:
            nt_position = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
            for w, w_ema in zip(model.generator.weights, model.generator_ema.weights):
                if w.trainable:
                    self.ema_positions.append(("trainable", position[id(w)], nt_position[id(w_ema)]))
                else:
                    self.ema_positions.append(("non_trainable", nt_position[id(w)], nt_position[id(w_ema)]))


def _tensorflow_replicas():
    """How many replicas a TensorFlow step runs in (1 outside `tf.distribute`)."""
    if BACKEND != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _tensorflow_without_dependency_optimization():
    """Switch TensorFlow's graph optimiser's dependency optimisation off (process-wide).

    TensorFlow 2.21 without XLA, in a `tf.function` that takes a `Conv2DTranspose`'s gradients
    with `tf.GradientTape` and applies them with a Keras optimizer (this module's step), returned
    a wrong kernel gradient on 15-57 of 90 calls with the pass on and 0 of 540 with it off
    (`tests/benchmarks/tf_conv_transpose_gradients.py`). Off, the fast steps of GAN-INT-CLS,
    AttnGAN and HDGAN took 258/262, 383/387 and 256/260 ms against 253/265, 385/397 and
    268/269 ms on (`ganlib.bench.bench`, two runs each, one thread).
    """
    import tensorflow as tf

    if tf.config.optimizer.get_experimental_options().get("dependency_optimization", True):
        tf.config.optimizer.set_experimental_options({"dependency_optimization": False})


MULTI_PROCESS_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")


def data_parallel(devices=None, coordinator=None, num_processes=None, process_id=None):
    """A context to build (or load), compile and `fit()` a model in, data-parallel.

    Each global batch (the config's `batch_size`) is split evenly over the devices;
    every device holds a copy of all weights, optimizer states, BatchNorm statistics,
    the EMA generator and the noise seed, and the update equals one device's on the
    whole batch (up to float round-off):

    * JAX: `keras.distribution.DataParallel` over `devices` devices of this host (GPUs,
      TPUs, else CPU devices, e.g. `XLA_FLAGS=--xla_force_host_platform_device_count=N`),
      or of every process once several processes are joined through
      `keras.distribution.initialize` (JAX's `jax.distributed`): pass `coordinator`
      ("host:port" of process 0), `num_processes` and `process_id`, or set Keras'
      variables KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and
      KERAS_DISTRIBUTION_PROCESS_ID. Each process then reads its share of every global
      batch. The compiled step computes the global batch's losses, BatchNorm statistics
      and gradients exactly.
    * TensorFlow: `tf.distribute.MirroredStrategy` over `devices` GPUs (else logical
      CPU devices) of this host; one process only. Each replica's losses are scaled by
      1/replicas and the optimizers sum the gradients over replicas; BatchNorm layers
      are synchronised over replicas; the noise is drawn for the global batch and
      split. Losses that couple the items of a batch (e.g. in-batch negatives) see
      only a replica's share.
    * PyTorch: not supported (Keras 3.15 has no data-parallel engine for it): raises.

    `devices=None` with no other process uses one device (a no-op context).
    """
    multi = coordinator is not None or num_processes is not None or any(os.environ.get(k) for k in MULTI_PROCESS_ENV)
    if devices is not None and (not isinstance(devices, int) or devices < 1):
        raise ValueError(f"devices: expected a positive number of devices, got {devices!r}.")
    if not multi and (devices is None or devices == 1):
        return contextlib.nullcontext()
    if BACKEND == "torch":
        raise NotImplementedError(
            "data-parallel training (devices > 1 or several processes) is not available on the torch "
            "backend: Keras 3.15's keras.distribution supports JAX only and tf.distribute is TensorFlow's. "
            "Use KERAS_BACKEND=jax (one or several hosts) or KERAS_BACKEND=tensorflow (one host).")
    if BACKEND == "jax":
        return _jax_data_parallel(devices, multi, coordinator, num_processes, process_id)
    if BACKEND == "tensorflow":
        if multi:
            raise NotImplementedError(
                "several processes: ganlib trains on several hosts with the JAX backend only "
                "(KERAS_BACKEND=jax); on TensorFlow it uses MirroredStrategy on one host.")
        return _tensorflow_data_parallel(devices)
    raise NotImplementedError(f"data-parallel training is not available on the {BACKEND!r} backend.")


def _jax_data_parallel(devices, multi, coordinator, num_processes, process_id):
    import jax

    if multi and not jax.distributed.is_initialized():
        keras.distribution.initialize(coordinator, num_processes, process_id)
    everywhere = jax.devices()
    chosen = []
    for p in range(jax.process_count()):
        local = [d for d in everywhere if d.process_index == p]
        n = len(local) if devices is None else devices
        if n > len(local):
            raise ValueError(f"devices: {devices} requested, but process {p} has {len(local)} "
                             f"{local[0].platform} device(s) ({local}).")
        chosen += local[:n]
    distribution = keras.distribution.DataParallel(devices=chosen)
    return distribution.scope()


def _tensorflow_data_parallel(devices):
    import tensorflow as tf

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if devices > len(found):
        raise ValueError(f"devices: {devices} requested, but TensorFlow sees {len(found)} "
                         f"{found[0].device_type} device(s) ({[d.name for d in found]}).")
    strategy = tf.distribute.MirroredStrategy([d.name for d in found[:devices]])
    return strategy.scope()


def replica_count():
    """The number of devices the current `data_parallel` context splits each batch over."""
    if BACKEND == "jax":
        distribution = keras.distribution.distribution()
        return 1 if distribution is None else distribution.device_mesh.devices.size
    return _tensorflow_replicas()


def process_index():
    """This process's index among the processes training together (0 when alone)."""
    if BACKEND == "jax":
        import jax

        return jax.process_index()
    return 0


def _limit_torch_cpu_threads():
    """PyTorch on CPU: use half the cores (or $GANLIB_TORCH_THREADS) while tf.data feeds it.

    Torch's OpenMP workers spin while they wait; next to the tf.data threads of the
    input pipeline in the same process they oversubscribe the CPU. Measured on 2
    loaded cores, the fast CGAN step took 2.3 s with 2 torch threads and 0.41 s with 1.
    """
    import os

    import torch

    if torch.cuda.is_available():
        return
    wanted = os.environ.get("GANLIB_TORCH_THREADS")
    threads = int(wanted) if wanted else max(1, (os.cpu_count() or 2) // 2)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def enable_determinism(seed=0):
    """Seed Python, NumPy and the backend, and ask the backend for deterministic kernels.

    With this, a training run repeats exactly on the same backend and machine.
    """
    keras.utils.set_random_seed(seed)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif BACKEND == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def all_finite(values):
    """True if every number in a nested structure of tensors/arrays is finite."""
    for value in keras.tree.flatten(values):
        array = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
        if not np.all(np.isfinite(array)):
            return False
    return True


def _is_finite_number(x):
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        warnings.warn(f"cannot read the logged value {x!r} as a number")
        return True
