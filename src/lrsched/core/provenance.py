"""Where a result came from: the git commit, and which ``dvc repro`` (or command) produced it.

Not MLflow's concern: the tracker records these as tags, and the metrics files could too.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def study_id() -> str:
    """A tag shared by the runs of one ``dvc repro`` (or one command when run alone).

    ``LRSCHED_STUDY`` wins; otherwise the nearest ancestor ``dvc`` process (pid and
    start time) identifies the repro that launched this stage.
    """
    if os.environ.get("LRSCHED_STUDY"):
        return os.environ["LRSCHED_STUDY"]
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            argv = proc.cmdline()
            # `dvc repro`, or `python -m dvc repro` / `python .../bin/dvc repro`
            if any(os.path.basename(arg) == "dvc" for arg in argv[:3]):
                started = proc.create_time()
                digest = hashlib.md5(f"{socket.gethostname()}-{proc.pid}-{started}".encode()).hexdigest()[:6]
                return f"repro-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{digest}"
            proc = proc.parent()
    except Exception:  # a process vanished or is not ours to read: fall back to one id per command
        pass
    return "run-" + time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
