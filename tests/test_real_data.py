"""Smoke test on the real FashionMNIST from the Debian package (skipped where it is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrsched.data import download, load_split
from lrsched.schedules import curves as S
from lrsched.training.trainer import FitOptions, fit

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
                       reason="apt-get install dataset-fashion-mnist for the real-data smoke test"),
]


def test_real_files_verify_and_one_short_epoch_learns(tmp_path: Path) -> None:
    assert download(tmp_path, [str(DEBIAN)]) == str(DEBIAN)  # the official md5s of the decompressed files
    train, test = load_split(tmp_path, train=True), load_split(tmp_path, train=False)
    assert (len(train), len(test)) == (60000, 10000)
    result = fit(S.Constant(0.3), train, {"test": test}, seed=0, opts=FitOptions(epochs=1, progress=False))
    assert 0.5 < result.final["test_acc"] < 0.95
