"""The Fast Weight Memory's training form: the scan over a sequence, batched over B,
chunk-parallel over T (pure tensor functions).

Shapes: T time, B batch, C chunk length, d = d_FWM, dk = d * d (tensor-product keys, the paper)
or 2 * d (concatenated keys, appendix E), N_r reads. Sequences are time-major ``[T, B, ...]``;
the memory ``F`` is batch-first ``[B, dk, d]``: it maps a key of size dk to a value of size d.

:func:`fwm_scan` computes exactly what :func:`memory.fwm.naive.fwm_scan_reference` computes
(tests hold them equal, gradients included, to 1e-10 in float64), without a pass over F per step.

The write of eqs. (3)-(4) with its clip is a delta rule with a per-step scalar gate::

    u_t = v_t - k_t^T F_t-1                       (the update, eq. (3))
    F_t = s_t (F_t-1 + c_t k_t u_t^T),  s_t = 1 / max(1, ||F_t-1 + c_t k_t u_t^T||)   (eq. (4))

with ``c_t = beta_t * update_scale``. Unrolled over a chunk that starts from ``F_0``::

    F_t = a_t F_0 + sum_{i<=t} w_ti k_i u_i^T,    a_t = s_1 ... s_t,   w_ti = c_i s_i ... s_t

so every quantity the chunk needs is a small product, and F itself is touched a few times per
chunk instead of several times per step (the write is a gated delta rule whose gate is the
clip factor):

* sequential, per step, only vectors of size d and C: ``k_t^T F_t-1 = a_t-1 k_t^T F_0 +
  sum_i w_t-1,i (k_i . k_t) u_i`` from the precomputed ``K F_0`` and Gram matrix ``K K^T``
  (formed from the key factors, ``(k1_t . k1_i)(k2_t . k2_i)``, without the dk-sized keys);
  the clip factor from the scalar norm recurrence
  ``||G||^2 = ||F||^2 + 2 c v_old . u + c^2 |k|^2 |u|^2`` for ``G = F + c k u^T``. This loop
  is one autograd Function with a hand-written backward (:class:`_DeltaRecurrence`), since
  autograd's record of its many small ops cost more than the ops;
* then, for all steps of the chunk at once, each read of eq. (7) is two batched matmuls,
  ``Q F_t = a_t (Q F_0) + ((Q K^T) * W) U``, and the chunk's final memory is one more,
  ``F_C = a_C F_0 + K^T (w_C * U)``.

Resets zero ``a`` and ``w`` (the memory before the step is gone); padding (``beta = 0``) has
``s = 1`` and ``w = 0``, so a row that never writes ends with F exactly as it started. A chunk
that starts from a known-empty memory (every row resets at its first step, or a zero initial
state that needs no gradient) skips the products with ``F_0``. A chunk of one step is one call
of :func:`fwm_step` (below), about half the operations. Autograd keeps about one copy of F per
chunk, so backward memory is linear in T with a constant C times smaller than a per-step scan.
:data:`CHUNK` is the default chunk length (``benchmarks/bench_fwm.py --chunk-sizes 8 16 32 64``
compares them).

The acting form is :mod:`memory.fwm.step`; the helpers both share are in
:mod:`memory.fwm.common`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as nnf  # (F is the memory, as in the paper)

from memory.functional import host_shortcuts
from memory.fwm.common import CHUNK, _clip, _key, _key_dots, key_size
from memory.fwm.step import _with_empty_cache, fwm_step


def fwm_scan(state: torch.Tensor | None, k1: torch.Tensor, k2: torch.Tensor, v: torch.Tensor,
             beta: torch.Tensor, n0: torch.Tensor, e: torch.Tensor,
             reset: torch.Tensor | None = None, read_mask: torch.Tensor | None = None,
             key_mode: str = "outer", update_scale: float = 1.0, eps: float = 1e-5,
             chunk_size: int = CHUNK, final_state: bool = True
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Write then read at every step (eqs. (3)-(7)); arguments as in ``fwm_scan_reference``.

    Args:
        state: F_0, ``[B, dk, d]``, with Frobenius norm <= 1 (as every state this op returns),
            or None for the zero memory (no gradient), which is then never formed or read.
        k1: first write key, ``[T, B, d]``.
        k2: second write key, ``[T, B, d]``.
        v: write value, ``[T, B, d]``.
        beta: ``[T, B]`` in [0, 1], 0 = no write (padding).
        n0: first read key, ``[T, B, d]``.
        e: further read keys, ``[T, B, N_r, d]``.
        reset: ``[T, B]`` bool, F zeroed before the step.
        read_mask: ``[T, B]`` bool, reads only where True.
        key_mode: ``"outer"`` (the paper) or ``"concat"`` (appendix E).
        update_scale: multiplies beta in eq. (3) (the authors' code: 1 / d).
        eps: layer-norm epsilon.
        chunk_size: steps per chunk (any positive integer gives the same result; it trades
            per-chunk passes over F against per-step work that grows with it).
        final_state: form F_T; False skips the last chunk's pass that forms it (for a caller
            that discards it, as an actor-critic update over a rollout does) and returns None.

    Returns:
        ``(reads [T, B, d], F_T [B, dk, d] or None)``; reads are zero where ``read_mask`` is
        False.

    A step with ``beta = 0`` exactly does not write, and F stays as it was. On a memory at
    norm 1, eq. (4) has a kink there in beta. This op's gradient for such a beta is the one
    of not writing; the reference's may differ. Padding passes ``beta * mask``, whose
    gradient is zero at those steps either way.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    steps = v.shape[0]
    if state is None and steps == 0:
        raise ValueError("fwm_scan with state=None needs at least one step (T >= 1) to form "
                         "F_T from")
    for name, mask in (("reset", reset), ("read_mask", read_mask)):
        if mask is not None and (mask.shape != beta.shape or mask.dtype != torch.bool):
            raise ValueError(f"{name} must be a bool tensor of shape {tuple(beta.shape)} "
                             f"[T, B], got {mask.dtype} {tuple(mask.shape)}")
    # batch-first, so that every product below is a batched matmul over B
    k1, k2, v = k1.transpose(0, 1), k2.transpose(0, 1), v.transpose(0, 1)  # (B, T, d)
    n0, e = n0.transpose(0, 1), e.transpose(0, 1)  # (B, T, d), (B, T, N_r, d)
    coef = (beta * update_scale).transpose(0, 1)  # (B, T)
    keep = None if reset is None else (~reset).to(v.dtype).transpose(0, 1)  # (B, T)
    # host-side bookkeeping once per call, on the CPU: which steps reset, which read, to skip
    # work; on a device (where it would be a sync) every step is treated as one that may
    # reset (the keep multiplier is 1 where a row does not) and read (masked afterwards)
    on_cpu = host_shortcuts(v)
    if reset is None:
        resets_at, all_reset_at = [], []
    elif on_cpu:
        resets_at, all_reset_at = reset.any(1).cpu().tolist(), reset.all(1).cpu().tolist()
    else:
        resets_at, all_reset_at = [True] * steps, [False] * steps
    reads_in = read_mask.any(1).cpu().tolist() if read_mask is not None and on_cpu else None

    fw = state
    if state is None:  # the zero memory
        norm_sq, empty = v.new_zeros(v.shape[0]), True
    elif reset is not None and all_reset_at[0] and not state.requires_grad:
        norm_sq, empty = state.new_zeros(state.shape[0]), True  # an episode start everywhere
    else:
        # (B,): the only full norm pass, once per call (vector_norm makes no temporary copy)
        norm_sq = torch.linalg.vector_norm(state.flatten(1), dim=1).square()
        empty = (on_cpu and not state.requires_grad
                 and not bool(norm_sq.any()))  # e.g. the zero state
    outs = []
    for t0 in range(0, steps, chunk_size):
        t1 = min(t0 + chunk_size, steps)
        span = slice(t0, t1)
        empty = empty or (reset is not None and all_reset_at[t0])
        wants_reads = reads_in is None or any(reads_in[span])
        chunk = {"f0": None if empty else fw, "norm_sq": norm_sq, "k1": k1[:, span],
                 "k2": k2[:, span], "v": v[:, span], "coef": coef[:, span],
                 "n0": n0[:, span] if wants_reads else None, "e": e[:, span],
                 "key_mode": key_mode, "eps": eps}
        if t1 - t0 == 1:  # one step: fwm_step, in about half the operations of a chunk
            reads, fw, norm_sq = _one_step(**chunk,
                                           reset=None if reset is None else reset[t0])
        else:
            chunk_keep = None
            if reset is not None and any(resets_at[span]):
                chunk_keep = [keep[:, t] if r else None
                              for t, r in zip(range(t0, t1), resets_at[span], strict=True)]
            reads, fw, norm_sq = _chunk(**chunk, keep=chunk_keep,
                                        form_f=final_state or t1 < steps)
        if read_mask is not None:
            reads = reads * read_mask[span].transpose(0, 1)[..., None].to(reads.dtype)
        outs.append(reads)
        empty = False
    reads = outs[0] if len(outs) == 1 else torch.cat(outs, 1)  # (a cat of one is a copy)
    return reads.transpose(0, 1), fw


def _chunk(*, f0: torch.Tensor | None, norm_sq: torch.Tensor, k1: torch.Tensor,
           k2: torch.Tensor, v: torch.Tensor, coef: torch.Tensor, n0: torch.Tensor | None,
           e: torch.Tensor, keep: list[torch.Tensor | None] | None, key_mode: str, eps: float,
           form_f: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """One chunk of :func:`fwm_scan`, batch-first: ``k1, k2, v [B, C, d]``, ``coef [B, C]``,
    ``n0 [B, C, d]`` (None: no reads in this chunk), ``e [B, C, N_r, d]``, ``keep`` a per-step
    list of None or ``[B]`` zero-at-reset multipliers (None: no reset in the chunk). ``f0`` is
    F_0 ``[B, dk, d]``, or None when the memory at the chunk's start is known to be empty;
    ``norm_sq [B]`` its squared norm. Returns ``(reads [B, C, d], F_C, ||F_C||^2)``, F_C None
    unless ``form_f``."""
    batch, steps, d = v.shape
    keys = _key(k1, k2, key_mode) if f0 is not None or form_f else None  # (B, C, dk)
    gram = _key_dots(k1, k2, k1, k2, key_mode)  # (B, C, C): k_t . k_i
    from_f0 = first_read_f0 = None
    if f0 is not None:  # k_t^T F_0 and, where reads are wanted, q1_t^T F_0
        # (two products rather than one over the keys and queries concatenated: the copy
        # into one tensor, and the strided gradients that its slices get back, cost more than
        # the second pass over F_0)
        from_f0 = torch.bmm(keys, f0)  # (B, C, d)
        first_read_f0 = None if n0 is None else torch.bmm(_key(n0, e[:, :, 0], key_mode), f0)
    # the sequential part: u_t, w_ti, a_t and the norm, with a hand-written backward
    upd, weights, a_all, norm_sq = _DeltaRecurrence.apply(from_f0, gram, v, coef, norm_sq,
                                                           keep)
    a, w = a_all[:, -1], weights[:, -1]  # F_C = a_C F_0 + sum_i w_Ci k_i u_i^T
    if not form_f:
        fw_new = None
    elif f0 is None:
        fw_new = torch.bmm(keys.transpose(1, 2), w[..., None] * upd)  # (B, dk, d)
    else:  # a_C F_0 + K^T (w_C * U), in place on the fresh product: two passes over F
        fw_new = _AddKeysTimes.apply(a[:, None, None] * f0, keys, w[..., None] * upd)
    if n0 is None:
        return v.new_zeros(batch, steps, d), fw_new, norm_sq
    scale = a_all[..., None]  # (B, C, 1)
    # q_i . k = (n_i-1 . k1)(e_i . k2) (outer keys) or n_i-1 . k1 + e_i . k2 (concatenated);
    # the e_i parts do not depend on the memory: one product for all reads
    # (unbind: a slice per read would zero-fill a gradient of all reads in backward, per read)
    e_dots = torch.bmm(e.flatten(1, 2), k2.transpose(1, 2)).unflatten(1, e.shape[1:3]).unbind(2)
    n = n0
    for i in range(e.shape[2]):  # eq. (7): n_i = LN(q_i^T F_t), q_i = make_key(n_i-1, e_i)
        dots = torch.bmm(n, k1.transpose(1, 2))  # (B, C, C)
        dots = dots * e_dots[i] if key_mode == "outer" else dots + e_dots[i]
        out = torch.bmm(dots * weights, upd)  # (B, C, d)
        if f0 is not None:  # + a_t q_i^T F_0
            read_f0 = first_read_f0 if i == 0 else torch.bmm(_key(n, e[:, :, i], key_mode), f0)
            out = out + scale * read_f0
        n = nnf.layer_norm(out, (d,), eps=eps)
    return n, fw_new, norm_sq


class _AddKeysTimes(torch.autograd.Function):
    """``base + K^T V``: ``base [B, dk, d]``, ``K [B, C, dk]``, ``V [B, C, d]`` (``baddbmm``,
    in place on ``base``), with the keys' gradient formed as ``V grad^T``, in the keys' own
    layout: autograd's ``baddbmm`` backward gives it transposed, and adding that to the keys'
    other gradient, or reshaping it, passes over the keys again with strides that do not
    vectorise."""

    @staticmethod
    def forward(ctx, base, keys, values):
        ctx.save_for_backward(keys, values)
        ctx.mark_dirty(base)
        return base.baddbmm_(keys.transpose(1, 2), values)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        keys, values = ctx.saved_tensors
        grad_keys = grad_values = None
        if ctx.needs_input_grad[1]:
            grad_keys = torch.bmm(values, grad.transpose(1, 2))  # (B, C, dk)
        if ctx.needs_input_grad[2]:
            grad_values = torch.bmm(keys, grad)  # (B, C, d)
        return grad, grad_keys, grad_values


class _DeltaRecurrence(torch.autograd.Function):
    """The sequential part of a chunk of :func:`fwm_scan`: the write of eqs. (3)-(4) step by
    step in the unrolled form (module docstring), on vectors only, with a hand-written backward.

    Per step t, after the reset (``a, w, ||F||^2`` times ``keep_t``)::

        v_old = a F0k_t + sum_i<t w_i G_ti u_i,   u_t = v_t - v_old          (eq. (3))
        g = N + 2 c u . (v_old + c kk_t u / 2),   s = 1 / max(1, sqrt(g))    (eq. (4))
        N = g s^2,   w = [w, c_t] s,   a = a s

    with ``F0k_t = k_t^T F_0``, ``G = K K^T``, ``kk_t = G_tt`` and ``c_t = beta_t *
    update_scale`` (s = 1 where c = 0); ``g`` is ``N + 2 c v_old . u + c^2 kk |u|^2``. As
    plain autograd this is some 30 small ops per step, and their backward costs three to four
    times the forward; here the forward runs outside autograd into preallocated buffers and the
    backward is the same loop reversed, carrying the adjoints of ``(a, w, N)``. Tests hold
    :func:`fwm_scan` to the reference to 1e-10 in float64, gradients included.

    Both loops work time-major (``[C, B, ...]``), so that what a step reads and writes is
    contiguous; the outputs are batch-first views of those buffers.

    Inputs: ``from_f0`` (``F0k``, ``[B, C, d]``, or None: F_0 is known to be empty), ``gram
    [B, C, C]``, ``v [B, C, d]``, ``coef [B, C]``, ``norm_sq [B]`` (of F_0), ``keep``
    a per-step list of None or ``[B]`` zero-at-reset multipliers (or None). Outputs: the
    updates ``U [B, C, d]``, the lower-triangular weights ``W [B, C, C]`` (``W_ti = w_ti``,
    the coefficient of ``k_i u_i^T`` in F_t), ``a [B, C]`` (of F_0 in F_t) and ``||F_C||^2
    [B]``.
    """

    @staticmethod
    def forward(ctx, from_f0, gram, v, coef, norm_sq, keep):
        batch, steps, d = v.shape
        gram = gram.transpose(0, 1).contiguous()  # (C, B, C): row t holds G_ti for all i
        coef = coef.t().contiguous()  # (C, B)
        key_sq = gram.diagonal(dim1=0, dim2=2).t()  # (C, B): |k_t|^2
        v, from_f0 = v.transpose(0, 1), None if from_f0 is None else from_f0.transpose(0, 1)
        upd, v_old_all = v.new_empty(steps, batch, d), v.new_empty(steps, batch, d)
        weights = v.new_empty(steps, batch, steps)  # row t: w after step t
        a_all, s_all, g_all = (v.new_empty(steps, batch) for _ in range(3))
        a, w = v.new_ones(batch), v.new_zeros(batch, steps)  # w: zero from step t on
        for t in range(steps):
            if keep is not None and keep[t] is not None:  # reset: F_t-1 := 0 in those rows
                a, w, norm_sq = a * keep[t], w * keep[t][:, None], norm_sq * keep[t]
            v_old = v_old_all[t]
            if t > 0:  # sum_i<t w_i G_ti u_i: a broadcast product beats a batch of tiny matmuls
                mix = (w[:, :t] * gram[t, :, :t]).t()  # (t, B)
                torch.sum(mix[..., None] * upd[:t], 0, out=v_old)
                if from_f0 is not None:
                    v_old.addcmul_(a[:, None], from_f0[t])
            elif from_f0 is not None:
                torch.mul(a[:, None], from_f0[t], out=v_old)
            else:
                v_old.zero_()
            u = torch.sub(v[t], v_old, out=upd[t])
            s, norm_sq, g = _clip(norm_sq, coef[t], key_sq[t], u, v_old)  # eq. (4)
            s_all[t], g_all[t] = s, g
            w = torch.mul(w, s[:, None], out=weights[t])
            torch.mul(coef[t], s, out=w[:, t])
            a = torch.mul(a, s, out=a_all[t])
        ctx.keep = keep
        ctx.save_for_backward(from_f0, gram, coef, upd, v_old_all, weights, a_all, s_all,
                              g_all)
        return upd.transpose(0, 1), weights.transpose(0, 1), a_all.t(), norm_sq

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_upd, d_weights, d_a, d_norm_sq):
        # every tensor here is time-major: (C, B, ...)
        from_f0, gram, coef, upd, v_old_all, weights, a_all, s_all, g_all = ctx.saved_tensors
        key_sq = gram.diagonal(dim1=0, dim2=2).t()  # (C, B)
        keep = ctx.keep
        steps, batch, d = upd.shape
        # what the reversed loop needs, for all steps at once: a before step t (a_t-1 after
        # the reset; w before the step is formed in the loop from the row of weights, since a
        # [C, B, C] tensor of them costs passes over memory that cost more than that op)
        a_before = nnf.pad(a_all[:-1], (0, 0, 1, 0), value=1.0)  # (C, B)
        for t, k in enumerate(keep or []):
            if k is not None:
                a_before[t] *= k
        # g = N + c^2 kk |u|^2 + 2 c v_old . u: dg/du = 2 c (c kk u + v_old), dg/dv_old = 2 c u
        dg_du = (coef * key_sq)[..., None] * upd + v_old_all
        # s = rsqrt(max(g, 1)) where c != 0 (clamp passes the gradient where g >= 1)
        ds_dg = torch.where((coef != 0) & (g_all >= 1), -0.5 * s_all.pow(3), 0.0)
        s_sq, dn_ds = s_all.square(), 2 * g_all * s_all  # N_t = g s^2
        two_c = 2 * coef
        # d_weights above the diagonal (weights that are constant zeros) is not zeroed: in the
        # loop it only ever meets zeros of w and, in the adjoint of w, columns past the step,
        # which are not read
        d_weights, d_a = d_weights.transpose(0, 1), d_a.t()

        u_bar = d_upd.transpose(0, 1).contiguous()  # adjoints of u_t: direct, and from later
        g_v = torch.empty_like(upd)  # = the full adjoint of u_t
        v_old_bar_all = torch.empty_like(upd)
        wt_bar_s, g_bar_all = torch.empty_like(weights), torch.empty_like(coef)
        u_dots = upd.new_empty(steps, batch)  # rows i < t: u_i . v_old_bar_t
        g_gram = upd.new_zeros(steps, batch, steps)  # of G_ti: (w_i u_i . v_old_bar_t) i < t
        w_bar, a_bar, n_bar = upd.new_zeros(batch, steps), upd.new_zeros(batch), \
            d_norm_sq.clone()  # of w, a, N after step t
        zero = upd.new_zeros(batch, steps)
        for t in reversed(range(steps)):
            w_prev = zero if t == 0 else weights[t - 1]  # w before step t, but for the reset
            if keep is not None and keep[t] is not None:
                w_prev = w_prev * keep[t][:, None]
            wt_bar = w_bar + d_weights[t]
            at_bar = a_bar + d_a[t]
            # w_t = [w, c] s  ->  s_bar gets wt_bar . [w, c]
            s_bar = torch.linalg.vecdot(wt_bar, w_prev).addcmul_(wt_bar[:, t], coef[t]) \
                .addcmul_(at_bar, a_before[t]).addcmul_(n_bar, dn_ds[t])
            w_bar = torch.mul(wt_bar, s_all[t][:, None], out=wt_bar_s[t])  # w's, and c's
            a_bar = at_bar * s_all[t]
            g_bar = torch.addcmul(n_bar * s_sq[t], ds_dg[t], s_bar, out=g_bar_all[t])
            n_bar = g_bar
            two_gc = (g_bar * two_c[t])[:, None]
            u_tot = torch.addcmul(u_bar[t], two_gc, dg_du[t], out=g_v[t])
            v_old_bar = torch.sub(two_gc * upd[t], u_tot, out=v_old_bar_all[t])  # u = v - v_old
            if from_f0 is not None:
                a_bar = a_bar + torch.linalg.vecdot(v_old_bar, from_f0[t])
            if t > 0:
                dots = torch.linalg.vecdot(upd[:t], v_old_bar, out=u_dots[:t])  # (t, B)
                # in place on wt_bar_s[t]: columns i < t only; its diagonal (c's) is kept
                w_bar[:, :t].addcmul_(gram[t, :, :t], dots.t())
                # v_old = a F0k + sum_i<t w_i G_ti u_i  ->  u_i gets w_i G_ti v_old_bar_t
                mix = (w_prev[:, :t] * gram[t, :, :t]).t()  # (t, B)
                u_bar[:t].addcmul_(mix[..., None], v_old_bar)
                g_gram[t, :, :t] = w_prev[:, :t] * dots.t()
            if keep is not None and keep[t] is not None:  # the reset before step t
                a_bar, w_bar, n_bar = a_bar * keep[t], w_bar * keep[t][:, None], n_bar * keep[t]
        u_sq, vu = upd.square().sum(-1), torch.linalg.vecdot(v_old_all, upd)  # (C, B)
        g_coef = wt_bar_s.diagonal(dim1=0, dim2=2) + \
            (2 * g_bar_all * (coef * key_sq * u_sq + vu)).t()  # (B, C)
        g_key_sq = g_bar_all * coef.square() * u_sq
        g_from_f0 = None if from_f0 is None else \
            (a_before[..., None] * v_old_bar_all).transpose(0, 1)
        g_gram = g_gram.transpose(0, 1)
        g_gram.diagonal(dim1=1, dim2=2).copy_(g_key_sq.t())  # kk_t is G's diagonal
        return g_from_f0, g_gram, g_v.transpose(0, 1), g_coef, n_bar, None


def _one_step(*, f0: torch.Tensor | None, norm_sq: torch.Tensor, k1: torch.Tensor,
              k2: torch.Tensor, v: torch.Tensor, coef: torch.Tensor, n0: torch.Tensor | None,
              e: torch.Tensor, reset: torch.Tensor | None, key_mode: str, eps: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A chunk of one step: one :func:`fwm_step` on ``F_0`` as a :class:`LowRankMemory` with an
    empty cache, folded at once (F_1 = s (a F_0 + c k u^T)). Arguments as :func:`_chunk`'s, but
    ``reset`` is the ``[B]`` bool mask of the step (or None)."""
    batch, _, d = v.shape
    if f0 is None:  # a known-empty memory: fwm_step never reads base while scale is 0
        memory = _with_empty_cache(v.new_zeros(()).expand(batch, key_size(d, key_mode), d),
                                   v.new_zeros(batch), norm_sq)
    else:
        memory = _with_empty_cache(f0, v.new_ones(batch), norm_sq)
    read, memory = fwm_step(memory, k1[:, 0], k2[:, 0], v[:, 0], coef[:, 0],
                            None if n0 is None else n0[:, 0], e[:, 0], reset=reset,
                            key_mode=key_mode, eps=eps, max_rank=1)
    return read[:, None], memory.base, memory.norm_sq
