"""Small functions every memory core may use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def tanh(x: torch.Tensor) -> torch.Tensor:
    """``tanh(x)`` computed as ``2 sigmoid(2x) - 1``: the same function, equal to ``torch.tanh``
    within a few machine epsilons, and so is its gradient. Faster on CPUs where torch's tanh
    kernel is several times slower than its sigmoid kernel (measured in docs/journal.md,
    "A faster machine ... (2026-11-30)"); about as fast elsewhere. With gradients, the backward
    is torch's fused ``tanh_backward`` on the saved output, ``grad (1 - y^2)``: one kernel
    where autograd through the sigmoid form takes three."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _Tanh(torch.autograd.Function):
    """:func:`tanh` with its gradient from the output (``d tanh / dx = 1 - tanh^2``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


_device_path = False


def host_shortcuts(x: torch.Tensor) -> bool:
    """Whether a core may take a shortcut that needs a host decision (``bool(tensor)``, a list
    of the steps where rows reset) for tensors on ``x``'s device: on the CPU it skips work and
    costs nothing; on a device it would stop the host for the device at every step, so there
    the cores take the masked path, which computes the same (tests hold the two equal, with
    :func:`device_path`)."""
    return x.device.type == "cpu" and not _device_path


@contextlib.contextmanager
def device_path() -> Iterator[None]:
    """Within the block every core takes its device path on the CPU too (for tests)."""
    global _device_path
    previous, _device_path = _device_path, True
    try:
        yield
    finally:
        _device_path = previous
