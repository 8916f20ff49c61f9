"""DVC stage `plot`: LR curves, training curves, test accuracy of all schedules, reports/summary.md."""

from pathlib import Path

from lrsched.cli import base_parser, load_args_config, log, make_tracker, output_path, run_main
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
    # dvc.yaml passes every output path; the defaults (under --out) serve a stage run by hand
    parser.add_argument("--lr-curves", help="every schedule's LR vs epoch (default: plots/lr_curves.png)")
    parser.add_argument("--test-acc", help="test accuracy vs epoch, all schedules (default: plots/test_acc.png)")
    parser.add_argument("--final-acc", help="final test accuracy, default vs tuned (default: plots/final_acc.png)")
    parser.add_argument("--curves", help="folder for one training-curves PNG per schedule (default: plots/curves)")
    parser.add_argument("--report", help="the ranked summary, Markdown (default: reports/summary.md)")
    args = parser.parse_args()
    cfg = load_args_config(args)
    for flag, default in (("lr_curves", "plots/lr_curves.png"), ("test_acc", "plots/test_acc.png"),
                          ("final_acc", "plots/final_acc.png"), ("curves", "plots/curves"),
                          ("report", "reports/summary.md")):
        setattr(args, flag, str(output_path(args, "plot", getattr(args, flag), default)))
    results = Path(args.results)
    n_train = len(load_split(cfg.data.root, train=True, limit=cfg.data.limit_train))  # per-step curves need it
    steps = -(-n_train // cfg.train.batch_size)
    plans = {n: build_plan(s, steps) for n, s in cfg.schedules.items()}
    plot_lr_curves(plans, cfg.train.epochs, args.lr_curves)

    histories, metrics, tuned = {}, {}, {}
    for name in cfg.schedules:
        try:
            histories[name] = read_json(results / "history" / f"{name}.json")
            metrics[name] = read_json(results / "metrics" / f"{name}.json")
        except FileNotFoundError as exc:
            raise DataError(f"{exc.filename}: missing; run the train stage for {name!r} first (dvc repro)") from None
        if histories[name]:
            plot_training_curves(histories[name], Path(args.curves) / f"{name}.png",
                                 f"{name}: {describe(cfg.schedules[name])}")
        tuned_file = results / "metrics" / "tuned" / f"{name}.json"
        if tuned_file.is_file():
            tuned[name] = read_json(tuned_file)
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
