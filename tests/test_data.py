"""Download stage: good files, wrong checksum, truncated file, no source; loading as tensors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from lrsched.core.errors import DataError
from lrsched.data import download, load_split, raw_dir, train_val_split


def test_good_files_are_verified_and_placed_for_torchvision(tmp_path: Path, toy_source, toy_files) -> None:
    folder, md5s = toy_source
    used = download(tmp_path / "data", [str(folder)], md5s)
    assert used == str(folder)
    assert sorted(p.name for p in raw_dir(tmp_path / "data").iterdir()) == sorted(md5s)
    train = load_split(tmp_path / "data", train=True)
    assert train.x.shape == (600, 1, 28, 28) and train.x.dtype == torch.float32
    pixels = torch.frombuffer(bytearray(toy_files["train-images-idx3-ubyte"][16:]), dtype=torch.uint8)
    assert torch.equal(train.x, pixels.reshape(600, 1, 28, 28).float() / 255)  # every pixel, in order, /255
    assert train.y.dtype == torch.int64 and len(load_split(tmp_path / "data", train=False)) == 200


def test_sources_are_tried_in_order_and_failures_skipped(tmp_path: Path, toy_source) -> None:
    folder, md5s = toy_source
    used = download(tmp_path / "data", [str(tmp_path / "missing"), str(folder)], md5s)
    assert used == str(folder)


def test_wrong_checksum_is_rejected_and_nothing_left(tmp_path: Path, toy_source) -> None:
    folder, md5s = toy_source
    bad = dict(md5s, **{"train-labels-idx1-ubyte": "0" * 32})
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: md5 \w+ != expected 0{32}"):
        download(tmp_path / "data", [str(folder)], bad)
    assert not raw_dir(tmp_path / "data").exists()
    assert not list((tmp_path / "data" / "FashionMNIST").glob(".staging-*"))


def test_truncated_file_is_rejected(tmp_path: Path, toy_source) -> None:
    folder, md5s = toy_source
    gz = folder / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: EOFError"):
        download(tmp_path / "data", [str(folder)], md5s)
    assert not raw_dir(tmp_path / "data").exists()


def test_bad_source_never_replaces_good_data(tmp_path: Path, toy_source) -> None:
    folder, md5s = toy_source
    download(tmp_path / "data", [str(folder)], md5s)
    before = {p.name: p.read_bytes() for p in raw_dir(tmp_path / "data").iterdir()}
    (raw_dir(tmp_path / "data") / "train-labels-idx1-ubyte").write_bytes(b"corrupted")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"junk"))
    with pytest.raises(DataError):
        download(tmp_path / "data", [str(broken)], md5s)
    # the good files are still there; the corrupted one was not replaced by junk either
    assert (raw_dir(tmp_path / "data") / "train-images-idx3-ubyte").read_bytes() == before["train-images-idx3-ubyte"]
    assert (raw_dir(tmp_path / "data") / "train-labels-idx1-ubyte").read_bytes() == b"corrupted"


def test_no_source_lists_every_attempt_and_the_fix(tmp_path: Path) -> None:
    sources = [str(tmp_path / "nowhere"), "http://127.0.0.1:9/fashion"]
    with pytest.raises(DataError) as info:
        download(tmp_path / "data", sources)
    message = str(info.value)
    assert all(s in message for s in sources)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "\n" not in message


def test_missing_data_says_run_the_download_stage(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run `dvc repro download`"):
        load_split(tmp_path / "empty", train=True)


def test_validation_split_is_seeded_and_disjoint(toy_root: Path) -> None:
    train = load_split(toy_root, train=True)
    a_train, a_val = train_val_split(train, 100, seed=3)
    b_train, b_val = train_val_split(train, 100, seed=3)
    assert len(a_train) == 500 and len(a_val) == 100
    assert torch.equal(a_val.x, b_val.x) and torch.equal(a_train.y, b_train.y)
    images = lambda split: {r.numpy().tobytes() for r in split.x}  # noqa: E731 - every toy image is unique
    assert len(images(train)) == 600
    assert not images(a_train) & images(a_val) and len(images(a_train) | images(a_val)) == 600
