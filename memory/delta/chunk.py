"""The chunk-parallel training form of the fast-weight rules: a sequence in chunks of C steps,
each chunk in a few matrix products, the memory carried from chunk to chunk. It computes what
the plain loops of :mod:`memory.delta.naive` compute (a test holds it to them in outputs and
gradients, with resets inside the sequence and several chunk sizes).

Inside a chunk, with ``S_0`` the memory at its start, every rule's memory after step t is
``S_t = g_t S_0 + sum_{j<=t} G_tj u_j k_j^T`` (``G_tj`` the decay from step j to step t,
``g_t`` from the chunk's start to step t; both 0 across a reset, 1 without decay):

* sum rule (linear transformer): ``u_t = v_t``;
* delta and gated delta rule: ``u_t = beta_t (v_t - vbar_t)`` with the prediction
  ``vbar_t = g_t S_0 k_t + sum_{j<t} G_tj (k_j . k_t) u_j``, so the chunk's pseudo-values solve
  the unit lower-triangular system ``(I + diag(beta) tril(G * K K^T, -1)) U =
  diag(beta) (V - diag(g) K S_0^T)`` (the WY form of Yang et al., NeurIPS 2024, "Parallelizing
  Linear Transformers with the Delta Rule over Sequence Length", and its gated form in Gated
  DeltaNet, section 3.3);

and then ``O = diag(g) Q S_0^T + (tril(G * Q K^T)) U``, ``S_C = g_C S_0 + U^T diag(G_Cj) K``.
"""

from __future__ import annotations

import torch

#: Steps per chunk: long enough for matrix products to pay, short enough that the triangular
#: solve (C x C per head) stays cheap.
CHUNK = 32


def chunk_fast_weights(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       beta: torch.Tensor | None = None, log_alpha: torch.Tensor | None = None,
                       state: torch.Tensor | None = None, reset: torch.Tensor | None = None,
                       chunk_size: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """``q, k [T, B, H, dk]``, ``v [T, B, H, dv]``, ``beta, log_alpha [T, B, H]`` (``beta``
    None: the sum rule; ``log_alpha`` None: no decay), ``state [B, H, dv, dk]`` (None: empty),
    ``reset [T, B]`` -> ``(out [T, B, H, dv], S_T)``."""
    T, B, H, dk = q.shape
    dv = v.shape[-1]
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    # the chunks as views that split() makes: their backward is one cat, where slicing each
    # chunk out would allocate and zero a full-size gradient per chunk
    def chunks(x: torch.Tensor | None, dim: int) -> list:
        return [None] * -(-T // chunk_size) if x is None else x.split(chunk_size, dim)

    Qs, Ks, Vs = (chunks(x.permute(1, 2, 0, 3), 2) for x in (q, k, v))  # [B, H, C, d] each
    betas = chunks(None if beta is None else beta.permute(1, 2, 0), 2)  # [B, H, C]
    alphas = chunks(None if log_alpha is None else log_alpha.permute(1, 2, 0), 2)
    resets = chunks(None if reset is None else reset.t(), 1)  # [B, C]
    S = q.new_zeros(B, H, dv, dk) if state is None else state
    outs = []
    for Q, K, V, b, la, r in zip(Qs, Ks, Vs, betas, alphas, resets, strict=True):
        n = Q.shape[2]
        idx = torch.arange(n, device=q.device)
        valid = idx[:, None] >= idx[None, :]  # [n, n]: step j reaches step i >= j
        start = None  # [B, H or 1, n]: whether S_0 still reaches step i
        if r is not None:
            seg = torch.cumsum(r.to(torch.int64), dim=-1)[:, None]  # [B, 1, n]
            valid = valid & (seg[..., :, None] == seg[..., None, :])  # no reset in (j, i]
            start = seg == 0  # no reset in [0, i]
        if la is not None:
            c = torch.cumsum(la, dim=-1)  # [B, H, n]
            # -inf where step j does not reach step i: exp() gives the 0, and the positive
            # differences above the diagonal never overflow
            decay = torch.exp((c[..., :, None] - c[..., None, :]).masked_fill(~valid, -torch.inf))
            g = torch.exp(c) if start is None else torch.exp(c) * start
        else:
            decay = valid.to(q.dtype).expand(B, H, n, n)
            g = None if start is None else start.to(q.dtype).expand(B, H, n)
        from_start = Q @ S.transpose(-1, -2)  # [B, H, n, dv]: S_0 q_i
        if b is None:
            U = V
        else:
            k_s0 = K @ S.transpose(-1, -2)  # S_0 k_i
            rhs = b[..., None] * (V - (k_s0 if g is None else g[..., None] * k_s0))
            strict = torch.tril(decay * (K @ K.transpose(-1, -2)), diagonal=-1)
            system = b[..., None] * strict + torch.eye(n, dtype=q.dtype, device=q.device)
            U = torch.linalg.solve_triangular(system, rhs, upper=False, unitriangular=True)
        scores = decay * (Q @ K.transpose(-1, -2))  # zero above the diagonal and across resets
        O = scores @ U + (from_start if g is None else g[..., None] * from_start)
        last = decay[..., n - 1, :]  # [B, H, n]: G_{C-1, j}
        S = (S if g is None else g[..., n - 1, None, None] * S) \
            + (U * last[..., None]).transpose(-1, -2) @ K
        outs.append(O)
    out = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
    return out.permute(2, 0, 1, 3), S
