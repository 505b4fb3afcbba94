"""catbAbI models: token ids ``[T, B]`` in, next-token logits ``[T, B, V]`` out, with a carried
recurrent state. Every model has the same interface, so the trainer and the evaluation code
serve all of them: :class:`FWMModel` (with the paper's settings), the regularised LSTM of
appendix F.4, :class:`LSTMModel`, and :class:`CoreModel`, any core of :mod:`memory` between an
embedding and a decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

import memory
from memory.fwm import FWMCell, FWMConfig, FWMState, settings_options
from training.regularization import LockedDropout, embedded_dropout, weight_drop_
from training.validation import check_positive_int

#: ``FWMModel(settings=...)``: its name -> the named FWM setting
MODEL_SETTINGS = {"paper": "paper", "authors": "authors-catbabi"}


def core_model_name(core: str) -> str:
    """The ``train_catbabi.py --model`` name of :class:`CoreModel` over the registered memory
    core ``core``: the core's own name, but ``lstm-core`` for the LSTM (``--model lstm`` is
    appendix F.4's :class:`LSTMModel`)."""
    return "lstm-core" if core == "lstm" else core


class FWMModel(nn.Module):
    """Embedding -> LSTM + Fast Weight Memory -> linear decoder (paper section 4.1).

    Args:
        vocab_size: V.
        embedding_size: the paper's 256.
        hidden_size: LSTM width, the paper's 256.
        d_fwm: the memory's size, the paper's 32.
        n_reads: chained reads N_r, the paper's 3.
        residual: output ``h + W_o n`` (the authors' catbAbI scripts turn it off: False).
        key_mode: ``"outer"`` (paper) or ``"concat"`` (appendix E ablation).
        pad_id: id of the padding token; padding steps do not write to the memory, while
            the LSTM still reads the pad token (the authors' code freezes the whole state
            there; padding occurs only where a row runs out of stories at an epoch's end).
        settings: ``"paper"`` (the paper's equations) or ``"authors"`` (the authors' catbAbI
            cell, :func:`memory.fwm.settings_options` ``"authors-catbabi"``: write-strength
            bias 1, update scaled by 1 / d_FWM, linear first read key, their initialisation,
            and a Xavier-normal decoder without bias).
        fwm_options: further :class:`~memory.fwm.FWMConfig` options, over those of
            ``settings`` (``init="authors"`` also gives the authors' decoder).
    """

    def __init__(self, vocab_size: int, embedding_size: int = 256, hidden_size: int = 256,
                 d_fwm: int = 32, n_reads: int = 3, residual: bool = False,
                 key_mode: str = "outer", pad_id: int = 0, settings: str = "paper",
                 fwm_options: dict | None = None):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
        if settings not in MODEL_SETTINGS:
            raise ValueError(f"settings must be one of {tuple(MODEL_SETTINGS)}, got "
                             f"{settings!r}")
        self.vocab_size, self.pad_id = vocab_size, pad_id
        #: the FWMConfig options beyond the sizes, as given (saved with checkpoints)
        self.fwm_options = {**settings_options(MODEL_SETTINGS[settings], d_fwm),
                            **(fwm_options or {})}
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.cell = FWMCell(FWMConfig(input_size=embedding_size, hidden_size=hidden_size,
                                      d_fwm=d_fwm, n_reads=n_reads, residual=residual,
                                      key_mode=key_mode, **self.fwm_options))
        authors_init = self.cell.config.init == "authors"
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=not authors_init)
        if authors_init:
            nn.init.xavier_normal_(self.decoder.weight)

    @property
    def model_options(self) -> dict:
        """What a checkpoint records beyond the parameter shapes (a resume must match it)."""
        return self.fwm_options

    def initial_state(self, batch_size: int) -> FWMState:
        return self.cell.initial_state(batch_size)

    def forward(self, inputs: torch.Tensor, state: FWMState | None = None,
                read_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, FWMState]:
        """``inputs [T, B]`` int64 -> ``(logits [T, B, V], state)``; ``read_mask [T, B]``: read
        the memory only there (QA mode needs reads only where the input is "?")."""
        if inputs.dim() != 2 or inputs.dtype != torch.long:
            raise ValueError(f"inputs must be int64 [T, B], got {inputs.dtype} "
                             f"{tuple(inputs.shape)}")
        out, state = self.cell(self.embedding(inputs), state, write_mask=inputs != self.pad_id,
                               read_mask=read_mask)
        return self.decoder(out), state

    @torch.no_grad()
    def key_similarities(self, inputs: torch.Tensor) -> torch.Tensor:
        """The paper's figure 3: for the sequence ``inputs [T]`` read from a zero state, the dot
        product of each of the N_r read queries at the last position with the write key of
        every position. ``[N_r, T]``."""
        if inputs.dim() != 1 or inputs.dtype != torch.long:
            raise ValueError(f"inputs must be int64 [T], got {inputs.dtype} "
                             f"{tuple(inputs.shape)}")
        x = inputs[:, None]  # (T, 1)
        write_keys, queries = self.cell.keys(self.embedding(x), write_mask=x != self.pad_id)
        return queries[-1, 0] @ write_keys[:, 0].T  # (N_r, dk) @ (dk, T)


class LSTMState(NamedTuple):
    """Recurrent state of :class:`LSTMModel`, batch-first: ``h``, ``c`` ``[B, L, H]``."""

    h: torch.Tensor
    c: torch.Tensor


class LSTMModel(nn.Module):
    """The regularised LSTM baseline of appendix F.4: embedding -> a stack of residually
    connected LSTM layers -> linear decoder, with the four dropouts the paper lists: whole input
    tokens (embedding dropout), elements of the embedding (locked), elements of the recurrent
    weight matrices (weight drop) and of the hidden representation between layers (locked).

    The paper gives the sizes (4 layers x 512) but not the dropout rates; the defaults here are
    our choice, not tuned.

    Args:
        vocab_size: V.
        embedding_size, hidden_size, n_layers: 256, the paper's 512 and 4.
        dropoute, dropouti, wdrop, dropouth: the four dropout rates.

    Padding needs nothing here: the loss and the metrics skip padded positions, and there is
    no memory for padding to write to.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 256, hidden_size: int = 512,
                 n_layers: int = 4, dropoute: float = 0.05, dropouti: float = 0.1,
                 wdrop: float = 0.2, dropouth: float = 0.1):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
        for name, value in (("embedding_size", embedding_size), ("hidden_size", hidden_size),
                            ("n_layers", n_layers)):
            check_positive_int(name, value)
        self.vocab_size = vocab_size
        self.dropoute, self.dropouti, self.dropouth = dropoute, dropouti, dropouth
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.layers = nn.ModuleList(
            weight_drop_(nn.LSTM(embedding_size if i == 0 else hidden_size, hidden_size), wdrop)
            for i in range(n_layers))
        self.lockdrop = LockedDropout()
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def initial_state(self, batch_size: int) -> LSTMState:
        p = self.decoder.weight
        h = torch.zeros(batch_size, len(self.layers), self.layers[0].hidden_size,
                        device=p.device, dtype=p.dtype)
        return LSTMState(h, h.clone())

    def forward(self, inputs: torch.Tensor, state: LSTMState | None = None,
                read_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, LSTMState]:
        """``inputs [T, B]`` int64 -> ``(logits [T, B, V], state)``; ``read_mask`` is the
        trainer's argument for the FWM (where to read) and has no effect here: an LSTM has no
        memory reads to skip."""
        if inputs.dim() != 2 or inputs.dtype != torch.long:
            raise ValueError(f"inputs must be int64 [T, B], got {inputs.dtype} "
                             f"{tuple(inputs.shape)}")
        if state is None:
            state = self.initial_state(inputs.shape[1])
        x = embedded_dropout(self.embedding, inputs, self.dropoute, self.training)  # (T, B, E)
        x = self.lockdrop(x, self.dropouti)
        hs, cs = [], []
        for i, layer in enumerate(self.layers):
            h0 = state.h[:, i].unsqueeze(0).contiguous()  # (1, B, H)
            c0 = state.c[:, i].unsqueeze(0).contiguous()
            out, (h, c) = layer(x, (h0, c0))  # (T, B, H)
            x = out if i == 0 else x + out  # residual connections between layers
            if i < len(self.layers) - 1:
                x = self.lockdrop(x, self.dropouth)
            hs.append(h.squeeze(0))
            cs.append(c.squeeze(0))
        return self.decoder(x), LSTMState(torch.stack(hs, 1), torch.stack(cs, 1))


class CoreModel(nn.Module):
    """Embedding -> a memory core (:func:`memory.make_core`) -> linear decoder: catbAbI with
    any registered core by name, or a user's core class.

    Args:
        vocab_size: V.
        core: a registered name (``"delta-net"``, ...) or a class with the
            :class:`memory.MemoryCore` interface.
        embedding_size, hidden_size: the embedding's and the core's width (the FWM model's
            256 and 256).
        **core_options: the core's options (``n_heads``, ...).
    """

    def __init__(self, vocab_size: int, core, embedding_size: int = 256,
                 hidden_size: int = 256, **core_options):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.core = memory.make_core(core, embedding_size, hidden_size, **core_options)
        self.decoder = nn.Linear(self.core.output_size, vocab_size)
        name = core if isinstance(core, str) else getattr(core, "__name__", repr(core))
        self.model_options = {"core": name, **core_options}

    def initial_state(self, batch_size: int) -> tuple:
        p = self.decoder.weight
        return self.core.initial_state(batch_size, p.device, p.dtype)

    def forward(self, inputs: torch.Tensor, state: tuple | None = None,
                read_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """``inputs [T, B]`` int64 -> ``(logits [T, B, V], state)``; ``read_mask`` (where the
        FWM reads in QA mode) does not apply: a core's output is what it reads."""
        if inputs.dim() != 2 or inputs.dtype != torch.long:
            raise ValueError(f"inputs must be int64 [T, B], got {inputs.dtype} "
                             f"{tuple(inputs.shape)}")
        out, state = self.core(self.embedding(inputs), state)
        return self.decoder(out), state
