"""``FWMCell``: an LSTM that controls a Fast Weight Memory (paper section 3, figure 1).

Shapes: T time, B batch, I input size, H = d_LSTM, d = d_FWM, dk = d*d (or 2d), N_r reads.
Sequences are time-major ``[T, B, ...]``; the recurrent state is the batch-first
:class:`FWMState` ``(h [B, H], c [B, H], F [B, dk, d])``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
from torch import nn

from memory.functional import host_shortcuts, tanh
from memory.fwm.chunk import fwm_scan
from memory.fwm.common import CHUNK, key_size
from memory.fwm.naive import fwm_scan_reference, make_key
from memory.fwm.step import LowRankMemory, fold, fwm_step, low_rank_memory
from memory.rnn import lstm_step, lstm_with_resets


class FWMState(NamedTuple):
    """Recurrent state, batch-first: LSTM ``h``, ``c`` ``[B, H]`` and fast weights ``F``
    ``[B, dk, d]``."""

    h: torch.Tensor
    c: torch.Tensor
    F: torch.Tensor


class FWMStepState(NamedTuple):
    """The state :meth:`FWMCell.step` carries from step to step: ``h, c [B, H]`` and the memory
    in low-rank form (:class:`~memory.fwm.step.LowRankMemory`: ``F = scale * base + sum_i w_i
    k_i u_i^T`` over the cached steps), flat and batch-first so that it travels as a plain
    tuple of arrays (SB3's ``predict``). :meth:`as_state` gives the plain :class:`FWMState`;
    :meth:`FWMCell.forward` takes either."""

    h: torch.Tensor
    c: torch.Tensor
    base: torch.Tensor
    scale: torch.Tensor
    k1: torch.Tensor
    k2: torch.Tensor
    u: torch.Tensor
    w: torch.Tensor
    norm_sq: torch.Tensor

    @property
    def memory(self) -> LowRankMemory:
        return LowRankMemory(*self[2:])

    def as_state(self, key_mode: str) -> FWMState:
        """The same state with F formed (:func:`~memory.fwm.step.fold`); ``key_mode`` is the
        cell's (``cell.config.key_mode``)."""
        return FWMState(self.h, self.c, fold(self.memory, key_mode))


INITS = ("default", "authors")
#: Named combinations of the options in which the authors' code departs from the paper's
#: equations (:func:`settings_options`).
SETTINGS = ("paper", "authors-write", "authors-catbabi", "authors-rl")


def settings_options(name: str, d_fwm: int) -> dict[str, Any]:
    """The :class:`FWMConfig` options of a named setting.

    * ``"paper"``: the paper's equations, PyTorch's initialisation (the config's defaults).
    * ``"authors-write"``: the authors' write (beta = sigmoid(x + 1), the update scaled by
      1 / d_FWM), the paper's squashed read keys and PyTorch's initialisation.
    * ``"authors-catbabi"``: the authors' catbAbI cell: their write, a linear first read key,
      squashed e_i, their initialisation.
    * ``"authors-rl"``: the authors' RL cell: as ``"authors-catbabi"`` with linear e_i too.
    """
    if name not in SETTINGS:
        raise ValueError(f"FWM settings must be one of {SETTINGS}, got {name!r}")
    if name == "paper":
        return {}
    write = {"beta_bias": 1.0, "update_scale": 1.0 / d_fwm}
    if name == "authors-write":
        return write
    cell = {**write, "squash_first_read_key": False, "init": "authors"}
    if name == "authors-catbabi":
        return cell
    return {**cell, "squash_read_keys": False}


@dataclasses.dataclass
class FWMConfig:
    """Sizes and options; the defaults are the paper's equations.

    Attributes:
        input_size: I, size of the LSTM input at each step.
        hidden_size: d_LSTM (catbAbI 256, the RL agent 32).
        d_fwm: d_FWM (catbAbI 32, the RL agent 16).
        n_reads: N_r, chained reads per step (paper: 3; appendix E ablates 1, 2, 3).
        residual: output ``h + W_o n`` (the paper's eq. for the LM, the RL agent) instead of
            ``W_o n`` alone (the authors' catbAbI scripts turn the residual off).
        key_mode: ``"outer"`` keys vec(k1 (x) k2) (paper) or ``"concat"`` [k1; k2] (appendix E).
        beta_bias: beta = sigmoid(W_beta h + beta_bias); 0 in the paper, 1 in the authors'
            catbAbI and RL code (a bias towards writing).
        update_scale: multiplies beta in the update, eq. (3); 1 in the paper, 1 / d_FWM in the
            authors' catbAbI and RL code.
        squash_first_read_key: n0 = tanh(W_n h) as in eq. (5); the authors' catbAbI and RL
            code leave it linear.
        squash_read_keys: e_i = tanh(W_e h) as in eq. (6); the authors' RL code leaves them
            linear (their catbAbI code squashes them).
        init: ``"default"`` (PyTorch's initialisation of every layer; the paper is silent) or
            ``"authors"`` (the authors' code: write and read projections uniform in
            +-sqrt(6 / (d_LSTM + d_FWM)), the LSTM's forget-gate bias 1 and its other biases
            0). :func:`settings_options` names the authors' combinations.
        layer_norm_eps: epsilon of the affine-free layer norm of eq. (7).
        chunk_size: steps per chunk of the chunk-parallel scan (:mod:`memory.fwm.chunk`), and
            the steps :meth:`FWMCell.step` caches before it forms F; the result does not depend
            on it, only the speed.
        zero_init_output: start W_o of eq. (8) at zero, so that the cell starts as its LSTM
            (with ``residual``) and the reads enter as W_o learns (not in the paper).
    """

    input_size: int
    hidden_size: int = 256
    d_fwm: int = 32
    n_reads: int = 3
    residual: bool = True
    key_mode: str = "outer"
    beta_bias: float = 0.0
    update_scale: float = 1.0
    squash_first_read_key: bool = True
    squash_read_keys: bool = True
    init: str = "default"
    layer_norm_eps: float = 1e-5
    chunk_size: int = CHUNK
    zero_init_output: bool = False

    def __post_init__(self):
        for name in ("input_size", "hidden_size", "d_fwm", "n_reads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FWMConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ValueError(f"FWMConfig.chunk_size must be a positive integer, "
                             f"got {self.chunk_size!r}")
        if self.key_mode not in ("outer", "concat"):
            raise ValueError(f"FWMConfig.key_mode must be 'outer' or 'concat', "
                             f"got {self.key_mode!r}")
        if self.init not in INITS:
            raise ValueError(f"FWMConfig.init must be one of {INITS}, got {self.init!r}")

    @property
    def key_size(self) -> int:
        """dk: d * d for tensor-product keys, 2 * d for concatenated keys."""
        return key_size(self.d_fwm, self.key_mode)


class FWMCell(nn.Module):
    """LSTM + Fast Weight Memory.

    Per step: ``h_t = LSTM(x_t, h_t-1)``; the write projections of ``h_t`` (eqs. (1)-(2)) update
    F (eqs. (3)-(4)); the read projections (eqs. (5)-(6)) query the updated F N_r times (eq. (7));
    the output is ``W_o n`` (eq. (8)), plus ``h_t`` when ``residual``.

    The LSTM's input never depends on the memory, so :meth:`forward` runs the LSTM over the whole
    sequence first, forms all write and all read projections with one GEMM each, and only then
    runs the chunk-parallel :func:`~memory.fwm.chunk.fwm_scan`.
    """

    def __init__(self, config: FWMConfig):
        super().__init__()
        self.config = cfg = config
        d = cfg.d_fwm
        self.lstm = nn.LSTM(cfg.input_size, cfg.hidden_size)
        self.write_proj = nn.Linear(cfg.hidden_size, 3 * d + 1, bias=False)  # k1, k2, v, beta
        self.read_proj = nn.Linear(cfg.hidden_size, d * (1 + cfg.n_reads), bias=False)  # n0, e_i
        self.out_proj = nn.Linear(d, cfg.hidden_size, bias=False)  # W_o
        if cfg.init == "authors":
            # after PyTorch's initialisation of every layer, so that the layers this does not
            # name (W_o, the LSTM's weights) get exactly the values they get without it
            bound = math.sqrt(6.0 / (cfg.hidden_size + d))
            nn.init.uniform_(self.write_proj.weight, -bound, bound)
            nn.init.uniform_(self.read_proj.weight, -bound, bound)
            h = cfg.hidden_size
            nn.init.zeros_(self.lstm.bias_ih_l0)
            nn.init.zeros_(self.lstm.bias_hh_l0)
            nn.init.ones_(self.lstm.bias_ih_l0[h:2 * h])  # gates i, f, g, o: forget bias 1
        if cfg.zero_init_output:
            nn.init.zeros_(self.out_proj.weight)

    @property
    def output_size(self) -> int:
        """Features per step of :meth:`forward`'s output (d_LSTM)."""
        return self.config.hidden_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> FWMState:
        """The zero state for ``batch_size`` sequences."""
        p = self.out_proj.weight
        device, dtype = device or p.device, dtype or p.dtype
        h = torch.zeros(batch_size, self.config.hidden_size, device=device, dtype=dtype)
        fw = torch.zeros(batch_size, self.config.key_size, self.config.d_fwm, device=device,
                         dtype=dtype)
        return FWMState(h, h.clone(), fw)

    def forward(self, x: torch.Tensor, state: FWMState | FWMStepState | None = None,
                reset: torch.Tensor | None = None, write_mask: torch.Tensor | None = None,
                read_mask: torch.Tensor | None = None, reference: bool = False,
                final_state: bool = True) -> tuple[torch.Tensor, FWMState | None]:
        """Run a whole sequence.

        Args:
            x: ``[T, B, I]``.
            state: :class:`FWMState`, :class:`FWMStepState` (from :meth:`step`) or None
                (zeros; cheaper than :meth:`initial_state`: the zero F is neither made nor
                read).
            reset: ``[T, B]`` bool; where True the whole state (h, c, F) is zeroed before step
                t (episode starts).
            write_mask: ``[T, B]`` bool; False = do not write (padding): F is left exactly as it
                was (beta = 0). The LSTM still reads the step.
            read_mask: ``[T, B]`` bool; read only where True. Elsewhere the memory part of the
                output is zero (so the output is ``h`` with the residual, 0 without).
            reference: use the plain-loop reference scan (for tests).
            final_state: False: the caller discards the final state (an update over a rollout),
                so the pass over F that forms it is skipped and None is returned instead.

        Returns:
            ``(out [T, B, H], final state or None)``.
        """
        cfg = self.config
        steps, batch = x.shape[:2]
        if x.dim() != 3 or x.shape[2] != cfg.input_size:
            raise ValueError(f"x must be [T, B, {cfg.input_size}], got {tuple(x.shape)}")
        if state is None:
            # the zero state: the scan starts from the empty memory (F=None, neither made nor
            # read), the reference from a zero F
            h = torch.zeros(batch, cfg.hidden_size, device=x.device, dtype=x.dtype)
            fw = self.initial_state(batch, x.device, x.dtype).F if reference else None
            state = FWMState(h, h, fw)
        for name, mask in (("reset", reset), ("write_mask", write_mask),
                           ("read_mask", read_mask)):
            if mask is not None and (mask.shape != (steps, batch) or mask.dtype != torch.bool):
                raise ValueError(f"{name} must be a bool tensor [T={steps}, B={batch}], got "
                                 f"{mask.dtype} {tuple(mask.shape)}")
        if isinstance(state, FWMStepState):
            if (not reference and steps and reset is not None and host_shortcuts(x)
                    and bool(reset[0].all())
                    and not any(t.requires_grad for t in state.memory)):
                # every row forgets the memory before step 0 (a rollout that starts with every
                # episode, as the A2C update's): the scan starts empty, F is not formed from
                # the low-rank form only to be dropped (a host decision: on the CPU only)
                state = FWMState(state.h, state.c, None)
            else:
                state = state.as_state(cfg.key_mode)
        h_seq, (h, c) = self._lstm(x, state, reset)  # (T, B, H)
        k1, k2, v, beta, n0, e = self._project(h_seq, write_mask)
        scan = fwm_scan_reference if reference else fwm_scan
        kwargs = {} if reference else {"chunk_size": cfg.chunk_size, "final_state": final_state}
        reads, fw = scan(state.F, k1, k2, v, beta, n0, e, reset=reset, read_mask=read_mask,
                         key_mode=cfg.key_mode, update_scale=cfg.update_scale,
                         eps=cfg.layer_norm_eps, **kwargs)  # (T, B, d)
        out = self.out_proj(reads)  # eq. (8), (T, B, H)
        if cfg.residual:
            out = out + h_seq
        return out, FWMState(h, c, fw) if final_state else None

    def _project(self, h_seq: torch.Tensor, write_mask: torch.Tensor | None):
        """Write and read projections of all steps: k1, k2, v ``[T, B, d]``, beta ``[T, B]``,
        n0 ``[T, B, d]``, e ``[T, B, N_r, d]``."""
        cfg = self.config
        d, n_reads = cfg.d_fwm, cfg.n_reads
        write = self.write_proj(h_seq)  # (T, B, 3d + 1), one GEMM for all steps
        k1, k2, v = tanh(write[..., :3 * d]).split(d, dim=-1)  # eq. (1), (T, B, d) each
        beta = torch.sigmoid(write[..., 3 * d] + cfg.beta_bias)  # eq. (2), (T, B)
        if write_mask is not None:
            beta = beta * write_mask.to(beta.dtype)  # padding does not write
        read = self.read_proj(h_seq)  # (T, B, d (1 + N_r)), one GEMM for all steps
        n0 = read[..., :d]  # (T, B, d)
        if cfg.squash_first_read_key:
            n0 = tanh(n0)  # eq. (5)
        e = read[..., d:].unflatten(-1, (n_reads, d))  # (T, B, N_r, d)
        if cfg.squash_read_keys:
            e = tanh(e)  # eq. (6)
        return k1, k2, v, beta, n0, e

    @torch.no_grad()
    def keys(self, x: torch.Tensor, state: FWMState | None = None,
             write_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For inspection (the paper's figure 3): the write keys ``vec(k1 (x) k2)``
        ``[T, B, dk]`` and the query of every read ``[T, B, N_r, dk]`` over ``x [T, B, I]``,
        computed with the plain-loop reference."""
        cfg = self.config
        if state is None:
            state = self.initial_state(x.shape[1], x.device, x.dtype)
        h_seq, _ = self._lstm(x, state, None)  # (T, B, H)
        k1, k2, v, beta, n0, e = self._project(h_seq, write_mask)
        *_, queries = fwm_scan_reference(state.F, k1, k2, v, beta, n0, e, key_mode=cfg.key_mode,
                                         update_scale=cfg.update_scale,
                                         eps=cfg.layer_norm_eps, return_queries=True)
        return make_key(k1, k2, cfg.key_mode), queries

    def step(self, x: torch.Tensor, state: FWMState | FWMStepState | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, FWMStepState]:
        """One step for acting in an environment: ``x [B, I]`` -> ``(out [B, H], state)``;
        ``reset [B]`` bool zeroes the state first (SB3's ``episode_starts``).

        The memory is carried in low-rank form (:class:`FWMStepState`, :func:`~memory.fwm.chunk.
        fwm_step`): equal to :meth:`forward` step by step, but a step costs ``O(n d)`` per
        sample for the ``n`` steps since F was last formed, instead of several passes over F.
        """
        cfg = self.config
        if x.dim() != 2 or x.shape[1] != cfg.input_size:
            raise ValueError(f"x must be [B, {cfg.input_size}], got {tuple(x.shape)}")
        batch = x.shape[0]
        if reset is not None and (reset.shape != (batch,) or reset.dtype != torch.bool):
            raise ValueError(f"reset must be a bool tensor [B={batch}], got {reset.dtype} "
                             f"{tuple(reset.shape)}")
        if state is None:
            state = self.initial_state(batch, x.device, x.dtype)
        if isinstance(state, FWMStepState):
            memory = state.memory
        else:
            memory = low_rank_memory(state.F)
        h, c = lstm_step(self.lstm, x, state.h, state.c, reset)
        k1, k2, v, beta, n0, e = (t[0] for t in self._project(h[None], None))
        read, memory = fwm_step(memory, k1, k2, v, beta, n0, e, reset=reset,
                                key_mode=cfg.key_mode, update_scale=cfg.update_scale,
                                eps=cfg.layer_norm_eps, max_rank=cfg.chunk_size)  # (B, d)
        out = self.out_proj(read)  # eq. (8), (B, H)
        if cfg.residual:
            out = out + h
        return out, FWMStepState(h, c, *memory)

    def state_from_tuple(self, tensors: tuple[torch.Tensor, ...]) -> FWMState | FWMStepState:
        """A plain tuple of batch-first tensors (as SB3's ``predict`` carries it) back as the
        state it came from: 3 tensors are an :class:`FWMState`, 9 an :class:`FWMStepState`."""
        if len(tensors) == len(FWMState._fields):
            return FWMState(*tensors)
        if len(tensors) == len(FWMStepState._fields):
            return FWMStepState(*tensors)
        fields = ", ".join(FWMStepState._fields)
        raise ValueError(f"an FWM state is a tuple of 3 arrays (h, c, F) or of 9 ({fields}), "
                         f"got {len(tensors)}")

    def _lstm(self, x: torch.Tensor, state: FWMState, reset: torch.Tensor | None):
        return lstm_with_resets(self.lstm, x, state.h, state.c, reset)
