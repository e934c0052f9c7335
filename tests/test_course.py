"""Notebook helpers of `ganlib.course`: the fast-mode step count CI scales, the cell timings it prints."""

import nbformat
import pytest

from ganlib.course import fast_steps
from ganlib.course.notebooks import slowest_cells

pytestmark = pytest.mark.backend_neutral


def test_fast_steps_are_the_lessons_own_without_a_scale(monkeypatch):
    monkeypatch.delenv("GANLIB_FAST_SCALE", raising=False)
    assert [fast_steps(500, 50), fast_steps(120), fast_steps(30)] == [500, 120, 30]


def test_fast_steps_scale_and_round_to_whole_epochs(monkeypatch):
    monkeypatch.setenv("GANLIB_FAST_SCALE", "0.25")
    # 500 * 0.25 = 125 -> 2.5 epochs of 50 -> rounds to 2 epochs; never below one epoch
    assert [fast_steps(500, 50), fast_steps(300, 50), fast_steps(100, 50), fast_steps(120), fast_steps(30)] == \
        [100, 100, 50, 30, 8]


@pytest.mark.parametrize("value", ["0", "2", "fast", "-0.5"])
def test_fast_steps_name_the_variable_on_a_bad_scale(monkeypatch, value):
    monkeypatch.setenv("GANLIB_FAST_SCALE", value)
    with pytest.raises(ValueError, match="GANLIB_FAST_SCALE must be a number in \\(0, 1\\]"):
        fast_steps(100)


def test_slowest_cells_read_the_execution_timestamps():
    cells = [nbformat.v4.new_code_cell("train()\nmore()"), nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell("never_ran()")]
    cells[0].metadata["execution"] = {"iopub.execute_input": "2026-12-02T13:00:00.000Z",
                                      "shell.execute_reply": "2026-12-02T13:01:30.500Z"}
    cells[1].metadata["execution"] = {"iopub.execute_input": "2026-12-02T13:01:31.000Z",
                                      "shell.execute_reply": "2026-12-02T13:01:31.250Z"}
    notebook = nbformat.v4.new_notebook(cells=cells)
    assert slowest_cells(notebook, n=2) == [(90.5, "train()"), (0.25, "x = 1")]
