"""Plain-loop reference of the Fast Weight Memory (paper section 3, eqs. (3)-(8)).

Written for reading, not for speed: one sample and one step at a time, every equation as printed,
the norm of F computed directly. Every fast path in :mod:`memory.fwm.chunk` is tested against this
function (outputs and gradients, in float64).

Shapes: T time, B batch, d = d_FWM, dk = d * d (tensor-product keys) or 2 * d (concatenated
keys), N_r reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_key(a: torch.Tensor, b: torch.Tensor, key_mode: str = "outer") -> torch.Tensor:
    """vec(a (x) b) (``"outer"``, the paper) or [a; b] (``"concat"``, appendix E), for vectors
    ``[..., d]``; returns ``[..., dk]``."""
    if key_mode == "outer":
        return (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)  # (..., d*d)
    if key_mode == "concat":
        return torch.cat([a, b], dim=-1)  # (..., 2d)
    raise ValueError(f"key_mode must be 'outer' or 'concat', got {key_mode!r}")


def fwm_scan_reference(state: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
                       beta: torch.Tensor, n0: torch.Tensor, e: torch.Tensor,
                       reset: torch.Tensor | None = None, read_mask: torch.Tensor | None = None,
                       key_mode: str = "outer", update_scale: float = 1.0, eps: float = 1e-5,
                       return_queries: bool = False) -> tuple[torch.Tensor, ...]:
    """Write then read at every step, one sample at a time.

    Args:
        state: F_0, ``[B, dk, d]`` (F maps a key of size dk to a value of size d).
        k1: first write key, ``[T, B, d]``.
        k2: second write key, ``[T, B, d]``.
        v: write value, ``[T, B, d]``.
        beta: write strength in [0, 1], ``[T, B]``; 0 means "do not write" (padding).
        n0: first read key, ``[T, B, d]``.
        e: further read keys, ``[T, B, N_r, d]``.
        reset: ``[T, B]`` bool; where True, F is zeroed before the step's write.
        read_mask: ``[T, B]`` bool; reads happen only where True (zeros elsewhere).
        key_mode: ``"outer"`` or ``"concat"``.
        update_scale: multiplies beta in the update (the authors' code uses 1 / d).
        eps: layer-norm epsilon.
        return_queries: also return every read query (for inspection, paper figure 3).

    Returns:
        ``(reads [T, B, d], F_T [B, dk, d])``, and with ``return_queries`` the queries
        ``[T, B, N_r, dk]`` as a third entry (zeros where nothing was read).
    """
    steps, batch = k1.shape[:2]
    finals, outputs = [], []
    queries = torch.zeros(steps, batch, e.shape[2], state.shape[1], dtype=state.dtype,
                          device=state.device)  # (T, B, N_r, dk)
    for b in range(batch):
        fw = state[b]  # (dk, d)
        out_b = []
        for t in range(steps):
            if reset is not None and reset[t, b]:
                fw = torch.zeros_like(fw)
            key = make_key(k1[t, b], k2[t, b], key_mode)  # (dk,)
            v_old = key @ fw  # retrieve the value stored under the key, (d,)
            fw = fw + beta[t, b] * update_scale * torch.outer(key, v[t, b] - v_old)  # eq. (3)
            fw = fw / torch.clamp(torch.linalg.norm(fw), min=1.0)  # eq. (4)
            if read_mask is not None and not read_mask[t, b]:
                out_b.append(torch.zeros_like(v[t, b]))
                continue
            n = n0[t, b]  # eq. (5)
            for i in range(e.shape[2]):  # eqs. (6)-(7): chained reads
                query = make_key(n, e[t, b, i], key_mode)
                if return_queries:
                    queries[t, b, i] = query.detach()
                n = F.layer_norm(query @ fw, (fw.shape[1],), eps=eps)
            out_b.append(n)
        outputs.append(torch.stack(out_b))
        finals.append(fw)
    if return_queries:
        return torch.stack(outputs, dim=1), torch.stack(finals), queries
    return torch.stack(outputs, dim=1), torch.stack(finals)
