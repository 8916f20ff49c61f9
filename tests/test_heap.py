"""A training process keeps freed memory: steps stop page-faulting, and no number changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import env, run

CHILD = """
import hashlib, json, resource, sys
import lrsched
from lrsched.core.heap import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else False
import torch
import torch.nn.functional as F
from lrsched.training.model import forward, lenet
torch.set_num_threads(1)
torch.manual_seed(0)
net = lenet().to(memory_format=torch.channels_last)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
gen = torch.Generator().manual_seed(1)
x = torch.rand(256, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (256,), generator=gen)
test = torch.rand(2048, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
def step():  # a training step, then an evaluation batch as large as the trainer's
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(forward(net, x), y).backward()
    opt.step()
    with torch.inference_mode():
        forward(net, test)
for _ in range(5):  # the heap grows to its peak
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest()
print(json.dumps({"kept": kept, "faults_per_step": faults, "weights": digest}))
"""


def train_steps(tmp_path: Path, heap: str) -> dict:
    out = run([sys.executable, "-c", CHILD, heap], cwd=tmp_path, environ=env(tmp_path), timeout=120).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_kept_heap_stops_the_steps_page_faults_and_trains_bit_identical(tmp_path: Path) -> None:
    default = train_steps(tmp_path, "default")
    kept = train_steps(tmp_path, "kept")
    assert kept["kept"] is True
    # an evaluation batch of 2048 frees and reallocates blocks of ~50 MB, above the largest size glibc
    # serves from its heap by default: each comes back as fresh pages; kept in the heap, they are reused
    assert default["faults_per_step"] > 100
    assert kept["faults_per_step"] < default["faults_per_step"] / 10
    assert kept["weights"] == default["weights"]
