"""Course tooling: the sandboxed grader's parts, the student release, notebook helpers.

    sandbox.py   the child process that runs a submission and returns values only
    child.py     the script that child runs (standard library + numpy)
    static.py    reading a submission for free answers (references, solutions)
    release.py   `ganlib release` and `ganlib autograder`

`load_exercises` and `fast_steps` are what the lesson notebooks call; importing this
package is cheap.
"""

import os
import pathlib
import sys
import types

__all__ = ["fast_steps", "load_exercises"]
SCALE_ENV = "GANLIB_FAST_SCALE"


def load_exercises(folder, name="exercises"):
    """Import `folder/<name>.py` afresh and return it as a module.

    Each call reads and runs the file again (no cached bytecode, no `import`
    cache), so re-running a notebook cell that calls it picks up the edits made
    to the file since, without restarting the kernel. The module is also put in
    `sys.modules[name]`.
    """
    path = pathlib.Path(folder) / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"load_exercises: no {name}.py in {folder}")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module


def fast_steps(n, multiple=1):
    """The step count `n` of a lesson's `GANLIB_FAST=1` run, scaled by `GANLIB_FAST_SCALE`.

    Unset (students, and the figures the lessons quote), the scale is 1 and `n` is returned.
    CI sets a smaller scale to keep its run of every notebook short; the result is rounded
    to a multiple of `multiple` (the notebook's steps per epoch), at least one multiple.
    """
    raw = os.environ.get(SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a number in (0, 1], got {raw!r}") from None
    if not 0 < scale <= 1:
        raise ValueError(f"{SCALE_ENV} must be a number in (0, 1], got {raw!r}")
    return max(multiple, round(n * scale / multiple) * multiple)
