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

On a GPU (CUDA) a run repeats on the same GPU model and software when cuBLAS
gets a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS starts, so
it is pinned here on every architecture) and torch is told to use deterministic
kernels only, with cuDNN's autotuner off (``configure_cuda``, called when a CUDA
device is chosen). Other GPUs, and the CPU, give other numbers.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
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
# cuBLAS picks its reduction split by workspace size; a fixed one makes GEMMs repeat (torch's
# "Reproducibility" notes; :4096:8 is the larger of the two documented settings)
CUDA_PINS = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
# the packages whose versions decide a result (recorded next to torch's)
VERSIONED = ("numpy", "optuna", "scipy", "schedulefree", "mlflow")


def pinning_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") not in ("0", "false", "no")


def apply_pins() -> bool:
    """Put the pins in ``os.environ``; a no-op when opted out or not on x86-64.

    Returns whether the CPU pins are in force. Must run before torch is imported:
    the libraries read these variables once, when they initialise. The CUDA pin
    is set on every architecture (GPU machines are not all x86-64).
    """
    if not pinning_enabled():
        return False
    os.environ.update(CUDA_PINS)
    if platform.machine().lower() not in ("x86_64", "amd64"):
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


def configure_cuda() -> None:
    """Deterministic kernels on CUDA: same GPU model and software, same numbers.

    Called when a CUDA device is chosen, before the first CUDA op. Ops with no
    deterministic kernel then raise instead of silently varying (none in LeNet's
    training step). A no-op when pinning is opted out.
    """
    import torch

    if not pinning_enabled():
        return
    for key, value in CUDA_PINS.items():
        # normally already set by apply_pins; a late set still works as long as cuBLAS has not started
        os.environ.setdefault(key, value)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False  # the autotuner may pick another algorithm each run


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cuda_environment() -> dict[str, Any]:
    """The GPU and the settings that decide a GPU result; empty when this process has not used CUDA."""
    import torch

    if not torch.cuda.is_initialized():
        return {}
    return {
        "gpu": torch.cuda.get_device_name(),
        "cuda": torch.version.cuda or "",
        "cudnn": str(torch.backends.cudnn.version() or ""),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        **{f"env.{k}": os.environ.get(k, "") for k in CUDA_PINS},
    }


def environment() -> dict[str, Any]:
    """What a result was computed with: recorded in metrics and as MLflow tags."""
    import torch

    return {
        "torch": torch.__version__,
        **{name: package_version(name) for name in VERSIONED},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pinned": pinned(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **{f"env.{k}": os.environ.get(k, "") for k in PINS},
        **cuda_environment(),
    }

