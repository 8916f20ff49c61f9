"""reports/summary.md from hand-built metrics, and the README updater."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, Sequence

import pytest

from lrsched.report import TABLE_END, TABLE_START, results_table, summary_markdown
from lrsched.stats import mean_ci

ROOT = Path(__file__).resolve().parents[1]


def mk(accs: Sequence[float | None], params: dict[str, Any] | None = None,
       order: Sequence[int] | None = None) -> dict[str, Any]:
    """A metrics file as the train/tune stages write it; None = a diverged seed.

    ``order`` sets the per_seed insertion order, to check pairing goes by seed key.
    """
    per = {}
    for i in order if order is not None else range(len(accs)):
        a = accs[i]
        per[str(i)] = ({"diverged": True, "message": "diverged: loss is nan"} if a is None else
                       {"test_acc": a, "best_test_acc": a, "train_acc": a + 0.01, "train_loss": 0.3, "seconds": 1.0})
    ok = [a for a in accs if a is not None]
    m: dict[str, Any] = {"n": len(accs), "seeds": list(range(len(accs))), "per_seed": per,
                         "diverged": len(accs) - len(ok), "seconds": 1.0}
    if ok:
        m["test_acc"] = mean_ci(ok).as_dict()
    if params:
        m["params"] = params
    return m


METRICS = {
    "best": mk([0.90, 0.91, 0.92]),
    "tied": mk([0.905, 0.90, 0.925]),
    "worse": mk([0.80, 0.81, 0.82]),
    "chance": mk([0.10, None, 0.10]),
}
TUNED = {
    "worse": mk([0.85, 0.87, 0.88], {"base_lr": 0.1234567}),  # +0.057 on every seed: better
    "tied": mk([0.904, 0.90, 0.926], {"lr": 0.3}),  # ±0.001: a tie
    "best": mk([0.89, 0.90, 0.91], {"lr": 0.05}),  # -0.01 on every seed: worse
    "chance": mk([0.87, 0.88, 0.875], {"base_lr": 0.05}),
}
DESCRIPTIONS = {name: f"{name}(base_lr=0.1), per epoch" for name in METRICS}


def ranked_rows(md: str) -> dict[str, list[str]]:
    """schedule -> cells of its row in the ranked table."""
    rows = {}
    for line in md.splitlines():
        if re.match(r"\| \d+ \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[1]] = cells
    return rows


def section(md: str, title: str) -> str:
    """The text of one '## title' section."""
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_ties_and_clear_losers() -> None:
    md = summary_markdown(METRICS, DESCRIPTIONS)
    rows = ranked_rows(md)
    assert [rows[n][0] for n in ("best", "tied", "worse")] == ["1", "2", "3"]
    assert rows["best"][6] == "best" and rows["best"][5] == "—"
    assert rows["tied"][6].startswith("tied (p = ")
    assert rows["worse"][6].startswith("worse (p = ")
    assert rows["worse"][5] == "-0.1000 [-0.1000, -0.1000]"  # paired: the same -0.1 on every seed
    assert rows["best"][3] == f"0.9100 ± {4.302652729749464 * 0.01 / 3 ** 0.5:.4f}"  # 0.9100 ± 0.0248
    assert rows["best"][4] == "0.0100"
    assert "Best: best (mean 0.9100). Statistically tied with it: tied." in md
    assert all(cells[7:] == ["—", "—", "—"] for cells in rows.values())  # no tuned results given


def test_pairs_matched_by_seed_key() -> None:
    # seeds spread 4 points; 'other' loses 1 point on every seed. Stored in another seed order.
    best = [0.90, 0.94, 0.92, 0.91]
    other = [x - e for x, e in zip(best, [0.010, 0.011, 0.009, 0.010])]
    md = results_table({"best": mk(best), "other": mk(other, order=[3, 1, 0, 2])}, {})
    assert ranked_rows(md)["other"][6].startswith("worse")
    assert "No other schedule is tied with it." in md


def test_did_not_learn_is_not_ranked() -> None:
    md = summary_markdown(METRICS, DESCRIPTIONS, TUNED)
    assert "chance" not in ranked_rows(md)
    assert len(ranked_rows(md)) == 3
    failed = section(md, "Did not learn")
    line = next(row for row in failed.splitlines() if row.startswith("- **chance**"))
    assert "1 of 3 seeds diverged" in line and "2 seeds ended at chance" in line
    assert "seed 0: 0.1000, seed 1: diverged, seed 2: 0.1000" in line
    assert "peak LR is probably too high" in line
    assert "Tuned: 0.8750" in line
    assert "tied" not in failed and "worse" not in failed  # only the failing schedule is listed
    assert "Not ranked (did not learn on every seed): chance." in results_table(METRICS, DESCRIPTIONS, TUNED)
    # one seed below 0.2 is enough, even when the mean looks fine
    one_low = {"a": mk([0.90, 0.91, 0.92]), "b": mk([0.95, 0.95, 0.15])}
    assert list(ranked_rows(results_table(one_low, {}))) == ["a"]


def test_tuned_verdicts() -> None:
    rows = ranked_rows(summary_markdown(METRICS, DESCRIPTIONS, TUNED))
    assert re.fullmatch(r"\+0\.0567 \[\+0\.04\d\d, \+0\.07\d\d\] better \(p = [\d.e-]+\)", rows["worse"][8])
    assert re.fullmatch(r"\+0\.0000 \[-0\.00\d\d, \+0\.00\d\d\] tie \(p = 1\)", rows["tied"][8])
    assert rows["best"][8] == "-0.0100 [-0.0100, -0.0100] worse (p = 0)"
    assert rows["worse"][9] == "base_lr=0.1235"
    assert rows["worse"][7].startswith("0.8667 ± ")
    md = summary_markdown(METRICS, DESCRIPTIONS, TUNED)
    assert "Best tuned: tied at mean 0.9100 with params lr=0.3." in md
    # a tuned run that did not learn is reported as such, never compared
    bad = {"best": mk([0.90, 0.91, 0.92], {"lr": 0.9}) | {"per_seed": {"0": {"diverged": True}, "1": {"test_acc": 0.91},
                                                                          "2": {"test_acc": 0.92}}}}
    cells = ranked_rows(results_table({"best": METRICS["best"]}, {}, bad))["best"]
    assert cells[7].startswith("did not learn") and cells[8] == "—"


def test_one_seed_cannot_rank() -> None:
    md = summary_markdown({"a": mk([0.90]), "b": mk([0.88])}, {}, {"a": mk([0.91], {"lr": 0.2})})
    rows = ranked_rows(md)
    assert "One seed cannot rank schedules" in md.split(TABLE_START)[0]
    assert rows["a"][3] == "0.9000 ± n/a" and rows["a"][4] == "n/a"
    assert rows["b"][5] == "-0.0200 [n/a]" and rows["b"][6] == "n=1"
    assert rows["a"][8] == "+0.0100 [n/a] n=1"
    assert "Statistically tied" not in md and "No other schedule is tied" not in md


def test_method_table_markers_and_per_seed() -> None:
    md = summary_markdown(METRICS, DESCRIPTIONS, TUNED)
    head = md.split(TABLE_START)[0]
    assert "3 paired seeds (0, 1, 2)" in head and "Student t, n−1 df" in head
    assert "paired t-test (two-sided, α = 0.05)" in head and "No multiple-comparison correction" in head
    assert "One seed" not in head
    # the README block is exactly results_table
    assert md.split(TABLE_START + "\n", 1)[1].split("\n" + TABLE_END, 1)[0] + "\n" == \
        results_table(METRICS, DESCRIPTIONS, TUNED)
    per_seed = section(md, "Per-seed final test accuracy").strip().splitlines()
    assert per_seed[0] == "| schedule | seed 0 | seed 1 | seed 2 |"
    labels = [row.split("|")[1].strip() for row in per_seed[2:]]
    assert labels == ["best", "best (tuned)", "tied", "tied (tuned)", "worse", "worse (tuned)", "chance",
                      "chance (tuned)"]
    assert per_seed[2 + labels.index("chance")] == "| chance | 0.1000 | diverged | 0.1000 |"
    assert per_seed[2 + labels.index("tied")] == "| tied | 0.9050 | 0.9000 | 0.9250 |"


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
    summary.write_text(summary_markdown(METRICS, DESCRIPTIONS, TUNED))
    readme.write_text(README)
    readme.chmod(0o644)
    args = ["--readme", str(readme), "--summary", str(summary)]

    assert main([*args, "--check"]) == 1
    assert readme.read_text() == README  # --check writes nothing
    assert main(args) == 0
    table = results_table(METRICS, DESCRIPTIONS, TUNED)
    assert readme.read_text() == README.replace("old table\n", table)
    assert readme.stat().st_mode & 0o777 == 0o644
    assert main([*args, "--check"]) == 0
    assert main(args) == 0 and readme.read_text() == README.replace("old table\n", table)  # idempotent


def test_update_readme_missing_marker(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main = _updater().main
    summary, readme = tmp_path / "summary.md", tmp_path / "README.md"
    summary.write_text(summary_markdown(METRICS, DESCRIPTIONS))
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
