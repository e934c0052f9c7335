"""Make the student stubs `lessons/NN_topic/exercises.py` from the solutions.

`solutions/NN_topic/exercises.py` is the single source. Every block between a line
``# BEGIN SOLUTION`` and a line ``# END SOLUTION`` (any indentation) becomes one line

    raise NotImplementedError("Exercise: <enclosing function name>")

at the indentation of the BEGIN marker; everything else (docstrings, hints, imports)
is copied verbatim, under a one-line header saying where the file came from.

    python -m ganlib.course.stubs           # (re)write every lessons/*/exercises.py
    python -m ganlib.course.stubs --check   # exit 1 if a committed stub is out of sync (CI)
"""

import argparse
import pathlib
import re
import sys

HEADER = ("# Generated from solutions/{lesson}/exercises.py by `python -m ganlib.course.stubs`: "
          "edit the solution, not this file.\n")
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#[ \t]*BEGIN SOLUTION[ \t]*$")
_END = re.compile(r"^[ \t]*#[ \t]*END SOLUTION[ \t]*$")
_MARKER_TEXT = re.compile(r"(BEGIN|END)[ _]SOLUTION", re.IGNORECASE)
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+(?P<name>\w+)")


def _enclosing_function(lines, index, indent):
    """Name of the innermost `def` above `lines[index]` that is less indented."""
    for line in reversed(lines[:index]):
        match = _DEF.match(line)
        if match and len(match["indent"]) < len(indent):
            return match["name"]
    return "this exercise"


def make_stub(source_text, filename="<solution>", lesson=None):
    """Return the student stub for a solution file's text.

    `filename` only names the file in error messages; `lesson` (e.g. "01_cgan")
    fills in the header line (no header when None). Raises ValueError naming the
    file and line for a BEGIN without END, a nested BEGIN, an END without BEGIN,
    a comment that looks like a marker but is not one, or a stub that is not
    valid Python.
    """
    lines = source_text.splitlines(keepends=True)
    out = []
    begin = None  # (line number, indent) of the open BEGIN marker
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        begin_match, end_match = _BEGIN.match(text), _END.match(text)
        if begin_match:
            if begin is not None:
                raise ValueError(f"{filename}, line {number}: nested '# BEGIN SOLUTION' "
                                 f"(the block opened on line {begin[0]} is not closed)")
            indent = begin_match["indent"]
            begin = (number, indent)
            name = _enclosing_function(lines, number - 1, indent)
            out.append(f'{indent}raise NotImplementedError("Exercise: {name}")\n')
        elif end_match:
            if begin is None:
                raise ValueError(f"{filename}, line {number}: '# END SOLUTION' without "
                                 "a matching '# BEGIN SOLUTION'")
            begin = None
        elif text.lstrip().startswith("#") and _MARKER_TEXT.search(text):
            raise ValueError(f"{filename}, line {number}: {text.strip()!r} looks like a "
                             "solution marker; write exactly '# BEGIN SOLUTION' or "
                             "'# END SOLUTION' on a line of its own")
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise ValueError(f"{filename}, line {begin[0]}: '# BEGIN SOLUTION' without a "
                         "matching '# END SOLUTION'")
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    if lesson is not None:
        position = 1 if out and out[0].startswith("#!") else 0
        out.insert(position, HEADER.format(lesson=lesson))
    stub = "".join(out)
    try:
        compile(stub, filename, "exec")
    except SyntaxError as error:
        raise ValueError(f"{filename}: the generated stub is not valid Python "
                         f"(line {error.lineno} of the stub: {error.msg}); is a "
                         "solution block cut in the middle of a statement?") from None
    return stub


def find_repo_root(start=None):
    """The nearest folder at or above `start` (default: cwd) holding `solutions/`
    and `lessons/`; else the folder above the ganlib package."""
    start = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "solutions").is_dir() and (folder / "lessons").is_dir():
            return folder
    fallback = pathlib.Path(__file__).resolve().parents[2]
    if (fallback / "solutions").is_dir():
        return fallback
    raise FileNotFoundError(f"no folder with solutions/ and lessons/ at or above {start}")


def _pairs(repo_root):
    """(lesson name, solution path, stub path) for every solutions/*/exercises.py."""
    root = pathlib.Path(repo_root) if repo_root is not None else find_repo_root()
    for solution in sorted(root.glob("solutions/*/exercises.py")):
        lesson = solution.parent.name
        yield lesson, solution, root / "lessons" / lesson / "exercises.py"


def _stub_for(lesson, solution):
    return make_stub(solution.read_text(encoding="utf-8"), filename=str(solution),
                     lesson=lesson)


def generate(repo_root=None):
    """Write `lessons/<lesson>/exercises.py` for every solution; return the stub paths.

    Files whose content is already right are left untouched.
    """
    written = []
    for lesson, solution, stub_path in _pairs(repo_root):
        stub = _stub_for(lesson, solution)
        if not stub_path.exists() or stub_path.read_text(encoding="utf-8") != stub:
            stub_path.parent.mkdir(parents=True, exist_ok=True)
            stub_path.write_text(stub, encoding="utf-8", newline="\n")
        written.append(stub_path)
    return written


def check(repo_root=None):
    """Names of the lessons whose stub is missing or differs from its solution's."""
    stale = []
    for lesson, solution, stub_path in _pairs(repo_root):
        if (not stub_path.exists()
                or stub_path.read_text(encoding="utf-8") != _stub_for(lesson, solution)):
            stale.append(lesson)
    return stale


def main(argv=None):
    """`python -m ganlib.course.stubs [--check] [--root DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m ganlib.course.stubs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a committed stub is out of sync")
    parser.add_argument("--root", default=None, help="repository root (default: search upward)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = check(args.root)
            for lesson in stale:
                print(f"out of sync: lessons/{lesson}/exercises.py "
                      "(run `python -m ganlib.course.stubs`)", file=sys.stderr)
            if not stale:
                print("all lesson stubs match their solutions")
            return 1 if stale else 0
        for path in generate(args.root):
            print(f"wrote {path}")
        return 0
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
