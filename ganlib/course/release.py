"""What an instructor hands out: the student tree and the Gradescope autograder.

    ganlib release 01 --out student/            # lessons/01_*, ganlib, visible tests
    ganlib autograder 01 --out autograder.zip   # Gradescope: hidden tests, offline grading

Neither contains `solutions/`. The student tree has the visible graded tests only;
the autograder has the visible and hidden ones, the ganlib source, and two scripts:
`setup.sh` (Gradescope runs it once when it builds the image: installs ganlib's
dependencies, from `wheels/` when the zip has that folder, so it needs no network,
else from PyPI) and `run_autograder` (grades /autograder/submission/exercises.py
into /autograder/results/results.json without network; the root folder is
`$GANLIB_AUTOGRADER_ROOT` when set, so a test can run it in a temporary folder).
"""

import pathlib
import shutil
import sys
import zipfile

import ganlib
from ganlib.course.grading import (DEFAULT_BUDGET, DEFAULT_TIMEOUT, GradingError, find_repo_root,
                            lesson_test_files)

PACKAGE = pathlib.Path(ganlib.__file__).resolve().parent
REQUIREMENTS = "keras>=3.15,<4\ntensorflow>=2.21,<2.22\nnumpy>=1.26\npytest>=8\n"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image build: install what grading needs (offline from wheels/ if present).
set -euo pipefail
cd "$(dirname "$0")"
if [ -d wheels ]; then
  pip3 install --no-index --find-links wheels -r requirements.txt
else
  pip3 install -r requirements.txt
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Grade /autograder/submission/exercises.py into /autograder/results/results.json.
set -u
ROOT="${{GANLIB_AUTOGRADER_ROOT:-/autograder}}"
SOURCE="${{GANLIB_AUTOGRADER_SOURCE:-$ROOT/source}}"
mkdir -p "$ROOT/results"
cd "$SOURCE"
export KERAS_BACKEND="${{KERAS_BACKEND:-tensorflow}}" TF_CPP_MIN_LOG_LEVEL=3
"${{GANLIB_PYTHON:-python3}}" -m ganlib.course.grading {lesson} --root "$SOURCE" \\
    --submission "$ROOT/submission/exercises.py" --results "$ROOT/results/results.json" \\
    --timeout "${{GANLIB_TIMEOUT:-{timeout:g}}}" --total-timeout "${{GANLIB_TOTAL_TIMEOUT:-{budget:g}}}"
"""

_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def _copy_package(target):
    shutil.copytree(PACKAGE, target / "ganlib", ignore=_SKIP)


def _lesson_folder(lesson, repo_root):
    visible = lesson_test_files(lesson, repo_root)[0][0]
    return visible.stem[len("test_"):]


def release(lesson, out, repo_root=None):
    """Write the student tree of `lesson` to `out` (which must not exist); return its path.

    Holds lessons/<lesson>/ (notebook, stub exercises.py), ganlib/, the visible
    graded tests with their conftest, README.md and pyproject.toml; never
    solutions/ or tests/grading/hidden/.
    """
    root = pathlib.Path(repo_root) if repo_root is not None else find_repo_root()
    name = _lesson_folder(lesson, root)
    out = pathlib.Path(out)
    if out.exists():
        raise ValueError(f"--out {out} already exists; give a new folder")
    shutil.copytree(root / "lessons" / name, out / "lessons" / name, ignore=_SKIP)
    _copy_package(out)
    tests = out / "tests" / "grading"
    tests.mkdir(parents=True)
    shutil.copy(root / "tests" / "grading" / "conftest.py", tests / "conftest.py")
    shutil.copy(root / "tests" / "grading" / f"test_{name}.py", tests / f"test_{name}.py")
    for extra in ("README.md", "pyproject.toml", "environment.yml"):
        if (root / extra).is_file():
            shutil.copy(root / extra, out / extra)
    return out


def autograder(lesson, out, repo_root=None, wheels=None, timeout=DEFAULT_TIMEOUT,
               total_timeout=DEFAULT_BUDGET):
    """Write the Gradescope autograder zip of `lesson` to `out`; return its path.

    wheels: a folder of wheels to ship for an offline `setup.sh` (optional).
    """
    root = pathlib.Path(repo_root) if repo_root is not None else find_repo_root()
    name = _lesson_folder(lesson, root)
    files = {"setup.sh": SETUP_SH, "requirements.txt": REQUIREMENTS,
             "run_autograder": RUN_AUTOGRADER.format(lesson=name, timeout=timeout,
                                                     budget=total_timeout)}
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, text in files.items():
            info = zipfile.ZipInfo(arcname)
            info.external_attr = 0o755 << 16
            archive.writestr(info, text)
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, "ganlib/" + path.relative_to(PACKAGE).as_posix())
        grading = root / "tests" / "grading"
        archive.write(grading / "conftest.py", "tests/grading/conftest.py")
        for test_file, _ in lesson_test_files(name, root):
            archive.write(test_file, test_file.relative_to(root).as_posix())
        hidden_init = grading / "hidden" / "__init__.py"
        if hidden_init.is_file():
            archive.write(hidden_init, "tests/grading/hidden/__init__.py")
        for wheel in sorted(pathlib.Path(wheels).glob("*.whl")) if wheels else []:
            archive.write(wheel, f"wheels/{wheel.name}")
    return out


# ---------------------------------------------------------------------------
# Command line: `ganlib release`, `ganlib autograder`
# ---------------------------------------------------------------------------

def add_release_arguments(parser):
    parser.add_argument("lesson", help='lesson number or folder name, e.g. "01"')
    parser.add_argument("--out", required=True, metavar="DIR", help="new folder for the student tree")
    parser.add_argument("--root", default=None, metavar="DIR", help="course repository root")
    parser.set_defaults(run=run_release)
    return parser


def add_autograder_arguments(parser):
    parser.add_argument("lesson", help='lesson number or folder name, e.g. "01"')
    parser.add_argument("--out", required=True, metavar="ZIP", help="autograder zip to write")
    parser.add_argument("--root", default=None, metavar="DIR", help="course repository root")
    parser.add_argument("--wheels", default=None, metavar="DIR",
                        help="wheels to ship, so that setup.sh installs offline")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per test (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--total-timeout", type=float, default=DEFAULT_BUDGET, metavar="S",
                        help=f"seconds per submission (default {DEFAULT_BUDGET:g})")
    parser.set_defaults(run=run_autograder)
    return parser


def run_release(args):
    try:
        path = release(args.lesson, args.out, args.root)
    except GradingError as error:
        print(f"ganlib release: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the student tree of lesson {args.lesson} to {path}")
    return 0


def run_autograder(args):
    try:
        path = autograder(args.lesson, args.out, args.root, args.wheels, args.timeout,
                          args.total_timeout)
    except GradingError as error:
        print(f"ganlib autograder: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the Gradescope autograder of lesson {args.lesson} to {path}")
    return 0
