"""DVC stage `train@NAME`: train one schedule over the paired seeds; write metrics, history, weights."""

from lrsched.cli import (
    add_shortcuts,
    base_parser,
    load_args_config,
    log,
    make_tracker,
    output_path,
    run_main,
    system_metrics,
)
from lrsched.training.results import write_results
from lrsched.training.runs import train_schedule
from lrsched.training.setup import check_inputs, get_schedule_spec


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--schedule", required=True, help="a name under `schedules:` in params.yaml")
    add_shortcuts(parser, "epochs", "seed", "workers")
    # dvc.yaml passes every output path; the defaults (under --out) serve a stage run by hand
    parser.add_argument("--metrics", help="summary over the seeds (default: metrics/NAME.json)")
    parser.add_argument("--history", help="per-epoch mean curves (default: history/NAME.json)")
    parser.add_argument("--model", help="one state dict per seed (default: models/NAME.pt)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args()
    cfg = load_args_config(args)
    name = args.schedule
    get_schedule_spec(cfg, name)
    check_inputs(cfg)  # device, data files: one line in a second, before the tracker or any worker
    tracker = make_tracker(cfg, stage=f"train@{name}")  # fails fast on a bad tracking URI
    with system_metrics(cfg, tracker, f"train@{name}"):
        results = train_schedule(cfg, name, tracker, {}, progress=not args.no_progress)

    stage = f"train-{name}"
    summary = write_results(results, metrics=output_path(args, stage, args.metrics, f"metrics/{name}.json"),
                            history=output_path(args, stage, args.history, f"history/{name}.json"),
                            model=output_path(args, stage, args.model, f"models/{name}.pt"))
    if "test_acc" in summary:
        acc = summary["test_acc"]
        log.info("%s: test_acc %.4f ± %.4f (95%% CI half-width, n=%d)", name, acc["mean"],
                 (acc["ci95_high"] - acc["mean"]) if acc["ci95_high"] is not None else 0.0, acc["n"])


if __name__ == "__main__":
    run_main(main)
