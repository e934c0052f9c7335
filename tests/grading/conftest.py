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

from ganlib.course.grading import SUBMISSION_ENV, lesson_test_files, load_tests, open_submission

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


GRADING_DIR = pathlib.Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Put each lesson's visible and hidden graded tests next to each other (visible first,
    each file's tests in their order), where the graded tests were, so that one child process
    serves both files instead of one starting per file."""
    places = [i for i, item in enumerate(items)
              if GRADING_DIR in pathlib.Path(item.path).resolve().parents]
    graded = sorted((items[i] for i in places),
                    key=lambda item: (lesson_of(item.path), "hidden" in pathlib.Path(item.path).parts))
    for i, item in zip(places, graded):
        items[i] = item


@pytest.fixture(scope="session")
def _open_submissions():
    """The one open submission (a child process), keyed by exercises file and lesson."""
    opened = {}
    yield opened
    for submission in opened.values():
        submission.close()


@pytest.fixture(scope="module")
def _submission(request, _open_submissions):
    key = (exercises_path(request.path), lesson_of(request.path))
    if key not in _open_submissions:
        for submission in _open_submissions.values():   # the previous lesson's is done
            submission.close()
        _open_submissions.clear()
        # the lesson's visible and hidden files, one child process for both as `ganlib grade` has
        modules = [load_tests(path) for path, _ in lesson_test_files(key[1], REPO_ROOT)]
        _open_submissions[key] = open_submission(key[0], modules, timeout=120.0, total_timeout=1800.0)
    return _open_submissions[key]


@pytest.fixture
def exercises(_submission):
    """The exercises under test, one child process per lesson (its visible and hidden files)."""
    _submission.begin_test()
    return _submission
