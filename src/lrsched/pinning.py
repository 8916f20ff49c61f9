"""What decides the numbers on a CPU, pinned before torch initialises.

Measured on this project's machines (same code, params and seed): the final
weights change with the instruction set the math libraries pick at run time
(ATen's vector kernels, oneDNN's convolutions, MKL's GEMM) and with the number
of threads (parallel reductions add in another order). So every training
process, by default:

* runs ATen's kernels at ``avx2`` even on an AVX-512 CPU (``ATEN_CPU_CAPABILITY``);
* caps oneDNN's JIT at AVX2 (``ONEDNN_MAX_CPU_ISA``);
* runs MKL in its conditional-numerical-reproducibility mode ``COMPATIBLE,STRICT``,
  the one branch MKL honours on Intel *and* AMD CPUs (its ``AVX2`` branch is
  ignored on AMD, measured with ``MKL_VERBOSE``);
* uses one intra-op and one inter-op thread. Both cores are used by running
  seeds and tuning trials as parallel processes instead (``train.workers``).

``import lrsched`` applies the pins, so they are in the environment before any
module of lrsched imports torch, and worker processes inherit them. Set
``LRSCHED_PIN=0`` to opt out (faster on a big CPU; numbers then depend on it).
"""

from __future__ import annotations

import os
import platform
from typing import Any

ENV_SWITCH = "LRSCHED_PIN"
THREADS = 1
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE,STRICT",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
}


def pinning_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") not in ("0", "false", "no")


def apply_pins() -> bool:
    """Put the pins in ``os.environ``; a no-op when opted out or not on x86-64.

    Returns whether they are in force. Must run before torch is imported: the
    libraries read these variables once, when they initialise.
    """
    if not pinning_enabled() or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ.update(PINS)
    return True


def pinned() -> bool:
    """The pins are in this process's environment (``import lrsched`` puts them there)."""
    return all(os.environ.get(k) == v for k, v in PINS.items())


def configure_torch(threads: int) -> None:
    """Thread counts for this process (torch reads OMP_NUM_THREADS once; set it explicitly too).

    ``threads`` 0 keeps torch's own choice (one per core: fast, not portable).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only settable before the first parallel op; fine when already set
            pass


def environment() -> dict[str, Any]:
    """What a result was computed with: recorded in metrics and as MLflow tags."""
    import torch

    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pinned": pinned(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **{f"env.{k}": os.environ.get(k, "") for k in PINS},
    }

