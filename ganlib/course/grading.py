"""Autograder: run a lesson's graded tests against a submission and score them.

    ganlib grade 01                                 # grade lessons/01_*/exercises.py
    ganlib grade 01 --submission my/exercises.py --results results.json
    ganlib grade 01 --solutions                     # the solutions must score full marks

The student's code never runs in this process. `grade()` imports the lesson's
graded tests itself (`tests/grading/test_NN_*.py`, visible to students, and
`tests/grading/hidden/test_NN_*.py`, run only by the autograder), and gives each
test an `exercises` object whose functions run in ONE sandboxed child process
(`ganlib.course.sandbox`): arguments go to the child as numpy arrays and plain
values, and only values come back. This process compares them and assigns each
test's points (`@pytest.mark.points(n)`, 1 when absent), so nothing the child
does can change a score. A call that does not answer within the test's time
(`timeout`, default 20 s) fails that test only: the child is killed and a fresh
one serves the next test; the whole lesson has `total_timeout` (default 240 s).

Before the child starts, the submission's source is read (`ganlib.course.static`):
a function that uses ganlib's reference of an exercise or the solutions scores 0
with the reason; in the child, those references are also unreachable (only the
ganlib names a lesson's tests list in `ALLOWED_GANLIB` can be imported).

The result is a Gradescope `results.json` dict:
``{"score", "max_score", "execution_time", "output", "tests": [{"name", "number",
"score", "max_score", "status", "output", "visibility"}]}``, visibility "visible" for
the visible tests and "after_published" for the hidden ones. `number` is "N.k", the
k-th test of exercise N (`@pytest.mark.exercise(N)`, the number the notebook and the
stub give it).

Items graded by the instructor (a lesson's reflection question, declared in its
visible test file as `MANUALLY_GRADED = [{"exercise", "name", "points", "question",
"answer"}]`) appear in the results with their `max_score` and no `score` or
`status`, tagged "graded by the instructor", with the student's answer (the string
the submission assigns to the variable named by "answer", read from its source,
never run) in their output. They count in neither `score` nor `max_score`; the
summary's output line and `extra_data.manually_graded_points` give their points.

Graded tests use `check_close` for failure messages that tell the student what is
wrong ("kl_divergence returned shape (4,), expected a scalar"), and
`check_backend` for the same function inside the backend's compiled step and its
gradient.
"""

import argparse
import importlib.util
import itertools
import json
import os
import pathlib
import sys
import time

import numpy as np

from ganlib.course.sandbox import (ChildDied, GradingTimeout, Limits, Submission,
                                   SubmissionError, SubmissionImportError)
from ganlib.course.static import free_answers

__all__ = [
    "ChildDied", "GradingError", "GradingTimeout", "Limits", "Submission", "SubmissionError",
    "SubmissionImportError", "add_arguments", "check_backend", "check_batch_norm", "check_close",
    "exercise_of", "find_repo_root", "find_test_file", "grade", "is_manual", "main",
    "manual_records", "numeric_gradient", "reflection_answer", "run_from_args", "time_factor_of",
    "to_numpy",
]

SUBMISSION_ENV = "GANLIB_SUBMISSION"
DEFAULT_TIMEOUT = 20.0
DEFAULT_BUDGET = 240.0
_MAX_OUTPUT = 2000
_TRUSTED = ("numpy", "keras", "tensorflow", "jax", "torch", "scipy")


class GradingError(Exception):
    """Grading could not start: unknown lesson, missing file, no tests folder."""


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


def numeric_gradient(reference, args, index, kwargs=None, eps=1e-6):
    """d sum(reference(*args)) / d args[index] by central differences, in float64."""
    kwargs = kwargs or {}
    args = [np.asarray(a, np.float64) if isinstance(a, np.ndarray) else a for a in args]
    x = args[index]
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = np.sum(reference(*args, **kwargs))
        x[i] = saved - eps
        down = np.sum(reference(*args, **kwargs))
        x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


def check_backend(function, args, reference, name, kwargs=None, gradient=True, atol=1e-4):
    """`function` (an `exercises.<name>`) run the way training runs it.

    Inside the backend's compiled step (tf.function, jax.jit; torch tensors that
    require gradients), on tensors, it must return float32 values equal to
    `reference(*args, **kwargs)` (numpy, float64); with `gradient`, the gradient of
    the sum of its value with respect to each float array argument must reach that
    argument and match `numeric_gradient` of the reference. A numpy-only answer
    fails here: it cannot run on traced tensors.
    """
    kwargs = kwargs or {}
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    where = f"{name} inside the compiled training step ({backend}, on tensors)"
    value = function.compiled(*args, **kwargs)
    check_close(value, reference(*args, **kwargs), where, atol=atol)
    if to_numpy(value).dtype != np.float32:
        raise AssertionError(f"{where} returned dtype {to_numpy(value).dtype}, expected float32")
    if not gradient:
        return
    _, grads = function.gradient(*args, **kwargs)
    floats = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for grad, i in zip(grads, floats):
        what = f"the gradient of sum({name}(...)) with respect to argument {i + 1}"
        if grad is None:
            raise AssertionError(f"{what} is missing: the result does not depend on it "
                                 "through differentiable operations (numpy, or a cast to int?)")
        check_close(grad, numeric_gradient(reference, args, i, kwargs), what, atol=atol,
                    rtol=1e-3, check_dtype=False)


def run_block(function, input_shape, args, x, name, seed=0):
    """Build the Keras block `function(inputs..., *args)` (an `exercises.<name>` that
    builds layers) in the sandbox, set EVERY weight of it to values drawn here
    (BatchNormalization: `numpy_layers.random_batch_norm`, statistics far from the
    identity; kernels N(0, 1/fan_in); biases N(0, 0.1^2)), and run it on `x` in
    inference mode.

    `input_shape` is one shape or a list of shapes (one input each, `x` then a list).
    Returns (output, layers): layers is the built model's list of {"class", "config",
    "weights"} in Keras' order, the weights being the ones drawn here (not read back
    from the child), for a numpy reference to recompute the output from.
    """
    from ganlib.course.numpy_layers import random_batch_norm
    built = function.model(input_shape, *args)
    if built is None:
        raise AssertionError(f"{name} returned None; did you forget a `return`?")
    rng = np.random.default_rng(seed)
    weights = {}
    for i, (layer, current) in enumerate(zip(built["layers"], built["weights"])):
        shapes = [np.shape(w) for w in current]
        if layer["class"] == "BatchNormalization" and len(shapes) == 4:
            weights[i] = random_batch_norm(rng, shapes[0][0])
        elif shapes:
            weights[i] = [(rng.normal(size=s) / np.sqrt(max(1, int(np.prod(s[:-1])))) if len(s) > 1
                           else rng.normal(size=s) * 0.1).astype(np.float32) for s in shapes]
    run = function.model(input_shape, *args, weights=weights, x=x)
    layers = [dict(layer, weights=weights.get(i, []))
              for i, layer in enumerate(run["layers"])]
    return run["output"], layers


def layers_of(layers, kind, name, count=None):
    """The layers of class `kind` (e.g. "Conv2D") in a `run_block` listing; with `count`,
    an AssertionError saying how many `name` built when it is not that many."""
    found = [layer for layer in layers if layer["class"] == kind]
    if count is not None and len(found) != count:
        raise AssertionError(f"{name} built {len(found)} {kind} layer(s); expected {count}")
    return found


def check_batch_norm(layers, name, momentum, epsilon, advice):
    """Assert that every BatchNormalization of a `run_block` listing has this momentum and
    epsilon; the message names `name` and gives `advice` (what to pass, and why)."""
    for bn in layers_of(layers, "BatchNormalization", name):
        got = bn["config"]["momentum"], bn["config"]["epsilon"]
        if abs(got[0] - momentum) > 1e-9 or abs(got[1] - epsilon) > 1e-12:
            raise AssertionError(f"{name}: {advice}; got momentum {got[0]}, epsilon {got[1]}")


def find_repo_root(start=None):
    """The nearest folder at or above `start` (default: cwd) holding tests/grading;
    else the folder above the ganlib package, if it has one."""
    start = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "tests" / "grading").is_dir():
            return folder
    fallback = pathlib.Path(__file__).resolve().parents[2]
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


# ---------------------------------------------------------------------------
# Running graded tests against a submission
# ---------------------------------------------------------------------------

_module_counter = itertools.count()


def load_tests(path):
    """The graded test module at `path`, imported under a fresh name."""
    spec = importlib.util.spec_from_file_location(f"_ganlib_graded_{next(_module_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def points_of(function):
    """Points of a graded test: `@pytest.mark.points(n)`, 1 when absent."""
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "points":
            return float(mark.args[0] if mark.args else mark.kwargs.get("n", 1))
    return 1.0


def time_factor_of(function):
    """How many times the per-test time a graded test may take: `@pytest.mark.time_factor(k)`
    (tests that build a Keras block: the backend's first layers compile), 1 when absent."""
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "time_factor":
            return float(mark.args[0])
    return 1.0


def exercise_of(function):
    """The exercise number of a graded test, `@pytest.mark.exercise(n)`; None when absent."""
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "exercise":
            return int(mark.args[0] if mark.args else mark.kwargs["n"])
    return None


def reflection_answer(source, variable):
    """The text a submission assigns to the module-level `variable` (a string literal),
    read from its source without running it; None when there is none."""
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable
                                                for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value.strip()
    return None


def manual_records(modules, source):
    """Records of the items graded by the instructor (`MANUALLY_GRADED` of each module)."""
    records = []
    for module, visibility in modules:
        for item in getattr(module, "MANUALLY_GRADED", []):
            answer = reflection_answer(source, item["answer"])
            unanswered = not answer or answer == item.get("placeholder", "").strip()
            text = (f"No answer: set {item['answer']} in exercises.py." if unanswered
                    else f"Answer ({item['answer']}):\n{answer[:_MAX_OUTPUT]}")
            records.append({
                "name": item["name"], "number": str(item["exercise"]),
                "max_score": float(item["points"]), "visibility": visibility,
                "tags": ["graded by the instructor"],
                "output": (f"Exercise {item['exercise']}, graded by the instructor (the autograder "
                           f"gives it no score; up to {item['points']:g} points).\n"
                           f"Question: {item['question']}\n{text}")})
    return records


def is_manual(record):
    """Whether a results record is graded by the instructor (it has no automatic score)."""
    return "score" not in record


def graded_tests(module):
    """(name, function) of the module's `test_*` functions, in file order."""
    return [(name, value) for name, value in vars(module).items()
            if name.startswith("test_") and callable(value)]


def allowed_ganlib(modules):
    """The ganlib names the submission may use: the union of the modules' ALLOWED_GANLIB."""
    allowed = {}
    for module in modules:
        for name, names in getattr(module, "ALLOWED_GANLIB", {}).items():
            allowed.setdefault(name, set()).update(names)
    return {name: sorted(names) for name, names in allowed.items()}


def trusted_imports(source):
    """The trusted packages (numpy, keras, ...) the submission imports: loaded before the
    sandbox closes, so the student's own import of them is quick."""
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = set()
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in _TRUSTED)
    return sorted(found)


def _message(error):
    if isinstance(error, (SubmissionError, SubmissionImportError, GradingTimeout, ChildDied)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:_MAX_OUTPUT]


def open_submission(path, modules, repo_root=None, timeout=DEFAULT_TIMEOUT,
                    total_timeout=DEFAULT_BUDGET, limits=None):
    """A `Submission` for `path` as the graded `modules` see it (allowed ganlib names,
    static check, limits); the repository is unreadable to it."""
    source = pathlib.Path(path).read_text(encoding="utf-8", errors="replace")
    allowed = allowed_ganlib(modules)
    preload = trusted_imports(source) + sorted(allowed)
    roots = [repo_root] if repo_root is not None else []
    return Submission(path, allowed=allowed, preload=preload, per_test=timeout,
                      budget=total_timeout, flagged=free_answers(source, allowed),
                      limits=limits, forbidden_roots=roots)


def run_graded(test_files, submission, repo_root=None, timeout=DEFAULT_TIMEOUT,
               total_timeout=DEFAULT_BUDGET, limits=None):
    """Run the `(path, visibility)` test files against `submission`; return
    (per-test records, notes)."""
    modules = [(load_tests(path), visibility) for path, visibility in test_files]
    records, notes, counts = [], [], {}
    with open_submission(submission, [m for m, _ in modules], repo_root, timeout,
                         total_timeout, limits) as exercises:
        for module, visibility in modules:
            for name, test in graded_tests(module):
                exercises.begin_test(time_factor_of(test))
                try:
                    test(exercises)
                    status, message = "passed", ""
                except Exception as error:   # noqa: BLE001 - every failure is a message
                    status, message = "failed", _message(error)
                points = points_of(test)
                record = {"name": name, "score": points if status == "passed" else 0.0,
                          "max_score": points, "status": status, "output": message,
                          "visibility": visibility}
                number = exercise_of(test)
                if number is not None:
                    counts[number] = counts.get(number, 0) + 1
                    record = {"name": name, "number": f"{number}.{counts[number]}", **record}
                records.append(record)
        if exercises.landlock == 0 and exercises.started:
            notes.append("note: Landlock is not available on this machine; the student's "
                         "code ran with resource limits only")
    source = pathlib.Path(submission).read_text(encoding="utf-8", errors="replace")
    return records + manual_records(modules, source), notes


def lesson_test_files(lesson, repo_root):
    """[(visible test file, "visible"), (hidden test file, "after_published")]; the
    hidden one only where the repository has it (not in a student's release)."""
    visible = find_test_file(lesson, repo_root)
    files = [(visible, "visible")]
    hidden = visible.parent / "hidden" / visible.name
    if hidden.is_file():
        files.append((hidden, "after_published"))
    return files


def print_table(results, file=None):
    """Print a score table: name, points, status and the first line of the message."""
    file = file or sys.stdout
    rows = [(t.get("number", ""), t["name"],
             f"-/{t['max_score']:g}" if is_manual(t) else f"{t['score']:g}/{t['max_score']:g}",
             "manual" if is_manual(t) else t["status"],
             "graded by the instructor" if is_manual(t)
             else (t["output"].splitlines() or [""])[0][:100]) for t in results["tests"]]
    width = max([len(r[1]) for r in rows] + [4])
    print(f"{'#':<5} {'test':<{width}}  points  status  message", file=file)
    for number, name, points, status, message in rows:
        print(f"{number:<5} {name:<{width}}  {points:>6}  {status:<6}  {message}", file=file)
    manual = sum(t["max_score"] for t in results["tests"] if is_manual(t))
    print(f"{'':<5} {'total':<{width}}  {results['score']:g}/{results['max_score']:g}"
          + (f" (+ {manual:g} graded by the instructor)" if manual else "")
          + f"   ({results['execution_time']:.1f} s)", file=file)


def grade(lesson, submission=None, solutions=False, results=None, timeout=DEFAULT_TIMEOUT,
          repo_root=None, verbose=True, total_timeout=DEFAULT_BUDGET, limits=None):
    """Grade one lesson's exercises; return the Gradescope results dict.

    lesson: "01" or "01_cgan". submission: the exercises file to grade (default
    `lessons/<lesson>/exercises.py`); solutions=True grades
    `solutions/<lesson>/exercises.py` instead. results: where to write the JSON.
    timeout: seconds each test may wait for the student's code; total_timeout:
    seconds for the whole lesson; limits: the child's `Limits`. Raises GradingError
    when grading cannot start (unknown lesson, missing file, both submission and
    solutions).
    """
    repo_root = (pathlib.Path(repo_root).resolve() if repo_root is not None
                 else find_repo_root())
    test_files = lesson_test_files(lesson, repo_root)
    lesson_name = test_files[0][0].stem[len("test_"):]
    if submission is not None and solutions:
        raise GradingError("give either a submission file or --solutions, not both")
    if submission is None:
        folder = "solutions" if solutions else "lessons"
        submission = repo_root / folder / lesson_name / "exercises.py"
    submission = pathlib.Path(submission).resolve()
    if not submission.is_file():
        raise GradingError(f"submission file not found: {submission}")
    if verbose:
        names = ", ".join(str(p.relative_to(repo_root)) for p, _ in test_files)
        print(f"Grading {submission} with {names} ...", flush=True)
    start = time.monotonic()
    tests, notes = run_graded(test_files, submission, repo_root, timeout, total_timeout, limits)
    score = sum(t["score"] for t in tests if not is_manual(t))
    max_score = sum(t["max_score"] for t in tests if not is_manual(t))
    manual = sum(t["max_score"] for t in tests if is_manual(t))
    line = f"Graded {submission}: {score:g} / {max_score:g} points."
    if manual:
        line += f" The instructor grades {manual:g} more (the reflection question)."
    summary = {"score": score, "max_score": max_score,
               "execution_time": round(time.monotonic() - start, 3),
               "output": "\n".join([line, *notes]),
               "extra_data": {"manually_graded_points": manual},
               "tests": tests}
    if results is not None:
        results = pathlib.Path(results)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print_table(summary)
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
    parser.add_argument("--total-timeout", type=float, default=DEFAULT_BUDGET, metavar="S",
                        help=f"seconds for the whole lesson (default {DEFAULT_BUDGET:g})")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="course repository root (default: search upward from cwd)")
    return parser


def run_from_args(args):
    """Run `grade` from parsed arguments; 0 whenever grading ran, 2 if it could not."""
    try:
        grade(args.lesson, submission=args.submission, solutions=args.solutions,
              results=args.results, timeout=args.timeout,
              total_timeout=getattr(args, "total_timeout", DEFAULT_BUDGET),
              repo_root=getattr(args, "root", None))
    except GradingError as error:
        print(f"ganlib grade: error: {error}", file=sys.stderr)
        if args.results:   # Gradescope shows this to the student
            path = pathlib.Path(args.results)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"score": 0.0, "output": f"Not graded: {error}",
                                        "tests": []}, indent=2) + "\n", encoding="utf-8")
        return 2
    return 0


def main(argv=None):
    """`python -m ganlib.course.grading NN [--submission FILE | --solutions] [--results F]`."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="ganlib grade", description="Grade a lesson's exercises."))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
