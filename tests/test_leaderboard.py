"""The leaderboard's scoring and table (`ganlib.leaderboard`); the training it drives is
`ganlib train`'s (tests/test_cli.py), the metrics it calls are tested on every backend in
tests/test_metrics.py, test_damsm_use.py and test_vs.py."""

import numpy as np
import pytest

from ganlib import evaluation, leaderboard, metrics
from ganlib.data import open_dataset


@pytest.fixture(scope="module")
def sample():
    return evaluation.real_sample(open_dataset("synthbirds", split="test"), 100, 64, seed=0)


@pytest.mark.backend_neutral   # glue around metrics that are tested on every backend (see the docstring)
def test_real_images_score_as_the_ceiling_and_shuffled_ones_lose_the_text_metrics(sample):
    real = sample["images"].astype("float32") / 127.5 - 1.0
    row = leaderboard.scores(real, sample)
    assert abs(row["fid"]) < 0.5                       # the real sample's own statistics
    assert (row["r_precision"], row["r_precision_std"]) == metrics.damsm_r_precision(real, sample["captions"])
    assert (row["vs_similarity"], row["vs_similarity_std"]) == metrics.vs_similarity(real, sample["captions"])
    shuffled = leaderboard.scores(real[np.random.default_rng(0).permutation(len(real))], sample)
    assert abs(shuffled["fid"]) < 0.5                  # the same images, so the same statistics
    assert shuffled["vs_similarity"] < row["vs_similarity"] - 0.2
    assert shuffled["r_precision"] < row["r_precision"]
    assert shuffled["caption_consistency"] < row["caption_consistency"]


def test_enlarge_keeps_constant_images_and_their_range():
    images = np.full((2, 32, 32, 3), 0.5, "float32")
    big = leaderboard.enlarge(images, 64)
    assert big.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(big, np.round(1.5 * 127.5) / 127.5 - 1.0, atol=1e-6)   # uint8 round trip
    assert leaderboard.enlarge(big, 64) is big


def test_rows_saved_before_a_metric_existed_print_a_dash():
    old = {"model": "cgan", "steps": 3600, "image_size": 32, "minutes": 33.9, "fid": 85.6,
           "inception_score": 11.68, "caption_consistency": 0.461, "chance_consistency": 0.142}
    new = {**old, "model": "hdgan", "r_precision": 0.066, "vs_similarity": 0.31}
    lines = leaderboard.table([old, new]).splitlines()
    assert len({line.count("|") for line in lines}) == 1                     # every row has every column
    assert lines[2] == "| cgan | 3600 | 32 | 33.9 | 85.6 | 11.68 | 0.461 (0.142) | 3.2x | - | - |"
    assert lines[3].endswith("| 3.2x | 0.066 | 0.310 |")
