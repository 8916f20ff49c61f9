"""The study's compute in run-equivalents, by kind, counted from what the stages wrote.

One run-equivalent is 600,000 image-epochs (one default 10-epoch run of one seed), so
the count does not depend on the machine; pruned trials count the epochs they trained.
"""

from __future__ import annotations

from typing import Any, Mapping

from lrsched.training.results import RUN_EQUIVALENT

KINDS = ("default seeds", "LR range test", "tuning trials", "evaluation seeds (first)", "extra seeds")


def _images(per_seed: Mapping[str, Mapping[str, Any]], keep: Any = lambda seed: True) -> int:
    return sum(int(r.get("image_epochs", 0)) for seed, r in per_seed.items() if keep(int(seed)))


def count(defaults: Mapping[str, Mapping[str, Any]], lr_find: Mapping[str, Any] | None, batch_size: int,
          studies: Mapping[str, Mapping[str, Any]], compare: Mapping[str, Any], first_seeds: int) -> dict[str, Any]:
    """``{"run_equivalents": {kind: x, ..., "total": y}, "image_epochs": {...}}``."""
    evaluated = compare.get("schedules", {}).values()
    images = {
        "default seeds": sum(_images(m.get("per_seed", {})) for m in defaults.values()),
        "LR range test": int(lr_find.get("steps", 0)) * batch_size if lr_find else 0,
        "tuning trials": sum(int(s.get("image_epochs", 0)) for s in studies.values()),
        "evaluation seeds (first)": sum(_images(m["per_seed"], lambda s: s < first_seeds) for m in evaluated),
        "extra seeds": sum(_images(m["per_seed"], lambda s: s >= first_seeds) for m in evaluated),
    }
    runs = {k: v / RUN_EQUIVALENT for k, v in images.items()}
    runs["total"] = sum(runs.values())
    return {"run_equivalents": runs, "image_epochs": images}
