"""params.yaml: the default loads; every bad input is a one-line error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT, assert_config_error, default_raw

from lrsched.config import apply_overrides, load_config, parse_config
from lrsched.core.errors import ConfigError


def test_default_params_are_the_articles_six_plus_linear_and_the_new_ones() -> None:
    cfg = load_config(ROOT / "params.yaml")
    assert list(cfg.schedules) == ["constant", "square_root", "factor", "multi_factor", "cosine",
                                   "cosine_warmup", "linear", "wsd", "rex", "schedule_free"]
    assert (cfg.schedules["wsd"].type, cfg.schedules["rex"].type) == ("wsd", "rex")
    assert cfg.schedules["schedule_free"].optimizer == "schedule_free_sgd"
    assert {"wsd", "rex", "schedule_free"} <= set(cfg.tune.space)  # each has its own space
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.device) == (10, 256, "auto")
    assert len(cfg.train.seeds) >= 3 and cfg.train.threads == 1  # paired seeds; portable CPU numbers
    assert cfg.schedules["factor"].params == {"base_lr": 0.6, "factor": 0.8, "min_lr": 0.01}
    assert cfg.schedules["multi_factor"].params == {"base_lr": 0.5, "milestones": [3, 8], "gamma": 0.5}
    warm = cfg.schedules["cosine_warmup"]
    assert (warm.warmup, warm.interval) == (3.0, "step")  # step interval: epoch 0 is not wasted at lr 0


@pytest.mark.parametrize(("override", "message"), [
    ("train.epochs=0", "train.epochs: must be >= 1"),
    ("train.epochs=ten", "train.epochs: must be an integer"),
    ("train.lr=0.1", "train.lr: unknown key"),
    ("train.seeds=[0, 0]", "train.seeds: contains duplicates"),
    ("schedules.cosine.momentum=1.0", "schedules.cosine.momentum: must be < 1"),
    ("schedules.cosine.weight_decay=-1", "schedules.cosine.weight_decay: must be >= 0"),
    ("train.workers=-1", "train.workers"),
    ("train.device=tpu", "train.device: must be auto"),
    ("schedules.cosine.base_lr=-1", "schedules.cosine.base_lr: learning rate must be > 0"),
    ("schedules.cosine.type=cosine_annealing", "schedules.cosine.type: unknown schedule type"),
    ("schedules.cosine.warmup=12", "schedules.cosine.warmup: must be smaller than T"),
    ("schedules.multi_factor.milestones=[8, 3]", "schedules.multi_factor.milestones: must be positive and strictly"),
    ("schedules.linear.slope=2", "schedules.linear.slope: unknown key"),
    ("lr_find.start_lr=20", "lr_find: need 0 < start_lr < end_lr"),
    ("lr_find.max_epochs=3", "lr_find.max_epochs: must be in"),
    ("lr_find.diverge_factor=1", "lr_find.diverge_factor: must be > 1"),
    ("tune.space.rex.weight_decay={type: int, low: 0, high: lr_find}", "'lr_find' is a float bound"),
    ("tune.space.rex.momentum={type: float, low: 0.5, high: 0.99}", "tune.space.rex.momentum: also in tune.fixed"),
    ("tune.space={constant: {lr: {type: float, low: 0.01, high: 1.0}}}", r"tune.space.square_root: missing \(every schedule is tuned\); add e.g. `square_root: \{lr: \{type: float, low: 0.005, high: 0.5, log: true\}, weight_decay: \{type: float, low: 0.0, high: 0.002\}\}`"),
    ("compare.max_seeds=2", "compare.max_seeds: must be >= compare.first_seeds"),
    ("tune.trial_seed=4", "tune.trial_seed: 4 is an evaluation seed"),
    ("failure.by_epoch=0", "failure.by_epoch: must be >= 1, got 0"),
    ("failure.chance_below=0.05", r"failure.chance_below: must be in \(0.1, 1\)"),
    ("tracking.uri=x", "tracking.uri: unknown key"),
    ("extra.x=1", "extra: unknown section"),
    ("tune.pruner=random", "tune.pruner: must be one of"),
])
def test_bad_values_name_the_key(override: str, message: str) -> None:
    assert_config_error(override, message)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  epochs: [10\nschedules: {}\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_config(bad)


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_parse_yaml_values() -> None:
    raw = apply_overrides(default_raw(), ["schedules.cosine.base_lr=0.3", "train.seeds=[1, 2]"])
    cfg = parse_config(raw)
    assert cfg.schedules["cosine"].params["base_lr"] == 0.3 and cfg.train.seeds == (1, 2)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(raw, ["schedules.cosine.base_lr"])


def test_combined_dvc_plot_lists_every_default_schedule() -> None:
    """DVC cannot loop a top-level plot over `foreach`: the list in dvc.yaml must follow params.yaml."""
    import yaml

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    lines = next(p["test_acc_by_schedule"] for p in plots if "test_acc_by_schedule" in p)["y"]
    assert lines == {f"history/{name}.json": "test_acc" for name in load_config(ROOT / "params.yaml").schedules}
