"""What every stage script shares: logging, one-line errors, SIGTERM, the tracker."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from lrsched.config import Config, load_config
from lrsched.errors import LrschedError, Terminated
from lrsched.signals import install_signal_handlers

log = logging.getLogger("lrsched")


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set schedules.cosine.base_lr=0.3 (repeatable)")
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


def whole_number(text: str) -> int:
    """An integer flag that also accepts MLflow's float rendering ("3.0")."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def make_tracker(cfg: Config, stage: str, extra_tags: dict[str, str] | None = None):
    """MLflow when ``tracking.enabled``; otherwise a tracker that imports and contacts nothing."""
    if not cfg.tracking.enabled:
        from lrsched.callbacks import NullTracker

        return NullTracker()
    from lrsched import tracking

    tags = {"lrsched.stage": stage, "lrsched.study": tracking.study_id(), **(extra_tags or {})}
    commit = tracking.git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tracking.MlflowTracker(cfg.tracking.experiment, tags)


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
