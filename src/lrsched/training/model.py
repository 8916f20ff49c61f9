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

In channels_last (the trainer's default), conv1 runs with 8 output channels instead
of 6: its weight and bias are padded with two zero filters (``F.pad``, so the real
gradients flow back through the pad), and only the first 6 channels of the pooled
map go on (``_first_channels``). A channels_last row of 6 floats is shorter than an
AVX2 vector: oneDNN's kernel and ATen's max-pool both fall back to masked or scalar
code on it, and with 8 channels they do not (conv1 forward and pool1 ~2x faster).
Each output channel of a convolution is computed on its own, so the 6 real channels,
their gradients and every weight stay bit-identical (a test checks).
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


PAD_CHANNELS = 8  # conv1's 6 output channels, padded to one AVX2 vector of floats


class _FirstChannels(torch.autograd.Function):
    """``x[:, :c]`` as a channels_last copy, with a channels_last gradient.

    Autograd's own slice backward builds a contiguous (NCHW) zero gradient; the pool's
    and conv1's backward would then transpose it back to channels_last (~5 ms a step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, c: int) -> torch.Tensor:  # type: ignore[override]
        ctx.shape = x.shape
        return x[:, :c].contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        full = grad.new_zeros(ctx.shape).contiguous(memory_format=torch.channels_last)
        full[:, :grad.shape[1]] = grad
        return full, None


def _conv1_pool(conv1: nn.Conv2d, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """max_pool(conv1(x)), before its ReLU."""
    if not channels_last:
        return F.max_pool2d(F.conv2d(x, conv1.weight, conv1.bias, padding=2), 2, 2)
    pad = PAD_CHANNELS - conv1.out_channels
    weight = F.pad(conv1.weight, (0, 0, 0, 0, 0, 0, 0, pad)).contiguous(memory_format=torch.channels_last)
    bias = F.pad(conv1.bias, (0, pad))
    pooled = F.max_pool2d(F.conv2d(x, weight, bias, padding=2), 2, 2)
    return _FirstChannels.apply(pooled, conv1.out_channels)


def forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for a ``lenet()``: the same numbers, bit for bit, with less work."""
    conv1, conv2, fc1, fc2, fc3 = net[0], net[3], net[7], net[9], net[11]
    # conv2's weight tells the model's memory format (conv1's, with one input channel, is ambiguous)
    x = _conv1_pool(conv1, x, conv2.weight.is_contiguous(memory_format=torch.channels_last)).relu_()
    x = F.max_pool2d(F.conv2d(x, conv2.weight, conv2.bias), 2, 2).relu_()
    x = F.linear(x.flatten(1), fc1.weight, fc1.bias).relu_()
    x = F.linear(x, fc2.weight, fc2.bias).relu_()
    return F.linear(x, fc3.weight, fc3.bias)
