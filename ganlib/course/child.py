"""The process that runs a student's exercises file: `python -I -B child.py ...`.

Started by `ganlib.course.sandbox.Child`, never imported by the student's code. It
imports only the standard library and numpy at start (and the trusted packages the
parent names), so ganlib's reference implementations are not in the process unless
the lesson allows them, and then only the allowed names (`restrict_ganlib`).

Protocol, over two pipes: the parent sends a request, the child answers with VALUES
only (see `encode`: JSON plus numpy arrays in .npy format, never pickles). Requests:

    Every request may carry "timeout": seconds after which a Python-level loop in
    the student's code is interrupted (the answer is then the error "__timeout__").

    {"op": "load"}                              import the submission
    {"op": "call", "name", "args", "kwargs", "mode"}
        mode "eager": name(*args, **kwargs) on numpy inputs;
        "compiled": inside the backend's compiled step (tf.function, jax.jit; torch
        tensors), array arguments as backend tensors;
        "gradient": the value and the gradient of sum(value) with respect to each
        float array argument, by the backend's autodiff.
    {"op": "model", "name", "input_shape", "args", "weights", "x"}
        build keras.Model(inputs, name(inputs, *args)), set the given layers' weights,
        run it on x in inference mode; answer its layers, weights and output. A list
        of shapes makes one input each, passed as name(input_1, input_2, ..., *args),
        and x is then a list of arrays.

Before importing the submission the child sandboxes itself: resource limits are set
by the parent (preexec), and on Linux with Landlock the process loses the right to
write anywhere but its own temporary folder, to read anything but the Python
installation, system folders and that folder (so not the course repository, its
solutions/ or its tests), to signal processes outside the sandbox and to open TCP
connections.
"""

import ctypes
import io
import json
import os
import signal
import struct
import sys
import types

import numpy as np

MAX_MESSAGE = 256 << 20


# ---------------------------------------------------------------------------
# Values over a pipe: JSON + .npy, nothing that runs code when decoded
# ---------------------------------------------------------------------------

def _to_plain(value, arrays):
    if isinstance(value, (np.ndarray, np.generic)):   # first: np.float64 is a float
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind not in "biufc":
            raise TypeError(f"a numpy array of dtype {array.dtype}")
        arrays.append(array)
        return {"__array__": len(arrays) - 1}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"__int__": str(value)}
    if isinstance(value, float):
        return {"__float__": repr(float(value))}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_to_plain(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"__dict__": [[str(k), _to_plain(v, arrays)] for k, v in value.items()]}
    module = type(value).__module__ or ""
    if module.split(".")[0] in ("tensorflow", "jax", "jaxlib", "torch", "keras"):
        import keras
        return _to_plain(np.asarray(keras.ops.convert_to_numpy(value)), arrays)
    raise TypeError(f"a {type(value).__name__}")


def encode(value):
    """bytes holding `value`: None, bool, int, float, str, numpy arrays, lists, dicts."""
    arrays = []
    header = json.dumps(_to_plain(value, arrays)).encode()
    parts = [struct.pack("<Q", len(header)), header]
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        parts += [struct.pack("<Q", buffer.tell()), buffer.getvalue()]
    return b"".join(parts)


def decode(data):
    """The value `encode` wrote; raises ValueError on anything malformed."""
    def take(offset):
        (size,) = struct.unpack_from("<Q", data, offset)
        if offset + 8 + size > len(data):
            raise ValueError("truncated message")
        return data[offset + 8:offset + 8 + size], offset + 8 + size

    header, offset = take(0)
    arrays = []
    while offset < len(data):
        blob, offset = take(offset)
        arrays.append(np.load(io.BytesIO(blob), allow_pickle=False))

    def build(node):
        if node is None or isinstance(node, (bool, str)):
            return node
        if isinstance(node, dict) and len(node) == 1:
            (kind, item), = node.items()
            if kind == "__int__":
                return int(item)
            if kind == "__float__":
                return float(item)
            if kind == "__array__":
                return arrays[int(item)]
            if kind == "__list__":
                return [build(x) for x in item]
            if kind == "__dict__":
                return {str(k): build(v) for k, v in item}
        raise ValueError(f"malformed value {str(node)[:80]}")

    return build(json.loads(header))


def send(fd, value):
    send_bytes(fd, encode(value))


def send_bytes(fd, data):
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def receive(fd):
    """One message from `fd` (blocking); EOFError when the other side is gone."""
    def read(count):
        chunks = []
        while count:
            chunk = os.read(fd, min(count, 1 << 20))
            if not chunk:
                raise EOFError("pipe closed")
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    (size,) = struct.unpack("<Q", read(8))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is over the limit")
    return decode(read(size))


# ---------------------------------------------------------------------------
# Sandbox
# ---------------------------------------------------------------------------

class _ReferenceUnavailable:
    """Stands for a ganlib name the lesson does not allow; calling it raises."""

    def __init__(self, qualified):
        self.qualified = qualified

    def __call__(self, *args, **kwargs):
        raise PermissionError(f"{self.qualified} is not available to graded exercises "
                              "(it is ganlib's reference for an exercise): write your own")


class _Refuse:
    """A meta-path finder that refuses ganlib's other modules and `solutions`."""

    def __init__(self, allowed_modules):
        self.allowed = set(allowed_modules)

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top == "solutions" or (top == "ganlib" and name not in self.allowed):
            raise ImportError(f"graded exercises may not import {name} (ganlib's reference "
                              "implementations and the solutions are off limits)", name=name)
        return None


def _code_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _isolated(fn, memo):
    """A copy of the function `fn` whose globals hold only the names its code uses
    (functions of its own module copied the same way), so that `fn.__globals__`
    does not lead to the rest of its module (the references)."""
    if fn in memo:
        return memo[fn]
    env = {"__builtins__": __builtins__, "__name__": fn.__module__}
    copy = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__doc__ = fn.__kwdefaults__, fn.__doc__
    memo[fn] = copy
    for name in _code_names(fn.__code__):
        if name in fn.__globals__:
            value = fn.__globals__[name]
            same_module = isinstance(value, types.FunctionType) and value.__module__ == fn.__module__
            env[name] = _isolated(value, memo) if same_module else value
    return copy


def restrict_ganlib(allowed):
    """Keep only `allowed` ({"ganlib.losses": ["bce"], ...}) of ganlib in this process.

    The allowed functions are imported from the real modules and copied with only
    the globals they use (`_isolated`); every ganlib module is then dropped from sys.modules and replaced by a plain module holding only the
    allowed names (other public names raise when called), and importing any other
    ganlib module or `solutions` raises ImportError.
    """
    import importlib
    stand_ins = {}
    for module_name, names in allowed.items():
        real = importlib.import_module(module_name)
        stand_in = types.ModuleType(module_name)
        for public in getattr(real, "__all__", None) or [n for n in vars(real) if not n.startswith("_")]:
            if callable(getattr(real, public, None)):
                setattr(stand_in, public, _ReferenceUnavailable(f"{module_name}.{public}"))
        memo = {}
        for name in names:
            value = getattr(real, name)
            if isinstance(value, types.FunctionType):
                value = _isolated(value, memo)
            setattr(stand_in, name, value)
        stand_ins[module_name] = stand_in
    for name in [n for n in sys.modules if n == "ganlib" or n.startswith("ganlib.")]:
        del sys.modules[name]
    if stand_ins:
        package = types.ModuleType("ganlib")
        package.__path__ = []
        sys.modules["ganlib"] = package
        for name, module in stand_ins.items():
            sys.modules[name] = module
            setattr(package, name.split(".", 1)[1], module)
    sys.meta_path.insert(0, _Refuse(["ganlib", *stand_ins]))


def landlock(writable, readable):
    """Restrict this process with Landlock; returns the ABI version, or 0 if unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs_all = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) \
        | (1 << 15 if abi >= 5 else 0)
    read = (1 << 0) | (1 << 2) | (1 << 3)                 # execute, read file, read dir
    file_bits = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14 if abi >= 3 else 0) \
        | (1 << 15 if abi >= 5 else 0)
    fields = [fs_all]
    if abi >= 4:
        fields.append(3)                                  # no TCP bind / connect
    if abi >= 6:
        fields.append(3)                                  # no signals, abstract sockets out
    attr = struct.pack(f"<{len(fields)}Q", *fields)
    ruleset = syscall(444, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    for paths, access in ((readable, read), (writable, fs_all)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            allowed = access if os.path.isdir(path) else access & file_bits
            rule = struct.pack("<Qi", allowed, fd)
            syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.c_char_p(rule),
                    ctypes.c_uint32(0))
            os.close(fd)
    libc.prctl(38, 1, 0, 0, 0)                            # PR_SET_NO_NEW_PRIVS
    if syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        return 0
    os.close(ruleset)
    return abi


# ---------------------------------------------------------------------------
# Running the student's functions
# ---------------------------------------------------------------------------

def _split_arrays(args):
    """Positions of the array arguments, and a function that puts new ones there."""
    where = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]

    def fill(arrays):
        full = list(args)
        for i, array in zip(where, arrays):
            full[i] = array
        return full
    return where, fill


def call_compiled(fn, args, kwargs, gradient):
    import keras
    backend = keras.backend.backend()
    where, fill = _split_arrays(args)
    floats = [k for k, i in enumerate(where) if args[i].dtype.kind == "f"]

    def run(*arrays):
        return fn(*fill(arrays), **kwargs)

    def total(*arrays):
        return keras.ops.sum(keras.ops.cast(run(*arrays), "float32"))

    tensors = [keras.ops.convert_to_tensor(args[i]) for i in where]
    if backend == "tensorflow":
        import tensorflow as tf
        if not gradient:
            return tf.function(run)(*tensors)

        @tf.function
        def step(*arrays):
            with tf.GradientTape() as tape:
                for k in floats:
                    tape.watch(arrays[k])
                value = run(*arrays)
                loss = tf.reduce_sum(tf.cast(value, tf.float32))
            return value, tape.gradient(loss, [arrays[k] for k in floats])
        value, grads = step(*tensors)
    elif backend == "jax":
        import jax
        if not gradient:
            return jax.jit(run)(*tensors)

        def partial(*chosen):
            arrays = list(tensors)
            for k, t in zip(floats, chosen):
                arrays[k] = t
            value = run(*arrays)
            return keras.ops.sum(keras.ops.cast(value, "float32")), value
        (_, value), grads = jax.jit(jax.value_and_grad(
            partial, argnums=tuple(range(len(floats))), has_aux=True))(*[tensors[k] for k in floats])
    elif backend == "torch":
        for k in floats:   # as inside fit(): numpy conversions of these fail
            tensors[k].requires_grad_(True)
        value = run(*tensors)
        if not gradient:
            return value
        import torch
        chosen = [tensors[k] for k in floats]
        grads = torch.autograd.grad(total(*tensors), chosen, allow_unused=True)
        value = keras.tree.map_structure(lambda v: v.detach(), value)   # a tensor or a tuple of them
    else:
        raise RuntimeError(f"no compiled step for backend {backend!r}")
    return [value, [None if g is None else g for g in grads]]


def build_model(fn, input_shape, args, weights, x):
    import keras
    several = bool(input_shape) and isinstance(input_shape[0], (list, tuple))
    inputs = [keras.Input(tuple(s)) for s in input_shape] if several else keras.Input(tuple(input_shape))
    out = fn(*inputs, *args) if several else fn(inputs, *args)
    if out is None:
        return None
    model = keras.Model(inputs, out)
    for index, values in (weights or {}).items():
        model.layers[int(index)].set_weights(values)

    def plain(value):
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return repr(value)
    layers = [{"class": type(layer).__name__, "config": plain(layer.get_config())}
              for layer in model.layers]
    output = None if x is None else model(x, training=False)
    return {"layers": layers, "weights": [layer.get_weights() for layer in model.layers],
            "output": output}


class _OutOfTime(BaseException):
    """Raised in the student's code when the request's time is up (a Python loop);
    a hang this cannot interrupt is ended by the parent, which kills the child."""


def _out_of_time(signum, frame):
    raise _OutOfTime("out of time")


def serve(request_fd, reply_fd, submission):
    module = None
    signal.signal(signal.SIGALRM, _out_of_time)
    while True:
        try:
            request = receive(request_fd)
        except EOFError:
            return
        try:
            if request.get("timeout"):   # then again every 0.25 s, if it was swallowed
                signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]), 0.25)
            op = request["op"]
            if op == "load":
                import importlib.util
                spec = importlib.util.spec_from_file_location("exercises", submission)
                module = importlib.util.module_from_spec(spec)
                sys.modules["exercises"] = module
                spec.loader.exec_module(module)
                result = None
            else:
                fn = getattr(module, request["name"], None)
                if not callable(fn):
                    raise AttributeError(f"exercises.py has no function {request['name']!r}")
                if op == "call" and request["mode"] == "eager":
                    result = fn(*request["args"], **request["kwargs"])
                elif op == "call":
                    result = call_compiled(fn, request["args"], request["kwargs"],
                                           gradient=request["mode"] == "gradient")
                elif op == "model":
                    result = build_model(fn, request["input_shape"], request["args"],
                                         request["weights"], request["x"])
                else:
                    raise ValueError(f"unknown request {op!r}")
            signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                data = encode({"value": result})
            except (TypeError, ValueError) as error:
                data = encode({"error": ["TypeError", f"returned {error}, which is not an "
                                                      "array, tensor, number or list of them"]})
        except BaseException as error:  # noqa: BLE001 - the student's, reported as values
            signal.setitimer(signal.ITIMER_REAL, 0)
            kind = "__timeout__" if isinstance(error, _OutOfTime) else type(error).__name__
            data = encode({"error": [kind, str(error)[:2000]]})
        send_bytes(reply_fd, data)


def _warm_up():
    """Build, describe and run a tiny Keras model once, before any test's time runs: the
    backend's first model (JAX compiles its initialisers and ops; on JAX, a layer's
    `get_config` imports TensorFlow, tens of seconds under load) is otherwise paid by the
    first graded test that builds layers."""
    import keras
    try:
        inputs = keras.Input((4, 4, 2))
        h = keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3, padding="same")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        model(np.zeros((1, 4, 4, 2), np.float32), training=False)
        [layer.get_config() for layer in model.layers]
    except Exception:   # noqa: BLE001 - a warm-up only
        pass


def main():
    request_fd, reply_fd, config_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    workdir = os.path.dirname(os.path.abspath(config_path))
    os.chdir(workdir)
    sys.path.insert(0, config["ganlib_parent"])
    for name in config["preload"]:
        try:
            __import__(name)
        except ImportError:
            pass
    if "keras" in sys.modules:
        _warm_up()
    restrict_ganlib(config["allowed"])
    sys.path.remove(config["ganlib_parent"])
    abi = landlock(writable=[workdir, "/dev/null"], readable=config["readable"]) \
        if config["landlock"] else 0
    os.remove(config_path)
    send(reply_fd, {"ready": True, "landlock": abi})
    serve(request_fd, reply_fd, os.path.join(workdir, "exercises.py"))


if __name__ == "__main__":
    main()
