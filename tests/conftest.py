"""Shared fixtures: small generated FashionMNIST-shaped IDX files, never the network."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[1]
NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX format: 0x00 0x00 <dtype=0x08 ubyte> <ndim>, big-endian dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_fashion_like(n_train: int, n_test: int, seed: int = 0) -> dict[str, bytes]:
    """Learnable toy data: each class is a bright 7x7 block at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            r, c = 2 + 8 * (label // 3), 2 + 8 * (label % 3)
            images[i, r:r + 7, c:c + 7] = 255
        out[NAMES[(split, "images")]] = idx_bytes(images)
        out[NAMES[(split, "labels")]] = idx_bytes(labels)
    return out


def write_source(folder: Path, files: dict[str, bytes], gz: bool = True) -> dict[str, str]:
    """Write ``files`` (gzipped like the Debian package) and return their decompressed md5s."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.fixture(scope="session")
def toy_files() -> dict[str, bytes]:
    return make_fashion_like(n_train=600, n_test=200)


@pytest.fixture()
def toy_source(tmp_path: Path, toy_files: dict[str, bytes]) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "source"
    return folder, write_source(folder, toy_files)


@pytest.fixture()
def toy_root(tmp_path: Path, toy_files: dict[str, bytes]) -> Path:
    """A data root with the toy files already in torchvision's layout."""
    root = tmp_path / "data"
    write_source(root / "FashionMNIST" / "raw", toy_files, gz=False)
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end (``slow``) tests first. With ``-n auto --maxschedchunk 1`` xdist hands each
    worker its next test as it frees up, so the long ones start at once and the many short
    ones fill in around them, rather than one long test running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order within
