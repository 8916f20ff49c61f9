"""MLflow tracking: the only package of lrsched that imports mlflow.

* ``store``: where the runs go (``MLFLOW_TRACKING_URI`` or the project's ``mlflow.db``), checked before training.
* ``client``: an ``MlflowClient`` whose SQLite writes finish before Ctrl-C acts.
* ``logger``: one run's metrics, params, tags, datasets, model and artifacts.
* ``tracker``: creates runs and ends each with the status that matches what happened.
* ``orphans``: ends the runs of processes that died without ending them.
* ``system_metrics``: CPU, memory and GPU use, sampled once per stage.

One run per trained (schedule, seed); metrics with ``step = epoch``; run status
always ends FINISHED, FAILED (error recorded) or KILLED (Ctrl-C / SIGTERM).
"""
