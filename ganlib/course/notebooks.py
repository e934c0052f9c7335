"""Execute lesson notebooks headlessly (what CI does): `python -m ganlib.course.notebooks PATH...`.

Each notebook runs in its own folder with `GANLIB_FAST=1` unless the caller set it;
a failing cell stops the run with the cell's error, and the exit status is 1.
Outputs are not written back (committed notebooks stay output-free); pass
`--output DIR` to keep executed copies.
"""

import argparse
import os
import pathlib
import sys
import time


def execute(path, timeout=900, output=None):
    import nbformat
    from nbclient import NotebookClient

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    os.environ.setdefault("GANLIB_FAST", "1")
    notebook = nbformat.read(path, as_version=4)
    start = time.time()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    seconds = time.time() - start
    for cell_seconds, first_line in slowest_cells(notebook):
        print(f"  {cell_seconds:6.1f} s  {first_line}")
    if output:
        out = pathlib.Path(output) / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out)
    return seconds


def slowest_cells(notebook, n=5):
    """The `n` slowest code cells of an executed notebook: (seconds, first line of the source)."""
    from datetime import datetime

    def seconds(cell):
        timing = cell.get("metadata", {}).get("execution", {})
        try:
            start, end = timing["iopub.execute_input"], timing["shell.execute_reply"]
        except KeyError:
            return 0.0
        parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (parse(end) - parse(start)).total_seconds()

    cells = [(seconds(c), c.source.strip().splitlines()[0][:80] if c.source.strip() else "")
             for c in notebook.cells if c.cell_type == "code"]
    return sorted(cells, reverse=True)[:n]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ganlib.course.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    parser.add_argument("--output", default=None, help="folder for executed copies")
    args = parser.parse_args(argv)
    for path in args.paths:
        try:
            seconds = execute(path, args.timeout, args.output)
        except Exception as error:  # nbclient raises CellExecutionError with the cell's traceback
            print(f"FAILED {path}:\n{error}", file=sys.stderr)
            return 1
        print(f"executed {path} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
