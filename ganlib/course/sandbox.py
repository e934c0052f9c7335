"""Run a student's exercises file in a child process that can only return values.

    with Submission("student/exercises.py", allowed={"ganlib.losses": ["bce"]}) as ex:
        ex.begin_test()
        value = ex.kl_divergence(mu, logvar)            # numpy in, numpy out
        value = ex.kl_divergence.compiled(mu, logvar)   # inside tf.function / jax.jit / torch
        value, grads = ex.kl_divergence.gradient(mu, logvar)

The child (`ganlib/course/child.py`, run as a script with `python -I -B`) works in a
fresh temporary folder holding only a copy of the submission; it runs under
resource limits (address space, CPU time, file size, processes) and, where the
kernel has Landlock, can write only there and read only the Python installation
and system folders. Over a pipe it answers each request with values (JSON and
.npy arrays, see `child.encode`), or with the type and message of the exception
the student's code raised; the PARENT compares and scores. A call that runs past
its time is interrupted by the child itself (a Python loop), or, past a grace
period, the child is killed (a hang in native code, a swallowed interrupt); a child
that dies or answers garbage costs that call only: a fresh child serves the next
one (after the first restart a spare child is kept warming).
"""

import builtins
import dataclasses
import json
import os
import pathlib
import resource
import select
import shutil
import signal
import site
import struct
import subprocess
import sys
import tempfile
import time

from ganlib.course import child as protocol

CHILD_SCRIPT = pathlib.Path(protocol.__file__)
# The grader's backend, device, compiler and thread settings reach the child (a grading
# machine that runs one job per core sets one thread each); nothing else of its environment does.
_PASS_ENV = ("KERAS_BACKEND", "JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES", "PATH", "LANG", "XLA_FLAGS",
             "JAX_THREEFRY_PARTITIONABLE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS")


class GradingTimeout(Exception):
    """The student's code did not answer in time (the child was killed)."""


class SubmissionImportError(Exception):
    """The exercises file could not be imported (syntax error, failing import...)."""


class SubmissionError(Exception):
    """An exception of the student's that is not a Python built-in ("MyError: ...")."""


class ChildDied(Exception):
    """The child process exited or crashed during a call."""


@dataclasses.dataclass
class Limits:
    """Resource limits of the child. memory: bytes of address space; cpu: seconds
    of CPU time; file_size: bytes per written file; processes: threads and
    processes the child may add to the user's; startup: seconds to start Python and
    import the trusted packages (not counted against any test)."""
    memory: int = 8 << 30
    cpu: int = 600
    file_size: int = 64 << 20
    processes: int = 512
    startup: float = 120.0


def _user_threads():
    """Threads of this user now (RLIMIT_NPROC counts them all, not only ours)."""
    count, uid = 0, os.getuid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return count


def _exception(kind, message):
    """The parent-side exception for a (type name, message) pair from the child."""
    cls = getattr(builtins, kind, None)
    if (isinstance(cls, type) and issubclass(cls, Exception)
            and not issubclass(cls, (SystemExit, KeyboardInterrupt))):
        try:
            return cls(message)
        except Exception:   # noqa: BLE001 - exotic constructor
            pass
    return SubmissionError(f"{kind}: {message}" if message else kind)


class Child:
    """One child process running one submission file; `request` sends and waits."""

    def __init__(self, submission, allowed=None, preload=(), limits=None, readable=(),
                 forbidden_roots=()):
        self.submission = pathlib.Path(submission)
        self.allowed = dict(allowed or {})
        self.preload = list(preload)
        self.limits = limits or Limits()
        self.extra_readable = list(readable)
        self.forbidden_roots = [pathlib.Path(p).resolve() for p in forbidden_roots]
        self.process = self.folder = None
        self.landlock = 0

    def _readable(self):
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(),
                 "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc",
                 "/sys", "/dev", "/opt", *self.extra_readable}
        ok = []
        for root in sorted(roots):
            path = pathlib.Path(root).resolve()
            if any(path == f or path in f.parents for f in self.forbidden_roots):
                continue
            ok.append(str(path))
        return ok

    def _limit(self):   # runs in the child between fork and exec
        limits = self.limits
        for which, value in ((resource.RLIMIT_AS, limits.memory),
                             (resource.RLIMIT_CPU, limits.cpu),
                             (resource.RLIMIT_FSIZE, limits.file_size),
                             (resource.RLIMIT_NPROC, self._nproc)):
            if value:
                try:
                    resource.setrlimit(which, (value, value))
                except (ValueError, OSError):
                    pass
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def start(self, timeout=None):
        """Start the child; wait `timeout` s (default `limits.startup`) for it to be ready."""
        self.spawn()
        self.ready(timeout)

    def spawn(self):
        """Start the child process without waiting for it (see `ready`)."""
        self.folder = tempfile.mkdtemp(prefix="ganlib-submission-")
        shutil.copyfile(self.submission, os.path.join(self.folder, "exercises.py"))
        script = os.path.join(self.folder, "ganlib_child.py")
        shutil.copyfile(CHILD_SCRIPT, script)
        config = os.path.join(self.folder, "config.json")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({"ganlib_parent": str(CHILD_SCRIPT.parents[2]), "preload": self.preload,
                       "allowed": self.allowed, "readable": self._readable(),
                       "landlock": True}, handle)
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update(HOME=self.folder, TMPDIR=self.folder, TF_CPP_MIN_LOG_LEVEL="3")
        self._nproc = _user_threads() + self.limits.processes if self.limits.processes else 0
        request_r, self._request_w = os.pipe()
        os.set_blocking(self._request_w, False)
        self._reply_r, reply_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-B", script, str(request_r), str(reply_w), config],
                cwd=self.folder, env=env, pass_fds=(request_r, reply_w),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=self._limit)
        finally:
            os.close(request_r)
            os.close(reply_w)

    def ready(self, timeout=None):
        """Wait for the spawned child to have imported its packages and sandboxed itself."""
        ready = self._wait(self.limits.startup if timeout is None else timeout)
        self.landlock = ready.get("landlock", 0) if isinstance(ready, dict) else 0

    def request(self, message, timeout):
        """Send `message`; return the child's decoded reply, waiting `timeout` s at most."""
        if self.process is None:
            self.start()
        deadline = time.monotonic() + max(0.0, timeout)
        data = protocol.encode(message)
        view = memoryview(struct.pack("<Q", len(data)) + data)
        try:
            while view:     # never block on a child that stopped reading
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self._request_w], [], left)[1]:
                    self.close()
                    raise GradingTimeout("the request was not read in time")
                try:
                    view = view[os.write(self._request_w, view[:1 << 16]):]
                except BlockingIOError:
                    continue
        except OSError:
            raise self._died() from None
        return self._wait(deadline - time.monotonic())

    def _wait(self, timeout):
        deadline = time.monotonic() + max(0.0, timeout)
        header = self._read(8, deadline)
        (size,) = struct.unpack("<Q", header)
        if size > protocol.MAX_MESSAGE:
            self.close()
            raise ChildDied(f"the answer was {size} bytes, over the limit")
        try:
            return protocol.decode(self._read(size, deadline))
        except (ValueError, KeyError, IndexError, RecursionError, struct.error) as error:
            self.close()
            raise ChildDied(f"the answer could not be read ({error})") from None

    def _read(self, count, deadline):
        chunks = []
        while count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._reply_r], [], [], left)[0]:
                self.close()
                raise GradingTimeout("no answer in time")
            chunk = os.read(self._reply_r, min(count, 1 << 20))
            if not chunk:
                raise self._died()
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def _died(self):
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.close()
        return ChildDied(f"exit code {code}")

    def close(self):
        """Kill the child and everything it started; remove its folder."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
            self.process.wait()
            for fd in (self._request_w, self._reply_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class RemoteFunction:
    """`exercises.name` on the parent side: calling it asks the child."""

    def __init__(self, submission, name):
        self._submission, self.__name__ = submission, name

    def __call__(self, *args, **kwargs):
        return self._submission.call(self.__name__, args, kwargs, "eager")

    def compiled(self, *args, **kwargs):
        """The value computed inside the backend's compiled step (arrays as tensors)."""
        return self._submission.call(self.__name__, args, kwargs, "compiled")

    def gradient(self, *args, **kwargs):
        """(value, [d sum(value) / d arg for each float array argument]); None where
        the gradient does not reach that argument."""
        value, grads = self._submission.call(self.__name__, args, kwargs, "gradient")
        return value, grads

    def model(self, input_shape, *args, weights=None, x=None):
        """Build keras.Model(inputs, name(inputs, *args)) in the child; set `weights`
        ({layer index: [arrays]}); return {"layers": [{"class", "config"}],
        "weights": [[arrays] per layer], "output": model(x, training=False)}.
        `input_shape` may be a list of shapes: one input each, `name(in_1, in_2, ...,
        *args)`, and `x` a list of arrays."""
        shapes = [list(s) for s in input_shape] if input_shape and isinstance(
            input_shape[0], (list, tuple)) else list(input_shape)
        return self._submission.request(
            {"op": "model", "name": self.__name__, "input_shape": shapes,
             "args": list(args), "weights": {str(k): v for k, v in (weights or {}).items()},
             "x": x}, self.__name__)


class Submission:
    """A student's exercises file seen from the parent: `submission.f(...)` runs f in
    the child. `begin_test()` starts a test's time allowance (`per_test` seconds of
    waiting for answers); `budget` bounds all waiting together. `flagged` maps a
    function name to the reason it scores nothing (from the static check)."""

    def __init__(self, path, allowed=None, preload=(), per_test=20.0, budget=240.0,
                 flagged=None, limits=None, forbidden_roots=()):
        self.path = pathlib.Path(path)
        self.per_test, self.flagged = per_test, dict(flagged or {})
        self._new_child = lambda: Child(path, allowed, preload, limits,
                                        forbidden_roots=forbidden_roots)
        self._child, self._spare, self._starts = self._new_child(), None, 0
        self._budget_end = time.monotonic() + budget
        self._test_left = self._test_allowance = per_test
        self._import_error = None
        self._loaded = False

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteFunction(self, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._child.close()
        if self._spare is not None:
            self._spare.close()

    @property
    def landlock(self):
        """The Landlock ABI the child restricted itself with (0: none)."""
        return self._child.landlock

    @property
    def started(self):
        return self._child.folder is not None or self._loaded or self._import_error is not None

    def begin_test(self, factor=1.0):
        """Start a test's time allowance: `per_test` seconds, times `factor` (a test that
        builds Keras layers pays the backend's first compilations)."""
        self._test_left = self.per_test * factor
        self._test_allowance = self._test_left

    def call(self, name, args, kwargs, mode):
        return self.request({"op": "call", "name": name, "args": list(args),
                             "kwargs": dict(kwargs), "mode": mode}, name)

    def _timed(self, message, what):
        limit = min(self._test_left, self._budget_end - time.monotonic())
        if limit <= 0:
            raise GradingTimeout(f"{what}: not run, the time for this "
                                 + ("test" if self._test_left <= 0 else "lesson") + " ran out")
        start = time.monotonic()
        grace = min(2.0, 0.5 + 0.1 * limit)   # the child interrupts itself at `limit`
        try:
            reply = self._child.request(dict(message, timeout=limit), limit + grace)
            if isinstance(reply, dict) and reply.get("error", [None])[0] == "__timeout__":
                raise GradingTimeout(f"{what} timed out after {self._test_allowance:g} s (an "
                                     "infinite loop?)")
            return reply
        except GradingTimeout as error:
            if "timed out after" in str(error):
                raise
            raise GradingTimeout(f"{what} timed out after {self._test_allowance:g} s (an infinite "
                                 "loop?); the process running it was stopped") from None
        except ChildDied as error:
            raise ChildDied(f"the process running your code died during {what} "
                            f"({error})") from None
        finally:
            self._test_left -= time.monotonic() - start

    def _load(self):
        if self._import_error is not None:
            raise SubmissionImportError(self._import_error)
        if self._child.process is not None and self._loaded:
            return
        self._loaded = False
        left = self._budget_end - time.monotonic()
        if left <= 0:
            raise GradingTimeout("not run, the time for this lesson ran out")
        try:
            if self._child.process is None:   # startup is not counted against a test
                self._start_child(left)
            reply = self._timed({"op": "load"}, "importing it")
        except (GradingTimeout, ChildDied) as error:
            self._import_error = f"could not import {self.path}: {error}"
            raise SubmissionImportError(self._import_error) from None
        if "error" in reply:
            kind, message = reply["error"]
            self._import_error = f"could not import {self.path}: {kind}: {message}"
            raise SubmissionImportError(self._import_error)
        self._loaded = True

    def _start_child(self, left):
        """A ready child: the spare if one is warming, else a new one. After the
        first restart a spare is kept warming, so that a killed child (a loop)
        is replaced at once instead of after Python and the backend start again."""
        if self._spare is not None:
            self._child, self._spare = self._spare, None
        else:
            self._child.spawn()
        self._starts += 1
        if self._starts > 1:
            self._spare = self._new_child()
            self._spare.spawn()
        self._child.ready(min(self._child.limits.startup, left))

    def request(self, message, name):
        reason = self.flagged.get(name) or self.flagged.get("*")
        if reason:
            raise AssertionError(f"{name} scores 0: {reason}")
        self._load()
        reply = self._timed(message, name)
        if not isinstance(reply, dict) or not ("value" in reply or "error" in reply):
            raise ChildDied(f"the process running your code sent a malformed answer to {name}")
        if "error" in reply:
            kind, text = reply["error"]
            raise _exception(str(kind), str(text))
        return reply["value"]
