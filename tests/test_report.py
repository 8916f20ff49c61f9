"""reports/summary.md from hand-built per-seed results, and the README updater."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import pytest

from lrsched.analysis.decisions import as_table, decisions_document
from lrsched.config import CompareConfig, FailureConfig
from lrsched.reporting.report import TABLE_END, TABLE_START, summary_markdown

ROOT = Path(__file__).resolve().parents[1]
RULE = FailureConfig()
CC = CompareConfig(first_seeds=3, batch=2, max_seeds=5)


def mk(accs: Sequence[float | None], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-seed results as the stages write them; None = a diverged seed."""
    per = {str(i): ({"diverged": True, "message": "diverged: loss is nan"} if a is None else
                    {"test_acc": a, "train_acc": a + 0.01, "train_loss": 0.3, "seconds": 1.0,
                     "train_acc_curve": [0.1 if a < 0.2 else 0.6] * 10, "image_epochs": 600_000})
           for i, a in enumerate(accs)}
    return {"n": len(accs), "per_seed": per, **({"params": params} if params else {})}


DEFAULTS = {
    "best": mk([0.90, 0.91, 0.92]),
    "close": mk([0.905, 0.90, 0.925]),
    "worse": mk([0.80, 0.81, 0.82]),
    "chance": mk([0.10, None, 0.10]),
}
TUNED = {
    "best": mk([0.92, 0.93, 0.94, 0.925, 0.935], {"lr": 0.05}),
    "worse": mk([0.85, 0.87, 0.88, 0.86, 0.865], {"base_lr": 0.1234567}),
    "chance": mk([0.91, 0.925, 0.10, 0.92, 0.93], {"base_lr": 0.05}),
}
DESCRIPTIONS = {name: f"{name}(base_lr=0.1), per epoch (SGD, momentum 0)" for name in DEFAULTS}


def render() -> str:
    compare = {"schedules": {n: {"params": m["params"], "per_seed": m["per_seed"]} for n, m in TUNED.items()}}
    decisions = decisions_document(as_table(compare["schedules"]), RULE, CC, {})
    return summary_markdown(DEFAULTS, DESCRIPTIONS, compare, decisions, RULE, CC,
                            {"run_equivalents": {"default seeds": 12.0, "total": 12.0}})


def rows(md: str, head: str) -> dict[str, list[str]]:
    """schedule -> cells of its row in the table whose header starts with ``head``."""
    block = md.split(f"| {head}", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    out = {}
    for line in block:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[1] if head == "rank" else cells[0]] = cells
    return out


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_headline_ranks_tuned_schedules_with_verdicts_and_counted_failures() -> None:
    md = render()
    tuned = rows(md, "rank")
    assert list(tuned) == ["best", "worse", "chance"]  # leader first, then by paired Δ (a failure counts at chance)
    assert tuned["best"][8] == "leader" and tuned["best"][6] == "leader"
    assert tuned["worse"][8] == "worse" and tuned["worse"][6].startswith("-0.0650 [") and tuned["worse"][7] == "< 0.0001"
    assert tuned["chance"][3].startswith("1/5 [")  # the failure is counted ...
    assert tuned["chance"][4] == "0.9225 [0.9100, 0.9300]"  # ... left out of median and range ...
    assert tuned["chance"][5].startswith("— (failures")  # ... and no mean is shown
    assert tuned["chance"][8].startswith("inconclusive (n=5; ") or tuned["chance"][8] == "worse"
    assert tuned["worse"][9] == "base_lr=0.1235"
    assert "tied" not in md.lower().replace("untied", "")


def test_the_defaults_are_the_articles_reproduction_with_their_optimizer() -> None:
    md = render()
    defaults = rows(md, "schedule | config")
    assert defaults["best"][8] == "best default"
    assert defaults["worse"][8] == "worse"
    assert defaults["chance"][3].startswith("3/3 [")  # two at chance, one diverged: all failed
    assert defaults["chance"][4] == "no run learned"
    assert "momentum 0" in defaults["best"][1]
    assert defaults["close"][8].startswith("inconclusive (n=3; ")


def test_no_p_value_prints_as_zero_and_the_reading_guide_comes_first() -> None:
    md = render()
    assert "p = 0 " not in md and "p = 0)" not in md and "| 0 |" not in md
    assert md.split(TABLE_START)[0].count("How to read it") == 1
    assert "one tuned config per schedule" in md
    assert "Decided: **" in md and "with the first 3 seeds alone" in md


def test_per_seed_tables_mark_failed_runs() -> None:
    per_seed = section(render(), "Per-seed final test accuracy")
    assert "| chance | 0.9100 | 0.9250 | 0.1000 (failed) | 0.9200 | 0.9300 |" in per_seed
    assert "| chance | 0.1000 (failed) | diverged | 0.1000 (failed) |" in per_seed


# ---- scripts/update_readme.py ------------------------------------------------------------

def _updater():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


README = "# lrsched\n\nintro\n\n<!-- results:start -->\nold table\n<!-- results:end -->\n\n## Next\nkept\n"


def test_update_readme_replaces_exactly_the_block(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main = _updater().main
    summary, readme = tmp_path / "summary.md", tmp_path / "README.md"
    summary.write_text(render())
    readme.write_text(README)
    readme.chmod(0o644)
    args = ["--readme", str(readme), "--summary", str(summary)]

    assert main([*args, "--check"]) == 1
    assert readme.read_text() == README  # --check writes nothing
    assert main(args) == 0
    table = render().split(TABLE_START + "\n", 1)[1].split(TABLE_END, 1)[0]
    assert readme.read_text() == README.replace("old table\n", table)
    assert readme.stat().st_mode & 0o777 == 0o644
    assert main([*args, "--check"]) == 0
    assert main(args) == 0 and readme.read_text() == README.replace("old table\n", table)  # idempotent


def test_update_readme_missing_marker(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main = _updater().main
    summary, readme = tmp_path / "summary.md", tmp_path / "README.md"
    summary.write_text(render())
    broken = README.replace("<!-- results:end -->\n", "")
    readme.write_text(broken)
    assert main(["--readme", str(readme), "--summary", str(summary)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "<!-- results:end -->" in err and "put the lines" in err
    assert readme.read_text() == broken

    readme.write_text(README)
    summary.write_text("# no table here\n")
    assert main(["--readme", str(readme), "--summary", str(summary)]) == 2
    assert "<!-- table:start -->" in capsys.readouterr().err and readme.read_text() == README


def test_the_forest_plot_clips_a_ci_far_wider_than_the_rest(tmp_path) -> None:
    """A pair with a failed run has a huge CI: its Δ stays in view, its bounds are written at the edges."""
    from lrsched.reporting.plots import _forest_range, plot_forest

    pairs = [{"name": n, "verdict": "worse", "n": 7, "delta": d, "ci": [d - 0.01, d + 0.01]}
             for n, d in (("a", -0.02), ("b", -0.03))]
    wide = {"name": "c", "verdict": "inconclusive", "n": 7, "delta": -0.13, "ci": [-0.72, 0.46]}
    left, right = _forest_range([*pairs, wide], margin=0.005)
    assert left < -0.13 < -0.04 < 0.005 < right  # every Δ, the typical CIs and the margin
    assert -0.72 < left and right < 0.46       # not the outlier's CI
    assert _forest_range(pairs, 0.005) == pytest.approx((-0.04 - 0.0036, 0.005 + 0.0036))
    decisions = {"pairs": [*pairs, wide], "margin": 0.005, "leader": "z", "ci_level": 0.99}
    plot_forest(decisions, tmp_path / "forest.png")
    assert (tmp_path / "forest.png").read_bytes()[:4] == b"\x89PNG"
