"""The article's LeNet (61,706 parameters, PyTorch default init)."""

from __future__ import annotations

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
