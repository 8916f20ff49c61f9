"""DVC stage `tune@NAME`: tune one schedule with Optuna, retrain the best params on the paired seeds.

    python stages/tune.py --schedule cosine --n-trials 50              # resumes the same study
    python stages/tune.py --schedule cosine --workers 4                # 4 trials at a time (processes)
    python stages/tune.py --schedule cosine --storage postgresql://... --worker   # extra workers, any machine
"""

from pathlib import Path

import torch

from lrsched.cli import add_shortcuts, base_parser, load_args_config, make_tracker, run_main
from lrsched.io import atomic_path, write_json
from lrsched.results import mean_history, summarize
from lrsched.tuning import load_study, open_storage, run_worker, study_name, tune_schedule


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--schedule", required=True, help="a name under `tune.space:` in params.yaml")
    add_shortcuts(parser, "epochs", "n_trials", "storage", "workers")
    parser.add_argument("--worker", action="store_true",
                        help="only run trials (no retrain, no outputs): extra workers for a study run elsewhere")
    parser.add_argument("--out", default=".", help="folder for tuned/, metrics/tuned/, history/tuned/, "
                                                   "models/tuned/ and plots/tune/")
    args = parser.parse_args()
    cfg = load_args_config(args)
    name = args.schedule
    load_study(cfg, name, open_storage(cfg.tune.storage))  # fail fast: bad name, space or storage
    tracker = make_tracker(cfg, stage=f"tune@{name}", extra_tags={"lrsched.tune_study": study_name(cfg, name)})
    if args.worker:
        run_worker(cfg, name, tracker)
        return

    out = Path(args.out)
    tuned = tune_schedule(cfg, name, tracker, out / "plots" / "tune" / name)
    write_json(out / "tuned" / f"{name}.json", tuned.summary)
    write_json(out / "history" / "tuned" / f"{name}.json", mean_history(tuned.results))
    with atomic_path(out / "models" / "tuned" / f"{name}.pt") as tmp:
        torch.save({r.seed: r.state_dict for r in tuned.results}, tmp)
    write_json(out / "metrics" / "tuned" / f"{name}.json", {**summarize(tuned.results), "params": tuned.params})


if __name__ == "__main__":
    run_main(main)
