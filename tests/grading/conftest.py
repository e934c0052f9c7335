"""Fixtures for the graded tests `tests/grading/test_NN_topic.py`.

Each graded test takes the `exercises` fixture (the exercises module under test)
and carries its points with `@pytest.mark.points(n)` (1 when absent):

    from ganlib.grading import check_close

    @pytest.mark.points(2)
    def test_kl_divergence(exercises):
        check_close(exercises.kl_divergence(mu, logvar), expected, "kl_divergence")

`exercises` is the file named by the environment variable GANLIB_SUBMISSION when
it is set (that is how `ganlib grade` grades a student's file), else
`solutions/<NN_topic>/exercises.py`, so `pytest tests/` checks the solutions.
"""

import os
import pathlib

import pytest

from ganlib.grading import SUBMISSION_ENV, load_exercises

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points this graded test is worth")


def lesson_of(test_path):
    """`test_01_cgan.py` -> "01_cgan"."""
    stem = pathlib.Path(test_path).stem
    return stem[len("test_"):] if stem.startswith("test_") else stem


def exercises_path(test_path):
    """The exercises file the tests in `test_path` grade."""
    submission = os.environ.get(SUBMISSION_ENV)
    if submission:
        return pathlib.Path(submission).resolve()
    return REPO_ROOT / "solutions" / lesson_of(test_path) / "exercises.py"


@pytest.fixture(scope="module")
def exercises(request):
    """The exercises module under test, imported once per test file.

    An import error (syntax error, failing import) fails every test of the file
    with the error's type and message.
    """
    lesson = lesson_of(request.path)
    label = ("submission_" if os.environ.get(SUBMISSION_ENV) else "solution_") + lesson
    return load_exercises(exercises_path(request.path), label=label)
