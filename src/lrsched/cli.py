"""What every stage script shares: logging, one-line errors, SIGTERM, the tracker."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from lrsched.config import Config, load_config
from lrsched.core.errors import LrschedError, Terminated
from lrsched.core.signals import install_signal_handlers
from lrsched.core.urls import mask_password

log = logging.getLogger("lrsched")


STUDY_PARAMS = "params.yaml"
SCRATCH = Path("runs")  # ad-hoc runs' outputs (git- and DVC-ignored)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default=STUDY_PARAMS, help="the params file (default: params.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set schedules.cosine.base_lr=0.3 (repeatable)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the outputs no flag names, in the study's layout (metrics/, history/, "
                             "...). Default: the study's own places with params.yaml as it is; with --set, "
                             "--params or a shortcut flag, runs/STAGE-TIME/, so an ad-hoc run never "
                             "overwrites the study")
    return parser


# Shortcut flags: `--epochs 3` is `--set train.epochs=3`. Declared once, here, for every stage.
SHORTCUTS = {
    "epochs": ("train.epochs={}", "shortcut for --set train.epochs=N"),
    "seed": ("train.seeds=[{}]", "shortcut for --set train.seeds=[N] (one seed)"),
    "workers": ("train.workers={}", "training processes at once; shortcut for --set train.workers=N"),
    "n_trials": ("tune.n_trials={}", "total trials of the study (resumes up to this many)"),
    "storage": ("tune.storage={}", "Optuna storage: a SQLite file path or SQLAlchemy URL"),
}


def add_shortcuts(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        _, help_text = SHORTCUTS[name]
        kind = str if name == "storage" else whole_number
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=help_text)


def load_args_config(args: argparse.Namespace) -> Config:
    """params.yaml with ``--set`` overrides, then the shortcut flags that were given."""
    overrides = list(args.overrides)
    for name, (template, _) in SHORTCUTS.items():
        value = getattr(args, name, None)
        if value is not None:
            overrides.append(template.format(value))
    return load_config(args.params, overrides)


def ad_hoc(args: argparse.Namespace) -> bool:
    """Params other than the study's: another params file, a ``--set`` override or a shortcut flag."""
    return (args.params != STUDY_PARAMS or any(part.strip() for item in args.overrides for part in item.split(";"))
            or any(getattr(args, name, None) is not None for name in SHORTCUTS))


def output_dir(args: argparse.Namespace, stage: str) -> Path:
    """Where a stage writes the outputs that no flag names; decided once per run.

    The study's DVC-tracked places (``.``) only for the study's own params: ``dvc.yaml``
    names every path, so ``dvc repro`` is not affected. An ad-hoc run gets a fresh scratch folder.
    """
    if args.out is None:
        if ad_hoc(args):
            args.out = str(SCRATCH / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
            log.info("params differ from %s: writing outputs under %s/ (--out DIR or the path flags choose)",
                     STUDY_PARAMS, args.out)
        else:
            args.out = "."
    return Path(args.out)


def output_path(args: argparse.Namespace, stage: str, named: str | None, default: str) -> Path:
    """``named`` when the caller gave that path; otherwise ``default`` (a study path) under ``output_dir``."""
    if named:
        return Path(named)
    return output_dir(args, stage) / default


def whole_number(text: str) -> int:
    """An integer flag that also accepts MLflow's float rendering ("3.0")."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def make_tracker(cfg: Config, stage: str, extra_tags: dict[str, str] | None = None):
    """MLflow when ``tracking.enabled``; otherwise a tracker that imports and contacts nothing."""
    if not cfg.tracking.enabled:
        from lrsched.core.callbacks import NullTracker

        return NullTracker()
    from lrsched.core.provenance import git_commit, study_id
    from lrsched.tracking.tracker import MlflowTracker

    tags = {"lrsched.stage": stage, "lrsched.study": study_id(), **(extra_tags or {})}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return MlflowTracker.open(cfg.tracking.experiment, tags)


@contextlib.contextmanager
def system_metrics(cfg: Config, tracker, stage: str) -> Iterator[None]:
    """CPU, memory and GPU use while the block runs, sampled by this (the stage's) process only and
    logged as one run ``<stage>-system``: once per stage, since each worker would report the whole machine."""
    if not cfg.tracking.enabled:
        yield
        return
    from lrsched.tracking.system_metrics import SystemSampler, log_system_metrics

    with SystemSampler() as sampler:
        yield
    try:  # best effort: the stage's results come first, and are written after this
        with tracker.run(f"{stage}-system", {}, {"lrsched.kind": "system"}, adopt=False,
                         start_time_ms=sampler.started_ms) as logger:  # its Duration: the stage's
            log_system_metrics(logger, sampler)
    except Exception as exc:
        log.warning("system metrics of %s not logged (%s: %s)", stage, type(exc).__name__,
                    mask_password(str(exc))[:200])


def run_main(main: Callable[[], None]) -> None:
    """Run a stage: one-line errors and exit 2 for user errors, 130 when interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    install_signal_handlers()  # Ctrl-C works even when started with SIGINT ignored (background, CI)
    try:
        main()
    except LrschedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: previous outputs left intact", file=sys.stderr)
        sys.exit(130)
    except Terminated:
        print("terminated: previous outputs left intact", file=sys.stderr)
        sys.exit(143)
