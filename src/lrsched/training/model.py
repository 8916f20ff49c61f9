"""The article's LeNet (61,706 parameters, PyTorch default init), and a faster forward of it.

``lenet()`` is the article's ``nn.Sequential``: what is initialised (same modules in
the same order, so ``torch.manual_seed(s)`` gives the same weights), saved and logged.
``forward(net, x)`` computes the same function with the same parameters, faster on
a CPU (``docs/performance.md``): each max-pool runs before its ReLU, and every ReLU
is in place. Max-pooling and ReLU commute exactly (ReLU is monotone, so the window's
maximum and the position it came from are the same either way), so the outputs and
every gradient are bit-identical to the article's order (a test checks); the ReLUs
then touch a quarter of the conv outputs, and their backward a quarter of the
gradients. In place is safe: neither max-pool's nor addmm's backward reads its output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lenet() -> nn.Sequential:
    # (N, 1, 28, 28) -> conv pad 2 -> (N, 6, 28, 28) -> pool -> (N, 6, 14, 14)
    # -> conv -> (N, 16, 10, 10) -> pool -> (N, 16, 5, 5) -> 400 features
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


def forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for a ``lenet()``: the same numbers, bit for bit, with less work."""
    conv1, conv2, fc1, fc2, fc3 = net[0], net[3], net[7], net[9], net[11]
    x = F.max_pool2d(F.conv2d(x, conv1.weight, conv1.bias, padding=2), 2, 2).relu_()
    x = F.max_pool2d(F.conv2d(x, conv2.weight, conv2.bias), 2, 2).relu_()
    x = F.linear(x.flatten(1), fc1.weight, fc1.bias).relu_()
    x = F.linear(x, fc2.weight, fc2.bias).relu_()
    return F.linear(x, fc3.weight, fc3.bias)
