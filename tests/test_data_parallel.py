"""Data-parallel training (`ganlib.training.data_parallel`, `ganlib train --devices N`).

Each check runs the toy GAN (tests/toy_gan.py: a generator with BatchNorm and an EMA copy,
two discriminators with their own Adam optimizers) in fresh processes, whatever backend this
suite runs on, because the device count is fixed before a backend starts:

* JAX with two XLA host devices (`--xla_force_host_platform_device_count=2`) and
  TensorFlow with two logical CPU devices (MirroredStrategy): the per-step losses over a
  few steps equal one device's at the same global batch, and a checkpoint saved on two
  devices resumes on one (and vice versa) with the next step's losses of the run that
  was not interrupted.
* JAX with two processes joined through `keras.distribution.initialize` (a localhost
  coordinator, one host device each): the losses of one device.

Equality is expected, not only closeness: one device's step on the global batch and the
replicas' step compute the same means over the same items. The noise is drawn for the
global batch and split, and BatchNorm uses the global batch's statistics (JAX's compiled
step computes them over the sharded batch; on TensorFlow ganlib synchronises BatchNorm over
replicas); only the order of float sums differs.

The processes start together (about 25 s on two idle cores, most of it importing TensorFlow
and JAX and compiling the steps).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ganlib import training

# Backend-neutral (each check starts its own processes with its own backend): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_parallel_worker.py")
STEPS = 2


def _start(backend, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, WORKER, "--steps", str(STEPS), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _result(process, timeout=1200):   # generous: a loaded shared machine is ~10x slower
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"worker timed out:\n{out[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"worker failed ({process.returncode}):\n{out[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs():
    """Every backend's runs, started at once: {"jax": ..., "tensorflow": ..., "processes": [p0, p1]}."""
    port = _free_port()
    started = {backend: _start(backend, "--host-devices", 2, "--devices", 2) for backend in ("jax", "tensorflow")}
    members = [_start("jax", "--scenario", "processes", "--host-devices", 1, "--coordinator", f"localhost:{port}",
                      "--num-processes", 2, "--process-id", i) for i in range(2)]
    try:
        results = {backend: _result(p) for backend, p in started.items()}
        results["processes"] = [_result(p) for p in members]
    finally:
        for p in [*started.values(), *members]:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _assert_same_logs(actual, expected):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected)):
        assert sorted(a) == sorted(e) == ["d0_loss", "d_loss", "g_loss"]
        for key in e:
            np.testing.assert_allclose(a[key], e[key], rtol=1e-5, atol=1e-6, err_msg=f"step {step}: {key}")


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_give_the_losses_of_one(runs, backend):
    one, many = runs[backend]["one"], runs[backend]["many"]
    assert (one["replicas"], many["replicas"]) == (1, 2)
    _assert_same_logs(many["logs"], one["logs"])
    # the losses change from step to step (the weights are updated), so equal logs are no accident
    assert one["logs"][0]["d_loss"] != one["logs"][1]["d_loss"]
    assert one["iterations"] == many["iterations"] == STEPS
    np.testing.assert_allclose(many["ema_sum"], one["ema_sum"], rtol=1e-5)
    _assert_same_logs(many["next"], one["next"])


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_checkpoints_resume_on_another_device_count(runs, backend):
    one, many = runs[backend]["one"], runs[backend]["many"]
    assert (one["resumed_replicas"], many["resumed_replicas"]) == (2, 1)
    assert one["resumed_iterations"] == many["resumed_iterations"] == STEPS + 1
    _assert_same_logs(one["resumed_next"], one["next"])     # saved on 1 device, resumed on 2
    _assert_same_logs(many["resumed_next"], one["next"])    # saved on 2 devices, resumed on 1


def test_two_jax_processes_give_the_losses_of_one_device(runs):
    reference = runs["jax"]["one"]
    for member in runs["processes"]:
        assert member["replicas"] == 2
        assert member["iterations"] == STEPS
        _assert_same_logs(member["logs"], reference["logs"])
        np.testing.assert_allclose(member["ema_sum"], reference["ema_sum"], rtol=1e-5)


def test_unsupported_requests_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="devices: expected a positive number"):
        training.data_parallel(0)
    assert training.replica_count() == 1
    monkeypatch.setattr(training, "BACKEND", "torch")
    training.data_parallel(None)    # one device: fine on every backend
    with pytest.raises(NotImplementedError, match="torch backend.*KERAS_BACKEND=jax"):
        training.data_parallel(2)
    monkeypatch.setattr(training, "BACKEND", "tensorflow")
    with pytest.raises(NotImplementedError, match="several processes.*JAX backend only"):
        training.data_parallel(2, coordinator="localhost:1234", num_processes=2, process_id=0)


def test_train_command_passes_the_devices_on(monkeypatch):
    from ganlib import cli, runs

    seen = {}
    monkeypatch.setattr(runs, "train", lambda *a, **k: seen.update(k))
    assert cli.main(["train", "cgan", "--out", "x", "--devices", "4", "--coordinator", "host0:1234",
                     "--num-processes", "2", "--process-id", "1"]) == 0
    assert (seen["devices"], seen["coordinator"], seen["num_processes"], seen["process_id"]) == (4, "host0:1234", 2, 1)
