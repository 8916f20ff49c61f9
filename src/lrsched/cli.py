"""What every stage script shares: logging, one-line errors, SIGTERM, the tracker."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Callable

from lrsched.config import Config, load_config
from lrsched.errors import LrschedError, Terminated

log = logging.getLogger("lrsched")


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set schedules.cosine.base_lr=0.3 (repeatable)")
    return parser


def whole_number(text: str) -> int:
    """An integer flag that also accepts MLflow's float rendering ("3.0")."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def config_from(args: argparse.Namespace) -> Config:
    return load_config(args.params, args.overrides)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def make_tracker(cfg: Config, stage: str, extra_tags: dict[str, str] | None = None):
    """MLflow when ``tracking.enabled``; otherwise a tracker that imports and contacts nothing."""
    if not cfg.tracking.enabled:
        from lrsched.study import NullTracker

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
    signal.signal(signal.SIGTERM, _on_sigterm)
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
