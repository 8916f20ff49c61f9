"""DVC stage `tune@NAME`: tune one schedule with Optuna, retrain with the best params, report.

    python stages/tune.py --schedule cosine --n-trials 50              # resumes the same study
    python stages/tune.py --schedule cosine --workers 4                # 4 local processes, one study
    python stages/tune.py --schedule cosine --storage postgresql://... # same command on many machines
"""

import os
import subprocess
import sys
from pathlib import Path

from lrsched.cli import base_parser, log, make_tracker, run_main, whole_number
from lrsched.config import load_config
from lrsched.errors import LrschedError
from lrsched.io import write_json
from lrsched.study import load_datasets, train_schedule
from lrsched.trainer import summarize
from lrsched.tuning import (best_params, load_study, open_storage, plot_study, run_worker, study_name,
                            summarize_study, with_params)


def spawn_workers(n: int, argv: list[str], parent_run_id: str | None) -> None:
    env = dict(os.environ, LRSCHED_PARENT_RUN_ID=parent_run_id or "", MLFLOW_RUN_ID="")
    procs = [subprocess.Popen([sys.executable, __file__, *argv, "--worker"], env=env) for _ in range(n)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise LrschedError(f"tuning workers exited with {codes}; see their errors above")


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--schedule", required=True, help="a name under `tune.space:` in params.yaml")
    parser.add_argument("--n-trials", type=whole_number, help="total trials of the study (resumes up to this many)")
    parser.add_argument("--storage", help="Optuna storage: a SQLite file path or SQLAlchemy URL")
    parser.add_argument("--workers", type=whole_number, default=1, help="local worker processes sharing the study")
    parser.add_argument("--worker", action="store_true",
                        help="only run trials (no retrain, no outputs): extra workers for a study run elsewhere")
    parser.add_argument("--out", default=".", help="folder for tuned/, metrics/tuned/ and plots/tune/")
    args = parser.parse_args()
    overrides = list(args.overrides)
    if args.n_trials is not None:
        overrides.append(f"tune.n_trials={args.n_trials}")
    if args.storage:
        overrides.append(f"tune.storage={args.storage}")
    cfg = load_config(args.params, overrides)
    if args.workers < 1:
        raise LrschedError(f"--workers: must be >= 1, got {args.workers}")
    name = args.schedule
    tracker = make_tracker(cfg, stage=f"tune@{name}", extra_tags={"lrsched.tune_study": study_name(cfg, name)}
                           if name in cfg.tune.space else None)
    study = load_study(cfg, name, open_storage(cfg.tune.storage))  # fail fast: bad name, space or storage
    data = load_datasets(cfg)
    if args.worker:
        run_worker(cfg, name, data, tracker, nested=False)
        return

    out = Path(args.out)
    settings = {f"tune.{k}": v for k, v in vars(cfg.tune).items() if k != "space"}
    settings.update({f"space.{k}": v for k, v in cfg.tune.space[name].items()})
    with tracker.run(f"{name}-study", settings, {"lrsched.role": "study"}) as parent:
        log.info("tuning %s: study %s, %d trials, %d worker(s)", name, study.study_name, cfg.tune.n_trials,
                 args.workers)
        if args.workers > 1:
            argv = ["--schedule", name, "--params", args.params, *(f"--set={o}" for o in overrides)]
            spawn_workers(args.workers, argv, parent.run_id)
            study = load_study(cfg, name, open_storage(cfg.tune.storage))
        else:
            study = run_worker(cfg, name, data, tracker, nested=True)
        params = best_params(study)
        summary = summarize_study(study, cfg.tune.storage)
        log.info("%s: best val_acc %.4f with %s", name, summary["best_value"], params)
        folder = out / "plots" / "tune" / name
        plot_study(study, folder)
        parent.log_artifacts(folder)
        parent.log_metrics({"best_val_acc": summary["best_value"], "trials": summary["trials"],
                            "pruned": summary["pruned"], "failed": summary["failed"]})

        # Retrain with the best params on the full training set; only now is the test set used.
        tuned_cfg = with_params(cfg, name, params)
        results = train_schedule(tuned_cfg, name, tracker, {"lrsched.tuned": "true"}, data,
                                 run_name=f"{name}-tuned", nested=True)
    write_json(out / "tuned" / f"{name}.json", summary)
    write_json(out / "metrics" / "tuned" / f"{name}.json", {**summarize(results), "params": params})


if __name__ == "__main__":
    run_main(main)
