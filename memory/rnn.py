"""LSTM and GRU cores, and the reset-aware loop that every recurrent layer of this package runs
over a sequence whose rows start new episodes at different steps.

A ``torch.nn`` recurrent layer runs a whole sequence in one fused call but knows nothing of
resets. :func:`run_with_resets` splits the sequence only at the steps where some row resets,
empties those rows' state at the start of each piece, and runs each piece in one call, so a
sequence without resets (a language model's, catbAbI's) is one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as nnf
from torch import nn

from memory.functional import host_shortcuts, tanh


def reset_segments(reset: torch.Tensor | None, steps: int) -> list[tuple[int, int]]:
    """The pieces ``[t0, t1)`` of a ``steps``-long sequence split at the steps where some row of
    ``reset [T, B]`` resets (one piece without resets)."""
    starts = [0] if reset is None else sorted({0, *reset.any(1).nonzero().flatten().tolist()})
    return list(zip(starts, [*starts[1:], steps], strict=True))


def run_with_resets(layer: Callable, x: torch.Tensor, state: tuple[torch.Tensor, ...],
                    reset: torch.Tensor | None
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Run ``layer(x_piece, state) -> (out_piece, state)`` over ``x [T, B, I]`` from ``state``
    (a tuple of batch-first ``[B, ...]`` tensors), the rows where ``reset [T, B]`` is True
    emptied before that step. Returns ``(out [T, B, ...], final state)``.

    Where the resets fall is a host decision; on a device (where it would be a sync) a
    sequence with resets runs one step per call, every step's rows masked."""
    outputs = []
    if reset is None:
        pieces = [(0, x.shape[0])]
    elif host_shortcuts(x):
        pieces = reset_segments(reset, x.shape[0])
    else:
        pieces = [(t, t + 1) for t in range(x.shape[0])]
    for t0, t1 in pieces:
        if reset is not None:
            keep = ~reset[t0]
            state = tuple(s * keep.to(s.dtype).view(-1, *[1] * (s.dim() - 1)) for s in state)
        out, state = layer(x[t0:t1], state)
        outputs.append(out)
    return torch.cat(outputs) if len(outputs) > 1 else outputs[0], state


def lstm_with_resets(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                     reset: torch.Tensor | None
                     ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """A one-layer ``nn.LSTM`` over ``x [T, B, I]`` from ``(h, c) [B, H]`` with resets
    (:func:`run_with_resets`). Returns ``(outputs [T, B, H], (h_T, c_T))``."""
    def piece(xs, state):
        out, (h, c) = lstm(xs, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out, (h.squeeze(0), c.squeeze(0))

    return run_with_resets(piece, x, (h, c), reset)


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
              reset: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a one-layer ``nn.LSTM``: ``x [B, I]`` from ``(h, c) [B, H]``, the rows where
    ``reset [B]`` is True zeroed first. Returns ``(h', c')``; ``h'`` is also the output.

    The same math as :func:`lstm_with_resets` over a one-step sequence, without ``nn.LSTM``'s
    per-call overhead and host sync (acting makes a call per env step), and with every ``tanh``
    as ``2 sigmoid(2x) - 1`` (:func:`~memory.functional.tanh`; ``torch.lstm_cell`` uses torch's
    tanh, slower on some CPUs): the four gates are one ``sigmoid`` over the pre-activations,
    the cell gate's doubled. A module with forward pre-hooks (the language models' weight drop)
    goes through ``nn.LSTM`` so that the hooks run.
    """
    if reset is not None:
        keep = (~reset).to(h.dtype)[:, None]  # (B, 1)
        h, c = h * keep, c * keep
    if lstm._forward_pre_hooks:
        _, (h, c) = lstm(x[None], (h[None], c[None]))
        return h[0], c[0]
    hidden = h.shape[1]
    gates = nnf.linear(x, lstm.weight_ih_l0, getattr(lstm, "bias_ih_l0", None))  # (B, 4H)
    gates = gates.addmm_(h, lstm.weight_hh_l0.t())
    if getattr(lstm, "bias_hh_l0", None) is not None:
        gates = gates.add_(lstm.bias_hh_l0)
    gates[:, 2 * hidden:3 * hidden].mul_(2)  # gates i, f, g, o: g doubled for its tanh
    i, f, g, o = gates.sigmoid_().chunk(4, 1)
    c = torch.addcmul(f * c, i, g * 2 - 1)  # g * 2 - 1: tanh of g's pre-activation
    return o * tanh(c), c


class LSTMState(NamedTuple):
    """Batch-first LSTM state ``(h [B, H], c [B, H])``."""

    h: torch.Tensor
    c: torch.Tensor


class LSTMCore(nn.Module):
    """A one-layer LSTM with the memory-core interface (:class:`memory.MemoryCore`)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        w = self.lstm.weight_hh_l0
        h = torch.zeros(batch_size, self.output_size, device=device or w.device,
                        dtype=dtype or w.dtype)
        return LSTMState(h, h.clone())

    def forward(self, x: torch.Tensor, state: LSTMState | None = None,
                reset: torch.Tensor | None = None, final_state: bool = True
                ) -> tuple[torch.Tensor, LSTMState | None]:
        """``x [T, B, I]``, ``reset [T, B]`` -> ``(out [T, B, H], final state)``; the state is
        None with ``final_state=False``."""
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        out, (h, c) = lstm_with_resets(self.lstm, x, state[0], state[1], reset)
        return out, LSTMState(h, c) if final_state else None

    def step(self, x: torch.Tensor, state: LSTMState | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, LSTMState]:
        """One step: ``x [B, I]``, ``reset [B]`` -> ``(out [B, H], state)``."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        h, c = lstm_step(self.lstm, x, state[0], state[1], reset)
        return h, LSTMState(h, c)

    def state_from_tuple(self, tensors: tuple[torch.Tensor, ...]) -> LSTMState:
        """A plain tuple ``(h, c)`` (as SB3's ``predict`` carries it) as an :class:`LSTMState`."""
        if len(tensors) != 2:
            raise ValueError(f"an LSTM state is a tuple of 2 arrays (h, c), got {len(tensors)}")
        return LSTMState(*tensors)


class GRUState(NamedTuple):
    """Batch-first GRU state ``(h [B, H],)``."""

    h: torch.Tensor


class GRUCore(nn.Module):
    """A one-layer GRU with the memory-core interface (:class:`memory.MemoryCore`)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> GRUState:
        w = self.gru.weight_hh_l0
        return GRUState(torch.zeros(batch_size, self.output_size, device=device or w.device,
                                    dtype=dtype or w.dtype))

    def forward(self, x: torch.Tensor, state: GRUState | None = None,
                reset: torch.Tensor | None = None, final_state: bool = True
                ) -> tuple[torch.Tensor, GRUState | None]:
        """``x [T, B, I]``, ``reset [T, B]`` -> ``(out [T, B, H], final state)``."""
        h = (self.initial_state(x.shape[1], x.device, x.dtype) if state is None else state).h

        def piece(xs, state):
            out, h = self.gru(xs, state[0].unsqueeze(0))  # (t, B, H), (1, B, H)
            return out, (h.squeeze(0),)

        out, (h,) = run_with_resets(piece, x, (h,), reset)
        return out, GRUState(h) if final_state else None

    def step(self, x: torch.Tensor, state: GRUState | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, GRUState]:
        """One step: ``x [B, I]``, ``reset [B]`` -> ``(out [B, H], state)``."""
        h = (self.initial_state(x.shape[0], x.device, x.dtype) if state is None else state).h
        if reset is not None:
            h = h * (~reset).to(h.dtype)[:, None]
        g = self.gru
        h = torch.gru_cell(x, h, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        return h, GRUState(h)

    def state_from_tuple(self, tensors: tuple[torch.Tensor, ...]) -> GRUState:
        """A plain tuple ``(h,)`` (as SB3's ``predict`` carries it) as a :class:`GRUState`."""
        if len(tensors) != 1:
            raise ValueError(f"a GRU state is a tuple of 1 array (h,), got {len(tensors)}")
        return GRUState(*tensors)
