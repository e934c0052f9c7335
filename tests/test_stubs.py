"""Tests of ganlib.course.stubs: solution files -> student stubs."""

import textwrap

import pytest

from ganlib.course import stubs

# Backend-neutral (the stub generator: source text only): CI runs it once, on TensorFlow.
pytestmark = pytest.mark.backend_neutral

SOLUTION = textwrap.dedent('''\
    """Exercises for lesson 99."""
    import numpy as np


    def double(x):
        """Return 2 * x.

        Hint: numpy broadcasts.
        """
        # BEGIN SOLUTION
        y = 2 * x

        return y
        # END SOLUTION


    class Model:
        def loss(self, a):
            a = np.asarray(a)
            if a.ndim:
                # BEGIN SOLUTION
                return a.mean()
                # END SOLUTION
            return a


    SCALE = 3  # kept verbatim
    ''')

STUB = textwrap.dedent('''\
    """Exercises for lesson 99."""
    import numpy as np


    def double(x):
        """Return 2 * x.

        Hint: numpy broadcasts.
        """
        raise NotImplementedError("Exercise: double")


    class Model:
        def loss(self, a):
            a = np.asarray(a)
            if a.ndim:
                raise NotImplementedError("Exercise: loss")
            return a


    SCALE = 3  # kept verbatim
    ''')


def test_make_stub_exact_output():
    assert stubs.make_stub(SOLUTION) == STUB


def test_make_stub_header_names_the_lesson():
    stub = stubs.make_stub(SOLUTION, lesson="99_demo")
    first, rest = stub.split("\n", 1)
    assert first.startswith("# Generated from solutions/99_demo/exercises.py")
    assert "python -m ganlib.course.stubs" in first
    assert rest == STUB


def test_make_stub_keeps_tabs_and_files_without_markers():
    source = "def f():\n\t# BEGIN SOLUTION\n\treturn 1\n\t# END SOLUTION\n"
    assert stubs.make_stub(source) == 'def f():\n\traise NotImplementedError("Exercise: f")\n'
    assert stubs.make_stub("x = 1\n") == "x = 1\n"


@pytest.mark.parametrize("source, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "line 2: '# BEGIN SOLUTION' without"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION\n",
     "line 3: nested"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "line 3: '# END SOLUTION' without"),
    ("def f():\n    # begin solution here\n    return 1\n", "line 2: "),
    ("x = [\n# BEGIN SOLUTION\n1,\n# END SOLUTION\n]\n", "not valid Python"),
])
def test_make_stub_errors_name_file_and_line(source, message):
    with pytest.raises(ValueError, match="ex.py") as info:
        stubs.make_stub(source, filename="ex.py")
    assert message in str(info.value)


def _repo(tmp_path):
    (tmp_path / "solutions" / "99_demo").mkdir(parents=True)
    (tmp_path / "lessons").mkdir()
    (tmp_path / "solutions" / "99_demo" / "exercises.py").write_text(SOLUTION)
    return tmp_path


def test_generate_then_check(tmp_path):
    root = _repo(tmp_path)
    assert stubs.check(root) == ["99_demo"]          # missing stub
    paths = stubs.generate(root)
    stub_path = root / "lessons" / "99_demo" / "exercises.py"
    assert paths == [stub_path]
    assert stub_path.read_text() == stubs.make_stub(SOLUTION, lesson="99_demo")
    assert stubs.check(root) == []
    stub_path.write_text(stub_path.read_text() + "# edited by hand\n")
    assert stubs.check(root) == ["99_demo"]


def test_main_check_exit_codes(tmp_path, capsys):
    root = _repo(tmp_path)
    assert stubs.main(["--check", "--root", str(root)]) == 1
    assert "lessons/99_demo/exercises.py" in capsys.readouterr().err
    assert stubs.main(["--root", str(root)]) == 0
    assert stubs.main(["--check", "--root", str(root)]) == 0


def test_committed_stubs_match_solutions():
    """The repository's lessons/*/exercises.py are in sync with solutions/."""
    root = stubs.find_repo_root(__file__)
    assert stubs.check(root) == [], "run `python -m ganlib.course.stubs` to regenerate the stubs"
