"""Where one pinned training step's time goes, kernel by kernel, and how fast each kernel runs.

Run from the project root (with the venv active)::

    python benchmarks/kernels.py               # baseline (feed452) step, then today's step
    python benchmarks/kernels.py --repeats 50

It times every ATen call of the LeNet's SGD step (forward, cross-entropy, backward, update;
batch 256 of real FashionMNIST when present, else generated images) where it runs, with a
``TorchDispatchMode``, and then again on its own, on the same tensors: the gap between the
two columns is what the step's working set costs in cache misses. Times are the thread's own
CPU clock (``time.thread_time``, which other processes do not inflate), the least disturbed
of ``--repeats``. ``torch.profiler`` is not used: under it, the zero-fill inside pool1's
backward read as 16 ms a step, where that whole backward takes about 1 ms without it. For
convolutions and matrix products the table gives GFLOP/s (torch's own flop formulas), to read
against one core's peak (AVX2 with two FMA units: 32 flops per cycle). The last line times the two whole steps, interleaved,
and says what step time the 1.5x target over the baseline means.

The process is pinned as a stage is (``import lrsched``: AVX2, MKL CNR, 1 thread) and keeps
freed memory as a stage does (``lrsched.core.heap``). The baseline is ``throughput.py``'s
frozen copy of the model at commit feed452, stepped the way its ``fit`` steps it.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from throughput import BATCH_SIZE, baseline_lenet, baseline_step, describe_data, load_data, set_threads  # pins first

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from lrsched.core.heap import keep_freed_memory
from lrsched.core.pinning import pinning_enabled
from lrsched.training.model import lenet
from lrsched.training.trainer import sgd_step

TOP = 14  # kernels listed per step; the rest are summed as one line


@dataclass
class Call:
    func: torch._ops.OpOverload
    args: tuple
    kwargs: dict
    gflop: float  # 0 where torch has no flop formula (elementwise, pooling, copies)
    name: str  # the table's row: the op and its first two input shapes


def label(func: torch._ops.OpOverload, args: tuple) -> str:
    shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)][:2]
    return f"`{func._overloadpacket.__name__}` " + " ".join(str(list(s)).replace(" ", "") for s in shapes)


class StepTimer(TorchDispatchMode):
    """Times every ATen call where it runs (thread CPU time), one dict per step; keeps the last
    step's calls, with their inputs alive, to run them again alone."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, float]] = []
        self.calls: list[Call] = []

    def next_step(self) -> None:
        self.steps.append(defaultdict(float))
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        t0 = time.thread_time()
        out = func(*args, **kwargs)
        seconds = time.thread_time() - t0
        formula = flop_registry.get(func._overloadpacket)
        call = Call(func, args, kwargs, (formula(*args, **kwargs, out_val=out) if formula else 0) / 1e9,
                    label(func, args))
        self.calls.append(call)
        self.steps[-1][call.name] += seconds
        return out


def least_cpu_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Least disturbed thread CPU time (ms) of each function, after two untimed calls, the functions interleaved."""
    for fn in fns.values():
        fn(), fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.thread_time()
            fn()
            best[name] = min(best[name], 1e3 * (time.thread_time() - t0))
    return best


def kernel_table(title: str, step: Callable[[], object], repeats: int) -> None:
    """Print one step's kernels by CPU time, in the step and alone."""
    timer = StepTimer()
    with timer:
        for _ in range(repeats):
            timer.next_step()
            step()
    in_step = {name: 1e3 * min(s[name] for s in timer.steps) for name in timer.steps[-1]}
    alone: dict[str, float] = defaultdict(float)
    gflop: dict[str, float] = defaultdict(float)
    with torch.no_grad():  # run below autograd's bookkeeping, as inside the step
        for call in timer.calls:
            alone[call.name] += least_cpu_ms({"": lambda c=call: c.func(*c.args, **c.kwargs)}, repeats)[""]
            gflop[call.name] += call.gflop
    ranked = sorted(in_step, key=lambda name: -in_step[name])
    total, total_alone, flops = sum(in_step.values()), sum(alone.values()), sum(gflop.values())
    print(f"\n{title}: {len(timer.calls)} ATen calls; ms of thread CPU time, least of {repeats} steps "
          f"(in the step) and of {repeats} runs of the call on its own (alone)")
    print("| kernel (first two inputs) | in the step | alone | share | GFLOP/s in the step |")
    print("|---|---:|---:|---:|---:|")
    for name in ranked[:TOP]:
        speed = f"{gflop[name] / (in_step[name] / 1e3):.1f}" if gflop[name] else ""
        print(f"| {name} | {in_step[name]:.2f} | {alone[name]:.2f} | {100 * in_step[name] / total:.1f} % | {speed} |")
    rest, rest_alone = (sum(d[name] for name in ranked[TOP:]) for d in (in_step, alone))
    print(f"| {len(ranked) - TOP} other kernels | {rest:.2f} | {rest_alone:.2f} | {100 * rest / total:.1f} % | |")
    print(f"| **sum** | {total:.2f} | {total_alone:.2f} | | {flops / (total / 1e3):.1f} |")
    print(f"{flops:.3f} GFLOP counted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="torchvision root holding FashionMNIST/raw (default: data)")
    parser.add_argument("--repeats", type=int, default=30, help="timings per kernel and per step (default: 30)")
    parser.add_argument("--lr", type=float, default=0.3, help="SGD learning rate (default: 0.3)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    set_threads(None)
    keep_freed_memory()
    data = load_data(args.data_root)
    cl = torch.channels_last
    x = data.train.x[:BATCH_SIZE].contiguous(memory_format=cl)
    y = data.train.y[:BATCH_SIZE]
    print(f"data: {describe_data(args.data_root)}; batch {BATCH_SIZE}, {torch.get_num_threads()} thread(s), "
          f"pinned: {pinning_enabled()}")

    torch.manual_seed(0)
    base = baseline_lenet().to(memory_format=cl)
    base_opt = torch.optim.SGD(base.parameters(), lr=args.lr)

    torch.manual_seed(0)
    net = lenet().to(memory_format=cl)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    steps = {"baseline (feed452) step": lambda: baseline_step(base, base_opt, x, y),
             "lrsched step": lambda: sgd_step(net, opt, x, y)}
    for title, step in steps.items():
        kernel_table(title, step, args.repeats)
    base_ms, ours_ms = least_cpu_ms(steps, args.repeats).values()
    print(f"\nwhole steps, interleaved, least of {args.repeats}: baseline {base_ms:.2f} ms, lrsched {ours_ms:.2f} ms: "
          f"x{base_ms / ours_ms:.2f}; 1.5x the baseline needs {base_ms / 1.5:.2f} ms, "
          f"{ours_ms - base_ms / 1.5:.2f} ms less than today")


if __name__ == "__main__":
    main()
