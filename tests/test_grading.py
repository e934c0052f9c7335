"""Tests of ganlib.grading on a small fake course repository (numpy only, fast).

The demo lesson has four graded tests worth 1, 2, 3 and 4 points. The "student"
file gets the first right, raises in the second, loops forever in the third and
returns the wrong shape in the fourth.
"""

import json
import pathlib
import shutil
import signal
import time

import numpy as np
import pytest

from ganlib import grading, stubs

REAL_CONFTEST = pathlib.Path(__file__).parent / "grading" / "conftest.py"

GRADED_TESTS = '''\
import numpy as np
import pytest

from ganlib.grading import check_close


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

MAX_SCORE = 10.0


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A fake course repository with lesson 99_demo."""
    root = tmp_path_factory.mktemp("course")
    (root / "tests" / "grading").mkdir(parents=True)
    shutil.copy(REAL_CONFTEST, root / "tests" / "grading" / "conftest.py")
    (root / "tests" / "grading" / "test_99_demo.py").write_text(GRADED_TESTS)
    for folder in ("solutions", "lessons"):
        (root / folder / "99_demo").mkdir(parents=True)
    (root / "solutions" / "99_demo" / "exercises.py").write_text(SOLUTION)
    stubs.generate(root)
    (root / "student.py").write_text(STUDENT)
    return root


def _by_name(results):
    return {test["name"]: test for test in results["tests"]}


def test_solutions_score_full_marks_and_results_json(repo, tmp_path):
    out = tmp_path / "out" / "results.json"
    results = grading.grade("99", solutions=True, repo_root=repo, results=out,
                            verbose=False, timeout=30)
    assert results["score"] == MAX_SCORE and results["max_score"] == MAX_SCORE
    written = json.loads(out.read_text())
    assert written == results
    assert {"score", "max_score", "tests", "execution_time"} <= set(written)
    assert [t["name"] for t in written["tests"]] == [
        "test_add", "test_mean", "test_count", "test_double"]
    for test, points in zip(written["tests"], [1, 2, 3, 4]):
        assert test == {"name": test["name"], "score": points, "max_score": points,
                        "status": "passed", "output": "", "visibility": "visible"}


def test_student_scores_only_the_correct_item(repo, capsys):
    start = time.monotonic()
    results = grading.grade("99_demo", submission=repo / "student.py", repo_root=repo,
                            timeout=3)
    elapsed = time.monotonic() - start
    assert results["score"] == 1.0 and results["max_score"] == MAX_SCORE
    tests = _by_name(results)
    assert [tests[n]["status"] for n in ("test_add", "test_mean", "test_count",
                                         "test_double")] == [
        "passed", "failed", "failed", "failed"]
    assert tests["test_mean"]["output"] == "ValueError: oops"
    assert "timed out after 3 s" in tests["test_count"]["output"]
    assert tests["test_double"]["output"] == (
        "AssertionError: double returned shape (1,), expected shape (2,)")
    assert elapsed < 30, f"grading an infinite loop took {elapsed:.0f} s"
    table = capsys.readouterr().out
    assert "test_count" in table and "0/3" in table and "1/10" in table


def test_stub_scores_zero_without_crashing(repo):
    stub = repo / "lessons" / "99_demo" / "exercises.py"   # the default submission
    results = grading.grade("99", repo_root=repo, verbose=False, timeout=30)
    assert results["score"] == 0.0 and results["max_score"] == MAX_SCORE
    assert str(stub) in results["output"]
    outputs = [t["output"] for t in results["tests"]]
    assert outputs[0] == "NotImplementedError: Exercise: add"
    assert outputs[3] == "NotImplementedError: Exercise: double"


def test_submission_that_does_not_import_scores_zero(repo, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def add(a, b)\n    return a + b\n")
    results = grading.grade("99", submission=broken, repo_root=repo, verbose=False,
                            timeout=30)
    assert results["score"] == 0.0 and len(results["tests"]) == 4
    for test in results["tests"]:
        assert "could not import" in test["output"]
        assert "SyntaxError" in test["output"] and "line 1" in test["output"]


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs POSIX signals")
def test_uninterruptible_hang_costs_that_item_only(repo, tmp_path):
    """A test the alarm cannot stop is killed by the parent; the rest still run."""
    hang = tmp_path / "hang.py"
    hang.write_text(SOLUTION.replace(
        "def add(a, b):\n",
        "def add(a, b):\n    import signal, time\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    time.sleep(120)\n"))
    results = grading.grade("99", submission=hang, repo_root=repo, verbose=False,
                            timeout=1)
    tests = _by_name(results)
    assert results["score"] == MAX_SCORE - 1
    assert tests["test_add"]["status"] == "failed"
    assert "timed out after 1 s" in tests["test_add"]["output"]


def test_process_dying_in_a_test_costs_that_item_only(repo, tmp_path):
    dying = tmp_path / "dying.py"
    dying.write_text(SOLUTION.replace("def mean(x):\n",
                                      "def mean(x):\n    import os\n    os._exit(3)\n"))
    results = grading.grade("99", submission=dying, repo_root=repo, verbose=False,
                            timeout=30)
    assert results["score"] == MAX_SCORE - 2
    assert "died during this test (exit code 3)" in _by_name(results)["test_mean"]["output"]


def test_main_exit_codes(repo, tmp_path, capsys):
    results = tmp_path / "r.json"
    argv = ["99", "--root", str(repo), "--submission", str(repo / "student.py"),
            "--timeout", "2", "--results", str(results)]
    assert grading.main(argv) == 0
    assert json.loads(results.read_text())["score"] == 1.0
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
