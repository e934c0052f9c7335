"""Tests of ganlib.course.grading: the sandboxed autograder, on a small fake course
repository (numpy only, fast) and on the real lessons.

The demo lesson has four visible graded tests worth 1, 2, 3 and 4 points and one
hidden test worth 1. Hostile submissions try to forge or steal their score; each
must score exactly what its honest part earns, and leave the repository as it was.

The grader's sandbox, scoring and bookkeeping do not depend on the Keras backend, so CI runs
this file on TensorFlow only (`backend_neutral`); the graded tests it drives
(tests/grading/, visible and hidden) run directly in every backend's suite, which is where
each backend's values of the solutions are checked.
"""

import hashlib
import json
import os
import pathlib
import shutil
import time

import numpy as np
import pytest

from ganlib.course import grading, stubs
from ganlib.course import child as protocol
from ganlib.course.static import free_answers

pytestmark = pytest.mark.backend_neutral

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL_CONFTEST = REPO_ROOT / "tests" / "grading" / "conftest.py"
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

GRADED_TESTS = '''\
import numpy as np
import pytest

from ganlib.course.grading import check_close


@pytest.mark.points(1)
def test_add(exercises):
    check_close(exercises.add(1.0, 2.0), 3.0, "add")


@pytest.mark.points(2)
def test_mean(exercises):
    check_close(exercises.mean(np.array([1.0, 3.0])), 2.0, "mean")


@pytest.mark.points(3)
def test_count(exercises):
    assert exercises.count(3) == 3


@pytest.mark.points(4)
def test_double(exercises):
    check_close(exercises.double([1.0, 2.0]), np.array([2.0, 4.0]), "double")
'''

SOLUTION = '''\
"""Demo exercises."""
import numpy as np


def add(a, b):
    # BEGIN SOLUTION
    return a + b
    # END SOLUTION


def mean(x):
    # BEGIN SOLUTION
    return np.mean(x)
    # END SOLUTION


def count(n):
    # BEGIN SOLUTION
    return n
    # END SOLUTION


def double(x):
    # BEGIN SOLUTION
    return 2 * np.asarray(x, dtype=float)
    # END SOLUTION
'''

STUDENT = '''\
import numpy as np


def add(a, b):
    return a + b


def mean(x):
    raise ValueError("oops")


def count(n):
    while True:
        pass


def double(x):
    return 2 * np.asarray(x, dtype=float)[:1]
'''


HIDDEN_TESTS = '''\
import pytest

from ganlib.course.grading import check_close


@pytest.mark.points(1)
def test_add_negative(exercises):
    check_close(exercises.add(-1.0, -2.5), -3.5, "add of negatives")
'''

MAX_SCORE = 11.0        # 10 visible + 1 hidden


def tree_hash(root):
    """sha256 over the relative paths and contents of every file under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in pathlib.Path(root).rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A fake course repository with lesson 99_demo."""
    root = tmp_path_factory.mktemp("course")
    (root / "tests" / "grading" / "hidden").mkdir(parents=True)
    shutil.copy(REAL_CONFTEST, root / "tests" / "grading" / "conftest.py")
    (root / "tests" / "grading" / "test_99_demo.py").write_text(GRADED_TESTS)
    (root / "tests" / "grading" / "hidden" / "test_99_demo.py").write_text(HIDDEN_TESTS)
    for folder in ("solutions", "lessons"):
        (root / folder / "99_demo").mkdir(parents=True)
    (root / "solutions" / "99_demo" / "exercises.py").write_text(SOLUTION)
    stubs.generate(root)
    return root


def _by_name(results):
    return {test["name"]: test for test in results["tests"]}


def _grade(repo, tmp_path, source, timeout=10, **kwargs):
    """Grade `source` as a submission of the demo lesson; check the repo is unchanged."""
    before = tree_hash(repo)
    submission = tmp_path / "submission.py"
    submission.write_text(source)
    results = grading.grade("99", submission=submission, repo_root=repo, verbose=False,
                            timeout=timeout, **kwargs)
    assert tree_hash(repo) == before, "grading a submission changed the repository"
    return results


def test_solutions_score_full_marks_and_results_json(repo, tmp_path):
    out = tmp_path / "out" / "results.json"
    results = grading.grade("99", solutions=True, repo_root=repo, results=out,
                            verbose=False)
    assert results["score"] == MAX_SCORE and results["max_score"] == MAX_SCORE
    written = json.loads(out.read_text())
    assert written == results
    assert {"score", "max_score", "tests", "execution_time", "output"} <= set(written)
    assert [t["name"] for t in written["tests"]] == [
        "test_add", "test_mean", "test_count", "test_double", "test_add_negative"]
    for test, points in zip(written["tests"], [1, 2, 3, 4, 1]):
        assert test == {"name": test["name"], "score": points, "max_score": points,
                        "status": "passed", "output": "",
                        "visibility": "after_published" if test["name"] == "test_add_negative"
                        else "visible"}


def test_student_scores_only_the_correct_items(repo, tmp_path, capsys):
    start = time.monotonic()
    results = grading.grade("99_demo", submission=_write(tmp_path, STUDENT), repo_root=repo,
                            timeout=2)
    elapsed = time.monotonic() - start
    assert results["score"] == 2.0 and results["max_score"] == MAX_SCORE   # add, add_negative
    tests = _by_name(results)
    assert [tests[n]["status"] for n in ("test_add", "test_mean", "test_count",
                                         "test_double")] == [
        "passed", "failed", "failed", "failed"]
    assert tests["test_mean"]["output"] == "ValueError: oops"
    assert tests["test_count"]["output"] == "count timed out after 2 s (an infinite loop?)"
    assert tests["test_double"]["output"] == (
        "AssertionError: double returned shape (1,), expected shape (2,)")
    assert elapsed < 20, f"grading an infinite loop took {elapsed:.0f} s"
    table = capsys.readouterr().out
    assert "test_count" in table and "0/3" in table and "2/11" in table


def _write(tmp_path, source, name="submission.py"):
    path = tmp_path / name
    path.write_text(source)
    return path


def test_stub_scores_zero_without_crashing(repo):
    stub = repo / "lessons" / "99_demo" / "exercises.py"   # the default submission
    results = grading.grade("99", repo_root=repo, verbose=False)
    assert results["score"] == 0.0 and results["max_score"] == MAX_SCORE
    assert str(stub) in results["output"]
    outputs = [t["output"] for t in results["tests"]]
    assert outputs[0] == "NotImplementedError: Exercise: add"
    assert outputs[3] == "NotImplementedError: Exercise: double"


def test_submission_that_does_not_import_scores_zero(repo, tmp_path):
    results = _grade(repo, tmp_path, "def add(a, b)\n    return a + b\n")
    assert results["score"] == 0.0 and len(results["tests"]) == 5
    for test in results["tests"]:
        assert "could not import" in test["output"]
        assert "SyntaxError" in test["output"] and "line 1" in test["output"]


# ---------------------------------------------------------------------------
# Hostile submissions: each earns only its honest part (add is right in all of them)
# ---------------------------------------------------------------------------

HONEST_ADD = "def add(a, b):\n    return a + b\n\n\n"
HONEST_ADD_SCORE = 2.0     # test_add (1) + hidden test_add_negative (1)


def test_every_function_looping_finishes_within_the_budget(repo, tmp_path):
    looping = "\n".join(f"def {name}(*args):\n    while True:\n        pass\n"
                        for name in ("add", "mean", "count", "double"))
    start = time.monotonic()
    results = _grade(repo, tmp_path, looping, timeout=1, total_timeout=30)
    elapsed = time.monotonic() - start
    assert results["score"] == 0.0
    assert all("timed out after 1 s" in t["output"] for t in results["tests"])
    assert elapsed < 15, f"five looping tests at 1 s each took {elapsed:.0f} s"


def test_lesson_budget_stops_the_rest(repo, tmp_path):
    looping = "def add(a, b):\n    while True:\n        pass\n"
    results = _grade(repo, tmp_path, looping, timeout=5, total_timeout=2)
    outputs = [t["output"] for t in results["tests"]]
    assert "timed out" in outputs[0]
    assert all("time for this lesson ran out" in o for o in outputs[1:]), outputs


def test_hang_in_native_code_costs_that_item_only(repo, tmp_path):
    """A hang that no Python signal can interrupt: the parent kills the child."""
    hang = SOLUTION.replace("def mean(x):\n", "def mean(x):\n    import signal, time\n"
                            "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
                            "    time.sleep(120)\n")
    results = _grade(repo, tmp_path, hang, timeout=1)
    assert results["score"] == MAX_SCORE - 2
    assert "mean timed out after 1 s" in _by_name(results)["test_mean"]["output"]


def test_os_exit_and_sys_exit_cost_that_item_only(repo, tmp_path):
    dying = SOLUTION.replace("def mean(x):\n", "def mean(x):\n    import os\n    os._exit(0)\n")
    dying = dying.replace("def count(n):\n", "def count(n):\n    import sys\n    sys.exit(0)\n")
    results = _grade(repo, tmp_path, dying)
    tests = _by_name(results)
    assert results["score"] == MAX_SCORE - 2 - 3
    assert "died during mean (exit code 0)" in tests["test_mean"]["output"]
    assert tests["test_count"]["output"] == "SubmissionError: SystemExit: 0" or \
        tests["test_count"]["output"] == "SystemExit: 0"


def test_twenty_megabytes_of_output(repo, tmp_path):
    noisy = SOLUTION.replace("def add(a, b):\n", "def add(a, b):\n    import os, sys\n"
                             "    print('x' * (10 << 20))\n    os.write(2, b'y' * (10 << 20))\n")
    results = _grade(repo, tmp_path, noisy)
    assert results["score"] == MAX_SCORE


def test_memory_hog_costs_that_item_only(repo, tmp_path):
    hog = SOLUTION.replace("def mean(x):\n", "def mean(x):\n    big = np.ones(1 << 40)\n")
    results = _grade(repo, tmp_path, hog)
    assert results["score"] == MAX_SCORE - 2
    assert _by_name(results)["test_mean"]["output"].startswith("MemoryError")


def test_tampering_with_state_tests_and_results_changes_nothing(repo, tmp_path):
    """The submission rewrites every file it can think of (the tests, the solutions,
    the results file, the package), tries to answer for the next call, then returns
    wrong values: the repository is unchanged and only `add` scores."""
    results_file = tmp_path / "results.json"
    targets = [repo / "tests" / "grading" / "test_99_demo.py",
               repo / "tests" / "grading" / "conftest.py",
               repo / "lessons" / "99_demo" / "exercises.py", results_file,
               pathlib.Path(grading.__file__), pathlib.Path(protocol.__file__)]
    forged = json.dumps({"score": 11, "max_score": 11, "tests": []})
    source = HONEST_ADD + f"""
import os, struct, sys

TARGETS = {[str(t) for t in targets]!r}


def _tamper():
    for path in TARGETS + [os.environ.get("GANLIB_GRADING_RESULTS") or "state.json"]:
        try:
            with open(path, "w") as handle:
                handle.write({forged!r})
        except OSError:
            pass
    for fd in range(3, 64):      # answer on every pipe we can find
        try:
            os.write(fd, struct.pack("<Q", 4) + b"junk")
        except OSError:
            pass


def mean(x):
    _tamper()
    return 0.0


def count(n):
    _tamper()
    os._exit(0)


def double(x):
    _tamper()
    return [0.0, 0.0]
"""
    package_before = tree_hash(pathlib.Path(grading.__file__).parent)
    results = _grade(repo, tmp_path, source)
    grading_results = results
    assert grading_results["score"] == HONEST_ADD_SCORE
    assert tree_hash(pathlib.Path(grading.__file__).parent) == package_before
    assert not results_file.exists()


def test_reading_the_solutions_earns_nothing(repo, tmp_path):
    """Statically visible: flagged with the reason. Hidden from the static check
    (a path built at run time): the sandbox cannot read the repository."""
    solution = repo / "solutions" / "99_demo" / "exercises.py"
    head, tail = str(solution).split("solutions")
    source = HONEST_ADD + f"""
import numpy as np


def mean(x):
    text = open({str(solution)!r}).read()
    return np.mean(x)


def double(x):
    path = {head!r} + "solu" + "tio" + "ns" + {tail!r}
    text = open(path).read()      # PermissionError in the sandbox
    return 2 * np.asarray(x, dtype=float) if "def double" in text else None
"""
    results = _grade(repo, tmp_path, source)
    tests = _by_name(results)
    assert results["score"] == HONEST_ADD_SCORE
    assert tests["test_mean"]["output"] == "AssertionError: mean scores 0: it refers to the solutions"
    assert tests["test_double"]["output"].startswith("PermissionError: [Errno 13]")


def test_static_check_of_references_and_escapes():
    allowed = {"ganlib.losses": ["bce"]}
    source = """
import importlib
import ganlib
from ganlib import losses
from ganlib.losses import bce, kl_divergence as kl


def uses_bce(x):
    return bce(x, 1.0) + losses.bce(x, 0.0) + ganlib.losses.bce(x, 1.0)


def delegates(mu, logvar):
    return kl(mu, logvar)


def by_attribute(a, b):
    return losses.color_consistency(a, b)


def helper_user(mu, logvar):
    return delegates(mu, logvar)


def loader(path):
    return importlib.import_module(path)


def peeks(f):
    return f.__globals__
"""
    reasons = free_answers(source, allowed)
    assert set(reasons) == {"*", "delegates", "by_attribute", "helper_user", "peeks"}
    assert reasons["*"] == "it imports importlib, which graded code may not use"
    assert reasons["delegates"] == ("it uses ganlib.losses.kl_divergence, ganlib's reference "
                                    "implementation; write your own")
    assert "color_consistency" in reasons["by_attribute"]
    assert reasons["helper_user"].startswith("it calls delegates, which scores 0")
    assert "__globals__" in reasons["peeks"]
    assert free_answers("from ganlib.models import stackgan\n", {}) == {
        "*": "it uses ganlib.models.stackgan, ganlib's reference implementation; write your own"}


def test_ganlib_references_are_unreachable_at_run_time(tmp_path):
    """With the static check off, the child itself refuses: only the allowed names of
    ganlib exist there, and neither the solutions nor other ganlib modules import."""
    source = """
import numpy as np


def allowed(x):
    from ganlib.losses import bce
    return bce(x, 1.0)


def reference(mu):
    from ganlib.losses import kl_divergence
    return kl_divergence(mu, mu)


def other_module():
    import ganlib.models.stackgan


def solutions():
    import solutions


def through_globals(mu):
    from ganlib.losses import generator_loss
    return generator_loss.__globals__["kl_divergence"](mu, mu)


def through_the_package():
    import ganlib
    return ganlib.losses.color_consistency(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)))
"""
    path = _write(tmp_path, source)
    x = np.array([0.0, 1.0], np.float32)
    with grading.Submission(path, allowed={"ganlib.losses": ["bce", "generator_loss"]},
                            preload=["ganlib.losses"]) as exercises:
        exercises.begin_test()
        expected = np.mean(np.logaddexp(0.0, -x.astype(np.float64)))
        grading.check_close(exercises.allowed(x), expected, "bce", check_dtype=False)
        with pytest.raises(PermissionError, match="ganlib.losses.kl_divergence is not available"):
            exercises.reference(x)
        with pytest.raises(ImportError, match="may not import ganlib.models"):
            exercises.other_module()
        with pytest.raises(ImportError, match="may not import solutions"):
            exercises.solutions()
        with pytest.raises(PermissionError, match="color_consistency is not available"):
            exercises.through_the_package()
        with pytest.raises(KeyError, match="kl_divergence"):   # the allowed function's
            exercises.through_globals(x)                       # globals: only what it uses


def test_values_only_cross_the_pipe():
    value = {"a": [np.arange(3, dtype=np.int32), 1.5, 2, None, True, "s"],
             "b": np.float32(0.25)}
    decoded = protocol.decode(protocol.encode(value))
    assert decoded["a"][0].dtype == np.int32 and decoded["a"][0].tolist() == [0, 1, 2]
    assert decoded["a"][1:] == [1.5, 2, None, True, "s"]
    assert decoded["b"].shape == () and decoded["b"].dtype == np.float32
    with pytest.raises(TypeError):
        protocol.encode(object())
    with pytest.raises(TypeError):
        protocol.encode(np.array([object()]))
    pickled = b"\x80\x04\x95"   # a pickle is never accepted
    with pytest.raises(ValueError):
        protocol.decode(len(pickled).to_bytes(8, "little") + pickled)


# ---------------------------------------------------------------------------
# Command line, files
# ---------------------------------------------------------------------------

def test_main_exit_codes(repo, tmp_path, capsys):
    results = tmp_path / "r.json"
    argv = ["99", "--root", str(repo), "--submission", str(_write(tmp_path, STUDENT)),
            "--timeout", "2", "--results", str(results)]
    assert grading.main(argv) == 0
    assert json.loads(results.read_text())["score"] == 2.0
    capsys.readouterr()
    missing = tmp_path / "nope.py"
    assert grading.main(["99", "--root", str(repo), "--submission", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert grading.main(["42", "--root", str(repo)]) == 2
    assert "lesson '42'" in capsys.readouterr().err
    assert grading.main([]) == 2                      # argparse usage error


def test_find_test_file(repo):
    expected = repo / "tests" / "grading" / "test_99_demo.py"
    assert grading.find_test_file("99", repo) == expected
    assert grading.find_test_file("99_demo", repo) == expected
    with pytest.raises(grading.GradingError, match="available: 99_demo"):
        grading.find_test_file("7", repo)


@pytest.mark.parametrize("actual, expected, message", [
    (None, 1.0, "f returned None; did you forget a `return`?"),
    (np.zeros(4), 0.0, "f returned shape (4,), expected a scalar"),
    (1.0, np.zeros((2, 3)), "f returned a scalar, expected shape (2, 3)"),
    (np.zeros(3, dtype=np.int32), np.zeros(3), "f returned dtype int32, expected a "
                                               "floating-point result (float64)"),
    (np.array([1.0, np.nan]), np.ones(2), "f returned NaN or inf in 1 of 2 entries"),
    (1.5, 1.0, "f returned 1.5, expected 1 (difference 0.5)"),
    (np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]),
     "f is off in 1 of 4 entries; the largest difference is 1 at index (1, 1) "
     "(got 5, expected 4)"),
])
def test_check_close_explains_mismatches(actual, expected, message):
    with pytest.raises(AssertionError) as info:
        grading.check_close(actual, expected, "f")
    assert str(info.value) == message


def test_check_close_accepts_close_values_of_other_precision():
    got = grading.check_close(np.float32(0.1), 0.1, "f")
    assert isinstance(got, np.ndarray)
    grading.check_close([1.0, 2.0], np.array([1.0, 2.0 + 1e-7]), "f")
    grading.check_close(3.0, 3, "f")        # a Python number sets no dtype
    with pytest.raises(AssertionError, match="f returned dtype float64, expected int64"):
        grading.check_close(np.array([3.0]), np.array([3]), "f")


# ---------------------------------------------------------------------------
# The real lessons: solutions full marks, stubs zero, free answers nothing
# ---------------------------------------------------------------------------

# Lesson 01 on every backend (CI runs this file on three); all lessons on TensorFlow.
ALL_LESSONS = ["01_cgan", "02_stackgan", "03_stackganpp", "04_attngan", "05_hdgan", "06_mirrorgan", "07_pix2pixhd"]
LESSONS = ALL_LESSONS if BACKEND == "tensorflow" else ["01_cgan"]


def exercise_numbers(lesson):
    """{"notebook", "stub", "tests"}: {exercise number: function name} in each place
    ("reflection" for the question the instructor grades)."""
    import ast
    import inspect
    import re
    notebook = json.loads((REPO_ROOT / "lessons" / lesson / "lesson.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    in_notebook = {int(n): name for n, name in re.findall(r"\*\*Exercise (\d+)\.\*\* `(\w+)\(", text)}
    in_notebook.update({int(n): "reflection" for n in re.findall(r"\*\*Exercise (\d+) \(reflection", text)})
    source = (REPO_ROOT / "solutions" / lesson / "exercises.py").read_text()
    in_stub = {}
    for node in ast.parse(source).body:
        match = re.match(r"Exercise (\d+)\. ", ast.get_docstring(node) or "") if isinstance(
            node, ast.FunctionDef) else None
        if match:
            in_stub[int(match[1])] = node.name
    in_stub.update({int(n): "reflection" for n in re.findall(r"^# Exercise (\d+) \(reflection", source, re.M)})
    in_tests = {}
    for path, _ in grading.lesson_test_files(lesson, REPO_ROOT):
        module = grading.load_tests(path)
        for name, test in grading.graded_tests(module):
            number = grading.exercise_of(test)
            assert number is not None, f"{path.name}: {name} has no @pytest.mark.exercise"
            code = inspect.getsource(test)
            for helper in re.findall(r"(\w+)\(exercises\b", code):   # a shared builder
                owner = module if hasattr(module, helper) else module.VISIBLE
                code += inspect.getsource(getattr(owner, helper))
            in_tests.setdefault(number, set()).update(re.findall(r"exercises\.(\w+)", code))
        for item in getattr(module, "MANUALLY_GRADED", []):
            in_tests.setdefault(item["exercise"], set()).add("reflection")
    return {"notebook": in_notebook, "stub": in_stub, "tests": in_tests}


@pytest.mark.parametrize("lesson", ALL_LESSONS)
def test_exercise_numbers_agree_in_notebook_stub_and_tests(lesson):
    """Exercise N is the same function in the notebook ("**Exercise N.** `name(`"), the stub
    (its docstring starts "Exercise N.") and the graded tests (@pytest.mark.exercise(N)
    on tests that call it); the grader's results number their tests "N.k" from these marks."""
    found = exercise_numbers(lesson)
    assert found["notebook"] == found["stub"]
    assert sorted(found["notebook"]) == list(range(1, len(found["notebook"]) + 1))
    assert sorted(found["tests"]) == sorted(found["notebook"])
    for number, name in found["notebook"].items():
        assert name in found["tests"][number], (number, name, found["tests"][number])


def _real_tree_hash():
    return {folder: tree_hash(REPO_ROOT / folder) for folder in ("ganlib", "solutions", "tests")}


@pytest.mark.parametrize("lesson", LESSONS)
def test_real_lesson_solutions_full_marks_stubs_zero(lesson):
    solved = grading.grade(lesson, solutions=True, repo_root=REPO_ROOT, verbose=False)
    failed = [(t["name"], t["output"]) for t in solved["tests"]
              if not grading.is_manual(t) and t["status"] != "passed"]
    assert not failed and solved["score"] == solved["max_score"] > 0
    assert {t["visibility"] for t in solved["tests"]} == {"visible", "after_published"}
    stub = grading.grade(lesson, repo_root=REPO_ROOT, verbose=False)
    assert stub["score"] == 0 and stub["max_score"] == solved["max_score"]
    automatic = [t for t in stub["tests"] if not grading.is_manual(t)]
    assert all("NotImplementedError: Exercise: " in t["output"] for t in automatic)
    # The reflection question: listed with its points, no score, the stub's placeholder unanswered.
    (manual,) = [t for t in stub["tests"] if grading.is_manual(t)]
    assert "status" not in manual and manual["max_score"] == 3.0
    assert manual["tags"] == ["graded by the instructor"] and "No answer: set REFLECTION" in manual["output"]
    assert solved["extra_data"] == {"manually_graded_points": 3.0}
    # Numbers "N.k" (exercise N, its k-th test), the same exercises as the notebook's.
    numbers = {t["number"].split(".")[0] for t in solved["tests"]}
    assert numbers == {str(n) for n in exercise_numbers(lesson)["notebook"]}


def test_real_lesson_free_answers_and_numpy_only_answers(tmp_path):
    """Lesson 01 with three shortcuts: generator_loss delegates to ganlib's reference,
    interpolate_embeddings loads the solutions by path, sigmoid_cross_entropy is
    numpy-only (right values, but it cannot run inside the training step)."""
    before = _real_tree_hash()
    source = (REPO_ROOT / "solutions" / "01_cgan" / "exercises.py").read_text()
    source = source.replace(
        '    x = ops.convert_to_tensor(logits, "float32")\n'
        '    z = ops.convert_to_tensor(labels, "float32")\n'
        '    return ops.maximum(x, 0.0) - x * z + ops.log1p(ops.exp(-ops.abs(x)))\n',
        '    x, z = np.asarray(logits, np.float32), np.asarray(labels, np.float32)\n'
        '    return np.maximum(x, 0.0) - x * z + np.log1p(np.exp(-np.abs(x)))\n')
    source = source.replace('def generator_loss(fake_logits):\n',
                            'def generator_loss(fake_logits):\n'
                            '    from ganlib.losses import generator_loss as reference\n'
                            '    return reference(fake_logits)\n')
    source = source.replace('def interpolate_embeddings(t1, t2, beta=0.5):\n',
                            'def interpolate_embeddings(t1, t2, beta=0.5):\n'
                            '    import importlib.util\n'
                            f'    path = {str(REPO_ROOT / "solutions" / "01_cgan" / "exercises.py")!r}\n'
                            '    spec = importlib.util.spec_from_file_location("s", path)\n'
                            '    module = importlib.util.module_from_spec(spec)\n'
                            '    spec.loader.exec_module(module)\n'
                            '    return module.interpolate_embeddings(t1, t2, beta)\n')
    submission = _write(tmp_path, source, "exercises.py")
    results = grading.grade("01", submission=submission, repo_root=REPO_ROOT, verbose=False)
    assert _real_tree_hash() == before
    tests = _by_name(results)
    for name in ("test_generator_loss", "test_generator_loss_in_the_training_step"):
        assert tests[name]["output"] == (
            "AssertionError: generator_loss scores 0: it uses ganlib.losses.generator_loss, "
            "ganlib's reference implementation; write your own")
    for name in ("test_interpolate_embeddings_ends", "test_interpolate_embeddings_middle"):
        assert tests[name]["output"].startswith("AssertionError: interpolate_embeddings scores 0")
    assert tests["test_sigmoid_cross_entropy_values"]["status"] == "passed"
    assert tests["test_sigmoid_cross_entropy_is_stable_for_large_logits"]["status"] == "passed"
    assert tests["test_sigmoid_cross_entropy_in_the_training_step"]["status"] == "failed"
    # numpy-only bce: right eagerly, broken in the compiled step (and so the D loss too).
    assert tests["test_matching_aware_d_loss_values"]["status"] == "passed"
    assert tests["test_matching_aware_d_loss_in_the_training_step"]["status"] == "failed"
    earned = {"test_sigmoid_cross_entropy_values", "test_sigmoid_cross_entropy_is_stable_for_large_logits",
              "test_matching_aware_d_loss_values", "test_matching_aware_d_loss_weights_and_batch_mean",
              "test_concat_condition", "test_one_hot_labels", "test_concat_condition_in_the_training_step",
              "test_concat_condition_single_pixel_and_batch_one", "test_one_hot_labels_other_values",
              "test_discriminator_head_layers", "test_discriminator_head_computes_the_equations",
              "test_discriminator_head_on_one_hot_classes"}
    assert {t["name"] for t in results["tests"] if t.get("status") == "passed"} == earned


# ---------------------------------------------------------------------------
# Release and autograder
# ---------------------------------------------------------------------------

def test_release_has_no_solutions_and_no_hidden_tests(repo, tmp_path):
    from ganlib.course import release
    out = release.release("99", tmp_path / "student", repo_root=repo)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"lessons/99_demo/exercises.py", "tests/grading/conftest.py",
            "tests/grading/test_99_demo.py", "ganlib/course/grading.py",
            "ganlib/course/child.py"} <= files
    assert not any(f.startswith("solutions/") or "hidden" in f for f in files)
    assert (out / "lessons/99_demo/exercises.py").read_text() == \
        (repo / "lessons/99_demo/exercises.py").read_text()
    results = grading.grade("99", repo_root=out, verbose=False)   # the student's view
    assert results["max_score"] == 10.0 and results["score"] == 0.0
    with pytest.raises(ValueError, match="already exists"):
        release.release("99", out, repo_root=repo)


def test_autograder_zip_grades_offline_in_a_folder(repo, tmp_path):
    import subprocess
    import sys
    import zipfile
    from ganlib.course import release
    archive = release.autograder("99", tmp_path / "autograder.zip", repo_root=repo,
                                 timeout=5, total_timeout=60)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"setup.sh", "run_autograder", "requirements.txt", "tests/grading/conftest.py",
            "tests/grading/test_99_demo.py", "tests/grading/hidden/test_99_demo.py",
            "ganlib/course/grading.py", "ganlib/course/sandbox.py"} <= names
    assert not any(n.startswith("solutions/") or n.startswith("lessons/") for n in names)
    root = tmp_path / "autograder"
    zipfile.ZipFile(archive).extractall(root / "source")
    env = dict(os.environ, GANLIB_AUTOGRADER_ROOT=str(root), GANLIB_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)

    def run(submission):
        if submission is not None:
            (root / "submission").mkdir(exist_ok=True)
            (root / "submission" / "exercises.py").write_text(submission)
        subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, check=False,
                       capture_output=True, timeout=120)
        return json.loads((root / "results" / "results.json").read_text())

    missing = run(None)
    assert missing["score"] == 0.0 and "submission file not found" in missing["output"]
    results = run(STUDENT)
    assert results["score"] == 2.0 and results["max_score"] == MAX_SCORE
    assert _by_name(results)["test_add_negative"]["visibility"] == "after_published"
    assert f"Graded {root / 'submission' / 'exercises.py'}" in results["output"]


def test_load_exercises_rereads_the_file_after_an_edit(tmp_path):
    """The notebooks' import cell: re-running it picks up an edit (same size, same second)."""
    from ganlib.course import load_exercises
    path = tmp_path / "exercises.py"
    path.write_text("def f():\n    return 1\n")
    assert load_exercises(tmp_path).f() == 1
    stat = path.stat()
    path.write_text("def f():\n    return 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))   # an edit a cache would miss
    assert load_exercises(tmp_path).f() == 2
    with pytest.raises(FileNotFoundError, match="no exercises.py in"):
        load_exercises(tmp_path / "nowhere")
