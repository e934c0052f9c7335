"""Fixtures for running the graded tests `tests/grading/[hidden/]test_NN_topic.py`
with pytest (`ganlib grade` runs the same test functions without pytest).

Each graded test takes the `exercises` object and carries its points with
`@pytest.mark.points(n)` (1 when absent):

    from ganlib.course.grading import check_close

    ALLOWED_GANLIB = {"ganlib.losses": ["bce"]}    # what the exercises may import

    @pytest.mark.exercise(2)
    @pytest.mark.points(2)
    def test_kl_divergence(exercises):
        check_close(exercises.kl_divergence(mu, logvar), expected, "kl_divergence")

`exercises.f(...)` runs the submission's `f` in a sandboxed child process and
returns its value as numpy (see `ganlib.course.grading`). The file graded is the one named
by the environment variable GANLIB_SUBMISSION when it is set, else
`solutions/<NN_topic>/exercises.py`, so `pytest tests/` checks the solutions.
"""

import os
import pathlib

import pytest

from ganlib.course.grading import SUBMISSION_ENV, open_submission

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points this graded test is worth")
    config.addinivalue_line("markers", "exercise(n): the exercise a graded test checks (its number in "
                            "the notebook and the stub)")
    config.addinivalue_line("markers", "time_factor(k): the test may take k times the per-test time "
                            "(it builds a Keras block: the backend's first layers compile)")


def lesson_of(test_path):
    """`test_01_cgan.py` -> "01_cgan"."""
    stem = pathlib.Path(test_path).stem
    return stem[len("test_"):] if stem.startswith("test_") else stem


def exercises_path(test_path):
    """The exercises file the tests in `test_path` grade."""
    submission = os.environ.get(SUBMISSION_ENV)
    if submission:
        return pathlib.Path(submission).resolve()
    root = pathlib.Path(test_path).resolve().parent
    while not (root / "solutions").is_dir() and root != root.parent:
        root = root.parent
    return root / "solutions" / lesson_of(test_path) / "exercises.py"


@pytest.fixture(scope="module")
def _submission(request):
    with open_submission(exercises_path(request.path), [request.module],
                         timeout=120.0, total_timeout=1800.0) as submission:
        yield submission


@pytest.fixture
def exercises(_submission):
    """The exercises under test, one child process per test file."""
    _submission.begin_test()
    return _submission
