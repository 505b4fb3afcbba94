"""Fast Weight Memory ops: pure tensor functions, batched over B, looped over T.

Shapes: T time, B batch, d = d_FWM, dk = d * d (tensor-product keys, the paper) or 2 * d
(concatenated keys, appendix E), N_r reads. Sequences are time-major ``[T, B, ...]``; the memory
``F`` is batch-first ``[B, dk, d]``: it maps a key of size dk to a value of size d.

:func:`fwm_scan` computes exactly what :func:`agents.fwm.naive.fwm_scan_reference` computes
(tests hold them equal, gradients included, to 1e-10 in float64), faster:

* every projection-sized product (keys, first queries, key norms) is formed for all T steps at
  once before the loop;
* per step, ONE batched matmul over F yields both the value stored under the write key and the
  first read ``q1^T F_{t-1}``; the first read of the updated memory then follows without another
  pass over F, by the rank-1 identity ``q1^T F_t = (q1^T F_{t-1} + c (q1 . k) u) / m``;
* the norm of F is carried as a scalar, ``||G||^2 = ||F||^2 + 2 c v_old . u + c^2 |k|^2 |u|^2``
  for ``G = F + c k u^T`` (REFERENCE.md), so the clip of eq. (4) never needs a pass over F to
  find its factor; and F itself is carried as ``a G`` with a per-sample scalar ``a``, so the
  clip only rescales ``a`` and a step makes two passes over the memory (one batched read, one
  rank-1 update) instead of three; ``a`` is folded into G every :data:`FOLD` steps, which
  bounds how small it can get in float32;
* only the rows that need reads (``read_mask``) do the chained reads 2..N_r;
* padding is ``beta = 0`` (the state is left exactly as it was; no blending of whole states);
* per-step views are made once (``unbind``), so the backward of step t never touches the other
  steps' gradients.

Backward memory is linear in T (autograd keeps about three copies of F per step: ~2.2 GB peak
for B=32, T=200, d=32 in ``scripts/bench_fwm.py``). ``chunk_size`` trades that for a recompute
with ``torch.utils.checkpoint``; on the 2-core CPU it measured slower and no smaller in peak RSS,
so it is off by default. The next step for speed is a hand-written backward (a custom
``autograd.Function``) that slots in here behind the same signature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from agents.fwm.naive import make_key

#: Steps between the folds of the scalar multiplier into the memory (see ``run`` below).
FOLD = 8


def fwm_scan(state: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
             beta: torch.Tensor, n0: torch.Tensor, e: torch.Tensor,
             reset: torch.Tensor | None = None, read_mask: torch.Tensor | None = None,
             key_mode: str = "outer", update_scale: float = 1.0, eps: float = 1e-5,
             chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Write then read at every step (eqs. (3)-(7)); arguments as in ``fwm_scan_reference``.

    Args:
        state: F_0, ``[B, dk, d]``, with Frobenius norm <= 1 (as every state this op returns).
        k1, k2, v: ``[T, B, d]``. beta: ``[T, B]`` in [0, 1], 0 = no write (padding).
        n0: ``[T, B, d]``; e: ``[T, B, N_r, d]``.
        reset: ``[T, B]`` bool, F zeroed before the step. read_mask: ``[T, B]`` bool.
        key_mode: ``"outer"`` (the paper) or ``"concat"`` (appendix E).
        update_scale: multiplies beta in eq. (3) (the authors' code: 1 / d).
        eps: layer-norm epsilon.
        chunk_size: steps per checkpointed chunk when gradients are needed (None, the
            default: no checkpointing, autograd keeps ~3 copies of F per step).

    Returns:
        ``(reads [T, B, d], F_T [B, dk, d])``; reads are zero where ``read_mask`` is False.
    """
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or a positive integer, got {chunk_size!r}")
    steps, batch, d = v.shape
    needs_grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (state, k1, k2, v, beta, n0, e))
    n_reads = e.shape[2]
    key = make_key(k1, k2, key_mode)  # (T, B, dk)
    q1 = make_key(n0, e[:, :, 0], key_mode)  # (T, B, dk): the first query needs no memory
    key_q1 = torch.stack([key, q1], dim=2)  # (T, B, 2, dk)
    coef = beta * update_scale  # (T, B)
    key_sq = key.square().sum(-1)  # (T, B): |k|^2
    q1_key = (q1 * key).sum(-1)  # (T, B): q1 . k
    # Per-step views made once: indexing x[t] inside the loop would make every step's backward
    # zero-fill a whole [T, B, ...] gradient (O(T^2) memory traffic); unbind's backward is one
    # stack.
    key_q1, key, v, e = key_q1.unbind(0), key.unbind(0), v.unbind(0), e.unbind(0)
    coef, key_sq, q1_key = coef.unbind(0), key_sq.unbind(0), q1_key.unbind(0)
    # Python-side bookkeeping once per call (one host sync), none per step
    reset_rows = _rows_per_step(reset, steps)
    read_rows = _rows_per_step(read_mask, steps, default_all=True)

    def zeros_bd() -> torch.Tensor:
        return state.new_zeros(batch, d)

    def run(fw: torch.Tensor, norm_sq: torch.Tensor, t0: int, t1: int):
        # The memory is carried as F = a G with a per-sample scalar a, so the clip of eq. (4)
        # only rescales a: the step costs one read pass and one rank-1 update pass over G, and
        # G absorbs a (one more pass) only every FOLD steps, which bounds how small a gets.
        scale = state.new_ones(batch)  # a, (B,)
        outs = []
        for t in range(t0, t1):
            if reset_rows[t] is not None:  # episode start: F_t-1 := 0 in those rows
                keep = torch.ones(batch, dtype=fw.dtype, device=fw.device)
                keep = keep.index_fill(0, reset_rows[t], 0.0)
                fw = fw * keep[:, None, None]
                norm_sq = norm_sq * keep
            both = torch.bmm(key_q1[t], fw) * scale[:, None, None]  # (B, 2, d): k^T F, q1^T F
            v_old, q1_f = both[:, 0], both[:, 1]  # (B, d) each
            u = v[t] - v_old  # (B, d)
            c = coef[t]  # (B,)
            # eq. (4) via the scalar norm recurrence; max(1, ||G||) = sqrt(max(1, ||G||^2))
            g_sq = norm_sq + 2 * c * (v_old * u).sum(-1) + c.square() * key_sq[t] * u.square().sum(-1)
            # a step that does not write (beta = 0: padding) leaves F exactly as it was, even
            # when rounding puts its norm a hair above 1
            inv_m = torch.where(c == 0, 1.0, torch.rsqrt(g_sq.clamp(min=1.0)))  # (B,)
            # eq. (3) on G: F + c k u^T = a (G + (c / a) k u^T)
            fw = torch.baddbmm(fw, ((c / scale)[:, None] * key[t]).unsqueeze(2), u.unsqueeze(1))
            scale = scale * inv_m  # eq. (4)
            norm_sq = g_sq * inv_m.square()
            if (t + 1) % FOLD == 0:
                fw, scale = fw * scale[:, None, None], torch.ones_like(scale)
            rows = read_rows[t]
            if rows is not None and rows.numel() == 0:
                outs.append(zeros_bd())
                continue
            # eq. (7), i = 1, from the pass above: q1^T F_t = (q1^T F_t-1 + c (q1.k) u) / m
            n = (q1_f + (c * q1_key[t])[:, None] * u) * inv_m[:, None]  # (B, d)
            n = F.layer_norm(n, (d,), eps=eps)
            if n_reads > 1:
                sub_g = fw if rows is None else fw.index_select(0, rows)  # (b, dk, d)
                sub_a = scale if rows is None else scale.index_select(0, rows)  # (b,)
                n_sub = n if rows is None else n.index_select(0, rows)  # (b, d)
                e_sub = e[t] if rows is None else e[t].index_select(0, rows)  # (b, N_r, d)
                for i in range(1, n_reads):  # eq. (7), i >= 2: chained reads
                    query = make_key(n_sub, e_sub[:, i], key_mode)  # (b, dk)
                    n_sub = torch.bmm(query.unsqueeze(1), sub_g).squeeze(1) * sub_a[:, None]
                    n_sub = F.layer_norm(n_sub, (d,), eps=eps)
                n = n_sub if rows is None else zeros_bd().index_copy(0, rows, n_sub)
            elif rows is not None:
                n = zeros_bd().index_copy(0, rows, n.index_select(0, rows))
            outs.append(n)
        if t1 % FOLD:  # F = a G at the end (a = 1 right after a fold)
            fw = fw * scale[:, None, None]
        return torch.stack(outs), fw, norm_sq

    norm_sq = state.square().sum((1, 2))  # (B,): the only full pass for the norm, once per call
    fw = state
    if not needs_grad or chunk_size is None or chunk_size >= steps:
        reads, fw, _ = run(fw, norm_sq, 0, steps)
        return reads, fw
    chunks = []
    for t0 in range(0, steps, chunk_size):
        t1 = min(t0 + chunk_size, steps)
        out, fw, norm_sq = checkpoint(run, fw, norm_sq, t0, t1, use_reentrant=False)
        chunks.append(out)
    return torch.cat(chunks), fw


def _rows_per_step(mask: torch.Tensor | None, steps: int, default_all: bool = False
                   ) -> list[torch.Tensor | None]:
    """For a ``[T, B]`` bool mask: per step, None (no row / all rows, see below) or the index
    tensor of the rows where the mask is True. For ``reset`` (``default_all=False``) None means
    "no row"; for ``read_mask`` (``default_all=True``) None means "all rows"."""
    if mask is None:
        return [None] * steps
    if mask.shape[0] != steps or mask.dtype != torch.bool:
        raise ValueError(f"masks must be bool [T={steps}, B], got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    cpu = mask.cpu()
    counts = cpu.sum(1).tolist()
    batch = cpu.shape[1]
    rows: list[torch.Tensor | None] = []
    for t in range(steps):
        if default_all and counts[t] == batch:
            rows.append(None)
        elif not default_all and counts[t] == 0:
            rows.append(None)
        else:
            rows.append(torch.nonzero(cpu[t]).squeeze(1).to(mask.device))
    return rows
