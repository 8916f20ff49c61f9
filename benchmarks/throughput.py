"""Training throughput: the article's DataLoader loop vs a frozen baseline ``fit`` vs today's ``fit``.

Run from the project root (with the venv active)::

    python benchmarks/throughput.py                       # 1 epoch, 3 repeats of each loop
    python benchmarks/throughput.py --repeats 5 --threads 1
    python benchmarks/throughput.py --accuracy --repeats 3  # final test accuracy, mean over 3 seeds
    python benchmarks/throughput.py --profile             # self-CPU share per operator, baseline vs today
    python benchmarks/throughput.py --heap --repeats 3    # lrsched fit: glibc's default heap vs the kept heap

What it measures. Both loops train the article's LeNet (``lrsched.model.lenet``) with
plain SGD at a constant learning rate, batch size 256, for ``--epochs`` epochs, and
score the test set after every epoch:

(a) a faithful re-implementation of the article's loop: torchvision's ``FashionMNIST``
    with ``ToTensor`` (a PIL image and a tensor conversion per sample), ``DataLoader``
    with ``num_workers=0``, and the ``Accumulator``'s host sync (``float(...)``) after
    every batch; evaluation through a batch-256 test loader;
(b) the baseline: a frozen copy, kept in this file, of the model and the ``fit`` hot
    path as they were at commit feed452 (the whole split as one tensor, a shuffled
    index per epoch, metrics accumulated on the device, evaluation in batches of
    2048, channels_last), so that later changes to lrsched cannot move the yardstick;
(c) ``lrsched.trainer.fit`` as it is now.

Without ``--threads``, a pinned process (the default: ``lrsched.pinning``) runs 1
thread, the study's configuration. Each *full* run (training plus the per-epoch evaluations; data loading excluded) is
timed with ``time.perf_counter``. Throughput is ``epochs * 60000 / seconds``: training
images per second of wall time, evaluation included in the denominator. Each timed run
is a fresh process set up the way its loop's program sets itself up: (c) as a stage
does (``lrsched.training.setup``: 1 thread, and the heap kept, ``lrsched.core.heap``),
(a) and (b) with 1 thread and glibc's default heap, as at feed452. The runs are
interleaved (a, b, c, a, b, c, ...) so background load and thermal drift hit all alike.
The last two lines are ``speedup vs article: X.XX`` = median(c) / median(a)
and ``speedup vs baseline: X.XX`` = median(c) / median(b).

``--pinning`` instead measures what portable CPU numbers cost and what parallel
processes win back, side by side in one run (each configuration in fresh
processes, since the pins must be set before torch starts):

(1) unpinned: torch's own ISA choice and threads (one per core), one process;
(2) pinned (``lrsched.pinning``: AVX2 kernels, MKL CNR, 1 thread), one process;
(3) pinned, ``--processes`` processes at once, the way seeds and trials run.
Throughput is all processes' training images / wall time; the last line is
``pinned x1: X.XX, pinned xN: Y.YY`` relative to (1).

Data: the real FashionMNIST IDX files under ``<--data-root>/FashionMNIST/raw`` when
present, else random images of the same shape (60000/10000 x 1x28x28, 10 classes),
served to (a) through the same PIL + ``ToTensor`` path torchvision uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:  # first: lrsched pins the CPU math libraries before torch starts (LRSCHED_PIN=0 opts out)
    import lrsched  # noqa: F401
except ImportError:  # not installed in this environment: use the checkout's src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import lrsched  # noqa: F401

import math

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from lrsched.core.heap import keep_freed_memory
from lrsched.core.pinning import configure_torch, pinning_enabled
from lrsched.data import Split, load_split, raw_dir
from lrsched.schedules import curves as S
from lrsched.training.model import lenet
from lrsched.training.trainer import FitOptions, fit

BATCH_SIZE = 256
N_TRAIN, N_TEST, N_CLASSES = 60_000, 10_000, 10


@dataclass(frozen=True)
class Run:
    seconds: float
    test_acc: float


# ---- (b) the frozen baseline: lrsched's model and fit hot path at commit feed452 -------------------------
# Copied, not imported: do not "improve" it, it is the yardstick for ``speedup vs baseline``.

def baseline_lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


@torch.inference_mode()
def baseline_evaluate(model: nn.Module, split: Split, batch_size: int, channels_last: bool) -> tuple[float, float]:
    model.eval()
    loss = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.long)
    for start in range(0, len(split), batch_size):
        x = split.x[start:start + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = split.y[start:start + batch_size]
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = len(split)
    return loss.item() / n, correct.item() / n


def baseline_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                  y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """feed452's update on one batch: the logits and the loss."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logits, loss


def baseline_fit(lr: float, train: Split, evals: dict[str, Split], seed: int, epochs: int,
                 batch_size: int = BATCH_SIZE, eval_batch_size: int = 2048, channels_last: bool = True
                 ) -> tuple[nn.Module, dict[str, float]]:
    """feed452's ``fit`` for plain SGD at a constant LR, per-epoch evaluation (no bar, no callbacks)."""
    device = train.x.device
    torch.manual_seed(seed)
    model = baseline_lenet().to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x_all = train.x.contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.0, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    n = len(train)
    steps = math.ceil(n / batch_size)
    record: dict[str, float] = {}
    for epoch in range(epochs):
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr
        lr_sum = 0.0
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for i in range(steps):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x, y = x_all[idx], train.y[idx]
            logits, loss = baseline_step(model, opt, x, y)
            lr_sum += lr * len(idx)
            with torch.no_grad():
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == y).sum()
            seen += len(idx)
            if (i + 1) % 25 == 0 or i + 1 == steps:
                running = loss_sum.item() / seen
                if not math.isfinite(running):
                    break
        record = {"epoch": epoch + 1, "lr": lr_sum / seen, "train_loss": loss_sum.item() / seen,
                  "train_acc": correct.item() / seen}
        for name, split in evals.items():
            record[f"{name}_loss"], record[f"{name}_acc"] = baseline_evaluate(model, split, eval_batch_size,
                                                                             channels_last)
    return model, record


def run_baseline(data: "Data", lr: float, epochs: int, seed: int) -> Run:
    start = time.perf_counter()
    _, record = baseline_fit(lr, data.train, {"test": data.test}, seed, epochs)
    return Run(time.perf_counter() - start, record["test_acc"])


# ---------------------------------------------------------------------------------------------------------

class GeneratedFashion(Dataset[tuple[torch.Tensor, int]]):
    """Random uint8 images served like torchvision's FashionMNIST: PIL image -> transform."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, transform: Callable[[Image.Image], torch.Tensor]):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.data[i].numpy())  # 2-D uint8 -> mode "L", as torchvision's
        return self.transform(img), int(self.targets[i])


@dataclass(frozen=True)
class Data:
    description: str
    train_ds: Dataset[tuple[torch.Tensor, int]]  # for (a)
    test_ds: Dataset[tuple[torch.Tensor, int]]
    train: Split  # for (b) and (c)
    test: Split


def _generated(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, N_CLASSES, (n,), generator=gen)
    return x, y


def describe_data(root: Path) -> str:
    if raw_dir(root).is_dir():
        return f"real FashionMNIST from {raw_dir(root)}"
    return f"generated random data ({raw_dir(root)} not found; accuracies are chance level)"


def load_data(root: Path) -> Data:
    to_tensor = transforms.ToTensor()
    if raw_dir(root).is_dir():
        return Data(
            description=describe_data(root),
            train_ds=datasets.FashionMNIST(str(root), train=True, transform=to_tensor, download=False),
            test_ds=datasets.FashionMNIST(str(root), train=False, transform=to_tensor, download=False),
            train=load_split(root, train=True),
            test=load_split(root, train=False),
        )
    gen = torch.Generator().manual_seed(0)
    (xtr, ytr), (xte, yte) = _generated(N_TRAIN, gen), _generated(N_TEST, gen)
    return Data(
        description=describe_data(root),
        train_ds=GeneratedFashion(xtr, ytr, to_tensor),
        test_ds=GeneratedFashion(xte, yte, to_tensor),
        # the same scaling ToTensor applies, so (a), (b) and (c) see identical pixels
        train=Split(xtr.unsqueeze(1).float().div_(255.0), ytr.long()),
        test=Split(xte.unsqueeze(1).float().div_(255.0), yte.long()),
    )


def run_article(data: Data, lr: float, epochs: int, seed: int) -> Run:
    """(a) The article's ``train``/``evaluate_accuracy_gpu``, minus the plotting."""
    # Built outside the timed region, like (b) and (c)'s tensors: only the loop is compared.
    train_iter = DataLoader(data.train_ds, batch_size=BATCH_SIZE, shuffle=True)
    test_iter = DataLoader(data.test_ds, batch_size=BATCH_SIZE, shuffle=False)
    start = time.perf_counter()
    torch.manual_seed(seed)  # same initial weights as fit() with this seed
    net = lenet()
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    test_acc = 0.0
    for _ in range(epochs):
        metric = [0.0, 0.0, 0.0]  # the Accumulator: loss sum, correct, examples
        for X, y in train_iter:
            net.train()
            trainer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            with torch.no_grad():
                # float() is the Accumulator's per-batch host sync
                metric[0] += float(l * X.shape[0])
                metric[1] += float((y_hat.argmax(1) == y).sum())
                metric[2] += X.shape[0]
        net.eval()
        correct, total = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                correct += float((net(X).argmax(1) == y).sum())
                total += y.numel()
        test_acc = correct / total
    return Run(time.perf_counter() - start, test_acc)


def run_lrsched(data: Data, lr: float, epochs: int, seed: int, compile_model: bool = False) -> Run:
    """(c) lrsched's trainer with its defaults (channels_last, eval batches of 2048).

    ``compile_model`` measures ``torch.compile`` on the same loop: the trainer's forward
    is swapped for a compiled one, and the compile time is part of the run.
    """
    import lrsched.training.trainer as trainer

    plain = trainer.forward
    if compile_model:
        trainer.forward = torch.compile(plain)  # type: ignore[assignment]
    start = time.perf_counter()
    try:
        result = fit(S.Constant(lr), data.train, {"test": data.test}, seed,
                     FitOptions(epochs=epochs, batch_size=BATCH_SIZE, progress=False))
    finally:
        trainer.forward = plain
    seconds = time.perf_counter() - start
    if result.diverged:
        raise SystemExit(f"(c) {result.message}")
    return Run(seconds, result.final["test_acc"])


def warm_up() -> None:
    """One step in each memory format, so one-time kernel setup is not charged to the first run."""
    from lrsched.training.model import forward

    x = torch.rand(BATCH_SIZE, 1, 28, 28)
    for fmt in (torch.contiguous_format, torch.channels_last):
        net = lenet().to(memory_format=fmt)
        net(x.contiguous(memory_format=fmt)).sum().backward()
        forward(net, x.contiguous(memory_format=fmt)).sum().backward()


def images_per_s(run: Run, epochs: int) -> float:
    return epochs * N_TRAIN / run.seconds


def print_table(rows: list[tuple[str, list[Run]]], epochs: int) -> None:
    print(f"{'loop':<22}{'median img/s':>14}{'min-max img/s':>20}{'test acc':>10}")
    for name, runs in rows:
        rates = [images_per_s(r, epochs) for r in runs]
        acc = statistics.fmean(r.test_acc for r in runs)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(f"{name:<22}{statistics.median(rates):>14,.0f}{spread:>20}{acc:>10.4f}")


def set_threads(threads: int | None) -> None:
    """``--threads`` when given; else the study's configuration (1 thread when pinned), else torch's default."""
    if threads:
        torch.set_num_threads(threads)
    elif pinning_enabled():
        configure_torch(1)


# what a child prints after RESULT, in this order
RESULT_FIELDS = ("seconds", "isa", "threads", "test_acc", "cpu_s", "sys_s", "minor_faults", "max_rss_mib")

LOOPS = {"article": run_article, "baseline": run_baseline, "lrsched": run_lrsched,
         "compiled": lambda data, lr, epochs, seed: run_lrsched(data, lr, epochs, seed, compile_model=True)}


def one_run(loop: str, data_root: Path, lr: float, epochs: int, seed: int, threads: int | None,
            default_heap: bool = False) -> None:
    """A child process: one timed run of ``loop``, set up as that loop's program sets itself up;
    prints ``RESULT`` and the ``RESULT_FIELDS``."""
    import resource

    from lrsched.core.pinning import environment

    set_threads(threads)
    if loop in ("lrsched", "compiled") and not default_heap:
        keep_freed_memory()  # as every training stage's process does (lrsched.training.setup.load_datasets)
    data = load_data(data_root)
    warm_up()
    before = resource.getrusage(resource.RUSAGE_SELF)
    run = LOOPS[loop](data, lr, epochs, seed)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    env = environment()
    print(f"RESULT {run.seconds:.3f} {env['cpu_capability']} {env['threads']} {run.test_acc:.4f} {cpu:.3f} "
          f"{after.ru_stime - before.ru_stime:.3f} {after.ru_minflt - before.ru_minflt} {after.ru_maxrss // 1024}",
          flush=True)


def child_command(loop: str, data_root: Path, lr: float, epochs: int, seed: int, threads: int | None,
                  default_heap: bool = False) -> list[str]:
    cmd = [sys.executable, __file__, "--one-run", loop, "--data-root", str(data_root), "--lr", str(lr),
           "--epochs", str(epochs), "--seed", str(seed)]
    return cmd + (["--threads", str(threads)] if threads else []) + (["--default-heap"] if default_heap else [])


def parse_result(stdout: str) -> dict[str, str] | None:
    """A child's ``RESULT`` line, by field name (None when it printed none)."""
    lines = [line.split()[1:] for line in stdout.splitlines() if line.startswith("RESULT")]
    return dict(zip(RESULT_FIELDS, lines[0])) if lines else None


def child_result(cmd: list[str]) -> dict[str, str]:
    """Run one child; its RESULT fields by name."""
    import subprocess

    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    result = parse_result(proc.stdout)
    if proc.returncode or result is None:
        raise SystemExit(f"a benchmark run failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}")
    return result


def timed_run(loop: str, data_root: Path, lr: float, epochs: int, seed: int, threads: int | None) -> Run:
    fields = child_result(child_command(loop, data_root, lr, epochs, seed, threads))
    return Run(float(fields["seconds"]), float(fields["test_acc"]))


def heap_table(data_root: Path, epochs: int, repeats: int) -> None:
    """lrsched fit with glibc's default heap vs the kept heap (``lrsched.core.heap``), interleaved."""
    configs = [("default heap", True), ("kept heap", False)]
    columns = ("seconds", "cpu_s", "sys_s", "minor_faults", "max_rss_mib", "test_acc")
    rows: dict[str, list[list[float]]] = {name: [] for name, _ in configs}
    for rep in range(repeats):
        for name, default_heap in configs:
            fields = child_result(child_command("lrsched", data_root, 0.3, epochs, rep, None, default_heap))
            rows[name].append([float(fields[c]) for c in columns])
            print(f"  run {rep + 1} {name}: {fields['seconds']} s wall, {fields['cpu_s']} s CPU "
                  f"({fields['sys_s']} s system), {int(fields['minor_faults']):,} minor faults", flush=True)
    print(f"{'lrsched fit, ' + str(epochs) + ' epoch(s)':<24}{'wall s':>8}{'CPU s':>8}{'system s':>10}"
          f"{'minor faults':>14}{'max RSS MiB':>13}{'test acc':>10}")
    medians = {}
    for name, runs in rows.items():
        med = [statistics.median(col) for col in zip(*runs)]
        medians[name] = med
        print(f"{name:<24}{med[0]:>8.2f}{med[1]:>8.2f}{med[2]:>10.2f}{med[3]:>14,.0f}{med[4]:>13,.0f}{med[5]:>10.4f}")
    default, kept = medians["default heap"], medians["kept heap"]
    print(f"kept heap: CPU time x{kept[1] / default[1]:.2f}, wall x{kept[0] / default[0]:.2f} (medians)")


def pinning_table(data_root: Path, epochs: int, processes: int) -> None:
    import os
    import subprocess

    from lrsched.core.pinning import PINS

    def launch(n: int, pinned: bool) -> tuple[float, list[dict[str, str]]]:
        env = {k: v for k, v in os.environ.items() if k not in PINS}  # this process's own pins out
        env["LRSCHED_PIN"] = "1" if pinned else "0"  # the child pins (or not) before importing torch
        t0 = time.perf_counter()
        procs = [subprocess.Popen(child_command("lrsched", data_root, 0.3, epochs, i, None), env=env,
                                  stdout=subprocess.PIPE, text=True) for i in range(n)]
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t0
        if any(p.returncode for p in procs):
            raise SystemExit(f"a benchmark process failed: {outs}")
        rows = [result for out in outs if (result := parse_result(out)) is not None]
        return wall, rows

    # Wall time includes each process's start and data loading (as in a stage); so does the baseline.
    configs = [("(1) unpinned", 1, False), ("(2) pinned", 1, True), (f"(3) pinned x{processes}", processes, True)]
    print(f"{epochs} epoch(s) of LeNet on 60,000 images per process (+ test eval), {os.cpu_count()} CPUs")
    print(f"{'configuration':<22}{'processes':>10}{'threads':>9}{'ISA':>8}{'img/s (all)':>13}{'vs (1)':>8}")
    base = None
    ratios = []
    for name, n, pinned in configs:
        wall, rows = launch(n, pinned)
        rate = n * epochs * N_TRAIN / wall
        base = base or rate
        ratios.append(rate / base)
        print(f"{name:<22}{n:>10}{rows[0]['threads']:>9}{rows[0]['isa']:>8}{rate:>13,.0f}{rate / base:>8.2f}", flush=True)
    print(f"pinned x1: {ratios[1]:.2f}, pinned x{processes}: {ratios[2]:.2f}")


PROFILE_IMAGES = 30 * BATCH_SIZE  # 30 training steps, as in the profile


def profile_table(data: Data, lr: float, repeats: int, top: int = 12) -> None:
    """Self-CPU share per operator of 30 training steps (no evaluation), baseline vs today's fit."""
    from torch.profiler import ProfilerActivity, profile

    train = Split(data.train.x[:PROFILE_IMAGES], data.train.y[:PROFILE_IMAGES])
    loops = {"baseline (feed452)": lambda: baseline_fit(lr, train, {}, 0, 1),
             "lrsched fit": lambda: fit(S.Constant(lr), train, {}, 0, FitOptions(epochs=1, progress=False))}
    shares: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for loop in loops.values():
        loop()  # warm-up: one-time kernel set-up is not profiled
    for _ in range(repeats):  # interleaved; each loop's least disturbed (smallest total) run is kept
        for name, loop in loops.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                loop()
            events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
            total = sum(e.self_cpu_time_total for e in events)
            if total / 1e3 < totals.get(name, float("inf")):
                totals[name] = total / 1e3
                shares[name] = {e.key: e.self_cpu_time_total / total for e in events}
    names = list(loops)
    ops = sorted({op for s in shares.values() for op in s}, key=lambda op: -max(s.get(op, 0) for s in shares.values()))
    print(f"self CPU share per operator, 30 steps of batch {BATCH_SIZE}, {torch.get_num_threads()} thread(s), "
          f"least disturbed of {repeats} profiles each")
    print("| op | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for op in ops[:top]:
        print(f"| `{op}` | " + " | ".join(f"{100 * shares[n].get(op, 0):.1f} %" for n in names) + " |")
    print("| total self CPU (ms) | " + " | ".join(f"{totals[n]:.0f}" for n in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="torchvision root holding FashionMNIST/raw (default: data)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: 1; 10 with --accuracy)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each loop (default: 3)")
    parser.add_argument("--lr", type=float, default=0.3, help="constant learning rate (default: 0.3)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true",
                        help="also time (c): lrsched fit with torch.compile, compile time included")
    parser.add_argument("--accuracy", action="store_true",
                        help="compare final test accuracy (mean over --repeats seeds; 10 epochs by default)")
    parser.add_argument("--pinning", action="store_true",
                        help="instead: unpinned vs pinned vs pinned parallel processes (see above)")
    parser.add_argument("--processes", type=int, default=2, help="with --pinning: parallel processes (default 2)")
    parser.add_argument("--profile", action="store_true",
                        help="instead: self-CPU share per operator of 30 steps, baseline vs today's fit")
    parser.add_argument("--heap", action="store_true",
                        help="instead: lrsched fit with glibc's default heap vs the kept heap (lrsched.core.heap)")
    parser.add_argument("--one-run", choices=list(LOOPS), help=argparse.SUPPRESS)
    parser.add_argument("--default-heap", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        return one_run(args.one_run, args.data_root, args.lr, args.epochs or 1, args.seed, args.threads,
                       args.default_heap)
    if args.pinning:
        return pinning_table(args.data_root, args.epochs or 1, args.processes)
    if args.heap:
        return heap_table(args.data_root, args.epochs or 1, args.repeats)
    epochs = args.epochs if args.epochs is not None else (10 if args.accuracy else 1)
    repeats = args.repeats  # with --accuracy: one seed per repeat, compared as a mean over seeds
    if epochs < 1 or repeats < 1:
        parser.error("--epochs and --repeats must be at least 1")
    if args.profile:
        set_threads(args.threads)
        return profile_table(load_data(args.data_root), args.lr, repeats)
    print(f"data: {describe_data(args.data_root)}")
    threads = args.threads or (1 if pinning_enabled() else torch.get_num_threads())
    print(f"torch {torch.__version__}, {threads} thread(s); LeNet, SGD lr={args.lr}, batch {BATCH_SIZE}, "
          f"{epochs} epoch(s) with per-epoch test eval, {repeats} run(s) per loop, each in its own process")

    article: list[Run] = []
    baseline: list[Run] = []
    ours: list[Run] = []
    compiled: list[Run] = []
    for rep in range(repeats):
        # interleaved, same seed per round: all see the same load and the same initial weights
        def run(loop: str) -> Run:
            return timed_run(loop, args.data_root, args.lr, epochs, rep, args.threads)

        article.append(run("article"))
        baseline.append(run("baseline"))
        ours.append(run("lrsched"))
        if args.compile:
            compiled.append(run("compiled"))
        extra = f"  (d) {compiled[-1].seconds:.1f}s" if compiled else ""
        print(f"  run {rep + 1}: (a) {article[-1].seconds:.1f}s  (b) {baseline[-1].seconds:.1f}s  "
              f"(c) {ours[-1].seconds:.1f}s{extra}", flush=True)

    rows = [("(a) article loop", article), ("(b) baseline fit", baseline), ("(c) lrsched fit", ours)]
    print_table(rows + ([("(d) fit + compile", compiled)] if compiled else []), epochs)
    if args.accuracy:
        # single runs differ by ~3 points from initialisation and data order: compare means over seeds
        acc_a = [r.test_acc for r in article]
        acc_b = [r.test_acc for r in ours]  # (c): today's fit
        spread = (lambda xs: statistics.pstdev(xs) if len(xs) > 1 else 0.0)  # noqa: E731
        diff = 100 * (statistics.fmean(acc_b) - statistics.fmean(acc_a))
        print(f"final test acc after {epochs} epochs, mean ± std over {repeats} seed(s): "
              f"(a) {statistics.fmean(acc_a):.4f} ± {spread(acc_a):.4f}  "
              f"(c) {statistics.fmean(acc_b):.4f} ± {spread(acc_b):.4f}  (c)-(a) {diff:+.2f} points")
    rate_a = statistics.median(images_per_s(r, epochs) for r in article)
    rate_base = statistics.median(images_per_s(r, epochs) for r in baseline)
    rate_c = statistics.median(images_per_s(r, epochs) for r in ours)
    print(f"speedup vs article: {rate_c / rate_a:.2f}")
    print(f"speedup vs baseline: {rate_c / rate_base:.2f}")


if __name__ == "__main__":
    main()
