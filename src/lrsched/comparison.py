"""The decisive comparison: every tuned schedule on paired evaluation seeds, seeds spent where
the ranking is undecided (``lrsched.decisions`` says where), one tracked run per seed.

The library function behind ``stages/compare.py``. Each look trains the seeds that
``next_seeds`` asks for, ``train.workers`` processes at a time, then looks again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from lrsched.analysis.decisions import Look, look, next_seeds, planned_looks
from lrsched.config import Config
from lrsched.core.callbacks import Tracker
from lrsched.core.parallel import run_all
from lrsched.data import data_checksum
from lrsched.training.runs import SeedJob, train_seed
from lrsched.training.setup import check_inputs, load_datasets, with_params

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    table: dict[str, dict[int, dict[str, Any]]]  # schedule -> seed -> per-seed record
    looks: list[dict[str, Any]]                  # per look: the seeds given out
    final: Look
    configs: dict[str, dict[str, Any]]           # each schedule's full tuned config


def run_comparison(cfg: Config, params: Mapping[str, dict[str, Any]], tracker: Tracker,
                   progress: bool = True) -> Comparison:
    """Train the tuned ``params`` of each schedule on evaluation seeds until every pair is decided."""
    check_inputs(cfg)  # a bad device or data file: one line, before any worker
    configs = {name: with_params(cfg, name, p).schedules[name].as_dict() for name, p in params.items()}
    table: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in params}
    looks: list[dict[str, Any]] = []
    tags = {"lrsched.data_md5": data_checksum(cfg.data.root), "lrsched.tuned": "true", "lrsched.role": "evaluation"}
    while plan := next_seeds(table, cfg.failure, cfg.compare, configs):
        k = len(looks) + 1
        log.info("look %d of at most %d: %s", k, planned_looks(cfg.compare),
                 ", ".join(f"{n} seeds {s}" for n, s in plan.items()))
        jobs = [SeedJob(with_params(cfg, name, params[name]), name, seed, tracker,
                        {**tags, "lrsched.look": str(k)}, f"{name}-tuned", None, False)
                for name, seeds in plan.items() for seed in seeds]
        results = run_all(train_seed, jobs, cfg.train.workers, setup=load_datasets, setup_args=(cfg,),
                          desc=f"look {k}: runs" if progress else "",
                          on_death=getattr(tracker, "end_runs_of", None))  # the runs of a worker that died
        for job, result in zip(jobs, results):
            table[job.name][job.seed] = {**result.record(), "model_uri": result.model_uri}
        looks.append({"look": k, "trained": {n: list(s) for n, s in plan.items()}})
    final = look(table, cfg.failure, cfg.compare, configs)
    log.info("leader %s; %s", final.leader, ", ".join(f"{v.name}: {v.verdict}" for v in final.verdicts))
    return Comparison(table, looks, final, configs)
