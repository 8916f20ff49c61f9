"""The benchmark scripts import lrsched's internals: a refactor must not leave them broken."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import ROOT
from helpers import env, run


def test_kernels_times_each_steps_own_kernels_and_compares_the_whole_steps(tmp_path: Path, toy_root: Path) -> None:
    proc = run([sys.executable, "benchmarks/kernels.py", "--repeats", "2", "--data-root", str(toy_root)],
               ROOT, env(tmp_path), timeout=300)
    baseline, ours = proc.stdout.split("lrsched step:")
    # each table holds its own model's conv1: the article's 6 filters, today's padded to 8 (docs/performance.md)
    assert "`convolution` [256,1,28,28] [6,1,5,5]" in baseline and "[8,1,5,5]" not in baseline
    assert "`convolution` [256,1,28,28] [8,1,5,5]" in ours and "[6,1,5,5]" not in ours
    assert "pinned: True" in proc.stdout
    last = re.search(r"baseline ([\d.]+) ms, lrsched ([\d.]+) ms: x([\d.]+); 1\.5x the baseline needs ([\d.]+) ms",
                     proc.stdout.splitlines()[-1])
    assert last, proc.stdout[-500:]
    base_ms, ours_ms, ratio, target = map(float, last.groups())
    assert abs(ratio - base_ms / ours_ms) < 0.01 and abs(target - base_ms / 1.5) < 0.01
