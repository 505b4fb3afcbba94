"""Small functions every memory core may use."""

from __future__ import annotations

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
