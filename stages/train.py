"""DVC stage `train@NAME`: train one schedule (once per seed), write metrics, history and weights."""

from pathlib import Path

import torch

from lrsched.cli import base_parser, log, make_tracker, run_main, whole_number
from lrsched.config import load_config
from lrsched.data import data_checksum
from lrsched.io import atomic_path, write_json
from lrsched.study import get_schedule_spec, load_datasets, train_schedule
from lrsched.trainer import mean_history, summarize


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--schedule", required=True, help="a name under `schedules:` in params.yaml")
    parser.add_argument("--epochs", type=whole_number, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seed", type=whole_number, help="shortcut for --set train.seeds=[N]")
    parser.add_argument("--out", default=".", help="folder for metrics/, history/ and models/ (default: .)")
    parser.add_argument("--no-progress", action="store_true", help="hide the per-epoch progress bars")
    args = parser.parse_args()
    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"train.seeds=[{args.seed}]")
    cfg = load_config(args.params, overrides)
    get_schedule_spec(cfg, args.schedule)
    tracker = make_tracker(cfg, stage=f"train@{args.schedule}")  # fails fast on a bad tracking URI
    data = load_datasets(cfg)
    tags = {"lrsched.data_md5": data_checksum(cfg.data.root)}
    results = train_schedule(cfg, args.schedule, tracker, tags, data, progress=not args.no_progress)

    out = Path(args.out)
    summary = summarize(results)
    write_json(out / "history" / f"{args.schedule}.json", mean_history(results))
    with atomic_path(out / "models" / f"{args.schedule}.pt") as tmp:
        torch.save({seed: r.model.state_dict() for seed, r in zip(cfg.train.seeds, results)}, tmp)
    write_json(out / "metrics" / f"{args.schedule}.json", summary)  # last: DVC reads it as the result
    log.info("%s: %s", args.schedule, {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()})


if __name__ == "__main__":
    run_main(main)
