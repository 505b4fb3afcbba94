"""What the Fast Weight Memory's training form (:mod:`memory.fwm.chunk`) and acting form
(:mod:`memory.fwm.step`) share: the key of two factors, its sizes and dots, the clip of
eq. (4)."""

from __future__ import annotations

import torch

from memory.fwm.naive import make_key

#: Default steps per chunk of :func:`fwm_scan`.
CHUNK = 32


def key_size(d: int, key_mode: str) -> int:
    """dk, the size of a write or read key: ``d * d`` for tensor-product keys (the paper),
    ``2 * d`` for concatenated keys (appendix E)."""
    if key_mode not in ("outer", "concat"):
        raise ValueError(f"key_mode must be 'outer' or 'concat', got {key_mode!r}")
    return d * d if key_mode == "outer" else 2 * d


def _key(a: torch.Tensor, b: torch.Tensor, key_mode: str) -> torch.Tensor:
    """:func:`~memory.fwm.naive.make_key` for the fast paths: the outer-product key's backward
    reduces the ``[..., d, d]`` gradient with two batched vector-matrix products instead of
    autograd's two broadcast products (each a temporary the size of the keys) and sums."""
    if key_mode == "outer":
        return _OuterKey.apply(a, b)
    return make_key(a, b, key_mode)


class _OuterKey(torch.autograd.Function):
    """``vec(a (x) b)``, ``[..., d] x [..., d] -> [..., d * d]`` (see :func:`_key`)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        d = a.shape[-1]
        grad = grad.reshape(-1, d, d)  # (N, d, d): d key / d (a_i b_j)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:  # sum_j grad_ij b_j, as b^T grad^T (a vector-matrix
            # product: several times faster than the matrix-vector product in MKL's bmm)
            grad_a = torch.bmm(b.reshape(-1, 1, d), grad.transpose(1, 2)).view(a.shape)
        if ctx.needs_input_grad[1]:  # sum_i a_i grad_ij
            grad_b = torch.bmm(a.reshape(-1, 1, d), grad).view(b.shape)
        return grad_a, grad_b


def _clip(norm_sq, c, key_sq, u, v_old):
    """Eq. (4) without a pass over F: the clip factor ``s = 1 / max(1, ||G||)`` of
    ``G = F + c k u^T`` from the scalar recurrence
    ``||G||^2 = ||F||^2 + 2 c v_old . u + c^2 |k|^2 |u|^2`` (``v_old = k^T F``; None: F is
    known to be empty), all ``[B]`` except ``u, v_old [B, d]``. Returns
    ``(s, ||s G||^2, ||G||^2)``."""
    half = (c * key_sq * 0.5)[:, None]
    y = u * half if v_old is None else torch.addcmul(v_old, u, half)  # v_old + c |k|^2 u / 2
    g_sq = torch.addcmul(norm_sq, c * 2, torch.linalg.vecdot(u, y))
    # a step that does not write (beta = 0: padding) leaves F exactly as it was, even when
    # rounding puts its norm a hair above 1
    s = torch.where(c == 0, 1.0, torch.rsqrt(g_sq.clamp(min=1.0)))  # (B,)
    return s, g_sq * s.square(), g_sq


def _combine(first, second, key_mode):
    """A key dot ``make_key(a1, a2) . make_key(b1, b2)`` from its factor dots ``first = a1 .
    b1`` and ``second = a2 . b2``."""
    return first * second if key_mode == "outer" else first + second


def _dots(x, vectors):
    """``x . vectors_i`` for every i: ``[B, d]``, ``[B, n, d]`` -> ``[B, n]``, as a batched
    vector-matrix product (faster on a CPU than the broadcast product and sum, and than the
    matrix-vector product)."""
    return torch.bmm(x[:, None], vectors.transpose(1, 2)).squeeze(1)


def _weighted_sum(weights, vectors):
    """``sum_i weights_i vectors_i``: ``[B, n]``, ``[B, n, d]`` -> ``[B, d]``."""
    return (weights[..., None] * vectors).sum(1)


def _key_dots(a1, a2, b1, b2, key_mode):
    """``make_key(a1, a2)_t . make_key(b1, b2)_i`` for all t, i, ``[B, C, C]``, from factors
    ``[B, C, d]`` without forming the keys: (a1 . b1)(a2 . b2) for outer-product keys,
    a1 . b1 + a2 . b2 for concatenated ones."""
    first = torch.bmm(a1, b1.transpose(1, 2))
    second = torch.bmm(a2, b2.transpose(1, 2))
    return first * second if key_mode == "outer" else first + second
