"""DVC stage `lr_find`: the LR range test on the first paired seed; metrics/lr_find.json and its plot."""

import shutil
import tempfile
from pathlib import Path

from lrsched.cli import (
    add_shortcuts,
    base_parser,
    load_args_config,
    log,
    make_tracker,
    output_path,
    run_main,
)
from lrsched.core.io import write_json
from lrsched.training.figures import plot_lr_find
from lrsched.training.lr_find import range_test
from lrsched.training.setup import load_datasets


def main() -> None:
    parser = base_parser(__doc__)
    add_shortcuts(parser, "seed")
    # dvc.yaml passes every output path; the defaults (under --out) serve a stage run by hand
    parser.add_argument("--metrics", help="where to write the result (default: metrics/lr_find.json)")
    parser.add_argument("--plot", help="where to draw loss vs LR (default: plots/lr_find.png)")
    parser.add_argument("--curve", help="where to write loss vs LR per step (default: history/lr_find.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args()
    cfg = load_args_config(args)
    metrics = output_path(args, "lr_find", args.metrics, "metrics/lr_find.json")
    plot = output_path(args, "lr_find", args.plot, "plots/lr_find.png")
    curve = output_path(args, "lr_find", args.curve, "history/lr_find.json")
    tracker = make_tracker(cfg, stage="lr_find")
    data = load_datasets(cfg)
    seed = cfg.train.seeds[0]
    params = {**{f"lr_find.{k}": v for k, v in vars(cfg.lr_find).items()}, "seed": seed,
              "train.batch_size": cfg.train.batch_size}
    with tracker.run("lr_find", params, {"lrsched.seed": str(seed)}) as logger:
        result = range_test(data.train, seed, cfg.train.batch_size, cfg.lr_find, progress=not args.no_progress)
        plot_lr_find(result.lrs, result.losses, result.smoothed, result.suggestion, result.divergence, plot)
        summary = result.summary()
        logger.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        write_json(curve, result.records())
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(plot, Path(tmp) / "lr_find.png")
            shutil.copy(curve, Path(tmp) / "lr_find_curve.json")
            logger.log_artifacts(Path(tmp))
    write_json(metrics, {**summary, "seed": seed, "momentum": cfg.lr_find.momentum})
    log.info("lr_find: suggested lr %.3g, %s", result.suggestion,
             f"diverged at lr {result.divergence:.3g}" if result.divergence is not None
             else f"no divergence up to lr {result.lrs[-1]:.3g}")


if __name__ == "__main__":
    run_main(main)
