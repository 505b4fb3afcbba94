"""AWD-LSTM and AWD-FWM word-level language models (paper section 4.3, appendix H).

Shapes: T time, B batch, V vocabulary, E embedding size (= the last layer's output size, for
tied weights), H hidden size of the inner layers, L layers.

Both models are the 3-layer AWD-LSTM of Merity et al. (2018): embedding dropout, locked dropout
on the input, between layers and on the output, weight drop on the hidden-to-hidden weights and
tied input/output embeddings. AWD-FWM replaces the last LSTM layer by an :class:`FWMCell` from
:mod:`memory.fwm` whose LSTM is that layer (weight-dropped like the others) and whose output is
``h + W_o n`` (the residual), reading at every step.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

import memory
from memory.rnn import LSTMState
from training.atomic import torch_load_checkpoint
from training.regularization import LockedDropout, embedded_dropout, weight_drop_
from training.validation import check_positive_int

#: Model sizes: the paper's (AWD-LSTM's 400 / 1150 / 3 layers, ~24M parameters on PTB) and a
#: small one for CPU budgets.
SIZES = {"paper": {"embedding_size": 400, "hidden_size": 1150, "n_layers": 3},
         "small": {"embedding_size": 200, "hidden_size": 400, "n_layers": 3}}


@dataclasses.dataclass
class LMConfig:
    """Model sizes and dropouts. The defaults are the paper's PTB model (table 4); the sizes
    are AWD-LSTM's.

    Attributes:
        vocab_size: V.
        embedding_size: E (AWD-LSTM 400), also the last layer's output size.
        hidden_size: H of the inner layers (AWD-LSTM 1150).
        n_layers: L (3).
        memory: "none" (AWD-LSTM), "fwm" (AWD-FWM: the FWM on the last layer) or any other
            registered core of :mod:`memory` as the last layer (its input the layer below's
            output, its output size E).
        d_fwm, n_reads: the FWM's d_FWM (32) and N_r (3).
        memory_options: further options of the last layer's core (:func:`memory.make_core`;
            for the FWM over ``d_fwm`` and ``n_reads``).
        dropout: locked dropout on the last layer's output (before the decoder).
        dropouth: locked dropout between layers.
        dropouti: locked dropout on the embedded input.
        dropoute: embedding (whole-word) dropout.
        wdrop: weight drop on the hidden-to-hidden weights of every LSTM.
        embedding_init: the embedding is uniform(-a, a); None picks AWD-LSTM's 0.1, or 0.25 for
            the FWM (appendix H: "crucial in our FWM language models").
    """

    vocab_size: int
    embedding_size: int = 400
    hidden_size: int = 1150
    n_layers: int = 3
    memory: str = "none"
    d_fwm: int = 32
    n_reads: int = 3
    dropout: float = 0.4
    dropouth: float = 0.3
    dropouti: float = 0.5
    dropoute: float = 0.1
    wdrop: float = 0.66
    embedding_init: float | None = None
    memory_options: dict | None = None

    def __post_init__(self):
        for name in ("vocab_size", "embedding_size", "hidden_size", "n_layers", "d_fwm",
                     "n_reads"):
            check_positive_int(f"LMConfig.{name}", getattr(self, name))
        if self.memory != "none" and self.memory not in memory.core_names():
            raise ValueError(f"LMConfig.memory must be 'none' or a registered memory core "
                             f"{memory.core_names()}, got {self.memory!r}")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"LMConfig.{name} must be in [0, 1), got {value!r}")
        if self.embedding_init is None:
            self.embedding_init = 0.25 if self.memory == "fwm" else 0.1

    def core_options(self) -> dict:
        """The options of the last layer's core (:func:`memory.make_core`)."""
        base = {"d_fwm": self.d_fwm, "n_reads": self.n_reads} if self.memory == "fwm" else {}
        return {**base, **(self.memory_options or {})}


class AWDLSTMLayer(nn.LSTM):
    """One AWD-LSTM layer: an ``nn.LSTM`` (its parameters keep their names) with the memory-core
    calling convention, ``layer(x [T, B, I], state) -> (out [T, B, H], state)`` with a
    batch-first :class:`~memory.rnn.LSTMState`, so that the model runs every layer alike."""

    def initial_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        w = self.weight_ih_l0
        h = torch.zeros(batch_size, self.hidden_size, device=device or w.device,
                        dtype=dtype or w.dtype)
        return LSTMState(h, h.clone())

    def forward(self, x: torch.Tensor, state: tuple | None = None
                ) -> tuple[torch.Tensor, LSTMState]:
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        out, (h, c) = super().forward(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out, LSTMState(h.squeeze(0), c.squeeze(0))


class LMOutput(NamedTuple):
    """``logits [T, B, V]``, the carried ``state``, and the last layer's output before
    (``raw``) and after (``dropped``) the output dropout, both ``[T, B, E]`` (for AR / TAR)."""

    logits: torch.Tensor
    state: tuple
    raw: torch.Tensor
    dropped: torch.Tensor


class LanguageModel(nn.Module):
    """AWD-LSTM (``memory="none"``), AWD-FWM (``memory="fwm"``) or the last layer as another
    memory core: token ids ``[T, B]`` in, :class:`LMOutput` out. The state is a tuple with one
    entry per layer, the layer's own state tuple (an LSTM layer's ``(h, c)``, each
    ``[B, size]``). A core with an LSTM inside (the FWM) has its hidden-to-hidden weights
    dropped like the other layers'."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = cfg = config
        E, H, L = cfg.embedding_size, cfg.hidden_size, cfg.n_layers
        self.encoder = nn.Embedding(cfg.vocab_size, E)
        self.lockdrop = LockedDropout()
        sizes = [E] + [H] * (L - 1) + [E]  # layer l maps sizes[l] -> sizes[l + 1]
        layers: list[nn.Module] = []
        for layer in range(L):
            if layer == L - 1 and cfg.memory != "none":
                core = memory.make_core(cfg.memory, sizes[layer], E, **cfg.core_options())
                if isinstance(getattr(core, "lstm", None), nn.LSTM):
                    weight_drop_(core.lstm, cfg.wdrop)
                layers.append(core)
            else:
                layers.append(weight_drop_(AWDLSTMLayer(sizes[layer], sizes[layer + 1]),
                                           cfg.wdrop))
        self.layers = nn.ModuleList(layers)
        self.decoder = nn.Linear(E, cfg.vocab_size)
        self.decoder.weight = self.encoder.weight  # tied weights
        nn.init.uniform_(self.encoder.weight, -cfg.embedding_init, cfg.embedding_init)
        nn.init.zeros_(self.decoder.bias)

    @classmethod
    def from_checkpoint(cls, path: str, map_location="cpu") -> LanguageModel:
        """The model saved by :func:`lm.train.train` in ``best.pt`` or ``last.pt``."""
        ckpt = torch_load_checkpoint(path, map_location=map_location)
        if "model_config" not in ckpt:
            raise ValueError(f"{path} is not a language-model checkpoint (no model_config)")
        model = cls(LMConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return model.to(map_location)

    def initial_state(self, batch_size: int, device=None) -> tuple:
        """The zero state for ``batch_size`` streams."""
        device = device or self.encoder.weight.device
        dtype = self.encoder.weight.dtype
        return tuple(layer.initial_state(batch_size, device, dtype) for layer in self.layers)

    @staticmethod
    def map_state(state: tuple, fn) -> tuple:
        """``fn`` applied to every tensor of ``state``, keeping its structure."""
        return tuple(type(s)._make(map(fn, s)) if hasattr(s, "_make") else tuple(map(fn, s))
                     for s in state)

    @classmethod
    def detach_state(cls, state: tuple) -> tuple:
        """The same state cut from the graph (truncated BPTT between batches)."""
        return cls.map_state(state, torch.Tensor.detach)

    def forward(self, inputs: torch.Tensor, state: tuple | None = None) -> LMOutput:
        """``inputs [T, B]`` int64 -> :class:`LMOutput`."""
        if inputs.dim() != 2 or inputs.dtype != torch.long:
            raise ValueError(f"inputs must be int64 [T, B], got {inputs.dtype} "
                             f"{tuple(inputs.shape)}")
        cfg = self.config
        if state is None:
            state = self.initial_state(inputs.shape[1], inputs.device)
        if len(state) != len(self.layers):
            raise ValueError(f"state has {len(state)} layers, the model {len(self.layers)}")
        x = embedded_dropout(self.encoder, inputs, cfg.dropoute, self.training)  # (T, B, E)
        x = self.lockdrop(x, cfg.dropouti)
        new_state = []
        for i, (layer, s) in enumerate(zip(self.layers, state)):
            x, s = layer(x, s)  # (T, B, size)
            new_state.append(s)
            if i < len(self.layers) - 1:
                x = self.lockdrop(x, cfg.dropouth)
        dropped = self.lockdrop(x, cfg.dropout)
        return LMOutput(self.decoder(dropped), tuple(new_state), x, dropped)  # logits (T, B, V)
