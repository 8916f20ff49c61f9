"""Ending the runs that a dead process left RUNNING (SIGKILL, the OOM killer, a CI timeout).

Such a process could not end its run itself. A worker's run is also orphaned when the
stage that started the worker is gone. Runs of live processes, and of other hosts
(which this one cannot see), are left alone.
"""

from __future__ import annotations

import socket

from mlflow.entities import RunStatus

from lrsched.tracking.client import UninterruptedClient

KILLED = RunStatus.to_string(RunStatus.KILLED)
FAILED = RunStatus.to_string(RunStatus.FAILED)


def alive(pid: int, since_ms: int) -> bool:
    """A live process with that pid that started before ``since_ms`` (not a zombie, not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        # a zombie is dead: a stage's workers, orphaned by its SIGKILL, may wait unreaped under init
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() * 1000 <= since_ms + 1000
    except psutil.Error:
        return False


def end_run(client: UninterruptedClient, run_id: str, status: str, reason: str) -> None:
    with client.uninterrupted():
        client.set_tag(run_id, "lrsched.killed_reason", reason[:5000])
        if status == FAILED:
            client.set_tag(run_id, "lrsched.error", reason[:5000])
        client.set_terminated(run_id, status)


def end_orphaned_runs(client: UninterruptedClient, experiment_id: str) -> list[str]:
    """Mark KILLED this host's RUNNING runs whose process, or whose stage's process, is gone."""
    host, ended = socket.gethostname(), []
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    for run in running:
        tags = run.data.tags
        if tags.get("lrsched.host") != host or not tags.get("lrsched.pid", "").isdigit():
            continue
        pids = [int(tags["lrsched.pid"])]
        if tags.get("lrsched.stage_pid", "").isdigit():
            pids.append(int(tags["lrsched.stage_pid"]))
        gone = next((pid for pid in pids if not alive(pid, run.info.start_time)), None)
        if gone is not None:
            end_run(client, run.info.run_id, KILLED, f"process {gone} on {host} ended without closing the run "
                    "(killed outright: SIGKILL, out of memory or a timeout)")
            ended.append(run.info.run_id)
    return ended


def end_runs_of(client: UninterruptedClient, experiment_id: str, pid: int, status: str, reason: str) -> list[str]:
    """End the RUNNING runs that process ``pid`` of this host created (a worker that died) as ``status``."""
    query = (f"attributes.status = 'RUNNING' and tags.`lrsched.pid` = '{int(pid)}' "
             f"and tags.`lrsched.host` = '{socket.gethostname()}'")
    runs = client.search_runs([experiment_id], query, max_results=1000)
    for run in runs:
        end_run(client, run.info.run_id, status, reason)
    return [run.info.run_id for run in runs]
