"""The FWM's successors as single recurrent layers with the memory-core interface
(:class:`memory.MemoryCore`): the linear transformer, DeltaNet and Gated DeltaNet.

Each layer (shapes: T time, B batch, I input, D ``hidden_size``, H heads of ``d_head``)::

    h_t   = W_in x_t                                   the residual stream, [D]
    q, k, v = W_q h_t, W_k h_t, W_v h_t                  per head, [H, d_head] each
    y_t   = the rule's fast-weight read, per head      (memory.delta.naive has the rules)
    out_t = h_t + W_o y_t                              [D], the core's output

around the rule what its paper puts there:

* ``"sum"`` (linear transformer, Schlag, Irie & Schmidhuber, ICML 2021) and ``"delta"``
  (DeltaNet, the same paper): keys and queries through DPFP-nu, the paper's deterministic
  parameter-free projection (section 5.3: ``r = ReLU([x, -x])``, ``phi_{i + 2d(j-1)} =
  r_i r_{i+j}`` for ``j = 1 .. nu``, indices mod 2d), then sum normalisation (section 4.2:
  ``phi / sum_i phi_i``, which keeps the delta rule stable); DeltaNet's write strength
  ``beta_t = sigmoid(W_beta h_t)`` per head (eq. 18).
* ``"gated-delta"`` (Gated DeltaNet, Yang, Kautz & Hatamizadeh, ICLR 2025, section 3.4): keys
  and queries ``L2norm(SiLU(.))``; ``beta_t = sigmoid(W_beta h_t)``; the decay ``alpha_t =
  exp(-exp(A_log) softplus(W_alpha h_t + dt_bias))`` in (0, 1) per head, Mamba-2's
  parameterisation; the read through a per-head RMSNorm and the output gate
  ``SiLU(W_g h_t)``. Left out: the paper's short convolutions on q, k, v (its ablations show
  them as a small gain).

A reset row's memory is emptied before its step (an episode start). The whole-sequence form
is the chunk-parallel one (:mod:`memory.delta.chunk`), the acting form one step
(:mod:`memory.delta.step`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memory.delta.chunk import CHUNK, chunk_fast_weights
from memory.delta.step import fast_weight_step

RULES = ("sum", "delta", "gated-delta")


class FastWeightState(NamedTuple):
    """The fast weights ``memory [B, H, d_head, d_key]`` (``d_key``: the feature size)."""

    memory: torch.Tensor


@dataclasses.dataclass
class FastWeightConfig:
    """A fast-weight layer's sizes.

    Attributes:
        input_size: I.
        hidden_size: D, the residual stream and the output size.
        rule: ``"sum"``, ``"delta"`` or ``"gated-delta"`` (:data:`RULES`).
        n_heads: H (default: ``hidden_size / 64`` rounded, at least 1: heads of about 64, as
            the fast-weight papers' models have; the memory of a head is ``d_head`` x
            ``d_key``, so one wide head costs far more than several narrow ones).
        d_head: keys', queries' and values' size per head (default ``hidden_size // n_heads``).
        dpfp_nu: DPFP's nu (``"sum"`` and ``"delta"``): the key feature size is
            ``2 d_head nu``.
        chunk_size: steps per chunk of the training form.
    """

    input_size: int
    hidden_size: int
    rule: str = "delta"
    n_heads: int | None = None
    d_head: int | None = None
    dpfp_nu: int = 1
    chunk_size: int = CHUNK

    def __post_init__(self):
        if self.n_heads is None and isinstance(self.hidden_size, int):
            self.n_heads = max(1, round(self.hidden_size / 64))
        for name in ("input_size", "hidden_size", "n_heads", "dpfp_nu", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FastWeightConfig.{name} must be a positive integer, got "
                                 f"{value!r}")
        if self.rule not in RULES:
            raise ValueError(f"FastWeightConfig.rule must be one of {RULES}, got {self.rule!r}")
        if self.d_head is None:
            if self.n_heads > self.hidden_size:
                raise ValueError(f"n_heads {self.n_heads} is more than hidden_size "
                                 f"{self.hidden_size}: give d_head")
            self.d_head = self.hidden_size // self.n_heads
        if not isinstance(self.d_head, int) or self.d_head < 1:
            raise ValueError(f"FastWeightConfig.d_head must be a positive integer, got "
                             f"{self.d_head!r}")

    @property
    def key_size(self) -> int:
        """Features per key and query: ``2 d_head nu`` after DPFP, ``d_head`` otherwise."""
        return self.d_head if self.rule == "gated-delta" else 2 * self.d_head * self.dpfp_nu


def dpfp(x: torch.Tensor, nu: int = 1) -> torch.Tensor:
    """DPFP-nu of the ICML 2021 paper (section 5.3), then sum normalisation (section 4.2):
    ``[..., d] -> [..., 2 d nu]``, non-negative, summing to 1 (0 only for ``x = 0``)."""
    r = F.relu(torch.cat([x, -x], dim=-1))
    phi = torch.cat([r * torch.roll(r, shifts=j, dims=-1) for j in range(1, nu + 1)], dim=-1)
    return phi / (phi.sum(-1, keepdim=True) + 1e-6)


class FastWeightCore(nn.Module):
    """One fast-weight layer (see the module's docstring) with the memory-core interface."""

    def __init__(self, config: FastWeightConfig):
        super().__init__()
        self.config = c = config
        H, d = c.n_heads, c.d_head
        self.input = nn.Linear(c.input_size, c.hidden_size)
        self.qkv = nn.Linear(c.hidden_size, 3 * H * d, bias=False)
        self.output = nn.Linear(H * d, c.hidden_size, bias=False)
        if c.rule != "sum":
            self.beta = nn.Linear(c.hidden_size, H)
        if c.rule == "gated-delta":
            self.alpha = nn.Linear(c.hidden_size, H, bias=False)
            # Mamba-2's initialisation: A in [1, 16], softplus(dt_bias) in [1e-3, 1e-1]
            self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
            dt = torch.exp(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))
            self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
            self.gate = nn.Linear(c.hidden_size, H * d, bias=False)
            self.norm_weight = nn.Parameter(torch.ones(d))

    @property
    def output_size(self) -> int:
        return self.config.hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> FastWeightState:
        w = self.qkv.weight
        c = self.config
        return FastWeightState(torch.zeros(batch_size, c.n_heads, c.d_head, c.key_size,
                                           device=device or w.device, dtype=dtype or w.dtype))

    def _project(self, x: torch.Tensor):
        """``x [..., I]`` -> ``h [..., D]``, ``q, k [..., H, dk]``, ``v [..., H, d]``,
        ``beta``, ``log_alpha [..., H]`` (None where the rule has none)."""
        c = self.config
        h = self.input(x)
        q, k, v = self.qkv(h).unflatten(-1, (3, c.n_heads, c.d_head)).unbind(-3)
        if c.rule == "gated-delta":
            q = F.normalize(F.silu(q), dim=-1, eps=1e-6)
            k = F.normalize(F.silu(k), dim=-1, eps=1e-6)
        else:
            q, k = dpfp(q, c.dpfp_nu), dpfp(k, c.dpfp_nu)
        beta = torch.sigmoid(self.beta(h)) if c.rule != "sum" else None
        log_alpha = None
        if c.rule == "gated-delta":
            log_alpha = -torch.exp(self.A_log) * F.softplus(self.alpha(h) + self.dt_bias)
        return h, q, k, v, beta, log_alpha

    def _finish(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``h + W_o y`` (Gated DeltaNet: ``y`` through RMSNorm and the SiLU output gate)."""
        c = self.config
        if c.rule == "gated-delta":
            y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6) * self.norm_weight
            y = y * F.silu(self.gate(h)).unflatten(-1, (c.n_heads, c.d_head))
        return h + self.output(y.flatten(-2))

    def forward(self, x: torch.Tensor, state: FastWeightState | None = None,
                reset: torch.Tensor | None = None, final_state: bool = True
                ) -> tuple[torch.Tensor, FastWeightState | None]:
        """``x [T, B, I]``, ``reset [T, B]`` -> ``(out [T, B, D], state after step T-1 or
        None)``, chunk-parallel."""
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        h, q, k, v, beta, log_alpha = self._project(x)
        y, S = chunk_fast_weights(q, k, v, beta, log_alpha, state.memory, reset,
                                  self.config.chunk_size)
        return self._finish(h, y), FastWeightState(S) if final_state else None

    def step(self, x: torch.Tensor, state: FastWeightState | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, FastWeightState]:
        """One step: ``x [B, I]``, ``reset [B]`` -> ``(out [B, D], state)``."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        h, q, k, v, beta, log_alpha = self._project(x)
        y, S = fast_weight_step(state.memory, q, k, v, beta, log_alpha, reset)
        return self._finish(h, y), FastWeightState(S)

    def state_from_tuple(self, tensors: tuple[torch.Tensor, ...]) -> FastWeightState:
        if len(tensors) != 1:
            raise ValueError(f"a fast-weight state is a tuple of 1 array (memory,), got "
                             f"{len(tensors)}")
        return FastWeightState(*tensors)
