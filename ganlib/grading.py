"""Autograder: run a lesson's graded tests against a submission and score them.

    ganlib grade 01                                 # grade lessons/01_*/exercises.py
    ganlib grade 01 --submission my/exercises.py --results results.json
    ganlib grade 01 --solutions                     # the solutions must score full marks

`grade()` runs pytest on `tests/grading/test_NN_*.py` in a subprocess, with the file
to grade named by the environment variable GANLIB_SUBMISSION (the graded tests'
`exercises` fixture, in tests/grading/conftest.py, loads it). This module is also
the pytest plugin of that subprocess (`-p ganlib.grading`): it arms a per-test
alarm, so an infinite loop fails that test only with "timed out after N s", and it
writes each test's points and outcome to a JSON file that the parent reads. The
parent is the backstop: a test that hangs where the alarm cannot reach (inside C
code, or on Windows, which has no SIGALRM) gets the subprocess killed; that test
scores 0 and pytest is restarted on the tests that have not run yet.

The result is a Gradescope `results.json` dict:
``{"score", "max_score", "execution_time", "output", "tests": [{"name", "score",
"max_score", "status", "output", "visibility"}]}``.

Graded tests use `check_close` for failure messages that tell the student what is
wrong ("kl_divergence returned shape (4,), expected a scalar").
"""

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

__all__ = [
    "GradingError", "GradingTimeout", "SubmissionImportError", "add_arguments",
    "check_close", "find_repo_root", "find_test_file", "grade", "load_exercises",
    "main", "run_from_args", "to_numpy",
]

SUBMISSION_ENV = "GANLIB_SUBMISSION"
RESULTS_ENV = "GANLIB_GRADING_RESULTS"
TIMEOUT_ENV = "GANLIB_GRADING_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
_MAX_OUTPUT = 2000


class GradingError(Exception):
    """Grading could not start: unknown lesson, missing file, no tests folder."""


class GradingTimeout(BaseException):
    """Raised in a test that ran past its time limit.

    A BaseException, so a student's ``except Exception`` does not swallow it.
    """


class SubmissionImportError(Exception):
    """The exercises file could not be imported (syntax error, failing import...)."""


# ---------------------------------------------------------------------------
# Helpers for graded tests
# ---------------------------------------------------------------------------

def to_numpy(value):
    """Convert a tensor of any backend, a number or a (nested) list to a numpy array."""
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, complex)):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        return np.asarray([to_numpy(item) for item in value])
    try:
        import keras
        return np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # not a tensor keras knows: let numpy try
        return np.asarray(value)


def _describe_shape(shape):
    return "a scalar" if shape == () else f"shape {tuple(shape)}"


def check_close(actual, expected, name, atol=1e-5, rtol=1e-5, check_dtype=True):
    """Assert that `actual` (what `name` returned) matches `expected`, in words.

    Explains, in this order: a missing return value, a result that is not an
    array, a shape mismatch, an integer/boolean result where floats are expected
    (or the other way round), NaN/inf values, and finally the largest difference
    and where it is. The dtype kind is checked only when `expected` has a dtype
    (a numpy array or tensor, not a Python number or list), and float precision
    (float32 vs float64) never is. Returns `actual` as a numpy array.
    """
    if actual is None:
        raise AssertionError(f"{name} returned None; did you forget a `return`?")
    expected_in, expected = expected, to_numpy(expected)
    try:
        got = to_numpy(actual)
    except Exception as error:
        raise AssertionError(f"{name} returned a {type(actual).__name__}, which is not an "
                             f"array or tensor ({error})") from None
    if got.dtype == object:
        raise AssertionError(f"{name} returned a {type(actual).__name__} that is not a "
                             f"numeric array (expected {_describe_shape(expected.shape)})")
    if got.shape != expected.shape:
        raise AssertionError(f"{name} returned {_describe_shape(got.shape)}, expected "
                             f"{_describe_shape(expected.shape)}")
    if check_dtype and hasattr(expected_in, "dtype"):
        got_float = np.issubdtype(got.dtype, np.floating)
        want_float = np.issubdtype(expected.dtype, np.floating)
        if want_float and not got_float:
            raise AssertionError(f"{name} returned dtype {got.dtype}, expected a "
                                 f"floating-point result ({expected.dtype})")
        if got_float and not want_float:
            raise AssertionError(f"{name} returned dtype {got.dtype}, expected "
                                 f"{expected.dtype}")
    if np.issubdtype(got.dtype, np.number) and not np.issubdtype(got.dtype, np.integer):
        bad = ~np.isfinite(got) & np.isfinite(expected)
        if bad.any():
            raise AssertionError(f"{name} returned NaN or inf in {int(bad.sum())} of "
                                 f"{got.size} entries")
    if not np.issubdtype(expected.dtype, np.number) and expected.dtype != bool:
        if not np.array_equal(got, expected):
            raise AssertionError(f"{name} returned {got!r}, expected {expected!r}")
        return got
    got_f, want_f = got.astype(np.float64), expected.astype(np.float64)
    diff = np.abs(got_f - want_f)
    off = diff > atol + rtol * np.abs(want_f)
    if off.any():
        if got.shape == ():
            raise AssertionError(f"{name} returned {got_f.item():.6g}, expected "
                                 f"{want_f.item():.6g} (difference {diff.item():.3g})")
        where = np.unravel_index(np.argmax(np.where(off, diff, -1.0)), got.shape)
        raise AssertionError(
            f"{name} is off in {int(off.sum())} of {got.size} entries; the largest "
            f"difference is {diff[where]:.3g} at index {tuple(int(i) for i in where)} "
            f"(got {got_f[where]:.6g}, expected {want_f[where]:.6g})")
    return got


_load_counter = itertools.count()


def load_exercises(path, label="exercises"):
    """Import the exercises file at `path` under a fresh, unique module name.

    Student and solution modules therefore never clash in `sys.modules`. Raises
    FileNotFoundError if the file is missing and SubmissionImportError (with the
    original error type and message) if importing it fails.
    """
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"exercises file not found: {path}")
    safe = "".join(c if c.isalnum() else "_" for c in label)
    name = f"_ganlib_{safe}_{next(_load_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, GradingTimeout) as error:
        del sys.modules[name]
        detail = f"{type(error).__name__}: {error}"
        if isinstance(error, GradingTimeout):
            detail = f"importing it {error}"
        raise SubmissionImportError(f"could not import {path}: {detail}") from None
    return module


# ---------------------------------------------------------------------------
# The pytest plugin (active in the grading subprocess via `-p ganlib.grading`)
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def _alarm(seconds):
    """Raise GradingTimeout in the main thread after `seconds` (then every second)."""
    usable = (seconds and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise GradingTimeout(f"timed out after {seconds:g} s (an infinite loop?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    # Repeat every second: a loop that swallows the first one gets another.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _points(item):
    """Points of a test: `@pytest.mark.points(n)`, 1 when absent."""
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1.0
    value = marker.args[0] if marker.args else marker.kwargs.get("n", 1)
    return float(value)


def _short_message(report):
    """The exception type and message of a failed report, or its last lines."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        text = crash.message
    else:
        lines = [ln for ln in str(report.longrepr).splitlines() if ln.strip()]
        text = "\n".join(lines[-5:])
    for prefix in ("ganlib.grading.", "_pytest.outcomes."):
        text = text.replace(prefix, "")
    return text[:_MAX_OUTPUT]


class _GradingPlugin:
    """Records each test's points and outcome, and the test now running, to JSON.

    The file is rewritten (atomically) after every change, so the parent can
    watch for a hung test and still has every finished result if it must kill
    the run.
    """

    def __init__(self, results_path):
        self.results_path = results_path
        self.state = {"tests": {}, "running": None, "started": None}

    def _flush(self):
        if not self.results_path:
            return
        tmp = f"{self.results_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle)
        os.replace(tmp, self.results_path)

    def pytest_collectreport(self, report):
        if report.failed:
            self.state["tests"][report.nodeid or "collection"] = {
                "name": f"collecting {report.nodeid or 'tests'}", "points": 0.0,
                "outcome": "failed", "message": _short_message(report)}
            self._flush()

    def pytest_collection_finish(self, session):
        for item in session.items:
            try:
                points, message = _points(item), "not run"
            except (TypeError, ValueError):
                points, message = 0.0, "bad @pytest.mark.points marker (expected a number)"
            self.state["tests"][item.nodeid] = {
                "name": item.nodeid.split("::", 1)[-1], "points": points,
                "outcome": "not run", "message": message}
        self._flush()

    def pytest_runtest_protocol(self, item, nextitem):
        self.state["running"], self.state["started"] = item.nodeid, time.time()
        self._flush()

    def pytest_runtest_logreport(self, report):
        record = self.state["tests"].get(report.nodeid)
        if record is None:
            return
        if report.failed and record["outcome"] != "failed":
            record["outcome"], record["message"] = "failed", _short_message(report)
            if report.when == "teardown":
                record["message"] = f"(during {report.when}) {record['message']}"
        elif report.skipped and record["outcome"] == "not run":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
            record["outcome"], record["message"] = "failed", f"skipped: {reason}"
        elif report.when == "call" and report.passed and record["outcome"] == "not run":
            record["outcome"], record["message"] = "passed", ""
        if report.when == "teardown":
            self.state["running"] = None
        self._flush()


def pytest_configure(config):
    """Plugin entry point: register the `points` marker and the grading hooks."""
    config.addinivalue_line("markers", "points(n): points this graded test is worth")
    if config.pluginmanager.has_plugin("ganlib-grading"):
        return
    import pytest

    timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))

    class Timers:
        """Arms the alarm around each test's setup and call."""

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(self, item):
            with _alarm(timeout):
                return (yield)

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(self, item):
            with _alarm(timeout):
                return (yield)

    # Record "running" before the default runner starts the test.
    protocol = _GradingPlugin.pytest_runtest_protocol
    pytest.hookimpl(tryfirst=True)(protocol)
    config.pluginmanager.register(
        _GradingPlugin(os.environ.get(RESULTS_ENV)), "ganlib-grading")
    config.pluginmanager.register(Timers(), "ganlib-grading-timers")


# ---------------------------------------------------------------------------
# The parent side: find files, run pytest, score
# ---------------------------------------------------------------------------

def find_repo_root(start=None):
    """The nearest folder at or above `start` (default: cwd) holding tests/grading;
    else the folder above the ganlib package, if it has one."""
    start = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "tests" / "grading").is_dir():
            return folder
    fallback = pathlib.Path(__file__).resolve().parent.parent
    if (fallback / "tests" / "grading").is_dir():
        return fallback
    raise GradingError(f"no tests/grading folder at or above {start}; run from the "
                       "course repository or pass repo_root")


def find_test_file(lesson, repo_root):
    """`tests/grading/test_<lesson>.py` for "01_cgan", or the one `test_01_*.py` for "01"."""
    lesson = str(lesson).strip()
    if lesson.isdigit():
        lesson = f"{int(lesson):02d}"
    folder = pathlib.Path(repo_root) / "tests" / "grading"
    pattern = f"test_{lesson}_*.py" if lesson.isdigit() else f"test_{lesson}.py"
    matches = sorted(folder.glob(pattern))
    if not matches:
        available = ", ".join(p.stem[5:] for p in sorted(folder.glob("test_*.py"))) or "none"
        raise GradingError(f"no graded tests for lesson {lesson!r} in {folder} "
                           f"(looked for {pattern}; available: {available})")
    if len(matches) > 1:
        raise GradingError(f"lesson {lesson!r} is ambiguous: "
                           + ", ".join(p.name for p in matches))
    return matches[0]


def _kill(process):
    """Kill the pytest subprocess and everything it started."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError, OSError):
        process.kill()
    process.wait()


def _read_state(path):
    """The plugin's JSON state, or None if it is missing (or being replaced)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _run_pytest(test_file, submission, repo_root, timeout, deselect, deadline):
    """Run pytest once; return (state, how it ended, combined output, exit code).

    How it ended is None for a normal exit, "hung" when a test (or collection)
    outlived the watchdog, "deadline" when the overall time ran out.
    """
    grace = max(2.0, min(10.0, timeout))
    test_limit = 2 * timeout + grace           # setup and call each get `timeout`
    idle_limit = max(60.0, timeout) + grace    # startup, collection, between tests
    package_parent = str(pathlib.Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="ganlib-grade-") as tmp:
        results_path = os.path.join(tmp, "state.json")
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)  # the grading run's options are fixed
        env.update({SUBMISSION_ENV: str(submission), RESULTS_ENV: results_path,
                    TIMEOUT_ENV: repr(float(timeout)), "PYTHONDONTWRITEBYTECODE": "1"})
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "pytest", str(test_file), "-p", "ganlib.grading",
                   "-p", "no:cacheprovider", "-o", "addopts=", "-q", "--no-header",
                   "-rN", "--rootdir", str(repo_root)]
        for nodeid in deselect:
            command += ["--deselect", nodeid]
        with open(os.path.join(tmp, "output.txt"), "w+", encoding="utf-8",
                  errors="replace") as output:
            process = subprocess.Popen(command, cwd=repo_root, env=env, stdout=output,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=hasattr(os, "killpg"))
            ended, state, last_change = None, None, time.monotonic()
            while process.poll() is None:
                time.sleep(0.05)
                now = time.monotonic()
                new_state = _read_state(results_path) or {}
                if new_state != state:
                    state, last_change = new_state, now
                if now > deadline:
                    ended = "deadline"
                elif state.get("running"):
                    if time.time() - state["started"] > test_limit:
                        ended = "hung"
                elif now - last_change > idle_limit:
                    ended = "hung"
                if ended:
                    _kill(process)
                    break
            output.seek(0)
            text = output.read()
        return _read_state(results_path) or {"tests": {}}, ended, text, process.returncode


def _summarize(records, elapsed, submission, output):
    tests, score, max_score = [], 0.0, 0.0
    for record in records.values():
        passed = record["outcome"] == "passed"
        points = float(record["points"])
        got = points if passed else 0.0
        score, max_score = score + got, max_score + points
        tests.append({"name": record["name"], "score": got, "max_score": points,
                      "status": "passed" if passed else "failed",
                      "output": record["message"], "visibility": "visible"})
    summary = f"Graded {submission}: {score:g} / {max_score:g} points."
    if not tests:
        summary += " No graded test ran; pytest said:\n" + output[-_MAX_OUTPUT:]
    return {"score": score, "max_score": max_score, "execution_time": round(elapsed, 3),
            "output": summary, "tests": tests}


def print_table(results, file=None):
    """Print a score table: name, points, status and the first line of the message."""
    file = file or sys.stdout
    rows = [(t["name"], f"{t['score']:g}/{t['max_score']:g}", t["status"],
             (t["output"].splitlines() or [""])[0][:100]) for t in results["tests"]]
    width = max([len(r[0]) for r in rows] + [4])
    print(f"{'test':<{width}}  points  status  message", file=file)
    for name, points, status, message in rows:
        print(f"{name:<{width}}  {points:>6}  {status:<6}  {message}", file=file)
    print(f"{'total':<{width}}  {results['score']:g}/{results['max_score']:g}"
          f"   ({results['execution_time']:.1f} s)", file=file)


def grade(lesson, submission=None, solutions=False, results=None, timeout=DEFAULT_TIMEOUT,
          repo_root=None, verbose=True, total_timeout=None):
    """Grade one lesson's exercises; return the Gradescope results dict.

    lesson: "01" or "01_cgan". submission: the exercises file to grade (default
    `lessons/<lesson>/exercises.py`); solutions=True grades
    `solutions/<lesson>/exercises.py` instead. results: where to write the JSON.
    timeout: seconds per test (setup and call each). total_timeout: seconds for the
    whole run (default max(900, 30 * timeout)). Raises GradingError when grading
    cannot start (unknown lesson, missing file, both submission and solutions).
    """
    repo_root = (pathlib.Path(repo_root).resolve() if repo_root is not None
                 else find_repo_root())
    test_file = find_test_file(lesson, repo_root)
    lesson_name = test_file.stem[len("test_"):]
    if submission is not None and solutions:
        raise GradingError("give either a submission file or --solutions, not both")
    if submission is None:
        folder = "solutions" if solutions else "lessons"
        submission = repo_root / folder / lesson_name / "exercises.py"
    submission = pathlib.Path(submission).resolve()
    if not submission.is_file():
        raise GradingError(f"submission file not found: {submission}")

    if verbose:
        print(f"Grading {submission} with {test_file.relative_to(repo_root)} ...",
              flush=True)
    start = time.monotonic()
    total_timeout = total_timeout or max(900.0, 30.0 * timeout)
    deadline = start + total_timeout
    records, output = {}, ""
    while True:
        finished = [nodeid for nodeid, r in records.items() if r["outcome"] != "not run"]
        state, ended, text, code = _run_pytest(test_file, submission, repo_root, timeout,
                                               finished, deadline)
        output += text
        for nodeid, record in state.get("tests", {}).items():
            if nodeid not in records or records[nodeid]["outcome"] == "not run":
                records[nodeid] = record
        culprit = records.get(state.get("running"))
        if culprit is not None and ended != "deadline":
            # A test hung past the alarm, or the process died inside it (os._exit,
            # a crash in native code): that test scores 0, the others run again.
            culprit["outcome"] = "failed"
            culprit["message"] = (
                f"timed out after {timeout:g} s (the test could not be interrupted, so "
                "the grading run was stopped and restarted without it)" if ended else
                f"the grading process died during this test (exit code {code}); the "
                "run was restarted without it")
            if any(r["outcome"] == "not run" for r in records.values()):
                continue
        if ended is not None:
            elapsed = time.monotonic() - start
            for record in records.values():
                if record["outcome"] == "not run":
                    record["outcome"] = "failed"
                    record["message"] = f"grading run was killed after {elapsed:.0f} s"
            if not records:
                output += f"\n[grading run was killed after {elapsed:.0f} s]"
        break
    for record in records.values():
        if record["outcome"] == "not run":
            record["outcome"] = "failed"
            record["message"] = f"not run: pytest stopped early (exit code {code})"
    summary = _summarize(records, time.monotonic() - start, submission, output)
    if results is not None:
        results = pathlib.Path(results)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print_table(summary)
        if not summary["tests"]:
            print(output[-_MAX_OUTPUT:], file=sys.stderr)
    return summary


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def add_arguments(parser):
    """Add the `grade` options to an argparse parser (the `ganlib grade` subcommand)."""
    parser.add_argument("lesson", help='lesson number or folder name, e.g. "01" or "01_cgan"')
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--submission", metavar="FILE", default=None,
                       help="exercises file to grade (default: lessons/NN_topic/exercises.py)")
    which.add_argument("--solutions", action="store_true",
                       help="grade solutions/NN_topic/exercises.py (must score full marks)")
    parser.add_argument("--results", metavar="FILE", default=None,
                        help="write a Gradescope results.json here")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per test (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="course repository root (default: search upward from cwd)")
    return parser


def run_from_args(args):
    """Run `grade` from parsed arguments; 0 whenever grading ran, 2 if it could not."""
    try:
        grade(args.lesson, submission=args.submission, solutions=args.solutions,
              results=args.results, timeout=args.timeout,
              repo_root=getattr(args, "root", None))
    except GradingError as error:
        print(f"ganlib grade: error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    """`python -m ganlib.grading NN [--submission FILE | --solutions] [--results F]`."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="ganlib grade", description="Grade a lesson's exercises."))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
