"""FashionMNIST: fetch from the first working source, verify, load as device tensors.

Files are verified after decompression because mirrors gzip differently (the
Debian package's ``.gz`` files are not byte-identical to the official ones).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from lrsched.core.errors import DataError

log = logging.getLogger(__name__)

# md5 of the decompressed IDX files (SPEC §2).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
FIX_HINT = ("fix: `sudo apt-get install dataset-fashion-mnist` (installs the files in /usr/share/datasets/fashion-mnist), "
            "or put the four FashionMNIST .gz (or raw IDX) files in a folder and list it first in params.yaml data.sources")


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Batches in one epoch: the last one may be smaller."""
    return math.ceil(n_images / batch_size)


def raw_dir(root: str | Path) -> Path:
    """Where torchvision's FashionMNIST looks for the IDX files."""
    return Path(root) / "FashionMNIST" / "raw"


def require_raw(root: str | Path) -> Path:
    """The raw folder, or an error saying which stage makes it."""
    target = raw_dir(root)
    if not target.is_dir():
        raise DataError(f"{target}: missing; run `dvc repro download` (or stages/download.py) first")
    return target


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_source(source: str, name: str, dest: Path) -> None:
    """Copy ``name`` (raw or .gz) from a directory or URL to ``dest``, decompressed."""
    if "://" in source:
        url = source.rstrip("/") + f"/{name}.gz"
        with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
            out.write(gzip.decompress(resp.read()))
        return
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such directory {folder}")
    if (folder / name).is_file():
        shutil.copyfile(folder / name, dest)
    elif (folder / f"{name}.gz").is_file():
        with gzip.open(folder / f"{name}.gz", "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        raise FileNotFoundError(f"{name}(.gz) not in {folder}")


def _fetch_all(source: str, checksums: Mapping[str, str], staging: Path) -> None:
    for name, expected in checksums.items():
        dest = staging / name
        try:
            _read_source(source, name, dest)
        except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(f"{name}: {type(exc).__name__}: {exc}") from None
        got = md5_of(dest)
        if got != expected:
            raise DataError(f"{name}: md5 {got} != expected {expected} (wrong or truncated file)")


def download(root: str | Path, sources: Sequence[str], checksums: Mapping[str, str] | None = None) -> str:
    """Put verified IDX files in ``raw_dir(root)``; returns the source that worked.

    Each source is fetched whole into a staging folder next to the target and
    verified; only then are the files moved in, so a bad source never leaves
    a wrong or partial file in place.
    """
    checksums = dict(checksums or FASHION_MNIST_MD5)
    target = raw_dir(root)
    if target.is_dir() and all((target / n).is_file() and md5_of(target / n) == m for n, m in checksums.items()):
        log.info("data already present and verified in %s", target)
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in sources:
        log.info("trying %s", source)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".staging-") as tmp:
            staging = Path(tmp)
            try:
                _fetch_all(source, checksums, staging)
            except DataError as exc:
                failures.append(f"{source}: {exc}")
                log.warning("source failed: %s: %s", source, exc)
                continue
            target.mkdir(parents=True, exist_ok=True)
            for name in checksums:
                os.replace(staging / name, target / name)
        log.info("verified %d files from %s into %s", len(checksums), source, target)
        return source
    tried = "; ".join(failures) if failures else "no sources configured in data.sources"
    raise DataError(f"could not get FashionMNIST from any source ({tried}); {FIX_HINT}")


def data_checksum(root: str | Path) -> str:
    """One md5 over the four files' md5s: identifies the data in run tags."""
    target = require_raw(root)
    names = sorted(p.name for p in target.iterdir() if p.is_file() and not p.name.endswith(".gz"))
    return hashlib.md5("".join(md5_of(target / n) for n in names).encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    """Images as float32 in [0, 1], shape (N, 1, 28, 28), and int64 labels, on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index])


IDX_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _idx_shape(path: Path, ndim: int) -> tuple[int, ...]:
    """The shape an IDX file of unsigned bytes declares, checked against the file's size."""
    if not path.is_file():
        raise DataError(f"{path}: missing; rerun the download stage (`dvc repro download`)")
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim or header[:3] != b"\x00\x00\x08" or header[3] != ndim:
        raise DataError(f"{path}: not an IDX file of {ndim}-d bytes (bad header); rerun the download stage")
    shape = tuple(int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = len(header) + math.prod(shape)
    if path.stat().st_size != expected:
        raise DataError(f"{path}: {path.stat().st_size} bytes, its header declares {expected} "
                        "(truncated or corrupt); rerun the download stage")
    return shape


def check_split(root: str | Path, train: bool) -> int:
    """Cheap checks of one split's IDX files (no parsing of the pixels); returns its number of images."""
    raw = require_raw(root)
    images, labels = IDX_FILES[train]
    shape = _idx_shape(raw / images, 3)
    (count,) = _idx_shape(raw / labels, 1)
    if shape[1:] != (28, 28) or shape[0] != count:
        raise DataError(f"{raw}: {images} holds {shape}, {labels} {count} labels; expected N x 28 x 28 "
                        "images and N labels; rerun the download stage")
    return count


def load_split(root: str | Path, train: bool, limit: int = 0) -> Split:
    """Parse the IDX files with torchvision, once; scale to [0, 1] like ``ToTensor``."""
    from torchvision.datasets import FashionMNIST

    require_raw(root)
    try:
        ds = FashionMNIST(str(root), train=train, download=False)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DataError(f"{raw_dir(root)}: cannot parse FashionMNIST ({exc}); rerun the download stage") from None
    x, y = ds.data, ds.targets
    if limit:
        x, y = x[:limit], y[:limit]
    return Split(x.unsqueeze(1).float().div_(255.0), y.long())


def train_val_split(split: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """A fixed, seeded split of the training set: tuning never looks at the test set."""
    if not 0 < val_size < len(split):
        raise DataError(f"tune.val_size must be between 1 and {len(split) - 1}, got {val_size}")
    perm = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.subset(perm[val_size:]), split.subset(perm[:val_size])
