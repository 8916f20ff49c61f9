"""Optuna: tune one schedule's hyperparameters. The only package of lrsched that imports optuna.

* ``storage``: where studies live (a SQLite file, or any SQLAlchemy URL for many machines).
* ``study``: a study's identity (name digest), sampler, pruner and search-space sampling.
* ``trials``: one trial, trained in a worker process, and how it ended (``Outcome``).
* ``driver``: the one ask -> train -> tell loop, in batches (the stage) or one by one (``--worker``).
* ``summary``: what a finished study says: counts, best params, Optuna's plots.
* ``tune``: the stage's orchestration: a parent MLflow run, the study, its summary.
"""
