"""DVC stage `tune@NAME`: tune one schedule with Optuna; the compare stage evaluates the best params.

    python stages/tune.py --schedule cosine --n-trials 50              # resumes the same study
    python stages/tune.py --schedule cosine --workers 4                # 4 trials at a time (processes)
    python stages/tune.py --schedule cosine --storage postgresql://... --worker   # extra workers, any machine
"""

from dataclasses import replace
from pathlib import Path

from lrsched.cli import (
    add_shortcuts,
    base_parser,
    load_args_config,
    make_tracker,
    output_path,
    run_main,
    system_metrics,
)
from lrsched.config import Config
from lrsched.core.errors import DataError
from lrsched.core.io import read_json, write_json
from lrsched.schedules.search_space import resolve_lr_find, uses_lr_find
from lrsched.training.setup import check_inputs
from lrsched.tuning.driver import run_worker
from lrsched.tuning.study import open_study, study_name
from lrsched.tuning.tune import tune_schedule


def with_lr_find_bounds(cfg: Config, path: Path) -> Config:
    """Fill in `high: lr_find` from the range test's divergence LR (the last LR tried if none)."""
    if not uses_lr_find(cfg.tune.space):
        return cfg
    fix = "regenerate it with `dvc repro lr_find` (or `python stages/lr_find.py`)"
    found = read_json(path, fix)
    bound = found.get("upper_bound_lr") if isinstance(found, dict) else None
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
        raise DataError(f"{path}: no positive number upper_bound_lr (got {bound!r}); {fix}")
    return replace(cfg, tune=replace(cfg.tune, space=resolve_lr_find(cfg.tune.space, bound)))


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--schedule", required=True, help="a name under `tune.space:` in params.yaml")
    add_shortcuts(parser, "epochs", "n_trials", "storage", "workers")
    parser.add_argument("--worker", action="store_true",
                        help="only run trials (no retrain, no outputs): extra workers for a study run elsewhere")
    parser.add_argument("--lr-find", default="metrics/lr_find.json",
                        help="the LR range test's result, for spaces with `high: lr_find`")
    # dvc.yaml passes every output path; the defaults serve a stage run by hand
    parser.add_argument("--summary", help="the study: best params and value, trial counts (default: tuned/NAME.json)")
    parser.add_argument("--plots", help="folder for Optuna's study plots (default: plots/tune/NAME)")
    args = parser.parse_args()
    cfg = with_lr_find_bounds(load_args_config(args), Path(args.lr_find))
    name = args.schedule
    check_inputs(cfg, val_size=True)  # device, data files, split size: before the study or any worker
    study = open_study(cfg, name)  # fail fast: bad name, space or storage
    tracker = make_tracker(cfg, stage=f"tune@{name}", extra_tags={"lrsched.tune_study": study_name(cfg, name)})
    if args.worker:
        with system_metrics(cfg, tracker, f"tune@{name}-worker"):
            run_worker(cfg, name, tracker, study=study)
        return

    stage = f"tune-{name}"
    with system_metrics(cfg, tracker, f"tune@{name}"):
        tuned = tune_schedule(cfg, name, tracker, output_path(args, stage, args.plots, f"plots/tune/{name}"),
                              study=study)
    write_json(output_path(args, stage, args.summary, f"tuned/{name}.json"), tuned.summary)


if __name__ == "__main__":
    run_main(main)
