"""The Fast Weight Memory's acting form: one step on a low-rank memory.

Acting in an environment is one call per step, where a chunk has one step and F would be formed
and read at every step. :func:`fwm_step` instead carries the unrolled form itself from call to
call (:class:`LowRankMemory`: ``F_0``, ``a`` and the cached ``k1, k2, u, w`` of the steps since
F was last formed), so a step costs ``O(n d)`` per sample for its ``n`` cached steps and never
touches F while every row has been reset since (an episode start everywhere); every
``max_rank`` steps the cache is folded into F.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as nnf  # (F is the memory, as in the paper)

from memory.functional import host_shortcuts
from memory.fwm.common import CHUNK, _clip, _combine, _dots, _key, _weighted_sum


class LowRankMemory(NamedTuple):
    """The memory in the unrolled form of the chunk-parallel scan, carried from call to call::

        F = scale * base + sum_i w_i vec(k1_i (x) k2_i) u_i^T      (i over the n cached steps)

    so that a step reads and writes it in ``O(n d)`` per sample instead of passes over the
    ``dk x d`` matrix F. Every tensor is batch-first: ``base [B, dk, d]``, ``scale [B]``,
    ``k1, k2, u [B, n, d]`` (the cached steps' write keys and updates), ``w [B, n]``,
    ``norm_sq [B]`` = ||F||^2. :func:`fwm_step` folds the cache into ``base`` every
    ``max_rank`` steps; :func:`fold` gives the plain F.
    """

    base: torch.Tensor
    scale: torch.Tensor
    k1: torch.Tensor
    k2: torch.Tensor
    u: torch.Tensor
    w: torch.Tensor
    norm_sq: torch.Tensor


def low_rank_memory(state: torch.Tensor) -> LowRankMemory:
    """``F [B, dk, d]`` (norm <= 1) as a :class:`LowRankMemory` with an empty cache. One pass
    over F for its norm. Rows of a zero F that needs no gradient get ``scale = 0``, so that a
    fresh memory is never read."""
    norm_sq = torch.linalg.vector_norm(state.flatten(1), dim=1).square()  # (B,)
    scale = norm_sq.new_ones(state.shape[0])
    if not state.requires_grad:
        scale = (norm_sq > 0).to(state.dtype)
    return _with_empty_cache(state, scale, norm_sq)


def _with_empty_cache(base, scale, norm_sq) -> LowRankMemory:
    """``F = scale * base`` as a :class:`LowRankMemory` with no cached steps."""
    batch, _, d = base.shape
    empty = base.new_zeros(batch, 0, d)
    return LowRankMemory(base, scale, empty, empty, empty, base.new_zeros(batch, 0), norm_sq)


def fold(memory: LowRankMemory, key_mode: str) -> torch.Tensor:
    """The plain memory ``F = scale * base + K^T diag(w) U``, ``[B, dk, d]``, the keys being
    ``make_key(k1_i, k2_i, key_mode)``."""
    base, scale, k1, k2, u, w, _ = memory
    if k1.shape[1] == 0:
        return scale[:, None, None] * base
    keys = _key(k1, k2, key_mode)  # (B, n, dk)
    # the base is gone (reset in every row): no pass over it; a host decision, so on the CPU
    # only (on a device the product with scale 0 gives the same)
    if host_shortcuts(scale) and not bool(scale.any()):
        return torch.bmm(keys.transpose(1, 2), w[..., None] * u)  # (B, dk, d)
    return torch.baddbmm(scale[:, None, None] * base, keys.transpose(1, 2), w[..., None] * u)


def fwm_step(memory: LowRankMemory, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
             beta: torch.Tensor, n0: torch.Tensor, e: torch.Tensor,
             reset: torch.Tensor | None = None, key_mode: str = "outer",
             update_scale: float = 1.0, eps: float = 1e-5, max_rank: int = CHUNK
             ) -> tuple[torch.Tensor, LowRankMemory]:
    """One write and N_r reads (eqs. (3)-(7)) on a :class:`LowRankMemory`: the per-step path for
    acting in an environment. Equal to one step of :func:`fwm_scan` (tests hold it to 1e-10 in
    float64). It never touches ``base`` while every row has been reset since the last fold (an
    episode start everywhere, as in the paper's meta-RL setting); otherwise it makes N_r passes
    over it (one for ``k^T base`` and the first read together, one per further read). A new
    ``[B, dk, d]`` tensor is made only every ``max_rank`` steps, when the cache is folded into
    ``base`` (:func:`fwm_scan` runs a one-step chunk as a call with ``max_rank=1``).

    Args:
        memory: the memory before the step.
        k1: first write key, ``[B, d]``.
        k2: second write key, ``[B, d]``.
        v: write value, ``[B, d]``.
        beta: write strength, ``[B]``.
        n0: first read key, ``[B, d]``, or None (write only: no reads, and the returned
            read is zero).
        e: further read keys, ``[B, N_r, d]``.
        reset: ``[B]`` bool, F zeroed before the step.
        key_mode: as in :func:`fwm_scan`.
        update_scale: as in :func:`fwm_scan`.
        eps: as in :func:`fwm_scan`.
        max_rank: cached steps after which the cache is folded into ``base``.

    Returns:
        ``(read [B, d], memory after the step)``.
    """
    base, scale, c1, c2, cu, w, norm_sq = memory
    batch, d = v.shape
    # The shortcuts below are host decisions (a sync per step): on the CPU they skip work; on a
    # device every step takes the masked path, which computes the same (zero weights, scale 0).
    on_cpu = host_shortcuts(v)
    if reset is not None:
        if on_cpu and bool(reset.all()):  # nothing before is remembered: drop the cache too
            zeros = v.new_zeros(batch)
            base, scale, c1, c2, cu, w, norm_sq = _with_empty_cache(base, zeros, zeros)
        elif not on_cpu or bool(reset.any()):
            keep = (~reset).to(v.dtype)  # (B,)
            scale, w, norm_sq = scale * keep, w * keep[:, None], norm_sq * keep
    use_base = not on_cpu or bool(scale.any())
    c = beta * update_scale  # (B,)
    v_old = read_base = None  # k^T F and q1^T base
    if use_base:  # k^T base and (where reads are made) q1^T base in one pass over base
        queries = [_key(k1, k2, key_mode)] + ([] if n0 is None else [_key(n0, e[:, 0], key_mode)])
        both = torch.bmm(torch.stack(queries, 1), base)  # (B, 1 or 2, d)
        v_old = scale[:, None] * both[:, 0]
        read_base = None if n0 is None else both[:, 1]
    cached = c1.shape[1]
    c1, c2 = torch.cat([c1, k1[:, None]], 1), torch.cat([c2, k2[:, None]], 1)  # (B, n + 1, d)
    # a key dot is a product (outer keys) or sum (concatenated keys) of two factor dots; the
    # second factors of the write's and of every read's dots do not depend on the chained
    # reads, so one batched product forms them all: (k2, e_1 .. e_Nr) . c2_j
    second = None
    if cached or n0 is not None:
        lefts = k2[:, None] if n0 is None else torch.cat([k2[:, None], e], 1)  # (B, 1 + N_r, d)
        second = torch.bmm(lefts, c2.transpose(1, 2))  # (B, 1 + N_r, n + 1)
    if cached:  # + sum_i w_i (k_i . k) u_i
        first = _dots(k1, c1[:, :cached])  # (B, n)
        dots = _combine(first, second[:, 0, :cached], key_mode)
        past = _weighted_sum(w * dots, cu)  # (B, d)
        v_old = past if v_old is None else v_old + past
    u = v if v_old is None else v - v_old  # eq. (3)
    k1_sq, k2_sq = k1.square().sum(-1), k2.square().sum(-1)  # (B,)
    key_sq = k1_sq * k2_sq if key_mode == "outer" else k1_sq + k2_sq  # |key|^2
    s, norm_sq, _ = _clip(norm_sq, c, key_sq, u, v_old)  # eq. (4)
    w = torch.cat([w, c[:, None]], 1) * s[:, None]  # (B, n + 1)
    scale = scale * s
    cu = torch.cat([cu, u[:, None]], 1)
    n = n0
    # eq. (7): q_i^T F = scale q_i^T base + sum_j w_j (q_i . k_j) u_j
    for i in range(0 if n0 is None else e.shape[1]):
        first = _dots(n, c1)  # (B, n + 1)
        out = _weighted_sum(w * _combine(first, second[:, 1 + i], key_mode), cu)  # (B, d)
        if use_base:
            from_base = read_base if i == 0 else \
                torch.bmm(_key(n, e[:, i], key_mode)[:, None], base).squeeze(1)
            out = out + scale[:, None] * from_base
        n = nnf.layer_norm(out, (d,), eps=eps)
    if n is None:
        n = v.new_zeros(batch, d)
    memory = LowRankMemory(base, scale, c1, c2, cu, w, norm_sq)
    if c1.shape[1] >= max_rank:
        memory = _with_empty_cache(fold(memory, key_mode), v.new_ones(batch), norm_sq)
    return n, memory
