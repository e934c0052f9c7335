"""Course tooling: the sandboxed grader's parts, the student release, notebook helpers.

    sandbox.py   the child process that runs a submission and returns values only
    child.py     the script that child runs (standard library + numpy)
    static.py    reading a submission for free answers (references, solutions)
    release.py   `ganlib release` and `ganlib autograder`

`load_exercises` is what the lesson notebooks call; importing this package is cheap.
"""

import pathlib
import sys
import types

__all__ = ["load_exercises"]


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
