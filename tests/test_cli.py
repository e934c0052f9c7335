"""The `ganlib` command line: data -> train -> resume -> evaluate -> sample, and its errors."""

import json
import subprocess
import sys

import numpy as np

import pytest
from PIL import Image

from ganlib import callbacks as cb
from ganlib.cli import main


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_birds")
    assert main(["data", "synthbirds", "--out", str(root), "--n", "400", "--size", "32", "--seed", "1"]) == 0
    return root


def test_data_command_writes_the_cub_layout(data_root):
    assert (data_root / "CUB_200_2011" / "images.txt").is_file()
    assert (data_root / "train" / "filenames.pickle").is_file()
    lines = (data_root / "CUB_200_2011" / "images.txt").read_text().splitlines()
    assert len(lines) == 400


@pytest.mark.end_to_end
def test_train_resume_evaluate_sample(data_root, tmp_path):
    run = tmp_path / "run"
    common = ["train", "cgan", "--preset", "fast", "--root", str(data_root), "--out", str(run)]
    assert main(common + ["--steps", "6"]) == 0
    records = json.loads((run / "metrics.json").read_text())
    assert [r["step"] for r in records] == [0, 6]
    for key in ("fid", "inception_score", "caption_consistency", "chance_consistency"):
        assert key in records[-1]
    assert cb.latest_checkpoint(run).name == "ckpt-0000006.keras"
    assert list((run / "samples").glob("*.png"))

    assert main(common + ["--steps", "10", "--resume"]) == 0
    assert cb.latest_checkpoint(run).name == "ckpt-0000010.keras"
    assert [r["step"] for r in json.loads((run / "metrics.json").read_text())] == [0, 6, 10]

    assert main(["evaluate", str(run)]) == 0
    out = tmp_path / "x.png"
    assert main(["sample", str(run), "--caption", "this bird has a red crown and blue wings",
                 "--caption", "a small yellow bird with black wings", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > Image.open(out).size[1]  # two samples side by side

    # a fresh process (nothing imported yet) loads the run's checkpoint too
    fresh = tmp_path / "fresh.png"
    done = subprocess.run([sys.executable, "-m", "ganlib", "sample", str(run), "--caption", "a red bird",
                           "--out", str(fresh)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(fresh).size[1] == Image.open(out).size[1] and Image.open(fresh).size[0] < Image.open(out).size[0]


def test_sample_sheets_are_readable_and_carry_their_captions():
    """Each image enlarged to >= 128 px with its caption written under it (dark pixels there);
    without labels the space under the images stays white."""
    from ganlib.callbacks import labelled_grid

    images = np.ones((3, 32, 32, 3), "float32")    # white birds: only the captions are dark
    sheet = np.asarray(labelled_grid(images, ["a red bird with blue wings"] * 3, columns=3))
    assert sheet.shape[1] == 3 * (128 + 4) + 4
    below = sheet[4 + 128 + 2: 4 + 128 + 20, 4:4 + 128]        # the first caption's first line
    assert (below < 128).any() and (below > 200).any()
    bare = np.asarray(labelled_grid(images, None, columns=3))
    assert bare.shape[0] == 128 + 8 and bare.min() == 255


def test_errors_name_what_is_wrong(tmp_path, capsys):
    assert main(["train", "cgan", "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "cgan", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert "missing" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "ganlib", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("data", "train", "evaluate", "sample", "grade"):
        assert command in out.stdout
