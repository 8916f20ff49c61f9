"""The LR range test: it stops where the loss blows up and suggests an LR well below that."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import env, project_copy, stage, with_data

from lrsched.config import LrFindConfig
from lrsched.data import load_split
from lrsched.training.lr_find import range_test


def test_range_test_stops_at_divergence_and_suggests_below_it(toy_root: Path) -> None:
    train = load_split(toy_root, train=True)
    cfg = LrFindConfig(start_lr=1e-3, end_lr=1e4, smoothing=0.5)
    result = range_test(train, seed=0, batch_size=16, cfg=cfg, progress=False)
    assert result.divergence is not None and result.divergence == result.lrs[-1]
    assert result.lrs[-1] < cfg.end_lr  # it stopped early, at the blow-up
    assert result.suggestion < result.divergence
    # the LR grows geometrically from start_lr, one step per batch
    ratios = {round(b / a, 9) for a, b in zip(result.lrs, result.lrs[1:])}
    assert len(ratios) == 1 and result.lrs[0] == pytest.approx(1e-3)
    smoothed = [x if math.isfinite(x) else math.inf for x in result.smoothed]
    lowest = smoothed.index(min(smoothed))  # the smoothed loss's minimum
    assert 0 < lowest < len(result.lrs) - 1 and result.suggestion == result.lrs[lowest] / 10
    again = range_test(train, seed=0, batch_size=16, cfg=cfg, progress=False)
    assert again.losses == result.losses  # deterministic, like every run


def test_range_test_without_a_blow_up_says_so(toy_root: Path) -> None:
    train = load_split(toy_root, train=True)
    result = range_test(train, seed=0, batch_size=16, cfg=LrFindConfig(start_lr=1e-5, end_lr=1e-4),
                        progress=False)
    assert result.divergence is None and result.upper_bound() == result.lrs[-1]
    assert len(result.lrs) == -(-600 // 16)  # one epoch of batches (max_epochs: 1), the last one partial


def test_lr_find_stage_writes_its_metrics_and_plot(tmp_path: Path, toy_files) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False},
                        lr_find={"end_lr": 1e4, "smoothing": 0.5}, train={"batch_size": 16})
    e = env(tmp_path)
    with_data(proj)
    stage("lr_find", "--metrics", "out/lr.json", "--plot", "out/lr.png", "--curve", "out/curve.json", "--no-progress",
          cwd=proj, environ=e)
    found = json.loads((proj / "out" / "lr.json").read_text())
    assert found["suggested_lr"] < found["divergence_lr"] <= 1e4
    assert found["method"].startswith("min_loss/10") and found["seed"] == 0
    assert (proj / "out" / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = json.loads((proj / "out" / "curve.json").read_text())
    assert curve[-1]["lr"] == found["divergence_lr"] and len(curve) == found["steps"]
