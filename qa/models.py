"""catbAbI models: token ids ``[T, B]`` in, next-token logits ``[T, B, V]`` out, with a carried
recurrent state. Every model has the same interface, so the trainer and the evaluation code
serve all of them (the FWM here; the regularised LSTM of appendix F.4 and the other baselines of
table 1 slot in beside it)."""

from __future__ import annotations

import torch
from torch import nn

from agents.fwm import FWMCell, FWMConfig, FWMState


class FWMModel(nn.Module):
    """Embedding -> LSTM + Fast Weight Memory -> linear decoder (paper section 4.1).

    Args:
        vocab_size: V.
        embedding_size, hidden_size, d_fwm, n_reads: the paper's 256, 256, 32, 3.
        residual: output ``h + W_o n`` (the authors' catbAbI scripts turn it off: False).
        key_mode: ``"outer"`` (paper) or ``"concat"`` (appendix E ablation).
        pad_id: id of the padding token; padding steps do not write to the memory.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 256, hidden_size: int = 256,
                 d_fwm: int = 32, n_reads: int = 3, residual: bool = False,
                 key_mode: str = "outer", pad_id: int = 0):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
        self.vocab_size, self.pad_id = vocab_size, pad_id
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.cell = FWMCell(FWMConfig(input_size=embedding_size, hidden_size=hidden_size,
                                      d_fwm=d_fwm, n_reads=n_reads, residual=residual,
                                      key_mode=key_mode))
        self.decoder = nn.Linear(hidden_size, vocab_size)

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
