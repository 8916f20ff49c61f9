"""DVC stage `plot`: LR curves, training curves, test accuracy of all schedules, reports/summary.md."""

from pathlib import Path

from lrsched.cli import base_parser, load_args_config, log, make_tracker, run_main
from lrsched.data import load_split
from lrsched.errors import DataError
from lrsched.io import read_json, write_text
from lrsched.plots import plot_final_accuracy, plot_lr_curves, plot_metric_band, plot_training_curves
from lrsched.registry import build_plan
from lrsched.report import summary_markdown


def describe(spec) -> str:
    shown = {k: v for k, v in spec.as_dict().items() if k not in ("type", "interval", "optimizer")}
    body = ", ".join(f"{k}={v}" for k, v in shown.items())
    if spec.optimizer != "sgd":
        return f"{spec.optimizer}({body})"
    return f"{spec.type}({body}), per {spec.interval}"


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--results", default=".", help="folder holding metrics/, history/ (and their tuned/)")
    # dvc.yaml passes every output path; the defaults serve a stage run by hand
    parser.add_argument("--lr-curves", default="plots/lr_curves.png", help="every schedule's LR vs epoch")
    parser.add_argument("--test-acc", default="plots/test_acc.png", help="test accuracy vs epoch, all schedules")
    parser.add_argument("--final-acc", default="plots/final_acc.png", help="final test accuracy, default vs tuned")
    parser.add_argument("--curves", default="plots/curves", help="folder for one training-curves PNG per schedule")
    parser.add_argument("--report", default="reports/summary.md", help="the ranked summary (Markdown)")
    args = parser.parse_args()
    cfg = load_args_config(args)
    results = Path(args.results)
    n_train = len(load_split(cfg.data.root, train=True, limit=cfg.data.limit_train))  # per-step curves need it
    steps = -(-n_train // cfg.train.batch_size)
    plans = {n: build_plan(s, steps) for n, s in cfg.schedules.items()}
    plot_lr_curves(plans, cfg.train.epochs, args.lr_curves)

    histories, metrics, tuned = {}, {}, {}
    for name in cfg.schedules:
        fix = f"regenerate it with `dvc repro train@{name}`"
        try:
            histories[name] = read_json(results / "history" / f"{name}.json", fix)
            metrics[name] = read_json(results / "metrics" / f"{name}.json", fix)
        except FileNotFoundError as exc:
            raise DataError(f"{exc.filename}: missing; run the train stage for {name!r} first (dvc repro)") from None
        if histories[name]:
            plot_training_curves(histories[name], Path(args.curves) / f"{name}.png",
                                 f"{name}: {describe(cfg.schedules[name])}")
        tuned_file = results / "metrics" / "tuned" / f"{name}.json"
        if tuned_file.is_file():
            tuned[name] = read_json(tuned_file, f"regenerate it with `dvc repro tune@{name}`")
    n = max((m.get("n", 1) for m in metrics.values()), default=1)
    plot_metric_band(histories, "test_acc", args.test_acc,
                     f"Test accuracy by schedule (mean ± std over {n} paired seeds)")
    plot_final_accuracy(metrics, tuned, args.final_acc,
                        f"Final test accuracy, default vs tuned (mean, 95% CI; dots: {n} seeds)")
    descriptions = {n: describe(s) for n, s in cfg.schedules.items()}
    write_text(args.report, summary_markdown(metrics, descriptions, tuned))
    log.info("wrote the plots and %s for %d schedules", args.report, len(metrics))
    if cfg.tracking.enabled:  # the runs, opened on MLflow's model-training view
        log.info("runs: `mlflow ui`, then open %s", make_tracker(cfg, stage="plot").ui_url())


if __name__ == "__main__":
    run_main(main)
