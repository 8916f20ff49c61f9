"""One seed's outcome, and the summary over paired seeds that DVC metrics and the report read.

``metrics/<name>.json``: for each of ``test_acc``, ``train_acc``, ``train_loss`` (and
``val_acc`` when tuning) the mean, std and 95 % CI over the seeds that did not diverge,
``n``, the seeds, and ``per_seed`` values, which are what paired comparisons and the
failure rule (``lrsched.decisions``) use. Only the final epoch's test accuracy is a
result: a maximum over epochs would select on the test set. ``history/<name>.json``:
per-epoch mean and std.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lrsched.core.io import atomic_path, write_json
from lrsched.core.stats import mean_ci

# One run-equivalent: one default 10-epoch run on the 60,000 training images. Compute budgets
# count training images x epochs in these units, so they do not depend on the machine.
RUN_EQUIVALENT = 600_000
FINAL_KEYS = ("test_acc", "train_acc", "train_loss", "val_acc")


@dataclass
class SeedResult:
    """What a training process hands back (picklable: plain data and a state dict)."""

    seed: int
    history: list[dict[str, float]]
    state_dict: dict[str, Any]
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)  # pins, threads, versions, device it ran with
    model_uri: str | None = None  # the tracked run's logged model (models:/...), when tracked
    image_epochs: int = 0  # training images seen (epochs run x images): the compute it cost

    @classmethod
    def from_fit(cls, seed: int, fitted: Any, environment: dict[str, Any] | None = None) -> "SeedResult":
        """From a :class:`lrsched.trainer.FitResult`, keeping the weights as a state dict."""
        return cls(seed, fitted.history, fitted.model.state_dict(), fitted.diverged, fitted.message,
                   fitted.seconds, fitted.final, environment or {})

    def finals(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.final.items() if k in FINAL_KEYS}
        out["train_acc_curve"] = [h["train_acc"] for h in self.history]  # the failure rule reads it
        out["seconds"] = self.seconds
        out["image_epochs"] = self.image_epochs
        return out

    def record(self) -> dict[str, Any]:
        """This seed's entry of ``per_seed``."""
        if self.diverged:
            return {"diverged": True, "message": self.message, "image_epochs": self.image_epochs}
        return self.finals()


def summarize(results: Sequence[SeedResult]) -> dict[str, Any]:
    """Mean, std and 95 % CI over seeds, and every seed's own values (for paired tests)."""
    ok = [r for r in results if not r.diverged]
    out: dict[str, Any] = {"n": len(results), "seeds": [r.seed for r in results],
                           "diverged": len(results) - len(ok)}
    for key in FINAL_KEYS:
        values = [r.finals()[key] for r in ok if key in r.finals()]
        if values:
            out[key] = mean_ci(values).as_dict()
    out["per_seed"] = {str(r.seed): r.record() for r in results}
    if ok:
        out["seconds"] = statistics.fmean(r.seconds for r in ok)
    if results:
        out["environment"] = results[0].environment
    return out


def mean_history(results: Sequence[SeedResult]) -> list[dict[str, float]]:
    """Per-epoch mean (``key``) and sample std (``key_std``) over the seeds that did not diverge."""
    ok = [r.history for r in results if not r.diverged and r.history]
    if not ok:
        return []
    epochs = min(len(h) for h in ok)
    rows = []
    for e in range(epochs):
        row: dict[str, float] = {}
        for key in ok[0][e]:
            values = [h[e][key] for h in ok]
            row[key] = statistics.fmean(values)
            if key not in ("epoch",):
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def write_results(results: Sequence[SeedResult], *, metrics: Path, history: Path, model: Path,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trained schedule's three outputs, each atomic; the metrics (what DVC reads as the result) last.

    ``extra`` joins the summary (e.g. the tuned params). Returns the metrics written.
    """
    import torch

    write_json(history, mean_history(results))
    with atomic_path(model) as tmp:
        torch.save({r.seed: r.state_dict for r in results}, tmp)
    summary = {**summarize(results), **(extra or {})}
    write_json(metrics, summary)
    return summary
