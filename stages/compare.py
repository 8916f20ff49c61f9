"""DVC stage `compare`: the tuned schedules on paired evaluation seeds, extra seeds where undecided.

Runs after every tune@ stage; writes the per-seed results and reports/decisions.json.
"""

from pathlib import Path

from lrsched.analysis.decisions import decisions_document
from lrsched.cli import (
    base_parser,
    load_args_config,
    log,
    make_tracker,
    output_path,
    run_main,
    system_metrics,
)
from lrsched.comparison import run_comparison
from lrsched.core.io import read_json, write_json
from lrsched.training.setup import check_inputs

# schedule-free SGD is judged against the "no schedule" baseline: tuned constant-LR SGD, same momentum
BASELINE_PAIR = ("schedule_free", "constant")


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--tuned", default="tuned", help="folder of the tune stages' NAME.json (best params)")
    # dvc.yaml passes every output path; the defaults (under --out) serve a stage run by hand
    parser.add_argument("--results", help="per-seed results of every look (default: metrics/compare.json)")
    parser.add_argument("--decisions", help="one record per compared pair (default: reports/decisions.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args()
    cfg = load_args_config(args)
    check_inputs(cfg)  # device, data files: one line in a second, before the tracker or any worker
    params = {}
    for name in cfg.tune.space:
        summary = read_json(Path(args.tuned) / f"{name}.json",
                            fix=f"run its tuning first: dvc repro tune@{name}")
        params[name] = summary["params"]
    tracker = make_tracker(cfg, stage="compare")
    with system_metrics(cfg, tracker, "compare"):
        comparison = run_comparison(cfg, params, tracker, progress=not args.no_progress)
    results = {name: {"params": params[name], "seeds": sorted(runs),
                      "per_seed": {str(s): r for s, r in sorted(runs.items())}}
               for name, runs in comparison.table.items()}
    write_json(output_path(args, "compare", args.results, "metrics/compare.json"),
               {"schedules": results, "looks": comparison.looks})
    doc = decisions_document(comparison.table, cfg.failure, cfg.compare, comparison.configs, BASELINE_PAIR)
    write_json(output_path(args, "compare", args.decisions, "reports/decisions.json"), doc)
    log.info("leader %s: %d of %d comparisons decided (%d with the first %d seeds alone)", doc["leader"],
             doc["decided"], doc["compared"], doc["decided_first_seeds_only"], cfg.compare.first_seeds)


if __name__ == "__main__":
    run_main(main)
