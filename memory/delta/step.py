"""One step of the fast-weight rules, for acting: the same update as the references of
:mod:`memory.delta.naive`, on a batch of rows, without a host decision (the reset is a
multiplication), so that it runs on a device without synchronising."""

from __future__ import annotations

import torch


def fast_weight_step(S: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     beta: torch.Tensor | None = None, log_alpha: torch.Tensor | None = None,
                     reset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``S [B, H, dv, dk]``, ``q, k [B, H, dk]``, ``v [B, H, dv]``, ``beta, log_alpha [B, H]``
    (``beta`` None: the sum rule; ``log_alpha`` None: no decay), ``reset [B]`` ->
    ``(out [B, H, dv], S_t)``."""
    if reset is not None:
        S = S * (~reset).to(S.dtype)[:, None, None, None]
    if log_alpha is not None:
        S = torch.exp(log_alpha)[..., None, None] * S
    if beta is None:
        u = v
    else:
        u = beta[..., None] * (v - (S @ k[..., None])[..., 0])
    S = S + u[..., :, None] * k[..., None, :]
    return (S @ q[..., None])[..., 0], S
