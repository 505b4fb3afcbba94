"""Plain-loop float64 references of the three fast-weight rules, one step at a time, written
from the papers' equations. Only the tests import them: they pin down what the chunk-parallel
form (:mod:`memory.delta.chunk`) and the one-step form (:mod:`memory.delta.step`) compute.

Shapes: ``q, k [T, B, H, dk]`` (after the feature map), ``v [T, B, H, dv]``, ``beta``,
``log_alpha [T, B, H]``, ``reset [T, B]`` (bool: the row's memory is emptied before step t),
``state [B, H, dv, dk]`` (None: empty). Returns ``(out [T, B, H, dv], final state)``.

* Sum rule, the linear transformer as a fast weight programmer (Schlag, Irie & Schmidhuber,
  ICML 2021, section 3, eq. 4-5 with sum normalisation):
  ``W_t = W_{t-1} + v_t phi(k_t)^T``, ``y_t = W_t phi(q_t)``.
* Delta rule, DeltaNet (the same paper, section 4.2, eq. 17-20):
  ``vbar_t = W_{t-1} phi(k_t)``, ``W_t = W_{t-1} + beta_t (v_t - vbar_t) phi(k_t)^T``,
  ``y_t = W_t phi(q_t)``.
* Gated delta rule, Gated DeltaNet (Yang, Kautz & Hatamizadeh, ICLR 2025, eq. 10):
  ``S_t = S_{t-1} (alpha_t (I - beta_t k_t k_t^T)) + beta_t v_t k_t^T``, ``o_t = S_t q_t``; that
  is ``S' = alpha_t S_{t-1}``, ``S_t = S' + beta_t (v_t - S' k_t) k_t^T``.
"""

from __future__ import annotations

import torch


def _start(q, v, state):
    T, B, H, dk = q.shape
    if state is None:
        return q.new_zeros(B, H, v.shape[-1], dk)
    return state.clone()


def _emptied(S, reset, t):
    return S if reset is None else S * (~reset[t]).to(S.dtype)[:, None, None, None]


def sum_rule_reference(q, k, v, state=None, reset=None):
    """The linear transformer's sum update, step by step."""
    S = _start(q, v, state)
    out = []
    for t in range(q.shape[0]):
        S = _emptied(S, reset, t)
        S = S + v[t][..., :, None] * k[t][..., None, :]          # W_t = W_{t-1} + v_t phi(k_t)^T
        out.append((S @ q[t][..., None])[..., 0])                 # y_t = W_t phi(q_t)
    return torch.stack(out), S


def delta_rule_reference(q, k, v, beta, state=None, reset=None):
    """DeltaNet's delta rule, step by step."""
    S = _start(q, v, state)
    out = []
    for t in range(q.shape[0]):
        S = _emptied(S, reset, t)
        vbar = (S @ k[t][..., None])[..., 0]                      # vbar_t = W_{t-1} phi(k_t)
        S = S + (beta[t][..., None] * (v[t] - vbar))[..., :, None] * k[t][..., None, :]
        out.append((S @ q[t][..., None])[..., 0])                 # y_t = W_t phi(q_t)
    return torch.stack(out), S


def gated_delta_rule_reference(q, k, v, beta, log_alpha, state=None, reset=None):
    """Gated DeltaNet's gated delta rule, step by step (``alpha_t = exp(log_alpha_t)``)."""
    S = _start(q, v, state)
    out = []
    for t in range(q.shape[0]):
        S = _emptied(S, reset, t)
        S = torch.exp(log_alpha[t])[..., None, None] * S          # alpha_t S_{t-1}
        vbar = (S @ k[t][..., None])[..., 0]
        S = S + (beta[t][..., None] * (v[t] - vbar))[..., :, None] * k[t][..., None, :]
        out.append((S @ q[t][..., None])[..., 0])                 # o_t = S_t q_t
    return torch.stack(out), S
