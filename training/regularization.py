"""AWD-LSTM regularisation (Merity et al., 2018) as reusable pieces, shared by the language
models (:mod:`lm`) and the catbAbI LSTM baseline (:mod:`qa`).

Shapes: T time, B batch, d features, V vocabulary, E embedding size.

* :func:`embedded_dropout`: drops whole rows of the embedding matrix (a dropped word is zero
  at every position of the batch), scaling the rest by ``1 / (1 - p)``.
* :class:`LockedDropout`: variational dropout, one mask per sequence shared over time.
* :func:`weight_drop_`: DropConnect on the hidden-to-hidden weights of an ``nn.LSTM``, in place.
* :func:`activation_regularization`, :func:`temporal_activation_regularization`: AR / TAR.

The original ``WeightDrop`` wrapper re-registered ``weight_hh`` as a Parameter on every call
and stopped working with newer PyTorch and cuDNN. Here the trained weight lives in the LSTM as
``weight_hh_l{k}_raw`` (a Parameter) and a forward pre-hook puts a dropped copy, a plain
tensor, in ``weight_hh_l{k}`` before every call; ``nn.LSTM`` reads that attribute, so the same
module keeps working inside other code (the FWM cell's ``lstm_with_resets`` included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_p(name: str, p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def embedded_dropout(embedding: nn.Embedding, words: torch.Tensor, p: float,
                     training: bool = True) -> torch.Tensor:
    """Embed ``words`` (any shape) with rows of the embedding matrix dropped with probability
    ``p`` (one mask per call, so a word is dropped everywhere in the batch)."""
    _check_p("embedding dropout", p)
    weight = embedding.weight  # (V, E)
    if training and p > 0:
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
        weight = weight * keep
    return F.embedding(words, weight, embedding.padding_idx)  # (..., E)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence: ``x [T, B, d]`` is multiplied by a ``[1, B, d]``
    mask, the same at every time step. Identity in eval mode or for ``p = 0``."""

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        _check_p("locked dropout", p)
        if not self.training or p == 0:
            return x
        if x.dim() != 3:
            raise ValueError(f"LockedDropout expects [T, B, d], got {tuple(x.shape)}")
        mask = x.new_empty(1, *x.shape[1:]).bernoulli_(1 - p) / (1 - p)  # (1, B, d)
        return x * mask


def weight_drop_(lstm: nn.LSTM, p: float) -> nn.LSTM:
    """DropConnect on every ``weight_hh_l{k}`` of ``lstm`` with probability ``p`` (a fresh mask
    per forward call, shared by all time steps of that call; none in eval mode). Modifies
    ``lstm`` in place and returns it; its state dict then holds ``weight_hh_l{k}_raw``."""
    _check_p("weight drop", p)
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(f"weight_drop_ expects an nn.LSTM, got {type(lstm).__name__}")
    names = [n for n in lstm._flat_weights_names if n.startswith("weight_hh")]
    if any(hasattr(lstm, n + "_raw") for n in names):
        raise ValueError("weight_drop_ was already applied to this LSTM")
    for name in names:
        raw = getattr(lstm, name)
        del lstm._parameters[name]
        lstm.register_parameter(name + "_raw", nn.Parameter(raw.detach()))
        setattr(lstm, name, raw.detach().clone())  # a plain tensor, replaced before each call
    lstm.weight_drop = p

    def set_dropped_weights(module: nn.LSTM, _args) -> None:
        for name in names:
            raw = getattr(module, name + "_raw")
            w = (F.dropout(raw, module.weight_drop) if module.training and module.weight_drop > 0
                 else raw.as_subclass(torch.Tensor))  # plain tensor, still in the graph
            setattr(module, name, w)  # not a Parameter, so RNNBase only updates _flat_weights

    lstm.register_forward_pre_hook(set_dropped_weights)
    return lstm


def activation_regularization(dropped_output: torch.Tensor, alpha: float) -> torch.Tensor:
    """AR: ``alpha * mean(h^2)`` of the (dropped-out) last-layer output ``[T, B, d]``."""
    return alpha * dropped_output.pow(2).mean()


def temporal_activation_regularization(raw_output: torch.Tensor, beta: float) -> torch.Tensor:
    """TAR: ``beta * mean((h_t - h_{t-1})^2)`` of the last-layer output ``[T, B, d]`` before
    dropout (slowness)."""
    return beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()
