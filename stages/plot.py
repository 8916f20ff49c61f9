"""DVC stage `plot`: LR curves, training curves, accuracy figures, the forest plot, the budget and
reports/summary.md."""

from pathlib import Path

from lrsched.analysis.decisions import as_table, failure_reason
from lrsched.cli import (
    base_parser,
    load_args_config,
    log,
    make_tracker,
    output_path,
    run_main,
)
from lrsched.core.io import read_json, write_json, write_text
from lrsched.data import load_split, steps_per_epoch
from lrsched.reporting import budget
from lrsched.reporting.plots import plot_final_accuracy, plot_forest, plot_metric_band
from lrsched.reporting.report import summary_markdown
from lrsched.schedules.registry import build_plan
from lrsched.training.figures import plot_lr_curves, plot_training_curves


def describe(spec) -> str:
    shown = {k: v for k, v in spec.as_dict().items() if k not in ("type", "interval", "optimizer")}
    body = ", ".join(f"{k}={v}" for k, v in shown.items())
    if spec.optimizer_class.replaces_schedule:
        return f"{spec.optimizer}({body})"
    return f"{spec.type}({body}), per {spec.interval} (SGD, momentum {spec.momentum or 0})"


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--results", default=".", help="folder holding metrics/, history/, tuned/ and reports/")
    # dvc.yaml passes every output path; the defaults (under --out) serve a stage run by hand
    outputs = {"lr_curves": ("plots/lr_curves.png", "every schedule's LR vs epoch"),
               "test_acc": ("plots/test_acc.png", "test accuracy vs epoch, all schedules"),
               "final_acc": ("plots/final_acc.png", "final test accuracy per run, default vs tuned"),
               "forest": ("plots/forest.png", "paired Δ vs the leader, corrected CIs"),
               "curves": ("plots/curves", "folder for one training-curves PNG per schedule"),
               "budget": ("reports/budget.json", "compute by kind, in run-equivalents"),
               "report": ("reports/summary.md", "the ranked summary, Markdown")}
    for flag, (default, text) in outputs.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", help=f"{text} (default: {default})")
    args = parser.parse_args()
    cfg = load_args_config(args)
    for flag, (default, _) in outputs.items():
        setattr(args, flag, str(output_path(args, "plot", getattr(args, flag), default)))
    results = Path(args.results)
    n_train = len(load_split(cfg.data.root, train=True, limit=cfg.data.limit_train))  # per-step curves need it
    plans = {n: build_plan(s, steps_per_epoch(n_train, cfg.train.batch_size)) for n, s in cfg.schedules.items()}
    plot_lr_curves(plans, cfg.train.epochs, args.lr_curves)

    fix = "run the pipeline first: dvc repro"
    histories, metrics, studies = {}, {}, {}
    for name in cfg.schedules:
        histories[name] = read_json(results / "history" / f"{name}.json", fix=f"run train@{name} first: dvc repro")
        metrics[name] = read_json(results / "metrics" / f"{name}.json", fix=f"run train@{name} first: dvc repro")
        studies[name] = read_json(results / "tuned" / f"{name}.json", fix=f"run tune@{name} first: dvc repro")
        if histories[name]:
            plot_training_curves(histories[name], Path(args.curves) / f"{name}.png",
                                 f"{name}: {describe(cfg.schedules[name])}")
    compare = read_json(results / "metrics" / "compare.json", fix=fix)
    decisions = read_json(results / "reports" / "decisions.json", fix=fix)
    lr_find = read_json(results / "metrics" / "lr_find.json", fix=fix)

    n = max((m.get("n", 1) for m in metrics.values()), default=1)
    plot_metric_band(histories, "test_acc", args.test_acc,
                     f"Test accuracy by schedule, article defaults (mean ± std over {n} paired seeds)")
    failed = lambda record: bool(failure_reason(record, cfg.failure))  # noqa: E731
    plot_final_accuracy(as_table(metrics), as_table(compare["schedules"]), failed, args.final_acc,
                        "Final test accuracy per run: article defaults vs tuned")
    plot_forest(decisions, args.forest)
    spent = budget.count(metrics, lr_find, cfg.train.batch_size, studies, compare, cfg.compare.first_seeds)
    write_json(args.budget, spent)
    descriptions = {n: describe(s) for n, s in cfg.schedules.items()}
    write_text(args.report, summary_markdown(metrics, descriptions, compare, decisions, cfg.failure, cfg.compare,
                                             spent))
    log.info("wrote the plots, %s and %s (%.1f run-equivalents)", args.report, args.budget,
             spent["run_equivalents"]["total"])
    if cfg.tracking.enabled:  # the runs, opened on MLflow's model-training view
        log.info("runs: `mlflow ui`, then open %s", make_tracker(cfg, stage="plot").ui_url())


if __name__ == "__main__":
    run_main(main)
